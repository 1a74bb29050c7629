"""Named formats: fixed names, parametric families resolved from their name (cube-root density,
NUPES, generic minifloats ``fp<bits>_e<E>m<M>[_b<bias>][_<specials>]``), and user-registered
formats (``register_format`` / ``load_formats``)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MacforgeError, UnknownNameError
from ._core import Format
from ._families import (
    FP_SPECIALS,
    crd_format,
    decoupleq_int_format,
    dint4_asym_format,
    dint4_sym_format,
    e8m0_format,
    float_table_format,
    Fp32Format,
    fp_format,
    int_asym_format,
    int_format,
    mxint8_element_format,
    nf4_format,
    nupes_format,
    ue4m3_format,
)
from ._entropy import entropy_format
from ._tensor import Scaling

__all__ = ["get_format", "format_names", "FORMAT_PATTERNS", "register_format", "check_new_format",
           "user_format_names", "load_default_formats", "FORMATS_ENV"]

FORMATS_ENV = "MACFORGE_FORMATS"

_MX_E8M0 = Scaling(group_size=32, method="mx", scale_format="e8m0")
# OCP element encodings (bias, specials): FP4/FP6 finite only, E4M3 'fn', E5M2 IEEE-like
_OCP_FP = {(2, 1): (1, "none"), (2, 3): (1, "none"), (3, 2): (3, "none"), (4, 3): (7, "fn"), (5, 2): (15, "ieee")}
_G128_FP16 = Scaling(granularity="group", group_size=128, method="absmax", scale_format="fp16")
_B64_BF16 = Scaling(granularity="group", group_size=64, method="absmax", scale_format="bf16")


def _with_scaling(fmt: Format, sc: Scaling | None, name: str | None = None, kind: str | None = None,
                  description: str | None = None) -> Format:
    kw: dict[str, object] = {"default_scaling": sc}
    if name:
        kw["name"] = name
    if kind:
        kw["kind"] = kind
    if description:
        kw["description"] = description
    return replace(fmt, **kw)  # type: ignore[arg-type]


def _fixed() -> dict[str, "callable"]:  # type: ignore[valid-type]
    f: dict[str, object] = {}
    for b in range(2, 9):
        f[f"int{b}"] = lambda b=b: _with_scaling(int_format(b), _G128_FP16)
    for b in (4, 8):
        f[f"int{b}_asym"] = lambda b=b: _with_scaling(
            int_asym_format(b), Scaling(method="minmax", group_size=128, scale_format="fp16", zero_point_bits=b))
    f["dint4_asym"] = lambda: _with_scaling(
        dint4_asym_format(), Scaling(method="minmax", group_size=128, scale_format="fp16", zero_point_bits=4))
    f["dint4_sym"] = lambda: _with_scaling(dint4_sym_format(), _G128_FP16)
    f["fp4_e2m1"] = lambda: _with_scaling(fp_format("fp4_e2m1", 2, 1, 1, "none"), _B64_BF16)
    f["fp6_e2m3"] = lambda: _with_scaling(fp_format("fp6_e2m3", 2, 3, 1, "none"), _B64_BF16)
    f["fp6_e3m2"] = lambda: _with_scaling(fp_format("fp6_e3m2", 3, 2, 3, "none"), _B64_BF16)
    per_tensor_fp32 = Scaling(granularity="tensor", method="absmax", scale_format="fp32")
    f["fp8_e4m3"] = lambda: _with_scaling(fp_format("fp8_e4m3", 4, 3, 7, "fn"), per_tensor_fp32)
    f["fp8_e5m2"] = lambda: _with_scaling(fp_format("fp8_e5m2", 5, 2, 15, "ieee"), per_tensor_fp32)
    f["nf4"] = lambda: _with_scaling(nf4_format(), Scaling(group_size=64, method="absmax", scale_format="fp32"))
    f["nf4_dq"] = lambda: _with_scaling(
        nf4_format(), Scaling(group_size=64, method="absmax", scale_format="fp32", double_quant_block=256),
        name="nf4_dq", description="NF4 with QLoRA double quantization: block 64, the FP32 absmax "
        "constants quantized again in blocks of 256 (≈ 4.127 bits/element)")
    f["mxfp4"] = lambda: _with_scaling(
        fp_format("mxfp4", 2, 1, 1, "none"), Scaling(group_size=32, method="mx", scale_format="e8m0"),
        kind="fp", description="OCP MXFP4: E2M1 elements, block 32, E8M0 scale "
        "2^(clip(floor(log2 amax) - 2, -127, 127)), RNE saturating to ±6")
    for e, m in ((2, 3), (3, 2), (4, 3), (5, 2)):
        bits = 1 + e + m
        f[f"mxfp{bits}_e{e}m{m}"] = lambda e=e, m=m, bits=bits: _with_scaling(
            fp_format(f"mxfp{bits}_e{e}m{m}", e, m, *_OCP_FP[(e, m)]), _MX_E8M0, kind="fp",
            description=f"OCP MXFP{bits} E{e}M{m}: elements as OCP fp{bits}_e{e}m{m}, block 32, E8M0 scale "
            f"2^(clip(floor(log2 amax) - emax_elem, -127, 127)), RNE saturating to ±max")
    f["mxint8"] = lambda: _with_scaling(
        mxint8_element_format(), Scaling(group_size=32, method="mx", scale_format="e8m0"))
    f["nvfp4"] = lambda: _with_scaling(
        fp_format("nvfp4", 2, 1, 1, "none"), Scaling(group_size=16, method="nv", scale_format="ue4m3"),
        kind="fp", description="NVFP4: E2M1 elements, block 16, UE4M3 block scale "
        "E4M3(amax_b/(6g)), FP32 tensor scale g = amax/(6·448)")
    for b in (2, 3):  # decoupleQ's 2-bit format and its 3-bit sibling, the same construction
        f[f"decoupleq_int{b}"] = lambda b=b: _with_scaling(
            decoupleq_int_format(b), Scaling(method="affine", group_size=128, scale_format="fp16", affine_iters=8))
    f["fp16"] = lambda: float_table_format("fp16", 5, 10)
    f["bf16"] = lambda: float_table_format("bf16", 8, 7)
    f["e8m0"] = e8m0_format
    f["ue4m3"] = ue4m3_format
    return f  # type: ignore[return-value]


_FIXED = _fixed()

# Representative members of the parametric families, listed by `macforge formats`.
_LISTED_PARAMETRIC = [
    "crd4_normal_rms", "crd4_normal_absmax64", "crd4_laplace_rms", "crd4_laplace_absmax64",
    "crd4_t5_rms", "crd4_t5_absmax64", "crd3_normal_absmax64", "nupes4_a0.8", "nupes4_a0.5",
    "fp8_e3m4", "fp8_e4m3_fnuz", "fp5_e2m2", "egrid3_L12", "egrid4_L16",
]

FORMAT_PATTERNS = {
    "crd<bits>_<normal|laplace|t<nu>>_<rms|absmax<B>>": "cube-root-density LUT format",
    "nupes<bits>_a<exponent>": "NUPES power-law LUT format",
    "fp<bits>_e<E>m<M>[_b<bias>][_<ieee|fn|fnuz|none>]": "minifloat, bits = 1 + E + M; default bias "
    "2^(E-1)-1 (fnuz: 2^(E-1)); default specials: none below 8 bits, fn for E4M3, ieee otherwise",
    "egrid<budget>_L<max_len>": "entropy-coded uniform grid: budget b/elem everything stored, canonical "
    "Huffman codes of at most max_len bits (8-bit symbols, chunk 4096, fp32 step; other parameters: a "
    "TOML [[format]] with family = 'entropy')",
}

_CRD_RE = re.compile(r"^crd(\d)_(normal|laplace|t(\d+(?:\.\d+)?))_(rms|absmax(\d+))$")
_NUPES_RE = re.compile(r"^nupes(\d)_a(\d+(?:\.\d+)?)$")
_EGRID_RE = re.compile(r"^egrid(\d+(?:\.\d+)?)_L(\d+)$")
_FP_RE = re.compile(r"^fp(\d+)_e(\d+)m(\d+)(?:_b(-?\d+))?(?:_(" + "|".join(FP_SPECIALS) + r"))?$")

# user-registered formats by name (register_format / load_formats / MACFORGE_FORMATS)
_USER: dict[str, Format] = {}


def format_names() -> list[str]:
    """Every listed format name (fixed formats, representative parametric members, user formats)."""
    return list(_FIXED) + ["fp32"] + _LISTED_PARAMETRIC + list(_USER)


def user_format_names() -> list[str]:
    return list(_USER)


def get_format(name: str) -> Format:
    """The Format called ``name``; raises ``UnknownNameError`` listing the known names."""
    if not isinstance(name, str):
        raise MacforgeError(f"a format name must be a string, not {type(name).__name__} {name!r}")
    user = _USER.get(name)
    if user is not None:
        return user
    return _builtin(name)


def _default_specials(bits: int, e: int, m: int) -> str:
    if bits < 8:
        return "none"  # OCP MX FP4 / FP6: finite only
    return "fn" if (e, m) == (4, 3) else "ieee"  # OCP E4M3; IEEE 754-style otherwise (E5M2)


def _generic_fp(name: str, m: re.Match[str]) -> Format:
    bits, e, mb = (int(g) for g in m.groups()[:3])
    if bits != 1 + e + mb:
        raise UnknownNameError("format", name, format_names(),
                               f"(fp{bits}_e{e}m{mb}: 1 + E + M = {1 + e + mb}, not {bits})")
    specials = m.group(5) or _default_specials(bits, e, mb)
    dflt_bias = (1 << (e - 1)) if specials == "fnuz" else (1 << (e - 1)) - 1
    bias = int(m.group(4)) if m.group(4) is not None else dflt_bias
    canon = f"fp{bits}_e{e}m{mb}" + (f"_b{bias}" if bias != dflt_bias else "") + (
        f"_{specials}" if specials != _default_specials(bits, e, mb) else "")
    if canon != name:
        raise UnknownNameError("format", name, format_names(), f"(did you mean {canon!r}?)")
    sc = _B64_BF16 if bits <= 6 else Scaling(granularity="tensor", method="absmax", scale_format="fp32")
    return _with_scaling(fp_format(name, e, mb, bias, specials,
                                   source="generic minifloat (OCP OFP8 / MX v1.0 field layout; ml_dtypes naming)"),
                         sc)


@lru_cache(maxsize=None)
def _builtin(name: str) -> Format:
    if name == "fp32":
        return Fp32Format()  # type: ignore[return-value]
    if name in _FIXED:
        return _FIXED[name]()  # type: ignore[operator]
    m = _CRD_RE.match(name)
    if m:
        bits, dist, nu, sc, block = m.groups()
        fmt = crd_format(int(bits), "t" if nu else dist, "rms" if sc == "rms" else "absmax",
                         int(block) if block else 64, float(nu) if nu else None)
        if fmt.name != name:  # canonical spelling only (e.g. t5 not t5.0)
            raise UnknownNameError("format", name, format_names(), f"(did you mean {fmt.name!r}?)")
        return fmt
    m = _NUPES_RE.match(name)
    if m:
        fmt = _with_scaling(nupes_format(int(m.group(1)), float(m.group(2))), _B64_BF16)
        if fmt.name != name:
            raise UnknownNameError("format", name, format_names(), f"(did you mean {fmt.name!r}?)")
        return fmt
    m = _FP_RE.match(name)
    if m:
        return _generic_fp(name, m)
    m = _EGRID_RE.match(name)
    if m:
        budget, max_len = float(m.group(1)), int(m.group(2))
        canon = f"egrid{budget:g}_L{max_len}"
        if canon != name:
            raise UnknownNameError("format", name, format_names(), f"(did you mean {canon!r}?)")
        return entropy_format(name, budget, max_len)
    patterns = "; patterns: " + ", ".join(FORMAT_PATTERNS)
    raise UnknownNameError("format", name, format_names(), patterns)


def _fingerprint(fmt: Any) -> tuple[Any, ...]:
    """Everything that makes two formats behave the same (NaN-safe), for duplicate checks."""
    if not isinstance(fmt, Format):
        return (type(fmt).__name__, getattr(fmt, "name", None))

    def arr(a: np.ndarray | None) -> Any:
        return None if a is None else np.asarray(a).tobytes()

    return (fmt.bits, fmt.kind, arr(fmt.values), arr(fmt.tie_priority), arr(fmt.encodable), fmt.nan_policy,
            fmt.inf_policy, fmt.neg_zero_code, fmt.nan_code, arr(fmt.zp_codes), fmt.zero_point_max,
            fmt.asym_levels, fmt.encoder, fmt.default_scaling, repr(sorted(fmt.params.items())))


def _existing(name: str) -> Any:
    if name in _USER:
        return _USER[name]
    try:
        return _builtin(name)
    except MacforgeError:
        return None


def check_new_format(fmt: Format, *, origin: str = "", pending: Mapping[str, Format] | None = None) -> None:
    """Refuse a second, different definition of a known name (identical ones are fine)."""
    if not isinstance(fmt, Format):
        raise MacforgeError(f"register_format takes a Format or a definition dict, not {type(fmt).__name__}")
    prev_pending = (pending or {}).get(fmt.name)
    prev = prev_pending if prev_pending is not None else _existing(fmt.name)
    if prev is not None and _fingerprint(prev) != _fingerprint(fmt):
        where = f"{origin}: " if origin else ""
        builtin = prev_pending is None and fmt.name not in _USER
        raise MacforgeError(f"{where}format {fmt.name!r} is already defined{' (built in)' if builtin else ''} "
                            "with a different definition; choose another name")


def register_format(fmt: Format | Mapping[str, Any]) -> Format:
    """Make ``fmt`` (a Format, or a definition dict as in a TOML ``[[format]]`` table) known to
    ``get_format`` and so to every consumer. Re-registering an identical definition is a no-op;
    a different definition of a known name is refused."""
    if isinstance(fmt, Mapping):
        from ._userdef import format_from_dict

        fmt = format_from_dict(fmt)
    check_new_format(fmt)  # type: ignore[arg-type]
    from ._userdef import NAME_RE

    if not NAME_RE.match(fmt.name):  # type: ignore[union-attr]
        raise MacforgeError(f"format name must be letters, digits, '_' or '.', starting with a letter, "
                            f"not {fmt.name!r}")  # type: ignore[union-attr]
    if fmt.name in _USER or fmt.name in _FIXED or fmt.name in _LISTED_PARAMETRIC or fmt.name == "fp32":  # type: ignore[union-attr]
        return get_format(fmt.name)  # type: ignore[union-attr]  # identical to one already listed
    _USER[fmt.name] = fmt  # type: ignore[union-attr,index]
    return fmt  # type: ignore[return-value]


def load_default_formats() -> list[Format]:
    """Load the files named by ``MACFORGE_FORMATS`` (``os.pathsep``-separated)."""
    from ._userdef import load_formats

    out: list[Format] = []
    for p in filter(None, os.environ.get(FORMATS_ENV, "").split(os.pathsep)):
        if not Path(p).is_file():
            raise MacforgeError(f"{FORMATS_ENV}: no such format file {p!r}")
        out += load_formats(p)
    return out
