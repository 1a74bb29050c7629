"""sim.accuracy on SmolLM2, on tiny slices: a few blocks, one short window, a short calibration
text. Checks the plumbing and the exactness claims (folding, reference, bit-exact GEMM); the
full-size numbers come from bench/bench_quant.py and the report."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from models import realdata as rd
from models.errors import MacforgeError
from models.formats import get_format, storage_bits_per_element
from models.quant import ActQuantizer, fake_quant, weight_scaling
from sim.accuracy import (
    QuantConfig,
    add_parser,
    cmd_quant,
    export_streams,
    run_quant,
    run_study,
    window_kl,
)
from sim.accuracy._smollm2 import (
    SITES,
    ActHook,
    GoldenHook,
    _fold,
    _gqa_groups,
    calibration_sequences,
    linear_names,
)

TINY = dict(windows=1, window=16, blocks=(0, 1), calib_tokens=64, calib_len=32, alpha_points=4,
            search_tokens=64, search_rows=32)


@pytest.fixture(scope="module")
def _module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quant")


@pytest.fixture(autouse=True)
def _tmp_cache(_module_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one cache for the module: the unquantized reference of a window is computed once
    monkeypatch.setenv("MACFORGE_QUANT_CACHE", str(_module_cache))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="macforge")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, message", [
    ({"model": "gpt5"}, "unknown model 'gpt5'; known: smollm2, minilm"),
    ({"method": "awq"}, "unknown method 'awq'; known: rtn, smoothquant, aqas, slac, gptq, "
                        "aqas+gptq, slac+gptq, nupes, decoupleq"),
    ({"weights": "int3_asym"}, "unknown weight format 'int3_asym'; known: fp, int2"),
    ({"acts": "ue4m3"}, "format ue4m3 is a scale format; it cannot hold activations"),
    ({"weights": "int4", "method": "aqas"}, "method aqas balances weight and activation"),
    ({"weights": "fp", "group": 64}, "--group needs a quantized weight format"),
    ({"calib": "books"}, "unknown calibration text 'books'; known: wiki, news"),
    ({"model": "minilm", "weights": "int4", "acts": "int8"}, "model minilm is for weight-only"),
    ({"acts": "int8", "act_calibration": "static"}, "static activation calibration fixes one"),
])
def test_config_refusals(kw: dict, message: str) -> None:
    with pytest.raises(MacforgeError) as exc:
        QuantConfig(**kw)
    assert str(exc.value).startswith(message)


def test_group_that_does_not_divide_names_the_layer() -> None:
    qc = QuantConfig(weights="int4_asym", acts="int8", **TINY)  # default group 128, d = 576
    with pytest.raises(MacforgeError) as exc:
        run_quant(qc, progress=False)
    assert str(exc.value) == ("group size 128 does not divide the input (576) of layer "
                              "blk.0.attn_q; use --group 64 or --group channel")


def test_calibration_must_not_overlap_or_overrun() -> None:
    n = rd.wiki_tokens().size
    with pytest.raises(MacforgeError, match="calibration text too short"):
        calibration_sequences("wiki", 4096, 512, n - 1000)
    with pytest.raises(MacforgeError, match="the Lee corpus has"):
        calibration_sequences("news", 10 ** 7, 512, 0)
    seqs = calibration_sequences("wiki", 1024, 256, 8 * 512)
    assert len(seqs) == 4 and all(s.size == 256 for s in seqs)
    assert np.array_equal(seqs[-1], rd.wiki_tokens()[-256:])  # the tail: disjoint from eval


def test_cli_bad_input_raises_macforge_error() -> None:
    args = _parser().parse_args(["quant", "--weights", "int4", "--group", "sixty"])
    with pytest.raises(MacforgeError, match="--group must be a positive integer"):
        cmd_quant(args)
    args = _parser().parse_args(["quant", "--blocks", "a-b"])
    with pytest.raises(MacforgeError, match="--blocks must look like"):
        cmd_quant(args)


# ------------------------------------------------------------------------ exactness claims
def test_reference_logits_are_the_forward_logits() -> None:
    seq = rd.smollm2_eval_windows(1, 16)[0]
    logits = rd.smollm2_forward(seq).logits
    assert logits is not None
    assert np.array_equal(window_kl(0, 16, logits), np.zeros(16))


@pytest.mark.parametrize("site", list(SITES))
def test_folding_a_site_keeps_the_float_block(site: str) -> None:
    cfg = rd.smollm2_config()
    x = rd.smollm2_weights(["token_embd"])["token_embd"][rd.wiki_tokens()[:24]].astype(np.float32)
    base = rd.smollm2_block(x, 3)
    cur = {k: np.array(v) for k, v in rd.smollm2_weights(
        [f"blk.3.{n}" for n in rd.SMOLLM2_LINEARS + ("attn_norm", "ffn_norm")]).items()}
    width = cur[f"blk.3.{SITES[site][0][0]}"].shape[1]
    s = np.exp(np.random.default_rng(0).uniform(-1, 1, width))
    if site == "attn_out":  # GQA: tied over the query heads reading one value head
        g = _gqa_groups(cfg)
        s = s[np.unique(g, return_index=True)[1]][np.unique(g, return_inverse=True)[1]]
    _fold(cur, 3, site, s, cfg)
    changed = f"blk.3.{SITES[site][0][0]}"
    assert not np.array_equal(cur[changed], rd.smollm2_weights([changed])[changed])
    out = rd.smollm2_block(x, 3, weights=cur)
    assert np.allclose(out, base, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("wname", ["int4", "int4_asym", "dint4_asym", "dint4_sym"])
def test_golden_gemm_equals_fake_quant(wname: str) -> None:
    """Item 3: integer codes × int8 codes through models.golden.gemm, scales after == the float
    fake-quant product, to float rounding (a real SmolLM2 activation and weight)."""
    name = "blk.2.ffn_down"
    w = rd.smollm2_weights([name])[name]
    x = rd.smollm2_forward(rd.wiki_tokens()[:16], capture=[name], logits=False).captured[name]
    f = get_format(wname)
    sc = weight_scaling(f, 64)
    q = f.quantize(w, sc)
    aq = ActQuantizer(get_format("int8"))
    golden = GoldenHook(aq, {name}, {name: q})
    fake = ActHook(aq, {name})
    y_int = golden(name, x, w)
    y_fq = fake(name, x, q.dequantize().astype(np.float32))
    scale = float(np.max(np.abs(y_fq)))
    assert np.max(np.abs(y_int - y_fq)) <= 1e-5 * scale
    assert golden.signal[name] == fake.signal[name]  # same activation codes on both paths


# -------------------------------------------------------------------------------- the runs
def test_reference_run_reproduces_smollm2_perplexity() -> None:
    from sim.accuracy._blas import pinned_blas_threads
    from sim.accuracy._run import RUN_BLAS_THREADS

    doc = run_quant(QuantConfig(windows=1, window=16), progress=False)
    with pinned_blas_threads(RUN_BLAS_THREADS):  # the runs' BLAS threads: the same last bits
        assert doc["perplexity"] == rd.smollm2_perplexity(1, 16)
    assert doc["kl_vs_reference"] == 0.0
    assert doc["reference_perplexity"] == doc["perplexity"]


def test_rtn_w4a8_tiny_and_cache() -> None:
    qc = QuantConfig(weights="dint4_asym", acts="int8", group=64, **TINY)
    doc = run_quant(qc, progress=False)
    assert doc["cached"] is False and doc["kl_vs_reference"] > 0
    assert math.isfinite(doc["perplexity"])
    assert len(doc["layers"]) == 14
    lay = {r["name"]: r for r in doc["layers"]}
    w = rd.smollm2_weights(["blk.0.attn_q"])["blk.0.attn_q"]
    f = get_format("dint4_asym")
    wq = fake_quant(w, f, weight_scaling(f, 64))
    assert math.isclose(lay["blk.0.attn_q"]["weight_mse"],
                        float(np.mean((w.astype(np.float64) - wq) ** 2)), rel_tol=1e-9)
    assert lay["blk.0.attn_q"]["act_sqnr_db"] == lay["blk.0.attn_k"]["act_sqnr_db"]  # one input
    assert 20 < lay["blk.0.attn_q"]["act_sqnr_db"] < 60  # int8 per-token: ≈ 6 dB/bit
    # 4 bits + (16-bit scale + 4-bit zero point) / 64
    assert math.isclose(doc["weight_bits_per_element"], 4 + 20 / 64)
    again = run_quant(qc, progress=False)
    assert again["cached"] is True and again["perplexity"] == doc["perplexity"]


@pytest.mark.parametrize("method", ["smoothquant", "aqas", "slac", "gptq", "aqas+gptq"])
def test_methods_tiny(method: str) -> None:
    kw = dict(TINY, blocks=(0,)) if "gptq" in method else dict(TINY)  # GPTQ: one block
    if method == "slac":  # SLAC calibrates at the evaluation length (16) by default
        kw["calib_len"] = None
    qc = QuantConfig(weights="int4", acts="int8", group=64, method=method, **kw)
    doc = run_quant(qc, progress=False)
    assert math.isfinite(doc["perplexity"]) and doc["kl_vs_reference"] > 0
    assert doc["calibration_sequences"] == (64 // 16 if method == "slac" else 64 // 32)
    assert doc["configuration"]["calib_len"] == (16 if method == "slac" else 32)
    rec = doc["layers"][0]
    if "aqas" in method or method == "slac":
        assert 0.0 <= rec["alpha"] <= 0.95
    if "gptq" in method:
        assert rec["gptq_loss"] > 0
    # weights stay 4-bit: 16 distinct integers at most per group
    assert rec["weight_bits_per_element"] == 4 + 16 / 64


@pytest.mark.slow  # four H-weighted fits of a whole block (tests/test_quant.py covers the math)
def test_decoupleq_method_w2_tiny() -> None:
    kw = dict(TINY, blocks=(0,))
    doc = run_quant(QuantConfig(weights="decoupleq_int2", group=64, method="decoupleq",
                                decoupleq_iters=1, **kw), progress=False)
    rtn = run_quant(QuantConfig(weights="decoupleq_int2", group=64, **kw), progress=False)
    assert doc["calibration_sequences"] == 2
    # 2-bit integers + FP16 scale and offset per 64 weights
    assert doc["weight_bits_per_element"] == 2 + 32 / 64 == rtn["weight_bits_per_element"]
    assert doc["kl_vs_reference"] > 0
    with pytest.raises(MacforgeError, match="method decoupleq fits"):
        QuantConfig(weights="int4", method="decoupleq")


def test_nupes_method_picks_an_exponent_per_layer() -> None:
    doc = run_quant(QuantConfig(weights="nupes4_a1", group=64, method="nupes", windows=1,
                                window=16, blocks=(0,)), progress=False)
    exps = [r["nupes_exponent"] for r in doc["layers"]]
    assert len(exps) == 7 and all(0.5 <= a <= 1.0 for a in exps)
    with pytest.raises(MacforgeError, match="method nupes searches the exponent"):
        QuantConfig(weights="int4", method="nupes")


@pytest.mark.parametrize("wname", ["nf4", "mxfp4", "nvfp4", "crd4_normal_absmax64"])
def test_lut_formats_with_block_scaling_w4a16(wname: str) -> None:
    doc = run_quant(QuantConfig(weights=wname, windows=1, window=16, blocks=(0,)),
                    progress=False)
    f = get_format(wname)
    assert doc["kl_vs_reference"] > 0
    lay = doc["layers"][0]
    assert math.isclose(lay["weight_bits_per_element"],
                        storage_bits_per_element(f, f.default_scaling, tuple(lay["shape"])))


def test_sparse_outliers_cost_bits_and_cut_error() -> None:
    base = dict(weights="int4", group=64, windows=1, window=16, blocks=(0,))
    plain = run_quant(QuantConfig(**base), progress=False)
    out = run_quant(QuantConfig(outliers=2 ** -10, **base), progress=False)
    # PAPERS.md §2: 2^-10 of the weights as BF16 + 32-bit index = +0.047 bits/elem
    assert math.isclose(out["weight_bits_per_element"] - plain["weight_bits_per_element"],
                        2 ** -10 * 48, rel_tol=1e-9)
    assert out["layers"][0]["weight_mse"] < plain["layers"][0]["weight_mse"]
    with pytest.raises(MacforgeError, match="--outliers is supported with rtn"):
        QuantConfig(weights="int4", acts="int8", method="gptq", outliers=0.001)


def test_static_activation_calibration_and_news_text() -> None:
    qc = QuantConfig(weights="int4", acts="int8", group=64, act_granularity="tensor",
                     act_calibration="static", calib="news", **TINY)
    doc = run_quant(qc, progress=False)
    assert math.isfinite(doc["perplexity"])
    assert doc["configuration"]["calib"] == "news"


def test_kv_cache_quantization_changes_the_output() -> None:
    doc = run_quant(QuantConfig(kv="int4", windows=1, window=16, blocks=(0,)), progress=False)
    assert doc["kl_vs_reference"] > 0


def test_bitexact_run_equals_fake_quant_run() -> None:
    base = dict(weights="int4_asym", acts="int8", group=64, windows=1, window=16, blocks=(0,))
    fq = run_quant(QuantConfig(**base), progress=False)
    ge = run_quant(QuantConfig(bitexact=True, **base), progress=False)
    assert math.isclose(ge["perplexity"], fq["perplexity"], rel_tol=1e-4)


def test_cli_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["quant", "--weights", "int4_asym", "--group", "64", "--acts",
                                 "int8", "--windows", "1", "--window", "16", "--blocks", "0",
                                 "--json"])
    assert cmd_quant(args) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("perplexity", "kl_vs_reference", "weight_bits_per_element", "method",
                "configuration", "layers", "reference_perplexity"):
        assert key in doc
    assert doc["configuration"]["group"] == 64 and doc["method"] == "rtn"
    assert {"weight_sqnr_db", "act_sqnr_db", "weight_underflow_mse",
            "weight_rounding_mse"} <= set(doc["layers"][0])


def test_minilm_weight_only_study() -> None:
    doc = run_quant(QuantConfig(model="minilm", weights="dint4_sym", group=64), progress=False)
    assert doc["perplexity"] is None and len(doc["layers"]) == 36
    assert all(10 < r["weight_sqnr_db"] < 30 for r in doc["layers"])


def test_linear_names() -> None:
    assert linear_names([1])[0] == "blk.1.attn_q" and len(linear_names(range(30))) == 210


def test_run_study_table() -> None:
    tiny = QuantConfig(weights="dint4_asym", acts="int8", group=64, **TINY)
    df = run_study([QuantConfig(windows=1, window=16), tiny], progress=False)
    assert list(df["weights"]) == ["fp", "dint4_asym"]
    from sim.accuracy._blas import pinned_blas_threads

    with pinned_blas_threads(1):  # the runs' BLAS threads
        assert df["perplexity"][0] == rd.smollm2_perplexity(1, 16)
    assert 0 < df["underflow_share"][1] < 1 and df["mean_flushed_fraction"][1] > 0


def test_export_streams(tmp_path: Path) -> None:
    qc = QuantConfig(weights="dint4_asym", acts="int8", group=64, windows=1, window=16)
    info = export_streams(qc, "blk.0.ffn_down", tmp_path / "s.npz", n_tokens=8)
    z = np.load(tmp_path / "s.npz")
    assert z["act_codes"].shape == (8, 1536) and z["weight_codes"].shape == (576, 1536)
    assert int(np.abs(z["act_codes"]).max()) == 127 == info["act_absmax_code"]
    assert z["weight_zero_points"].shape == (576, 24) and str(z["weight_format"]) == "dint4_asym"
    with pytest.raises(MacforgeError, match="layer must be 'blk.<0..29>"):
        export_streams(qc, "blk.30.ffn_down", tmp_path / "t.npz")


def test_w4a8_accuracy_section_on_a_tiny_slice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.report_w4a8_accuracy as rep

    monkeypatch.setenv("MACFORGE_QUANT_CACHE", str(tmp_path))
    tiny = dict(windows=1, window=16, blocks=(0,))

    def rows() -> list[rep.Row]:
        return [rep.Row("main", "FP (reference)", QuantConfig(windows=1, window=16)),
                rep.Row("main", "W4A8 int4 RTN", QuantConfig(weights="int4", group=64,
                                                             acts="int8", **tiny)),
                rep.Row("main", "W4A8 dint4_sym RTN", QuantConfig(weights="dint4_sym", group=64,
                                                                  acts="int8", **tiny)),
                rep.Row("main", "W4A8 int4 AQAS", QuantConfig(weights="int4", group=64,
                                                              acts="int8", method="aqas", **tiny))]

    monkeypatch.setattr(rep, "report_configs", rows)
    part = rep.w4a8_accuracy_section(run_missing=False)  # nothing cached yet
    assert b"Not run yet (4 of 4 configurations" in part["w4a8_accuracy.md"]
    rep.warm_cache(rows()[:3])
    files = rep.w4a8_accuracy_section(run_missing=False)
    md = files["w4a8_accuracy.md"].decode()
    assert "Not run yet (1 of 4 configurations" in md and "W4A8 int4 AQAS" in md
    csv_lines = files["w4a8_accuracy.csv"].decode().strip().splitlines()
    assert len(csv_lines) == 5 and csv_lines[-1].endswith("not run")
    ppl = {r.label: run_quant(r.qc, progress=False)["perplexity"] for r in rows()[:3]}
    assert f"| W4A8 int4 RTN | {ppl['W4A8 int4 RTN']:.3f} |" in md
    # the head-to-head and the Pareto rows come from the same documents and the cost model
    diff = ppl["W4A8 dint4_sym RTN"] - ppl["W4A8 int4 RTN"]
    assert f"| RTN | int4 → dint4_sym | {ppl['W4A8 int4 RTN']:.3f} |" in md and f"{diff:.3f}" in md
    # the paired bootstrap row of the same pair, from the per-token NLL the runs kept
    assert f"| W4A8 dint4_sym RTN − W4A8 int4 RTN | {diff:+.3f} [" in md
    from sim.accel import pe_cost

    e = pe_cost("mac_dint4_sym_xint8", "model").energy_per_mac_pj
    assert f"| W4A8 dint4_sym RTN | mac_dint4_sym_xint8 |" in md and f"{e:.4f}" in md
    for png in ("w4a8_accuracy_pareto.png", "w4a8_accuracy_underflow.png"):
        assert files[png][:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra", [dict(method="aqas+gptq", blocks=(0,)),
                                   dict(bitexact=True, weights="int4_asym", blocks=(0,))])
def test_workers_give_the_same_result_bit_for_bit(extra: dict) -> None:
    """``workers=2`` runs calibration sequences and evaluation windows in threads; the result
    document (perplexity, per-token KL, per-layer weight and activation SQNR, α, GPTQ loss) is
    the serial one exactly, only the timings differ."""
    kw = dict(TINY, weights="int4", acts="int8", group=64, windows=3, calib_tokens=128)
    kw.update(extra)
    qc = QuantConfig(**kw)
    serial = run_quant(qc, progress=False, use_cache=False)
    threaded = run_quant(qc, progress=False, use_cache=False, workers=2)
    for doc in (serial, threaded):
        doc.pop("timing_s")
        doc.pop("quantize_cpu_s", None)
    assert serial["calibration_sequences"] == (4 if "method" in extra else 0)
    assert threaded == serial
    with pytest.raises(MacforgeError, match="workers must be a positive integer"):
        run_quant(qc, progress=False, workers=0)
