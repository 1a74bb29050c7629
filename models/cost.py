"""The analytical cost model: area and energy of a unit per component, as functions of its
spec's widths, with coefficients fitted to synthesis (``fit``); and memory costs from cited
published figures.

Components (features are read off the UnitSpec, never typed in):
- ``multiplier``: partial-product array, weight-integer bits × activation bits, per lane;
- ``product``: the product's final carry-propagate adder, product bits per lane;
- ``shifter``: a minifloat weight's exponent barrel shifter, product bits × log2(positions);
- ``tree``: the lane adder tree, (lanes - 1) adders of about product bits + log2(lanes);
- ``accumulator``: the accumulator adder and overflow logic, acc_bits;
- ``registers``: flip-flops (accumulator, pipeline, LUT storage), one per bit;
- ``decode``: weight decode, one coefficient per decode style (int, dint, lut constant,
  lut programmable read port, zero point).
The fit is a non-negative least-squares solve, so each coefficient reads as "NAND2-eq per
feature unit" (area) or "NAND2 toggles per MAC per feature unit" (energy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import MacforgeError
from .formats import Format, get_format
from .units import UnitSpec, signed_bits

__all__ = [
    "FEATURES",
    "features",
    "CostModel",
    "fit",
    "sram_read_pj_per_64b",
    "dram_pj_per_64b",
    "MEMORY_SOURCES",
    "HOROWITZ_45NM_PJ",
    "sweep_specs",
    "register_bits",
]

FEATURES = ("multiplier", "product", "shifter", "tree", "accumulator", "registers",
            "decode_dint", "decode_lut_const", "decode_lut_prog", "decode_zp", "const")


def _weight_format(spec: UnitSpec) -> Format:
    """The spec's weight Format (a registered name or the Format object itself)."""
    wf = spec.weight_format
    return wf if isinstance(wf, Format) else get_format(wf)


def _multiplier_bits(spec: UnitSpec) -> int:
    """Width of the weight operand of the multiplier array, by decode style: a minifloat
    multiplies its signed significand (sign + 1.m), dINT Variant B a sign + 3-bit magnitude,
    dINT Variant A the signed (q - z), everything else the signed decoded integer."""
    fmt = _weight_format(spec)
    if spec.lut == "none" and fmt.kind == "fp" and "mbits" in fmt.params:
        return int(fmt.params["mbits"]) + 2  # type: ignore[call-overload]
    if spec.lut == "none" and fmt.kind == "dint":
        if fmt.zp_codes is None:
            return fmt.bits  # sign + (bits - 1)-bit magnitude code
        return signed_bits(-fmt.zero_point_max, fmt.zero_point_max)
    lo, hi = spec.weight_int_range
    return signed_bits(lo, hi)


def _shift_positions(spec: UnitSpec) -> int:
    """Positions of the minifloat exponent's barrel shifter (0 for non-FP decodes)."""
    fmt = _weight_format(spec)
    if spec.lut == "none" and fmt.kind == "fp" and "ebits" in fmt.params:
        return (1 << int(fmt.params["ebits"])) - 1  # type: ignore[call-overload]
    return 0


def register_bits(spec: UnitSpec) -> int:
    """Flip-flops the unit needs by construction: accumulator, pipeline stages, LUT storage."""
    bits = spec.acc_bits
    if spec.latency > 1:  # operand / product pipeline: product bits per lane plus en/clr
        per_stage = spec.lanes * spec.product_bits + 2
        bits += (spec.latency - 1) * per_stage
    if spec.lut == "programmable":  # one lut_bits register per code of the weight format
        bits += (1 << _weight_format(spec).bits) * spec.lut_bits
    return bits


def features(spec: UnitSpec) -> dict[str, float]:
    """Feature vector of a unit (see module docstring)."""
    if spec.kind == "dq_group":
        raise MacforgeError("the cost model covers mac and dot units, not dq_group")
    lanes = spec.lanes
    wb, ab = _multiplier_bits(spec), spec.act_bits
    pb = spec.product_bits
    dint = spec.lut == "none" and _weight_format(spec).kind == "dint"  # a LUT unit decodes by table
    shifts = _shift_positions(spec)
    return {
        "multiplier": float(lanes * wb * ab),
        "product": float(lanes * pb),
        "shifter": float(lanes * pb * math.log2(shifts + 1)) if shifts else 0.0,
        "tree": float((lanes - 1) * (pb + math.log2(lanes))) if lanes > 1 else 0.0,
        "accumulator": float(spec.acc_bits),
        "registers": float(register_bits(spec)),
        "decode_dint": float(lanes if dint else 0),
        "decode_lut_const": float(lanes if spec.lut == "constant" else 0),
        "decode_lut_prog": float(lanes * spec.lut_bits if spec.lut == "programmable" else 0),
        "decode_zp": float(lanes if spec.decode.zp_mask is not None else 0),
        "const": 1.0,
    }


@dataclass
class CostModel:
    """Fitted coefficients for one quantity (``nand2_eq`` area or ``energy`` per MAC)."""

    quantity: str
    coefficients: dict[str, float]
    n_points: int
    mean_abs_rel_error: float
    max_abs_rel_error: float
    r2: float
    note: str = ""
    residuals: dict[str, float] = field(default_factory=dict)

    def predict(self, spec: UnitSpec) -> float:
        f = features(spec)
        return float(sum(self.coefficients.get(k, 0.0) * v for k, v in f.items()))

    def breakdown(self, spec: UnitSpec) -> dict[str, float]:
        f = features(spec)
        return {k: self.coefficients.get(k, 0.0) * v for k, v in f.items() if self.coefficients.get(k, 0.0) * v}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit(specs: Sequence[UnitSpec], measured: Sequence[float], quantity: str, per_mac: bool = False) -> CostModel:
    """Non-negative least-squares fit of ``measured`` (one value per spec) on ``features``.

    ``per_mac``: the measured value is per MAC (energy), so each unit's features are divided by
    its lanes before fitting (per-MAC cost of a dot product)."""
    from scipy.optimize import nnls

    if len(specs) != len(measured) or len(specs) < len(FEATURES):
        raise MacforgeError(f"fit needs as many measurements as specs and at least {len(FEATURES)} points, "
                            f"got {len(specs)} specs and {len(measured)} values")
    y = np.asarray(measured, dtype=np.float64)
    if not np.isfinite(y).all():
        raise MacforgeError("measured values contain NaN or Inf")
    x = np.array([[features(s)[k] / (s.lanes if per_mac else 1) for k in FEATURES] for s in specs])
    # scale columns so NNLS is well conditioned; relative-error weighting (divide rows by y)
    w = 1.0 / np.maximum(np.abs(y), 1e-9)
    col = np.maximum(np.abs(x).max(axis=0), 1e-12)
    coef, _ = nnls((x / col) * w[:, None], y * w)
    coef = coef / col
    pred = x @ coef
    rel = (pred - y) / y
    ss_res = float(np.sum((pred - y) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return CostModel(
        quantity=quantity,
        coefficients={k: float(c) for k, c in zip(FEATURES, coef)},
        n_points=len(y),
        mean_abs_rel_error=float(np.mean(np.abs(rel))),
        max_abs_rel_error=float(np.max(np.abs(rel))),
        r2=1.0 - ss_res / ss_tot,
        residuals={s.name: float(r) for s, r in zip(specs, rel)},
    )


# --------------------------------------------------------------------------- memory, published
HOROWITZ_45NM_PJ = {  # Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm (PAPERS.md §6)
    "int8_add": 0.03, "int32_add": 0.1, "int8_mult": 0.2, "int32_mult": 3.1,
    "fp16_add": 0.4, "fp16_mult": 1.1, "fp32_add": 0.9, "fp32_mult": 3.7,
}
_SRAM_POINTS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))  # bytes, pJ / 64-bit read
MEMORY_SOURCES = {
    "sram": "Horowitz ISSCC 2014 (45 nm): 64-bit SRAM read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); "
            "log-log interpolation between, extrapolation beyond",
    "dram": "Horowitz ISSCC 2014: DRAM 1.3-2.6 nJ per 64 bits (midpoint 1.95 nJ); "
            "Accelergy LPDDR4 reference: 512 pJ per 64 bits",
}


def sram_read_pj_per_64b(size_bytes: float) -> float:
    """Energy of a 64-bit SRAM read at 45 nm by array size (log-log interpolation)."""
    if not (isinstance(size_bytes, (int, float)) and size_bytes > 0 and math.isfinite(size_bytes)):
        raise MacforgeError(f"SRAM size must be a positive number of bytes, not {size_bytes!r}")
    xs = np.log([p[0] for p in _SRAM_POINTS])
    ys = np.log([p[1] for p in _SRAM_POINTS])
    lx = math.log(size_bytes)
    if lx <= xs[0]:
        slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        return float(math.exp(ys[0] + slope * (lx - xs[0])))
    if lx >= xs[-1]:
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return float(math.exp(ys[-1] + slope * (lx - xs[-1])))
    return float(math.exp(np.interp(lx, xs, ys)))


def dram_pj_per_64b(kind: str = "ddr") -> float:
    """DRAM access energy per 64 bits: 'ddr' (Horowitz midpoint) or 'lpddr4' (Accelergy)."""
    table = {"ddr": 1950.0, "lpddr4": 512.0}
    if kind not in table:
        raise MacforgeError(f"unknown DRAM kind {kind!r}; known: {', '.join(table)}")
    return table[kind]


# --------------------------------------------------------------------------- the fitting sweep
SWEEP_WEIGHT_BITS = (2, 3, 4, 6, 8)
SWEEP_ACT_BITS = (4, 6, 8)
SWEEP_ACC_BITS = (16, 24, 32)
SWEEP_LANES = (1, 4, 16)


def sweep_specs(weight_bits: Sequence[int] = SWEEP_WEIGHT_BITS, act_bits: Sequence[int] = SWEEP_ACT_BITS,
                acc_bits: Sequence[int] = SWEEP_ACC_BITS, lanes: Sequence[int] = SWEEP_LANES) -> list[UnitSpec]:
    """INT×INT units over the sweep grid (combinations whose accumulator cannot hold one
    result are skipped)."""
    out = []
    for wb in weight_bits:
        for ab in act_bits:
            for acc in acc_bits:
                for ln in lanes:
                    kind = "mac" if ln == 1 else "dot"
                    name = f"sweep_{kind}{ln}_int{wb}xint{ab}_acc{acc}"
                    try:
                        out.append(UnitSpec(name=name, kind=kind, weight_format=f"int{wb}",  # type: ignore[arg-type]
                                            act_format=f"int{ab}", lanes=ln, acc_bits=acc))
                    except MacforgeError:
                        continue
    return out
