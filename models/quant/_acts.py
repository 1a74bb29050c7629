"""Activation quantization: per-token (or per-tensor) absmax scaling of the (tokens, features)
input of a linear layer, dynamic (scales from the tensor itself) or static (one scale fixed by
calibration). The element format is any ``models.formats`` format that can hold a signed value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from ..errors import MacforgeError
from ..formats import Format, Scaling, round_scale

__all__ = ["ActQuantizer", "QuantizedActivation", "check_act_format", "ACT_GRANULARITIES",
           "ACT_CALIBRATIONS"]

ACT_GRANULARITIES = ("token", "tensor")
ACT_CALIBRATIONS = ("dynamic", "static")


def check_act_format(fmt: Format) -> None:
    """Refuse a format that cannot represent a signed activation (no sign, no zero point)."""
    if fmt.kind == "scale" and fmt.name != "fp32":
        raise MacforgeError(f"format {fmt.name} is a scale format; it cannot hold activations")
    if fmt.name != "fp32" and fmt.min_value >= 0 and not fmt.has_zero_point:
        raise MacforgeError(f"format {fmt.name} has no sign and no zero point: it cannot represent "
                            "the negative values of an activation")


class QuantizedActivation(NamedTuple):
    """Codes, scales and the dequantized float32 values of one activation tensor."""

    values: np.ndarray
    """(tokens, features) float32, what the quantized model multiplies with"""
    codes: np.ndarray
    """(tokens, features) codes of the format"""
    scales: np.ndarray
    """(tokens,) for per-token, (1,) for per-tensor scaling, float64"""
    zero_points: np.ndarray | None


@dataclass(frozen=True)
class ActQuantizer:
    """How the activation entering a linear is quantized.

    granularity ``token``: one absmax scale per token (row); ``tensor``: one for the matrix.
    calibration ``dynamic``: scales computed from the tensor at run time; ``static``: the
    per-tensor scale passed to :meth:`quantize` (from calibration data, :meth:`static_scale`).
    Formats with a zero point (``int8_asym``) use min-max scaling; scales are FP32.
    """

    fmt: Format
    granularity: Literal["token", "tensor"] = "token"
    calibration: Literal["dynamic", "static"] = "dynamic"

    def __post_init__(self) -> None:
        check_act_format(self.fmt)
        if self.granularity not in ACT_GRANULARITIES:
            raise MacforgeError(f"act granularity must be one of {', '.join(ACT_GRANULARITIES)}, "
                                f"not {self.granularity!r}")
        if self.calibration not in ACT_CALIBRATIONS:
            raise MacforgeError(f"act calibration must be one of {', '.join(ACT_CALIBRATIONS)}, "
                                f"not {self.calibration!r}")
        if self.calibration == "static" and self.granularity != "tensor":
            raise MacforgeError("static activation calibration fixes one scale per tensor: "
                                "use --act-granularity tensor with --act-calibration static")
        if self.calibration == "static" and self.fmt.has_zero_point:
            raise MacforgeError(f"static calibration needs a symmetric format, {self.fmt.name} has a "
                                "zero point")

    @property
    def is_float(self) -> bool:
        return self.fmt.name == "fp32"

    @property
    def scaling(self) -> Scaling:
        gran = "channel" if self.granularity == "token" else "tensor"
        method = "minmax" if self.fmt.has_zero_point else "absmax"
        zp = self.fmt.bits if self.fmt.has_zero_point else 0
        return Scaling(granularity=gran, method=method, scale_format="fp32", zero_point_bits=zp)

    def static_scale(self, absmax: float) -> float:
        """The FP32 per-tensor scale that maps the calibration ``absmax`` to the format's max."""
        s = absmax / self.fmt.scale_max if absmax > 0 else 1.0
        return float(round_scale(np.array([s]), "fp32")[0])

    def quantize(self, x: np.ndarray, scale: float | None = None) -> QuantizedActivation:
        """Quantize a (tokens, features) activation; ``scale`` is required for static."""
        xa = np.asarray(x)
        if self.is_float:
            return QuantizedActivation(xa.astype(np.float32), xa, np.ones(1), None)
        if self.calibration == "static":
            if scale is None:
                raise MacforgeError("static activation quantization needs a calibrated scale")
            s = float(scale)
            codes = self.fmt.encode(xa.astype(np.float64) / s)  # saturates outside the range
            vals = (self.fmt.decode(codes) * s).astype(np.float32)
            return QuantizedActivation(vals, codes, np.array([s]), None)
        if self.granularity == "token" and _rint_grid(self.fmt):
            return _int_per_token(self.fmt, xa)
        q = self.fmt.quantize(xa, self.scaling)
        return QuantizedActivation(q.dequantize().astype(np.float32), q.codes,
                                   q.scales.reshape(-1), None if q.zero_points is None
                                   else q.zero_points.reshape(-1))


def _rint_grid(fmt: Format) -> bool:
    """True if ``fmt`` is a symmetric grid of consecutive integers that rounds like ``rint``
    (half to even) — checked once per format on every grid point and every midpoint, through
    the format's own ``encode``/``decode``."""
    cached = _RINT_GRID.get(fmt.name)
    if cached is None:
        cached = False
        if fmt.kind == "int" and not fmt.has_zero_point and fmt.neg_zero_code is None:
            gv, _ = fmt.grid()
            if len(gv) > 1 and np.all(np.diff(gv) == 1) and np.all(gv == np.rint(gv)):
                probe = np.concatenate([gv, gv[:-1] + 0.5, gv[:-1] + 0.25, [gv[0] - 3, gv[-1] + 3]])
                cached = bool(np.array_equal(fmt.decode(fmt.encode(probe)),
                                             np.clip(np.rint(probe), gv[0], gv[-1])))
        _RINT_GRID[fmt.name] = cached
    return cached


_RINT_GRID: dict[str, bool] = {}


def _int_per_token(fmt: Format, x: np.ndarray) -> QuantizedActivation:
    """Per-token absmax quantization on a rint grid: the arithmetic of ``fmt.quantize`` with
    per-row absmax FP32 scales followed by ``dequantize``, without the general encoder's
    per-element special-value handling (the values and codes are identical; tested)."""
    xa = x.astype(np.float64)
    if not np.isfinite(xa).all():
        raise MacforgeError("x contains NaN or Inf; tensor quantization needs finite input")
    s = np.max(np.abs(xa), axis=-1) / fmt.scale_max
    s = round_scale(np.where(s != 0, s, 1.0), "fp32")
    gv, gc = fmt.grid()
    q = np.rint(xa / s[:, None])
    np.clip(q, gv[0], gv[-1], out=q)
    q += 0.0  # -0.0 -> 0.0, as decoding a code gives
    codes = gc[(q - gv[0]).astype(np.int64)].astype(fmt.code_dtype, copy=False)
    return QuantizedActivation((q * s[:, None]).astype(np.float32), codes, s, None)
