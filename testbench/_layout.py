"""Packing a unit's input ports into one stimulus word per cycle, and the acc results of several
unit instances into one result word: as big-endian binary records for ``$fread`` (the batched
harness's stimulus and expected words), as hex text for ``$readmemh`` / from ``$writememh``.

Every direction is vectorized with numpy: a million cycles pack or parse in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import MacforgeError

__all__ = [
    "Field",
    "ResultLayout",
    "StimLayout",
    "pack_bytes",
    "pack_hex",
    "pack_result_bytes",
    "parse_hex_lines",
    "result_layout",
    "stim_layout",
    "unpack_hex",
    "unpack_nibbles",
]


@dataclass(frozen=True)
class Field:
    """One input port in the stimulus word: ``lanes`` elements of ``width // lanes`` bits,
    element i at bits [offset + i·lane_width, offset + (i+1)·lane_width)."""

    name: str
    width: int
    lanes: int
    signed: bool
    offset: int

    @property
    def lane_width(self) -> int:
        return self.width // self.lanes


@dataclass(frozen=True)
class StimLayout:
    fields: tuple[Field, ...]
    bits: int

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def hex_digits(self) -> int:
        return max(1, -(-self.bits // 4))


@dataclass(frozen=True)
class ResultLayout:
    """Result field i (the acc of instance i for a MAC unit; one output port lane of one
    instance in general) at bits [offsets[i], offsets[i] + widths[i]); every field starts on a
    hex digit so it can be cut out of the text directly. ``signed[i]``: sign-extend field i
    (empty: every field is signed)."""

    widths: tuple[int, ...]
    offsets: tuple[int, ...]
    bits: int
    signed: tuple[bool, ...] = ()

    @property
    def hex_digits(self) -> int:
        return max(1, -(-self.bits // 4))


def stim_layout(ports: list[dict[str, object]]) -> StimLayout:
    """Every input port but ``clk``, ``rst`` first, packed LSB-first in port order."""
    ins = [p for p in ports if p["direction"] == "in" and p["name"] != "clk"]
    ins.sort(key=lambda p: p["name"] != "rst")  # stable: rst first, the rest in port order
    fields, off = [], 0
    for p in ins:
        width, lanes = int(p["width"]), int(p.get("lanes", 1))  # type: ignore[call-overload]
        if width % lanes:
            raise MacforgeError(
                f"port {p['name']}: width {width} is not a multiple of lanes {lanes}"
            )
        if width // lanes > 63:
            raise MacforgeError(
                f"port {p['name']}: element width {width // lanes} > 63 is not supported"
            )
        fields.append(Field(str(p["name"]), width, lanes, bool(p["signed"]), off))
        off += width
    return StimLayout(tuple(fields), off)


def result_layout(acc_widths: list[int], signed: list[bool] | None = None) -> ResultLayout:
    """Fields of ``acc_widths`` bits, each from a hex digit boundary; ``signed`` per field
    (default: all signed)."""
    offs, off = [], 0
    for w in acc_widths:
        if w > 62:
            raise MacforgeError(f"acc width {w} > 62 is not supported")
        offs.append(off)
        off += -(-w // 4) * 4
    if signed is not None and len(signed) != len(acc_widths):
        raise MacforgeError(f"{len(signed)} signed flags for {len(acc_widths)} result fields")
    return ResultLayout(tuple(acc_widths), tuple(offs), off, tuple(signed) if signed is not None else ())


def _stim_limbs(layout: StimLayout, cols: dict[str, np.ndarray]) -> np.ndarray:
    """(T, limbs) uint64: the stimulus words, limb 0 = bits 0..63."""
    n = None
    for f in layout.fields:
        c = np.asarray(cols[f.name])
        n = c.shape[0] if n is None else n
        if c.shape[0] != n:
            raise MacforgeError(f"stimulus column {f.name} has {c.shape[0]} cycles, expected {n}")
    assert n is not None
    nlimbs = max(1, -(-layout.bits // 64))
    limbs = np.zeros((n, nlimbs), dtype=np.uint64)
    for f in layout.fields:
        c = np.asarray(cols[f.name], dtype=np.int64).reshape(n, -1)
        if c.shape[1] != f.lanes:
            raise MacforgeError(
                f"stimulus column {f.name} has {c.shape[1]} lanes, expected {f.lanes}"
            )
        for lane in range(f.lanes):
            _or_field(limbs, c[:, lane], f.offset + lane * f.lane_width, f.lane_width)
    return limbs


def _or_field(limbs: np.ndarray, values: np.ndarray, offset: int, width: int) -> None:
    """OR ``values`` (int64, two's complement bits kept) as a ``width``-bit field at bit
    ``offset`` into the (T, limbs) uint64 words (limb 0 = bits 0..63; a field may cross a limb)."""
    v = np.asarray(values, dtype=np.int64).astype(np.uint64) & np.uint64((1 << width) - 1)
    limb, sh = divmod(offset, 64)
    limbs[:, limb] |= v << np.uint64(sh)
    if sh + width > 64:
        limbs[:, limb + 1] |= v >> np.uint64(64 - sh)


def _limb_bytes(limbs: np.ndarray, nbytes: int) -> np.ndarray:
    """(T, nbytes) uint8: the low ``nbytes`` bytes of each row's words, most significant first."""
    n, nl = limbs.shape
    be = np.ascontiguousarray(limbs[:, ::-1]).astype(">u8").view(np.uint8).reshape(n, nl * 8)
    return be[:, nl * 8 - nbytes :]


def pack_bytes(layout: StimLayout, cols: dict[str, np.ndarray]) -> np.ndarray:
    """(T, ceil(bits / 8)) uint8: each cycle's stimulus word, big-endian (a ``$fread`` record).
    ``cols`` as for ``pack_hex``."""
    return _limb_bytes(_stim_limbs(layout, cols), -(-layout.bits // 8))


def pack_result_bytes(layout: ResultLayout, values: np.ndarray) -> np.ndarray:
    """(T, ceil(bits / 8)) uint8: result words (field i of ``values`` (T, fields) at its offset,
    two's complement, padding zero), big-endian: what the harness compares its outputs with."""
    vals = np.asarray(values, dtype=np.int64)
    n = vals.shape[0]
    limbs = np.zeros((n, max(1, -(-layout.bits // 64))), dtype=np.uint64)
    for i, (w, off) in enumerate(zip(layout.widths, layout.offsets)):
        _or_field(limbs, vals[:, i], off, w)
    return _limb_bytes(limbs, -(-layout.bits // 8))


def pack_hex(layout: StimLayout, cols: dict[str, np.ndarray]) -> bytes:
    """``$readmemh`` text, one line per cycle. ``cols[name]`` is (T,) or (T, lanes) of ints;
    signed values are written in two's complement."""
    limbs = _stim_limbs(layout, cols)
    n, nlimbs = limbs.shape
    digits = layout.hex_digits
    text = limbs[:, ::-1].astype(">u8").tobytes().hex().encode()
    rows = np.frombuffer(text, dtype=np.uint8).reshape(n, nlimbs * 16)[:, nlimbs * 16 - digits :]
    out = np.empty((n, digits + 1), dtype=np.uint8)
    out[:, :digits] = rows
    out[:, digits] = ord("\n")
    return out.tobytes()


_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate(b"0123456789abcdef"):
    _NIBBLE[_ch] = _i
for _i, _ch in enumerate(b"ABCDEF"):
    _NIBBLE[_ch] = 10 + _i


def parse_hex_lines(text: bytes, digits: int) -> np.ndarray:
    """(T, digits) uint8 nibbles of ``$writememh`` text (address comments dropped; x/z digits
    come back as 255)."""
    raw = np.frombuffer(text, dtype=np.uint8)
    if raw.size % (digits + 1) == 0 and b"//" not in text and b"\r" not in text:
        # the usual case (Verilator; Icarus without address comments): fixed-width lines
        rows = raw.reshape(-1, digits + 1)
        if (rows[:, digits] == ord("\n")).all():
            return _NIBBLE[rows[:, :digits]]
    lines = [ln.strip() for ln in text.split(b"\n")]
    lines = [ln for ln in lines if ln and not ln.startswith(b"//")]
    if any(len(ln) != digits for ln in lines):
        bad = next(ln for ln in lines if len(ln) != digits)
        raise MacforgeError(f"result line {bad[:40]!r} is not {digits} hex digits")
    raw = np.frombuffer(b"".join(lines), dtype=np.uint8).reshape(len(lines), digits)
    return _NIBBLE[raw]


def unpack_nibbles(layout: ResultLayout, nib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``unpack_hex`` of already parsed nibbles (T, layout.hex_digits), most significant first."""
    t = nib.shape[0]
    vals = np.zeros((t, len(layout.widths)), dtype=np.int64)
    valid = np.ones((t, len(layout.widths)), dtype=bool)
    for i, (w, off) in enumerate(zip(layout.widths, layout.offsets)):
        nd = -(-w // 4)
        # digit columns are most-significant first: field digit k (LSB = 0) is column -1-off/4-k
        lo_col = layout.hex_digits - off // 4
        cols = nib[:, lo_col - nd : lo_col]
        bad = cols == 255
        valid[:, i] = ~bad.any(axis=1)
        acc = np.zeros(t, dtype=np.int64)
        for k in range(nd):
            acc = (acc << 4) | np.where(bad[:, k], 0, cols[:, k]).astype(np.int64)
        acc &= (1 << w) - 1
        if layout.signed and not layout.signed[i]:
            vals[:, i] = acc
        else:
            vals[:, i] = np.where(acc >= (1 << (w - 1)), acc - (1 << w), acc)
    return vals, valid


def unpack_hex(layout: ResultLayout, text: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(values (T, n_fields) int64, sign-extended where the field is signed, valid
    (T, n_fields) bool: no x/z bit)."""
    return unpack_nibbles(layout, parse_hex_lines(text, layout.hex_digits))
