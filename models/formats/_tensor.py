"""Scaled quantization of whole tensors: per tensor / channel / group, absmax / signmax / RMS /
search / min-max / affine scaling, the MX and NVFP4 block recipes, QLoRA double quantization of
the scales, sparse outliers, and the storage cost in bits per element including every scale, zero
point and index.

Groups run along the last axis (the input dimension of an (out, in) weight matrix).

Storage is counted from the objects that quantize: the element format's ``bits``, the scale
format's ``bits`` (``get_format(scale_format)``), the zero-point width the quantizer stores, the
second-level code of double quantization. ``QuantizedTensor.stored_bits`` counts the arrays a
quantized tensor really holds; ``storage_breakdown`` counts the same items for a shape without
quantizing, and the tests hold the two equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import MacforgeError

if TYPE_CHECKING:
    from ._core import Format

__all__ = ["Scaling", "QuantizedTensor", "quantize", "storage_bits_per_element", "storage_breakdown",
           "round_scale", "zero_point_width", "dynamic8_values", "SCALE_FORMATS", "SCALE_FORMAT_BITS"]

Method = Literal["absmax", "signmax", "rms", "search", "minmax", "affine", "mx", "nv"]
Granularity = Literal["tensor", "channel", "group"]

_METHODS = ("absmax", "signmax", "rms", "search", "minmax", "affine", "mx", "nv")
SCALE_FORMATS = ("fp32", "fp16", "bf16", "e8m0", "ue4m3")
# methods whose per-group scales double quantization may compress (one positive or signed real each)
_DQ_METHODS = ("absmax", "rms", "search", "signmax")
# fixed companions of some recipes, each a format name resolved like any scale format
NV_TENSOR_SCALE_FORMAT = "fp32"  # NVFP4's per-tensor scale (PAPERS.md §5)
DQ_CONSTANT_FORMAT = "fp32"  # QLoRA: per-block absmax and the per-tensor mean of the scales
OUTLIER_VALUE_FORMAT = "bf16"  # sparse outliers (PAPERS.md §2): BF16 value ...
OUTLIER_INDEX_BITS = 32  # ... plus a flat 32-bit index (COO)
NOMINAL_ROWS = 4096  # storage without a shape: a 4096 × 4096 matrix (the usual LLM hidden size)


class _ScaleFormatBits(Mapping[str, int]):
    """``{scale format name: bits}``, read from the format objects themselves (lazily: the
    registry imports this module)."""

    def __getitem__(self, name: str) -> int:
        if name not in SCALE_FORMATS:
            raise KeyError(name)
        return int(_scale_format(name).bits)

    def __contains__(self, name: object) -> bool:
        return name in SCALE_FORMATS

    def __iter__(self) -> Iterator[str]:
        return iter(SCALE_FORMATS)

    def __len__(self) -> int:
        return len(SCALE_FORMATS)


SCALE_FORMAT_BITS: Mapping[str, int] = _ScaleFormatBits()


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Scaling:
    """How a tensor is scaled before its elements are encoded.

    granularity: ``tensor`` | ``channel`` (one scale per row) | ``group`` (``group_size``
    consecutive elements of a row).

    method:

    - ``absmax``: s = amax / fmt.scale_max (the magnitude reachable with either sign);
    - ``signmax`` (Orr, Ribar, Luschi 2025, PAPERS.md §2; graphcore-research/optimal-weight-formats):
      a *signed* scale s = x_m / v_m, x_m the group's element of largest magnitude (the positive
      one on a tie), v_m the format's extreme of largest magnitude (−8 for INT4, +max on a
      symmetric grid). x_m lands exactly on v_m whatever its sign, so an asymmetric grid's extra
      level (INT4's −8) is used; needs a signed scale format;
    - ``rms``: s = sqrt(mean(x²));
    - ``search``: s = α·amax/scale_max, α on ``search_points`` points in [0.5, 1] with the least
      squared error (the first on ties);
    - ``minmax``: integer zero point, s = max(max − min, 1e-5) / levels (llm-awq);
    - ``affine``: decoupleQ float scale and offset, ``affine_iters`` alternating least squares;
    - ``mx``: OCP MX shared power of two 2^(floor(log2 amax) − emax_elem), clipped to the powers
      of two the scale format holds (E8M0: ±127);
    - ``nv``: NVFP4 two-level: FP32 tensor scale g = amax / (scale_max · max(scale format)), block
      scale s = scale_format(amax_b / (scale_max · g)).

    zero_point_bits: width of each stored zero point (``minmax`` only); 0 = the smallest width
    holding the format's zero points 0..zero_point_max.
    outlier_fraction: the top fraction of |x| kept as BF16 value + 32-bit index.
    double_quant_block: QLoRA double quantization (Dettmers et al. 2023, PAPERS.md §5); 0 = off.
    Otherwise the per-group scales (in ``scale_format``, FP32 for NF4) are themselves quantized:
    their mean (one FP32 per tensor) is subtracted and blocks of ``double_quant_block``
    consecutive scales are coded with an 8-bit signed dynamic-tree code (``dynamic8_values``)
    times one FP32 absmax per block. The elements keep the codes of the exact scales (QLoRA
    quantizes the elements first); dequantization uses the reconstructed scales.
    """

    granularity: Granularity = "group"
    group_size: int = 128
    method: Method = "absmax"
    scale_format: str = "fp16"
    zero_point_bits: int = 0
    outlier_fraction: float = 0.0
    search_points: int = 26
    affine_iters: int = 0
    double_quant_block: int = 0

    def __post_init__(self) -> None:
        if self.granularity not in ("tensor", "channel", "group"):
            raise MacforgeError(f"granularity must be tensor, channel or group, not {self.granularity!r}")
        if self.method not in _METHODS:
            raise MacforgeError(f"scaling method must be one of {', '.join(_METHODS)}, not {self.method!r}")
        if self.scale_format not in SCALE_FORMAT_BITS:
            raise MacforgeError(
                f"scale_format must be one of {', '.join(SCALE_FORMAT_BITS)}, not {self.scale_format!r}")
        if not _is_int(self.group_size) or self.group_size < 1:
            raise MacforgeError(f"group_size must be a positive integer, not {self.group_size!r}")
        if not isinstance(self.outlier_fraction, (int, float)) or not (0.0 <= self.outlier_fraction < 0.5):
            raise MacforgeError(f"outlier_fraction must be in [0, 0.5), not {self.outlier_fraction!r}")
        if not _is_int(self.zero_point_bits) or not 0 <= self.zero_point_bits <= 32:
            raise MacforgeError(f"zero_point_bits must be an integer in 0..32, not {self.zero_point_bits!r}")
        if not _is_int(self.search_points) or self.search_points < 1:
            raise MacforgeError(f"search_points must be a positive integer, not {self.search_points!r}")
        if not _is_int(self.affine_iters) or self.affine_iters < 0:
            raise MacforgeError(f"affine_iters must be a non-negative integer, not {self.affine_iters!r}")
        if not _is_int(self.double_quant_block) or self.double_quant_block < 0:
            raise MacforgeError(
                f"double_quant_block must be a non-negative integer, not {self.double_quant_block!r}")

    def describe(self) -> str:
        g = {"tensor": "per tensor", "channel": "per channel"}.get(self.granularity,
                                                                   f"group {self.group_size}")
        s = f"{g}, {self.method}, {self.scale_format} scale"
        if self.double_quant_block:
            s += (f" double-quantized (8-bit dynamic code, {DQ_CONSTANT_FORMAT} absmax per "
                  f"{self.double_quant_block} scales)")
        if self.zero_point_bits:
            s += f", {self.zero_point_bits}-bit zero point"
        if self.method == "affine":
            s += f", {self.scale_format} offset"
        if self.outlier_fraction:
            s += f", outliers {self.outlier_fraction:g} (bf16 + int32 index)"
        return s


# --------------------------------------------------------------------------- scale formats
def _scale_format(name: str) -> Any:
    from ._registry import get_format

    return get_format(name)


@lru_cache(maxsize=None)
def _scale_range(name: str) -> tuple[float, float]:
    """(smallest positive, largest finite) value of a scale format."""
    if name == "fp32":  # too wide for a value table (Fp32Format)
        fi = np.finfo(np.float32)
        return float(fi.smallest_subnormal), float(fi.max)
    gv, _ = _scale_format(name).grid()
    pos = gv[gv > 0]
    return float(pos[0]), float(pos[-1])


@lru_cache(maxsize=None)
def _is_signed(name: str) -> bool:
    if name == "fp32":
        return True
    return bool(_scale_format(name).grid()[0][0] < 0)


def _floor_log2(v: float) -> int:
    """floor(log2 v) of a positive finite float, exactly (frexp: v = m·2^e, m in [0.5, 1))."""
    return math.frexp(v)[1] - 1


@lru_cache(maxsize=None)
def _pow2_range(name: str) -> tuple[int, int]:
    """Exponents of the smallest and largest powers of two the scale format holds."""
    lo, hi = _scale_range(name)
    m, e = math.frexp(lo)
    return (e - 1 if m == 0.5 else e), _floor_log2(hi)


def round_scale(s: np.ndarray, scale_format: str) -> np.ndarray:
    """Round positive scales to the scale format (RNE, saturating), as float64 values.

    A positive scale below the format's smallest positive value becomes that value, never 0."""
    s = np.asarray(s, dtype=np.float64)
    tiny, big = _scale_range(scale_format)
    if scale_format == "fp32":
        with np.errstate(under="ignore"):  # handled below: never 0
            r = np.minimum(s, big).astype(np.float32).astype(np.float64)
    else:
        fmt = _scale_format(scale_format)
        r = fmt.decode(fmt.encode(s))
    # a positive scale never rounds to 0 (that would turn the group into 0/0)
    return np.where((s > 0) & (r == 0), tiny, r)


def _round_signed(v: np.ndarray, scale_format: str) -> np.ndarray:
    return np.sign(v) * round_scale(np.abs(v), scale_format)


# --------------------------------------------------------------------------- double quantization
@lru_cache(maxsize=None)
def dynamic8_values() -> np.ndarray:
    """The 8-bit second-level code of QLoRA double quantization: signed dynamic tree quantization
    (Dettmers, "8-bit approximations for parallelism in deep learning", ICLR 2016), the map
    bitsandbytes builds with ``create_dynamic_map(signed=True)`` and QLoRA uses for the scales.

    For each decade 10^(i-6), i = 0..6: the 2^i midpoints of a linear split of [0.1, 1] into 2^i
    cells, with both signs; plus 0 and 1: 2·127 + 2 = 256 values in [-0.993, 1], sorted (code =
    index), stored as float32 values as in bitsandbytes.
    """
    vals = [0.0, 1.0]
    for i in range(7):
        edges = np.linspace(0.1, 1.0, (1 << i) + 1)
        mids = (edges[:-1] + edges[1:]) / 2 * 10.0 ** (i - 6)
        vals += list(mids) + list(-mids)
    v = np.sort(np.asarray(vals, dtype=np.float32).astype(np.float64))
    v.setflags(write=False)
    return v


@lru_cache(maxsize=None)
def _dynamic8_format() -> "Format":
    from ._core import Format

    v = dynamic8_values()
    return Format(name="dynamic8", bits=8, kind="lut", values=v,
                  tie_priority=(np.arange(256) % 2 == 0).astype(np.int64), encodable=np.ones(256, dtype=bool),
                  description="signed 8-bit dynamic tree quantization map (QLoRA second-level code)",
                  source="Dettmers 2016; bitsandbytes create_dynamic_map(signed=True)")


def _double_quantize(s: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """QLoRA second level: (codes, per-block absmax, mean, reconstructed scales) of the flat
    scales ``s`` (C order), blocks of ``block`` consecutive scales, the last one partial."""
    flat = s.reshape(-1)
    mean = float(_round_signed(np.array(flat.mean()), DQ_CONSTANT_FORMAT))
    d = flat - mean
    nb = -(-d.size // block)
    padded = np.zeros(nb * block)
    padded[: d.size] = d
    blocks = padded.reshape(nb, block)
    amax = np.abs(blocks).max(axis=1)
    bmax = np.where(amax > 0, round_scale(amax, DQ_CONSTANT_FORMAT), 1.0)  # an all-equal block: any absmax codes it as 0
    code = _dynamic8_format()
    codes = code.encode(blocks / bmax[:, None])
    rec = code.decode(codes) * bmax[:, None] + mean
    return codes.reshape(-1)[: d.size], bmax, mean, rec.reshape(-1)[: d.size].reshape(s.shape)


# --------------------------------------------------------------------------- compatibility
def zero_point_width(fmt: "Format", sc: Scaling) -> int:
    """Bits of each stored zero point under ``sc`` (0 when the method stores none)."""
    if sc.method != "minmax":
        if sc.zero_point_bits:
            raise MacforgeError(f"zero_point_bits={sc.zero_point_bits} but {fmt.name} with scaling "
                                f"{sc.method!r} stores no zero points")
        return 0
    need = max(1, int(fmt.zero_point_max).bit_length())
    if sc.zero_point_bits == 0:
        return need
    if sc.zero_point_bits < need:
        raise MacforgeError(f"zero_point_bits={sc.zero_point_bits} cannot hold the zero points "
                            f"0..{fmt.zero_point_max} of {fmt.name} (needs {need})")
    return sc.zero_point_bits


def _check(fmt: "Format", sc: Scaling) -> None:
    """Refuse a format/scaling pair that cannot be quantized or stored as described."""
    if sc.method == "minmax" and not fmt.has_zero_point:
        raise MacforgeError(f"scaling method 'minmax' needs a zero-point format, {fmt.name} has none")
    if fmt.has_zero_point and sc.method != "minmax":
        raise MacforgeError(f"{fmt.name} has a zero point: use scaling method 'minmax', not {sc.method!r}")
    zero_point_width(fmt, sc)
    if sc.method in ("signmax", "affine") and not _is_signed(sc.scale_format):
        what = "scale" if sc.method == "signmax" else "offset"
        raise MacforgeError(f"scaling {sc.method!r} needs a signed {what} format, {sc.scale_format} has no sign")
    if sc.method == "signmax" and _signmax_extreme(fmt) == 0:
        raise MacforgeError(f"scaling 'signmax' needs a format with a nonzero value, {fmt.name} has none")
    if sc.double_quant_block and sc.method not in _DQ_METHODS:
        raise MacforgeError(f"double_quant_block needs scaling method {', '.join(_DQ_METHODS[:-1])} or "
                            f"{_DQ_METHODS[-1]}, not {sc.method!r}")


def _signmax_extreme(fmt: "Format") -> float:
    vmin, vmax = fmt.min_value, fmt.max_value
    return vmin if -vmin > vmax else vmax


# --------------------------------------------------------------------------- the container
@dataclass
class QuantizedTensor:
    """Codes plus everything needed to dequantize them.

    ``scales`` / ``zero_points`` / ``offsets`` have shape ``x.shape[:-1] + (n_groups,)``
    (tensor granularity: one group spanning everything, shape ``(1,)``). With double
    quantization ``scales`` holds the reconstructed scales and ``scale_codes`` (8-bit, one per
    scale), ``scale_block_absmax`` (one per block) and ``scale_mean`` what is stored.
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
    scale_codes: np.ndarray | None = None
    scale_block_absmax: np.ndarray | None = None
    scale_mean: float | None = None

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

    def stored_bits(self) -> dict[str, int]:
        """Bits of every array this tensor stores, counted from the arrays and the formats."""
        sc, fmt = self.scaling, self.format
        out = {"elements": int(self.codes.size) * int(fmt.bits)}
        if self.scale_codes is not None:
            assert self.scale_block_absmax is not None  # set together by quantize
            out["scales"] = int(self.scale_codes.size) * _dynamic8_format().bits
            out["scale_block_absmax"] = int(self.scale_block_absmax.size) * SCALE_FORMAT_BITS[DQ_CONSTANT_FORMAT]
            out["scale_mean"] = SCALE_FORMAT_BITS[DQ_CONSTANT_FORMAT]
        else:
            out["scales"] = int(self.scales.size) * SCALE_FORMAT_BITS[sc.scale_format]
        if self.zero_points is not None:
            out["zero_points"] = int(self.zero_points.size) * zero_point_width(fmt, sc)
        if self.offsets is not None:
            out["offsets"] = int(self.offsets.size) * SCALE_FORMAT_BITS[sc.scale_format]
        if sc.method == "nv":
            out["tensor_scale"] = SCALE_FORMAT_BITS[NV_TENSOR_SCALE_FORMAT]
        if self.outlier_index is not None:
            k = int(self.outlier_index.size)
            out["outlier_values"] = k * SCALE_FORMAT_BITS[OUTLIER_VALUE_FORMAT]
            out["outlier_index"] = k * OUTLIER_INDEX_BITS
        return out

    @property
    def bits_per_element(self) -> float:
        return sum(self.stored_bits().values()) / int(np.prod(self.shape))


def _group_view_shape(shape: tuple[int, ...], sc: Scaling) -> tuple[int, ...]:
    if sc.granularity == "tensor":
        return (1, int(np.prod(shape)))
    k = shape[-1]
    if sc.granularity == "channel":
        return tuple(shape[:-1]) + (1, k)
    return tuple(shape[:-1]) + (k // sc.group_size, sc.group_size)


def _n_outliers(fraction: float, size: int) -> int:
    return int(round(fraction * size))


# --------------------------------------------------------------------------- storage accounting
def _nominal_shape(sc: Scaling) -> tuple[int, int]:
    k = NOMINAL_ROWS
    if sc.granularity == "group" and k % sc.group_size:
        k = sc.group_size * -(-k // sc.group_size)
    return NOMINAL_ROWS, k


def storage_breakdown(fmt: "Format", scaling: Scaling | None = None,
                      shape: tuple[int, ...] | None = None) -> dict[str, int]:
    """Bits of each stored item of ``fmt`` under ``scaling`` for a tensor of ``shape`` (the same
    items and counts as ``QuantizedTensor.stored_bits``). Without a shape a 4096 × 4096 matrix
    is assumed (the last axis rounded up to a whole number of groups)."""
    sc = scaling or fmt.default_scaling
    if sc is None:
        shp = tuple(shape) if shape else (NOMINAL_ROWS, NOMINAL_ROWS)
        return {"elements": int(np.prod(shp)) * int(fmt.bits)}
    if fmt.kind == "entropy":  # variable-length codes: the coded stream, its table and offsets
        return fmt.storage_breakdown(tuple(int(d) for d in shape) if shape else (NOMINAL_ROWS, NOMINAL_ROWS))  # type: ignore[attr-defined]
    _check(fmt, sc)
    shp = tuple(int(d) for d in shape) if shape else _nominal_shape(sc)
    if sc.granularity == "group" and shp[-1] % sc.group_size:
        raise MacforgeError(f"group_size {sc.group_size} does not divide the last axis ({shp[-1]})")
    size = int(np.prod(shp))
    n_groups = int(np.prod(_group_view_shape(shp, sc)[:-1]))
    out = {"elements": size * int(fmt.bits)}
    if sc.double_quant_block:
        out["scales"] = n_groups * _dynamic8_format().bits
        out["scale_block_absmax"] = -(-n_groups // sc.double_quant_block) * SCALE_FORMAT_BITS[DQ_CONSTANT_FORMAT]
        out["scale_mean"] = SCALE_FORMAT_BITS[DQ_CONSTANT_FORMAT]
    else:
        out["scales"] = n_groups * SCALE_FORMAT_BITS[sc.scale_format]
    zpw = zero_point_width(fmt, sc)
    if zpw:
        out["zero_points"] = n_groups * zpw
    if sc.method == "affine":
        out["offsets"] = n_groups * SCALE_FORMAT_BITS[sc.scale_format]
    if sc.method == "nv":
        out["tensor_scale"] = SCALE_FORMAT_BITS[NV_TENSOR_SCALE_FORMAT]
    if sc.outlier_fraction:
        k = _n_outliers(sc.outlier_fraction, size)
        out["outlier_values"] = k * SCALE_FORMAT_BITS[OUTLIER_VALUE_FORMAT]
        out["outlier_index"] = k * OUTLIER_INDEX_BITS
    return out


def storage_bits_per_element(fmt: "Format", scaling: Scaling | None = None,
                             shape: tuple[int, ...] | None = None) -> float:
    """Bits per element including scales, zero points, offsets, outliers and tensor scales
    (``storage_breakdown`` summed, divided by the element count)."""
    sc = scaling or fmt.default_scaling
    shp = tuple(shape) if shape else (_nominal_shape(sc) if sc else (NOMINAL_ROWS, NOMINAL_ROWS))
    return sum(storage_breakdown(fmt, scaling, shp).values()) / int(np.prod(shp))


# --------------------------------------------------------------------------- quantize
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
    _check(fmt, sc)

    out_idx = out_val = None
    if sc.outlier_fraction:
        n_out = _n_outliers(sc.outlier_fraction, xa.size)
        flat = xa.reshape(-1)
        if n_out:
            out_idx = np.sort(np.argpartition(np.abs(flat), flat.size - n_out)[flat.size - n_out:])
            out_val = round_scale(np.abs(flat[out_idx]), OUTLIER_VALUE_FORMAT) * np.sign(flat[out_idx])
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
        s = np.maximum(mx - mn, 1e-5) / fmt.asym_levels  # llm-awq clamps the range at 1e-5
        s = round_scale(s, sc.scale_format)
        zp = np.clip(-np.rint(mn / s), 0, fmt.zero_point_max).astype(np.int64)
        codes = fmt.encode(g / s[..., None], zp[..., None])
    elif sc.method == "affine":
        s, offsets, codes = _affine_fit(g, fmt, sc)
    elif sc.method == "mx":
        # shared exponent floor(log2 amax) - emax_elem, exactly (frexp, not a float64 log2 that
        # rounds 2^k - 1 ulp up to k); clipped to the powers of two of the scale format
        emax = _floor_log2(fmt.scale_max)
        amax = _amax(g)
        _, ex = np.frexp(amax)
        e = np.where(amax > 0, ex - 1, 0) - emax
        lo, hi = _pow2_range(sc.scale_format)
        s = np.ldexp(1.0, np.clip(e, lo, hi))
        codes = fmt.encode(g / s[..., None])
    elif sc.method == "nv":
        _, s_top = _scale_range(sc.scale_format)
        amax_t = float(np.max(np.abs(g)))
        # round_scale keeps a positive tensor scale positive (amax ≈ 1e-44 underflows float32)
        tensor_scale = (float(round_scale(np.array(amax_t / (fmt.scale_max * s_top)), NV_TENSOR_SCALE_FORMAT))
                        if amax_t > 0 else 1.0)
        s = round_scale(_amax(g) / (fmt.scale_max * tensor_scale), sc.scale_format)
        s = np.where(s > 0, s, 1.0)  # an all-zero block: any scale gives zero codes
        codes = fmt.encode(g / (s[..., None] * tensor_scale))
    else:
        if sc.method == "absmax":
            s = _amax(g) / fmt.scale_max
        elif sc.method == "signmax":
            gmax, gmin = g.max(axis=-1), g.min(axis=-1)
            s = np.where(-gmin > gmax, gmin, gmax) / _signmax_extreme(fmt)
        elif sc.method == "rms":
            s = np.sqrt(np.mean(g * g, axis=-1))
        elif sc.method == "search":
            s = _search_scale(g, fmt, sc)
        else:  # pragma: no cover - validated in Scaling
            raise MacforgeError(f"unknown scaling method {sc.method!r}")
        s = np.where(s != 0, s, 1.0)
        s = _round_signed(s, sc.scale_format)
        codes = fmt.encode(g / s[..., None])
    dq_codes = dq_absmax = dq_mean = None
    if sc.double_quant_block:
        dq_codes, dq_absmax, dq_mean, s = _double_quantize(np.asarray(s, dtype=np.float64),
                                                           sc.double_quant_block)
    return QuantizedTensor(
        format=fmt, scaling=sc, shape=tuple(np.asarray(x).shape), codes=codes.reshape(np.asarray(x).shape),
        scales=np.asarray(s, dtype=np.float64), zero_points=zp, offsets=offsets,
        tensor_scale=tensor_scale, outlier_index=out_idx, outlier_values=out_val,
        scale_codes=dq_codes, scale_block_absmax=dq_absmax, scale_mean=dq_mean,
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


def with_defaults(sc: Scaling, **kw: object) -> Scaling:
    return replace(sc, **kw)  # type: ignore[arg-type]
