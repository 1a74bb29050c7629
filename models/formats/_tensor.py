"""Scaled quantization of whole tensors: per tensor / channel / group, absmax / RMS / search /
min-max / affine scaling, the MX and NVFP4 block recipes, sparse outliers, and the storage cost
in bits per element including every scale, zero point and index.

Groups run along the last axis (the input dimension of an (out, in) weight matrix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import MacforgeError

if TYPE_CHECKING:
    from ._core import Format

__all__ = ["Scaling", "QuantizedTensor", "quantize", "storage_bits_per_element", "round_scale",
           "SCALE_FORMAT_BITS"]

Method = Literal["absmax", "rms", "search", "minmax", "affine", "mx", "nv"]
Granularity = Literal["tensor", "channel", "group"]

SCALE_FORMAT_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "e8m0": 8, "ue4m3": 8}
_METHODS = ("absmax", "rms", "search", "minmax", "affine", "mx", "nv")


@dataclass(frozen=True)
class Scaling:
    """How a tensor is scaled before its elements are encoded.

    granularity: ``tensor`` | ``channel`` (one scale per row) | ``group`` (``group_size``
    consecutive elements of a row). method: ``absmax`` (s = amax / fmt.scale_max), ``rms``
    (s = rms), ``search`` (s = α·amax/scale_max, α on ``search_points`` points in [0.5, 1] with
    the least squared error), ``minmax`` (integer zero point, s = (max-min)/levels), ``affine``
    (decoupleQ float scale and offset; ``affine_iters`` alternating least-squares steps),
    ``mx`` (OCP MX E8M0 scale 2^(floor(log2 amax) - emax_elem)), ``nv`` (NVFP4 two-level).
    outlier_fraction: the top fraction of |x| kept as BF16 value + 32-bit index.
    """

    granularity: Granularity = "group"
    group_size: int = 128
    method: Method = "absmax"
    scale_format: str = "fp16"
    zero_point_bits: int = 0
    outlier_fraction: float = 0.0
    search_points: int = 26
    affine_iters: int = 0

    def __post_init__(self) -> None:
        if self.granularity not in ("tensor", "channel", "group"):
            raise MacforgeError(f"granularity must be tensor, channel or group, not {self.granularity!r}")
        if self.method not in _METHODS:
            raise MacforgeError(f"scaling method must be one of {', '.join(_METHODS)}, not {self.method!r}")
        if self.scale_format not in SCALE_FORMAT_BITS:
            raise MacforgeError(
                f"scale_format must be one of {', '.join(SCALE_FORMAT_BITS)}, not {self.scale_format!r}")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise MacforgeError(f"group_size must be a positive integer, not {self.group_size!r}")
        if not (0.0 <= self.outlier_fraction < 0.5):
            raise MacforgeError(f"outlier_fraction must be in [0, 0.5), not {self.outlier_fraction!r}")

    def describe(self) -> str:
        g = {"tensor": "per tensor", "channel": "per channel"}.get(self.granularity,
                                                                   f"group {self.group_size}")
        s = f"{g}, {self.method}, {self.scale_format} scale"
        if self.zero_point_bits:
            s += f", {self.zero_point_bits}-bit zero point"
        if self.method == "affine":
            s += f", {self.scale_format} offset"
        if self.outlier_fraction:
            s += f", outliers {self.outlier_fraction:g} (bf16 + int32 index)"
        return s


def round_scale(s: np.ndarray, scale_format: str) -> np.ndarray:
    """Round positive scales to the scale format (RNE, saturating), as float64 values.

    A positive scale below the format's smallest positive value becomes that value, never 0."""
    s = np.asarray(s, dtype=np.float64)
    if scale_format == "fp32":
        r = s.astype(np.float32).astype(np.float64)
        tiny = float(np.nextafter(np.float32(0), np.float32(1)))
    else:
        from ._registry import get_format

        fmt = get_format(scale_format)
        r = fmt.decode(fmt.encode(s))
        gv, _ = fmt.grid()
        tiny = float(gv[gv > 0][0])
    # a positive scale never rounds to 0 (that would turn the group into 0/0)
    return np.where((s > 0) & (r == 0), tiny, r)


@dataclass
class QuantizedTensor:
    """Codes plus everything needed to dequantize them.

    ``scales`` / ``zero_points`` / ``offsets`` have shape ``x.shape[:-1] + (n_groups,)``
    (tensor granularity: one group spanning everything, shape ``(1,)``).
    """

    format: "Format"
    scaling: Scaling
    shape: tuple[int, ...]
    codes: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray | None = None
    offsets: np.ndarray | None = None
    tensor_scale: float = 1.0
    outlier_index: np.ndarray | None = None
    outlier_values: np.ndarray | None = None

    def dequantize(self) -> np.ndarray:
        g = _group_view_shape(self.shape, self.scaling)
        codes = self.codes.reshape(g)
        zp = None if self.zero_points is None else self.zero_points[..., None]
        v = self.format.decode(codes, zp)
        v = v * (self.scales[..., None] * self.tensor_scale)
        if self.offsets is not None:
            v = v + self.offsets[..., None]
        out = v.reshape(self.shape)
        if self.outlier_index is not None and self.outlier_index.size:
            flat = out.reshape(-1)
            flat[self.outlier_index] = self.outlier_values
        return out

    @property
    def bits_per_element(self) -> float:
        return storage_bits_per_element(self.format, self.scaling, self.shape)


def _group_view_shape(shape: tuple[int, ...], sc: Scaling) -> tuple[int, ...]:
    if sc.granularity == "tensor":
        return (1, int(np.prod(shape)))
    k = shape[-1]
    if sc.granularity == "channel":
        return tuple(shape[:-1]) + (1, k)
    return tuple(shape[:-1]) + (k // sc.group_size, sc.group_size)


def storage_bits_per_element(fmt: "Format", scaling: Scaling | None = None,
                             shape: tuple[int, ...] | None = None) -> float:
    """Bits per element including scales, zero points, offsets, outliers and tensor scales.

    For channel / tensor granularity the per-row cost depends on ``shape``; without a shape a row
    of 4096 elements is assumed (the usual LLM hidden size).
    """
    sc = scaling or fmt.default_scaling
    if sc is None:
        return float(fmt.bits)
    if sc.granularity == "group":
        n = sc.group_size
    elif sc.granularity == "channel":
        n = shape[-1] if shape else 4096
    else:
        n = int(np.prod(shape)) if shape else 4096 * 4096
    per_group = SCALE_FORMAT_BITS[sc.scale_format] + sc.zero_point_bits
    if sc.method == "affine":
        per_group += SCALE_FORMAT_BITS[sc.scale_format]
    bits = fmt.bits + per_group / n
    if sc.method == "nv":
        bits += 32 / (int(np.prod(shape)) if shape else 4096 * 4096)
    if sc.outlier_fraction:
        bits += sc.outlier_fraction * (16 + 32)
    return bits


def _amax(x: np.ndarray) -> np.ndarray:
    return np.max(np.abs(x), axis=-1)


def quantize(x: np.ndarray, fmt: "Format", scaling: Scaling | None = None) -> QuantizedTensor:
    """Quantize ``x`` with ``fmt`` under ``scaling`` (default: the format's default scaling)."""
    sc = scaling or fmt.default_scaling or Scaling()
    xa = np.asarray(x)
    if xa.dtype.kind not in "fiu":
        raise MacforgeError(f"x must be a real numeric array, not {xa.dtype}")
    xa = xa.astype(np.float64)
    if xa.ndim == 0 or xa.size == 0:
        raise MacforgeError(f"x must be a non-empty array with at least one axis, got shape {xa.shape}")
    if not np.isfinite(xa).all():
        raise MacforgeError("x contains NaN or Inf; tensor quantization needs finite input")
    if sc.granularity == "group" and xa.shape[-1] % sc.group_size:
        raise MacforgeError(
            f"group_size {sc.group_size} does not divide the last axis ({xa.shape[-1]})")
    if sc.method in ("minmax",) and not fmt.has_zero_point:
        raise MacforgeError(f"scaling method 'minmax' needs a zero-point format, {fmt.name} has none")
    if fmt.has_zero_point and sc.method != "minmax":
        raise MacforgeError(f"{fmt.name} has a zero point: use scaling method 'minmax', not {sc.method!r}")

    out_idx = out_val = None
    if sc.outlier_fraction:
        n_out = int(round(sc.outlier_fraction * xa.size))
        flat = xa.reshape(-1)
        if n_out:
            out_idx = np.sort(np.argpartition(np.abs(flat), flat.size - n_out)[flat.size - n_out:])
            out_val = round_scale(np.abs(flat[out_idx]), "bf16") * np.sign(flat[out_idx])
            xa = flat.copy()
            xa[out_idx] = 0.0
            xa = xa.reshape(np.asarray(x).shape)
        else:
            out_idx = np.zeros(0, dtype=np.int64)
            out_val = np.zeros(0)

    g = xa.reshape(_group_view_shape(xa.shape, sc))
    zp = offsets = None
    tensor_scale = 1.0
    if sc.method == "minmax":
        mx, mn = g.max(axis=-1), g.min(axis=-1)
        s = np.maximum((mx - mn) / fmt.asym_levels, 1e-5)  # llm-awq clamps the range at 1e-5
        s = round_scale(s, sc.scale_format)
        zp = np.clip(-np.rint(mn / s), 0, fmt.zero_point_max).astype(np.int64)
        codes = fmt.encode(g / s[..., None], zp[..., None])
    elif sc.method == "affine":
        s, offsets, codes = _affine_fit(g, fmt, sc)
    elif sc.method == "mx":
        emax = math.floor(math.log2(fmt.scale_max))
        amax = _amax(g)
        with np.errstate(divide="ignore"):
            e = np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - emax
        s = 2.0 ** np.clip(e, -127, 127)
        codes = fmt.encode(g / s[..., None])
    elif sc.method == "nv":
        amax_t = float(np.max(np.abs(g)))
        tensor_scale = float(np.float32(amax_t / (fmt.scale_max * 448.0))) if amax_t > 0 else 1.0
        s = round_scale(_amax(g) / (fmt.scale_max * tensor_scale), "ue4m3")
        s = np.where(s > 0, s, 1.0)  # an all-zero block: any scale gives zero codes
        codes = fmt.encode(g / (s[..., None] * tensor_scale))
    else:
        if sc.method == "absmax":
            s = _amax(g) / fmt.scale_max
        elif sc.method == "rms":
            s = np.sqrt(np.mean(g * g, axis=-1))
        elif sc.method == "search":
            s = _search_scale(g, fmt, sc)
        else:  # pragma: no cover - validated in Scaling
            raise MacforgeError(f"unknown scaling method {sc.method!r}")
        s = np.where(s > 0, s, 1.0)
        s = round_scale(s, sc.scale_format)
        codes = fmt.encode(g / s[..., None])
    return QuantizedTensor(
        format=fmt, scaling=sc, shape=tuple(np.asarray(x).shape), codes=codes.reshape(np.asarray(x).shape),
        scales=np.asarray(s, dtype=np.float64), zero_points=zp, offsets=offsets,
        tensor_scale=tensor_scale, outlier_index=out_idx, outlier_values=out_val,
    )


def _search_scale(g: np.ndarray, fmt: "Format", sc: Scaling) -> np.ndarray:
    base = np.where(_amax(g) > 0, _amax(g), 1.0) / fmt.scale_max
    best_s = base.copy()
    best_err = np.full(base.shape, np.inf)
    for alpha in np.linspace(0.5, 1.0, sc.search_points):
        s = round_scale(base * alpha, sc.scale_format)
        err = np.sum((fmt.decode(fmt.encode(g / s[..., None])) * s[..., None] - g) ** 2, axis=-1)
        better = err < best_err
        best_s = np.where(better, s, best_s)
        best_err = np.where(better, err, best_err)
    return best_s


def _affine_fit(g: np.ndarray, fmt: "Format", sc: Scaling) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """decoupleQ per-group affine W ≈ q·s + z with H = I (PAPERS.md §4, check [calc]).

    Min-max init maps [min, max] onto [qmin·s + z, qmax·s + z]; each iteration re-rounds the
    integers with (s, z) fixed, then refits (s, z) by least squares with the integers fixed, and
    keeps the new group solution only where its error dropped.
    """
    qmin, qmax = fmt.min_value, fmt.max_value
    mx, mn = g.max(axis=-1), g.min(axis=-1)
    s = np.maximum((mx - mn) / (qmax - qmin), 1e-8)
    z = mn - qmin * s
    s, z = round_scale(s, sc.scale_format), _round_signed(z, sc.scale_format)
    codes = fmt.encode((g - z[..., None]) / s[..., None])

    def err_of(s_: np.ndarray, z_: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.sum((fmt.decode(c) * s_[..., None] + z_[..., None] - g) ** 2, axis=-1)

    err = err_of(s, z, codes)
    for _ in range(sc.affine_iters):
        q = fmt.decode(codes)
        n = g.shape[-1]
        sq, sq2, sw, sqw = q.sum(-1), (q * q).sum(-1), g.sum(-1), (q * g).sum(-1)
        det = n * sq2 - sq * sq
        ok = det > 0
        s_new = np.where(ok, (n * sqw - sq * sw) / np.where(ok, det, 1), s)
        s_new = np.where(s_new > 0, s_new, s)
        z_new = np.where(ok, (sw - s_new * sq) / n, z)
        s_new, z_new = round_scale(s_new, sc.scale_format), _round_signed(z_new, sc.scale_format)
        c_new = fmt.encode((g - z_new[..., None]) / s_new[..., None])
        e_new = err_of(s_new, z_new, c_new)
        better = e_new < err
        s, z, err = np.where(better, s_new, s), np.where(better, z_new, z), np.where(better, e_new, err)
        codes = np.where(better[..., None], c_new, codes)
    return s, z, codes


def _round_signed(v: np.ndarray, scale_format: str) -> np.ndarray:
    return np.sign(v) * round_scale(np.abs(v), scale_format)


def with_defaults(sc: Scaling, **kw: object) -> Scaling:
    return replace(sc, **kw)  # type: ignore[arg-type]
