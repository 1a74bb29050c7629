"""Shared datapath pieces: lane product, exact adder tree, pipeline + accumulator."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed

from models.errors import MacforgeError
from models.units import UnitSpec, round_product, signed_bits

from ._decode import DecodePlan, WeightDecoder
from ._fault import Fault

__all__ = ["accumulate", "accumulated_bits", "adder_tree", "lane_product", "product_bits", "product_range"]


def product_range(plan: DecodePlan, act_range: tuple[int, int]) -> tuple[int, int]:
    """Exact range of decoded weight × activation over every port value."""
    (wl, wh), (al, ah) = plan.wi_range, act_range
    c = [wl * al, wl * ah, wh * al, wh * ah]
    return min(c), max(c)


def product_bits(plan: DecodePlan, spec: UnitSpec) -> int:
    """Exact product width (before any product rounding): the spec's, widened if a port value
    can exceed its range."""
    return max(signed_bits(*spec.exact_product_range), signed_bits(*product_range(plan, spec.act_range)))


def accumulated_bits(plan: DecodePlan, spec: UnitSpec) -> int:
    """Width of the product that reaches the tree / accumulator: the exact product, or after
    product rounding the rounded range over every port value."""
    lo, hi = product_range(plan, spec.act_range)
    f, mode = plan.product_shift, plan.product_round
    return max(spec.product_bits, signed_bits(round_product(lo, f, mode), round_product(hi, f, mode)))


def _round_product(m: Module, plan: DecodePlan, p: Signal, name: str, width: int) -> Signal:
    """p / 2^shift as an integer: floor (arithmetic shift) or round half to even, the rule of
    ``models.units.round_product``, in ``width`` bits."""
    f = plan.product_shift
    q = Signal(signed(width), name=f"{name}_rounded")
    if plan.product_round == "floor":
        m.d.comb += q.eq(p >> f)
    else:  # rne: add 1 when the dropped bits exceed half, or equal half and the kept LSB is odd
        kept = p >> f
        dropped, half = p[:f], 1 << (f - 1)
        up = (dropped > half) | ((dropped == half) & kept[0])
        m.d.comb += q.eq(kept + up)
    return q


def lane_product(m: Module, plan: DecodePlan, dec: WeightDecoder, a: Value, width: int,
                 name: str, flip_bit: int | None = None) -> Signal:
    """p = decoded weight × a, exact in ``width`` bits (``flip_bit``: injected product fault),
    then reduced to the accumulator's unit when the plan rounds products."""
    if plan.style == "sign_mag_half":
        # magnitude × a with one fractional bit (half-units), the 0.5 code adds a itself
        mag_prod = (dec.mag * a) << 1
        half_prod = Mux(dec.half, a, 0)
        pmag = Signal(signed(width), name=f"{name}_mag")
        m.d.comb += pmag.eq(mag_prod + half_prod)
        expr: Value = Mux(dec.sign, -pmag, pmag)
    elif plan.style == "fp":
        assert plan.fp is not None
        # significand × a on a (mbits+1) × act_bits multiplier; the sign is applied to this
        # narrow product (12 bits for E4M3 × INT8, not the 26-bit shifted one), then the
        # exponent is a barrel left shift. Both fit mbits+1+act_bits signed bits, negated too:
        # |sig·a| ≤ (2^(mbits+1) - 1)·2^(act_bits-1) < 2^(mbits+act_bits).
        width_sig = plan.fp.mbits + 1 + len(Value.cast(a))
        sig_prod = Signal(signed(width_sig), name=f"{name}_sig")
        signed_prod = Signal(signed(width_sig), name=f"{name}_signed")
        m.d.comb += [sig_prod.eq(dec.sig * a), signed_prod.eq(Mux(dec.sign, -sig_prod, sig_prod))]
        expr = (signed_prod << dec.exp) << plan.fp.shift0
    else:
        expr = dec.wi * a
    p = Signal(signed(width), name=name)
    if flip_bit is None:
        m.d.comb += p.eq(expr)
    else:
        exact = Signal(signed(width), name=f"{name}_exact")
        m.d.comb += [exact.eq(expr), p.eq(exact ^ (1 << flip_bit))]
    if not plan.product_shift:
        return p
    return _round_product(m, plan, p, name, len(p) - plan.product_shift + 1)


def adder_tree(m: Module, terms: list[Signal], name: str = "tree") -> Signal:
    """Exact pairwise sum: each level is one bit wider than its widest input."""
    level = 0
    while len(terms) > 1:
        nxt: list[Signal] = []
        for i in range(0, len(terms) - 1, 2):
            a, b = terms[i], terms[i + 1]
            s = Signal(signed(max(len(a), len(b)) + 1), name=f"{name}{level}_{i // 2}")
            m.d.comb += s.eq(a + b)
            nxt.append(s)
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
        level += 1
    return terms[0]


def check_fault(spec: UnitSpec, fault: Fault | None, prod_width: int, lanes: int) -> None:
    """Refuse a fault that does not fit the unit (bit beyond a width, lane beyond lanes)."""
    if fault is None:
        return
    if fault.kind == "product_bit":
        if fault.bit >= prod_width:
            raise MacforgeError(f"fault product_bit: bit {fault.bit} is outside the {prod_width}-bit "
                                f"product of {spec.name}")
        if fault.lane >= lanes:
            raise MacforgeError(f"fault product_bit: lane {fault.lane} is outside {spec.name}'s {lanes} lane(s)")
    if fault.kind == "acc_carry" and fault.bit >= spec.acc_bits - 1:
        raise MacforgeError(f"fault acc_carry: bit {fault.bit} has no carry into a higher bit of the "
                            f"{spec.acc_bits}-bit accumulator of {spec.name} (need bit < {spec.acc_bits - 1})")


def _add(m: Module, base: Value, addend: Value, width: int, drop_carry_bit: int | None) -> Signal:
    """base + addend, exact in ``width`` bits; optionally without the carry out of one bit."""
    s = Signal(signed(width), name="acc_sum")
    if drop_carry_bit is None:
        m.d.comb += s.eq(base + addend)
        return s
    k = drop_carry_bit + 1  # injected bug: bits [0, k) and [k, width) added without a carry between
    bx = Signal(signed(width), name="acc_base_x")
    px = Signal(signed(width), name="acc_addend_x")
    m.d.comb += [bx.eq(base), px.eq(addend)]
    low = (bx[:k] + px[:k])[:k]
    high = bx[k:].as_signed() + px[k:].as_signed()
    m.d.comb += s.eq(Cat(low, high)[:width].as_signed())
    return s


def accumulate(m: Module, spec: UnitSpec, term: Value, en: Value, clr: Value, acc: Signal,
               fault: Fault | None = None, *, load: Value | None = None,
               load_value: Value | None = None) -> None:
    """``latency - 1`` pipeline stages on (term, en, clr), then the accumulator register:

    ``acc <= R((clr ? 0 : acc) + (en ? term : 0))`` with R = wrap or saturate to acc_bits.
    ``load``/``load_value`` (systolic drain): when ``load`` is high, ``acc <= load_value``.
    """
    term_sig = Signal(signed(len(term)), name="term")
    m.d.comb += term_sig.eq(term)
    cur_t: Value = term_sig
    cur_en, cur_clr = en, clr
    for stage in range(spec.latency - 1):
        t_r = Signal(signed(len(term)), name=f"pipe{stage}_term")
        en_r = Signal(name=f"pipe{stage}_en")
        clr_r = Signal(name=f"pipe{stage}_clr")
        m.d.sync += [t_r.eq(cur_t), en_r.eq(cur_en), clr_r.eq(cur_clr)]
        cur_t, cur_en, cur_clr = t_r, en_r, clr_r
    base = Mux(cur_clr, 0, acc)
    addend = Mux(cur_en, cur_t, 0)
    width = max(spec.acc_bits, len(term)) + 1
    carry = fault.bit if fault is not None and fault.kind == "acc_carry" else None
    s = _add(m, base, addend, width, carry)
    if spec.overflow == "saturate":
        hi = (1 << (spec.acc_bits - 1)) - 1
        lo = -(1 << (spec.acc_bits - 1))
        nxt: Value = Mux(s > hi, hi, Mux(s < lo, lo, s))
    else:
        nxt = s  # wrap: the assignment keeps the low acc_bits bits
    if load is not None:
        assert load_value is not None
        nxt = Mux(load, load_value, nxt)
    m.d.sync += acc.eq(nxt)
