"""Constructors of the format families: integer, dINT, OCP minifloats, LUT formats (NF4,
cube-root-density, NUPES power law), decoupleQ and the scale formats.

Every constructor builds the code→value table; nothing else about a format is hard-coded
elsewhere. Sources are cited in ``source`` and listed by ``macforge formats``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import MacforgeError
from ._core import Format

__all__ = [
    "int_format",
    "int_asym_format",
    "dint4_asym_format",
    "dint4_sym_format",
    "fp_format",
    "e8m0_format",
    "nf4_format",
    "crd_format",
    "crd_values",
    "nupes_format",
    "decoupleq_int2_format",
    "decoupleq_int_format",
    "mxint8_element_format",
    "NF4_VALUES",
    "format_finfo",
]


def _check_bits(bits: int, lo: int, hi: int, what: str) -> None:
    if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not lo <= bits <= hi:
        raise MacforgeError(f"{what} bits must be an integer in {lo}..{hi}, not {bits!r}")


def _twos(bits: int) -> np.ndarray:
    c = np.arange(1 << bits, dtype=np.int64)
    return np.where(c < (1 << (bits - 1)), c, c - (1 << bits))


def _even_priority(int_values: np.ndarray) -> np.ndarray:
    return (np.asarray(int_values, dtype=np.int64) % 2 == 0).astype(np.int64)


def int_format(bits: int) -> Format:
    """Two's-complement integer; code = the bit pattern. Round half to even, saturating."""
    _check_bits(bits, 2, 8, "int")
    v = _twos(bits)
    return Format(
        name=f"int{bits}",
        bits=bits,
        kind="int",
        values=v.astype(np.float64),
        tie_priority=_even_priority(v),
        encodable=np.ones(1 << bits, dtype=bool),
        nan_policy="error",
        inf_policy="saturate",
        description=f"{bits}-bit two's complement integer [{v.min()}, {v.max()}]; absmax scaling "
        f"maps to ±{v.max()} (symmetric use)",
        source="two's complement",
    )


def int_asym_format(bits: int) -> Format:
    """Unsigned integer grid 0..2^b-1 with an integer zero point z: value (q - z)."""
    _check_bits(bits, 2, 8, "int_asym")
    v = np.arange(1 << bits, dtype=np.int64)
    return Format(
        name=f"int{bits}_asym",
        bits=bits,
        kind="int_asym",
        values=v.astype(np.float64),
        tie_priority=_even_priority(v),
        encodable=np.ones(1 << bits, dtype=bool),
        zp_codes=np.ones(1 << bits, dtype=bool),
        zero_point_max=(1 << bits) - 1,
        asym_levels=(1 << bits) - 1,
        description=f"{bits}-bit asymmetric integer: code q in 0..{(1 << bits) - 1}, value (q - z)·s, "
        "integer zero point z per group",
        source="min-max asymmetric quantization (e.g. llm-awq pseudo_quantize_tensor)",
    )


# dINT defaults (PAPERS.md §1.1, which asks for them to be parameters): the denormal value
# 0.5, the authors' two thresholds (|x| < 0.75 -> ±0.5, |x| < 0.25 -> 0), and for Variant A the
# codes of ±0.5 [inferred code assignment 14 / 15].
DINT_DENORMAL = 0.5
DINT_THRESHOLDS = (0.75, 0.25)
DINT_B_MAGNITUDES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def _dint_asym_encode(fmt: Format, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    # The authors' `minmag` quantizer (PAPERS.md §1.1 Variant A): round half to even onto the
    # integer grid clamped to 0..levels-1, then strict-< overrides: |x| < t_half -> sign(x)·d,
    # |x| < t_zero -> 0 (sign(0) = 0, i.e. the zero-point code).
    p = fmt.params
    t_half, t_zero = p["thresholds"]  # type: ignore[misc]
    pos, neg = p["special_codes"]  # type: ignore[misc]
    q = np.clip(np.rint(x) + z, 0, int(p["levels"]) - 1)  # type: ignore[call-overload]
    ax = np.abs(x)
    half = np.where(x > 0, pos, np.where(x < 0, neg, z))
    code = np.where(ax < t_half, half, q)
    code = np.where(ax < t_zero, z, code)
    return code.astype(np.uint8)


def _check_thresholds(thresholds: tuple[float, float], denormal: float) -> tuple[float, float]:
    try:
        t_half, t_zero = (float(t) for t in thresholds)
    except (TypeError, ValueError):
        raise MacforgeError(f"dint thresholds must be two numbers (t_half, t_zero), not {thresholds!r}") from None
    if not (0 < t_zero < t_half <= 1 and t_zero <= denormal <= t_half):
        raise MacforgeError(f"dint thresholds must satisfy 0 < t_zero <= denormal <= t_half <= 1, "
                            f"not t_half={t_half:g}, t_zero={t_zero:g}, denormal={denormal:g}")
    return t_half, t_zero


def _check_denormal(denormal: float) -> float:
    if not (isinstance(denormal, (int, float)) and 0 < float(denormal) < 1):
        raise MacforgeError(f"dint denormal must be a number in (0, 1), not {denormal!r}")
    return float(denormal)


def dint_asym_format(bits: int = 4, *, denormal: float = DINT_DENORMAL,
                     thresholds: tuple[float, float] = DINT_THRESHOLDS,
                     special_codes: tuple[int, int] | None = None, name: str | None = None) -> Format:
    """dINT Variant A: 2^bits - 2 integer codes q with a zero point and two denormal codes ±d.

    ``special_codes`` (default the top two codes) hold +d and -d; the other codes in order are
    q = 0..2^bits-3, value (q - z)·s, s = (max-min)/(2^bits-3).
    """
    _check_bits(bits, 3, 8, "dint_asym")
    d = _check_denormal(denormal)
    t = _check_thresholds(thresholds, d)
    n = 1 << bits
    pos, neg = special_codes if special_codes is not None else (n - 2, n - 1)
    if not all(isinstance(c, (int, np.integer)) and 0 <= c < n for c in (pos, neg)) or pos == neg:
        raise MacforgeError(f"dint special_codes must be two distinct codes in 0..{n - 1}, not {special_codes!r}")
    levels = n - 2
    int_codes = np.array([c for c in range(n) if c not in (pos, neg)])
    v = np.empty(n, dtype=np.float64)
    v[int_codes] = np.arange(levels, dtype=np.float64)
    v[pos], v[neg] = d, -d
    prio = np.zeros(n, dtype=np.int64)
    prio[int_codes] = _even_priority(np.arange(levels))
    zp = np.ones(n, dtype=bool)
    zp[[pos, neg]] = False
    default = (bits == 4 and d == DINT_DENORMAL and t == DINT_THRESHOLDS and (pos, neg) == (14, 15))
    if not (int_codes == np.arange(levels)).all():
        # the encoder writes q directly as the code: integer codes must be 0..levels-1
        raise MacforgeError(f"dint special_codes must be the top two codes ({n - 2}, {n - 1}) or "
                            f"({n - 1}, {n - 2}), not {special_codes!r}")
    return Format(
        name=name or ("dint4_asym" if default else f"dint{bits}_asym"),
        bits=bits,
        kind="dint",
        values=v,
        tie_priority=prio,
        encodable=np.ones(n, dtype=bool),
        zp_codes=zp,
        zero_point_max=levels - 1,
        asym_levels=levels - 1,
        encoder=_dint_asym_encode,
        params={"variant": "asym", "denormal": d, "thresholds": t, "special_codes": (int(pos), int(neg)),
                "levels": levels},
        description=f"dINT{bits} Variant A (authors' code): codes 0..{levels - 1} = q, value (q - z)·s; "
        f"code {pos} = +{d:g}·s, code {neg} = -{d:g}·s (denormals); s = (max-min)/{levels - 1}, "
        f"z = clamp(-round(min/s), 0, {levels - 1}); RNE then |x|<{t[0]:g} -> ±{d:g}, |x|<{t[1]:g} -> 0",
        source="Lee et al., EMNLP 2023 (arXiv 2311.05161), authors' llm-awq fork `minmag` "
        "[PAPERS.md §1.1 A]; code assignment of the denormals inferred",
    )


def dint4_asym_format() -> Format:
    return dint_asym_format(4)


def _dint_sym_priority(mags: np.ndarray) -> np.ndarray:
    # neighbour ties: toward the larger magnitude when one side is not an integer (0.25 -> 0.5,
    # 0.75 -> 1, as Variant A's overrides), integers half to even; zero loses every tie.
    is_int = mags == np.round(mags)
    even = is_int & (np.round(mags) % 2 == 0)
    return np.where(mags == 0, 0, np.where(~is_int, 1, np.where(even, 3, 2))).astype(np.int64)


def dint_sym_format(bits: int = 4, *, magnitudes: tuple[float, ...] | None = None,
                    name: str | None = None) -> Format:
    """dINT Variant B: sign bit + (bits-1)-bit magnitude code into ``magnitudes`` (code 0 = 0)."""
    _check_bits(bits, 3, 8, "dint_sym")
    half = 1 << (bits - 1)
    mags = np.asarray(DINT_B_MAGNITUDES if magnitudes is None else magnitudes, dtype=np.float64)
    if mags.shape != (half,):
        raise MacforgeError(f"dint_sym magnitudes must have {half} entries for {bits} bits, not {mags.size}")
    if not (np.isfinite(mags).all() and mags[0] == 0 and (np.diff(mags) > 0).all()):
        raise MacforgeError("dint_sym magnitudes must start at 0 and be finite and strictly increasing, "
                            f"not {mags.tolist()}")
    prio = _dint_sym_priority(mags)
    default = bits == 4 and tuple(mags) == DINT_B_MAGNITUDES
    mtxt = ", ".join(f"{m:g}" for m in mags)
    return Format(
        name=name or ("dint4_sym" if default else f"dint{bits}_sym"),
        bits=bits,
        kind="dint",
        values=np.concatenate([mags, -mags]),
        tie_priority=np.concatenate([prio, prio - 1]),
        encodable=np.ones(2 * half, dtype=bool),
        params={"variant": "sym", "magnitudes": tuple(float(m) for m in mags)},
        description=f"dINT{bits} Variant B (hardware hypothesis): sign bit + {bits - 1}-bit magnitude code, "
        f"magnitudes {{{mtxt}}}·s, s = absmax/{mags[-1]:g}; ties toward the larger magnitude next "
        f"to a non-integer, integers half to even; code {half} (-0) decodes to 0 and is never produced",
        source="[inferred] PAPERS.md §1.1 Variant B",
    )


def dint4_sym_format() -> Format:
    return dint_sym_format(4)


def _fp_table(ebits: int, mbits: int, bias: int, specials: str) -> tuple[np.ndarray, np.ndarray]:
    """Value table and tie priority of a sign + ebits + mbits minifloat.

    specials: 'ieee' (top exponent = Inf/NaN), 'fn' (only all-ones = NaN, OCP E4M3),
    'fnuz' (finite, no -0: the negative-zero code is the one NaN, as ml_dtypes' float8_*fnuz),
    'none' (finite only, OCP FP4/FP6).
    """
    if specials not in FP_SPECIALS:
        raise MacforgeError(f"minifloat specials must be one of {', '.join(FP_SPECIALS)}, not {specials!r}")
    bits = 1 + ebits + mbits
    codes = np.arange(1 << bits)
    s = codes >> (ebits + mbits)
    e = (codes >> mbits) & ((1 << ebits) - 1)
    m = codes & ((1 << mbits) - 1)
    mag = np.where(
        e == 0,
        (m / (1 << mbits)) * 2.0 ** (1 - bias),
        (1 + m / (1 << mbits)) * 2.0 ** (e.astype(np.float64) - bias),
    )
    v = np.where(s == 1, -mag, mag)
    top = (1 << ebits) - 1
    if specials == "ieee":
        v = np.where((e == top) & (m == 0), np.where(s == 1, -np.inf, np.inf), v)
        v = np.where((e == top) & (m != 0), np.nan, v)
    elif specials == "fn":
        v = np.where((e == top) & (m == (1 << mbits) - 1), np.nan, v)
    elif specials == "fnuz":
        v = np.where(codes == 1 << (bits - 1), np.nan, v)
    prio = (m % 2 == 0).astype(np.int64)
    return v, prio


FP_SPECIALS = ("ieee", "fn", "fnuz", "none")


def check_minifloat(ebits: int, mbits: int, bias: int | None = None) -> int:
    """Validate a minifloat's fields; returns the bias (default IEEE-style 2^(ebits-1) - 1)."""
    for what, v, lo in (("ebits", ebits, 1), ("mbits", mbits, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise MacforgeError(f"minifloat {what} must be an integer >= {lo}, not {v!r}")
    if not 3 <= 1 + ebits + mbits <= 16:
        raise MacforgeError(f"minifloat sign + E{ebits}M{mbits} is {1 + ebits + mbits} bits; supported: 3..16")
    if bias is None:
        return (1 << (ebits - 1)) - 1
    if not isinstance(bias, (int, np.integer)) or isinstance(bias, bool) or not -64 <= bias <= 1 << ebits:
        raise MacforgeError(f"minifloat bias must be an integer in -64..{1 << ebits}, not {bias!r}")
    return int(bias)


_OCP = "OCP 8-bit Floating Point Specification (OFP8) rev 1.0; OCP Microscaling Formats (MX) v1.0"


def fp_format(name: str, ebits: int, mbits: int, bias: int, specials: str, source: str = "") -> Format:
    """Sign + E``ebits``M``mbits`` minifloat with ``bias`` and ``specials`` (see ``_fp_table``)."""
    bias = check_minifloat(ebits, mbits, bias)
    if specials in ("ieee", "fn") and mbits == 0:
        raise MacforgeError(f"minifloat specials {specials!r} need mbits >= 1 (the NaN codes have a "
                            "non-zero mantissa)")
    v, prio = _fp_table(ebits, mbits, bias, specials)
    bits = 1 + ebits + mbits
    has_nan = bool(np.isnan(v).any())
    has_inf = bool(np.isinf(v).any())
    fin = v[np.isfinite(v)]
    pol = "NaN -> NaN code" if has_nan else "NaN -> error"
    ipol = "Inf -> ±Inf code" if has_inf else "Inf -> ±max (saturate)"
    # canonical quiet NaN: sign 0, exponent all ones, mantissa MSB set (E4M3: the only NaN)
    qnan = ((1 << ebits) - 1) << mbits | (1 << (mbits - 1)) if specials == "ieee" else None
    if specials == "fnuz":
        qnan = 1 << (bits - 1)
    return Format(
        name=name,
        bits=bits,
        kind="fp",
        nan_code=qnan if has_nan and specials in ("ieee", "fnuz") else None,
        values=v,
        tie_priority=prio,
        encodable=np.ones(1 << bits, dtype=bool),
        nan_policy="nan_code" if has_nan else "error",
        inf_policy="inf_code" if has_inf else "saturate",
        neg_zero_code=None if specials == "fnuz" else 1 << (bits - 1),
        params={"ebits": ebits, "mbits": mbits, "bias": bias, "specials": specials},
        description=f"E{ebits}M{mbits} minifloat, bias {bias}, max {fin.max():g}; RNE, finite "
        f"overflow saturates to ±max; {pol}; {ipol}; " + ("no -0" if specials == "fnuz" else "-0 kept"),
        source=source or _OCP,
    )


def e8m0_format() -> Format:
    """OCP MX shared scale: 2^(c-127), c = 0..254; c = 255 is NaN. No zero, no sign."""
    c = np.arange(256)
    v = np.where(c == 255, np.nan, 2.0 ** (c.astype(np.float64) - 127))
    return Format(
        name="e8m0",
        bits=8,
        kind="scale",
        values=v,
        tie_priority=(c % 2 == 0).astype(np.int64),
        encodable=np.ones(256, dtype=bool),
        nan_policy="nan_code",
        inf_policy="saturate",
        description="E8M0 power-of-two scale 2^(c-127), c = 0..254, 255 = NaN; nearest value "
        "(linear midpoint 1.5·2^k, ties to even exponent code), saturating; x <= 0 -> 2^-127",
        source=_OCP,
    )


def ue4m3_format() -> Format:
    """Unsigned E4M3 (NVFP4 block scale): the non-negative half of OCP E4M3."""
    v, prio = _fp_table(4, 3, 7, "fn")
    enc = np.arange(256) < 128
    return Format(
        name="ue4m3",
        bits=8,
        kind="scale",
        values=v,
        tie_priority=prio,
        encodable=enc,
        nan_policy="nan_code",
        inf_policy="saturate",
        description="unsigned E4M3 scale (sign bit 0), max 448; RNE, saturating; negative "
        "inputs clamp to 0",
        source="NVIDIA NVFP4 (OCP E4M3 with the sign unused)",
    )


def float_table_format(name: str, ebits: int, mbits: int) -> Format:
    """IEEE-style 16-bit scale formats (fp16, bf16) as a full 65536-entry table."""
    bias = (1 << (ebits - 1)) - 1
    v, prio = _fp_table(ebits, mbits, bias, "ieee")
    return Format(
        name=name,
        bits=16,
        kind="scale",
        values=v,
        tie_priority=prio,
        encodable=np.ones(1 << 16, dtype=bool),
        nan_policy="nan_code",
        inf_policy="inf_code",
        neg_zero_code=1 << 15,
        nan_code=((1 << ebits) - 1) << mbits | (1 << (mbits - 1)),
        description=f"IEEE-style E{ebits}M{mbits} (bias {bias}); RNE; finite overflow saturates "
        "to ±max (scales never overflow to Inf)",
        source="IEEE 754-2008 binary16" if name == "fp16" else "bfloat16 (Google Brain)",
    )


NF4_VALUES = np.array(
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]
)  # fmt: skip


def _lut_format(name: str, values: np.ndarray, kind: str, description: str, source: str,
                params: dict[str, object] | None = None) -> Format:
    n = len(values)
    return Format(
        name=name,
        bits=int(math.log2(n)),
        kind=kind,
        values=np.asarray(values, dtype=np.float64),
        tie_priority=(np.arange(n) % 2 == 0).astype(np.int64),
        encodable=np.ones(n, dtype=bool),
        description=description,
        source=source,
        params=params or {},
    )


def nf4_format() -> Format:
    return _lut_format(
        "nf4", NF4_VALUES, "lut",
        "NormalFloat4: 16 fixed values in [-1, 1] with exact 0; absmax block scaling; nearest "
        "value (ties to the even code)",
        "Dettmers et al., QLoRA (2023), bitsandbytes table [PAPERS.md §5]",
    )


CRD_DISTS = ("normal", "laplace")


def crd_values(bits: int, dist: str, scaling: str, block: int = 64, nu: float | None = None) -> np.ndarray:
    """Cube-root-density table: inverse CDF of the pdf^(1/3) distribution at a probability grid.

    PAPERS.md §2 [paper code]: RMS-scaled data uses p = linspace(0,1,n+2)[1:-1]; block-absmax
    data uses p = linspace(0,1,n) on a distribution truncated to [-1, 1] (so ±1 are values).
    """
    from scipy import stats

    n = 1 << bits
    if scaling == "rms":
        p = np.linspace(0, 1, n + 2)[1:-1]
        if dist == "normal":
            return stats.norm.ppf(p, scale=math.sqrt(3))
        if dist == "laplace":
            return stats.laplace.ppf(p, scale=3 / math.sqrt(2))
        if nu is None:
            raise MacforgeError("crd Student-t tables need nu (degrees of freedom > 2)")
        return stats.t.ppf(p, df=(nu - 2) / 3, scale=math.sqrt(3))
    if scaling != "absmax":
        raise MacforgeError(f"crd scaling must be 'rms' or 'absmax', not {scaling!r}")
    if block < 4:
        raise MacforgeError(f"crd block must be >= 4, not {block}")
    p = np.linspace(0, 1, n)
    lb = math.log(block / math.pi)
    if dist == "normal":
        s = math.sqrt(3) / math.sqrt(2 * lb)
        dist_obj = stats.norm(scale=s)
    elif dist == "laplace":
        dist_obj = stats.laplace(scale=3 / (0.5772 + math.log(block)))
    else:
        if nu is None:
            raise MacforgeError("crd Student-t tables need nu (degrees of freedom > 2)")
        s = (2 * lb) ** ((3 - nu) / (2 * nu)) * block ** (-1 / nu) * math.sqrt(3)
        dist_obj = stats.t(df=(nu - 2) / 3, scale=s)
    lo, hi = dist_obj.cdf(-1.0), dist_obj.cdf(1.0)
    v = dist_obj.ppf(lo + p * (hi - lo))
    v[0], v[-1] = -1.0, 1.0
    return v


def crd_format(bits: int, dist: str, scaling: str, block: int = 64, nu: float | None = None) -> Format:
    _check_bits(bits, 2, 8, "crd")
    if dist.startswith("t"):
        if nu is None or not nu > 2:
            raise MacforgeError(f"crd Student-t needs nu > 2, not {nu!r}")
        dname = f"t{nu:g}"
    elif dist in CRD_DISTS:
        dname = dist
    else:
        raise MacforgeError(f"crd distribution must be normal, laplace or t<nu>, not {dist!r}")
    v = crd_values(bits, "t" if dist.startswith("t") else dist, scaling, block, nu)
    sname = "rms" if scaling == "rms" else f"absmax{block}"
    from ._tensor import Scaling

    scal = Scaling(method="rms" if scaling == "rms" else "absmax",
                   group_size=64 if scaling == "rms" else block, scale_format="bf16")
    fmt = _lut_format(
        f"crd{bits}_{dname}_{sname}", v, "lut",
        f"cube-root-density {dname} LUT, {2**bits} values for {sname} scaling",
        "Orr, Ribar, Luschi 2025 (arXiv 2505.12988), graphcore-research/optimal-weight-formats "
        "[PAPERS.md §2]",
        {"dist": dname, "scaling": sname, "block": block},
    )
    object.__setattr__(fmt, "default_scaling", scal)
    return fmt


def _nupes_encode(fmt: Format, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    # NUPES rounds in the companded domain: q = rne(sign(y)|y|^a), |q| <= 2^(b-1)-1
    a = float(fmt.params["a"])  # type: ignore[arg-type]
    qmax = (1 << (fmt.bits - 1)) - 1
    q = np.clip(np.rint(np.sign(y) * np.abs(y) ** a), -qmax, qmax).astype(np.int64)
    return (q & ((1 << fmt.bits) - 1)).astype(np.uint8)


def nupes_format(bits: int, a: float) -> Format:
    _check_bits(bits, 2, 8, "nupes")
    if not (isinstance(a, (int, float)) and math.isfinite(a) and a > 0):
        raise MacforgeError(f"nupes exponent a must be a positive finite number, not {a!r}")
    q = _twos(bits)
    v = np.sign(q) * np.abs(q).astype(np.float64) ** (1.0 / a)
    fmt = Format(
        name=f"nupes{bits}_a{a:g}",
        bits=bits,
        kind="nupes",
        values=v,
        tie_priority=_even_priority(q),
        encodable=q != q.min(),
        encoder=_nupes_encode,
        description=f"NUPES power-law LUT: value sign(q)|q|^(1/a), a={a:g}, q in "
        f"±{q.max()}; rounding in the power domain q = rne(sign(y)|y|^a)",
        source="Yvinec et al., NUPES (arXiv 2308.05600), operator reconstructed [PAPERS.md §3]",
        params={"a": float(a)},
    )
    return fmt


def decoupleq_int_format(bits: int) -> Format:
    """decoupleQ's ``bits``-bit integers q in [-2^(b-1), 2^(b-1)-1]: ``int_format``'s grid and
    two's complement codes, as an affine (q·s + z) format."""
    _check_bits(bits, 2, 4, "decoupleq")
    v = _twos(bits)
    return replace(
        int_format(bits),
        name=f"decoupleq_int{bits}",
        kind="affine",
        description=f"decoupleQ {bits}-bit integers q in [{int(v.min())}, {int(v.max())}] (two's "
        "complement codes); W = q·s + z with float (FP16) scale s and offset z per output "
        "channel and group",
        source="decoupleQ (arXiv 2404.12759), github bytedance/decoupleQ [PAPERS.md §4]",
    )


def decoupleq_int2_format() -> Format:
    return decoupleq_int_format(2)


def mxint8_element_format() -> Format:
    """MXINT8 element: 8-bit two's complement with an implicit 2^-6 scale (OCP MX v1.0)."""
    q = _twos(8)
    return Format(
        name="mxint8",
        bits=8,
        kind="int",
        values=q / 64.0,
        tie_priority=_even_priority(q),
        encodable=q != -128,
        description="MXINT8: int8 elements ×2^-6 (range ±1.984375, -2 unused: symmetric), "
        "block 32, E8M0 scale 2^(floor(log2 amax)); RNE, saturating",
        source=_OCP,
    )


class Fp32Format:
    """IEEE binary32 scale format. Too wide for a value table: ``values`` is None."""

    name = "fp32"
    bits = 32
    kind = "scale"
    values = None
    default_scaling = None
    nan_policy = "nan_code"
    inf_policy = "inf_code"
    description = "IEEE binary32; RNE from float64 (numpy's cast)"
    source = "IEEE 754-2008 binary32"

    def encode(self, x: np.ndarray | float, zero_point: object = None) -> np.ndarray:
        return np.asarray(x, dtype=np.float64).astype(np.float32).view(np.uint32)

    def decode(self, codes: np.ndarray | int, zero_point: object = None) -> np.ndarray:
        return np.asarray(codes, dtype=np.uint32).view(np.float32).astype(np.float64)

    def bits_per_element(self, scaling: object = None) -> float:
        return 32.0

    def __repr__(self) -> str:
        return "Format('fp32', bits=32, kind='scale')"


def format_finfo(f: "Format | Fp32Format") -> dict[str, object]:
    """finfo-style facts of a format: largest/smallest finite, smallest positive; for a
    minifloat also emax, emin, smallest normal and subnormal (numpy.finfo's names)."""
    if f.values is None:  # fp32
        fi = np.finfo(np.float32)
        return {"max_finite": float(fi.max), "min_finite": float(fi.min), "smallest_positive": float(fi.smallest_subnormal),
                "emax": int(fi.maxexp) - 1, "emin": int(fi.minexp), "smallest_normal": float(fi.smallest_normal),
                "smallest_subnormal": float(fi.smallest_subnormal), "eps": float(fi.eps)}
    v = f.values[np.isfinite(f.values)]
    pos = v[v > 0]
    rec: dict[str, object] = {"max_finite": float(v.max()), "min_finite": float(v.min()),
                           "smallest_positive": float(pos.min()) if pos.size else None,
                           "zero_point_relative": bool(getattr(f, "zp_codes", None) is not None)}
    p = getattr(f, "params", {}) or {}
    if f.kind == "fp" and "ebits" in p:
        e, m, bias = int(p["ebits"]), int(p["mbits"]), int(p["bias"])
        top = (1 << e) - 1
        # the largest exponent field that holds a finite value (IEEE: top is Inf/NaN)
        emax_field = top - 1 if p.get("specials") == "ieee" else top
        rec.update(emax=emax_field - bias, emin=1 - bias, smallest_normal=2.0 ** (1 - bias),
                   smallest_subnormal=2.0 ** (1 - bias - m) if m else None, eps=2.0 ** -m)
    return rec
