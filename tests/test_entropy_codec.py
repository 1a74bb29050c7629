"""Variable-length codes: length-limited canonical Huffman, the entropy-coded uniform grid and
the bit-exact golden bitstream codec (round trips, degenerate histograms, corrupt streams)."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import replace

import numpy as np
import pytest

from models.errors import MacforgeError
from models.formats import canonical_codes, code_table, entropy_coded_grid, huffman_lengths
from models.golden import decode_stream, encode_stream


def _plain_huffman_cost(counts: np.ndarray) -> int:
    """Σ count · depth of an unlimited Huffman tree, built independently with a heap."""
    heap = [int(c) for c in counts if c > 0]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    return cost


def _brute_force_limited_cost(counts: list[int], max_len: int) -> int:
    """The least Σ count · length over every length assignment <= max_len meeting Kraft."""
    best = None
    for ls in itertools.product(range(1, max_len + 1), repeat=len(counts)):
        if sum(2.0 ** -x for x in ls) <= 1.0:
            c = sum(n * x for n, x in zip(counts, ls))
            best = c if best is None else min(best, c)
    return best  # type: ignore[return-value]


def test_package_merge_is_optimal():
    rng = np.random.default_rng(3)
    for _ in range(150):
        counts = rng.integers(0, 2000, int(rng.integers(2, 60)))
        if np.count_nonzero(counts) < 2:
            continue
        ln = huffman_lengths(counts, 32)
        assert int(np.sum(counts * ln)) == _plain_huffman_cost(counts)
    for _ in range(40):  # length-limited: against exhaustive search on small alphabets
        counts = [int(c) for c in rng.integers(1, 500, int(rng.integers(2, 6)))]
        for L in range(max(1, (len(counts) - 1).bit_length()), 5):
            ln = huffman_lengths(np.array(counts), L)
            assert ln.max() <= L and np.sum(2.0 ** -ln) <= 1.0
            assert int(np.dot(counts, ln)) == _brute_force_limited_cost(counts, L)


def test_canonical_codes_are_prefix_free_and_ordered():
    ln = huffman_lengths(np.array([40, 30, 20, 5, 3, 1, 1]), 5)
    codes = canonical_codes(ln)
    words = [format(int(c), f"0{int(l)}b") for c, l in zip(codes, ln)]
    for a, b in itertools.permutations(words, 2):
        assert not b.startswith(a)
    # canonical: in (length, symbol) order the codes, left-aligned to the longest, strictly increase
    by_len = sorted(range(len(ln)), key=lambda s: (ln[s], s))
    aligned = [int(codes[s]) << int(ln.max() - ln[s]) for s in by_len]
    assert all(a < b for a, b in zip(aligned, aligned[1:]))
    with pytest.raises(MacforgeError, match="Kraft inequality"):
        canonical_codes(np.array([1, 1, 1]))
    with pytest.raises(MacforgeError, match=r"max_len 2 cannot code 5 symbols \(needs >= 3\)"):
        huffman_lengths(np.ones(5, dtype=np.int64), 2)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_round_trip_random_symbols(chunk):
    rng = np.random.default_rng(chunk)
    counts = rng.integers(1, 1000, 37)
    table = code_table(huffman_lengths(counts, 12), 12)
    sym = rng.choice(37, 20_000, p=counts / counts.sum())
    st = encode_stream(sym, table, chunk=chunk)
    assert st.n_bits == int(np.sum(table.lengths[sym]))
    assert st.n_chunks == -(-sym.size // chunk) and st.offsets[0] == 0
    assert np.array_equal(decode_stream(st, table), sym)


def test_round_trip_of_real_weights_on_the_coded_grid():
    from models import realdata

    w = next(v for k, v in realdata.minilm_weights().items() if v.ndim == 2)
    g = entropy_coded_grid(w, 4.0, max_len=12, chunk=1024)
    st = encode_stream(g.symbols, g.table, chunk=1024)
    assert np.array_equal(decode_stream(st, g.table), g.symbols)
    # the stored size is what the format says it is
    assert st.n_bits == pytest.approx(g.huffman_bits * w.size, abs=0.5)
    assert g.bits_per_element <= 4.0 and g.table.max_len == 12 and g.table.lengths.max() <= 12
    assert np.allclose(g.dequantize().reshape(w.shape), np.rint(w / g.step) * g.step)


def test_degenerate_histograms():
    one = code_table(huffman_lengths(np.array([0, 9, 0]), 8), 8)
    assert one.lengths.tolist() == [0, 1, 0]
    st = encode_stream(np.ones(100, dtype=np.int64), one)
    assert st.n_bits == 100 and np.array_equal(decode_stream(st, one), np.ones(100))
    flat = huffman_lengths(np.full(64, 5), 16)
    assert flat.tolist() == [6] * 64  # equal probabilities: a balanced code
    # Fibonacci counts force the longest codes; limited to 8 bits every code fits and decodes
    fib = np.array([1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377])
    assert huffman_lengths(fib, 32).max() == 13
    lim = code_table(huffman_lengths(fib, 8), 8)
    assert lim.lengths.max() == 8
    sym = np.repeat(np.arange(14), fib)
    assert np.array_equal(decode_stream(encode_stream(sym, lim, chunk=50), lim), sym)
    with pytest.raises(MacforgeError, match=r"symbol 2 has no code"):
        encode_stream(np.array([1, 2]), one)


def test_corrupt_and_truncated_streams_are_errors():
    counts = np.array([50, 20, 10, 5, 3, 2])
    table = code_table(huffman_lengths(counts, 6), 6)
    sym = np.random.default_rng(0).choice(6, 2000, p=counts / counts.sum())
    st = encode_stream(sym, table, chunk=100)
    with pytest.raises(MacforgeError, match=r"truncated bitstream: symbol \d+ runs past the end"):
        decode_stream(replace(st, n_bits=st.n_bits - 3), table)
    with pytest.raises(MacforgeError, match=r"chunk offsets"):
        decode_stream(replace(st, offsets=st.offsets[:-1]), table)
    # an incomplete code (Kraft sum < 1): the all-ones word is no code of at most 6 bits
    sparse = code_table(np.array([1, 2, 0, 0, 0, 0]), 6)
    bad = replace(encode_stream(np.zeros(8, dtype=np.int64), sparse), words=np.array([0xFFFFFFFF], dtype=np.uint32))
    with pytest.raises(MacforgeError, match=r"corrupt bitstream: no code of at most 6 bits at symbol 0"):
        decode_stream(bad, sparse)
    # flipped bits end a chunk off its neighbour's offset (or hit a bad code): never garbage silently
    caught = 0
    for bit in range(0, min(st.n_bits, 600), 7):
        w = st.words.copy()
        w[bit >> 5] ^= np.uint32(1 << (31 - (bit & 31)))
        try:
            out = decode_stream(replace(st, words=w), table)
        except MacforgeError:
            caught += 1
            continue
        # a flip that keeps every chunk aligned swaps equal-length codes: the damage stays local
        assert np.count_nonzero(out != sym) <= 2
    assert caught > 0


def test_entropy_coded_grid_hits_its_budget_and_names_its_limits():
    x = np.random.default_rng(0).normal(size=1 << 16)
    prev_mse = np.inf
    for b in (2.0, 3.0, 4.0):
        g = entropy_coded_grid(x, b)
        gi = entropy_coded_grid(x, b, code="ideal")
        assert b - 0.02 < g.bits_per_element <= b and b - 0.02 < gi.ideal_bits_per_element <= b
        assert g.huffman_bits >= g.ideal_bits and gi.mse <= g.mse  # Huffman costs bits over ideal
        assert g.unlimited_huffman_bits <= g.huffman_bits
        assert g.levels * 2 + 1 == g.table.n_symbols and g.mse < prev_mse
        prev_mse = g.mse
    # PAPERS.md §2 [calc]: uniform grid + ideal entropy code at 4 bits: MSE 0.00559 on N(0,1)
    assert entropy_coded_grid(x, 4.0 + 48 / x.size, code="ideal").mse == pytest.approx(0.00559, rel=0.03)
    with pytest.raises(MacforgeError, match=r"below what any grid reaches here"):
        entropy_coded_grid(x, 0.001)
    with pytest.raises(MacforgeError, match=r"above what the finest grid needs .* source entropy"):
        entropy_coded_grid(np.repeat(np.arange(8.0), 100), 6.0)


def test_storage_breakdown_of_an_entropy_format_is_its_coded_size() -> None:
    """storage_bits_per_element (what the accelerator model moves) counts the coded stream, the
    table, the step and the chunk offsets — on the reference tensor exactly what quantize stores."""
    from models.formats import get_format, storage_bits_per_element, storage_breakdown
    from models.formats._entropy import reference_tensor

    f = get_format("egrid3_L12")
    ref = reference_tensor(f.reference)
    assert storage_breakdown(f, None, ref.shape) == f.quantize(ref).stored_bits()
    big = storage_breakdown(f, None, (4096, 4096))
    assert big["code_table"] == storage_breakdown(f, None, ref.shape)["code_table"]  # one table per tensor
    assert big["chunk_offsets"] == (4096 * 4096 // f.chunk - 1) * max(1, big["elements"].bit_length())
    assert abs(storage_bits_per_element(f, None, (4096, 4096)) - 3.0) < 0.01  # the budget, not the 8-bit symbols
