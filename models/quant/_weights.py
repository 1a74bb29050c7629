"""Round-to-nearest weight quantization with a format's scaling, or an override of its
granularity (``--group G | channel | tensor``), and the per-layer error measures.

Everything goes through ``models.formats``: ``Format.quantize`` picks the scales and encodes,
``QuantizedTensor.dequantize`` gives the fake-quantized weight. Nothing here knows a model.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from ..errors import MacforgeError
from ..formats import Format, QuantizedTensor, Scaling
from ..formats._analysis import underflow_stats

__all__ = [
    "GranularityOverride",
    "weight_scaling",
    "check_group",
    "quantize_weight",
    "fake_quant",
    "sqnr_db",
    "WeightError",
    "weight_error",
]

#: ``None`` (the format's default), ``"channel"``, ``"tensor"`` or a group size.
GranularityOverride = int | str | None


def weight_scaling(fmt: Format, override: GranularityOverride = None) -> Scaling | None:
    """The Scaling used for a weight: the format's default, with its granularity replaced.

    ``None`` keeps the default; an int ``G`` means groups of ``G`` along the input axis;
    ``"channel"`` one scale per output row; ``"tensor"`` one scale per matrix. The scaling
    method and scale format stay the format's (min-max with an integer zero point for
    ``int4_asym`` / ``dint4_asym``, E8M0 for MXFP4, ...). Formats without a default scaling
    (fp16, bf16, fp32) are used unscaled and accept no override.
    """
    sc = fmt.default_scaling
    if override is None:
        return sc
    if sc is None:
        raise MacforgeError(f"format {fmt.name} is used unscaled; it takes no --group override")
    if override == "channel":
        return replace(sc, granularity="channel")
    if override == "tensor":
        return replace(sc, granularity="tensor")
    if isinstance(override, bool) or not isinstance(override, (int, np.integer)) or override < 1:
        raise MacforgeError(f"group must be a positive integer, 'channel' or 'tensor', not {override!r}")
    return replace(sc, granularity="group", group_size=int(override))


def check_group(name: str, in_features: int, scaling: Scaling | None) -> None:
    """Refuse a group size that does not divide a layer's input, naming the layer."""
    if scaling is not None and scaling.granularity == "group" and in_features % scaling.group_size:
        divisors = [g for g in (16, 32, 64, 128) if in_features % g == 0]
        hint = f"; use --group {divisors[-1]} or --group channel" if divisors else \
            "; use --group channel"
        raise MacforgeError(f"group size {scaling.group_size} does not divide the input "
                            f"({in_features}) of layer {name}{hint}")


def quantize_weight(w: np.ndarray, fmt: Format, scaling: Scaling | None) -> QuantizedTensor | None:
    """RTN: ``fmt.quantize(w, scaling)``; ``None`` for an unscaled float format (see
    :func:`fake_quant`)."""
    if scaling is None:
        return None
    return fmt.quantize(w, scaling)


def fake_quant(w: np.ndarray, fmt: Format, scaling: Scaling | None) -> np.ndarray:
    """The float32 weight the quantized model computes with (dequantized RTN codes).

    An unscaled format (fp16, bf16) rounds each element to its grid (``encode``/``decode``).
    """
    if scaling is None:
        if fmt.name == "fp32":
            return np.asarray(w, dtype=np.float32)
        return fmt.decode(fmt.encode(np.asarray(w, dtype=np.float64))).astype(np.float32)
    q = fmt.quantize(w, scaling)
    return q.dequantize().astype(np.float32)


def sqnr_db(x: np.ndarray, xq: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(Σx² / Σ(x - xq)²)`` in dB (inf if exact)."""
    xa = np.asarray(x, dtype=np.float64)
    err = float(np.sum((xa - np.asarray(xq, dtype=np.float64)) ** 2))
    sig = float(np.sum(xa * xa))
    if err == 0.0:
        return math.inf
    if sig == 0.0:
        return -math.inf
    return 10.0 * math.log10(sig / err)


class WeightError(NamedTuple):
    """Per-layer weight error: SQNR and the underflow / rounding split (PAPERS.md §1.1)."""

    sqnr_db: float
    mse: float
    rounding_mse: float
    """Δr (normalised by the element count, so Δr + Δu = MSE)"""
    underflow_mse: float
    """Δu: squared error of the nonzero weights flushed to 0"""
    flushed_fraction: float


def weight_error(w: np.ndarray, wq: np.ndarray) -> WeightError:
    """SQNR and ``models.formats._analysis.underflow_stats`` of one weight matrix."""
    u = underflow_stats(w, wq)
    return WeightError(sqnr_db(w, wq), u.mse, u.rounding_mse, u.underflow_mse, u.flushed_fraction)
