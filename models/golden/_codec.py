"""Bit-exact golden codec of canonical-Huffman weight streams: pack a tensor's symbols into a
bitstream in chunks and decode them back, exactly as a hardware decoder reads them.

Stream layout: 32-bit words, bits consumed MSB first (bit 31 of word 0 is stream bit 0); each
code is written MSB first; chunk c (``chunk`` symbols, the last may be shorter) starts at stream
bit ``offsets[c]`` (chunk 0 at 0, the next directly after the previous one: no padding), so
chunks can be decoded in parallel from their offsets. Decoding is the canonical rule: read one
bit at a time, ``code = 2·code + bit``; at length l the code is a symbol when
``code - first[l] < count[l]``; a code longer than ``max_len`` is corrupt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..errors import MacforgeError
from ..formats._entropy import CodeTable

__all__ = ["Bitstream", "encode_stream", "decode_stream", "decode_prefix", "DECODE_STATUS"]


@dataclass(frozen=True)
class Bitstream:
    words: np.ndarray
    """uint32 words, MSB first"""
    n_bits: int
    n_symbols: int
    chunk: int
    offsets: np.ndarray
    """int64 start bit of every chunk"""

    @property
    def n_chunks(self) -> int:
        return int(self.offsets.size)


@njit(cache=True)
def _encode(symbols, lengths, codes, chunk, words, offsets):  # type: ignore[no-untyped-def]
    pos = np.int64(0)
    for i in range(symbols.size):
        if i % chunk == 0:
            offsets[i // chunk] = pos
        s = symbols[i]
        ln = lengths[s]
        cd = codes[s]
        for b in range(ln - 1, -1, -1):
            if (cd >> b) & 1:
                words[pos >> 5] |= np.uint32(1) << np.uint32(31 - (pos & 31))
            pos += 1
    return pos


def encode_stream(symbols: np.ndarray, table: CodeTable, chunk: int = 4096) -> Bitstream:
    """Pack ``symbols`` (integers 0..n_symbols-1, each with a code in ``table``)."""
    s = np.asarray(symbols)
    if s.ndim != 1 or s.dtype.kind not in "iu":
        raise MacforgeError("symbols must be a 1-D integer array")
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise MacforgeError(f"chunk must be a positive integer, not {chunk!r}")
    if s.size and (s.min() < 0 or s.max() >= table.n_symbols):
        raise MacforgeError(f"symbols must be in 0..{table.n_symbols - 1}")
    s = s.astype(np.int64)
    if s.size and (table.lengths[s] == 0).any():
        bad = int(s[table.lengths[s] == 0][0])
        raise MacforgeError(f"symbol {bad} has no code in the table (its count was 0)")
    n_bits = int(np.sum(table.lengths[s])) if s.size else 0
    words = np.zeros(max(1, -(-n_bits // 32)), dtype=np.uint32)
    offsets = np.zeros(-(-s.size // chunk), dtype=np.int64)
    _encode(s, table.lengths.astype(np.int64), table.codes.astype(np.int64), np.int64(chunk), words, offsets)
    return Bitstream(words, n_bits, int(s.size), int(chunk), offsets)


# decode status codes
_OK, _CORRUPT, _TRUNCATED, _MISALIGNED = 0, 1, 2, 3


@njit(cache=True)
def _decode(words, n_bits, n_symbols, chunk, offsets, count, first, index, symbols, max_len, out):  # type: ignore[no-untyped-def]
    n_chunks = offsets.size
    for c in range(n_chunks):
        pos = offsets[c]
        end = offsets[c + 1] if c + 1 < n_chunks else n_bits
        lo = c * chunk
        hi = min(n_symbols, lo + chunk)
        for i in range(lo, hi):
            code = np.int64(0)
            found = False
            for ln in range(1, max_len + 1):
                if pos >= end:
                    return _TRUNCATED, i, pos
                bit = (words[pos >> 5] >> np.uint32(31 - (pos & 31))) & np.uint32(1)
                pos += 1
                code = code * 2 + np.int64(bit)
                d = code - first[ln]
                if count[ln] > 0 and d >= 0 and d < count[ln]:
                    out[i] = symbols[index[ln] + d]
                    found = True
                    break
            if not found:
                return _CORRUPT, i, pos
        if pos != end:
            return _MISALIGNED, hi, pos
    return _OK, n_symbols, n_bits


DECODE_STATUS = ("ok", "corrupt", "truncated", "misaligned")


def decode_prefix(stream: Bitstream, table: CodeTable) -> tuple[np.ndarray, str, int]:
    """(symbols decoded before decoding stopped, status, stream bit where it stopped): status is
    one of ``DECODE_STATUS``; "ok" means every symbol was decoded. What a hardware decoder must
    have emitted when it flags a corrupt or truncated stream."""
    out, status, at, pos = _run_decode(stream, table)
    return (out if status == _OK else out[:at]), DECODE_STATUS[status], pos


def _run_decode(stream: Bitstream, table: CodeTable) -> tuple[np.ndarray, int, int, int]:
    if stream.n_bits > stream.words.size * 32 or stream.n_bits < 0:
        raise MacforgeError(f"bitstream claims {stream.n_bits} bits but holds {stream.words.size * 32}")
    expect = -(-stream.n_symbols // stream.chunk)
    if stream.offsets.size != expect:
        raise MacforgeError(f"bitstream has {stream.offsets.size} chunk offsets, expected {expect}")
    offs = stream.offsets.astype(np.int64)
    if offs.size and (offs[0] != 0 or (np.diff(offs) < 0).any() or offs[-1] > stream.n_bits):
        raise MacforgeError("bitstream chunk offsets are not increasing from 0 within the stream")
    out = np.empty(stream.n_symbols, dtype=np.int64)
    status, at, pos = _decode(stream.words.astype(np.uint32), np.int64(stream.n_bits), np.int64(stream.n_symbols),
                              np.int64(stream.chunk), offs, table.count, table.first, table.index,
                              table.symbols, np.int64(table.max_len), out)
    return out, int(status), int(at), int(pos)


def decode_stream(stream: Bitstream, table: CodeTable) -> np.ndarray:
    """The symbols of ``stream``; a corrupt or truncated stream raises a one-line MacforgeError
    naming the symbol and bit position where decoding failed."""
    out, status, at, pos = _run_decode(stream, table)
    if status == _CORRUPT:
        raise MacforgeError(f"corrupt bitstream: no code of at most {table.max_len} bits at symbol {at} "
                            f"(bit {pos})")
    if status == _TRUNCATED:
        raise MacforgeError(f"truncated bitstream: symbol {at} runs past the end of its chunk (bit {pos})")
    if status == _MISALIGNED:
        raise MacforgeError(f"corrupt bitstream: the chunk ending at symbol {at} ends at bit {pos}, "
                            "not at the next chunk's offset")
    return out
