"""Gradients of SmolLM2's log-likelihood with respect to its block linears, and the diagonal
Fisher of every linear estimated from labels sampled from the model itself (PAPERS.md §2).

The forward mirrors :func:`models.realdata.smollm2_forward` (RMSNorm, rotate-half RoPE, causal
GQA attention, SwiGLU, final norm, tied LM head) but keeps what the backward needs; the
backward is written out op by op (checked against finite differences in tests/test_fisher.py).

Fisher estimate: for an input sequence x (real text) and labels y_t ~ p(·|x_≤t) drawn from the
model, the score g = ∇ Σ_t log p(y_t|x_≤t). Given x the y_t are independent with zero-mean
scores, so E[g²] = Σ_t E[g_t²]: one backward per sequence gives an unbiased estimate of the
per-token diagonal Fisher summed over its tokens; dividing by the token count gives the mean
per-token Fisher ``F``. Per tensor the allocation uses f̄ = mean of F over its elements.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from models import realdata as rd
from models.errors import MacforgeError

from ._blas import pinned_blas_threads
from ._smollm2 import calibration_sequences

__all__ = ["smollm2_loss_and_grads", "smollm2_fisher"]

FISHER_VERSION = 1


def _rms(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * r, r


def _rms_back(dy: np.ndarray, g: np.ndarray, xn: np.ndarray, r: np.ndarray) -> np.ndarray:
    # y = xn * g, xn = x * r, r = (mean x² + eps)^-1/2  ->  dx = r (d - xn · mean(d xn))
    d = dy * g
    return r * (d - xn * np.mean(d * xn, axis=-1, keepdims=True))


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return x * cos + np.concatenate([-x[..., half:], x[..., :half]], axis=-1) * sin


def _rope_back(dy: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    # y = x cos + R x sin with R x = [-x2, x1]; Rᵀ z = [z2, -z1]
    half = dy.shape[-1] // 2
    z = dy * sin
    return dy * cos + np.concatenate([z[..., half:], -z[..., :half]], axis=-1)


def smollm2_loss_and_grads(tokens: np.ndarray, labels: np.ndarray | Callable[[np.ndarray], np.ndarray],
                           *, n_layers: int | None = None,
                           weights: Mapping[str, np.ndarray] | None = None,
                           dtype: Any = np.float32) -> tuple[float, dict[str, np.ndarray]]:
    """``L = Σ_t −log p(labels_t | tokens_≤t)`` and ``∂L/∂W`` of every block linear.

    Parameters
    ----------
    tokens, labels
        1-D integer arrays of one length: the input sequence and the target at each position;
        ``labels`` may be a function of the (tokens, vocab) logits (labels sampled from the
        model's own output, without a second forward).
    n_layers
        Run only the first ``n_layers`` blocks, then the final norm and the LM head (a smaller
        model with the same ops; the tests' tiny slice). Default: all 30.
    weights
        Replacement tensors by name (default: :func:`models.realdata.smollm2_weights`).
    dtype
        Arithmetic precision (float64 for finite-difference checks).

    Returns
    -------
    (float, dict[str, numpy.ndarray])
        The loss and the (out, in) gradient of each ``blk.<i>.<linear>``.
    """
    cfg = rd.smollm2_config()
    ids = np.asarray(tokens)

    def check(y: np.ndarray) -> np.ndarray:
        if ids.ndim != 1 or ids.shape != y.shape or ids.size == 0 or ids.dtype.kind not in "iu" \
                or y.dtype.kind not in "iu":
            raise MacforgeError("tokens and labels must be non-empty 1-D integer arrays of one "
                                "length")
        return y

    if not callable(labels):
        check(np.asarray(labels))
    n_layers = cfg.n_layers if n_layers is None else int(n_layers)
    if not 1 <= n_layers <= cfg.n_layers:
        raise MacforgeError(f"n_layers must be in 1..{cfg.n_layers}, not {n_layers}")

    def w(name: str) -> np.ndarray:
        src = weights[name] if weights is not None and name in weights else \
            rd.smollm2_weights([name])[name]
        return np.asarray(src, dtype=dtype)

    T, hd, H, Hk = ids.size, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads
    grp = H // Hk
    cos, sin = (a.astype(dtype) for a in rd._rope_tables(T, hd, cfg.rope_base))
    mask = np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)
    scale = dtype(1.0 / math.sqrt(hd))
    eps = dtype(cfg.rms_eps)
    x = w("token_embd")[ids]
    saved = []
    for i in range(n_layers):
        p = f"blk.{i}."
        s: dict[str, Any] = {}
        s["x"] = x
        s["xn1"], s["r1"] = _rms(x, eps)
        h = s["h"] = s["xn1"] * w(p + "attn_norm")
        q = _rope((h @ w(p + "attn_q").T).reshape(T, H, hd).transpose(1, 0, 2), cos, sin)
        k = _rope((h @ w(p + "attn_k").T).reshape(T, Hk, hd).transpose(1, 0, 2), cos, sin)
        v = (h @ w(p + "attn_v").T).reshape(T, Hk, hd).transpose(1, 0, 2)
        kr, vr = np.repeat(k, grp, axis=0), np.repeat(v, grp, axis=0)
        sc = q @ kr.transpose(0, 2, 1) * scale + mask
        sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
        P = sc / sc.sum(axis=-1, keepdims=True)
        a = (P @ vr).transpose(1, 0, 2).reshape(T, H * hd)
        s.update(q=q, kr=kr, vr=vr, P=P, a=a)
        x = x + a @ w(p + "attn_output").T
        s["x2"] = x
        s["xn2"], s["r2"] = _rms(x, eps)
        h2 = s["h2"] = s["xn2"] * w(p + "ffn_norm")
        gt, up = h2 @ w(p + "ffn_gate").T, h2 @ w(p + "ffn_up").T
        sig = 1.0 / (1.0 + np.exp(-gt))
        m = gt * sig * up
        s.update(gt=gt, up=up, sig=sig, m=m)
        x = x + m @ w(p + "ffn_down").T
        saved.append(s)
    xnf, rf = _rms(x, eps)
    gout = w("output_norm")
    emb = w("token_embd")
    logits = (xnf * gout) @ emb.T
    y = check(np.asarray(labels(logits) if callable(labels) else labels))
    top = logits.max(axis=-1, keepdims=True)
    e = np.exp(logits - top)
    z = e.sum(axis=-1, keepdims=True)
    loss = float(np.sum(np.log(z[:, 0]) + top[:, 0] - logits[np.arange(T), y]))
    dlog = e / z
    dlog[np.arange(T), y] -= 1.0
    dx = _rms_back(dlog @ emb, gout, xnf, rf)
    del e, dlog, logits

    grads: dict[str, np.ndarray] = {}
    for i in reversed(range(n_layers)):
        p, s = f"blk.{i}.", saved[i]
        # ffn: x3 = x2 + (silu(gate) * up) @ Wd.T
        grads[p + "ffn_down"] = dx.T @ s["m"]
        dm = dx @ w(p + "ffn_down")
        gt, sig = s["gt"], s["sig"]
        dup = dm * gt * sig
        dgt = dm * s["up"] * sig * (1.0 + gt * (1.0 - sig))
        grads[p + "ffn_gate"] = dgt.T @ s["h2"]
        grads[p + "ffn_up"] = dup.T @ s["h2"]
        dh2 = dgt @ w(p + "ffn_gate") + dup @ w(p + "ffn_up")
        dx = dx + _rms_back(dh2, w(p + "ffn_norm"), s["xn2"], s["r2"])
        # attention: x2 = x + attn(h) @ Wo.T
        grads[p + "attn_output"] = dx.T @ s["a"]
        da = (dx @ w(p + "attn_output")).reshape(T, H, hd).transpose(1, 0, 2)
        P = s["P"]
        dP = da @ s["vr"].transpose(0, 2, 1)
        dvr = P.transpose(0, 2, 1) @ da
        dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True)) * scale
        dq = dS @ s["kr"]
        dkr = dS.transpose(0, 2, 1) @ s["q"]
        dk = dkr.reshape(Hk, grp, T, hd).sum(axis=1)
        dv = dvr.reshape(Hk, grp, T, hd).sum(axis=1)
        dq_lin = _rope_back(dq, cos, sin).transpose(1, 0, 2).reshape(T, H * hd)
        dk_lin = _rope_back(dk, cos, sin).transpose(1, 0, 2).reshape(T, Hk * hd)
        dv_lin = dv.transpose(1, 0, 2).reshape(T, Hk * hd)
        h = s["h"]
        grads[p + "attn_q"] = dq_lin.T @ h
        grads[p + "attn_k"] = dk_lin.T @ h
        grads[p + "attn_v"] = dv_lin.T @ h
        dh = dq_lin @ w(p + "attn_q") + dk_lin @ w(p + "attn_k") + dv_lin @ w(p + "attn_v")
        dx = dx + _rms_back(dh, w(p + "attn_norm"), s["xn1"], s["r1"])
        saved[i] = {}  # free this block's activations
    return loss, grads


def _sampler(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """logits -> one label per position drawn from the model's next-token distribution."""
    return lambda logits: _sample_labels(logits, rng)


def _sample_labels(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lg = logits.astype(np.float64)
    pr = np.exp(lg - lg.max(axis=-1, keepdims=True))
    pr /= pr.sum(axis=-1, keepdims=True)
    u = rng.random(lg.shape[0])[:, None]
    return np.minimum((np.cumsum(pr, axis=-1) < u).sum(axis=-1), lg.shape[1] - 1).astype(np.int64)


def smollm2_fisher(n_seqs: int = 4, seq_len: int = 512, *, calib: str = "wiki", seed: int = 0,
                   eval_tokens: int = 8 * 512, cache: bool = True,
                   progress: Any = None) -> dict[str, Any]:
    """Mean diagonal Fisher per block linear of SmolLM2 (the module docstring's estimate).

    ``n_seqs`` calibration sequences of ``seq_len`` tokens (:func:`calibration_sequences`:
    disjoint from the first ``eval_tokens`` evaluation tokens), one label sample per position.
    Cached as JSON under the quant cache. Returns ``{"fisher": {name: f̄}, "rms": {name: RMS},
    "sizes": {name: n}, "tokens": n_seqs·seq_len, ...}``.
    """
    from ._run import _atomic_write, cache_dir

    key = f"fisher_v{FISHER_VERSION}_{calib}_n{n_seqs}_L{seq_len}_s{seed}_e{eval_tokens}"
    path = cache_dir() / f"{key}.json"
    if cache and path.is_file():
        return json.loads(path.read_text())
    seqs: Sequence[np.ndarray] = calibration_sequences(calib, n_seqs * seq_len, seq_len, eval_tokens)
    rng = np.random.default_rng(seed)
    sq: dict[str, np.ndarray] = {}
    with pinned_blas_threads(1):  # small GEMMs: OpenBLAS threads only spin (see _blas)
        for seq in seqs:
            _, grads = smollm2_loss_and_grads(seq, _sampler(rng))
            for name, g in grads.items():
                g64 = g.astype(np.float64)
                sq[name] = sq.get(name, 0.0) + g64 * g64
            if progress is not None:
                progress()
    n_tok = len(seqs) * seq_len
    names = [n for n in rd.smollm2_weights() if n in sq]
    ws = rd.smollm2_weights(names)
    doc = {
        "fisher": {n: float(np.mean(sq[n]) / n_tok) for n in names},
        "rms": {n: float(np.sqrt(np.mean(np.square(ws[n], dtype=np.float64)))) for n in names},
        "sizes": {n: int(ws[n].size) for n in names},
        "tokens": n_tok, "sequences": len(seqs), "seq_len": seq_len, "calib": calib, "seed": seed,
    }
    _atomic_write(path, json.dumps(doc, indent=1).encode())
    return doc
