"""Per-input-channel smoothing scales: SmoothQuant and AQAS (PAPERS.md §1.3).

A linear ``y = x Wᵀ`` is rewritten ``y = (x / s) (W · s)ᵀ`` with one scale per input channel;
``1/s`` is folded into whatever produces ``x`` (the preceding norm or linear: model-specific,
done by the caller), ``s`` into the weight columns before they are quantized.

* SmoothQuant (Xiao et al. 2023): ``s_j = max|X_j|^α / max|W_j|^(1-α)`` with a fixed α.
* AQAS (Lee et al. 2023, the dINT paper) [secondary/inferred, PAPERS.md §1.3]: the AWQ-style
  statistic ``s = mean|X|^α / mean|W|^(1-α)`` (normalised by ``sqrt(max s · min s)``) with α
  chosen on a grid (default 20 points in [0, 0.95]) to minimise
  ``‖Q_a(X / s) Q_w(W · s)ᵀ − X Wᵀ‖²`` — the weights *and the activations* quantized, unlike
  AWQ. ``mean|W|`` follows llm-awq's ``get_weight_scale``: |W| normalised by each weight group's
  absmax, then averaged over the output rows.

Linears that share one input (q/k/v after a norm; gate/up) share one scale vector; channels that
must share a scale (grouped-query attention: a value channel feeds several query heads) are tied
with ``groups``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ..errors import MacforgeError

__all__ = ["smoothquant_scales", "awq_weight_stat", "aqas_scales", "AqasResult", "alpha_grid",
           "tie_channels"]


def alpha_grid(points: int = 20, top: float = 0.95) -> np.ndarray:
    """α values ``linspace(0, top, points)`` (the authors' base code: 20 points in [0, 0.95])."""
    if not isinstance(points, int) or points < 1:
        raise MacforgeError(f"alpha grid needs a positive number of points, not {points!r}")
    if points == 1:
        return np.array([top])
    return np.linspace(0.0, top, points)


def tie_channels(stat: np.ndarray, groups: np.ndarray | None, how: str = "max") -> np.ndarray:
    """Replace each channel's statistic by the ``max``/``mean`` over its group label."""
    if groups is None:
        return stat
    g = np.asarray(groups)
    if g.shape != stat.shape:
        raise MacforgeError(f"groups has shape {g.shape}, the statistic {stat.shape}")
    labels, inv = np.unique(g, return_inverse=True)
    red = np.zeros(labels.size)
    if how == "max":
        np.maximum.at(red, inv, stat)
    else:
        np.add.at(red, inv, stat)
        red /= np.bincount(inv)
    return red[inv]


def _normalised(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 1e-4, None)  # llm-awq clamps scales at 1e-4
    return s / np.sqrt(s.max() * s.min())


def smoothquant_scales(x_absmax: np.ndarray, weights: Sequence[np.ndarray], alpha: float = 0.5,
                       groups: np.ndarray | None = None) -> np.ndarray:
    """SmoothQuant's ``s_j = max|X_j|^α / max_k max_rows|W_kj|^(1-α)``.

    Parameters
    ----------
    x_absmax
        (in,) per-channel absmax of the calibration activations.
    weights
        The (out, in) weights that consume this activation.
    alpha
        Migration strength in [0, 1].
    groups
        Optional (in,) labels of channels that must share a scale.
    """
    if not 0.0 <= alpha <= 1.0:
        raise MacforgeError(f"alpha must be in [0, 1], not {alpha!r}")
    xs = tie_channels(np.asarray(x_absmax, dtype=np.float64), groups)
    ws = tie_channels(np.max([np.max(np.abs(w), axis=0) for w in weights], axis=0), groups)
    xs, ws = np.clip(xs, 1e-5, None), np.clip(ws, 1e-5, None)
    return np.clip(xs ** alpha / ws ** (1.0 - alpha), 1e-5, None)


def awq_weight_stat(w: np.ndarray, group_size: int | None) -> np.ndarray:
    """Per-input-channel mean of |W| normalised by each group's absmax (llm-awq)."""
    a = np.abs(np.asarray(w, dtype=np.float64))
    out, k = a.shape
    g = k if group_size is None or k % group_size else group_size
    v = a.reshape(out, k // g, g)
    v = v / np.maximum(v.max(axis=-1, keepdims=True), 1e-12)
    return v.reshape(out, k).mean(axis=0)


class AqasResult(NamedTuple):
    """The chosen scales, the chosen α and the loss at every α of the grid."""

    scales: np.ndarray
    alpha: float
    alphas: np.ndarray
    losses: np.ndarray
    loss_identity: float
    """loss with no scaling (s = 1), for reference"""


def aqas_scales(x: np.ndarray, weights: Sequence[np.ndarray],
                quant_w: Callable[[np.ndarray], np.ndarray],
                quant_x: Callable[[np.ndarray], np.ndarray],
                alphas: np.ndarray | None = None, group_size: int | None = None,
                groups: np.ndarray | None = None, rows: int | None = 256,
                seed: int = 0) -> AqasResult:
    """AQAS grid search over α (module docstring).

    Parameters
    ----------
    x
        (tokens, in) calibration activations entering the linears.
    weights
        (out_k, in) weights sharing this input.
    quant_w, quant_x
        Fake quantizers (array -> dequantized array) of the weight and activation formats.
    alphas
        The grid (default :func:`alpha_grid`).
    group_size
        The weight quantization group (for the ``mean|W|`` statistic).
    groups
        (in,) labels of channels that must share a scale.
    rows
        Output rows per weight used in the loss (a seeded random subset; ``None`` = all). Rows
        are quantized independently under group/channel scaling, so the subset's error is
        exact for those rows; with per-tensor weight scaling pass ``None``.
    """
    xa = np.asarray(x, dtype=np.float32)
    if xa.ndim != 2 or any(w.shape[1] != xa.shape[1] for w in weights):
        raise MacforgeError(f"x must be (tokens, in) matching every weight's input; x {xa.shape}, "
                            f"weights {[w.shape for w in weights]}")
    grid = alpha_grid() if alphas is None else np.asarray(alphas, dtype=np.float64)
    rng = np.random.default_rng(seed)
    sub = [w if rows is None or w.shape[0] <= rows
           else w[np.sort(rng.choice(w.shape[0], rows, replace=False))] for w in weights]
    refs = [xa @ w.T for w in sub]
    x_stat = tie_channels(np.mean(np.abs(xa), axis=0, dtype=np.float64), groups, "mean")
    w_stat = tie_channels(np.mean([awq_weight_stat(w, group_size) for w in weights], axis=0),
                          groups, "mean")
    x_stat, w_stat = np.clip(x_stat, 1e-8, None), np.clip(w_stat, 1e-8, None)

    def loss(s: np.ndarray) -> float:
        s32 = s.astype(np.float32)
        xq = quant_x(xa / s32)
        return float(sum(np.sum((xq @ quant_w(w * s32).T - r).astype(np.float64) ** 2)
                         for w, r in zip(sub, refs)))

    losses = np.empty(grid.size)
    cands = []
    for i, a in enumerate(grid):
        s = _normalised(x_stat ** a / w_stat ** (1.0 - a))
        cands.append(s)
        losses[i] = loss(s)
    best = int(np.argmin(losses))
    return AqasResult(cands[best], float(grid[best]), grid, losses, loss(np.ones(xa.shape[1])))
