"""Plain-Python references of the golden kernels: slow, readable, independent of numba.

Weight integers are derived here from the Format's *values* (exact rationals), with the integer
unit re-derived from those values (and checked against the spec's), not from the decode table
the kernels use, so a wrong table or a wrong unit is caught too.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

from ..formats import Format, get_format
from ..units import UnitSpec

__all__ = ["ref_weight_int", "ref_product", "ref_reduce", "ref_mac", "ref_dot", "ref_dq_group", "ref_gemm"]

# a value table is "exact" when every value is a multiple of 2^-16 (models.units' max_shift)
_MAX_DENOMINATOR = 1 << 16


def _weight_format(unit: UnitSpec) -> Format:
    wf = unit.weight_format
    return wf if isinstance(wf, Format) else get_format(wf)


@lru_cache(maxsize=None)
def _ref_unit(fmt: Format, lut_bits: int | None) -> tuple[Fraction, bool]:
    """(integer unit, exact) derived from the values as exact rationals: the exact unit is 1 over
    the least common denominator when the integers fit ``lut_bits``; otherwise the LUT step
    max|v| / (2^(lut_bits-1) - 1)."""
    vals = [Fraction(float(v)) for v in fmt.values if v == v]  # NaN codes contribute 0
    den = math.lcm(*(v.denominator for v in vals))
    if den <= _MAX_DENOMINATOR:
        unit = Fraction(1, den)
        lo, hi = min(v / unit for v in vals), max(v / unit for v in vals)
        if lut_bits is None or (-(1 << (lut_bits - 1)) <= lo and hi <= (1 << (lut_bits - 1)) - 1):
            return unit, True
    if lut_bits is None:
        raise AssertionError(f"reference: {fmt.name} has no exact integer form and no lut_bits")
    return max(abs(v) for v in vals) / ((1 << (lut_bits - 1)) - 1), False


def ref_weight_int(unit: UnitSpec, code: int, z: int = 0, lut: Sequence[int] | None = None) -> int:
    """The weight integer of ``code`` at zero point ``z``, from the Format's values (or the
    programmed ``lut``); the integer unit is re-derived here and must equal the spec's."""
    if lut is not None:
        return int(lut[code])
    fmt = _weight_format(unit)
    ref_unit, exact = _ref_unit(fmt, unit.lut_bits if unit.lut != "none" else None)
    if (ref_unit, exact) != (unit.decode.unit, unit.decode.exact):
        raise AssertionError(f"reference: {fmt.name} integer unit {ref_unit} (exact={exact}) differs from "
                             f"the spec's {unit.decode.unit} (exact={unit.decode.exact})")
    val = float(fmt.values[code])
    q = Fraction(0) if val != val else Fraction(val) / ref_unit
    if not exact:
        q = Fraction(round(q))  # quantized LUT: nearest integer, ties to even (exact rationals)
    if fmt.zp_codes is not None and bool(fmt.zp_codes[code]):
        q -= Fraction(z) / ref_unit  # the zero point is an integer in value units
    if q.denominator != 1:
        raise AssertionError(f"reference: {fmt.name} code {code} at z={z} is not a whole number of units")
    return int(q)


def ref_product(unit: UnitSpec, w: int, a: int) -> int:
    """The product the accumulator adds: w·a exactly, or under ``product_round`` the real
    value w·a·unit rounded to whole units (floor, or nearest with ties to even) as rationals."""
    if unit.product_round == "exact":
        return w * a
    v = Fraction(w * a) * unit.decode.unit  # value in whole units
    if unit.product_round == "floor":
        return math.floor(v)
    return round(v)  # Fraction.__round__: half to even


def ref_reduce(s: int, acc_bits: int, overflow: str) -> int:
    half = 1 << (acc_bits - 1)
    if overflow == "saturate":
        return max(-half, min(half - 1, s))
    return (s + half) % (1 << acc_bits) - half


def ref_mac(unit: UnitSpec, w: Sequence[int], a: Sequence[int], en: Sequence[int] | None = None,
            clr: Sequence[int] | None = None, z: Sequence[int] | None = None,
            lut: Sequence[int] | None = None, acc0: int = 0) -> list[int]:
    """A single-lane MAC: ``ref_dot`` with one lane per cycle."""
    return ref_dot(unit, [[x] for x in w], [[x] for x in a], en, clr, z, lut, acc0)


def ref_dot(unit: UnitSpec, w: Sequence[Sequence[int]], a: Sequence[Sequence[int]],
            en: Sequence[int] | None = None, clr: Sequence[int] | None = None,
            z: Sequence[int] | Sequence[Sequence[int]] | None = None, lut: Sequence[int] | None = None,
            acc0: int = 0) -> list[int]:
    """Accumulator after each cycle of a dot unit; ``z`` per cycle (T,) or per lane (T, lanes)."""
    acc = acc0
    out = []
    for t in range(len(w)):
        base = 0 if (clr is not None and clr[t]) else acc
        p = 0
        if en is None or en[t]:
            zt = [0] * len(w[t]) if z is None else _lanes(z[t], len(w[t]))
            p = sum(ref_product(unit, ref_weight_int(unit, int(wi), zl, lut), int(ai))
                    for wi, ai, zl in zip(w[t], a[t], zt))
        acc = ref_reduce(base + p, unit.acc_bits, unit.overflow)
        out.append(acc)
    return out


def _lanes(zt: int | Sequence[int], lanes: int) -> list[int]:
    """A cycle's zero point(s): one shared by every lane, or one per lane."""
    if isinstance(zt, Sequence) or hasattr(zt, "__len__"):
        return [int(x) for x in zt]  # type: ignore[union-attr]
    return [int(zt)] * lanes


def ref_dq_group(unit: UnitSpec, q: Sequence[int], a: Sequence[int], s_fx: Sequence[int],
                 z_fx: Sequence[int], acc0: int = 0) -> list[int]:
    g = unit.group_size
    acc = acc0
    out = []
    for gi in range(len(s_fx)):
        qs = [ref_weight_int(unit, int(c)) for c in q[gi * g:(gi + 1) * g]]
        aa = [int(x) for x in a[gi * g:(gi + 1) * g]]
        y = int(s_fx[gi]) * sum(x * y for x, y in zip(qs, aa)) + int(z_fx[gi]) * sum(aa)
        acc = ref_reduce(acc + y, unit.acc_bits, unit.overflow)
        out.append(acc)
    return out


def ref_gemm(unit: UnitSpec, codes: Sequence[Sequence[int]], acts: Sequence[Sequence[int]],
             zero_points: Sequence[Sequence[int]] | None = None, group_size: int | None = None) -> list[list[int]]:
    out = []
    for arow in acts:
        row = []
        for n, wrow in enumerate(codes):
            acc = 0
            for k, (c, x) in enumerate(zip(wrow, arow)):
                z = 0 if zero_points is None else int(zero_points[n][k // group_size])  # type: ignore[operator]
                acc = ref_reduce(acc + ref_product(unit, ref_weight_int(unit, int(c), z), int(x)),
                                 unit.acc_bits, unit.overflow)
            row.append(acc)
        out.append(row)
    return out
