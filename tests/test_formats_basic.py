"""Behaviour of the format library: names, tables, rounding rules, NaN/Inf policy, error
messages, storage cost, outliers, tensor shapes; and the analysis helpers in ``_analysis``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from models.errors import MacforgeError, UnknownNameError
from models.formats import (
    FORMAT_PATTERNS,
    Scaling,
    dequantize,
    format_names,
    get_format,
    quantize,
    round_scale,
    storage_bits_per_element,
)
from models.formats._analysis import (
    entropy_coded_uniform,
    lloyd_max,
    mse_of_levels,
    underflow_stats,
)

TABLE_FORMATS = [n for n in format_names() if n != "fp32"]


def _roundtrip(name: str, x: object, zero_point: int | None = None) -> np.ndarray:
    fmt = get_format(name)
    return fmt.decode(fmt.encode(np.asarray(x, dtype=np.float64), zero_point), zero_point)


# ------------------------------------------------------------------------ names and tables
@pytest.mark.parametrize("name", format_names())
def test_every_name_resolves(name: str) -> None:
    fmt = get_format(name)
    assert fmt.name == name
    if name == "fp32":
        assert fmt.values is None and fmt.bits == 32
        return
    assert fmt.values.shape == (1 << fmt.bits,)
    assert fmt.values.dtype == np.float64
    assert get_format(name) is fmt  # cached: one object per name


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_grid_roundtrip(name: str) -> None:
    """Every encodable finite value encodes to its canonical code and decodes back exactly."""
    fmt = get_format(name)
    values, codes = fmt.grid()
    assert (np.diff(values) > 0).all()
    np.testing.assert_array_equal(fmt.encode(values), codes)
    np.testing.assert_array_equal(fmt.decode(codes), values)
    # every encodable code's value survives encode -> decode (e.g. -0 and +0 both decode to 0)
    enc = np.flatnonzero(np.asarray(fmt.encodable) & np.isfinite(fmt.values))
    np.testing.assert_array_equal(fmt.decode(fmt.encode(fmt.values[enc])), fmt.values[enc])


@pytest.mark.parametrize("name", ["int4_asym", "int8_asym", "dint4_asym"])
def test_zero_point_roundtrip(name: str) -> None:
    fmt = get_format(name)
    levels = fmt.asym_levels
    for z in range(fmt.zero_point_max + 1):
        q = np.arange(levels + 1)
        np.testing.assert_array_equal(_roundtrip(name, q - z, z), q - z)


def test_fp32_roundtrip() -> None:
    fmt = get_format("fp32")
    x = np.array([1.0, -2.5, 1.1, 3e38, np.inf, -0.0])
    np.testing.assert_array_equal(fmt.decode(fmt.encode(x)),
                                  x.astype(np.float32).astype(np.float64))
    assert fmt.bits_per_element() == 32.0


# ------------------------------------------------------------------------ integer rounding
def test_int4_round_half_to_even() -> None:
    x = [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 6.5, 2.4999, 2.5001]
    np.testing.assert_array_equal(_roundtrip("int4", x), [0, 2, 2, 4, 0, -2, -2, -4, 6, 2, 3])


def test_int4_saturation_and_symmetric_absmax() -> None:
    fmt = get_format("int4")
    assert (fmt.min_value, fmt.max_value, fmt.scale_max) == (-8.0, 7.0, 7.0)
    # encode() saturates to the grid ends, -8 included
    np.testing.assert_array_equal(_roundtrip("int4", [100, -100, 7.49, -8.49]), [7, -8, 7, -8])
    # absmax scaling maps amax to ±7: the code of -8 (0b1000) never appears
    x = np.random.default_rng(1).standard_normal((64, 256))
    x[0, 0] = -10.0  # a negative absmax
    q = quantize(x, fmt)
    assert not (q.codes == 8).any()
    v = fmt.decode(q.codes)
    assert v.min() == -7 and v.max() == 7


def test_nupes_a1_is_int4() -> None:
    np.testing.assert_array_equal(get_format("nupes4_a1").grid()[0], np.arange(-7.0, 8.0))
    x = np.linspace(-9, 9, 3601)
    np.testing.assert_array_equal(_roundtrip("nupes4_a1", x), np.clip(np.rint(x), -7, 7))


# ------------------------------------------------------------------------ dINT (PAPERS.md §1.1)
def test_dint4_sym_table_and_ties() -> None:
    fmt = get_format("dint4_sym")
    np.testing.assert_array_equal(fmt.values[:8], [0, 0.5, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(fmt.values[8:], -fmt.values[:8])
    x = [0.25, 0.75, 1.5, 2.5, 3.5, 4.5, 5.5, -0.25, -0.75, -1.5, -2.5, 0.2499, 100, -100]
    np.testing.assert_array_equal(_roundtrip("dint4_sym", x),
                                  [0.5, 1, 2, 2, 4, 4, 6, -0.5, -1, -2, -2, 0, 6, -6])
    # code 8 (-0) is never produced
    assert not (fmt.encode(np.linspace(-0.3, 0.3, 601)) == 8).any()
    assert fmt.scale_max == 6.0


@pytest.mark.parametrize(
    ("x", "z", "expected"),
    [
        # RNE onto the integer grid, then |x| < 0.75 -> ±0.5 and |x| < 0.25 -> 0 (strict <)
        (0.24, 5, 0.0), (0.25, 5, 0.5), (0.74, 5, 0.5), (0.75, 5, 1.0),
        (-0.24, 5, 0.0), (-0.25, 5, -0.5), (-0.74, 5, -0.5), (-0.75, 5, -1.0),
        (0.0, 5, 0.0), (-0.0, 5, 0.0),
        (1.5, 5, 2.0), (2.5, 5, 2.0), (3.5, 5, 4.0), (-2.5, 5, -2.0),
        (100.0, 5, 8.0), (-100.0, 5, -5.0),  # grid clamped to q in 0..13
        # clamped edges: z = 0 has no negative integers; the ±0.5 specials still apply
        (-1.0, 0, 0.0), (-0.6, 0, -0.5), (-0.2, 0, 0.0),
        (1.0, 13, 0.0), (0.6, 13, 0.5),
    ],
)
def test_dint4_asym_authors_rule(x: float, z: int, expected: float) -> None:
    got = _roundtrip("dint4_asym", [x], z)[0]
    assert got == expected


def test_dint4_asym_codes_and_tensor_rule() -> None:
    fmt = get_format("dint4_asym")
    np.testing.assert_array_equal(fmt.encode(np.array([0.5, -0.5, 0.0]), 3), [14, 15, 3])
    np.testing.assert_array_equal(fmt.decode(np.array([14, 15]), 7), [0.5, -0.5])
    # s = (max - min)/13, z = clamp(-round(min/s), 0, 13) per group (PAPERS.md §1.1 Variant A)
    x = np.linspace(-1.0, 2.9, 128)[None, :]
    q = quantize(x, fmt)
    s = round_scale(np.array([(2.9 + 1.0) / 13]), "fp16")
    np.testing.assert_array_equal(q.scales, s[None, :])
    np.testing.assert_array_equal(q.zero_points, np.clip(-np.rint(-1.0 / s), 0, 13)[None, :])
    err = np.abs(q.dequantize() - x)
    assert err.max() <= 0.5 * s[0] * (1 + 1e-9)  # within the grid: at most half a step


# ------------------------------------------------------------------------ NUPES (PAPERS.md §3)
def test_nupes_rounds_in_power_domain() -> None:
    fmt = get_format("nupes4_a0.5")
    q = np.arange(-7, 8)
    np.testing.assert_array_equal(fmt.grid()[0], np.sign(q) * q**2.0)
    # 2.4: sqrt = 1.549 -> q = 2 -> value 4, although the value 1 is nearer on the linear axis
    # 2.25 and 6.25: exact ties in the power domain (1.5, 2.5) go to the even q = 2
    x = [2.4, -2.4, 2.25, 6.25, 0.2, 1e9, -1e9]
    np.testing.assert_array_equal(_roundtrip("nupes4_a0.5", x), [4, -4, 4, 4, 0, 49, -49])
    assert not (fmt.encode(np.linspace(-100, 100, 2001)) == 8).any()  # most negative code unused
    assert fmt.params == {"a": 0.5}


# ------------------------------------------------------------------------ NaN / Inf policy
@pytest.mark.parametrize("name", ["int2", "int4", "int8", "int4_asym", "dint4_asym", "dint4_sym",
                                  "nf4", "nupes4_a0.8", "decoupleq_int2", "fp4_e2m1", "mxfp4"])
def test_nan_raises_for_formats_without_nan(name: str) -> None:
    with pytest.raises(MacforgeError) as ei:
        get_format(name).encode(np.array([1.0, np.nan]))
    assert str(ei.value) == f"format {name} has no NaN code: input contains NaN"


def test_inf_saturates_for_int() -> None:
    np.testing.assert_array_equal(_roundtrip("int4", [np.inf, -np.inf]), [7, -8])
    np.testing.assert_array_equal(_roundtrip("dint4_sym", [np.inf, -np.inf]), [6, -6])


def test_fp8_specials() -> None:
    e4m3, e5m2 = get_format("fp8_e4m3"), get_format("fp8_e5m2")
    assert e4m3.encode(np.array([np.nan]))[0] & 0x7F == 0x7F
    assert np.isnan(e4m3.decode(e4m3.encode(np.array([np.nan])))).all()
    np.testing.assert_array_equal(e4m3.encode(np.array([np.inf, -np.inf, 1e9])), [0x7E, 0xFE, 0x7E])
    np.testing.assert_array_equal(e5m2.encode(np.array([np.inf, -np.inf])), [0x7C, 0xFC])
    np.testing.assert_array_equal(e5m2.encode(np.array([1e9, -1e9])), [0x7B, 0xFB])  # saturate
    assert np.isnan(e5m2.decode(e5m2.encode(np.array([np.nan])))).all()
    np.testing.assert_array_equal(e4m3.encode(np.array([-0.0, 0.0, -1e-9])), [0x80, 0x00, 0x80])


# ------------------------------------------------------------------------ error messages
def test_unknown_format_name() -> None:
    with pytest.raises(UnknownNameError) as ei:
        get_format("int99")
    msg = str(ei.value)
    known = ", ".join(format_names())
    assert msg == f"unknown format 'int99'; known: {known}; patterns: {', '.join(FORMAT_PATTERNS)}"
    assert isinstance(ei.value, MacforgeError) and isinstance(ei.value, KeyError)
    assert ei.value.known == format_names()


def test_non_canonical_parametric_name() -> None:
    with pytest.raises(UnknownNameError, match=re.escape("(did you mean 'crd4_t5_rms'?)")):
        get_format("crd4_t5.0_rms")
    with pytest.raises(UnknownNameError, match=re.escape("(did you mean 'nupes4_a0.8'?)")):
        get_format("nupes4_a0.80")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("crd4_t2_rms", "crd Student-t needs nu > 2, not 2.0"),
        ("crd9_normal_rms", "crd bits must be an integer in 2..8, not 9"),
        ("crd4_normal_absmax2", "crd block must be >= 4, not 2"),
        ("nupes4_a0", "nupes exponent a must be a positive finite number, not 0.0"),
        ("nupes9_a1", "nupes bits must be an integer in 2..8, not 9"),
        ("nupes1_a1", "nupes bits must be an integer in 2..8, not 1"),
    ],
)
def test_bad_parametric_format(name: str, message: str) -> None:
    with pytest.raises(MacforgeError) as ei:
        get_format(name)
    assert str(ei.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"granularity": "row"}, "granularity must be tensor, channel or group, not 'row'"),
        ({"method": "max"},
         "scaling method must be one of absmax, signmax, rms, search, minmax, affine, mx, nv, not 'max'"),
        ({"scale_format": "fp8"},
         "scale_format must be one of fp32, fp16, bf16, e8m0, ue4m3, not 'fp8'"),
        ({"group_size": 0}, "group_size must be a positive integer, not 0"),
        ({"outlier_fraction": 0.5}, "outlier_fraction must be in [0, 0.5), not 0.5"),
    ],
)
def test_bad_scaling(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(MacforgeError) as ei:
        Scaling(**kwargs)  # type: ignore[arg-type]
    assert str(ei.value) == message


@pytest.mark.parametrize(
    ("x", "name", "scaling", "message"),
    [
        (np.zeros((2, 100)), "int4", Scaling(group_size=64),
         "group_size 64 does not divide the last axis (100)"),
        (np.zeros((2, 128)), "int4", Scaling(method="minmax"),
         "scaling method 'minmax' needs a zero-point format, int4 has none"),
        (np.zeros((2, 128)), "int4_asym", Scaling(method="absmax"),
         "int4_asym has a zero point: use scaling method 'minmax', not 'absmax'"),
        (np.array([[1.0, np.nan] * 64]), "int4", None,
         "x contains NaN or Inf; tensor quantization needs finite input"),
        (np.array([[1.0, np.inf] * 64]), "nf4", None,
         "x contains NaN or Inf; tensor quantization needs finite input"),
        (np.zeros(0), "int4", None,
         "x must be a non-empty array with at least one axis, got shape (0,)"),
        (np.float64(1.0), "int4", None,
         "x must be a non-empty array with at least one axis, got shape ()"),
        (np.ones(128, dtype=bool), "int4", None, "x must be a real numeric array, not bool"),
    ],
)
def test_bad_quantize_input(x: np.ndarray, name: str, scaling: Scaling | None,
                            message: str) -> None:
    with pytest.raises(MacforgeError) as ei:
        quantize(x, get_format(name), scaling)
    assert str(ei.value) == message


def test_bad_codes_and_zero_points() -> None:
    int4, asym = get_format("int4"), get_format("int4_asym")
    with pytest.raises(MacforgeError, match=re.escape("codes out of range for 4-bit format int4")):
        int4.decode(np.array([16]))
    with pytest.raises(MacforgeError, match=re.escape("codes must be integers, not float64")):
        int4.decode(np.array([1.0]))
    with pytest.raises(MacforgeError,
                       match=re.escape("format int4 has no zero point; got zero_point")):
        int4.encode(np.array([1.0]), 3)
    with pytest.raises(MacforgeError,
                       match=re.escape("zero_point out of range 0..15 for int4_asym")):
        asym.encode(np.array([1.0]), 16)


# ------------------------------------------------------------------------ storage cost
@pytest.mark.parametrize(
    ("name", "scaling", "bits"),
    [
        ("int4", Scaling(group_size=128, scale_format="fp16"), 4.125),
        ("int4", None, 4.125),  # default: g128 fp16
        ("nf4", None, 4.5),  # block 64, FP32 absmax (PAPERS.md §5)
        ("mxfp4", None, 4.25),  # block 32, E8M0
        ("nvfp4", None, 4.5 + 32 / 4096**2),  # block 16 UE4M3 + one FP32 per 4096×4096 tensor
        ("decoupleq_int2", None, 2.25),  # 2 + 32/128: FP16 scale and offset (PAPERS.md §4)
        ("decoupleq_int2", Scaling(method="affine", group_size=64), 2.5),
        ("dint4_asym", None, 4 + 20 / 128),  # FP16 scale + 4-bit zero point per 128
        ("fp4_e2m1", Scaling(group_size=64, scale_format="bf16"), 4.25),
        ("fp16", None, 16.0),
    ],
)
def test_storage_bits(name: str, scaling: Scaling | None, bits: float) -> None:
    fmt = get_format(name)
    assert storage_bits_per_element(fmt, scaling) == pytest.approx(bits, rel=0, abs=1e-12)
    assert fmt.bits_per_element(scaling) == pytest.approx(bits, rel=0, abs=1e-12)


def test_storage_bits_channel_and_outliers() -> None:
    int4 = get_format("int4")
    ch = Scaling(granularity="channel", scale_format="fp16")
    assert storage_bits_per_element(int4, ch, (10, 512)) == 4 + 16 / 512
    assert storage_bits_per_element(int4, ch) == 4 + 16 / 4096  # documented default row length
    base = Scaling(group_size=64, scale_format="bf16")
    with_out = Scaling(group_size=64, scale_format="bf16", outlier_fraction=2**-10)
    extra = storage_bits_per_element(int4, with_out) - storage_bits_per_element(int4, base)
    assert extra == pytest.approx(48 * 2**-10, abs=1e-12)  # BF16 value + 32-bit index each
    assert extra == pytest.approx(0.047, abs=0.0005)
    x = np.random.default_rng(0).standard_normal((8, 128))
    q = quantize(x, int4, with_out)
    assert q.bits_per_element == storage_bits_per_element(int4, with_out, (8, 128))


def test_outliers_restored_bf16_exact() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 256))
    spikes = rng.choice(x.size, 4, replace=False)
    x.reshape(-1)[spikes] = [37.123456, -55.5555, 80.01, -12.3456789]
    sc = Scaling(group_size=64, scale_format="bf16", outlier_fraction=2**-10)  # 4 of 4096
    q = quantize(x, get_format("int4"), sc)
    np.testing.assert_array_equal(q.outlier_index, np.sort(spikes))
    xq = q.dequantize()
    flat = xq.reshape(-1)
    expected = np.sign(x.reshape(-1)[spikes]) * round_scale(np.abs(x.reshape(-1)[spikes]), "bf16")
    np.testing.assert_array_equal(np.sort(flat[spikes]), np.sort(expected))
    assert not np.array_equal(flat[spikes], x.reshape(-1)[spikes])  # bf16-rounded, not raw
    # the dense part was scaled without the spikes: far better than quantizing with them
    plain_sc = Scaling(group_size=64, scale_format="bf16")
    plain = quantize(x, get_format("int4"), plain_sc).dequantize()
    rest = np.ones(x.size, dtype=bool)
    rest[spikes] = False
    err_out = np.mean((flat - x.reshape(-1))[rest] ** 2)
    err_plain = np.mean((plain.reshape(-1) - x.reshape(-1))[rest] ** 2)
    assert err_out < 0.5 * err_plain


# ------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("shape", [(256,), (4, 256), (2, 3, 256)])
@pytest.mark.parametrize(
    ("granularity", "scales_tail"),
    [("tensor", None), ("channel", (1,)), ("group", (4,))],
)
def test_shapes(shape: tuple[int, ...], granularity: str,
                scales_tail: tuple[int, ...] | None) -> None:
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    sc = Scaling(granularity=granularity,  # type: ignore[arg-type]
                 group_size=64, scale_format="fp32")
    q = quantize(x, get_format("int8"), sc)
    assert q.codes.shape == shape and q.shape == shape
    expected_scales = (1,) if scales_tail is None else shape[:-1] + scales_tail
    assert q.scales.shape == expected_scales
    xq = dequantize(q)
    assert xq.shape == shape and xq.dtype == np.float64
    # absmax int8 without saturation: every element within half a step of its scale
    if granularity == "tensor":
        s = q.scales[0]
    else:
        s = np.repeat(q.scales, x.shape[-1] // q.scales.shape[-1], axis=-1)
    assert (np.abs(xq - x) <= 0.5 * s * (1 + 1e-12)).all()


@pytest.mark.parametrize("name",
                         ["int4_asym", "dint4_asym", "decoupleq_int2", "mxfp4", "nvfp4", "nf4"])
def test_default_scalings_keep_shape(name: str) -> None:
    x = np.random.default_rng(7).standard_normal((3, 2, 256))
    q = quantize(x, get_format(name))
    assert dequantize(q).shape == x.shape
    fmt = get_format(name)
    # a sane reconstruction, not garbage: 4-bit formats ~0.01, 2-bit ~0.1 on N(0, 1)
    assert np.mean((dequantize(q) - x) ** 2) < 0.5 * 4.0 ** -(fmt.bits - 2)


# ------------------------------------------------------------------------ tiny and constant groups
def test_tiny_group_with_fp16_scale() -> None:
    x = np.zeros((1, 128))
    x[0, 1] = 1e-9
    xq = quantize(x, get_format("int4")).dequantize()
    assert np.isfinite(xq).all()


def test_decoupleq_constant_group() -> None:
    x = np.random.default_rng(0).standard_normal((2, 256))
    x[0, :128] = 0.0  # e.g. a pruned group
    xq = quantize(x, get_format("decoupleq_int2")).dequantize()
    np.testing.assert_array_equal(xq[0, :128], 0.0)


# ------------------------------------------------------------------------ _analysis helpers
def test_lloyd_max_clusters() -> None:
    x = np.concatenate([np.full(100, -1.0), np.full(50, 1.0), np.full(70, 5.0)])
    np.testing.assert_allclose(lloyd_max(x, 3), [-1.0, 1.0, 5.0])
    assert mse_of_levels(x, [-1.0, 1.0, 5.0]) == 0.0
    lv = lloyd_max(np.random.default_rng(0).uniform(-1, 1, 200_000), 4)
    np.testing.assert_allclose(lv, [-0.75, -0.25, 0.25, 0.75], atol=0.01)  # uniform: midpoints


def test_mse_of_levels_exact() -> None:
    # ties go to the lower level: 1 -> 0
    assert mse_of_levels([0.0, 1.0, 2.0, 3.5], [2.0, 0.0]) == pytest.approx((1 + 1.5**2) / 4)


def test_entropy_coded_uniform_small() -> None:
    x = np.random.default_rng(1).standard_normal(100_000)
    res = entropy_coded_uniform(x, 3.0)
    q = np.rint(x / res.step)
    assert 0.0 in q  # the grid has an exact zero
    _, counts = np.unique(q, return_counts=True)
    p = counts / x.size
    assert -np.sum(p * np.log2(p)) == pytest.approx(res.entropy_bits, abs=1e-12)
    assert res.entropy_bits == pytest.approx(3.0, abs=1e-4)
    assert res.mse == pytest.approx(np.mean((q * res.step - x) ** 2), rel=1e-12)
    assert res.mse == pytest.approx(res.step**2 / 12, rel=0.05)  # high-resolution regime
    assert entropy_coded_uniform(x, 2.0).mse > res.mse


def test_underflow_stats_exact() -> None:
    x = np.array([0.0, 0.1, -0.2, 1.0])
    xq = np.array([0.0, 0.0, 0.0, 1.25])
    st = underflow_stats(x, xq)
    assert st.flushed_fraction == pytest.approx(2 / 3)
    assert st.underflow_mse == pytest.approx((0.01 + 0.04) / 4)
    assert st.rounding_mse == pytest.approx(0.0625 / 4)
    assert st.mse == pytest.approx(st.underflow_mse + st.rounding_mse)
    assert underflow_stats(np.zeros(3), np.zeros(3)).flushed_fraction == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: lloyd_max(np.array([]), 4), "samples must not be empty"),
        (lambda: lloyd_max(np.array([1.0, np.nan]), 4), "samples contains NaN"),
        (lambda: lloyd_max(np.array([1.0, np.inf]), 4), "samples contains Inf"),
        (lambda: lloyd_max(np.arange(10.0), 1), "levels must be an integer >= 2, not 1"),
        (lambda: lloyd_max(np.arange(10.0), 2.5), "levels must be an integer >= 2, not 2.5"),
        (lambda: mse_of_levels(np.array([]), [0.0, 1.0]), "samples must not be empty"),
        (lambda: mse_of_levels(np.arange(3.0), []), "levels must not be empty"),
        (lambda: mse_of_levels(np.arange(3.0), [0.0, np.nan]), "levels must be finite"),
        (lambda: entropy_coded_uniform(np.arange(10.0), 0),
         "bits must be a positive finite number, not 0"),
        (lambda: entropy_coded_uniform(np.ones(10), 2.0),
         "samples are all equal: no step gives a positive entropy"),
        (lambda: entropy_coded_uniform(np.array([np.nan]), 2.0), "samples contains NaN"),
        (lambda: entropy_coded_uniform(np.arange(8.0), 3.0),
         "bits 3.0 is not below log2 of the number of distinct samples (3)"),
        (lambda: underflow_stats(np.zeros(3), np.zeros(4)),
         "x and xq must have the same shape, got (3,) and (4,)"),
        (lambda: underflow_stats(np.array([]), np.array([])), "x must not be empty"),
        (lambda: underflow_stats(np.zeros(2), np.array([0.0, np.nan])), "xq contains NaN"),
    ],
)
def test_analysis_errors(call: object, message: str) -> None:
    with pytest.raises(MacforgeError) as ei:
        call()  # type: ignore[operator]
    assert str(ei.value) == message
