"""Unit specifications: the one description of a datapath that the golden model, the RTL
generator, the testbench and the cost model all consume.

A unit multiplies weight codes by signed integer activations and accumulates. The weight code is
first decoded to an integer in the unit's *integer unit* (``WeightDecode``): 1 for integers,
1/2 ("half-units") for dINT, 2^-f for a minifloat whose values are multiples of 2^-f, and a
quantized LUT step for formats without a short exact integer form (NF4, CRD). The decode table
is derived from the Format's value table, never typed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import MacforgeError, UnknownNameError
from .formats import Format, get_format, register_format

__all__ = [
    "PIPELINE_ORDER",
    "pipeline_cuts",
    "WeightDecode",
    "UnitSpec",
    "weight_decode",
    "integer_table",
    "get_unit",
    "unit_names",
    "as_spec",
    "unit_from_spec",
    "parse_unit_string",
    "register_unit",
    "load_units",
    "canonical_unit_name",
    "user_unit_names",
    "UNIT_KEYS",
    "signed_bits",
    "int_range",
]

Overflow = Literal["wrap", "saturate"]
ProductRound = Literal["exact", "floor", "rne"]
PRODUCT_ROUNDING = ("exact", "floor", "rne")


def round_product(p: Any, shift: int, mode: str) -> Any:
    """``p / 2^shift`` as an integer: ``floor`` (arithmetic shift) or ``rne`` (half to even).

    ``p`` is an int or an integer numpy array (the golden model's products); the one definition
    of product rounding outside the numba kernel and the RTL."""
    if shift == 0 or mode == "exact":
        return p
    q = p >> shift
    if mode == "rne":
        r, half = p - (q << shift), 1 << (shift - 1)
        q = q + ((r > half) | ((r == half) & ((q & 1) == 1)))
    return int(q) if isinstance(p, int) else q


UnitKind = Literal["mac", "dot", "dq_group", "systolic", "huffman"]
UNIT_KINDS = ("mac", "dot", "dq_group", "systolic", "huffman")
MAX_ARRAY = 64  # rows / cols of a systolic unit


# Where a unit's latency - 1 pipeline register levels go, in the order they are added:
# ``term``     the accumulator's input (a MAC's product, a dot PE's adder-tree output, a decoupleQ
#              group term): multiply (+ tree) and accumulate in separate cycles;
# ``split``    inside each lane's multiplier: the multiplicand times the low and the high half of
#              the activation, registered as two partial products and added in the next cycle;
# ``operands`` the decoded weight fields and the activation of each lane (after the decoder).
# Levels beyond these three are further ``term`` levels (a delay line: they add latency, not Fmax).
# A decoupleQ group MAC registers only its group term (its partial sums are a recurrence).
PIPELINE_ORDER: tuple[str, ...] = ("term", "split", "operands")


def pipeline_cuts(spec: "UnitSpec") -> tuple[str, ...]:
    """The pipeline levels of ``spec`` (``PIPELINE_ORDER``), one per latency cycle beyond 1."""
    levels = spec.latency - 1
    if spec.kind == "dq_group":
        return ("term",) * levels
    return PIPELINE_ORDER[:levels] + ("term",) * max(0, levels - len(PIPELINE_ORDER))


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in [lo, hi]."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


# Validated ranges. A LUT entry and an exact decoded weight integer stay below 2^24 in magnitude
# (the golden GEMM's float32 path is exact for them); coefficients of a dq_group are fixed point.
LUT_BITS = (2, 16)
WEIGHT_INT_BITS = 24
COEF_BITS = (2, 32)
FRAC_BITS = (0, 32)
_VERILOG_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_int(what: str, v: object, lo: int, hi: int) -> None:
    if not _is_int(v) or not lo <= v <= hi:  # type: ignore[operator]
        raise MacforgeError(f"{what} must be an integer in {lo}..{hi}, not {v!r}")


def int_range(fmt_name: str) -> tuple[int, int]:
    """Range of a signed-integer activation format (``intN`` or a user ``int`` family).

    A unit's activation port carries the two's-complement value itself, so only formats whose
    code is that value can feed it; anything else is refused with the reason.
    """
    fmt = get_format(fmt_name)
    v = fmt.values
    if fmt.kind == "fp":
        raise MacforgeError(f"activation format {fmt_name!r} is a minifloat: no unit kind (mac, dot, "
                            "dq_group) consumes floating-point activations; use a signed integer format")
    from .formats._families import _twos

    if fmt.kind != "int" or v is None or fmt.has_zero_point or not np.array_equal(v, _twos(fmt.bits)):
        raise MacforgeError(f"activation format {fmt_name!r} ({fmt.kind}) cannot feed a unit: the activation "
                            "port carries the two's-complement value, so it must be a signed integer format "
                            "(int2..int8 or a user 'int' family)")
    return int(fmt.min_value), int(fmt.max_value)


def integer_table(fmt: Format, lut_bits: int | None = None, max_shift: int = 16) -> tuple[np.ndarray, Fraction, bool]:
    """(integers by code, integer unit, exact) for a format's values at zero point 0.

    The smallest power-of-two unit 2^-f (f ≤ ``max_shift``) that makes every value an integer is
    used when those integers fit ``lut_bits`` (signed); otherwise the LUT is quantized:
    unit = max|v| / (2^(lut_bits-1) - 1) and integers = round-half-even(v / unit), exact=False.
    """
    v = fmt.values
    if v is None or np.isinf(v).any():
        raise MacforgeError(f"format {fmt.name} has non-finite codes: it cannot feed an integer MAC")
    if np.isnan(v).any():
        if fmt.kind != "fp":
            raise MacforgeError(f"format {fmt.name} has NaN code(s) {np.nonzero(np.isnan(v))[0].tolist()}: "
                                "an integer datapath has no NaN (only a minifloat's NaN codes are mapped to 0)")
        # an integer MAC has no NaN path: NaN codes (never produced from finite input) contribute 0
        v = np.where(np.isnan(v), 0.0, v)
    for f in range(max_shift + 1):
        scaled = v * (1 << f)
        if np.all(scaled == np.round(scaled)):
            ints = scaled.astype(np.int64)
            if lut_bits is None or signed_bits(int(ints.min()), int(ints.max())) <= lut_bits:
                return ints, Fraction(1, 1 << f), True
            break
    if lut_bits is None:
        raise MacforgeError(f"format {fmt.name} has no exact integer form; give lut_bits to quantize its LUT")
    amax = float(np.max(np.abs(v)))
    top = (1 << (lut_bits - 1)) - 1
    unit = Fraction(amax) / top
    ints = np.array([round(Fraction(float(x)) / unit) for x in v], dtype=np.int64)  # Python round: half-even
    return ints, unit, False


@dataclass(frozen=True)
class WeightDecode:
    """How a weight code becomes an integer: ``table[w] - (zp_mask[w] ? zp_scale * z : 0)``."""

    format: str
    table: tuple[int, ...]
    unit: Fraction
    exact: bool
    zp_mask: tuple[bool, ...] | None = None
    zp_scale: int = 0
    zp_max: int = 0

    @property
    def bits(self) -> int:
        return int(math.log2(len(self.table)))

    @property
    def zp_bits(self) -> int:
        return 0 if self.zp_mask is None else max(1, self.zp_max.bit_length())

    def int_range(self) -> tuple[int, int]:
        """Smallest and largest decoded integer over all codes and zero points."""
        t = np.array(self.table, dtype=np.int64)
        if self.zp_mask is None:
            return int(t.min()), int(t.max())
        m = np.array(self.zp_mask)
        lo = np.where(m, t - self.zp_scale * self.zp_max, t)
        return int(min(lo.min(), t.min())), int(t.max())

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(table int64, zp_mask uint8, zp_scale) for the numba kernels."""
        t = np.array(self.table, dtype=np.int64)
        m = np.zeros(len(t), dtype=np.uint8) if self.zp_mask is None else np.array(self.zp_mask, dtype=np.uint8)
        return t, m, int(self.zp_scale)


def weight_decode(fmt: Format | str, lut_bits: int | None = None) -> WeightDecode:
    """The integer decode of a weight format (see module docstring)."""
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    if lut_bits is not None:
        _check_int("lut_bits", lut_bits, *LUT_BITS)
    ints, unit, exact = integer_table(f, lut_bits)
    if int(np.max(np.abs(ints))) >= 1 << (WEIGHT_INT_BITS - 1):
        raise MacforgeError(f"format {f.name}: its exact integer form needs {signed_bits(int(ints.min()), int(ints.max()))} "
                            f"bits (> {WEIGHT_INT_BITS}); use a LUT (lut = 'constant', lut_bits <= {LUT_BITS[1]})")
    if f.zp_codes is None:
        return WeightDecode(f.name, tuple(int(i) for i in ints), unit, exact)
    # zero point z is an integer in value units; in integer units it is z / unit
    zs = Fraction(1) / unit
    if zs.denominator != 1:
        raise MacforgeError(f"format {f.name}: zero point is not an integer number of units")
    return WeightDecode(f.name, tuple(int(i) for i in ints), unit, exact,
                        tuple(bool(b) for b in f.zp_codes), int(zs), f.zero_point_max)


def fractional_shift(dec: WeightDecode) -> int | None:
    """f when ``dec`` decodes exactly in units of 2^-f with f >= 1 (dINT half-units: 1), else
    None: the bits a rounded product drops (``UnitSpec.product_round``)."""
    u = dec.unit
    if not dec.exact or u >= 1 or u.numerator != 1 or u.denominator & (u.denominator - 1):
        return None
    return u.denominator.bit_length() - 1


@dataclass(frozen=True)
class UnitSpec:
    """A datapath: weight format × activation format, lanes, accumulator, pipeline, LUT.

    ``mac``: one product per cycle. ``dot``: ``lanes`` products summed exactly by an adder tree,
    then accumulated. ``dq_group``: decoupleQ group MAC (Σq·a and Σa per group of
    ``group_size``, then ``s·Σqa + z·Σa`` with ``coef_bits``-wide fixed-point s, z carrying
    ``frac_bits`` fractional bits). The accumulator is ``acc_bits`` wide, two's complement,
    with ``overflow`` = ``wrap`` (mod 2^acc_bits) or ``saturate`` (clamp at each add).
    ``latency``: cycles from operands to the updated ``acc`` output.

    ``huffman``: not a MAC but the canonical-Huffman chunk decoder of an entropy-coded weight
    format (``weights`` names an ``EntropyFormat``): its max code length L, symbol width and
    chunk size come from the format; lanes, latency, LUT and accumulator fields do not apply.
    """

    name: str
    kind: UnitKind
    weight_format: str
    act_format: str = "int8"
    lanes: int = 1
    acc_bits: int = 32
    overflow: Overflow = "wrap"
    latency: int = 1
    lut: Literal["none", "programmable", "constant"] = "none"
    lut_bits: int = 8
    group_size: int = 0
    coef_bits: int = 16
    frac_bits: int = 12
    rows: int = 0
    cols: int = 0
    product_round: ProductRound = "exact"
    description: str = ""
    decode: WeightDecode = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _VERILOG_ID.match(self.name):
            raise MacforgeError(f"unit name must be a Verilog identifier (letters, digits, '_'), not {self.name!r}")
        if isinstance(self.weight_format, Format):
            object.__setattr__(self, "weight_format", register_format(self.weight_format).name)
        if not isinstance(self.weight_format, str):
            raise MacforgeError(f"weight_format must be a format name or a Format, not {self.weight_format!r}")
        if not isinstance(self.act_format, str):
            raise MacforgeError(f"act_format must be a format name, not {self.act_format!r}")
        if self.kind not in UNIT_KINDS:
            raise MacforgeError(f"unit kind must be one of {', '.join(UNIT_KINDS)}, not {self.kind!r}")
        if self.kind == "huffman":
            self._check_huffman()
            return
        if self.kind == "systolic":
            _check_int("rows", self.rows, 1, MAX_ARRAY)
            _check_int("cols", self.cols, 1, MAX_ARRAY)
            if self.latency != 1:
                raise MacforgeError(f"a systolic unit's PEs have latency 1, not {self.latency!r}")
            if self.lut == "programmable":
                raise MacforgeError("a systolic unit needs a constant decode: lut must be 'none' or 'constant' "
                                    "(each PE would carry its own programmable LUT)")
        elif self.rows or self.cols:
            raise MacforgeError(f"rows / cols apply to systolic units only, not to a {self.kind}")
        if self.lut not in ("none", "programmable", "constant"):
            raise MacforgeError(f"lut must be 'none', 'programmable' or 'constant', not {self.lut!r}")
        _check_int("lut_bits", self.lut_bits, *LUT_BITS)
        _check_int("coef_bits", self.coef_bits, *COEF_BITS)
        _check_int("frac_bits", self.frac_bits, *FRAC_BITS)
        _check_int("group_size", self.group_size, 0, 1 << 16)
        if self.kind != "dq_group" and self.group_size:
            raise MacforgeError(f"group_size applies to dq_group units only, not to a {self.kind}")
        if self.kind == "dq_group" and self.lut != "none":
            raise MacforgeError("a dq_group unit decodes its integers directly: lut must be 'none'")
        int_range(self.act_format)  # refuse an activation format the datapath cannot take
        if self.overflow not in ("wrap", "saturate"):
            raise MacforgeError(f"overflow must be 'wrap' or 'saturate', not {self.overflow!r}")
        if not _is_int(self.lanes) or not 1 <= self.lanes <= 256 or (self.kind != "dot" and self.lanes != 1):
            raise MacforgeError(f"lanes must be an integer in 1..256 (1 for a {self.kind}), not {self.lanes!r}")
        _check_int("acc_bits", self.acc_bits, 2, 62)
        _check_int("latency", self.latency, 1, 16)
        lut_bits = self.lut_bits if self.lut != "none" else None
        dec = weight_decode(self.weight_format, lut_bits)
        object.__setattr__(self, "decode", dec)
        if self.product_round not in PRODUCT_ROUNDING:
            raise MacforgeError(f"product_round must be one of {', '.join(PRODUCT_ROUNDING)}, not {self.product_round!r}")
        if self.product_round != "exact":
            u = dec.unit
            if self.kind == "dq_group" or self.lut == "programmable" or fractional_shift(dec) is None:
                raise MacforgeError(
                    f"product_round={self.product_round!r} applies to mac/dot/systolic units whose weights decode "
                    f"exactly to a fractional power-of-two unit (dINT half-units); {self.weight_format} "
                    f"{'has no exact integer form' if not dec.exact else f'decodes in units of {u}'}"
                    + (" behind a programmable LUT" if self.lut == "programmable" else ""))
        need = self.product_bits + (self.lanes - 1).bit_length()
        if self.kind == "dq_group":
            if self.group_size < 1:
                raise MacforgeError(f"dq_group unit needs group_size >= 1, not {self.group_size!r}")
            need = self.coef_bits + self.sum_bits
        if self.acc_bits < need:
            raise MacforgeError(
                f"acc_bits={self.acc_bits} cannot hold one {self.kind} result of {self.weight_format} "
                f"× {self.act_format} ({self.lanes} lane(s)): needs >= {need} bits")

    def _check_huffman(self) -> None:
        from .formats import EntropyFormat

        fmt = get_format(self.weight_format)
        if not isinstance(fmt, EntropyFormat):
            raise MacforgeError(f"a huffman unit decodes an entropy-coded format (family 'entropy', e.g. "
                                f"egrid4_L16), not {self.weight_format!r} ({fmt.kind})")
        d = {f.name: f.default for f in fields(UnitSpec) if f.init}
        for key in ("lanes", "latency", "lut", "group_size", "rows", "cols", "product_round", "overflow",
                    "acc_bits", "lut_bits", "coef_bits", "frac_bits"):
            if getattr(self, key) != d[key]:
                raise MacforgeError(f"{key} does not apply to a huffman unit (its widths come from the format "
                                    f"{self.weight_format})")
        object.__setattr__(self, "decode", None)

    @property
    def huffman_params(self) -> dict[str, int]:
        """A huffman unit's decoder parameters: max_len L, symbol_bits S, count_bits (a chunk's
        symbol count), chunk."""
        if self.kind != "huffman":
            raise MacforgeError(f"unit {self.name} is a {self.kind}, not a huffman decoder")
        fmt = get_format(self.weight_format)
        return {"max_len": int(fmt.max_len), "symbol_bits": int(fmt.bits),  # type: ignore[attr-defined]
                "count_bits": int(fmt.chunk).bit_length(), "chunk": int(fmt.chunk)}  # type: ignore[attr-defined]

    # ------------------------------------------------------------ widths
    @property
    def act_range(self) -> tuple[int, int]:
        return int_range(self.act_format)

    @property
    def act_bits(self) -> int:
        lo, hi = self.act_range
        return signed_bits(lo, hi)

    @property
    def weight_int_range(self) -> tuple[int, int]:
        if self.lut == "programmable":  # any lut_bits-wide entry may be written
            return -(1 << (self.lut_bits - 1)), (1 << (self.lut_bits - 1)) - 1
        return self.decode.int_range()

    @property
    def product_shift(self) -> int:
        """Fractional bits each product drops (``product_round`` floor / rne), else 0."""
        if self.product_round == "exact":
            return 0
        return fractional_shift(self.decode) or 0

    @property
    def acc_unit(self) -> Fraction:
        """The value of one accumulator LSB (in units of the weight scale)."""
        return self.decode.unit * (1 << self.product_shift)

    @property
    def exact_product_range(self) -> tuple[int, int]:
        """Range of decoded weight × activation in the weight's integer unit, before rounding."""
        wl, wh = self.weight_int_range
        al, ah = self.act_range
        c = [wl * al, wl * ah, wh * al, wh * ah]
        return min(c), max(c)

    @property
    def product_range(self) -> tuple[int, int]:
        """Range of the product that is accumulated (rounding is monotone: the ends map to ends)."""
        lo, hi = self.exact_product_range
        return (round_product(lo, self.product_shift, self.product_round),
                round_product(hi, self.product_shift, self.product_round))

    @property
    def product_bits(self) -> int:
        return signed_bits(*self.product_range)

    @property
    def sum_bits(self) -> int:
        """dq_group: width of Σq·a (and Σa) over one group."""
        lo, hi = self.product_range
        al, ah = self.act_range
        g = max(self.group_size, 1)
        return max(signed_bits(g * lo, g * hi), signed_bits(g * al, g * ah))

    @property
    def integer_unit(self) -> str:
        u = self.acc_unit
        if u == 1:
            return "integer"
        if u == Fraction(1, 2):
            return "half"
        return f"{float(u):.6g}" if not self.decode.exact else f"2^-{int(math.log2(u.denominator))}"

    def describe(self) -> dict[str, object]:
        if self.kind == "huffman":
            hp = self.huffman_params
            return {
                "name": self.name, "kind": self.kind, "weight_format": self.weight_format, "act_format": None,
                "lanes": 1, "acc_bits": 0, "overflow": "-", "latency": 1, "lut": "none", "lut_bits": None,
                "integer_unit": "symbol", "unit_value": None, "product_round": None, "exact_decode": True,
                "product_bits": None, "weight_int_range": None, "act_range": None, "group_size": None,
                "rows": None, "cols": None, "description": self.description,
                "huffman": {**hp, "buffer_bits": 32 + 2 * hp["max_len"],
                            "throughput": "one symbol per cycle while words are offered and out_ready is high"},
            }
        return {
            "name": self.name, "kind": self.kind, "weight_format": self.weight_format,
            "act_format": self.act_format, "lanes": self.lanes, "acc_bits": self.acc_bits,
            "overflow": self.overflow, "latency": self.latency, "lut": self.lut,
            "lut_bits": self.lut_bits if self.lut != "none" else None,
            "integer_unit": self.integer_unit, "unit_value": str(self.acc_unit),
            "product_round": self.product_round,
            "exact_decode": self.decode.exact, "product_bits": self.product_bits,
            "weight_int_range": list(self.weight_int_range), "act_range": list(self.act_range),
            "group_size": self.group_size or None,
            "rows": self.rows or None, "cols": self.cols or None, "description": self.description,
        }


# ---------------------------------------------------------------- units as data
# The keys of a unit definition (inline ``k=v,...`` string, TOML ``[[unit]]`` table or dict);
# ``weights`` / ``acts`` are the short spellings of ``weight_format`` / ``act_format``.
UNIT_KEYS = ("name", "kind", "weights", "acts", "lanes", "acc_bits", "overflow", "latency", "lut", "lut_bits",
             "group_size", "coef_bits", "frac_bits", "rows", "cols", "pe", "product_round", "description")
_ALIASES = {"weights": "weight_format", "acts": "act_format", "weight_format": "weight_format",
            "act_format": "act_format"}
_INT_KEYS = ("lanes", "acc_bits", "latency", "lut_bits", "group_size", "coef_bits", "frac_bits", "rows", "cols")
# a systolic unit's ``pe`` (a mac unit's name) supplies these fields unless they are given
_PE_FIELDS = ("weight_format", "act_format", "acc_bits", "overflow", "lut", "lut_bits")
_DEFAULTS = {f.name: f.default for f in fields(UnitSpec) if f.init and f.name not in ("name", "kind", "weight_format")}


def parse_unit_string(text: str) -> dict[str, Any]:
    """``'kind=dot,weights=int5,acts=int6,lanes=6'`` -> a definition dict (values still raw)."""
    if not isinstance(text, str) or "=" not in text:
        raise MacforgeError(f"an inline unit spec is 'key=value,...' (keys: {', '.join(UNIT_KEYS)}), not {text!r}")
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, val = part.partition("=")
        key, val = key.strip(), val.strip()
        if not eq or not key or not val:
            raise MacforgeError(f"inline unit spec {text!r}: {part!r} is not key=value")
        if key in out:
            raise MacforgeError(f"inline unit spec {text!r}: key {key!r} given twice")
        out[key] = int(val) if key in _INT_KEYS and re.fullmatch(r"[+-]?\d+", val) else val
    return out


def _fields_of(d: Mapping[str, Any], where: str) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for k, v in d.items():
        if k not in UNIT_KEYS and k not in _ALIASES:
            raise MacforgeError(f"{where}: unknown key {k!r} (known: {', '.join(UNIT_KEYS)})")
        field_name = _ALIASES.get(k, k)
        if field_name in kw:
            raise MacforgeError(f"{where}: {k!r} given twice (weights = weight_format, acts = act_format)")
        if k in _INT_KEYS and not _is_int(v):
            raise MacforgeError(f"{where}: key {k!r}: must be an integer, not {v!r}")
        kw[field_name] = v
    if "kind" not in kw:
        raise MacforgeError(f"{where}: key 'kind' missing ({', '.join(UNIT_KINDS)})")
    pe = kw.pop("pe", None)
    if pe is not None:
        if kw["kind"] != "systolic":
            raise MacforgeError(f"{where}: key 'pe' applies to systolic units only")
        pspec = get_unit(pe) if isinstance(pe, str) else None
        if pspec is None or pspec.kind != "mac":
            raise MacforgeError(f"{where}: key 'pe': must name a mac unit, not {pe!r}")
        for f in _PE_FIELDS:
            kw.setdefault(f, getattr(pspec, f))
    if "weight_format" not in kw:
        raise MacforgeError(f"{where}: key 'weights' missing (a weight format name)")
    return kw


def _identity(kw: Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields that define a datapath (not its name or description), defaults filled in."""
    full = {**_DEFAULTS, **{k: v for k, v in kw.items() if k not in ("name", "description")}}
    full.pop("description", None)
    wf = full["weight_format"]
    full["weight_format"] = wf.name if isinstance(wf, Format) else wf
    return tuple(sorted(full.items()))


def canonical_unit_name(kw: Mapping[str, Any]) -> str:
    """The stable name of an unnamed unit: a named unit's name when the datapath is the same,
    else ``<kind>[lanes]_<weights>_x_<acts>`` plus a tag for every non-default field."""
    ident = _identity(kw)
    for n, d in _UNIT_DEFS.items():
        if _identity(d) == ident:
            return n
    f = dict(ident)
    w = str(f["weight_format"]).replace(".", "p")
    if f["kind"] == "huffman":
        return re.sub(r"[^A-Za-z0-9_]", "_", f"huffman_{w}")
    size = {"dot": f"{f['lanes']}", "systolic": f"{f['rows']}x{f['cols']}"}.get(f["kind"], "")
    name = f"{f['kind']}{size}_{w}_x_{f['act_format']}"
    if f["acc_bits"] != _DEFAULTS["acc_bits"]:
        name += f"_acc{f['acc_bits']}"
    if f["overflow"] != _DEFAULTS["overflow"]:
        name += "_sat" if f["overflow"] == "saturate" else f"_{f['overflow']}"
    if f["latency"] != _DEFAULTS["latency"]:
        name += f"_l{f['latency']}"
    if f["lut"] != "none":
        name += f"_lut{'p' if f['lut'] == 'programmable' else 'c'}{f['lut_bits']}"
    if f["product_round"] != "exact":
        name += f"_p{f['product_round']}"
    if f["kind"] == "dq_group":
        name += f"_g{f['group_size']}"
        if (f["coef_bits"], f["frac_bits"]) != (_DEFAULTS["coef_bits"], _DEFAULTS["frac_bits"]):
            name += f"_c{f['coef_bits']}f{f['frac_bits']}"
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def unit_from_spec(spec: str | Mapping[str, Any], *, origin: str | None = None) -> UnitSpec:
    """A UnitSpec from an inline ``'kind=...,weights=...'`` string or a definition dict (a TOML
    ``[[unit]]`` table). Without ``name`` the unit gets its canonical name."""
    if isinstance(spec, str):
        where = origin or f"unit {spec!r}"
        d: Mapping[str, Any] = parse_unit_string(spec)
    elif isinstance(spec, Mapping):
        d = spec
        where = origin or f"unit {dict(spec).get('name', '(unnamed)')!r}"
    else:
        raise MacforgeError(f"a unit spec is a 'key=value,...' string or a table, not {type(spec).__name__}")
    kw = _fields_of(d, where)
    if "name" not in kw:
        kw["name"] = canonical_unit_name(kw)
        if kw["name"] in _UNIT_DEFS and "description" not in kw:
            return get_unit(kw["name"])  # the named shortcut itself
    try:
        return UnitSpec(**kw)
    except MacforgeError as e:
        raise MacforgeError(f"{where}: {e}") from None


def as_spec(unit: "UnitSpec | str | Mapping[str, Any]") -> UnitSpec:
    """A UnitSpec from a spec, a unit name, an inline ``'kind=...'`` string or a definition dict."""
    if isinstance(unit, UnitSpec):
        return unit
    if isinstance(unit, str):
        return unit_from_spec(unit) if "=" in unit else get_unit(unit)
    if isinstance(unit, Mapping):
        return unit_from_spec(unit)
    raise MacforgeError(f"unit must be a UnitSpec, a unit name or an inline spec, not {type(unit).__name__}")


_LUT_CONST_FORMATS = ("nf4", "fp4_e2m1", "crd4_normal_absmax64")
_DOT_FORMATS = ("int8", "int4", "dint4_asym", "dint4_sym", "lut4")
_DOT_LANES = (4, 8, 16)


def _unit_defs() -> dict[str, dict[str, Any]]:
    """The named units: shortcuts written with the same keys as a user's ``[[unit]]`` table."""
    t: dict[str, dict[str, Any]] = {
        "mac_int8xint8": dict(kind="mac", weights="int8", description="INT8 × INT8 MAC (the baseline)"),
        "mac_int4xint8": dict(kind="mac", weights="int4", description="INT4 × INT8 MAC"),
        "mac_dint4_asym_xint8": dict(kind="mac", weights="dint4_asym",
                                     description="dINT4 Variant A × INT8, zero point as an input, half-units"),
        "mac_dint4_sym_xint8": dict(kind="mac", weights="dint4_sym",
                                    description="dINT4 Variant B × INT8, half-units"),
        "mac_fp8_e4m3xint8": dict(kind="mac", weights="fp8_e4m3",
                                  description="FP8 E4M3 weight × INT8, exact fixed-point accumulation in "
                                              "units of 2^-9 (NaN codes contribute 0); the FP-vs-INT anchor"),
        "mac_lut4xint8": dict(kind="mac", weights="nf4", lut="programmable",
                              description="16-entry programmable signed LUT × INT8 (reset content: NF4)"),
        "dq_int2_group_mac": dict(kind="dq_group", weights="decoupleq_int2", group_size=64,
                                  description="decoupleQ group MAC: s·Σq·a + z·Σa per group of 64"),
        # 2×2 / 4×4 output-stationary arrays: every (w, a) pair goes through every PE in a run
        "systolic2x2_int8_x_int8": dict(kind="systolic", rows=2, cols=2, weights="int8",
                                        description="2×2 output-stationary array of INT8 × INT8 MAC PEs"),
        "systolic4x4_dint4_sym_x_int8": dict(kind="systolic", rows=4, cols=4, weights="dint4_sym",
                                             description="4×4 output-stationary array of dINT4-B × INT8 PEs"),
        "huffman_egrid4_L16": dict(kind="huffman", weights="egrid4_L16",
                                   description="canonical-Huffman chunk decoder of egrid4_L16: codes of at most "
                                               "16 bits, 8-bit symbols, one symbol per cycle"),
    }
    for f in _LUT_CONST_FORMATS:
        t[f"mac_lut4c_{f}xint8"] = dict(kind="mac", weights=f, lut="constant",
                                        description=f"constant LUT baked from {f} × INT8")
    for f in _DOT_FORMATS:
        mac_name = "mac_" + (f"{f}_xint8" if f.startswith("dint") else f"{f}xint8")
        for lanes in _DOT_LANES:
            extra = {k: v for k, v in t[mac_name].items() if k in ("weights", "lut")}
            t[mac_name.replace("mac_", f"dot{lanes}_")] = dict(kind="dot", lanes=lanes,
                                             description=f"{lanes}-lane {f} × INT8 dot-product PE", **extra)
    return {n: _fields_of(d, f"unit {n!r}") for n, d in t.items()}


_UNIT_DEFS = _unit_defs()
_USER_UNITS: dict[str, UnitSpec] = {}


def unit_names() -> list[str]:
    """Named units, then user-registered ones."""
    return list(_UNIT_DEFS) + list(_USER_UNITS)


def user_unit_names() -> list[str]:
    return list(_USER_UNITS)


def get_unit(name: str, **overrides: object) -> UnitSpec:
    """The named (or user-registered) unit; keyword overrides (acc_bits, overflow, latency, ...)
    make a variant with the same name."""
    if not isinstance(name, str):
        raise MacforgeError(f"a unit name must be a string, not {type(name).__name__} {name!r}")
    if name in _USER_UNITS:
        u = _USER_UNITS[name]
        return replace(u, **overrides) if overrides else u  # type: ignore[arg-type]
    if name not in _UNIT_DEFS:
        raise UnknownNameError("unit", name, unit_names(),
                               "(or an inline spec 'kind=mac,weights=FMT,acts=int8,...')")
    return _named_unit(name, tuple(sorted(overrides.items())))


@lru_cache(maxsize=None)
def _named_unit(name: str, overrides: tuple[tuple[str, Any], ...]) -> UnitSpec:
    return UnitSpec(name=name, **{**_UNIT_DEFS[name], **dict(overrides)})


def register_unit(unit: "UnitSpec | str | Mapping[str, Any]") -> UnitSpec:
    """Make a unit known by its name to ``get_unit`` / ``unit_names`` (and so to every command).
    An identical re-definition is a no-op; a different one under a known name is refused."""
    spec = as_spec(unit)
    prev = _USER_UNITS.get(spec.name)
    if prev is None and spec.name in _UNIT_DEFS:
        prev = get_unit(spec.name)
    if prev is not None:
        if _identity(_spec_fields(prev)) != _identity(_spec_fields(spec)):
            raise MacforgeError(f"unit {spec.name!r} is already defined with a different datapath; choose another name")
        return prev
    _USER_UNITS[spec.name] = spec
    return spec


def _spec_fields(spec: UnitSpec) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in fields(UnitSpec) if f.init}


def load_units(path: str | Path, *, register: bool = True) -> list[UnitSpec]:
    """Every ``[[unit]]`` table of a TOML file as a UnitSpec (registered, all or none)."""
    from .formats._userdef import key_line, read_toml

    doc, text = read_toml(path, "unit", ("unit",))
    tables = doc.get("unit", [])
    if not isinstance(tables, list) or not tables:
        raise MacforgeError(f"{path}: no [[unit]] tables")
    specs = []
    for i, t in enumerate(tables):
        name = t.get("name") if isinstance(t, Mapping) else None
        try:
            specs.append(unit_from_spec(t, origin=f"{path}: unit {name or f'#{i + 1}'!r}"))
        except MacforgeError as e:
            m = re.search(r"key '([A-Za-z_]+)'", str(e))
            line = key_line(text, m.group(1), name) if m else None
            msg = str(e)
            raise MacforgeError(msg.replace(f"{path}:", f"{path}:{line}:", 1) if line else msg) from None
    seen: dict[str, UnitSpec] = {}
    for s in specs:
        if s.name in seen and _identity(_spec_fields(seen[s.name])) != _identity(_spec_fields(s)):
            raise MacforgeError(f"{path}: unit {s.name!r} defined twice with different datapaths")
        seen[s.name] = s
    if register:
        for s in seen.values():  # check all against the registry before registering any
            prev = _USER_UNITS.get(s.name) or (get_unit(s.name) if s.name in _UNIT_DEFS else None)
            if prev is not None and _identity(_spec_fields(prev)) != _identity(_spec_fields(s)):
                raise MacforgeError(f"{path}: unit {s.name!r} is already defined with a different datapath")
        for s in seen.values():
            register_unit(s)
    return specs
