"""Fisher-optimal bit allocation across tensors (PAPERS.md §2, Orr, Ribar & Luschi).

The KL between the original and the quantized model is, to second order, Σ_t n_t f̄_t MSE_t /2
(f̄_t the tensor's mean diagonal Fisher, n_t its element count). With a quantizer whose MSE
scales as RMS_t² · 2^(−2 b_t), minimising that sum at a fixed total Σ n_t b_t gives

    b_t = b̄ + δ_t − (Σ_u n_u δ_u) / (Σ_u n_u),    δ_t = log2 RMS_t + ½ log2 f̄_t,

rounded to integers (no entropy coding) and clamped to at least 2 bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ..errors import MacforgeError

__all__ = ["BitAllocation", "fisher_bit_allocation"]


class BitAllocation(NamedTuple):
    """Integer bits per tensor and the real-valued rule they were rounded from."""

    bits: dict[str, int]
    ideal: dict[str, float]
    """b_t before rounding and clamping"""
    mean_bits: float
    """Σ n_t b_t / Σ n_t of the integer allocation (element bits only, no scales)"""


def fisher_bit_allocation(rms: Mapping[str, float], fisher: Mapping[str, float],
                          sizes: Mapping[str, int], mean_bits: float, *, min_bits: int = 2,
                          max_bits: int = 8) -> BitAllocation:
    """Bits per tensor by the Fisher rule of the module docstring.

    Parameters
    ----------
    rms, fisher, sizes
        Per tensor (same keys): RMS of the weights, mean diagonal Fisher (> 0), element count.
    mean_bits
        b̄, the target average (before rounding; the rounded average is returned).
    min_bits, max_bits
        Clamp of the integer bits (the paper clamps at >= 2; ``max_bits`` is the widest format
        available).
    """
    names = list(sizes)
    if not names:
        raise MacforgeError("bit allocation needs at least one tensor")
    if set(rms) != set(names) or set(fisher) != set(names):
        raise MacforgeError("rms, fisher and sizes must name the same tensors")
    if not min_bits <= mean_bits <= max_bits:
        raise MacforgeError(f"mean bits must lie in [{min_bits}, {max_bits}], not {mean_bits!r}")
    bad = [n for n in names if not (rms[n] > 0 and fisher[n] > 0 and sizes[n] > 0)]
    if bad:
        raise MacforgeError(f"tensor {bad[0]} needs a positive RMS, Fisher and size")
    n = np.array([sizes[k] for k in names], dtype=np.float64)
    delta = np.log2([rms[k] for k in names]) + 0.5 * np.log2([fisher[k] for k in names])
    ideal = mean_bits + delta - np.sum(n * delta) / np.sum(n)
    bits = np.clip(np.rint(ideal), min_bits, max_bits).astype(int)
    return BitAllocation({k: int(b) for k, b in zip(names, bits)},
                         {k: float(b) for k, b in zip(names, ideal)},
                         float(np.sum(n * bits) / np.sum(n)))
