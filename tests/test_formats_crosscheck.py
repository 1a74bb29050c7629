"""FP element formats and scale formats, bit-exact against ml_dtypes and gfloat (PAPERS.md §5).

Two reference libraries, two jobs:

* ml_dtypes (and numpy's float16) is an independent *cast* implementation. It does not saturate
  finite overflow in the formats that have Inf/NaN codes (overflow -> Inf or NaN), so it is
  compared on in-range inputs only. Its float64 -> small-format casts go through float32 (a
  double rounding), so it is fed float32 inputs only.
* gfloat's ``round_ndarray(..., sat=True)`` + ``encode_ndarray`` is a saturating RNE rounder
  that works exactly on float64: it is compared on everything, overflow included, with float64
  near-tie inputs that float32 cannot express.

Our formats saturate finite overflow to ±max (see each format's ``description``).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
import pytest
from gfloat import decode_ndarray, encode_ndarray, round_ndarray
from gfloat.formats import (
    format_info_bfloat16,
    format_info_binary16,
    format_info_ocp_e2m1,
    format_info_ocp_e2m3,
    format_info_ocp_e3m2,
    format_info_ocp_e4m3,
    format_info_ocp_e5m2,
    format_info_ocp_e8m0,
)
from gfloat.types import Domain, FormatInfo

from models.errors import MacforgeError
from models.formats import get_format

N_RANDOM = 1 << 20  # float32 inputs per format (ml_dtypes and gfloat)
N_RANDOM64 = 1 << 18  # extra float64 near-tie inputs per format (gfloat, numpy float16)


@dataclass(frozen=True)
class Case:
    name: str  # our format
    ml: type  # reference numpy dtype (ml_dtypes or numpy)
    gf: FormatInfo
    mbits: int
    signed: bool = True
    ml_saturates: bool = False  # ml_dtypes saturates overflow (formats without Inf/NaN codes)
    ml_from_float64: bool = False  # the reference cast rounds float64 correctly (numpy float16)

    @property
    def code_dtype(self) -> type:
        return np.uint16 if self.gf.k == 16 else np.uint8


CASES = [
    Case("fp8_e4m3", ml_dtypes.float8_e4m3fn, format_info_ocp_e4m3, 3),
    Case("fp8_e5m2", ml_dtypes.float8_e5m2, format_info_ocp_e5m2, 2),
    Case("fp6_e2m3", ml_dtypes.float6_e2m3fn, format_info_ocp_e2m3, 3, ml_saturates=True),
    Case("fp6_e3m2", ml_dtypes.float6_e3m2fn, format_info_ocp_e3m2, 2, ml_saturates=True),
    Case("fp4_e2m1", ml_dtypes.float4_e2m1fn, format_info_ocp_e2m1, 1, ml_saturates=True),
    Case("e8m0", ml_dtypes.float8_e8m0fnu, format_info_ocp_e8m0, 0, signed=False),
    Case("ue4m3", ml_dtypes.float8_e4m3fn, format_info_ocp_e4m3, 3, signed=False),
    Case("fp16", np.float16, format_info_binary16, 10, ml_from_float64=True),
    Case("bf16", ml_dtypes.bfloat16, format_info_bfloat16, 7),
]
IDS = [c.name for c in CASES]

# e8m0 has no zero and no subnormals: gfloat's round leaves x < 2^-127 unrepresentable (it returns
# x itself), so gfloat is compared from 2^-127 up. ml_dtypes rounds exact ties 1.5·2^k up where we
# (and gfloat) go to the even exponent code, and sends every float32 subnormal in (2^-127, 2^-126)
# to 2^-126, so it is compared on float32 normals without the exact ties.
# See test_e8m0_zero_negative_ties_and_tiny.
E8M0_MIN = 2.0**-127
E8M0_ML_FLOOR = 2.0**-126


def _is_e8m0_tie(x: np.ndarray) -> np.ndarray:
    m, _ = np.frexp(x)
    return m == 0.75


# ---------------------------------------------------------------------------- helpers
def _ml_encode(case: Case, x: np.ndarray) -> np.ndarray:
    src = x if case.ml_from_float64 else x.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return src.astype(case.ml).view(case.code_dtype).astype(np.int64)


def _gf_encode(case: Case, x: np.ndarray) -> np.ndarray:
    r = round_ndarray(case.gf, np.asarray(x, dtype=np.float64), sat=True)
    return encode_ndarray(case.gf, r).astype(np.int64)


def _ours(case: Case, x: np.ndarray) -> np.ndarray:
    return get_format(case.name).encode(x).astype(np.int64)


def _mags(case: Case) -> np.ndarray:
    """Distinct finite non-negative values of the format, from gfloat's decoder."""
    v = decode_ndarray(case.gf, np.arange(1 << case.gf.k, dtype=np.int64))
    v = v[np.isfinite(v) & (v >= 0)]
    return np.unique(v)


def _overflow_boundary(case: Case) -> float:
    """Midpoint between max and the next value a wider exponent range would give (RNE's
    overflow edge)."""
    top = float(case.gf.max)
    return top + 2.0 ** (np.floor(np.log2(top)) - case.mbits) / 2


def _nudge(x: np.ndarray, ulps: np.ndarray) -> np.ndarray:
    """Move positive floats by ``ulps`` units in the last place of their own dtype."""
    it = np.int32 if x.dtype == np.float32 else np.int64
    return (x.view(it) + ulps.astype(it)).view(x.dtype)


def _inputs(case: Case, dtype: type, n: int, seed: int) -> np.ndarray:
    """Exact values, exact ties, their ±1..3-ulp neighbours, overflow, tiny values, log-uniform.

    All values are exactly representable in ``dtype``.
    """
    rng = np.random.default_rng(seed)
    mags = _mags(case)
    mids = (mags[:-1] + mags[1:]) / 2  # exact ties between neighbours (exact in float32 too)
    edge = _overflow_boundary(case)
    smallest = mags[mags > 0][0]
    big = float(np.finfo(np.float32).max)
    special = np.concatenate([
        mags, mids, [edge, min(2 * edge, big), min(1e30, big), big, smallest / 2, smallest / 4,
                     1e-30, 1e-44],
    ]).astype(dtype)
    special = special[special > 0]
    around = np.concatenate([_nudge(special, np.full(special.size, k))
                             for k in (-3, -2, -1, 1, 2, 3)])
    around = around[np.isfinite(around)]
    n_log = n // 2
    lo, hi = np.log2(smallest) - 4, min(np.log2(edge) + 3, np.log2(big))
    loguni = (2.0 ** rng.uniform(lo, hi, n_log)).astype(dtype)
    idx = rng.integers(0, mids.size, n - n_log)
    near = _nudge(mids.astype(dtype)[idx], rng.integers(-3, 4, n - n_log))
    x = np.concatenate([special, around, loguni, near])
    if case.signed:
        x = np.concatenate([x, -special, -around])
        x = np.where(rng.random(x.size) < 0.5, -x, x)
        x = np.concatenate([x, [0.0, -0.0]])
    else:
        x = np.concatenate([x, [0.0]])
    assert np.isfinite(x).all()
    return x.astype(np.float64)


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case_inputs(request: pytest.FixtureRequest) -> tuple[Case, np.ndarray, np.ndarray]:
    case: Case = request.param
    seed = CASES.index(case)
    x32 = _inputs(case, np.float32, N_RANDOM, seed)
    x64 = _inputs(case, np.float64, N_RANDOM64, 100 + seed)
    return case, x32, x64


def _assert_codes(ours: np.ndarray, ref: np.ndarray, x: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(ours != ref)
    if bad.size:
        i = bad[:5]
        pytest.fail(f"{what}: {bad.size} mismatches, e.g. x={x[i].tolist()} "
                    f"ours={ours[i].tolist()} ref={ref[i].tolist()}")


# ---------------------------------------------------------------------------- value tables
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_code_value(case: Case) -> None:
    codes = np.arange(1 << case.gf.k, dtype=np.int64)
    ours = get_format(case.name).values
    with np.errstate(invalid="ignore"):  # NaN codes
        ml = codes.astype(case.code_dtype).view(case.ml).astype(np.float64)
    gf = decode_ndarray(case.gf, codes)
    np.testing.assert_array_equal(ours, ml)
    np.testing.assert_array_equal(ours, gf)
    zero = ours == 0
    assert (np.signbit(ours[zero]) == np.signbit(ml[zero])).all()
    assert (np.signbit(ours[zero]) == np.signbit(gf[zero])).all()


@pytest.mark.parametrize("name", ["fp4_e2m1", "mxfp4", "nvfp4"])
def test_mx_nv_elements_are_e2m1(name: str) -> None:
    """Decode and encode of the E2M1 element against ml_dtypes (an independent cast, which
    saturates for FP4): every value, every exact tie, ±1 ulp around them, -0, overflow."""
    codes = np.arange(16, dtype=np.uint8)
    np.testing.assert_array_equal(get_format(name).values,
                                  codes.view(ml_dtypes.float4_e2m1fn).astype(np.float64))
    mags = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float32)
    ties = (mags[:-1] + mags[1:]) / 2
    base = np.concatenate([mags, ties, [7.0, 100.0, 0.2, 1e-30]]).astype(np.float32)
    near = np.concatenate([np.nextafter(base, np.float32(np.inf)), np.nextafter(base, np.float32(0))])
    x = np.concatenate([base, near, np.linspace(-7, 7, 1001, dtype=np.float32)])
    x = np.concatenate([x, -x])
    assert np.isin(ties, x).all() and (np.signbit(x) & (x == 0)).any()
    ref = x.astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
    _assert_codes(get_format(name).encode(x.astype(np.float64)).astype(np.int64), ref.astype(np.int64),
                  x, f"{name} encode vs ml_dtypes float4_e2m1fn")


# ---------------------------------------------------------------------------- encoding
def test_inputs_cover_ties_and_overflow(case_inputs: tuple[Case, np.ndarray, np.ndarray]) -> None:
    """The generated inputs really contain exact ties, subnormals, signed zeros and overflow."""
    case, x32, x64 = case_inputs
    assert x32.size >= 10**6
    mags = _mags(case)
    mids = (mags[:-1] + mags[1:]) / 2
    assert np.isin(mids, np.abs(x32)).all()
    assert np.isin(mids, np.abs(x64)).all()
    assert (np.abs(x32) > _overflow_boundary(case)).any()
    if case.signed:
        assert ((x32 == 0) & np.signbit(x32)).any() and ((x32 == 0) & ~np.signbit(x32)).any()
    if case.name != "e8m0":  # formats with subnormals
        sub = mags[(mags > 0) & (mags < 2.0 ** (1 - case.gf.bias))]
        assert sub.size and np.isin(sub, np.abs(x32)).all()


def test_encode_vs_ml_dtypes(case_inputs: tuple[Case, np.ndarray, np.ndarray]) -> None:
    case, x32, x64 = case_inputs
    xs = [x32, x64] if case.ml_from_float64 else [x32]
    for x in xs:
        keep = np.ones(x.shape, dtype=bool)
        if not case.ml_saturates:
            keep &= np.abs(x) < _overflow_boundary(case)
        if case.name == "e8m0":
            keep &= (x >= E8M0_ML_FLOOR) & ~_is_e8m0_tie(x)
        if not case.signed:
            keep &= x >= 0
        x = x[keep]
        _assert_codes(_ours(case, x), _ml_encode(case, x), x, f"{case.name} vs {case.ml.__name__}")


def test_encode_vs_gfloat_saturating(case_inputs: tuple[Case, np.ndarray, np.ndarray]) -> None:
    case, x32, x64 = case_inputs
    for x in (x32, x64):
        if case.name == "e8m0":
            x = x[x >= E8M0_MIN]
        if not case.signed:
            x = x[x >= 0]
        _assert_codes(_ours(case, x), _gf_encode(case, x), x, f"{case.name} vs gfloat sat=True")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nan_and_inf(case: Case) -> None:
    """NaN -> a NaN code where the format has one (else MacforgeError); ±Inf -> ±Inf code where
    the format has one, else saturation to ±max like gfloat's ``sat=True``."""
    fmt = get_format(case.name)
    has_nan = case.gf.num_nans > 0
    x = np.array([np.nan, -np.nan])
    if has_nan:
        assert np.isnan(fmt.decode(fmt.encode(x))).all()
        assert np.isnan(case.ml(np.float32(np.nan)).astype(np.float64))
    else:
        with pytest.raises(MacforgeError, match="NaN"):
            fmt.encode(x)
    inf = np.array([np.inf, -np.inf]) if case.signed else np.array([np.inf])
    got = fmt.encode(inf).astype(np.int64)
    if case.gf.domain == Domain.Extended:
        # gfloat without saturation and ml_dtypes both keep Inf
        ref_gf = encode_ndarray(case.gf, round_ndarray(case.gf, inf, sat=False)).astype(np.int64)
        ref_ml = _ml_encode(case, inf)
        np.testing.assert_array_equal(got, ref_gf)
        np.testing.assert_array_equal(got, ref_ml)
        assert np.isinf(fmt.decode(got)).all()
    else:
        np.testing.assert_array_equal(got, _gf_encode(case, inf))
        np.testing.assert_array_equal(fmt.decode(got), np.sign(inf) * case.gf.max)


def test_ml_dtypes_small_formats_saturate_and_nan_to_negzero() -> None:
    """ml_dtypes 0.6 saturates overflow for FP4/FP6 (no Inf/NaN codes), like us, but casts NaN to
    -0; we refuse NaN for these formats (MacforgeError) instead of inventing a value."""
    for name, dt in [("fp4_e2m1", ml_dtypes.float4_e2m1fn), ("fp6_e2m3", ml_dtypes.float6_e2m3fn),
                     ("fp6_e3m2", ml_dtypes.float6_e3m2fn)]:
        fmt = get_format(name)
        x = np.array([1e6, -1e6, np.inf, -np.inf], dtype=np.float32)
        np.testing.assert_array_equal(x.astype(dt).astype(np.float64), fmt.decode(fmt.encode(x)))
        nan_cast = np.array([np.nan], dtype=np.float32).astype(dt).astype(np.float64)
        assert nan_cast[0] == 0 and np.signbit(nan_cast[0])
        with pytest.raises(MacforgeError) as ei:
            fmt.encode(np.array([np.nan]))
        assert str(ei.value) == f"format {name} has no NaN code: input contains NaN"


def test_overflow_saturates_where_ml_dtypes_does_not() -> None:
    """Finite overflow: ml_dtypes gives NaN (E4M3) or Inf (E5M2, BF16), we give ±max."""
    for name, dt, ref_max in [("fp8_e4m3", ml_dtypes.float8_e4m3fn, 448.0),
                              ("fp8_e5m2", ml_dtypes.float8_e5m2, 57344.0),
                              ("bf16", ml_dtypes.bfloat16,
                               float(ml_dtypes.finfo(ml_dtypes.bfloat16).max))]:
        fmt = get_format(name)
        big = np.finfo(np.float32).max
        x = np.array([big, -big], dtype=np.float32)
        with np.errstate(over="ignore"):
            ml = x.astype(dt).astype(np.float64)
        assert not np.isfinite(ml).any()
        np.testing.assert_array_equal(fmt.decode(fmt.encode(x)), [ref_max, -ref_max])


def test_e8m0_zero_negative_ties_and_tiny() -> None:
    """E8M0 has no zero and no sign. Our encoder clamps x <= 0 (and anything below 2^-127) to the
    smallest scale 2^-127 (code 0), saturates overflow to 2^127 (code 254), keeps 255 for NaN,
    and rounds the linear midpoint 1.5·2^k to the even exponent code.

    The references differ there, which is why the comparisons above are restricted:
    * ml_dtypes 0.6 casts 0, -0 and negatives to NaN (255), and overflow to NaN;
    * ml_dtypes rounds every exact tie 1.5·2^k *up* (half away from zero in the exponent), e.g.
      1.5 -> 2 (code 128, even) but 3 -> 4 (code 129, odd); gfloat and we give 2 in both cases;
    * ml_dtypes casts every float32 subnormal in (2^-127, 2^-126) to 2^-126 (code 1), also those
      below the midpoint 1.5·2^-127 that are nearer to 2^-127 (code 0, ours and gfloat's);
    * gfloat's ``round_ndarray`` returns 0 and negative inputs unchanged (not E8M0 values), and
      values below 2^-127 unchanged too.
    """
    fmt = get_format("e8m0")
    x = np.array([0.0, -0.0, -1.0, 2.0**-130, 1.5 * 2.0**-127, 1e300], dtype=np.float64)
    np.testing.assert_array_equal(fmt.encode(x), [0, 0, 0, 0, 0, 254])

    ml = np.array([0.0, -0.0, -1.0, 2.0**127 * 1.5], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        assert (ml.astype(ml_dtypes.float8_e8m0fnu).view(np.uint8) == 255).all()
    ties = 1.5 * 2.0 ** np.arange(-127, 127)
    ml_codes = ties.astype(np.float32).astype(ml_dtypes.float8_e8m0fnu).view(np.uint8)
    np.testing.assert_array_equal(ml_codes, np.arange(1, 255))  # always up
    ours = fmt.encode(ties)
    np.testing.assert_array_equal(ours, _gf_encode(CASES[IDS.index("e8m0")], ties))
    np.testing.assert_array_equal(ours % 2, 0)  # always the even code
    np.testing.assert_array_equal(fmt.encode(np.array([1.5, 3.0])), [128, 128])

    sub = np.array([2.0**-127 * 1.25, 2.0**-127 * 1.75], dtype=np.float32)  # float32 subnormals
    np.testing.assert_array_equal(sub.astype(ml_dtypes.float8_e8m0fnu).view(np.uint8), [1, 1])
    np.testing.assert_array_equal(fmt.encode(sub), [0, 1])
    gf = _gf_encode(CASES[IDS.index("e8m0")], sub.astype(np.float64))
    np.testing.assert_array_equal(gf, [0, 1])

    r = round_ndarray(format_info_ocp_e8m0, np.array([0.0, -1.0, 2.0**-130]), sat=True)
    np.testing.assert_array_equal(r, [0.0, -1.0, 2.0**-130])


def test_ue4m3_negative_clamps_to_zero() -> None:
    """Unsigned E4M3 (NVFP4 block scale): only sign-0 codes are produced; x < 0 -> +0 (code 0)."""
    fmt = get_format("ue4m3")
    np.testing.assert_array_equal(fmt.encode(np.array([-1.0, -1e-9, -0.0, 0.0, 500.0])),
                                  [0, 0, 0, 0, 0x7E])
    assert (fmt.encode(np.linspace(-500, 500, 10001)) < 128).all()
