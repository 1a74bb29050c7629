"""NUPES exponent search (Yvinec et al., arXiv 2308.05600; PAPERS.md §3), data-free.

The power-law formats ``nupes<b>_a<a>`` of ``models.formats`` quantize ``sign(w)|w|^a`` on a
uniform grid; ``a = 1`` is uniform INT. Per layer, the exponent minimising the weight MSE is
picked on a grid (the MSE is unimodal in ``a`` [calc, PAPERS.md §3]); the MSE is measured on a
seeded subset of output rows, which is exact for those rows under group / channel scaling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import MacforgeError
from ..formats import Format, get_format
from ._weights import GranularityOverride, fake_quant, weight_scaling

__all__ = ["nupes_exponents", "nupes_search", "NupesResult"]


def nupes_exponents(points: int = 11, lo: float = 0.5, hi: float = 1.0) -> np.ndarray:
    """Exponent grid ``linspace(lo, hi, points)`` rounded to 3 decimals (format names)."""
    if not isinstance(points, int) or points < 1 or not 0 < lo <= hi:
        raise MacforgeError(f"exponent grid needs points >= 1 and 0 < lo <= hi, got "
                            f"{points!r}, {lo!r}, {hi!r}")
    return np.unique(np.round(np.linspace(lo, hi, points), 3))


class NupesResult(NamedTuple):
    format: Format
    exponent: float
    exponents: np.ndarray
    mse: np.ndarray
    """weight MSE (on the row subset) at every exponent of the grid"""


def nupes_search(w: np.ndarray, bits: int, group: GranularityOverride = None,
                 exponents: np.ndarray | None = None, rows: int | None = 256,
                 seed: int = 0) -> NupesResult:
    """The ``nupes<bits>_a<a>`` format with the least weight MSE for ``w`` (out, in)."""
    wa = np.asarray(w)
    if wa.ndim != 2:
        raise MacforgeError(f"w must be a 2-D (out, in) matrix, got shape {wa.shape}")
    grid = nupes_exponents() if exponents is None else np.asarray(exponents, dtype=np.float64)
    fmts = [get_format(f"nupes{bits}_a{a:g}") for a in grid]
    sub = wa
    if rows is not None and wa.shape[0] > rows:
        if weight_scaling(fmts[0], group).granularity == "tensor":  # type: ignore[union-attr]
            sub = wa  # one scale over the matrix: a subset would change it
        else:
            pick = np.sort(np.random.default_rng(seed).choice(wa.shape[0], rows, replace=False))
            sub = wa[pick]
    sub64 = sub.astype(np.float64)
    mse = np.array([np.mean((fake_quant(sub, f, weight_scaling(f, group)) - sub64) ** 2)
                    for f in fmts])
    best = int(np.argmin(mse))
    return NupesResult(fmts[best], float(grid[best]), grid, mse)
