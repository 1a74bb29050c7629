"""Weight decode logic generated from ``UnitSpec.decode`` (a ``models.units.WeightDecode``).

The decode table is the only description of what a code means. This module looks at the table
and picks the logic a hardware engineer would build for it, falling back to a constant ROM:

``twos``          the table is two's complement of the code bits (INTn): sign-extend the code.
``sign_mag_half`` sign bit + magnitude code m with m = 0 → 0, m = 1 → the half-unit special
                  (+0.5), m ≥ 2 → integer m - 1 (dINT4 Variant B): the decoder emits sign, a
                  (bits-1)-bit integer magnitude and a half flag; the multiplier is a small
                  magnitude × a with one fractional bit (half-units) plus the half code as a
                  shifted copy of a, then a conditional negate.
``zp_linear``     zero-point codes are ``zp_scale · c`` (dINT4 Variant A: 2·(q - z) in
                  half-units); the other codes (the ±0.5 specials) come from a tiny case table.
``fp``            a sign + ebits + mbits minifloat (Format kind ``fp``, no zero point, no LUT):
                  the decoder emits sign, significand ``sig`` = (e == 0 ? 0.m : 1.m) as an
                  unsigned (mbits+1)-bit integer and ``exp`` = max(e, 1) - 1; the lane product
                  is sig × a (a small multiplier), a conditional negate, then a barrel left
                  shift by exp (+ a constant). NaN codes decode as sig = 0 (they contribute 0).
                  The fields are derived from the value table and checked to reproduce the
                  decode table for every code (``minifloat_fields``), else the unit is refused.
``rom``           anything else: a constant case table, minus ``zp_scale · z`` on zero-point codes.
``lut``           programmable LUT: the entries come from a register file (an input here).

Whatever the style, the decoded integer equals ``table[w] - (zp_mask[w] ? zp_scale·z : 0)`` for
every code and zero point; tests/test_rtl_units.py checks that exhaustively.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models.errors import MacforgeError
from models.formats import Format, get_format
from models.units import PIPELINE_ORDER, UnitSpec, WeightDecode, pipeline_cuts, signed_bits

from ._fault import Fault, fault_is

__all__ = ["PIPELINE_ORDER", "DecodePlan", "DecodeStyle", "MinifloatFields", "WeightDecoder", "decode_plan",
           "decoded_value", "minifloat_fields", "pipeline_cuts"]

DecodeStyle = Literal["twos", "sign_mag_half", "zp_linear", "fp", "rom", "lut"]


def _twos_table(bits: int) -> tuple[int, ...]:
    return tuple(c if c < (1 << (bits - 1)) else c - (1 << bits) for c in range(1 << bits))


def _is_sign_mag_half(table: tuple[int, ...], bits: int) -> bool:
    if bits < 3:
        return False
    half = 1 << (bits - 1)
    pos = table[:half]
    want = (0, 1) + tuple(2 * (m - 1) for m in range(2, half))
    return pos == want and all(table[half + m] == -pos[m] for m in range(half))


@dataclass(frozen=True)
class MinifloatFields:
    """A sign + ``ebits`` + ``mbits`` minifloat code as the ``fp`` decoder splits it.

    Code c = s·2^(ebits+mbits) + e·2^mbits + m has value (-1)^s · sig · 2^(max(e,1) - bias - mbits)
    with sig = (e == 0 ? m : 2^mbits + m); in the unit's integer unit (2^-f, f = bias + mbits - 1
    + ``shift0``) that is (-1)^s · sig · 2^(max(e,1) - 1 + shift0). ``nan_codes`` decode to 0.
    """

    ebits: int
    mbits: int
    bias: int
    shift0: int
    nan_codes: tuple[int, ...]

    @property
    def bits(self) -> int:
        return 1 + self.ebits + self.mbits

    def split(self, code: int) -> tuple[int, int, int]:
        """(sign, sig, exp) the decoder emits for ``code``: exp = max(e,1) - 1, NaN: sig = 0."""
        s = code >> (self.ebits + self.mbits)
        e = (code >> self.mbits) & ((1 << self.ebits) - 1)
        m = code & ((1 << self.mbits) - 1)
        sig = 0 if code in self.nan_codes else (m if e == 0 else (1 << self.mbits) | m)
        return s, sig, max(e, 1) - 1

    def value(self, code: int) -> int:
        """The integer the fields stand for (the decode table entry they must reproduce)."""
        s, sig, exp = self.split(code)
        v = sig << (exp + self.shift0)
        return -v if s else v


_EM_NAME = re.compile(r"e(\d+)m(\d+)")


def minifloat_fields(fmt: Format, decode: WeightDecode) -> MinifloatFields:
    """Sign/exponent/mantissa fields and bias of minifloat ``fmt``, derived from its value table
    (the ``eXmY`` in its name, when there is one, is the only split tried) and checked to
    reproduce ``decode.table`` exactly for every code; MacforgeError otherwise."""
    bits = fmt.bits
    values = np.asarray(fmt.values, dtype=np.float64)
    nan = np.isnan(values)
    table = tuple(int(v) for v in decode.table)
    codes = np.arange(1 << bits)
    hint = _EM_NAME.search(fmt.name)
    splits = [int(hint.group(1))] if hint and 1 + int(hint.group(1)) + int(hint.group(2)) == bits \
        else list(range(1, bits))
    unit = Fraction(decode.unit)
    f = unit.denominator.bit_length() - 1
    exact = decode.exact and decode.zp_mask is None and unit.numerator == 1 and unit.denominator == 1 << f
    for ebits in splits if exact else []:
        mbits = bits - 1 - ebits
        # bias from the smallest normal, 2^(1 - bias) at e = 1, m = 0
        v_min_normal = float(values[1 << mbits])
        if not (np.isfinite(v_min_normal) and v_min_normal > 0):
            continue
        lg = math.log2(v_min_normal)
        if lg != int(lg):
            continue
        bias = 1 - int(lg)
        s = codes >> (ebits + mbits)
        e = (codes >> mbits) & ((1 << ebits) - 1)
        m = codes & ((1 << mbits) - 1)
        sig = np.where(e == 0, m, (1 << mbits) + m).astype(np.float64)
        want = np.where(s == 1, -1.0, 1.0) * sig * np.exp2(np.maximum(e, 1) - bias - mbits)
        if not np.array_equal(values[~nan], want[~nan]):
            continue
        shift0 = f - (bias + mbits - 1)
        if shift0 < 0:
            continue
        fields = MinifloatFields(ebits, mbits, bias, shift0, tuple(int(c) for c in codes[nan]))
        if tuple(fields.value(c) for c in range(1 << bits)) == table:
            return fields
    raise MacforgeError(f"format {fmt.name}: its decode table is not a sign + exponent + mantissa minifloat "
                        f"in a power-of-two integer unit; no fp decode")


@dataclass(frozen=True)
class DecodePlan:
    """How one unit's weight codes become integers (see the module docstring).

    ``table``, ``zp_mask``, ``zp_scale`` are ``spec.decode``'s; ``special_fault_code`` is the
    code a ``dint_special`` fault makes decode as +2 instead of +1 (None: no fault).
    ``wi_range`` is the decoded integer's range over *every port value*: every code, every
    ``z`` the port can carry (not just 0..zp_max) and every LUT entry lut_bits can hold.
    ``fp``: the minifloat fields (``fp`` style only). ``product_shift`` / ``product_round``:
    how each exact product is reduced to the accumulator's unit (``UnitSpec.product_round``).
    """

    style: DecodeStyle
    bits: int
    table: tuple[int, ...]
    zp_mask: tuple[bool, ...] | None
    zp_scale: int
    zp_bits: int
    lut_bits: int | None
    special_fault_code: int | None
    wi_range: tuple[int, int]
    fp: MinifloatFields | None = None
    product_shift: int = 0  # fractional bits every product drops (spec.product_round)
    product_round: str = "exact"
    pipeline: tuple[str, ...] = ()  # register levels inside the lane product ("split", "operands")
    reset_less: bool = False  # fault reset_pipeline: the pipeline registers ignore rst
    zp_sign_fault: bool = False  # fault zp_sign: zero-point codes add zp_scale·z
    fp_exponent_fault: bool = False  # fault fp_exponent: normal codes' exponent one too large

    @property
    def has_zp(self) -> bool:
        return self.zp_mask is not None

    @property
    def output_names(self) -> tuple[str, ...]:
        """The decoder's output ports (``decoded_value`` turns their values into the integer)."""
        if self.style == "sign_mag_half":
            return ("sign", "mag", "half")
        if self.style == "fp":
            return ("sign", "sig", "exp")
        return ("wi",)

    @property
    def wi_bits(self) -> int:
        return signed_bits(*self.wi_range)

    def faulty_table(self) -> tuple[int, ...]:
        """The constant table the hardware implements (a dint_special fault applied, if any)."""
        if self.special_fault_code is None:
            return self.table
        t = list(self.table)
        t[self.special_fault_code] = 2
        return tuple(t)

    @property
    def zp_sign(self) -> int:
        """How zp_scale·z enters a zero-point code's value: -1 (right), +1 (fault zp_sign)."""
        return 1 if self.zp_sign_fault else -1


def _special_code(spec: UnitSpec) -> int:
    """The positive half-unit special (+0.5): value +1 in half-units, outside the zp codes."""
    dec = spec.decode
    if dec.unit == Fraction(1, 2):
        for c, v in enumerate(dec.table):
            if v == 1 and (dec.zp_mask is None or not dec.zp_mask[c]):
                return c
    raise MacforgeError(f"fault dint_special needs a unit with a +0.5 half-unit special code; "
                        f"{spec.name} ({spec.weight_format}) has none")


def decode_plan(spec: UnitSpec, fault: Fault | None = None) -> DecodePlan:
    """Pick the decode logic for ``spec`` (see the module docstring)."""
    dec = spec.decode
    table = tuple(int(v) for v in dec.table)
    bits = dec.bits
    programmable = spec.lut == "programmable"
    special = _special_code(spec) if fault is not None and fault.kind == "dint_special" else None
    if programmable and special is not None:
        raise MacforgeError(f"fault dint_special cannot target the programmable LUT of {spec.name}")
    if fault_is(fault, "zp_sign") and dec.zp_mask is None:
        raise MacforgeError(f"fault zp_sign needs a zero-point weight format; {spec.name} "
                            f"({spec.weight_format}) has none")
    style: DecodeStyle
    fp: MinifloatFields | None = None
    if programmable:
        style = "lut"
    elif dec.zp_mask is None and spec.lut == "none" and (wfmt := get_format(spec.weight_format)).kind == "fp":
        fp = minifloat_fields(wfmt, dec)
        if special is not None:
            raise MacforgeError(f"fault dint_special cannot target the fp decoder of {spec.name}")
        style = "fp"
    elif dec.zp_mask is None and table == _twos_table(bits):
        style = "twos"
    elif dec.zp_mask is None and _is_sign_mag_half(table, bits):
        style = "sign_mag_half"
    elif dec.zp_mask is not None and all(table[c] == dec.zp_scale * c
                                         for c in range(len(table)) if dec.zp_mask[c]):
        style = "zp_linear"
    else:
        style = "rom"
    if fault_is(fault, "fp_exponent") and style != "fp":
        raise MacforgeError(f"fault fp_exponent needs an fp-decoded weight format; {spec.name} decodes "
                            f"{spec.weight_format} as {style}")
    zsign = 1 if fault_is(fault, "zp_sign") else -1
    zp_bits = dec.zp_bits
    if programmable:
        lb = spec.lut_bits
        entries = [-(1 << (lb - 1)), (1 << (lb - 1)) - 1]
        masked = dec.zp_mask is not None and any(dec.zp_mask)
        unmasked = dec.zp_mask is None or not all(dec.zp_mask)
        lo_hi: list[int] = []
        if unmasked:
            lo_hi += entries
        if masked:
            zmax = (1 << zp_bits) - 1
            lo_hi += [*entries, entries[0] + zsign * dec.zp_scale * zmax, entries[1] + zsign * dec.zp_scale * zmax]
    else:
        t = table if special is None else tuple(2 if c == special else v for c, v in enumerate(table))
        if fp is not None and fault_is(fault, "fp_exponent"):  # normal codes (e >= 1) doubled
            t = tuple(2 * v if (c >> fp.mbits) & ((1 << fp.ebits) - 1) else v for c, v in enumerate(t))
        zmax = (1 << zp_bits) - 1 if dec.zp_mask is not None else 0
        lo_hi = []
        for c, v in enumerate(t):
            lo_hi.append(v)
            if dec.zp_mask is not None and dec.zp_mask[c]:
                lo_hi.append(v + zsign * dec.zp_scale * zmax)
    wi_range = (min(lo_hi), max(lo_hi))
    inner = tuple(c for c in pipeline_cuts(spec) if c != "term")
    return DecodePlan(style, bits, table, dec.zp_mask, int(dec.zp_scale), zp_bits,
                      spec.lut_bits if programmable else None, special, wi_range, fp,
                      spec.product_shift, spec.product_round, inner, fault_is(fault, "reset_pipeline"),
                      fault_is(fault, "zp_sign"), fault_is(fault, "fp_exponent"))


def _member_of(m: Module, code: Signal, codes: list[int], bits: int, name: str) -> Signal:
    """1 when ``code`` is one of ``codes``: a comparator for a prefix 0..N-1, else a case."""
    hit = Signal(name=name)
    n = len(codes)
    if n == 0:
        pass
    elif n == 1 << bits:
        m.d.comb += hit.eq(1)
    elif codes == list(range(n)):
        m.d.comb += hit.eq(code < n)
    else:
        with m.Switch(code), m.Case(*codes):
            m.d.comb += hit.eq(1)
    return hit


def _case_table(m: Module, code: Signal, out: Signal, values: dict[int, int]) -> None:
    """``out = values[code]`` as one case per distinct value (codes absent -> 0)."""
    by_value: dict[int, list[int]] = {}
    for c, v in values.items():
        by_value.setdefault(v, []).append(c)
    with m.Switch(code):
        for v, codes in sorted(by_value.items()):
            if v != 0:
                with m.Case(*codes):
                    m.d.comb += out.eq(v)


class WeightDecoder(wiring.Component):
    """Combinational weight decode of one lane (style chosen by ``decode_plan``).

    Ports: ``w`` (code), ``z`` (zero point, zero-point formats only), ``lut`` (the LUT entries,
    programmable units only). Output: ``wi`` (signed integer in the unit's integer unit), or for
    ``sign_mag_half`` the fields ``sign``, ``mag`` (integer magnitude) and ``half`` (the +-0.5
    special), value = (-1)^sign · (2·mag + half) half-units, or for ``fp`` the fields ``sign``,
    ``sig`` (unsigned mbits+1 bits, 0 for NaN codes) and ``exp`` (unsigned ebits bits),
    value = (-1)^sign · sig · 2^(exp + shift0). No clock; latency 0.
    """

    def __init__(self, plan: DecodePlan) -> None:
        self.plan = plan
        ports: dict[str, object] = {"w": In(unsigned(plan.bits))}
        if plan.has_zp:
            ports["z"] = In(unsigned(plan.zp_bits))
        if plan.style == "lut":
            assert plan.lut_bits is not None
            ports["lut"] = In(data.ArrayLayout(signed(plan.lut_bits), 1 << plan.bits))
        if plan.style == "sign_mag_half":
            ports.update(sign=Out(1), mag=Out(unsigned(plan.bits - 1)), half=Out(1))
        elif plan.style == "fp":
            assert plan.fp is not None
            ports.update(sign=Out(1), sig=Out(unsigned(plan.fp.mbits + 1)), exp=Out(unsigned(plan.fp.ebits)))
        else:
            ports["wi"] = Out(signed(plan.wi_bits))
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self.plan
        n = 1 << p.bits
        zp_codes = [c for c in range(n) if p.zp_mask is not None and p.zp_mask[c]]
        if p.style == "twos":
            m.d.comb += self.wi.eq(self.w.as_signed())
        elif p.style == "sign_mag_half":
            hb = p.bits - 1
            mcode = self.w[:hb]
            m.d.comb += [self.sign.eq(self.w[hb]),
                         self.half.eq(mcode == 1),
                         self.mag.eq(Mux(mcode >= 2, mcode - 1, 0))]
            if p.special_fault_code is not None:  # injected bug: +0.5 decodes as +1.0
                with m.If((mcode == 1) & ~self.w[hb]):
                    m.d.comb += [self.half.eq(0), self.mag.eq(1)]
        elif p.style == "fp":
            assert p.fp is not None
            eb, mb = p.fp.ebits, p.fp.mbits
            e = self.w[mb:mb + eb]
            mant = self.w[:mb]
            normal = e != 0
            # NaN codes (E4M3: S.1111.111) contribute 0: a comparator on the magnitude bits
            # when the NaN set is the same for both signs, else on the whole code
            mags = sorted({c & ((1 << (p.bits - 1)) - 1) for c in p.fp.nan_codes})
            if sorted(p.fp.nan_codes) == sorted(mg | sb for mg in mags for sb in (0, 1 << (p.bits - 1))):
                mag_code = Signal(p.bits - 1, name="mag_code")
                m.d.comb += mag_code.eq(self.w[:p.bits - 1])
                is_nan = _member_of(m, mag_code, mags, p.bits - 1, "is_nan")
            else:
                is_nan = _member_of(m, self.w, list(p.fp.nan_codes), p.bits, "is_nan")
            # injected bug fp_exponent: the bias is off by one for normal codes
            exp_normal = e if p.fp_exponent_fault else e - 1
            m.d.comb += [self.sign.eq(self.w[p.bits - 1]),
                         self.sig.eq(Mux(is_nan, 0, Cat(mant, normal))),
                         self.exp.eq(Mux(normal, exp_normal, 0))]
        elif p.style == "zp_linear":
            table = p.faulty_table()
            is_zp = _member_of(m, self.w, zp_codes, p.bits, "is_zp")
            special = Signal(signed(p.wi_bits))
            _case_table(m, self.w, special, {c: table[c] for c in range(n) if c not in zp_codes})
            diff = self.w + self.z if p.zp_sign_fault else self.w - self.z  # signed, exact
            shift = p.zp_scale.bit_length() - 1
            lin = diff << shift if p.zp_scale == 1 << shift else diff * p.zp_scale
            m.d.comb += self.wi.eq(Mux(is_zp, lin, special))
        else:  # rom, lut
            base = Signal(signed(max(p.wi_bits, p.lut_bits or 0)))
            if p.style == "lut":
                m.d.comb += base.eq(self.lut[self.w])
            else:
                table = p.faulty_table()
                _case_table(m, self.w, base, dict(enumerate(table)))
            if p.has_zp and zp_codes:
                is_zp = _member_of(m, self.w, zp_codes, p.bits, "is_zp")
                zterm = Mux(is_zp, self.z * p.zp_scale, 0)
                m.d.comb += self.wi.eq(base + zterm if p.zp_sign_fault else base - zterm)
            else:
                m.d.comb += self.wi.eq(base)
        return m


def decoded_value(plan: DecodePlan, outputs: dict[str, int]) -> int:
    """The integer a decoder's output port values stand for (used by tests and the docs)."""
    if plan.style == "sign_mag_half":
        v = 2 * outputs["mag"] + outputs["half"]
        return -v if outputs["sign"] else v
    if plan.style == "fp":
        assert plan.fp is not None
        v = outputs["sig"] << (outputs["exp"] + plan.fp.shift0)
        return -v if outputs["sign"] else v
    return outputs["wi"]

