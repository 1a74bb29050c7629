"""User-defined formats as data: a TOML ``[[format]]`` table or the same as a Python dict.

A definition names a family and its parameters (or gives the value of every code), the NaN/Inf
policy, the tie rule and the default scaling. It is turned into an ordinary ``Format`` by the
same constructors the built-in formats use, so every consumer (golden models, unit specs, RTL,
testbench, cost model, CLI) handles it with no other change.

Example (``my.toml``)::

    [[format]]
    name = "my4"
    values = [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6, 8]
    [format.scaling]
    granularity = "group"
    group_size = 64
    method = "absmax"
    scale_format = "bf16"

Families and their keys (besides ``name``, ``description``, ``source``, ``scaling``):

=============  =================================================================================
``lut``        ``values`` (2^bits numbers; ``"nan"``, ``"inf"``, ``"-inf"`` allowed), optional
               ``bits``, ``ties``, ``never_encode`` (codes the encoder must not produce),
               ``nan``, ``inf``; the default when ``values`` is given
``int``        ``bits`` (2..8): two's complement, round half to even
``int_asym``   ``bits`` (2..8): unsigned codes with an integer zero point
``minifloat``  ``ebits``, ``mbits``, optional ``bias`` (default 2^(ebits-1)-1) and ``specials``
               (``ieee`` | ``fn`` | ``fnuz`` | ``none``; default ``none``)
``crd``        ``bits``, ``dist`` (``normal`` | ``laplace`` | ``t``), ``nu`` (for ``t``),
               ``scale_rule`` (``rms`` | ``absmax``), ``block`` (absmax block size)
``nupes``      ``bits``, ``a`` (the power-law exponent)
``dint``       ``variant`` (``asym`` | ``sym``), ``bits``; asym: ``denormal``, ``thresholds``
               ([t_half, t_zero]), ``special_codes`` ([code of +d, code of -d]); sym:
               ``magnitudes`` (2^(bits-1) values from 0, strictly increasing)
``entropy``    ``budget`` (b/elem, everything stored), optional ``max_len`` (16), ``chunk``
               (4096), ``symbol_bits`` (8), ``scale_format`` (fp32), ``reference`` (``normal`` |
               ``laplace``: the tensor its listed size is measured on); no ``scaling`` (the step
               is bisected per tensor)
=============  =================================================================================

``ties`` (lut): ``even_code`` (default), ``away`` (larger magnitude), ``toward_zero``, ``up``,
``down``, or a list of 2^bits integer priorities (higher wins an exact tie). ``nan``:
``error`` | ``nan_code``; ``inf``: ``saturate`` | ``inf_code`` | ``error``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MacforgeError
from ._core import Format

__all__ = ["format_from_dict", "load_formats", "read_toml", "key_line", "FAMILIES", "NAME_RE"]

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")

_COMMON = ("name", "family", "description", "source", "scaling")
FAMILIES: dict[str, tuple[str, ...]] = {
    "lut": ("values", "bits", "ties", "never_encode", "nan", "inf"),
    "int": ("bits",),
    "int_asym": ("bits",),
    "minifloat": ("ebits", "mbits", "bias", "specials"),
    "crd": ("bits", "dist", "nu", "scale_rule", "block"),
    "nupes": ("bits", "a"),
    "dint": ("variant", "bits", "denormal", "thresholds", "special_codes", "magnitudes"),
    "entropy": ("budget", "max_len", "chunk", "symbol_bits", "scale_format", "reference"),
}
_TIES = ("even_code", "away", "toward_zero", "up", "down")


class _Where:
    """Names the place of a problem: 'file:line: format 'x': key 'k': ...'."""

    def __init__(self, origin: str, text: str | None, kind: str, name: str | None) -> None:
        self.origin, self.text, self.kind, self.name = origin, text, kind, name

    def error(self, key: str | None, problem: str) -> MacforgeError:
        loc = self.origin
        if self.text is not None and key is not None:
            line = key_line(self.text, key, self.name)
            if line:
                loc += f":{line}"
        who = f"{self.kind} {self.name!r}" if self.name else self.kind
        return MacforgeError(f"{loc}: {who}: " + (f"key {key!r}: " if key else "") + problem)


def key_line(text: str, key: str, near_name: str | None = None) -> int | None:
    """Line number (1-based) of ``key = ...`` in TOML ``text``, preferring the first occurrence
    after the line that sets ``name = "near_name"`` (the table the key belongs to)."""
    lines = text.splitlines()
    pat = re.compile(rf'^\s*["\']?{re.escape(key)}["\']?\s*=')
    start = 0
    if near_name is not None:
        npat = re.compile(rf'^\s*name\s*=\s*["\']{re.escape(near_name)}["\']')
        for i, ln in enumerate(lines):
            if npat.match(ln):
                start = i
                break
    for i in list(range(start, len(lines))) + list(range(0, start)):
        if pat.match(lines[i]):
            return i + 1
    for i, ln in enumerate(lines):  # a table header such as [format.scaling]
        if re.match(rf"^\s*\[+[^\]]*\b{re.escape(key)}\]+", ln):
            return i + 1
    return None


def read_toml(path: str | Path, kind: str, allowed_top: tuple[str, ...] | None = None) -> tuple[dict[str, Any], str]:
    """Parse a ``kind`` TOML file (the one reader of every macforge TOML input); malformed TOML
    (named with its line, the last one for an error at the end of the document) or, given
    ``allowed_top``, an unknown top-level key -> one-line MacforgeError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise MacforgeError(f"{p}: cannot read {kind} file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise MacforgeError(f"{p}: {kind} file is not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        if "line" not in msg:
            msg += f" (line {max(1, len(text.splitlines()))})"
        raise MacforgeError(f"{p}: malformed TOML: {msg}") from None
    for k in doc if allowed_top is not None else ():
        if k not in allowed_top:
            line = key_line(text, k)
            raise MacforgeError(f"{p}{f':{line}' if line else ''}: unknown top-level key {k!r} "
                                f"(expected {' or '.join(f'[[{a}]]' for a in allowed_top)})")
    return doc, text


def _int(w: _Where, d: Mapping[str, Any], key: str, lo: int, hi: int, default: int | None = None) -> int:
    if key not in d:
        if default is None:
            raise w.error(key, "missing")
        return default
    v = d[key]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise w.error(key, f"must be an integer in {lo}..{hi}, not {v!r}")
    return v


def _num(w: _Where, v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise w.error(key, f"must be a finite number, not {v!r}")
    return float(v)


def _value(w: _Where, v: Any, i: int) -> float:
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("nan", "inf", "+inf", "-inf"):
            return float(s)
        raise w.error("values", f"entry {i} is {v!r}: use a number, 'nan', 'inf' or '-inf'")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise w.error("values", f"entry {i} is {v!r}: not a number")
    return float(v)


def _lut(w: _Where, d: Mapping[str, Any]) -> Format:
    if "values" not in d:
        raise w.error("values", "missing: a lut format gives the value of every code")
    raw = d["values"]
    if not isinstance(raw, list) or not raw:
        raise w.error("values", "must be a non-empty list of the value of every code")
    vals = np.array([_value(w, v, i) for i, v in enumerate(raw)], dtype=np.float64)
    n = len(vals)
    bits = int(math.log2(n)) if n & (n - 1) == 0 else None
    if bits is None or not 1 <= bits <= 8:
        raise w.error("values", f"has {n} entries: the number of codes must be 2^bits, bits 1..8")
    if "bits" in d and d["bits"] != bits:
        raise w.error("bits", f"is {d['bits']!r} but values has {n} = 2^{bits} entries")
    fin = vals[np.isfinite(vals)]
    if fin.size == 0:
        raise w.error("values", "has no finite value")
    uniq, counts = np.unique(fin, return_counts=True)  # +0 and -0 count as one value
    for u, c in zip(uniq[counts > 1], counts[counts > 1]):
        codes = [int(k) for k in np.nonzero(vals == u)[0]]
        if u == 0 and c == 2 and np.signbit(vals[codes]).sum() == 1:
            continue  # +0 and -0
        raise w.error("values", f"value {u:g} appears at codes {codes}: every code needs its own value")
    ties = d.get("ties", "even_code")
    if isinstance(ties, list):
        if len(ties) != n or not all(isinstance(t, int) and not isinstance(t, bool) for t in ties):
            raise w.error("ties", f"a priority list needs {n} integers")
        prio = np.array(ties, dtype=np.int64)
    elif ties in _TIES:
        mag = np.where(np.isfinite(vals), np.abs(vals), 0.0)
        rank = np.argsort(np.argsort(np.where(np.isfinite(vals), vals, 0.0), kind="stable"), kind="stable")
        prio = {"even_code": (np.arange(n) % 2 == 0).astype(np.int64),
                "away": np.argsort(np.argsort(mag, kind="stable"), kind="stable"),
                "toward_zero": -np.argsort(np.argsort(mag, kind="stable"), kind="stable"),
                "up": rank, "down": -rank}[ties].astype(np.int64)
    else:
        raise w.error("ties", f"must be one of {', '.join(_TIES)} or a list of priorities, not {ties!r}")
    enc = np.ones(n, dtype=bool)
    never = d.get("never_encode", [])
    if not isinstance(never, list) or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < n
                                              for c in never):
        raise w.error("never_encode", f"must be a list of codes in 0..{n - 1}, not {never!r}")
    enc[never] = False
    if not (enc & np.isfinite(vals)).any():
        raise w.error("never_encode", "leaves no finite code to encode into")
    has_nan, has_inf = bool(np.isnan(vals).any()), bool(np.isinf(vals).any())
    nan = d.get("nan", "nan_code" if has_nan else "error")
    if nan not in ("error", "nan_code"):
        raise w.error("nan", f"must be 'error' or 'nan_code', not {nan!r}")
    if nan == "nan_code" and not has_nan:
        raise w.error("nan", "is 'nan_code' but no code's value is NaN")
    inf = d.get("inf", "inf_code" if has_inf else "saturate")
    if inf not in ("saturate", "inf_code", "error"):
        raise w.error("inf", f"must be 'saturate', 'inf_code' or 'error', not {inf!r}")
    if inf == "inf_code" and not (np.isposinf(vals).any() and np.isneginf(vals).any()):
        raise w.error("inf", "is 'inf_code' but the values lack +inf and -inf codes")
    negz = [int(c) for c in np.nonzero((vals == 0) & np.signbit(vals))[0]]
    return Format(
        name=str(d["name"]), bits=bits, kind="lut", values=vals, tie_priority=prio, encodable=enc,
        nan_policy=nan, inf_policy=inf, neg_zero_code=negz[0] if negz and (vals == 0).sum() > 1 else None,
        description=str(d.get("description", f"user-defined {n}-value codebook")),
        source=str(d.get("source", "user-defined")),
        params={"family": "lut"},
    )


def _family(w: _Where, fam: str, d: Mapping[str, Any]) -> Format:
    from . import _families as F

    name = str(d["name"])
    if fam == "lut":
        return _lut(w, d)
    if fam == "int":
        return replace(F.int_format(_int(w, d, "bits", 2, 8)), name=name)
    if fam == "int_asym":
        return replace(F.int_asym_format(_int(w, d, "bits", 2, 8)), name=name)
    if fam == "minifloat":
        e = _int(w, d, "ebits", 1, 15)
        m = _int(w, d, "mbits", 0, 15)
        bias = _int(w, d, "bias", -64, 1 << e) if "bias" in d else None
        specials = d.get("specials", "none")
        if specials not in F.FP_SPECIALS:
            raise w.error("specials", f"must be one of {', '.join(F.FP_SPECIALS)}, not {specials!r}")
        if bias is None:
            bias = (1 << (e - 1)) if specials == "fnuz" else (1 << (e - 1)) - 1
        return F.fp_format(name, e, m, bias, specials, source=str(d.get("source", "user-defined minifloat")))
    if fam == "crd":
        dist = d.get("dist", "normal")
        if dist not in ("normal", "laplace", "t"):
            raise w.error("dist", f"must be normal, laplace or t, not {dist!r}")
        nu = _num(w, d["nu"], "nu") if "nu" in d else None
        if (dist == "t") != (nu is not None):
            raise w.error("nu", "is required for dist = 't' and only for it")
        rule = d.get("scale_rule", "absmax")
        if rule not in ("rms", "absmax"):
            raise w.error("scale_rule", f"must be 'rms' or 'absmax', not {rule!r}")
        fmt = F.crd_format(_int(w, d, "bits", 2, 8), dist, rule, _int(w, d, "block", 4, 1 << 20, 64), nu)
        return replace(fmt, name=name)
    if fam == "nupes":
        if "a" not in d:
            raise w.error("a", "missing: the NUPES power-law exponent")
        return replace(F.nupes_format(_int(w, d, "bits", 2, 8), _num(w, d["a"], "a")), name=name)
    if fam == "dint":
        variant = d.get("variant")
        if variant == "asym":
            bad = [k for k in ("magnitudes",) if k in d]
            if bad:
                raise w.error(bad[0], "applies to variant 'sym' only")
            th = d.get("thresholds", list(F.DINT_THRESHOLDS))
            if not isinstance(th, list) or len(th) != 2:
                raise w.error("thresholds", f"must be [t_half, t_zero], not {th!r}")
            sc = d.get("special_codes")
            if sc is not None and (not isinstance(sc, list) or len(sc) != 2):
                raise w.error("special_codes", f"must be [code of +d, code of -d], not {sc!r}")
            return F.dint_asym_format(_int(w, d, "bits", 3, 8, 4),
                                      denormal=_num(w, d.get("denormal", F.DINT_DENORMAL), "denormal"),
                                      thresholds=tuple(_num(w, t, "thresholds") for t in th),  # type: ignore[arg-type]
                                      special_codes=tuple(sc) if sc else None, name=name)  # type: ignore[arg-type]
        if variant == "sym":
            bad = [k for k in ("denormal", "thresholds", "special_codes") if k in d]
            if bad:
                raise w.error(bad[0], "applies to variant 'asym' only (variant 'sym' is nearest-value on "
                                      "its magnitudes)")
            mags = d.get("magnitudes")
            if mags is not None and not isinstance(mags, list):
                raise w.error("magnitudes", f"must be a list of numbers, not {mags!r}")
            return F.dint_sym_format(_int(w, d, "bits", 3, 8, 4),
                                     magnitudes=None if mags is None else tuple(_num(w, m, "magnitudes") for m in mags),
                                     name=name)
        raise w.error("variant", f"must be 'asym' or 'sym', not {variant!r}")
    if fam == "entropy":
        from ._entropy import entropy_format

        if "budget" not in d:
            raise w.error("budget", "missing: the coded size in bits per element, everything stored")
        ref = d.get("reference", "normal")
        sf = d.get("scale_format", "fp32")
        if not isinstance(ref, str):
            raise w.error("reference", f"must be a string, not {ref!r}")
        if not isinstance(sf, str):
            raise w.error("scale_format", f"must be a string, not {sf!r}")
        return entropy_format(name, _num(w, d["budget"], "budget"), _int(w, d, "max_len", 1, 32, 16),
                              chunk=_int(w, d, "chunk", 1, 1 << 30, 4096),
                              symbol_bits=_int(w, d, "symbol_bits", 2, 16, 8), scale_format=sf, reference=ref)
    raise w.error("family", f"must be one of {', '.join(FAMILIES)}, not {fam!r}")  # pragma: no cover


def _scaling(w: _Where, fmt: Format, d: Any) -> Any:
    from ._tensor import Scaling

    if not isinstance(d, Mapping):
        raise w.error("scaling", f"must be a table of Scaling fields, not {d!r}")
    known = [f.name for f in fields(Scaling)]
    for k in d:
        if k not in known:
            raise w.error(k, f"unknown scaling key (known: {', '.join(known)})")
    try:
        sc = Scaling(**dict(d))
    except MacforgeError as e:
        raise w.error("scaling", str(e)) from None
    except TypeError as e:  # pragma: no cover - unknown keys are caught above
        raise w.error("scaling", str(e)) from None
    if sc.method == "minmax" and not fmt.has_zero_point:
        raise w.error("method", f"'minmax' needs a zero-point format; {fmt.name} has none")
    if fmt.has_zero_point and sc.method != "minmax":
        raise w.error("method", f"{fmt.name} has a zero point: its scaling method must be 'minmax'")
    if sc.zero_point_bits and not fmt.has_zero_point:
        raise w.error("zero_point_bits", f"{fmt.name} has no zero point")
    if fmt.has_zero_point and (1 << sc.zero_point_bits) - 1 < fmt.zero_point_max:
        raise w.error("zero_point_bits", f"{sc.zero_point_bits} bits cannot hold zero points "
                                         f"0..{fmt.zero_point_max}")
    return sc


def format_from_dict(d: Mapping[str, Any], *, origin: str = "<dict>", text: str | None = None) -> Format:
    """A ``Format`` from a definition (a TOML ``[[format]]`` table or the same dict).

    Every problem raises a one-line ``MacforgeError`` naming ``origin`` (file[:line]), the
    format, the key and what is wrong.
    """
    if not isinstance(d, Mapping):
        raise MacforgeError(f"{origin}: a format definition must be a table, not {type(d).__name__}")
    name = d.get("name")
    w = _Where(origin, text, "format", name if isinstance(name, str) else None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise w.error("name", f"must be a name of letters, digits, '_' or '.', starting with a letter, "
                              f"not {name!r}")
    fam = d.get("family", "lut" if "values" in d else None)
    if fam is None:
        raise w.error("family", f"missing: give 'values' or a family ({', '.join(FAMILIES)})")
    if fam not in FAMILIES:
        raise w.error("family", f"must be one of {', '.join(FAMILIES)}, not {fam!r}")
    for k in d:
        if k not in _COMMON and k not in FAMILIES[fam]:
            raise w.error(k, f"unknown key for family {fam!r} (known: {', '.join(_COMMON + FAMILIES[fam])})")
    try:
        fmt = _family(w, fam, d)
    except MacforgeError as e:
        if str(e).startswith(origin):
            raise
        raise w.error(None, str(e)) from None
    if fam == "entropy" and "scaling" in d:
        raise w.error("scaling", "an entropy format is coded per tensor with a bisected step: it takes no scaling")
    extra: dict[str, Any] = {}
    if "description" in d:
        extra["description"] = str(d["description"])
    if "source" in d:
        extra["source"] = str(d["source"])
    if "scaling" in d:
        extra["default_scaling"] = _scaling(w, fmt, d["scaling"])
    elif fmt.default_scaling is None:
        from ._tensor import Scaling

        extra["default_scaling"] = (Scaling(method="minmax", zero_point_bits=max(1, fmt.zero_point_max.bit_length()))
                                    if fmt.has_zero_point else Scaling())
    return replace(fmt, **extra) if extra else fmt


def load_formats(path: str | Path, *, register: bool = True) -> list[Format]:
    """Read every ``[[format]]`` of a TOML file; register them (all or none) unless told not to."""
    from ._registry import register_format

    doc, text = read_toml(path, "format", ("format",))
    tables = doc.get("format", [])
    if not isinstance(tables, list) or not tables:
        raise MacforgeError(f"{path}: no [[format]] tables")
    fmts = [format_from_dict(t, origin=str(path), text=text) for t in tables]
    if register:
        # validate every name against the registry and each other before registering any
        from ._registry import check_new_format

        seen: dict[str, Format] = {}
        for f in fmts:
            check_new_format(f, origin=str(path), pending=seen)
            seen[f.name] = f
        for f in fmts:
            register_format(f)
    return fmts
