"""numba kernels: the bit-exact definition of every unit's accumulator sequence.

Accumulator semantics (one cycle t):
    acc_t = R( (clr_t ? 0 : acc_{t-1}) + (en_t ? P_t : 0) )
where P_t is the exact product (mac) or exact lane sum (dot), and R is the overflow rule:
wrap = reduce mod 2^acc_bits into [-2^(acc_bits-1), 2^(acc_bits-1)); saturate = clamp to that
range. Integer widths are ≤ 62 bits, so every intermediate fits int64 exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["dot_trace", "dq_group_trace", "reduce_acc", "round_shift", "decode_weights_into", "decode_table_into",
           "decode_pairs_into", "abs_segment_sums", "prepare_acts", "run_stats", "grow_blocks", "add_block_into",
           "gemm_sequential"]


@njit(cache=True, inline="always")
def reduce_acc(s: np.int64, acc_bits: int, saturate: bool) -> np.int64:
    lo = -(np.int64(1) << (acc_bits - 1))
    hi = (np.int64(1) << (acc_bits - 1)) - 1
    if saturate:
        if s > hi:
            return hi
        if s < lo:
            return lo
        return s
    mask = (np.int64(1) << acc_bits) - 1
    return ((s - lo) & mask) + lo


@njit(cache=True, inline="always")
def _weight_int(code: np.int64, z: np.int64, table: np.ndarray, zp_mask: np.ndarray, zp_scale: np.int64) -> np.int64:
    wi = table[code]
    if zp_mask[code]:
        wi -= zp_scale * z
    return wi


@njit(cache=True, inline="always")
def round_shift(p: np.int64, shift: int, rne: bool) -> np.int64:
    """p / 2^shift as an integer: floor (arithmetic shift) or round half to even (rne)."""
    if shift == 0:
        return p
    q = p >> shift
    if rne:
        r = p - (q << shift)
        half = np.int64(1) << (shift - 1)
        if r > half or (r == half and (q & 1) == 1):
            q += 1
    return q


@njit(cache=True)
def dot_trace(w, a, en, clr, z, table, zp_mask, zp_scale, acc_bits, saturate, acc0, shift=0, rne=False):  # type: ignore[no-untyped-def]
    """``shift`` > 0: each lane product is reduced by 2^shift (floor, or rne) before the sum."""
    n, lanes = w.shape
    out = np.empty(n, dtype=np.int64)
    acc = np.int64(acc0)
    for t in range(n):
        base = np.int64(0) if clr[t] else acc
        p = np.int64(0)
        if en[t]:
            for ln in range(lanes):
                prod = _weight_int(np.int64(w[t, ln]), np.int64(z[t, ln]), table, zp_mask, zp_scale) * np.int64(a[t, ln])
                p += round_shift(prod, shift, rne)
        acc = reduce_acc(base + p, acc_bits, saturate)
        out[t] = acc
    return out


@njit(cache=True)
def dq_group_trace(q, a, s_fx, z_fx, group, table, acc_bits, saturate, acc0):  # type: ignore[no-untyped-def]
    """decoupleQ: per group g, y += s_g·Σq·a + z_g·Σa (exact), accumulated with the overflow rule."""
    n_groups = s_fx.shape[0]
    out = np.empty(n_groups, dtype=np.int64)
    acc = np.int64(acc0)
    for g in range(n_groups):
        s1 = np.int64(0)
        s2 = np.int64(0)
        for i in range(g * group, (g + 1) * group):
            s1 += table[q[i]] * np.int64(a[i])
            s2 += np.int64(a[i])
        acc = reduce_acc(acc + np.int64(s_fx[g]) * s1 + np.int64(z_fx[g]) * s2, acc_bits, saturate)
        out[g] = acc
    return out


@njit(cache=True)
def decode_weights_into(codes, zp, group, table, zp_mask, zp_scale, out):  # type: ignore[no-untyped-def]
    """(N, K) codes and (N, K//group) zero points -> weight integers written into ``out``
    (int64, or float32 for the BLAS path: exact below 2^24)."""
    n, k = codes.shape
    for i in range(n):
        for j in range(k):
            c = np.int64(codes[i, j])
            v = table[c]
            if zp_mask[c]:
                v -= zp_scale * np.int64(zp[i, j // group])
            out[i, j] = v
    return out


@njit(cache=True)
def decode_table_into(codes, zp, group, table, zp_mask, zp_scale, out):  # type: ignore[no-untyped-def]
    """Same values as ``decode_weights_into``, for the BLAS path: each row's groups are decoded
    through a per-group copy of the table (zero point folded in once per group, not per
    element). Serial on purpose (this and the pair decode): on a shared machine a parallel
    kernel waits for its slowest thread (measured 15-20 ms instead of 1.2 ms at load 8 for
    576×1536 codes); on an idle one a 2-thread pair decode of 512×18432 codes took 8.4-9.8 ms
    against 6 ms serial, run between BLAS calls whose spinning worker thread it competes with.
    ``zp``: (N, K // group), or (N, 0) for formats without a zero point (then ``group`` = K)."""
    n, k = codes.shape
    ncodes = table.shape[0]
    has_zp = zp.shape[1] > 0
    tab = np.empty(ncodes, dtype=out.dtype)
    for i in range(n):
        for g in range(k // group):
            z = np.int64(zp[i, g]) if has_zp else np.int64(0)
            for c in range(ncodes):
                v = table[c]
                if has_zp and zp_mask[c]:
                    v -= zp_scale * z
                tab[c] = v
            for j in range(g * group, (g + 1) * group):
                out[i, j] = tab[codes[i, j]]
    return out


@njit(cache=True)
def decode_pairs_into(codes2, zp, n, group2, ptab, out2):  # type: ignore[no-untyped-def]
    """``decode_table_into`` for 4-bit codes stored one per byte, two codes per lookup: ``codes2``
    is the C-contiguous (N, K) uint8 code matrix viewed flat as N·K/2 uint16 (little-endian: code
    2j in the low byte), ``out2`` the (N, K) float32 output viewed flat as N·K/2 uint64,
    ``ptab[z, c0 | c1 << 4]`` the two float32 weights (bits) of the code pair (c0, c1) at zero
    point z (one row, z = 0, without zero points; then ``zp`` is (N, 0) and ``group2`` = K/2).
    Half the loads and stores of one lookup per code: the decode is the part of a BLAS GEMM that
    BLAS does not do. Flat slices on purpose: the same loop over 2-D views ran 2-3x slower."""
    k2 = codes2.shape[0] // n if n else 0
    has_zp = zp.shape[1] > 0
    for i in range(n):
        for g in range(k2 // group2):
            z = zp[i, g] if has_zp else 0
            row = ptab[z]
            b = i * k2 + g * group2
            cs = codes2[b:b + group2]  # contiguous slices: no index arithmetic in the loop
            os = out2[b:b + group2]
            for j in range(group2):
                v = cs[j]
                os[j] = row[(v & 0xF) | (v >> 4)]
    return out2


@njit(cache=True)
def abs_segment_sums(acts, seg):  # type: ignore[no-untyped-def]
    """(M, ceil(K / seg)) int64: Σ|a| of each row over each run of ``seg`` columns."""
    m, k = acts.shape
    ns = (k + seg - 1) // seg
    out = np.zeros((m, ns), dtype=np.int64)
    for i in range(m):
        for s in range(ns):
            t = np.int64(0)
            for j in range(s * seg, min(k, (s + 1) * seg)):
                v = np.int64(acts[i, j])
                t += v if v >= 0 else -v
            out[i, s] = t
    return out


@njit(cache=True)
def prepare_acts(acts1, m, seg, out1):  # type: ignore[no-untyped-def]
    """One pass over C-contiguous (M, K) activations of at most 16 bits viewed flat (``acts1``,
    M·K > 0): writes them as float32 into ``out1`` (flat, exact: |a| < 2^24) and returns (min,
    max, the (M, ceil(K/seg)) Σ|a| per row and run of ``seg`` <= 2^15 columns, as
    ``abs_segment_sums``). Replaces a min pass, a max pass, ``astype`` and
    ``abs_segment_sums`` over the same memory; int32 arithmetic (a run's Σ|a| <= 2^15 · 2^16)
    lets the loop vectorize."""
    k = acts1.shape[0] // m
    ns = (k + seg - 1) // seg
    sums = np.zeros((m, ns), dtype=np.int64)
    lo = np.int32(acts1[0])
    hi = lo
    for i in range(m):
        for s in range(ns):
            j0, j1 = i * k + s * seg, i * k + min(k, (s + 1) * seg)
            src = acts1[j0:j1]
            dst = out1[j0:j1]
            for j in range(j1 - j0):
                dst[j] = np.float32(src[j])
            lo, hi, sums[i, s] = run_stats(src, lo, hi)
    return np.int64(lo), np.int64(hi), sums


@njit(cache=True, inline="always")
def run_stats(src, lo, hi):  # type: ignore[no-untyped-def]
    """(min(lo, min src), max(hi, max src), Σ|src|) of one run of at most 2^15 activations of at
    most 16 bits, in int32 (the sum fits: 2^15 · 2^16) so that the loop vectorizes."""
    t = np.int32(0)
    for j in range(src.shape[0]):
        v = np.int32(src[j])
        lo = min(lo, v)
        hi = max(hi, v)
        t = np.int32(t + abs(v))  # (numba widens int32 + int32 to int64: kept 32-bit)
    return lo, hi, t


@njit(cache=True)
def grow_blocks(seg, wmax, limit):  # type: ignore[no-untyped-def]
    """The runs where K-blocks start (run indices, first 0): blocks grow one run of ``seg``
    (M, runs) Σ|a| at a time while wmax · Σ|a| of every row stays <= ``limit``; a run that
    would take some row past it starts a new block (each run alone within ``limit``: the
    caller's check)."""
    m, ns = seg.shape
    run = np.zeros(m, dtype=np.int64)
    starts = np.empty(ns + 1, dtype=np.int64)
    starts[0] = 0
    nb = 1
    for j in range(ns):
        over = False
        for i in range(m):
            if run[i] + seg[i, j] * wmax > limit:
                over = True
                break
        if over:
            starts[nb] = j
            nb += 1
            for i in range(m):
                run[i] = seg[i, j] * wmax
        else:
            for i in range(m):
                run[i] += seg[i, j] * wmax
    return starts[:nb]


@njit(cache=True)
def add_block_into(acc1, block1):  # type: ignore[no-untyped-def]
    """acc1 += block1 (flat C-contiguous views: int64 += an exactly integer-valued float
    block), one pass."""
    for j in range(acc1.shape[0]):
        acc1[j] += np.int64(block1[j])
    return acc1


@njit(cache=True)
def gemm_sequential(wint, acts, acc_bits, saturate, shift=0, rne=False):  # type: ignore[no-untyped-def]
    """acc[m, n] = R-accumulate over k in order 0..K-1 (one MAC per output); each product
    reduced by 2^shift first when ``shift`` > 0."""
    n, k = wint.shape
    m = acts.shape[0]
    out = np.empty((m, n), dtype=np.int64)
    for i in range(m):
        for j in range(n):
            acc = np.int64(0)
            for kk in range(k):
                prod = round_shift(wint[j, kk] * np.int64(acts[i, kk]), shift, rne)
                acc = reduce_acc(acc + prod, acc_bits, saturate)
            out[i, j] = acc
    return out
