"""The element Format: a table of values by code plus the rules that encode real numbers into it.

A Format is data. Its ``values`` array (float64, index = code) is the single source of truth for
what a code means; the golden models, the RTL generator and the cost model all read it. Encoding
is nearest-value on that table with a per-code tie priority (round-half-to-even for integer and
floating-point grids), saturation to the largest finite value, and a stated NaN/Inf policy.
Zero-point formats round to the nearest integer value q - z, ties to the even value
(``zero_point_codes``); formats whose published quantizer is not nearest-value (dINT Variant A,
NUPES) carry their own encoder, still tested against the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

from ..errors import MacforgeError

if TYPE_CHECKING:
    from ._tensor import QuantizedTensor, Scaling

__all__ = ["Format", "NanPolicy", "InfPolicy", "nearest_codes", "zero_point_codes"]

NanPolicy = Literal["nan_code", "error"]
InfPolicy = Literal["saturate", "inf_code", "error"]

# encoder(fmt, x, zero_point) -> codes; x is float64, already scaled, NaN/Inf already handled.
Encoder = Callable[["Format", np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, eq=False)
class Format:
    """A low-bit element format.

    Parameters
    ----------
    name, bits, kind
        ``kind`` is one of ``int``, ``int_asym``, ``dint``, ``fp``, ``lut``, ``nupes``,
        ``affine``, ``scale``.
    values
        float64 array of length ``2**bits``; ``values[code]`` is the code's value (NaN for NaN
        codes, ±inf for infinities). For formats with a zero point (``zp_codes``) the value is the
        one at zero point 0; ``decode(codes, zero_point=z)`` subtracts ``z`` from those codes.
    tie_priority
        per code; on an exact tie between two neighbours the code with the higher priority wins
        (integers: even values; FP: even mantissa).
    encodable
        codes the encoder may produce (e.g. NUPES and symmetric INT never produce the most
        negative code).
    """

    name: str
    bits: int
    kind: str
    values: np.ndarray
    tie_priority: np.ndarray
    encodable: np.ndarray
    nan_policy: NanPolicy = "error"
    inf_policy: InfPolicy = "saturate"
    neg_zero_code: int | None = None
    nan_code: int | None = None
    zp_codes: np.ndarray | None = None
    zero_point_max: int = 0
    asym_levels: int = 0
    encoder: Encoder | None = None
    description: str = ""
    source: str = ""
    default_scaling: "Scaling | None" = None
    params: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = 1 << self.bits
        for attr in ("values", "tie_priority", "encodable"):
            arr = getattr(self, attr)
            if len(arr) != n:
                raise MacforgeError(f"format {self.name}: {attr} has {len(arr)} entries, expected {n}")
        vals = np.asarray(self.values, dtype=np.float64)
        vals.setflags(write=False)
        object.__setattr__(self, "values", vals)
        ok = np.asarray(self.encodable, dtype=bool) & np.isfinite(vals)
        codes = np.nonzero(ok)[0]
        # one canonical code per distinct value (e.g. +0 over -0), highest priority first
        order = np.lexsort((codes, -np.asarray(self.tie_priority)[codes], vals[codes]))
        codes = codes[order]
        v = vals[codes]
        keep = np.concatenate(([True], v[1:] != v[:-1]))
        grid_codes = codes[keep]
        object.__setattr__(self, "_grid_values", vals[grid_codes])
        object.__setattr__(self, "_grid_codes", grid_codes.astype(np.uint8 if self.bits <= 8 else np.uint32))
        object.__setattr__(self, "_grid_prio", np.asarray(self.tie_priority)[grid_codes])
        nan_codes = np.nonzero(np.isnan(vals))[0]
        if self.nan_code is not None and not np.isnan(vals[self.nan_code]):
            raise MacforgeError(f"format {self.name}: nan_code {self.nan_code} does not decode to NaN")
        canon = self.nan_code if self.nan_code is not None else (int(nan_codes[0]) if len(nan_codes) else None)
        object.__setattr__(self, "_nan_code", canon)
        if self.zp_codes is not None and self.encoder is None:
            zp_mask = np.asarray(self.zp_codes, dtype=bool)
            if not zp_mask.all() or not np.array_equal(vals, np.arange(n)):
                # zero_point_codes writes rint(x) + z as the code itself
                raise MacforgeError(f"format {self.name}: a zero-point format without its own encoder "
                                    "must have the values 0..2^bits-1 on every code (q - z)")
        pinf = np.nonzero(vals == np.inf)[0]
        ninf = np.nonzero(vals == -np.inf)[0]
        object.__setattr__(self, "_inf_codes", (int(pinf[0]), int(ninf[0])) if len(pinf) else None)

    # ------------------------------------------------------------------ facts
    @property
    def max_value(self) -> float:
        """Largest finite encodable value (at zero point 0)."""
        return float(self._grid_values[-1])  # type: ignore[attr-defined]

    @property
    def min_value(self) -> float:
        return float(self._grid_values[0])  # type: ignore[attr-defined]

    @property
    def scale_max(self) -> float:
        """The magnitude absmax scaling maps to: the largest value reachable with either sign."""
        return float(min(self.max_value, -self.min_value)) if self.min_value < 0 else self.max_value

    @property
    def has_zero_point(self) -> bool:
        return self.zp_codes is not None

    @property
    def code_dtype(self) -> type:
        return np.uint8 if self.bits <= 8 else np.uint32

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted distinct encodable finite values, the canonical code of each)."""
        return self._grid_values, self._grid_codes  # type: ignore[attr-defined]

    # ---------------------------------------------------------- encode/decode
    def encode(self, x: np.ndarray | float, zero_point: np.ndarray | int | None = None) -> np.ndarray:
        """Codes for already-scaled values ``x`` (for zero-point formats: ``x = w / s``)."""
        xa = np.asarray(x, dtype=np.float64)
        zp = self._zero_point(zero_point, xa.shape)
        codes: np.ndarray = np.empty(xa.shape, dtype=self.code_dtype)
        nan = np.isnan(xa)
        inf = np.isinf(xa)
        special = nan | inf
        if nan.any():
            if self.nan_policy == "error" or self._nan_code is None:  # type: ignore[attr-defined]
                raise MacforgeError(f"format {self.name} has no NaN code: input contains NaN")
            codes[nan] = self._nan_code  # type: ignore[attr-defined]
        if inf.any():
            if self.inf_policy == "error":
                raise MacforgeError(f"format {self.name} does not encode Inf: input contains Inf")
            if self.inf_policy == "inf_code" and self._inf_codes is not None:  # type: ignore[attr-defined]
                pc, nc = self._inf_codes  # type: ignore[attr-defined]
                codes[inf] = np.where(xa[inf] > 0, pc, nc)
            else:  # saturate
                xs = np.where(xa[inf] > 0, np.inf, -np.inf)
                codes[inf] = self._encode_finite(np.clip(xs, -1e308, 1e308), zp[inf])
        fin = ~special
        if fin.all():
            return self._encode_finite(xa, zp).reshape(xa.shape)
        codes[fin] = self._encode_finite(xa[fin], zp[fin])
        return codes

    def decode(self, codes: np.ndarray | int, zero_point: np.ndarray | int | None = None) -> np.ndarray:
        """Values (float64) of ``codes``; for zero-point formats relative to ``zero_point``."""
        c = np.asarray(codes)
        if c.dtype.kind not in "ui":
            raise MacforgeError(f"codes must be integers, not {c.dtype}")
        if c.size and (c.min() < 0 or c.max() >= (1 << self.bits)):
            raise MacforgeError(f"codes out of range for {self.bits}-bit format {self.name}")
        v = self.values[c]
        if self.zp_codes is not None:
            zp = self._zero_point(zero_point, c.shape)
            v = np.where(self.zp_codes[c], v - zp, v)
        return v

    def _zero_point(self, zero_point: np.ndarray | int | None, shape: tuple[int, ...]) -> np.ndarray:
        if zero_point is None:
            return np.zeros(shape, dtype=np.int64)
        if self.zp_codes is None:
            raise MacforgeError(f"format {self.name} has no zero point; got zero_point")
        zp = np.asarray(zero_point)
        if zp.dtype.kind not in "ui":
            raise MacforgeError(f"zero_point must be integer, not {zp.dtype}")
        if zp.size and (zp.min() < 0 or zp.max() > self.zero_point_max):
            raise MacforgeError(f"zero_point out of range 0..{self.zero_point_max} for {self.name}")
        return np.broadcast_to(zp.astype(np.int64), shape)

    def _encode_finite(self, x: np.ndarray, zp: np.ndarray) -> np.ndarray:
        if self.encoder is not None:
            return self.encoder(self, x, zp).astype(self.code_dtype)
        if self.zp_codes is not None:
            return zero_point_codes(self, x, zp)
        return nearest_codes(self, x)

    # ------------------------------------------------------- tensor helpers
    def quantize(self, x: np.ndarray, scaling: "Scaling | None" = None) -> "QuantizedTensor":
        """Scale and encode a whole tensor (groups along the last axis); see ``Scaling``."""
        from ._tensor import quantize

        return quantize(x, self, scaling)

    def dequantize(self, q: "QuantizedTensor") -> np.ndarray:
        return q.dequantize()

    def bits_per_element(self, scaling: "Scaling | None" = None) -> float:
        from ._tensor import storage_bits_per_element

        return storage_bits_per_element(self, scaling)

    def __repr__(self) -> str:
        return f"Format({self.name!r}, bits={self.bits}, kind={self.kind!r})"


def zero_point_codes(fmt: Format, x: np.ndarray, zp: np.ndarray) -> np.ndarray:
    """Codes of an unsigned integer grid with an integer zero point: ``clip(rint(x) + z)``.

    Ties go to the even *value* q - z, not to the even code q: with an odd z the two differ
    (x = 0.5, z = 1: code 1, value 0). This is llm-awq's ``clamp(round(w / s) + z, 0, 2^b - 1)``
    (torch.round is half to even) and the rule of dINT Variant A's integer grid, so INT-asym and
    dINT-A round alike.
    """
    q = np.rint(x) + zp
    return np.clip(q, 0, (1 << fmt.bits) - 1).astype(fmt.code_dtype)


def _is_even_tie_integer_grid(fmt: Format) -> bool:
    """The grid is consecutive integers whose ties go to the even value (int / int_asym grids)."""
    cached = fmt.__dict__.get("_even_int_grid")
    if cached is None:
        gv = fmt._grid_values  # type: ignore[attr-defined]
        gp = fmt._grid_prio  # type: ignore[attr-defined]
        even = (gv % 2 == 0)
        cached = bool(len(gv) > 1 and np.all(np.diff(gv) == 1) and np.all(gv == np.round(gv))
                      and np.all((gp[1:] > gp[:-1]) == even[1:]) and np.all((gp[1:] < gp[:-1]) == even[:-1]))
        object.__setattr__(fmt, "_even_int_grid", cached)
    return cached


def nearest_codes(fmt: Format, x: np.ndarray) -> np.ndarray:
    """Round finite ``x`` to the nearest grid value of ``fmt`` with saturation.

    Ties (``x`` exactly at the float64 midpoint of two neighbours) go to the code with the higher
    tie priority. The comparison is made against the midpoint, never against two rounded
    differences, so ties are detected exactly for grids of short binary values.
    """
    gv, gc = fmt.grid()
    gp = fmt._grid_prio  # type: ignore[attr-defined]
    xf = np.clip(x, gv[0], gv[-1])
    if fmt.neg_zero_code is None and _is_even_tie_integer_grid(fmt):
        # consecutive integers with ties to the even value: exactly rint (half to even) + clip
        return gc[(np.rint(xf) - gv[0]).astype(np.int64)]
    if len(gv) == 1:
        out = np.full(xf.shape, gc[0], dtype=fmt.code_dtype)
    else:
        i = np.clip(np.searchsorted(gv, xf, side="right") - 1, 0, len(gv) - 2)
        lo = gv[i]
        hi = gv[i + 1]
        mid = lo + (hi - lo) * 0.5
        up = (xf > mid) | ((xf == mid) & (gp[i + 1] > gp[i]))
        out = np.where(up, gc[i + 1], gc[i]).astype(fmt.code_dtype)
    if fmt.neg_zero_code is not None:
        negz = (fmt.values[out] == 0) & np.signbit(x)
        out = np.where(negz, fmt.code_dtype(fmt.neg_zero_code), out)
    return out
