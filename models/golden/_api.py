"""Public golden-model API: validate inputs, then call the numba kernels."""

from __future__ import annotations

import math
import sys
import threading
from functools import lru_cache

from typing import Any, Callable

import numpy as np

from ..errors import MacforgeError
from ..formats import Format, get_format
from ..units import (COEF_BITS, FRAC_BITS, UnitSpec, WeightDecode, fractional_shift, get_unit, int_range,
                     round_product, signed_bits, weight_decode)
from . import _kernels as K
from . import _simd

__all__ = ["mac", "dot", "dq_group_mac", "gemm", "products", "for_unit", "to_fixed", "lut_entries"]

ArrayLike = np.ndarray | list[int]


def _spec(unit: UnitSpec | str) -> UnitSpec:
    return get_unit(unit) if isinstance(unit, str) else unit


def _ints(name: str, x: ArrayLike, lo: int, hi: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":
        raise MacforgeError(f"{name} must be an integer array, not {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise MacforgeError(f"{name} has shape {arr.shape}, expected {shape}")
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise MacforgeError(f"{name} out of range [{lo}, {hi}] (min {int(arr.min())}, max {int(arr.max())})")
    return arr.astype(np.int64)


def _int_arg(name: str, v: object, lo: int, hi: int) -> int:
    """A scalar integer argument in lo..hi (numpy integers accepted, bool refused)."""
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
        raise MacforgeError(f"{name} must be an integer in {lo}..{hi}, not {v!r}")
    return int(v)


def _flag(name: str, x: ArrayLike | None, shape: tuple[int, ...], default: int) -> np.ndarray:
    if x is None:
        return np.full(shape, default, dtype=np.uint8)
    return _ints(name, x, 0, 1, shape).astype(np.uint8)


def lut_entries(unit: UnitSpec, lut: ArrayLike | None) -> np.ndarray:
    """The decode table in use: the unit's own, or a programmed LUT checked against lut_bits."""
    table, _, _ = unit.decode.as_arrays()
    if lut is None:
        return table
    if unit.lut != "programmable":
        raise MacforgeError(f"unit {unit.name} has no programmable LUT; lut must be None")
    b = unit.lut_bits
    return _ints("lut", lut, -(1 << (b - 1)), (1 << (b - 1)) - 1, (len(table),))


def _decode_args(unit: UnitSpec, lut: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, int]:
    _, zp_mask, zp_scale = unit.decode.as_arrays()
    return lut_entries(unit, lut), zp_mask, zp_scale


def _zp(unit: UnitSpec, z: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray:
    """Zero points broadcast to ``shape`` (T,) or (T, lanes): a scalar, one per cycle (T,), or
    (dot) one per lane (T, lanes); any other shape is refused before numpy could broadcast it."""
    if unit.decode.zp_mask is None:
        if z is not None:
            raise MacforgeError(f"unit {unit.name} has no zero point; z must be None")
        return np.zeros(shape, dtype=np.int64)
    if z is None:
        raise MacforgeError(f"unit {unit.name} needs a zero point z (0..{unit.decode.zp_max})")
    zz = _ints("z", z, 0, unit.decode.zp_max)
    allowed = [(), shape[:1]] + ([shape] if len(shape) > 1 else [])
    if zz.shape not in allowed:
        want = " or ".join([", ".join(str(a) for a in allowed[:-1]), str(allowed[-1])])
        raise MacforgeError(f"z has shape {zz.shape}, expected {want}")
    if zz.ndim == 1 and len(shape) > 1:
        zz = zz[:, None]  # one zero point per cycle, shared by the lanes
    return np.broadcast_to(zz, shape).copy() if zz.shape != shape else zz


def _acc0(unit: UnitSpec, acc0: int) -> int:
    if not isinstance(acc0, (int, np.integer)) or isinstance(acc0, bool):
        raise MacforgeError(f"acc0 must be an integer, not {acc0!r}")
    lo, hi = -(1 << (unit.acc_bits - 1)), (1 << (unit.acc_bits - 1)) - 1
    if not lo <= int(acc0) <= hi:
        raise MacforgeError(f"acc0={acc0} does not fit acc_bits={unit.acc_bits}")
    return int(acc0)


def mac(unit: UnitSpec | str, w: ArrayLike, a: ArrayLike, *, en: ArrayLike | None = None,
        clr: ArrayLike | None = None, z: ArrayLike | None = None, lut: ArrayLike | None = None,
        acc0: int = 0) -> np.ndarray:
    """Accumulator after each cycle of a single-lane MAC (the value the RTL shows ``latency``
    cycles later): ``acc_t = R((clr_t ? 0 : acc_{t-1}) + (en_t ? p(w_t, a_t) : 0))``."""
    u = _spec(unit)
    if u.kind != "mac":
        raise MacforgeError(f"unit {u.name} is a {u.kind}, not a mac")
    wa = np.asarray(w)
    if wa.ndim != 1:
        raise MacforgeError(f"w must be 1-D (one code per cycle), got shape {wa.shape}")
    shape = wa.shape
    ww = _ints("w", wa, 0, (1 << u.decode.bits) - 1)
    aa = _ints("a", a, *u.act_range, shape=shape)
    table, zp_mask, zp_scale = _decode_args(u, lut)
    # a single-lane MAC is the one-lane case of the dot-product kernel
    return K.dot_trace(ww[:, None], aa[:, None], _flag("en", en, shape, 1), _flag("clr", clr, shape, 0),
                       _zp(u, z, shape)[:, None], table, zp_mask, zp_scale, u.acc_bits,
                       u.overflow == "saturate", _acc0(u, acc0), u.product_shift, u.product_round == "rne")


def dot(unit: UnitSpec | str, w: ArrayLike, a: ArrayLike, *, en: ArrayLike | None = None,
        clr: ArrayLike | None = None, z: ArrayLike | None = None, lut: ArrayLike | None = None,
        acc0: int = 0) -> np.ndarray:
    """Accumulator after each cycle of an N-lane dot-product PE; ``w``, ``a`` are (T, lanes)."""
    u = _spec(unit)
    if u.kind != "dot":
        raise MacforgeError(f"unit {u.name} is a {u.kind}, not a dot")
    wa = np.asarray(w)
    if wa.ndim != 2 or wa.shape[1] != u.lanes:
        raise MacforgeError(f"w must have shape (T, {u.lanes}), got {wa.shape}")
    shape = wa.shape
    ww = _ints("w", wa, 0, (1 << u.decode.bits) - 1)
    aa = _ints("a", a, *u.act_range, shape=shape)
    table, zp_mask, zp_scale = _decode_args(u, lut)
    zz = _zp(u, z, shape)
    t = (shape[0],)
    return K.dot_trace(ww, aa, _flag("en", en, t, 1), _flag("clr", clr, t, 0), zz,
                       table, zp_mask, zp_scale, u.acc_bits, u.overflow == "saturate", _acc0(u, acc0),
                       u.product_shift, u.product_round == "rne")


def to_fixed(v: ArrayLike, coef_bits: int, frac_bits: int) -> np.ndarray:
    """Round real coefficients to signed fixed point (RNE) with ``frac_bits`` fractional bits,
    saturating to ``coef_bits``; returns the integers."""
    _int_arg("coef_bits", coef_bits, *COEF_BITS)
    _int_arg("frac_bits", frac_bits, *FRAC_BITS)
    x = np.asarray(v, dtype=np.float64)
    if not np.isfinite(x).all():
        raise MacforgeError("coefficients contain NaN or Inf")
    q = np.rint(x * float(1 << frac_bits))
    lo, hi = -(1 << (coef_bits - 1)), (1 << (coef_bits - 1)) - 1
    # clip in float64 to the powers of two around the range (exact), then exactly in int64
    q = np.clip(q, float(lo), float(hi + 1)).astype(np.int64)
    return np.clip(q, lo, hi)


def dq_group_mac(unit: UnitSpec | str, q: ArrayLike, a: ArrayLike, s_fx: ArrayLike, z_fx: ArrayLike,
                 *, acc0: int = 0) -> np.ndarray:
    """decoupleQ group MAC: accumulator after each group, in units of 2^-frac_bits.

    ``q`` are 2-bit codes and ``a`` int8 activations (length n_groups·group_size); ``s_fx``,
    ``z_fx`` the per-group scale and offset as ``coef_bits``-wide fixed-point integers
    (``to_fixed``)."""
    u = _spec(unit)
    if u.kind != "dq_group":
        raise MacforgeError(f"unit {u.name} is a {u.kind}, not a dq_group")
    qa = np.asarray(q)
    if qa.ndim != 1 or qa.size % u.group_size:
        raise MacforgeError(f"q must be 1-D with a multiple of group_size={u.group_size} codes, got {qa.shape}")
    ng = qa.size // u.group_size
    qq = _ints("q", qa, 0, (1 << u.decode.bits) - 1)
    aa = _ints("a", a, *u.act_range, shape=qa.shape)
    lo, hi = -(1 << (u.coef_bits - 1)), (1 << (u.coef_bits - 1)) - 1
    ss = _ints("s_fx", s_fx, lo, hi, (ng,))
    zz = _ints("z_fx", z_fx, lo, hi, (ng,))
    table, _, _ = u.decode.as_arrays()
    return K.dq_group_trace(qq, aa, ss, zz, u.group_size, table, u.acc_bits, u.overflow == "saturate",
                            _acc0(u, acc0))


def products(unit: UnitSpec | str, w: ArrayLike, a: ArrayLike, z: ArrayLike | None = None,
             lut: ArrayLike | None = None) -> np.ndarray:
    """Products p(w, a) as the accumulator adds them (elementwise, any shape): exact in the
    weight's integer unit, or reduced by the unit's ``product_round`` (then in ``acc_unit``)."""
    u = _spec(unit)
    ww = _ints("w", w, 0, (1 << u.decode.bits) - 1)
    aa = _ints("a", a, *u.act_range, shape=ww.shape)
    table, zp_mask, zp_scale = _decode_args(u, lut)
    wi = table[ww]
    if u.decode.zp_mask is not None:
        wi = wi - zp_mask[ww].astype(np.int64) * zp_scale * _zp(u, z, ww.shape)
    return round_product(wi * aa, u.product_shift, u.product_round)


# float32 carries every integer of magnitude ≤ 2^24 exactly, float64 ≤ 2^53: if a block's
# Σ|w·a| stays within that, every partial sum the BLAS forms (in any order, with or without FMA)
# is such an integer and is computed exactly.
_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53


def gemm(weight_codes: ArrayLike, activations: ArrayLike, weight_format: Format | str,
         act_format: str = "int8", acc_bits: int = 32, overflow: str = "wrap", *,
         zero_points: ArrayLike | None = None, group_size: int | None = None,
         lut_bits: int | None = None, product_round: str = "exact") -> np.ndarray:
    """Bit-exact GEMM: (M, N) int64 accumulators of ``activations (M, K) × codes (N, K)^T``.

    Values are in the weight format's integer unit (half-units for dINT), reduced by
    ``overflow`` exactly as a single MAC accumulating k = 0..K-1 in order would. Zero-point
    formats take ``zero_points`` (N, K // group_size). Formats without an exact short integer
    form (NF4, CRD) need ``lut_bits`` (their LUT is quantized as in the LUT units).
    ``product_round`` (``floor`` | ``rne``, as ``UnitSpec.product_round``) reduces every
    product of a fractional power-of-two unit to whole units before it is accumulated.
    """
    fmt = get_format(weight_format) if isinstance(weight_format, str) else weight_format
    if overflow not in ("wrap", "saturate"):
        raise MacforgeError(f"overflow must be 'wrap' or 'saturate', not {overflow!r}")
    if not isinstance(acc_bits, int) or not 2 <= acc_bits <= 62:
        raise MacforgeError(f"acc_bits must be an integer in 2..62, not {acc_bits!r}")
    dec, table, zp_mask, zp_scale, (wlo, whi) = _decode_info(fmt, lut_bits)
    wc, ac = _native(np.asarray(weight_codes)), _native(np.asarray(activations))
    if wc.ndim != 2:
        raise MacforgeError(f"weight_codes must be 2-D (N, K), got shape {wc.shape}")
    if ac.ndim != 2 or ac.shape[1] != wc.shape[1]:
        raise MacforgeError(f"activations must be (M, K={wc.shape[1]}), got shape {ac.shape}")
    bad_codes = f"weight_codes must be integer codes 0..{len(dec.table) - 1} of {fmt.name}"
    if wc.dtype.kind not in "iu":
        raise MacforgeError(bad_codes)
    # uint8 codes are checked where they are decoded (the SIMD decode returns the OR of the bytes
    # it read: no separate pass; every other path calls ``_check_codes`` first), on every
    # machine, so which of several bad inputs is reported does not depend on the machine
    unchecked = bad_codes if wc.dtype == np.uint8 else None
    if unchecked is None:
        _check_codes(wc, len(dec.table), bad_codes)
    alo, ahi = _act_range(get_format(act_format)) if isinstance(act_format, str) else int_range(act_format)
    prep: tuple[np.ndarray, np.ndarray] | None = None
    if ac.size and ac.dtype.kind in "iu" and ac.itemsize <= 2 and ac.flags.c_contiguous:
        # one pass: min, max, the float32 copy the BLAS path multiplies (exact: |a| < 2^16) and
        # the per-row Σ|a| runs its K-blocks are cut from (``k_block_bounds``)
        af32 = _scratch_array("acts", ac.shape, np.float32)
        lo_, hi_, seg = _prepare_acts(ac, af32)
        amin, amax_, prep = int(lo_), int(hi_), (af32, seg)
    else:
        amin, amax_ = (int(ac.min()), int(ac.max())) if ac.size and ac.dtype.kind in "iu" else (0, 0)
    if ac.dtype.kind not in "iu" or amin < alo or amax_ > ahi:
        raise MacforgeError(f"activations must be integers in [{alo}, {ahi}] ({act_format})")
    n, k = wc.shape
    if dec.zp_mask is not None:
        if zero_points is None or group_size is None:
            raise MacforgeError(f"{fmt.name} needs zero_points (N, K // group_size) and group_size")
        if not isinstance(group_size, (int, np.integer)) or isinstance(group_size, bool) or group_size < 1:
            raise MacforgeError(f"group_size must be a positive integer, not {group_size!r}")
        if k % group_size:
            raise MacforgeError(f"group_size {group_size} does not divide K={k}")
        zp = _ints("zero_points", zero_points, 0, dec.zp_max, (n, k // group_size))
    elif zero_points is not None:
        raise MacforgeError(f"{fmt.name} has no zero point; zero_points must be None")
    shift = _product_shift(fmt.name, dec, product_round)
    if shift:
        _check_codes(wc, len(dec.table), unchecked)
        w64 = table[wc] if dec.zp_mask is None else K.decode_weights_into(
            wc, zp, group_size, table, zp_mask, zp_scale, np.empty((n, k), dtype=np.int64))
        # products are rounded one by one: no exact BLAS form, the in-order kernel defines it
        return K.gemm_sequential(w64, ac.astype(np.int64), acc_bits, overflow == "saturate", shift,
                                 product_round == "rne")
    need = signed_bits(min(wlo * ahi, whi * alo, wlo * alo, whi * ahi), max(wlo * alo, whi * ahi, wlo * ahi, whi * alo))
    if acc_bits < need:
        raise MacforgeError(f"acc_bits={acc_bits} cannot hold a product of {fmt.name} × {act_format}: "
                            f"needs >= {need} bits")
    # bound |w| by the whole table (no pass over the codes); |a| by the data
    wmax = max(abs(wlo), abs(whi))
    amax = max(-amin, amax_)  # one pass of min / max over the activations, done above
    pmax = wmax * amax
    lim = (1 << (acc_bits - 1)) - 1
    saturate = overflow == "saturate"
    if saturate and k * pmax > lim:
        # a partial sum may clamp: only the in-order sequential accumulation is exact
        _check_codes(wc, len(dec.table), unchecked)
        w64 = table[wc] if dec.zp_mask is None else K.decode_weights_into(
            wc, zp, group_size, table, zp_mask, zp_scale, np.empty((n, k), dtype=np.int64))
        return K.gemm_sequential(w64, ac.astype(np.int64), acc_bits, True)
    # decoded weight integers below 2^24 are exact in float32 (models.units keeps them there);
    # wider ones are decoded to float64, exact below 2^53
    wdtype = np.float32 if wmax < _F32_EXACT else np.float64
    exact = _exact_matmul(ac, table, wc, zp if dec.zp_mask is not None else None, group_size, zp_mask, zp_scale,
                          wdtype, pmax, wmax, prep, unchecked)
    if saturate or k * pmax <= lim:  # no partial sum can leave the accumulator range
        return exact
    lo = -(1 << (acc_bits - 1))
    return ((exact - lo) & ((1 << acc_bits) - 1)) + lo


def _native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in this machine's byte order (the numba kernels take no other; e.g. ``>i2`` data
    read from a file is copied once)."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def _check_codes(codes: np.ndarray, ncodes: int, error: str | None) -> None:
    """Refuse integer ``codes`` outside 0..ncodes-1 with the message ``error`` (None: already
    checked; an unsigned array needs no pass for its minimum)."""
    if error is not None and codes.size and ((codes.dtype.kind == "i" and codes.min() < 0)
                                             or codes.max() >= ncodes):
        raise MacforgeError(error)


def _decode_info(fmt: Format, lut_bits: int | None) -> tuple[WeightDecode, np.ndarray, np.ndarray, int,
                                                             tuple[int, int]]:
    """(decode, table, zp_mask, zp_scale, decoded integer range) of a weight format, cached per
    format object and ``lut_bits`` (formats are immutable, compared by identity: a format
    registered again under the same name is another key). Read-only to callers."""
    if lut_bits is None or (isinstance(lut_bits, int) and not isinstance(lut_bits, bool)):
        return _decode_info_cached(fmt, lut_bits)
    return _decode_info_uncached(fmt, lut_bits)  # the decode's own check names the bad value


def _decode_info_uncached(fmt: Format, lut_bits: Any) -> tuple[WeightDecode, np.ndarray, np.ndarray, int,
                                                                tuple[int, int]]:
    dec = weight_decode(fmt, lut_bits)
    table, zp_mask, zp_scale = dec.as_arrays()
    return dec, table, zp_mask, zp_scale, dec.int_range()


_decode_info_cached = lru_cache(maxsize=64)(_decode_info_uncached)


@lru_cache(maxsize=64)
def _act_range(fmt: Format) -> tuple[int, int]:
    """``int_range`` of an activation format, cached per format object."""
    return int_range(fmt.name)


def _zp_tables(table: bytes, zp_mask: bytes, zp_scale: int, nz: int) -> np.ndarray:
    """(nz, 16) int64: the decoded integer of codes 0..15 at zero points 0..nz-1 (zero past the
    table's end), from the table's and mask's bytes."""
    tab = np.frombuffer(table, dtype=np.int64)
    msk = np.frombuffer(zp_mask, dtype=np.uint8).astype(np.int64)
    t = np.zeros((nz, 16), dtype=np.int64)
    t[:, : len(tab)] = tab[None, :] - zp_scale * np.arange(nz)[:, None] * msk[None, :]
    return t


@lru_cache(maxsize=256)
def _lut16_tables(table: bytes, zp_mask: bytes, zp_scale: int, nz: int) -> np.ndarray | None:
    """The flat (nz·16,) int8 tables of ``_simd.decode_lut16_into`` (``_zp_tables``), or None
    when a decoded integer does not fit int8 (cached by the table's bytes; read-only)."""
    t = _zp_tables(table, zp_mask, zp_scale, nz)
    if t.min() < -128 or t.max() > 127:
        return None
    out = t.astype(np.int8).reshape(-1)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=256)
def _pair_table(table: bytes, zp_mask: bytes, zp_scale: int, nz: int) -> np.ndarray:
    """(nz, 256) uint64: the float32 bits of the decoded code pair (c0, c1) at index
    c0 | c1 << 4, for zero points 0..nz-1 (``_decode_float``; cached by the table's bytes)."""
    bits = _zp_tables(table, zp_mask, zp_scale, nz).astype(np.float32).view(np.uint32).astype(np.uint64)
    c = np.arange(256)
    ptab = bits[:, c & 15] | (bits[:, c >> 4] << np.uint64(32))
    ptab.setflags(write=False)
    return ptab


def _product_shift(name: str, dec: WeightDecode, product_round: str) -> int:
    if product_round == "exact":
        return 0
    if product_round not in ("floor", "rne"):
        raise MacforgeError(f"product_round must be exact, floor or rne, not {product_round!r}")
    shift = fractional_shift(dec)
    if shift is None:
        raise MacforgeError(f"product_round={product_round!r} needs an exact fractional power-of-two "
                            f"integer unit; {name} decodes in units of {dec.unit}")
    return shift


_L1_SEGMENT = 256  # K-blocks from activation sums start on multiples of this many columns

#: Largest scratch buffer kept for reuse (bytes). gemm's float copies of the decoded weights and
#: of the activations, and BLAS's float result of each K-block, are written into per-thread
#: buffers that outlive the call (as BLAS keeps its packing buffers): a fresh 38 MB array costs ~3 ms of page faults on first write (measured
#: here: fill 4.7 ms reused vs 8.0 ms fresh), about as much as the decode itself.
SCRATCH_MAX_BYTES = 256 << 20
_scratch = threading.local()


#: Smallest array (bytes) gemm's SIMD passes write with streaming stores (``_simd``: the decoded
#: weights, the float32 activations, the int64 result): beyond the 512 KB L2 of this machine
#: they reach memory anyway, and a streaming store skips reading each line first (measured after
#: a BLAS call: decoding 512×18432 codes 4.8 -> 2.6 ms, 576×1536 0.42 -> 0.26 ms, the BLAS call
#: that reads them unchanged). A speed choice only: the values are the same.
STREAMING_MIN_BYTES = 1 << 20


def _prepare_acts(acts: np.ndarray, out: np.ndarray) -> tuple[int, int, np.ndarray]:
    """gemm's one pass over C-contiguous integer (M, K) activations of at most 16 bits (M·K > 0):
    (min, max, per-row Σ|a| runs of ``_L1_SEGMENT`` columns), the float32 copy written into
    ``out`` (C-contiguous (M, K)); 16 values per store where the machine has it and K allows."""
    if _simd.AVAILABLE and acts.shape[1] % 16 == 0:
        return _simd.prepare_acts_into(acts.reshape(-1), acts.shape[0], _L1_SEGMENT, out.reshape(-1),
                                       _streaming(out))
    return K.prepare_acts(acts.reshape(-1), acts.shape[0], _L1_SEGMENT, out.reshape(-1))  # type: ignore[no-any-return]


def _streaming(out: np.ndarray) -> bool:
    """Write ``out`` with streaming stores: large enough and 64-byte aligned (rows too: callers
    pass C-contiguous float32 arrays with K a multiple of 16)."""
    return out.nbytes >= STREAMING_MIN_BYTES and out.ctypes.data % 64 == 0


def _scratch_array(slot: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised 64-byte-aligned array of ``shape`` backed by this thread's reusable
    buffer ``slot`` (a fresh one when larger than :data:`SCRATCH_MAX_BYTES`). Valid until the
    next call with the same slot in the same thread: never returned to a caller of gemm."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > SCRATCH_MAX_BYTES:
        return _aligned(np.empty(nbytes + 64, dtype=np.uint8), nbytes, dtype, shape)
    bufs = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = _scratch.bufs = {}
    buf = bufs.get(slot)
    if buf is None or buf.nbytes < nbytes:
        buf = bufs[slot] = _aligned(np.empty(max(nbytes, 64) + 64, dtype=np.uint8), max(nbytes, 64), np.uint8,
                                    (max(nbytes, 64),))
    return buf[:nbytes].view(dtype).reshape(shape)


def _aligned(raw: np.ndarray, nbytes: int, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The 64-byte-aligned ``shape`` array of ``dtype`` inside ``raw`` (uint8, nbytes + 64 long)."""
    off = -raw.ctypes.data % 64
    return raw[off:off + nbytes].view(dtype).reshape(shape)


def k_block_bounds(acts: np.ndarray, kb: int, wmax: int, limit: int,
                   seg_sums: np.ndarray | None = None) -> list[int]:
    """K-block boundaries [0, ..., K] for the float BLAS path, each block exact below ``limit``.

    Every partial sum a BLAS forms for output (m, n) over a block B is bounded by
    Σ_{k∈B} |a_mk|·|w_nk| ≤ wmax · Σ_{k∈B} |a_mk|; blocks are grown over runs of
    ``_L1_SEGMENT`` columns while that bound stays ≤ ``limit`` for every row. Activations below
    full scale (real ones, or uniform int8 with mean |a| ≈ 64) so get blocks about amax / mean|a|
    longer than the uniform ``kb`` = limit // (wmax·amax) (fewer BLAS calls); when one run
    alone could exceed the limit, the uniform ``kb`` is used, balanced (``_balanced_block``).
    ``seg_sums``: those per-row run sums of |a| if already computed (``_prepare_acts``)."""
    m, k = acts.shape
    if kb >= k:
        return [0, k]
    if wmax > 0 and wmax * _L1_SEGMENT * 128 <= limit and acts.dtype.kind in "iu":
        seg = K.abs_segment_sums(acts, _L1_SEGMENT) if seg_sums is None else seg_sums
        if int(seg.max()) * wmax <= limit:
            return [int(j) * _L1_SEGMENT for j in K.grow_blocks(seg, wmax, limit)] + [k]
    kb = _balanced_block(k, kb)
    return list(range(0, k, kb)) + [k]


def _balanced_block(k: int, kb_max: int, align: int = 64) -> int:
    """A K-block length <= ``kb_max`` (the exactness bound) that splits K into as few blocks as
    ``kb_max`` allows, of nearly equal length and starting on multiples of ``align`` elements
    (a 64-byte boundary of float32 rows whose K is a multiple of 16) when the bound leaves room;
    e.g. K = 18432 with the dINT4-A bound 5041 gives 4 blocks of 4608, not 3 × 5041 + 3309."""
    nb = -(-k // kb_max)
    kb = -(-k // nb)
    up = -(-kb // align) * align
    if up <= kb_max:
        return up
    down = kb_max // align * align
    return down if down else kb


def _decode_float(codes: np.ndarray, zz: np.ndarray, gs: int, table: np.ndarray, zp_mask: np.ndarray,
                  zp_scale: int, dtype: Any, out: np.ndarray | None = None,
                  unchecked: str | None = None) -> np.ndarray:
    """The decoded (N, K) weights (zero points folded in) as ``dtype``. Codes of at most 4 bits
    stored as uint8 go 16 per instruction through a byte table per zero point where the
    machine has it and the integers fit int8 (``_simd.decode_lut16_into``, K and the group a
    multiple of 16), else two per lookup through a table of code pairs per zero point
    (``K.decode_pairs_into``); anything else one per lookup: all give the same values.
    ``out``: an (N, K) C-contiguous array of ``dtype`` to write into (default: a new one).
    ``unchecked``: the error to raise if a code is outside the table (None: checked already)."""
    n, k = codes.shape
    if out is None:
        out = np.empty((n, k), dtype=dtype)
    ncodes = len(table)
    simd = (_simd.AVAILABLE and dtype is np.float32 and codes.dtype == np.uint8 and codes.flags.c_contiguous
            and k % 16 == 0 and gs % 16 == 0 and ncodes <= 16)
    if simd:
        nz = int(zz.max()) + 1 if zz.size else 1
        tabs = _lut16_tables(np.ascontiguousarray(table, dtype=np.int64).tobytes(),
                             np.ascontiguousarray(zp_mask, dtype=np.uint8).tobytes(), int(zp_scale), nz)
        if tabs is not None:
            bits = int(_simd.decode_lut16_into(codes.reshape(-1), zz, n, k, gs, tabs, out.reshape(-1),
                                               _streaming(out)))
            if unchecked is not None:
                if ncodes & (ncodes - 1) == 0:  # a power of two: the OR of all codes decides
                    if bits & (0x0101010101010101 * (0xFF & ~(ncodes - 1))):
                        raise MacforgeError(unchecked)
                else:
                    _check_codes(codes, ncodes, unchecked)
            return out
    _check_codes(codes, ncodes, unchecked)
    if (dtype is np.float32 and codes.dtype == np.uint8 and codes.flags.c_contiguous and k % 2 == 0
            and gs % 2 == 0 and len(table) <= 16 and sys.byteorder == "little"):
        nz = int(zz.max()) + 1 if zz.size else 1
        ptab = _pair_table(np.ascontiguousarray(table, dtype=np.int64).tobytes(),
                           np.ascontiguousarray(zp_mask, dtype=np.uint8).tobytes(), int(zp_scale), nz)
        K.decode_pairs_into(codes.reshape(-1).view(np.uint16), zz, n, gs // 2, ptab, out.reshape(-1).view(np.uint64))
        return out
    return K.decode_table_into(codes, zz, gs, table, zp_mask, zp_scale, out)  # type: ignore[no-any-return]


def _exact_matmul(acts: np.ndarray, table: np.ndarray, codes: np.ndarray, zp: np.ndarray | None,
                  group: int | None, zp_mask: np.ndarray, zp_scale: int, wdtype: Any, pmax: int,
                  wmax: int = 0, prep: tuple[np.ndarray, np.ndarray] | None = None,
                  unchecked: str | None = None) -> np.ndarray:
    """Exact int64 ``acts @ W.T`` (W = the decoded codes, zero points folded in) through float
    BLAS on K-blocks small enough to stay exact: every partial sum of a block is an integer of
    magnitude <= wmax·Σ|a| over the block <= 2^24 (float32) or 2^53 (float64), exact in any
    summation order (``k_block_bounds``). ``prep``: the activations as float32 and their run
    sums, from the one pass in ``gemm`` (``_prepare_acts``). ``unchecked``: as
    ``_decode_float``."""
    m, k = acts.shape
    n = codes.shape[0]
    if pmax == 0 or k == 0:
        _check_codes(codes, len(table), unchecked)
        return np.zeros((m, n), dtype=np.int64)
    zz = np.zeros((n, 0), dtype=np.int64) if zp is None else zp
    gs = k if zp is None else int(group)  # type: ignore[arg-type]
    if pmax >= _F64_EXACT:  # no float block is exact: integer matmul (exact mod 2^64, see gemm)
        _check_codes(codes, len(table), unchecked)
        w64 = K.decode_table_into(codes, zz, gs, table, zp_mask, zp_scale, np.empty((n, k), dtype=np.int64))
        return acts.astype(np.int64) @ w64.T
    kb32 = _F32_EXACT // pmax
    dtype: Any
    if wdtype is np.float32 and kb32 >= 1 and (kb32 >= k or kb32 >= 256):
        dtype, kb = np.float32, min(k, kb32)
    else:
        dtype, kb = np.float64, min(k, _F64_EXACT // pmax)
    use_prep = prep is not None and dtype is np.float32
    af = prep[0] if use_prep else acts.astype(dtype)  # type: ignore[index]
    wf = _decode_float(codes, zz, gs, table, zp_mask, zp_scale, dtype, _scratch_array("weights", (n, k), dtype),
                       unchecked)
    bounds = [0, k] if kb >= k else k_block_bounds(acts, kb, wmax, _F32_EXACT if dtype is np.float32 else _F64_EXACT,
                                                   None if prep is None else prep[1])
    # BLAS writes each K-block into one float buffer; the first becomes the int64 result, the
    # others are added into it
    out = None
    buf = _scratch_array("block", (m, n), dtype)
    for k0, k1 in zip(bounds[:-1], bounds[1:]):
        np.matmul(af[:, k0:k1], wf[:, k0:k1].T, out=buf)
        if out is None:
            out = _to_int64(buf)
        else:
            K.add_block_into(out.reshape(-1), buf.reshape(-1))
    return out


def _to_int64(buf: np.ndarray) -> np.ndarray:
    """A new int64 array of the integer-valued float ``buf`` (C-contiguous), with streaming
    stores when it is large (the result is written around the cache: later K-blocks read it back
    once, still faster than caching it, 434 vs 476 µs for 512×576 here)."""
    out = np.empty(buf.shape, dtype=np.int64)
    if (_simd.AVAILABLE and buf.dtype == np.float32 and out.nbytes >= STREAMING_MIN_BYTES
            and out.ctypes.data % 16 == 0):
        _simd.int64_streaming(buf.reshape(-1), out.reshape(-1))
    else:
        out[...] = buf
    return out


def for_unit(name: str) -> Callable[..., np.ndarray]:
    """The golden function of unit ``name`` (mac / dot / dq_group), bound to its spec."""
    u = get_unit(name)
    fn: Any = {"mac": mac, "dot": dot, "dq_group": dq_group_mac}[u.kind]

    def bound(*args: object, **kw: object) -> np.ndarray:
        return fn(u, *args, **kw)

    bound.__name__ = name
    bound.__doc__ = f"Golden model of {name}: {u.description}. See ``{fn.__name__}``."
    return bound
