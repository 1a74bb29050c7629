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
from ._core import Format
from ._tensor import QuantizedTensor, Scaling

__all__ = ["huffman_lengths", "canonical_codes", "CodeTable", "code_table", "EntropyCodedGrid",
           "entropy_coded_grid", "MAX_CODE_LEN", "EntropyFormat", "EntropyQuantizedTensor", "entropy_format",
           "reference_tensor", "ENTROPY_REFERENCES"]

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


def _grid_stats(x: np.ndarray, step: float, max_len: int,
                max_levels: int | None = None) -> tuple[np.ndarray, int, float, float, np.ndarray]:
    k = np.rint(x / step).astype(np.int64)
    if max_levels is None:
        K = int(np.max(np.abs(k))) if k.size else 0
    else:  # a fixed symbol alphabet (the decoder's symbol width): saturate to ±max_levels
        K = int(max_levels)
        k = np.clip(k, -K, K)
    counts = np.bincount(k + K, minlength=2 * K + 1)
    p = counts[counts > 0] / x.size
    ideal = float(-np.sum(p * np.log2(p)))
    lengths = huffman_lengths(counts, max_len)
    huff = float(np.sum(counts * lengths)) / x.size
    return k + K, K, ideal, huff, lengths


def chunk_offset_bits(n: int, chunk: int, total_bits: float) -> int:
    """Bits of the chunk start offsets that let decoders start in parallel: one offset per chunk
    after the first (which starts at 0), each wide enough to address the coded stream."""
    return (-(-n // chunk) - 1) * max(1, int(total_bits).bit_length())


def entropy_coded_grid(x: np.ndarray, budget: float, *, code: str = "huffman", max_len: int = 16,
                       chunk: int = 4096, scale_format: str = "fp32", iters: int = 60,
                       max_levels: int | None = None) -> EntropyCodedGrid:
    """Quantize ``x`` to the uniform grid whose coded size is ``budget`` bits per element.

    ``code = "huffman"``: the budget counts everything stored (Huffman-coded symbols, table,
    scale, chunk offsets); ``"ideal"``: the ideal code length plus scale and offsets. The step Δ is
    found by bisection on log Δ; coded sizes of finite data are step functions of Δ, so the
    closest step not above the budget is returned. ``max_levels`` fixes the alphabet to the
    2·max_levels + 1 points -max_levels..max_levels (elements beyond saturate): symbols are then
    ``k + max_levels`` whatever the tensor, as a decoder with a fixed symbol width needs.
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
    if max_levels is not None and (not isinstance(max_levels, (int, np.integer)) or isinstance(max_levels, bool)
                                   or not 1 <= max_levels <= (1 << MAX_LEVELS_LOG2) - 1):
        raise MacforgeError(f"max_levels must be an integer in 1..{(1 << MAX_LEVELS_LOG2) - 1}, not {max_levels!r}")
    scale_bits = SCALE_FORMAT_BITS[scale_format]

    def measure(step: float) -> tuple[float, EntropyCodedGrid]:
        sym, K, ideal, huff, lengths = _grid_stats(xa, step, max_len, max_levels)
        table = code_table(lengths, max_len)
        offset_bits = chunk_offset_bits(xa.size, chunk, huff * xa.size)
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
    gap_fine = float(gaps.min()) / 4 if gaps.size else amax
    if max_levels is None:
        k_max = min((1 << MAX_LEVELS_LOG2) - 1, ((1 << max_len) - 1) // 2, xa.size)
        fine = max(gap_fine, amax / k_max)
    else:
        # a fixed alphabet: below this step more than 0.1% of the elements would saturate, and
        # the coded size stops growing as the step shrinks (everything piles up at ±max_levels)
        fine = max(gap_fine, float(np.quantile(np.abs(xa), 0.999)) / max_levels)
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
    _, _, _, unlimited, _ = _grid_stats(xa, best.step, MAX_CODE_LEN, max_levels)
    return replace(best, unlimited_huffman_bits=unlimited)


# --------------------------------------------------------------------------- the format
ENTROPY_REFERENCES = ("normal", "laplace")
REFERENCE_SIZE = 1 << 18
REFERENCE_SEED = 0


def reference_tensor(reference: str) -> np.ndarray:
    """The seeded tensor an entropy format's listed sizes are measured on (its code table is
    per tensor, so a format alone has no size): 2^18 draws of N(0, 1) or Laplace(0, 1/√2)
    (unit variance), seed 0."""
    rng = np.random.default_rng(REFERENCE_SEED)
    if reference == "normal":
        return rng.standard_normal(REFERENCE_SIZE)
    if reference == "laplace":
        return rng.laplace(0.0, 1 / math.sqrt(2), REFERENCE_SIZE)
    raise MacforgeError(f"reference must be one of {', '.join(ENTROPY_REFERENCES)}, not {reference!r}")


def _check_int(name: str, v: object, lo: int, hi: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
        raise MacforgeError(f"{name} must be an integer in {lo}..{hi}, not {v!r}")
    return int(v)


@dataclass(frozen=True)
class BisectedStep(Scaling):
    """The scaling of an entropy format: one step per tensor, bisected to the coded-size budget
    (not derived from absmax; ``method`` only satisfies ``Scaling``'s checks)."""

    def describe(self) -> str:
        return f"per tensor, step bisected to the budget, {self.scale_format} step"


@dataclass
class EntropyQuantizedTensor(QuantizedTensor):
    """A tensor coded by an ``EntropyFormat``: ``codes`` are its symbols, ``scales`` its one step;
    what it stores is the Huffman-coded stream, the code table, the step and the chunk offsets."""

    grid: EntropyCodedGrid | None = None

    def stored_bits(self) -> dict[str, int]:
        g = self.grid
        assert g is not None  # set by EntropyFormat.quantize
        return {"elements": int(round(g.huffman_bits * g.n)), "code_table": g.table_bits,
                "scales": g.scale_bits, "chunk_offsets": g.offset_bits}


@dataclass(frozen=True, eq=False, repr=False)
class EntropyFormat(Format):
    """The entropy-coded uniform grid as a Format (PAPERS.md §2).

    Codes are the decoder's ``bits``-bit symbols: code c is grid point ``c - K`` (times the
    tensor's step Δ), K = 2^(bits-1) - 1, so codes 0..2K are used; 2^bits - 1 holds no point
    (its value is NaN and nothing encodes to it).
    Each tensor gets its own step (bisected to the ``budget``) and its own length-limited
    canonical Huffman table (``max_len``), chunk offsets every ``chunk`` symbols and one
    ``scale_format`` step. ``bits_per_element()`` and ``entropy_record()`` are measured on the
    ``reference`` tensor (``reference_tensor``); ``quantize(x)`` codes ``x`` itself.
    """

    budget: float = 4.0
    max_len: int = 16
    chunk: int = 4096
    scale_format: str = "fp32"
    reference: str = "normal"

    @property
    def max_levels(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def code_tensor(self, x: np.ndarray) -> EntropyCodedGrid:
        """``x`` on the grid whose Huffman-coded size (everything stored) is ``budget``."""
        return entropy_coded_grid(x, self.budget, max_len=self.max_len, chunk=self.chunk,
                                  scale_format=self.scale_format, max_levels=self.max_levels)

    def quantize(self, x: np.ndarray, scaling: Scaling | None = None) -> EntropyQuantizedTensor:  # type: ignore[override]
        if scaling is not None and scaling != self.default_scaling:
            raise MacforgeError(f"format {self.name} is coded per tensor with a bisected step: it takes no "
                                f"other scaling (got {scaling.describe()})")
        xa = np.asarray(x, dtype=np.float64)
        if xa.ndim == 0 or xa.size == 0:
            raise MacforgeError(f"x must be a non-empty array with at least one axis, got shape {xa.shape}")
        g = self.code_tensor(xa)
        sc = self.default_scaling
        assert sc is not None  # set by entropy_format
        return EntropyQuantizedTensor(self, sc, tuple(xa.shape), g.symbols.astype(self.code_dtype),
                                      np.array([g.step]), grid=g)

    def _reference_grid(self) -> EntropyCodedGrid:
        cached = self.__dict__.get("_ref_grid")
        if cached is None:
            cached = self.code_tensor(reference_tensor(self.reference))
            object.__setattr__(self, "_ref_grid", cached)
        return cached

    def bits_per_element(self, scaling: Scaling | None = None) -> float:
        """Everything stored per element, Huffman-coded, on the reference tensor."""
        return self._reference_grid().bits_per_element

    def storage_breakdown(self, shape: tuple[int, ...]) -> dict[str, int]:
        """What a tensor of ``shape`` stores, its code lengths taken from the reference tensor
        (the per-element Huffman bits; one table and one step per tensor; its own chunk offsets)."""
        g = self._reference_grid()
        n = int(np.prod(shape))
        elements = int(round(g.huffman_bits * n))
        return {"elements": elements, "code_table": g.table_bits, "scales": g.scale_bits,
                "chunk_offsets": chunk_offset_bits(n, self.chunk, elements)}

    def entropy_record(self) -> dict[str, object]:
        """Ideal vs Huffman bits and the storage breakdown on the reference tensor."""
        g = self._reference_grid()
        n = g.n
        return {
            "budget": self.budget, "max_len": self.max_len, "chunk": self.chunk, "symbol_bits": self.bits,
            "scale_format": self.scale_format,
            "reference": f"{self.reference}: {REFERENCE_SIZE} seeded draws (seed {REFERENCE_SEED}, unit variance)",
            "step": g.step, "levels_used": int(np.count_nonzero(g.table.lengths)),
            "mse": g.mse,
            "ideal_bits": g.ideal_bits, "huffman_bits": g.huffman_bits,
            "unlimited_huffman_bits": g.unlimited_huffman_bits,
            "huffman_minus_ideal": g.huffman_bits - g.ideal_bits,
            "length_limit_loss": g.huffman_bits - g.unlimited_huffman_bits,
            "longest_code": int(g.table.lengths.max()),
            "bits_per_element": g.bits_per_element, "ideal_bits_per_element": g.ideal_bits_per_element,
            "storage_bits": {"elements": int(round(g.huffman_bits * n)), "code_table": g.table_bits,
                             "scale": g.scale_bits, "chunk_offsets": g.offset_bits},
            "n_elements": n,
        }


def entropy_format(name: str, budget: float, max_len: int = 16, *, chunk: int = 4096, symbol_bits: int = 8,
                   scale_format: str = "fp32", reference: str = "normal", description: str | None = None,
                   source: str | None = None) -> EntropyFormat:
    """An ``EntropyFormat``; parameters are checked here, the budget against the reference
    tensor when a size is first asked for."""
    from ._tensor import SCALE_FORMAT_BITS

    if not isinstance(budget, (int, float)) or isinstance(budget, bool) or not math.isfinite(budget) or budget <= 0:
        raise MacforgeError(f"budget must be a positive number of bits per element, not {budget!r}")
    _check_int("max_len", max_len, 1, MAX_CODE_LEN)
    _check_int("chunk", chunk, 1, 1 << 30)
    b = _check_int("symbol_bits", symbol_bits, 2, 16)
    if (1 << b) - 1 > 1 << max_len:
        raise MacforgeError(f"max_len {max_len} cannot code the {(1 << b) - 1} symbols of symbol_bits {b} "
                            f"(needs max_len >= {b})")
    if scale_format not in SCALE_FORMAT_BITS:
        raise MacforgeError(f"scale_format must be one of {', '.join(SCALE_FORMAT_BITS)}, not {scale_format!r}")
    if reference not in ENTROPY_REFERENCES:
        raise MacforgeError(f"reference must be one of {', '.join(ENTROPY_REFERENCES)}, not {reference!r}")
    K = (1 << (b - 1)) - 1
    codes = np.arange(1 << b, dtype=np.int64)
    vals = np.where(codes <= 2 * K, codes - K, np.nan)  # the top code holds no grid point
    enc = codes <= 2 * K
    params: dict[str, object] = {"family": "entropy", "budget": float(budget), "max_len": int(max_len),
                                 "chunk": int(chunk), "symbol_bits": b, "scale_format": scale_format,
                                 "reference": reference}
    return EntropyFormat(
        name=name, bits=b, kind="entropy", values=vals, tie_priority=((codes - K) % 2 == 0).astype(np.int64),
        encodable=enc, nan_policy="error", inf_policy="saturate",
        description=description or (f"entropy-coded uniform grid at {budget:g} b/elem (everything stored): "
                                    f"{2 * K + 1} points k·Δ, Δ bisected per tensor, canonical Huffman "
                                    f"codes of at most {max_len} bits, chunk offsets every {chunk} symbols, "
                                    f"{scale_format} step"),
        source=source or "Orr, Ribar, Luschi 2025 (PAPERS.md §2): compressed uniform grid; length-limited "
                         "Huffman by package-merge (Larmore & Hirschberg 1990)",
        default_scaling=BisectedStep(granularity="tensor", method="absmax", scale_format=scale_format),
        params=params, budget=float(budget), max_len=int(max_len), chunk=int(chunk),
        scale_format=scale_format, reference=reference)
