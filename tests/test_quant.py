"""models.quant on synthetic arrays: RTN scaling overrides, activation quantizers, SmoothQuant,
AQAS, GPTQ, error measures. No model, no real data: fast."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.errors import MacforgeError
from models.formats import Scaling, get_format
from models.quant import (
    ActQuantizer,
    alpha_grid,
    aqas_scales,
    check_group,
    decoupleq_quantize,
    fake_quant,
    gptq_quantize,
    gptq_quantize_shared,
    hessian,
    hessian_loss,
    kl_per_token,
    nupes_exponents,
    nupes_search,
    smoothquant_scales,
    sqnr_db,
    tie_channels,
    weight_error,
    weight_scaling,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------ weights
def test_weight_scaling_overrides_keep_method_and_scale_format() -> None:
    f = get_format("int4_asym")
    sc = weight_scaling(f, 64)
    assert (sc.granularity, sc.group_size, sc.method, sc.scale_format, sc.zero_point_bits) == (
        "group", 64, "minmax", "fp16", 4)
    assert weight_scaling(f, "channel").granularity == "channel"
    assert weight_scaling(f, "tensor").granularity == "tensor"
    assert weight_scaling(f, None) is f.default_scaling
    assert weight_scaling(get_format("mxfp4"), 64).method == "mx"


def test_weight_scaling_refusals() -> None:
    with pytest.raises(MacforgeError, match="group must be a positive integer"):
        weight_scaling(get_format("int4"), 0)
    with pytest.raises(MacforgeError, match="fp16 is used unscaled"):
        weight_scaling(get_format("fp16"), 64)


def test_check_group_names_the_layer() -> None:
    with pytest.raises(MacforgeError) as exc:
        check_group("blk.3.ffn_up", 576, Scaling(group_size=128))
    assert str(exc.value) == ("group size 128 does not divide the input (576) of layer "
                              "blk.3.ffn_up; use --group 64 or --group channel")
    check_group("blk.3.ffn_down", 1536, Scaling(group_size=128))  # 1536 = 12 × 128: fine


def test_fake_quant_is_the_format_quantizer() -> None:
    w = _rng().standard_normal((16, 128)).astype(np.float32)
    for name in ("int4", "int4_asym", "dint4_asym", "dint4_sym", "nf4", "mxfp4"):
        f = get_format(name)
        sc = weight_scaling(f, 64)
        assert np.array_equal(fake_quant(w, f, sc), f.quantize(w, sc).dequantize().astype(np.float32))
    # unscaled float format: element rounding only
    bf = fake_quant(w, get_format("bf16"), None)
    assert np.max(np.abs(bf - w) / np.abs(w)) <= 2.0 ** -8


def test_weight_error_split_adds_up_and_dint_flushes_less() -> None:
    w = _rng(1).laplace(size=(64, 128))
    res = {}
    for name in ("int4_asym", "dint4_asym"):
        f = get_format(name)
        e = weight_error(w, fake_quant(w, f, weight_scaling(f, 64)))
        assert math.isclose(e.rounding_mse + e.underflow_mse, e.mse, rel_tol=1e-12)
        res[name] = e
    # PAPERS.md §1.1: dINT's ±0.5 codes cut the weights flushed to zero and Δu
    assert res["dint4_asym"].flushed_fraction < res["int4_asym"].flushed_fraction
    assert res["dint4_asym"].underflow_mse < res["int4_asym"].underflow_mse


def test_sqnr_db() -> None:
    x = np.array([3.0, 4.0])
    assert sqnr_db(x, x) == math.inf
    assert math.isclose(sqnr_db(x, x + np.array([0.5, 0.0])), 10 * math.log10(25 / 0.25))


# -------------------------------------------------------------------------- activations
def test_act_quantizer_per_token_int8_matches_format() -> None:
    x = _rng(2).standard_normal((8, 32)) * np.arange(1, 9)[:, None]
    q = ActQuantizer(get_format("int8")).quantize(x)
    ref = get_format("int8").quantize(x, Scaling(granularity="channel", method="absmax",
                                                 scale_format="fp32"))
    assert np.array_equal(q.codes, ref.codes)
    assert q.scales.shape == (8,)
    assert np.allclose(q.scales, np.max(np.abs(x), axis=1) / 127, rtol=1e-7)
    # every token reaches ±127 (absmax per token)
    assert np.all(np.max(np.abs(get_format("int8").decode(q.codes)), axis=1) == 127)


def test_act_quantizer_static_and_tensor() -> None:
    x = _rng(3).standard_normal((4, 16))
    aq = ActQuantizer(get_format("int8"), "tensor", "static")
    s = aq.static_scale(2.0 * float(np.max(np.abs(x))))
    q = aq.quantize(x, s)
    assert q.scales.tolist() == [s]
    assert np.max(np.abs(get_format("int8").decode(q.codes))) < 127  # range left for outliers
    big = aq.quantize(x * 10, s)  # beyond the calibrated range: saturates
    assert np.max(get_format("int8").decode(big.codes)) == 127
    with pytest.raises(MacforgeError, match="static activation quantization needs a calibrated"):
        aq.quantize(x)
    t = ActQuantizer(get_format("int8"), "tensor").quantize(x)
    assert t.scales.shape == (1,)


def test_act_quantizer_refusals() -> None:
    with pytest.raises(MacforgeError, match="use --act-granularity tensor"):
        ActQuantizer(get_format("int8"), "token", "static")
    with pytest.raises(MacforgeError, match="ue4m3 is a scale format"):
        ActQuantizer(get_format("ue4m3"))
    with pytest.raises(MacforgeError, match="act granularity must be one of token, tensor"):
        ActQuantizer(get_format("int8"), "row")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- smoothing
def test_smoothquant_scales_formula_and_fold_is_exact() -> None:
    x = _rng(4).standard_normal((64, 8)).astype(np.float32)
    x[:, 2] *= 40
    w = _rng(5).standard_normal((6, 8)).astype(np.float32)
    s = smoothquant_scales(np.max(np.abs(x), axis=0), [w], 0.5)
    expect = np.sqrt(np.max(np.abs(x), axis=0)) / np.sqrt(np.max(np.abs(w), axis=0))
    assert np.allclose(s, expect)
    s32 = s.astype(np.float32)
    assert np.allclose((x / s32) @ (w * s32).T, x @ w.T, rtol=1e-5, atol=1e-4)
    # smoothing flattens the outlier channel
    assert np.max(np.abs(x / s32), axis=0).std() < np.max(np.abs(x), axis=0).std()


def test_tie_channels() -> None:
    stat = np.array([1.0, 5.0, 2.0, 4.0])
    groups = np.array([0, 0, 1, 1])
    assert tie_channels(stat, groups).tolist() == [5.0, 5.0, 4.0, 4.0]
    assert tie_channels(stat, groups, "mean").tolist() == [3.0, 3.0, 3.0, 3.0]
    s = smoothquant_scales(np.array([1.0, 9.0, 4.0, 4.0]), [np.ones((2, 4))], 0.5, groups)
    assert s[0] == s[1] and s[2] == s[3]


def test_aqas_beats_no_scaling_on_outlier_channels() -> None:
    rng = _rng(6)
    x = rng.standard_normal((256, 64)).astype(np.float32)
    x[:, [3, 17]] *= 60  # activation outlier channels (REALDATA.md: 115× the median)
    w = rng.standard_normal((48, 64)).astype(np.float32) * 0.05
    wf, af = get_format("int4"), ActQuantizer(get_format("int8"), "token")
    sc = weight_scaling(wf, 32)
    res = aqas_scales(x, [w], lambda v: fake_quant(v, wf, sc), lambda v: af.quantize(v).values,
                      alpha_grid(10), group_size=32, rows=None)
    assert res.alphas.size == 10 and res.alphas[0] == 0.0 and math.isclose(res.alphas[-1], 0.95)
    assert res.losses.min() == res.losses[np.argmin(res.losses)]
    assert res.alpha == float(res.alphas[np.argmin(res.losses)])
    assert res.losses.min() < 0.8 * res.loss_identity
    assert res.scales[3] > np.median(res.scales) and res.scales[17] > np.median(res.scales)


def test_aqas_row_subset_is_seeded() -> None:
    rng = _rng(7)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    w = rng.standard_normal((300, 32)).astype(np.float32)
    wf = get_format("int4")
    sc = weight_scaling(wf, 32)
    qa = ActQuantizer(get_format("int8"))
    args = (x, [w], lambda v: fake_quant(v, wf, sc), lambda v: qa.quantize(v).values,
            alpha_grid(3), 32)
    a = aqas_scales(*args, rows=50, seed=1)
    b = aqas_scales(*args, rows=50, seed=1)
    assert np.array_equal(a.losses, b.losses)
    with pytest.raises(MacforgeError, match="matching every weight's input"):
        aqas_scales(x[:, :16], [w], lambda v: v, lambda v: v)


# -------------------------------------------------------------------------------- GPTQ
def _correlated(n: int, k: int, seed: int) -> np.ndarray:
    rng = _rng(seed)
    return rng.standard_normal((n, k)) @ rng.standard_normal((k, k)) * 0.3


@pytest.mark.parametrize("name", ["int4", "int4_asym", "dint4_asym", "dint4_sym"])
def test_gptq_beats_rtn_on_correlated_inputs(name: str) -> None:
    x = _correlated(1024, 128, 8)
    w = _rng(9).standard_normal((64, 128))
    f = get_format(name)
    sc = weight_scaling(f, 64)
    res = gptq_quantize(w, hessian(x), f, sc, block_size=32)
    rtn = fake_quant(w, f, sc)
    e_gptq = np.sum((x @ (w - res.weight).T) ** 2)
    e_rtn = np.sum((x @ (w - rtn).T) ** 2)
    assert e_gptq < 0.7 * e_rtn
    # the codes and scales it returns are the format's container and decode to its weight
    assert np.array_equal(res.quantized.dequantize().astype(np.float32), res.weight)
    assert res.quantized.scales.shape == (64, 2)


@pytest.mark.parametrize("name,gran,block,act_order", [("int4_asym", 24, 64, False), ("dint4_sym", 24, 128, True),
                                                       ("int4", "channel", 50, False), ("dint4_asym", 8, 37, True)])
def test_gptq_two_level_lazy_updates_equal_one_level(monkeypatch: pytest.MonkeyPatch, name: str,
                                                     gran: object, block: int, act_order: bool) -> None:
    """The column loop's inner sub-blocks (``_SUB_BLOCK`` columns get each error at once, the
    rest of the block at the sub-block's end, plus a flush where a group starts) only
    reassociate the reference lazy-batch update (every column's error applied to the whole rest
    of its block at once: a sub-block as long as the block): same codes, weights to float
    rounding. Blocks longer than a sub-block, groups not aligned with it, with and without
    act_order."""
    import models.quant._gptq as G

    x = _correlated(512, 96 if gran != "channel" else 100, 21)
    w = _rng(22).standard_normal((40, x.shape[1]))
    f = get_format(name)
    sc = weight_scaling(f, gran)
    two = gptq_quantize(w, hessian(x), f, sc, block_size=block, act_order=act_order)
    monkeypatch.setattr(G, "_SUB_BLOCK", 1 << 30)
    one = gptq_quantize(w, hessian(x), f, sc, block_size=block, act_order=act_order)
    assert np.array_equal(two.quantized.codes, one.quantized.codes)
    np.testing.assert_allclose(two.weight, one.weight, rtol=1e-6, atol=1e-6)
    assert math.isclose(two.loss, one.loss, rel_tol=1e-9)


def test_gptq_with_identity_hessian_is_rtn() -> None:
    w = _rng(10).standard_normal((16, 64))
    for name, gran in (("int4_asym", 32), ("dint4_sym", "channel")):
        f = get_format(name)
        sc = weight_scaling(f, gran)
        res = gptq_quantize(w, np.eye(64), f, sc, block_size=16)
        assert np.array_equal(res.weight, fake_quant(w, f, sc))


def test_gptq_act_order_static_groups() -> None:
    x = _correlated(512, 64, 11)
    x[:, 5] *= 10
    w = _rng(12).standard_normal((32, 64))
    f = get_format("int4_asym")
    sc = weight_scaling(f, 32)
    res = gptq_quantize(w, hessian(x), f, sc, act_order=True, block_size=16)
    assert np.array_equal(res.quantized.dequantize().astype(np.float32), res.weight)
    rtn = fake_quant(w, f, sc)
    assert np.sum((x @ (w - res.weight).T) ** 2) < np.sum((x @ (w - rtn).T) ** 2)


def test_gptq_refusals() -> None:
    f = get_format("int4")
    w = np.ones((4, 8))
    with pytest.raises(MacforgeError, match=r"Hessian must be \(8, 8\)"):
        gptq_quantize(w, np.eye(4), f, weight_scaling(f, 8))
    with pytest.raises(MacforgeError, match="one-level scales only"):
        gptq_quantize(w, np.eye(8), get_format("nvfp4"), get_format("nvfp4").default_scaling)
    with pytest.raises(MacforgeError, match="group_size 3 does not divide the input"):
        gptq_quantize(w, np.eye(8), f, weight_scaling(f, 3))


# --------------------------------------------------------------------------------- KL
def test_kl_per_token() -> None:
    a = _rng(13).standard_normal((5, 11))
    assert np.allclose(kl_per_token(a, a), 0.0, atol=1e-12)
    assert np.allclose(kl_per_token(a, a + 3.0), 0.0, atol=1e-12)  # softmax is shift-invariant
    p = np.log(np.array([[0.75, 0.25]]))
    q = np.log(np.array([[0.5, 0.5]]))
    expect = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert math.isclose(float(kl_per_token(p, q)[0]), expect, rel_tol=1e-12)
    with pytest.raises(MacforgeError, match="two \\(tokens, vocab\\) arrays of one shape"):
        kl_per_token(a, a[:, :3])


def test_gptq_shared_input_equals_separate_runs() -> None:
    x = _correlated(512, 64, 14)
    h = hessian(x)
    ws = [_rng(15).standard_normal((24, 64)), _rng(16).standard_normal((8, 64))]
    f = get_format("dint4_asym")
    sc = weight_scaling(f, 32)
    shared = gptq_quantize_shared(ws, h, f, sc, block_size=16)
    for w, r in zip(ws, shared):
        alone = gptq_quantize(w, h, f, sc, block_size=16)
        assert np.array_equal(r.weight, alone.weight)
        assert np.array_equal(r.quantized.codes, alone.quantized.codes)
        assert np.array_equal(r.quantized.zero_points, alone.quantized.zero_points)
        assert np.allclose(r.row_loss, alone.row_loss, rtol=1e-9)


def test_nupes_search_finds_the_gaussian_optimum() -> None:
    # PAPERS.md §3 [calc]: N(0, 1), block 64, 4 bits: MSE minimal near a = 0.8, below a = 1
    w = _rng(17).standard_normal((512, 128))
    res = nupes_search(w, 4, 64, rows=None)
    assert res.format.name == f"nupes4_a{res.exponent:g}"
    assert 0.7 <= res.exponent <= 0.9
    assert res.mse.min() < res.mse[res.exponents == 1.0][0]
    assert nupes_exponents(6).tolist() == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_decoupleq_beats_gptq_and_rtn_on_the_hessian_loss() -> None:
    x = _correlated(1024, 128, 18)
    w = _rng(19).standard_normal((32, 128))
    h = hessian(x)
    f = get_format("decoupleq_int2")
    sc = weight_scaling(f, 64)
    res = decoupleq_quantize(w, h, f, sc, iters=3)
    assert all(b <= a for a, b in zip(res.history, res.history[1:]))  # rows only improve
    assert np.array_equal(res.quantized.dequantize().astype(np.float32), res.weight)
    assert set(np.unique(f.decode(res.quantized.codes))) <= {-2.0, -1.0, 0.0, 1.0}
    hd = h + 0.01 * np.mean(np.diag(h)) * np.eye(128)
    loss_rtn = hessian_loss(w, fake_quant(w, f, sc), hd).sum()
    loss_gptq = hessian_loss(w, gptq_quantize(w, h, f, sc).weight, hd).sum()
    assert res.loss < loss_gptq < loss_rtn


def test_decoupleq_identity_hessian_anchor() -> None:
    # PAPERS.md §4 [calc]: N(0,1), G = 64, H = I: alternating least squares MSE 0.1053
    w = _rng(20).standard_normal((256, 512))
    f = get_format("decoupleq_int2")
    res = decoupleq_quantize(w, 2 * np.eye(512), f, weight_scaling(f, 64), iters=2, damp=0.0)
    assert abs(float(np.mean((w - res.weight) ** 2)) - 0.1053) < 0.002
    with pytest.raises(MacforgeError, match="decoupleq needs an affine"):
        decoupleq_quantize(w, np.eye(512), get_format("int4"), weight_scaling(get_format("int4"), 64))


def test_gptq_fixed_parameters_keep_the_scales() -> None:
    w = _rng(21).standard_normal((16, 64))
    f = get_format("int4_asym")
    sc = weight_scaling(f, 32)
    rtn = f.quantize(w, sc)
    res = gptq_quantize(w, hessian(_correlated(256, 64, 22)), f, sc, fixed=rtn)
    assert np.array_equal(res.quantized.scales, rtn.scales)
    assert np.array_equal(res.quantized.zero_points, rtn.zero_points)


def test_gptq_refuses_double_quantized_scales() -> None:
    # the assembled result would drop the second-level scale codes and misreport its bits
    from models.formats import get_format
    from models.quant._gptq import gptq_quantize

    f = get_format("nf4_dq")
    with pytest.raises(MacforgeError, match=r"gptq supports one-level scales only .*double-quantized"):
        gptq_quantize(np.ones((4, 64)), np.eye(64), f, f.default_scaling)


# ------------------------------------------------------------------------------ fast paths
@pytest.mark.parametrize("name", ["int8", "int6", "int4", "int2"])
def test_act_per_token_fast_path_equals_the_format_quantizer(name: str) -> None:
    # heavy-tailed rows, an all-zero row, tiny and huge rows, exact ties (x.5 after scaling)
    x = _rng(21).standard_t(3, (12, 48)) * np.logspace(-6, 4, 12)[:, None]
    x[3] = 0.0
    x[5, :4] = [127.0, 63.5, -0.5, 0.25]
    from models.quant._acts import _rint_grid

    fmt = get_format(name)
    assert _rint_grid(fmt)  # the grid takes the fast path (else this test compares a path to itself)
    aq = ActQuantizer(fmt)
    got = aq.quantize(x)
    ref = fmt.quantize(x, aq.scaling)
    want = ref.dequantize().astype(np.float32)
    assert np.array_equal(got.values, want)
    assert np.array_equal(np.signbit(got.values), np.signbit(want))  # no -0.0 where decode gives 0
    assert np.array_equal(got.codes, ref.codes) and got.codes.dtype == ref.codes.dtype
    assert np.array_equal(got.scales, ref.scales.reshape(-1))
    assert not _rint_grid(get_format("int8_asym")) and not _rint_grid(get_format("fp8_e4m3"))
    with pytest.raises(MacforgeError, match="NaN or Inf"):
        aq.quantize(np.full((2, 4), np.nan))


def test_kl_per_token_rows_do_not_depend_on_chunking() -> None:
    from models.quant import log_softmax

    r = _rng(22).standard_normal((37, 300)) * 4
    q = r + _rng(23).standard_normal(r.shape)
    lr, lq = log_softmax(r), log_softmax(q)
    whole = np.sum(np.exp(lr) * (lr - lq), axis=-1)  # the formula on the whole matrix
    assert np.array_equal(kl_per_token(r, q), whole)
