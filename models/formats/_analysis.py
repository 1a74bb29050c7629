"""Reference quantizers and error analysis: Lloyd-Max, entropy-coded uniform grids and the
underflow / rounding error split.

These are the yardsticks the element formats are measured against (PAPERS.md §2 regression
anchors: 4-bit Lloyd-Max MSE 0.00950, uniform grid + ideal entropy code 0.00559 on N(0, 1)) and
the dINT error decomposition Δ = Δr + Δu (PAPERS.md §1.1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import MacforgeError

__all__ = [
    "lloyd_max",
    "mse_of_levels",
    "entropy_coded_uniform",
    "EntropyCodedUniform",
    "underflow_stats",
    "UnderflowStats",
]


def _samples(samples: object, what: str = "samples") -> np.ndarray:
    """Flattened float64 copy of ``samples``; rejects empty, non-numeric and non-finite input."""
    a = np.asarray(samples)
    if a.dtype.kind not in "fiu":
        raise MacforgeError(f"{what} must be a real numeric array, not {a.dtype}")
    a = a.astype(np.float64).reshape(-1)
    if a.size == 0:
        raise MacforgeError(f"{what} must not be empty")
    if np.isnan(a).any():
        raise MacforgeError(f"{what} contains NaN")
    if np.isinf(a).any():
        raise MacforgeError(f"{what} contains Inf")
    return a


def _levels_array(levels: object) -> np.ndarray:
    lv = np.asarray(levels)
    if lv.dtype.kind not in "fiu" or lv.ndim != 1:
        raise MacforgeError(f"levels must be a 1-D array of numbers, not {lv!r}")
    lv = np.sort(lv.astype(np.float64))
    if lv.size < 1:
        raise MacforgeError("levels must not be empty")
    if not np.isfinite(lv).all():
        raise MacforgeError("levels must be finite")
    return lv


def _nearest_level_index(x: np.ndarray, lv: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted ``lv`` for each ``x`` (ties to the lower level)."""
    if lv.size == 1:
        return np.zeros(x.shape, dtype=np.int64)
    mids = lv[:-1] + (lv[1:] - lv[:-1]) * 0.5
    return np.searchsorted(mids, x, side="left")


def mse_of_levels(samples: np.ndarray, levels: np.ndarray) -> float:
    """Mean squared error of rounding ``samples`` to the nearest of ``levels``.

    Parameters
    ----------
    samples
        Real numbers (any shape, flattened); must be finite and non-empty.
    levels
        Reconstruction values (any order; duplicates allowed).

    Returns
    -------
    float
        ``mean((x - nearest_level(x))**2)``.
    """
    x = _samples(samples)
    lv = _levels_array(levels)
    err = x - lv[_nearest_level_index(x, lv)]
    return float(np.mean(err * err))


def lloyd_max(samples: np.ndarray, levels: int, iters: int = 1000,
              tol: float = 1e-12) -> np.ndarray:
    """Lloyd-Max (k-means in 1-D) reconstruction values for ``samples``.

    Starts from the sample quantiles at ``(i + 0.5) / levels`` (deterministic) and alternates
    nearest-level partition and centroid update. The samples are sorted once; each iteration then
    costs ``O(levels · log n)`` through prefix sums, so millions of samples and hundreds of
    iterations are cheap.

    Parameters
    ----------
    samples
        Real numbers (any shape, flattened); finite, non-empty.
    levels
        Number of reconstruction values, ``>= 2``.
    iters
        Maximum number of iterations.
    tol
        Stop when no level moves by more than ``tol`` times the sample standard deviation.

    Returns
    -------
    numpy.ndarray
        Sorted float64 array of ``levels`` values. A cell that loses all its samples keeps its
        previous value.
    """
    if not isinstance(levels, (int, np.integer)) or isinstance(levels, bool) or levels < 2:
        raise MacforgeError(f"levels must be an integer >= 2, not {levels!r}")
    if not isinstance(iters, (int, np.integer)) or isinstance(iters, bool) or iters < 0:
        raise MacforgeError(f"iters must be a non-negative integer, not {iters!r}")
    x = np.sort(_samples(samples))
    n = x.size
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    lv = np.quantile(x, (np.arange(levels) + 0.5) / levels)
    scale = float(np.std(x)) or 1.0
    for _ in range(iters):
        mids = lv[:-1] + (lv[1:] - lv[:-1]) * 0.5
        # cell k = samples in (mids[k-1], mids[k]]; same tie rule as _nearest_level_index
        edges = np.concatenate(([0], np.searchsorted(x, mids, side="right"), [n]))
        count = np.diff(edges)
        total = c1[edges[1:]] - c1[edges[:-1]]
        new = np.where(count > 0, total / np.maximum(count, 1), lv)
        new = np.sort(new)
        moved = float(np.max(np.abs(new - lv)))
        lv = new
        if moved <= tol * scale:
            break
    return lv


class EntropyCodedUniform(NamedTuple):
    """Result of :func:`entropy_coded_uniform`."""

    step: float
    """grid step Δ: the quantizer is ``x -> Δ·rint(x / Δ)``"""
    mse: float
    """mean squared error of that quantizer on the samples"""
    entropy_bits: float
    """ideal code length ``-Σ p log2 p`` per sample of the used grid points"""


def _entropy_of_step(x_sorted: np.ndarray, step: float) -> tuple[float, np.ndarray]:
    # rint(x / step) is monotone in x, so on sorted samples the grid points used form runs
    q = np.rint(x_sorted / step)
    starts = np.flatnonzero(np.concatenate(([True], q[1:] != q[:-1], [True])))
    p = np.diff(starts) / x_sorted.size
    return float(-np.sum(p * np.log2(p))), q


def entropy_coded_uniform(samples: np.ndarray, bits: float, iters: int = 60,
                          rtol: float = 1e-6) -> EntropyCodedUniform:
    """Uniform grid with an exact 0 whose ideal entropy code costs ``bits`` per sample.

    PAPERS.md §2 (compression): a uniform grid with an odd number of points (``x -> Δ·rint(x/Δ)``,
    ties to even), the step Δ chosen by bisection so that the empirical entropy of the used grid
    points equals the budget.

    Parameters
    ----------
    samples
        Real numbers (any shape, flattened); finite, non-empty, not all equal.
    bits
        Target entropy in bits per sample, ``> 0`` and below ``log2(number of distinct samples)``.
    iters
        Maximum number of bisection steps (on ``log Δ``).
    rtol
        Stop when the entropy is within ``rtol · bits`` of the target. With few samples the
        entropy is a step function of Δ and may never get that close: then the step whose
        entropy came closest is returned.

    Returns
    -------
    EntropyCodedUniform
        ``(step, mse, entropy_bits)``.
    """
    if not isinstance(bits, (int, float, np.integer, np.floating)) or isinstance(bits, bool) \
            or not math.isfinite(bits) or bits <= 0:
        raise MacforgeError(f"bits must be a positive finite number, not {bits!r}")
    x = np.sort(_samples(samples))
    amax = float(np.max(np.abs(x)))
    spread = float(np.max(x) - np.min(x))
    if spread == 0.0:
        raise MacforgeError("samples are all equal: no step gives a positive entropy")
    n_distinct = 1 + int(np.count_nonzero(x[1:] != x[:-1]))
    if bits >= math.log2(n_distinct):
        raise MacforgeError(f"bits {bits!r} is not below log2 of the number of distinct samples "
                            f"({math.log2(n_distinct):.4g})")
    # bracket: at step 4·amax every sample rounds to 0 (H = 0); halve the lower end until the
    # entropy exceeds the budget
    hi = 4.0 * amax
    lo = spread / 2.0 ** (bits + 2)
    h_lo, _ = _entropy_of_step(x, lo)
    while h_lo <= bits and lo / 2.0 > 0.0:  # float64 spans < 2^2100: at most ~2100 halvings
        lo /= 2.0
        h_lo, _ = _entropy_of_step(x, lo)
    if h_lo <= bits:
        raise MacforgeError(f"bits {bits!r} is not reachable with these samples")
    # the entropy of finite samples is a step function of Δ: keep the step closest to the budget
    best_step, best_h = lo, h_lo
    for _ in range(iters):
        step = math.sqrt(lo * hi)
        if not lo < step < hi:
            break
        h, _ = _entropy_of_step(x, step)
        if abs(h - bits) < abs(best_h - bits):
            best_step, best_h = step, h
        if abs(h - bits) <= rtol * bits:
            break
        if h > bits:
            lo = step
        else:
            hi = step
    _, q = _entropy_of_step(x, best_step)
    err = x - q * best_step
    return EntropyCodedUniform(step=float(best_step), mse=float(np.mean(err * err)),
                               entropy_bits=best_h)


class UnderflowStats(NamedTuple):
    """Result of :func:`underflow_stats`; ``mse == rounding_mse + underflow_mse``."""

    flushed_fraction: float
    """fraction of the nonzero inputs that were quantized to exactly 0"""
    mse: float
    """mean squared error over all elements"""
    rounding_mse: float
    """Δr: squared error of the elements not flushed to zero, divided by the element count"""
    underflow_mse: float
    """Δu: squared error (= x²) of the flushed elements, divided by the element count"""


def underflow_stats(x: np.ndarray, xq: np.ndarray) -> UnderflowStats:
    """Underflow fraction and the error split Δ = Δr + Δu of PAPERS.md §1.1.

    Parameters
    ----------
    x
        Original values (finite, non-empty).
    xq
        Quantized (dequantized) values, same shape as ``x``.

    Returns
    -------
    UnderflowStats
        Both error terms are normalised by the total element count, so they add up to the MSE.
        An element is "flushed" when ``x != 0`` and ``xq == 0``. If ``x`` has no nonzero element
        the flushed fraction is 0.
    """
    xa = np.asarray(x)
    qa = np.asarray(xq)
    if xa.shape != qa.shape:
        raise MacforgeError(f"x and xq must have the same shape, got {xa.shape} and {qa.shape}")
    xf = _samples(xa, "x")
    qf = _samples(qa, "xq")
    flushed = (xf != 0) & (qf == 0)
    sq = (xf - qf) ** 2
    n = xf.size
    nonzero = int(np.count_nonzero(xf))
    under = float(np.sum(sq[flushed])) / n
    rnd = float(np.sum(sq[~flushed])) / n
    return UnderflowStats(
        flushed_fraction=float(np.count_nonzero(flushed)) / nonzero if nonzero else 0.0,
        mse=float(np.mean(sq)),
        rounding_mse=rnd,
        underflow_mse=under,
    )
