"""Golden-model review (issue 7 §3, §4): argument validation up front with one-line errors,
Format objects accepted by the references, narrow accumulators that really overflow and really
clamp, per-lane zero points in the reference, and an independent oracle for quantized LUTs."""

from __future__ import annotations

import zlib
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from models import golden
from models.errors import MacforgeError
from models.formats import get_format
from models.units import (
    COEF_BITS,
    FRAC_BITS,
    LUT_BITS,
    UnitSpec,
    get_unit,
    signed_bits,
    weight_decode,
)


def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and msg
    return msg


# ------------------------------------------------------------------ argument validation
def test_mac_wrong_length_z() -> None:
    with pytest.raises(MacforgeError) as ei:
        golden.mac_dint4_asym_xint8([1, 2, 3], [1, 2, 3], z=[1, 2])
    assert _one_line(ei.value) == "z has shape (2,), expected () or (3,)"


def test_dot_wrong_shape_z() -> None:
    u = get_unit("dot4_dint4_asym_xint8")
    w = np.zeros((5, 4), dtype=int)
    a = np.zeros((5, 4), dtype=int)
    for z, shape in [(np.zeros(6, int), "(6,)"), (np.zeros((5, 3), int), "(5, 3)"),
                     (np.zeros((1, 5, 4), int), "(1, 5, 4)")]:
        with pytest.raises(MacforgeError) as ei:
            golden.dot(u, w, a, z=z)
        assert _one_line(ei.value) == f"z has shape {shape}, expected (), (5,) or (5, 4)"
    # the accepted shapes: scalar, per cycle, per lane
    for z in (3, np.full(5, 3), np.full((5, 4), 3)):
        assert golden.dot(u, w + 1, a + 1, z=z).shape == (5,)


@pytest.mark.parametrize("lut_bits", [0, 1, 17, 26, 40, 70, 2.5, True, "8"])
def test_gemm_lut_bits_validated(lut_bits: object) -> None:
    """lut_bits=1 was a ZeroDivisionError, 0 a negative shift, 26/40 a bare AssertionError, 70
    an OverflowError; the range is models.units.LUT_BITS."""
    codes = np.zeros((2, 4), dtype=np.uint8)
    acts = np.zeros((1, 4), dtype=np.int8)
    with pytest.raises(MacforgeError) as ei:
        golden.gemm(codes, acts, "nf4", lut_bits=lut_bits)  # type: ignore[arg-type]
    lo, hi = LUT_BITS
    assert _one_line(ei.value) == f"lut_bits must be an integer in {lo}..{hi}, not {lut_bits!r}"


def test_gemm_widest_lut_is_exact() -> None:
    """lut_bits at the top of the range: the GEMM equals the in-order reference."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 16, (3, 40)).astype(np.uint8)
    acts = rng.integers(-128, 128, (2, 40)).astype(np.int8)
    b = LUT_BITS[1]
    got = golden.gemm(codes, acts, "nf4", acc_bits=40, lut_bits=b)
    spec = UnitSpec(name="ref", kind="mac", weight_format="nf4", lut="constant", lut_bits=b, acc_bits=40)
    np.testing.assert_array_equal(got, golden.ref_gemm(spec, codes.tolist(), acts.tolist()))


@pytest.mark.parametrize(("kw", "what", "value"), [
    ({"coef_bits": 70, "frac_bits": 12}, "coef_bits", 70),
    ({"coef_bits": 1, "frac_bits": 0}, "coef_bits", 1),
    ({"coef_bits": 16.0, "frac_bits": 0}, "coef_bits", 16.0),
    ({"coef_bits": 16, "frac_bits": -1}, "frac_bits", -1),
    ({"coef_bits": 16, "frac_bits": 2.5}, "frac_bits", 2.5),
    ({"coef_bits": 16, "frac_bits": 70}, "frac_bits", 70),
])
def test_to_fixed_validated(kw: dict[str, object], what: str, value: object) -> None:
    """coef_bits=70 was an OverflowError, frac_bits=-1 a negative shift; ranges from models.units."""
    with pytest.raises(MacforgeError) as ei:
        golden.to_fixed([0.5], **kw)  # type: ignore[arg-type]
    lo, hi = COEF_BITS if what == "coef_bits" else FRAC_BITS
    assert _one_line(ei.value) == f"{what} must be an integer in {lo}..{hi}, not {value!r}"


def test_to_fixed_widest_saturates_exactly() -> None:
    c, f = COEF_BITS[1], FRAC_BITS[1]
    v = golden.to_fixed([2.0**-3, -3 * 2.0**-4, 0.5, 1e30, -1e30], c, f)
    hi, lo = (1 << (c - 1)) - 1, -(1 << (c - 1))
    np.testing.assert_array_equal(v, [1 << (f - 3), -3 << (f - 4), min(1 << (f - 1), hi), hi, lo])


def test_other_arguments_validated() -> None:
    with pytest.raises(MacforgeError) as ei:
        golden.mac_int8xint8([1], [1], acc0=1.5)
    assert _one_line(ei.value) == "acc0 must be an integer, not 1.5"
    with pytest.raises(MacforgeError) as ei:
        golden.gemm(np.zeros((2, 4), np.uint8), np.zeros((1, 4), np.int8), "int4_asym",
                    zero_points=np.zeros((2, 2), int), group_size=2.0)  # type: ignore[arg-type]
    assert _one_line(ei.value) == "group_size must be a positive integer, not 2.0"


# ------------------------------------------------------------------ Format objects
def test_ref_mac_accepts_a_format_object() -> None:
    """golden.mac takes a UnitSpec built on a Format object; so must the reference, including a
    Format registered under no name."""
    rng = np.random.default_rng(3)
    for fmt in (get_format("int4"), replace(get_format("dint4_sym"), name="my_dint4")):
        u = UnitSpec(name="custom", kind="mac", weight_format=fmt)  # type: ignore[arg-type]
        w = rng.integers(0, 16, 200)
        a = rng.integers(-128, 128, 200)
        np.testing.assert_array_equal(golden.mac(u, w, a), golden.ref_mac(u, w, a))
        codes = rng.integers(0, 16, (2, 16)).astype(np.uint8)
        acts = rng.integers(-128, 128, (2, 16)).astype(np.int8)
        np.testing.assert_array_equal(golden.gemm(codes, acts, fmt), golden.ref_gemm(u, codes.tolist(),
                                                                                      acts.tolist()))
        # a spec holding the Format object itself (UnitSpec stores the registered name; the
        # reference must not depend on that)
        raw = replace(u)
        object.__setattr__(raw, "weight_format", fmt)
        np.testing.assert_array_equal(golden.mac(raw, w, a), golden.ref_mac(raw, w, a))


# ------------------------------------------------------------------ per-lane z in ref_dot
def test_ref_dot_per_lane_zero_points() -> None:
    u = get_unit("dot4_dint4_asym_xint8")
    rng = np.random.default_rng(4)
    t = 300
    w = rng.integers(0, 16, (t, 4))
    a = rng.integers(-128, 128, (t, 4))
    z = rng.integers(0, 14, (t, 4))
    got = golden.dot(u, w, a, z=z)
    np.testing.assert_array_equal(got, golden.ref_dot(u, w.tolist(), a.tolist(), z=z.tolist()))
    # and against the products summed by hand
    p = golden.products(u, w, a, z=z)
    np.testing.assert_array_equal(got, np.cumsum(p.sum(axis=1)))
    # per-lane z differs from using lane 0's z for every lane
    assert (got != golden.dot(u, w, a, z=z[:, 0])).any()


# ------------------------------------------------------------------ narrow accumulators
GEMM_CASES = [("int8", None), ("int4", None), ("dint4_sym", None), ("dint4_asym", 8), ("fp4_e2m1", None),
              ("int4_asym", 8)]


def _max_weight_code(fmt_name: str) -> int:
    """The code whose decoded integer (at zero point 0) is largest."""
    table, _, _ = weight_decode(fmt_name).as_arrays()
    return int(np.argmax(table))


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize(("fmt", "group"), GEMM_CASES)
def test_gemm_narrow_accumulator_really_overflows(fmt: str, group: int | None, overflow: str) -> None:
    """Rows built to overflow: all products at the positive extreme (the exact sum leaves the
    range), and the positive extreme then the negative one (a saturating accumulator clamps and
    comes back down: the in-order result differs from clamping the exact sum)."""
    f = get_format(fmt)
    dec = weight_decode(f)
    wlo, whi = dec.int_range()
    need = signed_bits(min(wlo * 127, whi * -128), max(whi * 127, wlo * -128))
    acc_bits = need + 2
    m, n, k = 4, 3, 64
    rng = np.random.default_rng(zlib.crc32(f"{fmt}-{overflow}".encode()))
    codes = rng.integers(0, 1 << f.bits, (n, k)).astype(np.uint8)
    codes[0] = _max_weight_code(fmt)
    acts = rng.integers(-128, 128, (m, k)).astype(np.int8)
    acts[0] = 127
    acts[1, : k // 2], acts[1, k // 2:] = 127, -128
    zp = None
    if group:
        zp = rng.integers(0, f.zero_point_max + 1, (n, k // group))
        zp[0] = 0
    got = golden.gemm(codes, acts, f, acc_bits=acc_bits, overflow=overflow, zero_points=zp, group_size=group)
    exact = golden.gemm(codes, acts, f, acc_bits=62, zero_points=zp, group_size=group)
    spec = UnitSpec(name="ref", kind="mac", weight_format=fmt, acc_bits=acc_bits, overflow=overflow)
    want = golden.ref_gemm(spec, codes.tolist(), acts.tolist(), None if zp is None else zp.tolist(), group)
    np.testing.assert_array_equal(got, np.array(want))
    assert got[0, 0] != exact[0, 0], "the all-positive row must leave the accumulator range"
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    if overflow == "saturate":
        assert got[0, 0] == hi
        assert got[1, 0] != np.clip(exact[1, 0], lo, hi), "clamped, then came back down"
        first = _first_half(codes, acts, f, zp, group)  # all products positive: clamps at hi
        assert first > hi
        assert got[1, 0] == max(lo, min(hi, first) + (exact[1, 0] - first))  # then all negative
    else:
        assert got[0, 0] == (exact[0, 0] - lo) % (1 << acc_bits) + lo


def _first_half(codes: np.ndarray, acts: np.ndarray, f, zp, group) -> int:  # type: ignore[no-untyped-def]
    """Exact sum of row 1 × column 0 over the first half of K (all +127 activations)."""
    k = codes.shape[1] // 2
    z = None if zp is None else zp[:, : k // group]
    return int(golden.gemm(codes[:, :k], acts[1:2, :k], f, acc_bits=62, zero_points=z,
                           group_size=group)[0, 0])


def test_dot_saturate_clamps() -> None:
    """A saturating dot accumulator that clamps at both ends; numba kernel == reference, and the
    result differs from the exact running sum."""
    u = get_unit("dot4_int4xint8", overflow="saturate", acc_bits=14)
    t = 400
    w = np.full((t, 4), 7)
    a = np.empty((t, 4), dtype=int)
    a[:100], a[100:300], a[300:] = 127, -128, 127  # up to +max, down to -min, up again
    en = np.ones(t, dtype=np.uint8)
    got = golden.dot(u, w, a, en=en)
    np.testing.assert_array_equal(got, golden.ref_dot(u, w, a, en))
    hi, lo = (1 << 13) - 1, -(1 << 13)
    assert (got == hi).any() and (got == lo).any()
    exact = np.cumsum((7 * a).sum(axis=1))
    assert (got != exact).any()
    # after clamping at lo, climbing 100 cycles of 4·7·127 ends at lo + 100·3556 clamped to hi
    assert got[-1] == min(hi, lo + 100 * 4 * 7 * 127)


# ------------------------------------------------------------------ quantized LUT decode
def _oracle_lut(values: np.ndarray, lut_bits: int) -> list[int]:
    """Independent oracle: unit = max|v| / (2^(b-1) - 1) as an exact rational; each entry is
    the integer k in the signed range nearest to v / unit (ties: even k), by brute force."""
    top = (1 << (lut_bits - 1)) - 1
    vals = [Fraction(float(v)) for v in values]
    unit = max(abs(v) for v in vals) / top
    out = []
    for v in vals:
        best = min(range(-top - 1, top + 1), key=lambda k: (abs(v - k * unit), k % 2))
        out.append(best)
    return out


@pytest.mark.parametrize("fmt", ["nf4", "crd4_normal_absmax64", "crd3_laplace_absmax64", "nupes4_a0.8"])
@pytest.mark.parametrize("lut_bits", [4, 6, 8])
def test_quantized_lut_decode_against_oracle(fmt: str, lut_bits: int) -> None:
    f = get_format(fmt)
    want = _oracle_lut(f.values, lut_bits)
    u = UnitSpec(name="q", kind="mac", weight_format=fmt, lut="constant", lut_bits=lut_bits)
    assert not u.decode.exact
    codes = np.arange(1 << f.bits)
    np.testing.assert_array_equal(golden.products(u, codes, np.ones_like(codes)), want)
    assert [golden.ref_weight_int(u, int(c)) for c in codes] == want
    # the quantized LUT is within half a step of the true values, and hits ±top at the extreme
    unit = float(u.decode.unit)
    assert np.abs(np.array(want) * unit - f.values).max() <= unit / 2 * (1 + 1e-12)
    assert max(abs(x) for x in want) == (1 << (lut_bits - 1)) - 1


def test_ref_weight_int_catches_a_wrong_table() -> None:
    """The reference derives weight integers from the Format's values, not from the table the
    kernels use: a spec whose decode table is off by one entry disagrees with it."""
    u = get_unit("mac_lut4c_nf4xint8")
    bad = list(u.decode.table)
    bad[3] += 1
    u_bad = replace(u)
    object.__setattr__(u_bad, "decode", replace(u.decode, table=tuple(bad)))
    codes = np.arange(16)
    assert (golden.products(u_bad, codes, np.ones(16, int)) != [golden.ref_weight_int(u_bad, c)
                                                              for c in range(16)]).any()
