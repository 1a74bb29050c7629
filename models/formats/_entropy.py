"""Variable-length codes for weight formats: length-limited canonical Huffman codes and the
entropy-coded uniform grid (PAPERS.md §2, "Compression").

The grid is ``x -> Δ·rint(x/Δ)`` (an odd number of points, exact 0); its symbols are coded either
with the ideal code length ``-Σ p log2 p`` or with a real canonical Huffman code whose longest
code is at most ``max_len`` bits, built from the tensor's own histogram. Storage counts every bit
a decoder needs: the coded symbols, the code table, the scale Δ and the chunk offsets that let
chunks be decoded in parallel. ``models.golden`` packs and decodes the bitstream bit-exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import MacforgeError

__all__ = ["huffman_lengths", "canonical_codes", "CodeTable", "code_table", "EntropyCodedGrid",
           "entropy_coded_grid", "MAX_CODE_LEN"]

MAX_LEVELS_LOG2 = 15  # the finest grid considered has at most 2^15 points a side
MAX_CODE_LEN = 32  # codes live in 32-bit words (the golden codec and the RTL read 32-bit words)


def huffman_lengths(counts: np.ndarray, max_len: int) -> np.ndarray:
    """Optimal code lengths with no code longer than ``max_len`` (package-merge, Larmore &
    Hirschberg 1990). Symbols with count 0 get length 0 (no code); a lone symbol gets length 1."""
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0 or c.dtype.kind not in "iu" or (c < 0).any():
        raise MacforgeError("counts must be a non-empty 1-D array of non-negative integers")
    if not isinstance(max_len, (int, np.integer)) or isinstance(max_len, bool) or not 1 <= max_len <= MAX_CODE_LEN:
        raise MacforgeError(f"max_len must be an integer in 1..{MAX_CODE_LEN}, not {max_len!r}")
    used = np.flatnonzero(c)
    lengths = np.zeros(c.size, dtype=np.int64)
    if used.size == 0:
        raise MacforgeError("counts are all zero: nothing to code")
    if used.size == 1:
        lengths[used] = 1
        return lengths
    if used.size > 1 << max_len:
        raise MacforgeError(f"max_len {max_len} cannot code {used.size} symbols (needs >= "
                            f"{math.ceil(math.log2(used.size))})")
    # package-merge, counting only how many of each level's first items are taken: list_j is
    # the leaves merged with the pairs of list_{j-1}; the first 2n-2 items of the last list are
    # taken, and a package taken at level j takes the first two items of level j-1 it covers.
    n = used.size
    order = used[np.argsort(c[used], kind="stable")]
    w_leaf = c[order].astype(np.int64)
    levels: list[tuple[np.ndarray, np.ndarray]] = []  # (is_package, leaf index) per item, sorted
    w_prev = w_leaf
    for j in range(max_len):
        if j == 0:
            w = w_leaf
            is_pkg = np.zeros(n, dtype=bool)
            leaf = np.arange(n)
        else:
            pk = w_prev[0:len(w_prev) - 1:2] + w_prev[1:len(w_prev):2]
            w = np.concatenate([w_leaf, pk])
            is_pkg = np.concatenate([np.zeros(n, dtype=bool), np.ones(pk.size, dtype=bool)])
            leaf = np.concatenate([np.arange(n), np.full(pk.size, -1)])
            srt = np.argsort(w, kind="stable")  # stable: a leaf goes before an equal package
            w, is_pkg, leaf = w[srt], is_pkg[srt], leaf[srt]
        levels.append((is_pkg, leaf))
        w_prev = w
    depth = np.zeros(n, dtype=np.int64)
    take = 2 * n - 2
    for is_pkg, leaf in reversed(levels):
        sel_leaf = leaf[:take][~is_pkg[:take]]
        depth[sel_leaf] += 1
        take = 2 * int(np.count_nonzero(is_pkg[:take]))
    lengths[order] = depth
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical Huffman codes (as integers, MSB first) for ``lengths``: codes of one length are
    consecutive, shorter codes first, symbols in increasing order within a length."""
    ln = np.asarray(lengths, dtype=np.int64)
    if (ln < 0).any() or (ln > MAX_CODE_LEN).any():
        raise MacforgeError(f"code lengths must be in 0..{MAX_CODE_LEN}")
    if float(np.sum(2.0 ** -ln[ln > 0])) > 1.0 + 1e-12:
        raise MacforgeError("code lengths violate the Kraft inequality: no prefix code has them")
    codes = np.zeros(ln.size, dtype=np.int64)
    code, prev = 0, 0
    for s in sorted(np.flatnonzero(ln), key=lambda s: (ln[s], s)):
        code <<= int(ln[s]) - prev
        codes[s] = code
        code += 1
        prev = int(ln[s])
    return codes


@dataclass(frozen=True)
class CodeTable:
    """A canonical code: per symbol ``lengths`` / ``codes``; the decoder's view ``count[l]``,
    ``first[l]`` (first code of length l), ``index[l]`` (its position in ``symbols``) for
    l = 0..max_len, and ``symbols`` in canonical order."""

    lengths: np.ndarray
    codes: np.ndarray
    max_len: int
    count: np.ndarray
    first: np.ndarray
    index: np.ndarray
    symbols: np.ndarray

    @property
    def n_symbols(self) -> int:
        return int(self.lengths.size)

    def storage_bits(self) -> int:
        """Bits to store the table: the number of codes of each length 1..max_len, then the
        symbol of every code in canonical order (as DEFLATE-style canonical tables do)."""
        sym_bits = max(1, (self.n_symbols - 1).bit_length())
        count_bits = max(1, self.n_symbols.bit_length())
        return self.max_len * count_bits + int(self.symbols.size) * sym_bits


def code_table(lengths: np.ndarray, max_len: int | None = None) -> CodeTable:
    ln = np.asarray(lengths, dtype=np.int64)
    L = int(ln.max()) if max_len is None else int(max_len)
    if ln.max() > L:
        raise MacforgeError(f"a code is {int(ln.max())} bits long, above max_len {L}")
    codes = canonical_codes(ln)
    count = np.zeros(L + 1, dtype=np.int64)
    first = np.zeros(L + 1, dtype=np.int64)
    index = np.zeros(L + 1, dtype=np.int64)
    symbols = np.array(sorted(np.flatnonzero(ln), key=lambda s: (ln[s], s)), dtype=np.int64)
    for l in range(1, L + 1):
        sel = symbols[ln[symbols] == l]
        count[l] = sel.size
        index[l] = int(np.searchsorted(ln[symbols], l))
        first[l] = int(codes[sel[0]]) if sel.size else 0
    return CodeTable(ln, codes, L, count, first, index, symbols)


@dataclass(frozen=True)
class EntropyCodedGrid:
    """A tensor on the entropy-coded uniform grid and what storing it costs."""

    step: float
    """Δ (already rounded to ``scale_format``)"""
    symbols: np.ndarray
    """symbol per element: ``k + K`` for grid point k·Δ, k = -K..K"""
    levels: int
    """K: the grid spans -K..K (2K+1 symbols)"""
    mse: float
    ideal_bits: float
    """-Σ p log2 p per element (data bits only)"""
    huffman_bits: float
    """Σ count·length / n per element with the length-limited Huffman code"""
    unlimited_huffman_bits: float
    """the same without the length limit (max_len = 32): the loss of limiting is the difference"""
    table: CodeTable
    table_bits: int
    scale_bits: int
    offset_bits: int
    n: int
    chunk: int

    @property
    def overhead_bits(self) -> float:
        """table + scale + chunk offsets, per element"""
        return (self.table_bits + self.scale_bits + self.offset_bits) / self.n

    @property
    def bits_per_element(self) -> float:
        """Everything stored, per element, with the Huffman code."""
        return self.huffman_bits + self.overhead_bits

    @property
    def ideal_bits_per_element(self) -> float:
        """Ideal code + the same overhead (a real decoder still needs scale and offsets)."""
        return self.ideal_bits + (self.scale_bits + self.offset_bits) / self.n

    def dequantize(self) -> np.ndarray:
        return (self.symbols.astype(np.float64) - self.levels) * self.step


def _grid_stats(x: np.ndarray, step: float, max_len: int) -> tuple[np.ndarray, int, float, float, np.ndarray]:
    k = np.rint(x / step).astype(np.int64)
    K = int(np.max(np.abs(k))) if k.size else 0
    counts = np.bincount(k + K, minlength=2 * K + 1)
    p = counts[counts > 0] / x.size
    ideal = float(-np.sum(p * np.log2(p)))
    lengths = huffman_lengths(counts, max_len)
    huff = float(np.sum(counts * lengths)) / x.size
    return k + K, K, ideal, huff, lengths


def entropy_coded_grid(x: np.ndarray, budget: float, *, code: str = "huffman", max_len: int = 16,
                       chunk: int = 4096, scale_format: str = "fp32", iters: int = 60) -> EntropyCodedGrid:
    """Quantize ``x`` to the uniform grid whose coded size is ``budget`` bits per element.

    ``code = "huffman"``: the budget counts everything stored (Huffman-coded symbols, table,
    scale, chunk offsets); ``"ideal"``: the ideal code length plus scale and offsets. The step Δ is
    found by bisection on log Δ; coded sizes of finite data are step functions of Δ, so the
    closest step not above the budget is returned.
    """
    from ._tensor import SCALE_FORMAT_BITS, round_scale

    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    if xa.size == 0 or not np.isfinite(xa).all():
        raise MacforgeError("x must be a non-empty finite array")
    if code not in ("huffman", "ideal"):
        raise MacforgeError(f"code must be 'huffman' or 'ideal', not {code!r}")
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise MacforgeError(f"chunk must be a positive integer, not {chunk!r}")
    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or not math.isfinite(budget):
        raise MacforgeError(f"budget must be a finite number of bits per element, not {budget!r}")
    n_chunks = -(-xa.size // chunk)
    scale_bits = SCALE_FORMAT_BITS[scale_format]

    def measure(step: float) -> tuple[float, EntropyCodedGrid]:
        sym, K, ideal, huff, lengths = _grid_stats(xa, step, max_len)
        table = code_table(lengths, max_len)
        total_bits = huff * xa.size
        offset_bits = (n_chunks - 1) * max(1, int(total_bits).bit_length())  # chunk 0 starts at 0
        # the unlimited code is only reported: computed once, for the returned step
        g = EntropyCodedGrid(step, sym, K, float(np.mean((((sym - K) * step) - xa) ** 2)), ideal, huff, math.nan,
                             table, table.storage_bits(), scale_bits, offset_bits, xa.size, int(chunk))
        return (g.bits_per_element if code == "huffman" else g.ideal_bits_per_element), g

    amax = float(np.max(np.abs(xa)))
    if amax == 0:
        raise MacforgeError("x is all zeros: every grid codes it in one symbol")
    # limits: the coarsest grid (everything rounds to 0) and the finest one considered (each
    # distinct value its own point, or 2^15 levels a side, whichever is coarser)
    coarse_bits, _ = measure(float(round_scale(np.array([4 * amax]), scale_format)[0]))
    distinct, dcount = np.unique(xa, return_counts=True)
    gaps = np.diff(distinct)
    k_max = min((1 << MAX_LEVELS_LOG2) - 1, ((1 << max_len) - 1) // 2, xa.size)
    fine = max(float(gaps.min()) / 4 if gaps.size else amax, amax / k_max)
    fine_bits, _ = measure(float(round_scale(np.array([fine]), scale_format)[0]))
    p = dcount / xa.size
    source_h = float(-np.sum(p * np.log2(p)))
    if budget <= coarse_bits:
        raise MacforgeError(f"budget {budget:g} b/elem is below what any grid reaches here: "
                            f"{coarse_bits:.4g} b/elem with every element at 0 ({code} code, overhead included)")
    if budget > fine_bits:
        raise MacforgeError(f"budget {budget:g} b/elem is above what the finest grid needs "
                            f"({fine_bits:.4g} b/elem, {code} code, overhead included); the source "
                            f"entropy is {source_h:.4g} b/elem")
    lo, hi = math.log(fine), math.log(4 * amax)
    best: EntropyCodedGrid | None = None
    best_bits = -math.inf
    for _ in range(iters):
        mid = (lo + hi) / 2
        step = float(round_scale(np.array([math.exp(mid)]), scale_format)[0])
        bits, g = measure(step)
        if bits <= budget and bits > best_bits:
            best, best_bits = g, bits
        if bits > budget:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9:
            break
    if best is None:  # pragma: no cover - the coarse end is below the budget (checked above)
        raise MacforgeError(f"no grid step reaches {budget:g} b/elem")
    _, _, _, unlimited, _ = _grid_stats(xa, best.step, MAX_CODE_LEN)
    return replace(best, unlimited_huffman_bits=unlimited)
