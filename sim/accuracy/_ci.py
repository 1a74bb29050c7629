"""Uncertainty of a difference between two configurations evaluated on the same tokens: a
paired block bootstrap of the per-token NLL and KL (:func:`sim.accuracy.token_stats`).

Each evaluation window is cut into contiguous blocks of ``block`` scored tokens (neighbouring
tokens' errors are correlated, so tokens are not resampled one by one); blocks are drawn with
replacement, the same draw for both configurations (paired), and the statistic recomputed from
the drawn blocks' sums. The interval is the percentile interval of the draws.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from models.errors import MacforgeError

__all__ = ["PairedInterval", "paired_bootstrap"]


class PairedInterval(NamedTuple):
    """``b - a`` of perplexity and mean KL, each with its (lo, hi) percentile interval."""

    dppl: float
    dppl_lo: float
    dppl_hi: float
    dkl: float
    dkl_lo: float
    dkl_hi: float
    blocks: int
    draws: int

    @property
    def ppl_resolved(self) -> bool:
        """The interval excludes zero."""
        return self.dppl_lo > 0 or self.dppl_hi < 0

    @property
    def kl_resolved(self) -> bool:
        return self.dkl_lo > 0 or self.dkl_hi < 0


def _block_sums(v: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the contiguous blocks starting at ``edges`` within each row (window);
    the last block runs to the row's end."""
    w, n = v.shape
    sums = np.add.reduceat(v, edges, axis=1).reshape(-1)
    counts = np.tile(np.diff(np.append(edges, n)), w)
    return sums, counts


def paired_bootstrap(a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, block: int = 51,
                     draws: int = 2000, level: float = 0.95, seed: int = 0) -> PairedInterval:
    """Paired block-bootstrap interval of ``PPL(b) − PPL(a)`` and ``KL(b) − KL(a)``.

    Parameters
    ----------
    a, b
        ``{"nll": (windows, window-1), "kl": (windows, window)}`` per-token arrays of the same
        evaluation windows.
    block
        Scored tokens per resampled block (51: 5 blocks per 256-token window).
    draws
        Bootstrap resamples (seeded: the interval is reproducible).
    """
    for key in ("nll", "kl"):
        if a[key].shape != b[key].shape:
            raise MacforgeError(f"per-token {key} of the two runs differ in shape "
                                f"({a[key].shape} vs {b[key].shape}): not the same evaluation")
    if not isinstance(block, int) or block < 1 or not isinstance(draws, int) or draws < 1:
        raise MacforgeError(f"block and draws must be positive integers, not {block!r}, {draws!r}")
    if not 0.0 < level < 1.0:
        raise MacforgeError(f"level must be in (0, 1), not {level!r}")
    edges = np.arange(0, a["nll"].shape[1], block)
    na, cn = _block_sums(np.asarray(a["nll"], np.float64), edges)
    nb, _ = _block_sums(np.asarray(b["nll"], np.float64), edges)
    # KL: the same blocks of positions; the window's last position (no scored token after it)
    # joins the last block, so the KL point estimate is the mean over every position
    ka, ck = _block_sums(np.asarray(a["kl"], np.float64), edges)
    kb, _ = _block_sums(np.asarray(b["kl"], np.float64), edges)
    nblk = na.size
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, nblk, size=(draws, nblk))
    # times each block is drawn, per resample: the statistic is linear in the block sums
    times = np.zeros((draws, nblk))
    np.add.at(times, (np.repeat(np.arange(draws), nblk), idx.reshape(-1)), 1.0)
    n_tok, k_tok = times @ cn, times @ ck
    dppl = np.exp(times @ nb / n_tok) - np.exp(times @ na / n_tok)
    dkl = (times @ kb - times @ ka) / k_tok
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    p_lo, p_hi = np.percentile(dppl, q)
    k_lo, k_hi = np.percentile(dkl, q)
    point_ppl = float(np.exp(nb.sum() / cn.sum()) - np.exp(na.sum() / cn.sum()))
    point_kl = float((kb.sum() - ka.sum()) / ck.sum())
    return PairedInterval(point_ppl, float(p_lo), float(p_hi), point_kl, float(k_lo), float(k_hi),
                          nblk, draws)
