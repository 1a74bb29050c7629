"""Named formats: fixed names plus parametric families resolved from their name."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from ..errors import UnknownNameError
from ._core import Format
from ._families import (
    crd_format,
    decoupleq_int2_format,
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
from ._tensor import Scaling

__all__ = ["get_format", "format_names", "FORMAT_PATTERNS"]

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
    f["mxfp4"] = lambda: _with_scaling(
        fp_format("mxfp4", 2, 1, 1, "none"), Scaling(group_size=32, method="mx", scale_format="e8m0"),
        kind="fp", description="OCP MXFP4: E2M1 elements, block 32, E8M0 scale "
        "2^(clip(floor(log2 amax) - 2, -127, 127)), RNE saturating to ±6")
    f["mxint8"] = lambda: _with_scaling(
        mxint8_element_format(), Scaling(group_size=32, method="mx", scale_format="e8m0"))
    f["nvfp4"] = lambda: _with_scaling(
        fp_format("nvfp4", 2, 1, 1, "none"), Scaling(group_size=16, method="nv", scale_format="ue4m3"),
        kind="fp", description="NVFP4: E2M1 elements, block 16, UE4M3 block scale "
        "E4M3(amax_b/(6g)), FP32 tensor scale g = amax/(6·448)")
    f["decoupleq_int2"] = lambda: _with_scaling(
        decoupleq_int2_format(), Scaling(method="affine", group_size=128, scale_format="fp16", affine_iters=8))
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
]

FORMAT_PATTERNS = {
    "crd<bits>_<normal|laplace|t<nu>>_<rms|absmax<B>>": "cube-root-density LUT format",
    "nupes<bits>_a<exponent>": "NUPES power-law LUT format",
}

_CRD_RE = re.compile(r"^crd(\d)_(normal|laplace|t(\d+(?:\.\d+)?))_(rms|absmax(\d+))$")
_NUPES_RE = re.compile(r"^nupes(\d)_a(\d+(?:\.\d+)?)$")


def format_names() -> list[str]:
    """Every listed format name (fixed formats and representative parametric members)."""
    return list(_FIXED) + ["fp32"] + _LISTED_PARAMETRIC


@lru_cache(maxsize=None)
def get_format(name: str) -> Format:
    """The Format called ``name``; raises ``UnknownNameError`` listing the known names."""
    if not isinstance(name, str):
        raise UnknownNameError("format", name, format_names())
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
    patterns = "; patterns: " + ", ".join(FORMAT_PATTERNS)
    raise UnknownNameError("format", name, format_names(), patterns)
