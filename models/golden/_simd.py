"""A 16-entry byte-table decode of 4-bit weight codes, 16 codes per instruction (x86 ``pshufb``).

The BLAS path of :func:`models.golden.gemm` must turn (N, K) uint8 weight codes into float32
weights before BLAS can multiply them; that decode is the part of the GEMM that BLAS does not do.
A scalar table lookup costs about a cycle per weight; here SSSE3's byte shuffle looks up 16
codes at once in a 16-byte table (one per zero point), then the 16 int8 values are widened and
converted to float32 as LLVM vectorizes them (``sext`` + ``sitofp``). Measured here on 256K codes
held in cache: 0.22 ns per weight against 0.5-0.6 ns for the two-codes-per-lookup scalar decode.
The activation pass and gemm's int64 result use the same 16-wide stores, streaming (written
around the cache) for large arrays.

``pshufb`` semantics: each output byte is ``table[index & 15]``, or 0 when the index byte has bit 7
set. Codes >= 16 would so alias other entries, which is why the kernel also returns the OR of
every code byte it read: the caller refuses the call when any byte has a bit at or above the
table's length (exact for a power-of-two table length; other lengths get a separate pass).

Only used where the JIT targets this machine (no ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``,
JIT enabled) and the machine has SSSE3 (:data:`AVAILABLE`);
everywhere else gemm keeps the scalar decode, which gives the same values
(``tests/test_golden.py`` compares them on every code and zero point).
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._kernels import run_stats

__all__ = ["AVAILABLE", "decode_lut16_into", "prepare_acts_into", "int64_streaming"]


def _available() -> bool:
    if (platform.machine().lower() not in ("x86_64", "amd64") or config.CPU_NAME not in (None, "host")
            or config.CPU_FEATURES is not None  # (the JIT would not target this machine's features)
            or config.DISABLE_JIT):  # (intrinsics exist only in compiled code)
        return False
    try:
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        return "+ssse3" in llvm.get_host_cpu_features().flatten().split(",")
    except Exception:  # noqa: BLE001  (no way to ask: keep the scalar decode)
        return False


#: True when :func:`decode_lut16_into` may be called (x86-64 host JIT with SSSE3).
AVAILABLE = _available()

_V16I8 = ir.VectorType(ir.IntType(8), 16)
_V16I32 = ir.VectorType(ir.IntType(32), 16)
_V16F32 = ir.VectorType(ir.FloatType(), 16)


def _store16(builder, value, ptr, nt: bool):  # type: ignore[no-untyped-def]
    """Store 16 float32; ``nt``: a non-temporal (streaming) store, which needs ``ptr`` 64-byte
    aligned (the caller's contract) and writes around the cache: no read of the line first."""
    if not nt:
        return builder.store(value, ptr, align=4)
    return _nontemporal(builder, builder.store(value, ptr, align=64))


def _nontemporal(builder, store):  # type: ignore[no-untyped-def]
    """Mark ``store`` streaming (LLVM ``!nontemporal``): its address must be aligned as it says."""
    store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
    return store


def _vec_ptr(context, builder, aryty, ary, index, vty):  # type: ignore[no-untyped-def]
    """Pointer to the ``vty`` vector starting at element ``index`` of the numba array ``ary``."""
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [index]), vty.as_pointer())


def _make_lut16(nt: bool):  # type: ignore[no-untyped-def]
    @intrinsic
    def lut16(typingctx, codes, ci, tabs, ti, out, oi):  # type: ignore[no-untyped-def]
        """out[oi:oi+16] = float32(tabs[ti + (codes[ci:ci+16] & 15)]) (int8 table, one pshufb);
        returns the OR of the 16 code bytes (as the two 8-byte halves OR-ed into one uint64)."""
        if (codes.dtype != types.uint8 or tabs.dtype != types.int8 or out.dtype != types.float32
                or codes.layout != "C" or tabs.layout != "C" or out.layout != "C"):
            return None
        sig = types.uint64(codes, ci, tabs, ti, out, oi)

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            c_v, ci_v, t_v, ti_v, o_v, oi_v = args
            ty = signature.args
            cp = _vec_ptr(context, builder, ty[0], c_v, ci_v, _V16I8)
            tp = _vec_ptr(context, builder, ty[2], t_v, ti_v, _V16I8)
            op = _vec_ptr(context, builder, ty[4], o_v, oi_v, _V16F32)
            shuf = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V16I8, [_V16I8, _V16I8]),
                                                  "llvm.x86.ssse3.pshuf.b.128")
            c = builder.load(cp, align=1)
            vals = builder.call(shuf, [builder.load(tp, align=1), c])
            _store16(builder, builder.sitofp(builder.sext(vals, _V16I32), _V16F32), op, nt)
            halves = builder.bitcast(c, ir.VectorType(ir.IntType(64), 2))
            i64 = ir.IntType(64)
            return builder.or_(builder.extract_element(halves, ir.Constant(i64, 0)),
                               builder.extract_element(halves, ir.Constant(i64, 1)))

        return sig, codegen

    return lut16


def _make_cvt16(nt: bool):  # type: ignore[no-untyped-def]
    @intrinsic
    def cvt16(typingctx, src, si, out, oi):  # type: ignore[no-untyped-def]
        """out[oi:oi+16] = float32(src[si:si+16]) for 8- or 16-bit integers (exact)."""
        if (not isinstance(src.dtype, types.Integer) or src.dtype.bitwidth not in (8, 16)
                or out.dtype != types.float32 or src.layout != "C" or out.layout != "C"):
            return None
        sig = types.void(src, si, out, oi)
        vin = ir.VectorType(ir.IntType(src.dtype.bitwidth), 16)
        signed = src.dtype.signed

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            s_v, si_v, o_v, oi_v = args
            sp = _vec_ptr(context, builder, signature.args[0], s_v, si_v, vin)
            op = _vec_ptr(context, builder, signature.args[2], o_v, oi_v, _V16F32)
            v = builder.load(sp, align=1)
            f = builder.sitofp(builder.sext(v, _V16I32), _V16F32) if signed else \
                builder.uitofp(builder.zext(v, _V16I32), _V16F32)
            _store16(builder, f, op, nt)
            return context.get_dummy_value()

        return sig, codegen

    return cvt16


_lut16, _lut16_nt = _make_lut16(False), _make_lut16(True)
_cvt16, _cvt16_nt = _make_cvt16(False), _make_cvt16(True)


_V16I64 = ir.VectorType(ir.IntType(64), 16)


@intrinsic
def _f2i16_nt(typingctx, src, si, out, oi):  # type: ignore[no-untyped-def]
    """out[oi:oi+16] = int64(src[si:si+16]) (float32 holding integers: exact), streaming stores
    of 16 bytes (``out`` 16-byte aligned, as numpy allocates)."""
    if src.dtype != types.float32 or out.dtype != types.int64 or src.layout != "C" or out.layout != "C":
        return None
    sig = types.void(src, si, out, oi)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        s_v, si_v, o_v, oi_v = args
        sp = _vec_ptr(context, builder, signature.args[0], s_v, si_v, _V16F32)
        op = _vec_ptr(context, builder, signature.args[2], o_v, oi_v, _V16I64)
        # via int32 (exact: |v| <= 2^24), which AVX2 converts 8 at a time (float -> int64 it cannot)
        v = builder.sext(builder.fptosi(builder.load(sp, align=4), _V16I32), _V16I64)
        _nontemporal(builder, builder.store(v, op, align=16))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _sfence(typingctx):  # type: ignore[no-untyped-def]
    """Order this thread's streaming stores before anything it does next (another thread, e.g.
    a BLAS worker, then reads them)."""
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                            "llvm.x86.sse.sfence")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, nogil=True)
def decode_lut16_into(codes1, zp, n, k, group, tabs, out1, nt):  # type: ignore[no-untyped-def]
    """Decode C-contiguous (N, K) uint8 codes viewed flat (``codes1``) into the float32 weights
    ``out1`` (flat): row i, group g uses the int8 table ``tabs[16·z : 16·z + 16]`` of its zero
    point z = ``zp[i, g]`` (``zp`` (N, 0) and ``group`` = K without zero points). K and
    ``group`` are multiples of 16. ``nt``: streaming stores (``out1`` 64-byte aligned). Returns
    the OR of every code byte, as 8 bytes of a uint64: the caller checks that no code reaches
    past its table. Bounds are the caller's: no checks."""
    has_zp = zp.shape[1] > 0
    bits = np.uint64(0)
    for i in range(n):
        for g in range(k // group):
            z = zp[i, g] if has_zp else 0
            b = i * k + g * group
            for j in range(b, b + group, 16):
                if nt:
                    bits |= _lut16_nt(codes1, j, tabs, z * 16, out1, j)
                else:
                    bits |= _lut16(codes1, j, tabs, z * 16, out1, j)
    if nt:
        _sfence()
    return bits


@njit(cache=True, nogil=True)
def prepare_acts_into(acts1, m, seg, out1, nt):  # type: ignore[no-untyped-def]
    """``_kernels.prepare_acts`` (min, max, the float32 copy into ``out1``, the per-row Σ|a|
    runs of ``seg`` columns) for 8- or 16-bit activations whose K and ``seg`` are multiples of
    16, the copy 16 values per store (``nt``: streaming stores, ``out1`` 64-byte aligned)."""
    k = acts1.shape[0] // m
    ns = (k + seg - 1) // seg
    sums = np.zeros((m, ns), dtype=np.int64)
    lo = np.int32(acts1[0])
    hi = lo
    for i in range(m):
        for s in range(ns):
            j0, j1 = i * k + s * seg, i * k + min(k, (s + 1) * seg)
            for j in range(j0, j1, 16):
                if nt:
                    _cvt16_nt(acts1, j, out1, j)
                else:
                    _cvt16(acts1, j, out1, j)
            lo, hi, sums[i, s] = run_stats(acts1[j0:j1], lo, hi)
    if nt:
        _sfence()
    return np.int64(lo), np.int64(hi), sums


@njit(cache=True, nogil=True)
def int64_streaming(src1, out1):  # type: ignore[no-untyped-def]
    """out1 = int64(src1) for flat float32 ``src1`` holding integers (exact), 16 values per
    streaming store into ``out1`` (16-byte aligned); a tail shorter than 16 one by one."""
    n = src1.shape[0]
    n16 = n - n % 16
    for j in range(0, n16, 16):
        _f2i16_nt(src1, j, out1, j)
    for j in range(n16, n):
        out1[j] = np.int64(src1[j])
    _sfence()
    return out1
