"""Is GPTQ under-calibrated here? Layer-level check on SmolLM2 (float model, no propagation of
quantization error): fit GPTQ on the Hessian of ``n`` calibration tokens and compare the
relative output error ``‖X (W − Ŵ)ᵀ‖² / ‖X Wᵀ‖²`` of RTN and GPTQ on the fitting tokens and on
held-out Wikipedia tokens (disjoint from both the fit and the evaluation windows).

GPTQ minimises the error on the fitting tokens; if its Hessian is estimated from too few of
them, the gain there does not carry over to other text. Cached as JSON under the quant cache.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from models import realdata as rd
from models.formats import get_format
from models.quant import gptq_quantize, hessian, weight_scaling

from ._blas import pinned_blas_threads
from ._run import RUN_BLAS_THREADS, _atomic_write, blas_tag, cache_dir
from ._smollm2 import SITES, _capture_sites

__all__ = ["gptq_holdout_check"]

_VERSION = 1


def _captures(seqs: list[np.ndarray], block: int, all_w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    emb = all_w["token_embd"]
    xs = [emb[s].astype(np.float32) for s in seqs]
    for i in range(block):
        xs = [rd.smollm2_block(x, i) for x in xs]
    cur = {f"blk.{block}.{n}": all_w[f"blk.{block}.{n}"]
           for n in rd.SMOLLM2_LINEARS + ("attn_norm", "ffn_norm")}
    return _capture_sites(xs, block, cur)


def gptq_holdout_check(blocks: tuple[int, ...] = (5, 20), budgets: tuple[int, ...] = (2048, 8192),
                       weights: str = "int4", group: int = 64, damp: float = 0.01,
                       heldout_tokens: int = 4096, seq_len: int = 512,
                       eval_tokens: int = 4096) -> list[dict[str, Any]]:
    """One record per (block, budget, linear): RTN / GPTQ relative output error on the fitting
    tokens and on held-out tokens. The text is the Wikipedia tail: held-out sequences are its
    last ``heldout_tokens``, fitting sequences the ``max(budgets)`` before them (a budget uses
    the first of those), all after the first ``eval_tokens`` (the evaluation windows)."""
    key = hashlib.sha256(json.dumps([_VERSION, blocks, budgets, weights, group, damp,
                                     heldout_tokens, seq_len, eval_tokens]).encode()).hexdigest()[:16]
    with pinned_blas_threads(RUN_BLAS_THREADS):
        path = cache_dir() / f"gptq_check_{key}_{blas_tag()}.json"
        if path.is_file():
            return json.loads(path.read_text())
        ids = rd.wiki_tokens()
        n_fit = max(budgets) // seq_len
        n_ho = heldout_tokens // seq_len
        start = ids.size - (n_fit + n_ho) * seq_len
        assert start >= eval_tokens, "Wikipedia text too short for the check"
        seqs = [np.asarray(ids[start + j * seq_len:start + (j + 1) * seq_len])
                for j in range(n_fit + n_ho)]
        fmt = get_format(weights)
        sc = weight_scaling(fmt, group)
        all_w = rd.smollm2_weights()
        first = {site: cons[0] if site != "attn_in" else "attn_q"
                 for site, (cons, _, _) in SITES.items()}
        out: list[dict[str, Any]] = []
        for b in blocks:
            caps = _captures(seqs, b, all_w)
            for site, lin in first.items():
                x = caps[site].astype(np.float64)
                x_ho = x[n_fit * seq_len:]
                w = np.asarray(all_w[f"blk.{b}.{lin}"], dtype=np.float64)
                rtn = fmt.quantize(w, sc).dequantize()

                def rel(xx: np.ndarray, q: np.ndarray) -> float:
                    return float(np.sum((xx @ (w - q).T) ** 2) / np.sum((xx @ w.T) ** 2))
                for n in budgets:
                    x_fit = x[:n]
                    g = gptq_quantize(w, hessian(x_fit), fmt, sc, damp=damp).weight.astype(np.float64)
                    out.append({"block": b, "linear": lin, "in_features": int(w.shape[1]),
                                "fit_tokens": n, "rtn_fit": rel(x_fit, rtn), "gptq_fit": rel(x_fit, g),
                                "rtn_heldout": rel(x_ho, rtn), "gptq_heldout": rel(x_ho, g)})
        _atomic_write(path, json.dumps(out, indent=1).encode())
    return out
