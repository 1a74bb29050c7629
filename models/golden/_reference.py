"""Plain-Python references of the golden kernels: slow, readable, independent of numba.

Weight integers are derived here from the Format's *values* (exact rationals) and the unit's
integer unit, not from the decode table the kernels use, so a wrong table is caught too.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

from ..formats import get_format
from ..units import UnitSpec

__all__ = ["ref_weight_int", "ref_reduce", "ref_mac", "ref_dot", "ref_dq_group", "ref_gemm"]


def ref_weight_int(unit: UnitSpec, code: int, z: int = 0, lut: Sequence[int] | None = None) -> int:
    if lut is not None:
        return int(lut[code])
    fmt = get_format(unit.weight_format)
    val = float(fmt.values[code])
    v = Fraction(0) if val != val else Fraction(val)  # NaN codes contribute 0 in an integer MAC
    if fmt.zp_codes is not None and bool(fmt.zp_codes[code]):
        v -= z
    q = v / unit.decode.unit
    if unit.decode.exact:
        if q.denominator != 1:
            raise AssertionError(f"{fmt.name} code {code}: {v} is not a multiple of {unit.decode.unit}")
        return int(q)
    return round(q)  # quantized LUT: round half to even


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
            z: Sequence[int] | None = None, lut: Sequence[int] | None = None, acc0: int = 0) -> list[int]:
    acc = acc0
    out = []
    for t in range(len(w)):
        base = 0 if (clr is not None and clr[t]) else acc
        p = 0
        if en is None or en[t]:
            zt = 0 if z is None else int(z[t])
            p = sum(ref_weight_int(unit, int(wi), zt, lut) * int(ai) for wi, ai in zip(w[t], a[t]))
        acc = ref_reduce(base + p, unit.acc_bits, unit.overflow)
        out.append(acc)
    return out


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
                acc = ref_reduce(acc + ref_weight_int(unit, int(c), z) * int(x), unit.acc_bits, unit.overflow)
            row.append(acc)
        out.append(row)
    return out
