"""Paired bootstrap intervals (sim.accuracy._ci), the per-token NLL / KL a run keeps, the 3-bit
decoupleQ format and the GPTQ calibration check, on synthetic data or a tiny slice."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.errors import MacforgeError
from models.formats import get_format
from models.quant import decoupleq_quantize, fake_quant, gptq_quantize, hessian, hessian_loss, weight_scaling
from sim.accuracy import QuantConfig, run_quant
from sim.accuracy._ci import paired_bootstrap
from sim.accuracy._run import token_stats


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACFORGE_QUANT_CACHE", str(tmp_path))


def _runs(shift: float, noise: float, seed: int = 0) -> tuple[dict, dict]:
    r = np.random.default_rng(seed)
    a = {"nll": r.gamma(2.0, 1.5, (8, 255)), "kl": r.gamma(1.0, 0.2, (8, 256))}
    b = {"nll": a["nll"] + shift + r.normal(0, noise, (8, 255)),
         "kl": a["kl"] + shift / 10 + r.normal(0, noise / 10, (8, 256))}
    return a, b


def test_bootstrap_point_estimate_and_resolution() -> None:
    a, b = _runs(0.05, 0.3)
    ci = paired_bootstrap(a, b)
    want = math.exp(b["nll"].mean()) - math.exp(a["nll"].mean())
    assert ci.dppl == pytest.approx(want, rel=1e-12)
    assert ci.dkl == pytest.approx(b["kl"].mean() - a["kl"].mean(), rel=1e-12)
    assert ci.dppl_lo < ci.dppl < ci.dppl_hi and ci.ppl_resolved and ci.kl_resolved
    assert ci.blocks == 40  # 5 blocks of 51 per 255-token window
    assert paired_bootstrap(a, b) == ci  # seeded
    # pure noise around the same model: the interval straddles 0
    a2, b2 = _runs(0.0, 0.3, seed=3)
    assert not paired_bootstrap(a2, b2).ppl_resolved
    # pairing matters: the same shift with unpaired-looking noise is wider when paired noise grows
    wide = paired_bootstrap(*_runs(0.05, 1.5))
    assert wide.dppl_hi - wide.dppl_lo > ci.dppl_hi - ci.dppl_lo


def test_bootstrap_refuses_different_evaluations() -> None:
    a, b = _runs(0.0, 0.1)
    with pytest.raises(MacforgeError, match="not the same evaluation"):
        paired_bootstrap(a, {"nll": b["nll"][:4], "kl": b["kl"][:4]})
    with pytest.raises(MacforgeError, match="level"):
        paired_bootstrap(a, b, level=1.0)


def test_a_run_keeps_per_token_nll_that_give_its_perplexity() -> None:
    qc = QuantConfig(weights="int4", group=64, acts="int8", windows=2, window=16, blocks=(0,))
    doc = run_quant(qc, progress=False)
    t = token_stats(qc)
    assert t is not None and t["nll"].shape == (2, 15) and t["kl"].shape == (2, 16)
    assert math.exp(t["nll"].mean()) == pytest.approx(doc["perplexity"], rel=1e-12)
    assert t["kl"].mean() == pytest.approx(doc["kl_vs_reference"], rel=1e-12)
    assert run_quant(qc, progress=False)["cached"] and token_stats(qc) is not None


def test_calibrated_run_reports_cpu_time_by_phase() -> None:
    qc = QuantConfig(weights="int4", group=64, method="gptq", windows=1, window=16, blocks=(0,),
                     calib_tokens=64, calib_len=32)
    ph = run_quant(qc, progress=False)["quantize_cpu_s"]
    assert set(ph) == {"calibration forward", "gptq"} and all(v >= 0 for v in ph.values())


def test_decoupleq_int3_format_and_layer_step() -> None:
    f = get_format("decoupleq_int3")
    assert f.bits == 3 and f.kind == "affine" and sorted(f.values) == list(range(-4, 4))
    sc = weight_scaling(f, 64)
    assert f.bits_per_element(sc) == pytest.approx(3 + 32 / 64)  # FP16 scale + FP16 offset
    r = np.random.default_rng(5)
    x = r.standard_normal((1024, 128)) @ r.standard_normal((128, 128)) * 0.3
    w = r.standard_normal((32, 128))
    h = hessian(x)
    res = decoupleq_quantize(w, h, f, sc, iters=2)
    assert set(np.unique(f.decode(res.quantized.codes))) <= set(range(-4, 4))
    hd = h + 0.01 * np.mean(np.diag(h)) * np.eye(128)
    loss_rtn = hessian_loss(w, fake_quant(w, f, sc), hd).sum()
    assert res.loss < hessian_loss(w, gptq_quantize(w, h, f, sc).weight, hd).sum() < loss_rtn
    # 3 bits beat 2 bits of the same construction
    f2 = get_format("decoupleq_int2")
    assert res.loss < decoupleq_quantize(w, h, f2, weight_scaling(f2, 64), iters=2).loss


def test_gptq_check_on_a_tiny_slice() -> None:
    from sim.accuracy._gptq_check import gptq_holdout_check

    recs = gptq_holdout_check(blocks=(0,), budgets=(32, 64), heldout_tokens=32, seq_len=32)
    assert len(recs) == 8 and {r["fit_tokens"] for r in recs} == {32, 64}
    for r in recs:  # GPTQ minimises the error on its own fitting tokens
        assert r["gptq_fit"] < r["rtn_fit"]
    # 32 tokens for 576 or 1536 inputs: the fit does not carry over to other text
    assert all(r["gptq_heldout"] > r["gptq_fit"] for r in recs)
