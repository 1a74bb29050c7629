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
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import numpy as np

from .errors import MacforgeError, UnknownNameError
from .formats import Format, get_format

__all__ = [
    "WeightDecode",
    "UnitSpec",
    "weight_decode",
    "integer_table",
    "get_unit",
    "unit_names",
    "as_spec",
    "signed_bits",
    "int_range",
]

Overflow = Literal["wrap", "saturate"]
UnitKind = Literal["mac", "dot", "dq_group"]


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in [lo, hi]."""
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b


def int_range(fmt_name: str) -> tuple[int, int]:
    """Range of the signed-integer activation format ``intN``."""
    fmt = get_format(fmt_name)
    if fmt.kind != "int" or fmt.values is None or not np.all(fmt.values == np.round(fmt.values)):
        raise MacforgeError(f"activation format must be a signed integer format int2..int8, not {fmt_name!r}")
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
    ints, unit, exact = integer_table(f, lut_bits)
    if f.zp_codes is None:
        return WeightDecode(f.name, tuple(int(i) for i in ints), unit, exact)
    # zero point z is an integer in value units; in integer units it is z / unit
    zs = Fraction(1) / unit
    if zs.denominator != 1:
        raise MacforgeError(f"format {f.name}: zero point is not an integer number of units")
    return WeightDecode(f.name, tuple(int(i) for i in ints), unit, exact,
                        tuple(bool(b) for b in f.zp_codes), int(zs), f.zero_point_max)


@dataclass(frozen=True)
class UnitSpec:
    """A datapath: weight format × activation format, lanes, accumulator, pipeline, LUT.

    ``mac``: one product per cycle. ``dot``: ``lanes`` products summed exactly by an adder tree,
    then accumulated. ``dq_group``: decoupleQ group MAC (Σq·a and Σa per group of
    ``group_size``, then ``s·Σqa + z·Σa`` with ``coef_bits``-wide fixed-point s, z carrying
    ``frac_bits`` fractional bits). The accumulator is ``acc_bits`` wide, two's complement,
    with ``overflow`` = ``wrap`` (mod 2^acc_bits) or ``saturate`` (clamp at each add).
    ``latency``: cycles from operands to the updated ``acc`` output.
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
    description: str = ""
    decode: WeightDecode = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("mac", "dot", "dq_group"):
            raise MacforgeError(f"unit kind must be mac, dot or dq_group, not {self.kind!r}")
        if self.overflow not in ("wrap", "saturate"):
            raise MacforgeError(f"overflow must be 'wrap' or 'saturate', not {self.overflow!r}")
        if not isinstance(self.lanes, int) or self.lanes < 1 or (self.kind == "mac" and self.lanes != 1):
            raise MacforgeError(f"lanes must be a positive integer (1 for a mac), not {self.lanes!r}")
        if not isinstance(self.acc_bits, int) or not 2 <= self.acc_bits <= 62:
            raise MacforgeError(f"acc_bits must be an integer in 2..62, not {self.acc_bits!r}")
        if not isinstance(self.latency, int) or self.latency < 1:
            raise MacforgeError(f"latency must be a positive integer, not {self.latency!r}")
        lut_bits = self.lut_bits if self.lut != "none" else None
        dec = weight_decode(self.weight_format, lut_bits)
        object.__setattr__(self, "decode", dec)
        need = self.product_bits + (self.lanes - 1).bit_length()
        if self.kind == "dq_group":
            if self.group_size < 1:
                raise MacforgeError(f"dq_group unit needs group_size >= 1, not {self.group_size!r}")
            need = self.coef_bits + self.sum_bits
        if self.acc_bits < need:
            raise MacforgeError(
                f"acc_bits={self.acc_bits} cannot hold one {self.kind} result of {self.weight_format} "
                f"× {self.act_format} ({self.lanes} lane(s)): needs >= {need} bits")

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
    def product_range(self) -> tuple[int, int]:
        wl, wh = self.weight_int_range
        al, ah = self.act_range
        c = [wl * al, wl * ah, wh * al, wh * ah]
        return min(c), max(c)

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
        u = self.decode.unit
        if u == 1:
            return "integer"
        if u == Fraction(1, 2):
            return "half"
        return f"{float(u):.6g}" if not self.decode.exact else f"2^-{int(math.log2(u.denominator))}"

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "kind": self.kind, "weight_format": self.weight_format,
            "act_format": self.act_format, "lanes": self.lanes, "acc_bits": self.acc_bits,
            "overflow": self.overflow, "latency": self.latency, "lut": self.lut,
            "lut_bits": self.lut_bits if self.lut != "none" else None,
            "integer_unit": self.integer_unit, "unit_value": str(self.decode.unit),
            "exact_decode": self.decode.exact, "product_bits": self.product_bits,
            "weight_int_range": list(self.weight_int_range), "act_range": list(self.act_range),
            "group_size": self.group_size or None, "description": self.description,
        }


_LUT_CONST_FORMATS = ("nf4", "fp4_e2m1", "crd4_normal_absmax64")
_DOT_FORMATS = ("int8", "int4", "dint4_asym", "dint4_sym", "lut4")
_DOT_LANES = (4, 8, 16)


def _unit_table() -> dict[str, dict[str, object]]:
    t: dict[str, dict[str, object]] = {
        "mac_int8xint8": dict(kind="mac", weight_format="int8", description="INT8 × INT8 MAC (the baseline)"),
        "mac_int4xint8": dict(kind="mac", weight_format="int4", description="INT4 × INT8 MAC"),
        "mac_dint4_asym_xint8": dict(kind="mac", weight_format="dint4_asym",
                                     description="dINT4 Variant A × INT8, zero point as an input, half-units"),
        "mac_dint4_sym_xint8": dict(kind="mac", weight_format="dint4_sym",
                                    description="dINT4 Variant B × INT8, half-units"),
        "mac_fp8_e4m3xint8": dict(kind="mac", weight_format="fp8_e4m3",
                                  description="FP8 E4M3 weight × INT8, exact fixed-point accumulation in "
                                              "units of 2^-9 (NaN codes contribute 0); the FP-vs-INT anchor"),
        "mac_lut4xint8": dict(kind="mac", weight_format="nf4", lut="programmable",
                              description="16-entry programmable signed LUT × INT8 (reset content: NF4)"),
        "dq_int2_group_mac": dict(kind="dq_group", weight_format="decoupleq_int2", group_size=64,
                                  description="decoupleQ group MAC: s·Σq·a + z·Σa per group of 64"),
    }
    for f in _LUT_CONST_FORMATS:
        t[f"mac_lut4c_{f}xint8"] = dict(kind="mac", weight_format=f, lut="constant",
                                        description=f"constant LUT baked from {f} × INT8")
    for f in _DOT_FORMATS:
        mac_name = "mac_" + (f"{f}_xint8" if f.startswith("dint") else f"{f}xint8")
        for lanes in _DOT_LANES:
            extra = {k: v for k, v in t[mac_name].items() if k in ("weight_format", "lut")}
            t[mac_name.replace("mac_", f"dot{lanes}_")] = dict(kind="dot", lanes=lanes,
                                             description=f"{lanes}-lane {f} × INT8 dot-product PE", **extra)
    return t


_UNITS = _unit_table()


def as_spec(unit: "UnitSpec | str") -> UnitSpec:
    """A UnitSpec from a spec or a registered unit name."""
    if isinstance(unit, UnitSpec):
        return unit
    if isinstance(unit, str):
        return get_unit(unit)
    raise MacforgeError(f"unit must be a UnitSpec or a unit name, not {type(unit).__name__}")


def unit_names() -> list[str]:
    return list(_UNITS)


@lru_cache(maxsize=None)
def get_unit(name: str, **overrides: object) -> UnitSpec:
    """The named unit; keyword overrides (acc_bits, overflow, latency, ...) make a variant."""
    if name not in _UNITS:
        raise UnknownNameError("unit", name, unit_names())
    kw = dict(_UNITS[name])
    kw.update(overrides)
    return UnitSpec(name=name, **kw)  # type: ignore[arg-type]
