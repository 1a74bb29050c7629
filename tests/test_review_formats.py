"""Format-library review (issue 7 §3, §4): tie rule of zero-point formats, storage accounting
from the objects that quantize, the MX / NVFP4 / MXINT8 recipes checked directly, Scaling
``rms`` / ``search`` / ``signmax``, NF4 double quantization, and the CRD tables against an
independent numeric construction."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from gfloat import round_ndarray
from gfloat.formats import format_info_ocp_e2m1, format_info_ocp_e4m3

from models.errors import MacforgeError
from models.formats import (
    Scaling,
    _tensor,
    get_format,
    quantize,
    round_scale,
    storage_bits_per_element,
)
from models.formats._families import crd_values

N4096 = 4096 * 4096  # the nominal tensor of storage_bits_per_element without a shape


# ------------------------------------------------------------------ int_asym tie rule
def test_int_asym_ties_to_even_value_at_odd_zero_point() -> None:
    """[0.5, 1.5, 2.5, -0.5] at z = 1 as llm-awq: q = clamp(round(w/s) + z), round half even."""
    fmt = get_format("int4_asym")
    x = np.array([0.5, 1.5, 2.5, -0.5])
    codes = fmt.encode(x, 1)
    np.testing.assert_array_equal(codes, [1, 3, 3, 1])
    np.testing.assert_array_equal(fmt.decode(codes, 1), [0.0, 2.0, 2.0, 0.0])


@pytest.mark.parametrize("name", ["int4_asym", "int8_asym"])
def test_int_asym_every_tie_every_zero_point(name: str) -> None:
    fmt = get_format(name)
    qmax = fmt.zero_point_max
    x = np.arange(-qmax - 2, qmax + 2) + 0.5  # every half-integer tie, some beyond the range
    for z in range(qmax + 1):
        want = np.clip(np.rint(x) + z, 0, qmax)  # np.rint: half to even, on the value q - z
        np.testing.assert_array_equal(fmt.encode(x, z), want)


def test_int4_asym_and_dint4_asym_share_one_tie_rule() -> None:
    """In the integer region (|x| >= 0.75, no clamping) dINT-A and INT4-asym give one value."""
    i4, d4 = get_format("int4_asym"), get_format("dint4_asym")
    x = np.array([1.5, 2.5, 3.5, -1.5, -2.5, 0.75 * 2, 4.5, -3.5])
    for z in (3, 5, 7, 9):
        np.testing.assert_array_equal(i4.decode(i4.encode(x, z), z), d4.decode(d4.encode(x, z), z))


def test_minmax_tensor_matches_llm_awq_pseudo_quantize() -> None:
    """Groups with s = 1 exactly and an odd zero point, so w/s hits exact ties."""
    w = np.array([[-3.0, 12.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5] * 4])  # (max-min)/15 = 1, z = 3
    sc = Scaling(method="minmax", group_size=32, scale_format="fp32")
    q = quantize(w, get_format("int4_asym"), sc)
    s = (w.max() - w.min()) / 15
    z = np.clip(-np.rint(w.min() / s), 0, 15)
    assert (s, z) == (1.0, 3.0)
    want = np.clip(np.rint(w / s) + z, 0, 15)
    np.testing.assert_array_equal(q.codes, want)
    np.testing.assert_array_equal(q.dequantize(), (want - z) * s)


# ------------------------------------------------------------------ storage accounting
def test_scale_format_bits_come_from_the_formats() -> None:
    for name in ("fp32", "fp16", "bf16", "e8m0", "ue4m3"):
        assert _tensor.SCALE_FORMAT_BITS[name] == get_format(name).bits


@pytest.mark.parametrize(("name", "bits"), [("int4_asym", 4 + 20 / 128), ("int8_asym", 8 + 24 / 128),
                                             ("dint4_asym", 4 + 20 / 128)])
def test_zero_point_width_is_the_stored_one(name: str, bits: float) -> None:
    """A minmax Scaling that does not name a zero-point width still stores zero points."""
    sc = Scaling(method="minmax", group_size=128, scale_format="fp16")
    fmt = get_format(name)
    assert storage_bits_per_element(fmt, sc) == bits
    q = quantize(np.random.default_rng(0).standard_normal((4, 256)), fmt, sc)
    assert q.bits_per_element == bits
    assert q.zero_points.max() <= fmt.zero_point_max


def test_zero_point_width_too_narrow_or_without_zero_point() -> None:
    with pytest.raises(MacforgeError) as ei:
        storage_bits_per_element(get_format("int4_asym"), Scaling(method="minmax", zero_point_bits=3))
    assert str(ei.value) == "zero_point_bits=3 cannot hold the zero points 0..15 of int4_asym (needs 4)"
    with pytest.raises(MacforgeError) as ei:
        quantize(np.zeros((1, 128)), get_format("int4"), Scaling(zero_point_bits=4))
    assert str(ei.value) == "zero_point_bits=4 but int4 with scaling 'absmax' stores no zero points"


STORAGE_CASES = [
    ("int4", {"group_size": 64, "scale_format": "bf16"}, (8, 256)),
    ("int4", {"granularity": "channel", "scale_format": "fp16"}, (8, 256)),
    ("int4", {"granularity": "tensor", "scale_format": "fp32"}, (8, 256)),
    ("int4_asym", {"method": "minmax", "group_size": 32, "scale_format": "fp16"}, (4, 128)),
    ("int8_asym", {"method": "minmax", "group_size": 32, "scale_format": "fp16", "zero_point_bits": 8}, (4, 128)),
    ("dint4_asym", None, (2, 256)),
    ("decoupleq_int2", {"method": "affine", "group_size": 64, "scale_format": "fp32"}, (4, 128)),
    ("mxfp4", None, (4, 128)),
    ("mxfp4", {"group_size": 32, "method": "mx", "scale_format": "bf16"}, (4, 128)),
    ("nvfp4", None, (4, 128)),
    ("nvfp4", {"group_size": 16, "method": "nv", "scale_format": "fp16"}, (4, 128)),
    ("mxint8", None, (2, 64)),
    ("nf4", None, (4, 256)),
    ("nf4", {"group_size": 64, "scale_format": "fp32", "double_quant_block": 256}, (64, 512)),
    ("nf4", {"group_size": 64, "scale_format": "fp32", "double_quant_block": 256}, (3, 320)),  # partial block
    ("int4", {"group_size": 64, "scale_format": "bf16", "outlier_fraction": 2**-10}, (16, 256)),
    ("int4", {"group_size": 64, "scale_format": "bf16", "method": "signmax"}, (4, 128)),
]


@pytest.mark.parametrize(("name", "kw", "shape"), STORAGE_CASES)
def test_stored_arrays_match_the_accounting(name: str, kw: dict[str, object] | None,
                                            shape: tuple[int, int]) -> None:
    """The bits counted from the arrays a QuantizedTensor really holds equal the accounting."""
    fmt = get_format(name)
    scaling = None if kw is None else Scaling(**kw)  # type: ignore[arg-type]
    x = np.random.default_rng(1).standard_normal(shape)
    q = quantize(x, fmt, scaling)
    stored = q.stored_bits()
    assert sum(stored.values()) / x.size == pytest.approx(storage_bits_per_element(fmt, scaling, shape),
                                                          rel=0, abs=1e-12)
    assert q.bits_per_element == sum(stored.values()) / x.size
    assert stored["elements"] == x.size * fmt.bits


def test_nv_honours_its_scale_format() -> None:
    """NVFP4 recipe with an FP16 block scale: g = amax/(6·65504), block scales are FP16 values."""
    fmt = get_format("nvfp4")
    sc = Scaling(group_size=16, method="nv", scale_format="fp16")
    x = np.random.default_rng(2).standard_normal((8, 64)) * 3
    q = quantize(x, fmt, sc)
    fp16 = get_format("fp16")
    np.testing.assert_array_equal(fp16.decode(fp16.encode(q.scales)), q.scales)
    assert q.scales.max() == fp16.max_value  # the block holding amax maps to the scale format's max
    assert q.tensor_scale == float(np.float32(np.abs(x).max() / (6 * fp16.max_value)))
    assert storage_bits_per_element(fmt, sc) == 4 + 16 / 16 + 32 / N4096


def test_mx_honours_its_scale_format() -> None:
    """The shared power of two is clipped to the scale format's power-of-two range (E8M0 ±127,
    BF16 down to 2^-133)."""
    fmt = get_format("mxfp4")
    x = np.full((1, 32), 2.0**-130)
    e8 = quantize(x, fmt)
    bf = quantize(x, fmt, Scaling(group_size=32, method="mx", scale_format="bf16"))
    assert e8.scales[0, 0] == 2.0**-127
    assert bf.scales[0, 0] == 2.0**-132  # floor(log2 amax) - emax(E2M1) = -130 - 2
    np.testing.assert_array_equal(bf.dequantize(), x)  # 2^-130 = 4 · 2^-132 exactly
    assert storage_bits_per_element(fmt, Scaling(group_size=32, method="mx", scale_format="bf16")) == 4.5


# ------------------------------------------------------------------ MX E8M0 rule, NVFP4, MXINT8
def _floor_log2(v: float) -> int:
    """floor(log2 v) by exact comparisons with powers of two (no log)."""
    f = Fraction(v)
    e = 0
    while Fraction(2) ** e > f:
        e -= 1
    while Fraction(2) ** (e + 1) <= f:
        e += 1
    return e


def test_mx_shared_exponent_rule_and_clip() -> None:
    """OCP MX v1.0: X = 2^(floor(log2 amax) - emax_elem), emax(E2M1) = 2, E8M0 clip to ±127."""
    fmt = get_format("mxfp4")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 32)) * 2.0 ** rng.integers(-20, 20, (64, 1))
    q = quantize(x, fmt)
    want = [2.0 ** max(-127, min(127, _floor_log2(float(a)) - 2)) for a in np.abs(x).max(axis=1)]
    np.testing.assert_array_equal(q.scales[:, 0], want)
    # elements: RNE with saturation to ±6 of x / X (gfloat's saturating rounder on float64)
    ref = round_ndarray(format_info_ocp_e2m1, x / q.scales, sat=True)
    np.testing.assert_array_equal(fmt.decode(q.codes), ref)
    # the clip: amax 2^200 -> 2^127 (elements saturate), amax 2^-200 -> 2^-127 (elements flush)
    big = quantize(np.full((1, 32), 2.0**200), fmt)
    tiny = quantize(np.full((1, 32), 2.0**-200), fmt)
    assert big.scales[0, 0] == 2.0**127 and (fmt.decode(big.codes) == 6).all()
    assert tiny.scales[0, 0] == 2.0**-127 and (tiny.dequantize() == 0).all()


def test_mx_shared_exponent_one_ulp_below_powers_of_two() -> None:
    """amax = 2^k - 1 ulp has floor(log2) = k - 1; float64 log2 rounds it up to k for large |k|."""
    fmt = get_format("mxfp4")
    ks = np.arange(-120, 121)
    amax = np.nextafter(2.0**ks, 0)
    x = np.zeros((ks.size, 32))
    x[:, 5] = amax
    x[:, 6] = -amax / 3
    q = quantize(x, fmt)
    want = 2.0 ** np.clip(ks - 1 - 2, -127, 127)
    np.testing.assert_array_equal(q.scales[:, 0], want)
    # amax / X is just below 8, so it saturates to 6, never beyond
    assert (fmt.decode(q.codes[:, 5]) == 6).all()


def test_nvfp4_two_level_scales_directly() -> None:
    """PAPERS.md §5: g = FP32(amax / (6·448)), s_b = UE4M3(amax_b / (6 g)), elements E2M1 of
    x / (s_b g); UE4M3 rounding checked with gfloat's E4M3 rounder on float64."""
    fmt = get_format("nvfp4")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 64)) * 2.0 ** rng.integers(-6, 6, (16, 1))
    q = quantize(x, fmt)
    g = float(np.float32(np.abs(x).max() / (6 * 448)))
    assert q.tensor_scale == g
    amax_b = np.abs(x).reshape(16, 4, 16).max(axis=-1)
    want_s = round_ndarray(format_info_ocp_e4m3, amax_b / (6 * g), sat=True)
    np.testing.assert_array_equal(q.scales, want_s)
    y = x.reshape(16, 4, 16) / (want_s[..., None] * g)
    np.testing.assert_array_equal(fmt.decode(q.codes).reshape(16, 4, 16),
                                  round_ndarray(format_info_ocp_e2m1, y, sat=True))


def test_nvfp4_tiny_amax_no_division_by_zero() -> None:
    """amax ≈ 1e-44: amax/(6·448) underflows float32; the tensor scale must stay positive."""
    x = np.random.default_rng(5).uniform(-1, 1, (2, 32)) * 1e-44
    x[0, 0] = 1e-44
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        q = quantize(x, get_format("nvfp4"))
        xq = q.dequantize()
    assert q.tensor_scale > 0
    assert np.isfinite(xq).all()
    # the block scales absorb the coarse tensor scale: error stays at the 4-bit level
    assert np.abs(xq - x).max() <= 0.25 * 1e-44


def test_mxint8_directly() -> None:
    """MXINT8 (OCP MX v1.0): block 32, E8M0 X = 2^floor(log2 amax) (emax_elem = 0), elements
    int8 · 2^-6, RNE, saturating to ±127/64."""
    fmt = get_format("mxint8")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((32, 64)) * 2.0 ** rng.integers(-10, 10, (32, 1))
    q = quantize(x, fmt)
    amax = np.abs(x).reshape(32, 2, 32).max(axis=-1)
    want_s = np.array([[2.0 ** _floor_log2(float(a)) for a in row] for row in amax])
    np.testing.assert_array_equal(q.scales, want_s)
    y = x.reshape(32, 2, 32) / want_s[..., None]
    want = np.clip(np.rint(y * 64), -127, 127) / 64
    np.testing.assert_array_equal(fmt.decode(q.codes).reshape(32, 2, 32), want)
    assert fmt.bits_per_element() == 8 + 8 / 32


# ------------------------------------------------------------------ Scaling rms, search, signmax
def test_rms_scaling() -> None:
    """s = bf16(sqrt(mean(x²))) per group; codes = nearest table value of x / s (brute force)."""
    fmt = get_format("crd4_normal_rms")
    x = np.random.default_rng(7).standard_normal((4, 128)) * 0.3
    q = quantize(x, fmt)
    g = x.reshape(4, 2, 64)
    want_s = round_scale(np.sqrt(np.mean(g * g, axis=-1)), "bf16")
    np.testing.assert_array_equal(q.scales, want_s)
    y = g / want_s[..., None]
    nearest = np.argmin(np.abs(y[..., None] - fmt.values), axis=-1)
    np.testing.assert_array_equal(q.codes.reshape(4, 2, 64), nearest)


def test_search_scaling_picks_least_error_alpha() -> None:
    """search: s = fp32(α·amax/7) with α on 26 points of [0.5, 1]; the least squared error wins
    (first on ties), recomputed here with plain rint/clip for INT4."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 64))
    x[:, 0] = 9.0  # one outlier per group: a smaller α clips it but resolves the rest better
    sc = Scaling(group_size=64, method="search", scale_format="fp32")
    q = quantize(x, get_format("int4"), sc)
    for r in range(6):
        amax = np.abs(x[r]).max()
        errs = []
        for alpha in np.linspace(0.5, 1.0, 26):
            s = float(np.float32(amax / 7 * alpha))
            errs.append((np.sum((np.clip(np.rint(x[r] / s), -8, 7) * s - x[r]) ** 2), s))
        best = min(errs, key=lambda t: t[0])
        assert q.scales[r, 0] == best[1]
        assert best[1] < float(np.float32(amax / 7))  # the outlier made α < 1 pay off
    absmax = quantize(x, get_format("int4"), Scaling(group_size=64, scale_format="fp32"))
    assert np.mean((q.dequantize() - x) ** 2) < np.mean((absmax.dequantize() - x) ** 2)


def test_signmax_uses_the_larger_extreme() -> None:
    """signmax (Orr et al. 2025, graphcore-research/optimal-weight-formats): s = x_m / v_m, x_m
    the element of largest magnitude, v_m the format's extreme of largest magnitude (-8 for INT4);
    the scale is signed, so x_m maps exactly onto v_m whatever its sign."""
    fmt = get_format("int4")
    sc = Scaling(group_size=8, method="signmax", scale_format="fp32")
    x = np.array([[1.0, -4.0, 2.0, 0.5, 3.0, -1.0, 0.0, 1.5],  # x_m = -4 -> s = 0.5
                  [1.0, 4.0, -2.0, 0.5, 3.0, -1.0, 0.0, 1.5]])  # x_m = +4 -> s = -0.5
    q = quantize(x, fmt, sc)
    np.testing.assert_array_equal(q.scales[:, 0], [0.5, -0.5])
    np.testing.assert_array_equal(fmt.decode(q.codes)[:, 1], [-8, -8])
    np.testing.assert_array_equal(q.dequantize(), x)  # every element is a multiple of 0.5 here
    # a symmetric grid (E2M1: ±6) gives the same values as absmax
    f4 = get_format("fp4_e2m1")
    y = np.random.default_rng(9).standard_normal((4, 64))
    a = quantize(y, f4, Scaling(group_size=64, scale_format="fp32")).dequantize()
    s = quantize(y, f4, Scaling(group_size=64, method="signmax", scale_format="fp32")).dequantize()
    np.testing.assert_allclose(s, a, rtol=0, atol=1e-15)


def test_signmax_beats_absmax_on_int4() -> None:
    """Using -8 buys resolution: on N(0,1) blocks of 64 signmax INT4 has a lower MSE."""
    x = np.random.default_rng(10).standard_normal((1024, 64))
    fmt = get_format("int4")
    m_abs = np.mean((quantize(x, fmt, Scaling(group_size=64, scale_format="bf16")).dequantize() - x) ** 2)
    m_sgn = np.mean((quantize(x, fmt, Scaling(group_size=64, scale_format="bf16",
                                               method="signmax")).dequantize() - x) ** 2)
    assert m_sgn < 0.9 * m_abs


def test_signmax_refuses_unsigned_scale_format() -> None:
    with pytest.raises(MacforgeError) as ei:
        quantize(np.ones((1, 32)), get_format("fp4_e2m1"), Scaling(group_size=32, method="signmax",
                                                                   scale_format="e8m0"))
    assert str(ei.value) == "scaling 'signmax' needs a signed scale format, e8m0 has no sign"


# ------------------------------------------------------------------ NF4 double quantization
def _nf4_dq():  # type: ignore[no-untyped-def]
    # what the lead registers as `nf4_dq`
    return replace(get_format("nf4"), name="nf4_dq",
                   default_scaling=Scaling(group_size=64, method="absmax", scale_format="fp32",
                                           double_quant_block=256))


def test_dynamic8_code() -> None:
    """The second-level 8-bit code: signed dynamic tree quantization (Dettmers 2016, the QLoRA /
    bitsandbytes default map): 0, 1 and, for decades 10^(i-6), i = 0..6, ±2^i linear levels."""
    v = _tensor.dynamic8_values()
    assert v.shape == (256,) and (np.diff(v) > 0).all()
    assert v[-1] == 1.0 and 0.0 in v
    pos = v[v > 0]
    assert pos.size == 128 and v[v < 0].size == 127
    for i in range(7):
        dec = pos[(pos >= 10.0 ** (i - 7)) & (pos < 10.0 ** (i - 6))]
        assert dec.size == 2**i


def test_nf4_double_quant_storage_and_error() -> None:
    fmt = _nf4_dq()
    # 4 + 8/64 + 32/(64·256) + one FP32 mean per tensor (QLoRA: ≈ 4.127)
    assert fmt.bits_per_element() == 4 + 8 / 64 + 32 / (64 * 256) + 32 / N4096
    assert round(fmt.bits_per_element(), 3) == 4.127
    x = np.random.default_rng(11).standard_normal((256, 256))
    q = quantize(x, fmt)
    plain = quantize(x, get_format("nf4"))
    # the element codes are those of the exact FP32 absmax scales (QLoRA quantizes first)
    np.testing.assert_array_equal(q.codes, plain.codes)
    # reconstructed scales: mean + code · block absmax, close to the exact ones
    rel = np.abs(q.scales - plain.scales) / plain.scales
    assert rel.max() < 0.05
    m_dq = np.mean((q.dequantize() - x) ** 2)
    m_plain = np.mean((plain.dequantize() - x) ** 2)
    assert m_plain < m_dq < 1.02 * m_plain  # the second-level error is small


def test_nf4_dq_registered_name() -> None:
    """The registered ``nf4_dq`` behaves as the Format built here (same scaling, same storage)."""
    fmt = get_format("nf4_dq")
    assert fmt.default_scaling == _nf4_dq().default_scaling
    assert fmt.bits_per_element() == _nf4_dq().bits_per_element()
    x = np.random.default_rng(14).standard_normal((8, 64 * 64))
    np.testing.assert_array_equal(quantize(x, fmt).dequantize(), quantize(x, _nf4_dq()).dequantize())


def test_double_quant_reconstruction_by_hand() -> None:
    fmt = _nf4_dq()
    x = np.random.default_rng(12).standard_normal((4, 64 * 128))  # 512 scales = 2 blocks
    q = quantize(x, fmt)
    s = np.abs(x.reshape(4, 128, 64)).max(axis=-1).astype(np.float32).astype(np.float64).reshape(-1)
    mean = float(np.float32(s.mean()))
    d = (s - mean).reshape(2, 256)
    bmax = np.abs(d).max(axis=1).astype(np.float32).astype(np.float64)
    table = _tensor.dynamic8_values()
    idx = np.argmin(np.abs((d / bmax[:, None])[..., None] - table), axis=-1)
    want = table[idx] * bmax[:, None] + mean
    np.testing.assert_allclose(q.scales.reshape(-1), want.reshape(-1), rtol=1e-12, atol=0)


def test_double_quant_validation() -> None:
    with pytest.raises(MacforgeError) as ei:
        Scaling(double_quant_block=-1)
    assert str(ei.value) == "double_quant_block must be a non-negative integer, not -1"
    with pytest.raises(MacforgeError) as ei:
        quantize(np.ones((1, 128)), get_format("int4_asym"),
                 Scaling(method="minmax", double_quant_block=256))
    assert str(ei.value) == ("double_quant_block needs scaling method absmax, rms, search or signmax, "
                             "not 'minmax'")


# ------------------------------------------------------------------ CRD tables
def _numeric_icdf(density, p: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Invert the CDF of an unnormalized density by trapezoid integration on a fine grid;
    ``lo``/``hi`` truncate, otherwise ℝ is mapped from (-1, 1) by x = u / (1 - u²)."""
    if lo is None:
        u = np.linspace(-1, 1, 2_000_001)[1:-1]
        x = u / (1 - u * u)
        w = density(x) * (1 + u * u) / (1 - u * u) ** 2
        t = u
    else:
        x = np.linspace(lo, hi, 2_000_001)
        w = density(x)
        t = x
    cdf = np.concatenate(([0.0], np.cumsum((w[1:] + w[:-1]) / 2 * np.diff(t))))
    cdf /= cdf[-1]
    return np.interp(p, cdf, x)


def _t_pdf(nu: float, scale: float):  # type: ignore[no-untyped-def]
    return lambda x: (1 + (x / scale) ** 2 / nu) ** (-(nu + 1) / 2)


RMS_CASES = [
    # unit-variance data distributions; the format is the inverse CDF of pdf^(1/3)
    ("normal", None, lambda x: np.exp(-x * x / 2)),
    ("laplace", None, lambda x: np.exp(-math.sqrt(2) * np.abs(x))),
    ("t", 5.0, _t_pdf(5.0, math.sqrt(3 / 5))),
    ("t", 7.0, _t_pdf(7.0, math.sqrt(5 / 7))),
]


@pytest.mark.parametrize(("dist", "nu", "pdf"), RMS_CASES, ids=["normal", "laplace", "t5", "t7"])
@pytest.mark.parametrize("bits", [3, 4])
def test_crd_rms_table_from_pdf_cube_root(dist: str, nu: float | None, pdf, bits: int) -> None:  # type: ignore[no-untyped-def]
    v = crd_values(bits, dist, "rms", nu=nu)
    n = 1 << bits
    assert v.shape == (n,) and (np.diff(v) > 0).all()
    np.testing.assert_allclose(v, -v[::-1], rtol=0, atol=1e-12)
    p = np.linspace(0, 1, n + 2)[1:-1]
    want = _numeric_icdf(lambda x: pdf(x) ** (1 / 3), p)
    np.testing.assert_allclose(v, want, rtol=2e-4, atol=1e-5)


EULER_GAMMA = 0.5772156649015329


def _absmax_cases(block: int):  # type: ignore[no-untyped-def]
    lb = 2 * math.log(block / math.pi)
    # data scaled by the paper's expected block maximum (graphcore-research/optimal-weight-formats)
    yield "normal", None, lambda x: np.exp(-((x * math.sqrt(lb)) ** 2) / 2)
    yield "laplace", None, lambda x: np.exp(-np.abs(x) * (EULER_GAMMA + math.log(block)))
    nu = 5.0
    m = (lb ** ((nu - 3) / 2) * block) ** (1 / nu) * math.sqrt(nu / (nu - 2))  # standard-t max
    yield "t", nu, lambda x: _t_pdf(nu, 1.0)(x * m)


@pytest.mark.parametrize("block", [64, 128])
def test_crd_absmax_tables_from_pdf_cube_root(block: int) -> None:
    p = np.linspace(0, 1, 16)
    for dist, nu, pdf in _absmax_cases(block):
        v = crd_values(4, dist, "absmax", block=block, nu=nu)
        assert v[0] == -1.0 and v[-1] == 1.0 and (np.diff(v) > 0).all()
        np.testing.assert_allclose(v, -v[::-1], rtol=0, atol=1e-12)
        want = _numeric_icdf(lambda x, pdf=pdf: pdf(x) ** (1 / 3), p, -1.0, 1.0)
        np.testing.assert_allclose(v, want, rtol=0, atol=2e-5, err_msg=f"{dist} B={block}")


def test_crd_heavier_tails_spread_wider() -> None:
    """Facts independent of any CDF: heavier-tailed data puts the outer levels further out."""
    n = crd_values(4, "normal", "rms")
    la = crd_values(4, "laplace", "rms")
    t5 = crd_values(4, "t", "rms", nu=5.0)
    assert n[-1] < la[-1] < t5[-1]
    t_abs = crd_values(4, "t", "absmax", block=64, nu=5.0)
    n_abs = crd_values(4, "normal", "absmax", block=64)
    assert t_abs[8] < n_abs[8]  # absmax-scaled heavy tails: the inner levels crowd near 0


@pytest.mark.parametrize(("name", "data", "beats"), [
    ("crd4_normal_rms", "normal", ["crd4_laplace_rms", "crd4_t5_rms"]),
    ("crd4_laplace_rms", "laplace", ["crd4_normal_rms", "crd4_t5_rms"]),
    # at 4 bits, block-64 RMS scaling, t5 data is coded better by the Laplace table than by the
    # t5 one (a Cauchy-like table spends levels far out) but still better than by the normal one
    ("crd4_t5_rms", "t5", ["crd4_normal_rms"]),
])
def test_crd_rms_formats_quantize(name: str, data: str, beats: list[str]) -> None:
    """crd*_rms defaults: RMS scaling, block 64, BF16 scale; the codes are the brute-force
    nearest table values, and a table beats the lighter-tailed ones on its own distribution."""
    rng = np.random.default_rng(13)
    x = {"normal": rng.standard_normal((512, 64)),
         "laplace": rng.laplace(scale=1 / math.sqrt(2), size=(512, 64)),
         "t5": rng.standard_t(5, size=(512, 64)) * math.sqrt(3 / 5)}[data]
    fmt = get_format(name)
    assert fmt.default_scaling == Scaling(method="rms", group_size=64, scale_format="bf16")
    assert fmt.bits_per_element() == 4.25
    q = quantize(x, fmt)
    y = x / q.scales
    np.testing.assert_array_equal(q.codes, np.argmin(np.abs(y[..., None] - fmt.values), axis=-1))

    def mse(n: str) -> float:
        return float(np.mean((quantize(x, get_format(n)).dequantize() - x) ** 2))

    own = mse(name)
    for other in beats:
        assert own < mse(other), other
