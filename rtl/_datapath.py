"""Shared datapath pieces: lane product, exact adder tree, pipeline + accumulator."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed

from models.errors import MacforgeError
from models.units import UnitSpec, round_product, signed_bits

from ._decode import DecodePlan, WeightDecoder, pipeline_cuts
from ._fault import Fault, fault_is

__all__ = ["accumulate", "accumulated_bits", "adder_tree", "group_last", "lane_product", "lut_write_address",
           "product_bits", "product_range"]


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


def _reg(m: Module, value: Value, name: str, reset_less: bool) -> Signal:
    """One pipeline register on ``value`` (cleared by rst unless ``reset_less``: a fault)."""
    r = Signal(Value.cast(value).shape(), name=name, reset_less=reset_less)
    m.d.sync += r.eq(value)
    return r


def lane_product(m: Module, plan: DecodePlan, dec: WeightDecoder, a: Value, width: int,
                 name: str, flip_bit: int | None = None) -> Signal:
    """p = decoded weight × a, exact in ``width`` bits (``flip_bit``: injected product fault),
    then reduced to the accumulator's unit when the plan rounds products.

    Every style is one multiplier M × a (M = the integer weight, the dINT magnitude or the
    FP significand) and a post-step (half code, negate, exponent shift). ``plan.pipeline``
    puts register levels inside: ``operands`` registers the decoder's fields and a;
    ``split`` forms M × a_lo and M × a_hi (a's low and high halves) in one cycle, registers
    them with the post-step's fields and adds them (p = lo + hi·2^h) in the next.
    """
    rl = plan.reset_less
    fields: dict[str, Value] = {f: getattr(dec, f) for f in plan.output_names}
    if "operands" in plan.pipeline:
        fields = {f: _reg(m, v, f"{name}_op_{f}", rl) for f, v in fields.items()}
        a = _reg(m, a, f"{name}_op_a", rl)
    act_bits = len(Value.cast(a))
    side: dict[str, Value] = {}
    if plan.style == "sign_mag_half":
        # magnitude × a with one fractional bit (half-units), the 0.5 code adds a itself
        mult, mwidth = fields["mag"], width
        half_prod = Signal(signed(act_bits), name=f"{name}_half")
        m.d.comb += half_prod.eq(Mux(fields["half"], a, 0))
        side = {"sign": fields["sign"], "half": half_prod}
    elif plan.style == "fp":
        assert plan.fp is not None
        # significand × a on a (mbits+1) × act_bits multiplier; the sign is applied to this
        # narrow product (12 bits for E4M3 × INT8, not the 26-bit shifted one), then the
        # exponent is a barrel left shift. Both fit mbits+1+act_bits signed bits, negated too:
        # |sig·a| ≤ (2^(mbits+1) - 1)·2^(act_bits-1) < 2^(mbits+act_bits).
        mult, mwidth = fields["sig"], plan.fp.mbits + 1 + act_bits
        side = {"sign": fields["sign"], "exp": fields["exp"]}
    else:
        mult, mwidth = fields["wi"], width
    prod = Signal(signed(mwidth), name=f"{name}_mul")
    if "split" in plan.pipeline and act_bits >= 2:
        h = act_bits // 2  # a = a_hi·2^h + a_lo with a_lo unsigned
        lo = _reg(m, mult * a[:h], f"{name}_pp_lo", rl)
        hi = _reg(m, mult * a[h:].as_signed(), f"{name}_pp_hi", rl)
        side = {k: _reg(m, v, f"{name}_pp_{k}", rl) for k, v in side.items()}
        m.d.comb += prod.eq(lo + (hi << h))
    else:
        m.d.comb += prod.eq(mult * a)
    if plan.style == "sign_mag_half":
        pmag = Signal(signed(width), name=f"{name}_mag")
        m.d.comb += pmag.eq((prod << 1) + side["half"])
        expr: Value = Mux(side["sign"], -pmag, pmag)
    elif plan.style == "fp":
        assert plan.fp is not None
        signed_prod = Signal(signed(mwidth), name=f"{name}_signed")
        m.d.comb += signed_prod.eq(Mux(side["sign"], -prod, prod))
        expr = (signed_prod << side["exp"]) << plan.fp.shift0
    else:
        expr = prod
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
    """Refuse a fault that does not fit the unit (bit beyond a width, lane beyond lanes, a
    control-path fault on a unit without that control)."""
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
    if fault.kind == "reset_pipeline" and spec.latency < 2:
        raise MacforgeError(f"fault reset_pipeline needs a pipelined unit (latency >= 2); {spec.name} has latency "
                            f"{spec.latency}")
    if fault.kind == "sat_clamp" and spec.overflow != "saturate":
        raise MacforgeError(f"fault sat_clamp needs a saturating accumulator; {spec.name} has overflow "
                            f"{spec.overflow}")
    if fault.kind == "lut_waddr":
        if spec.lut != "programmable":
            raise MacforgeError(f"fault lut_waddr needs a programmable LUT; {spec.name} has lut={spec.lut}")
        if fault.bit >= spec.decode.bits:
            raise MacforgeError(f"fault lut_waddr: bit {fault.bit} is outside the {spec.decode.bits}-bit "
                                f"LUT address of {spec.name}")
    if fault.kind == "dq_last" and spec.kind != "dq_group":
        raise MacforgeError(f"fault dq_last needs a decoupleQ group MAC; {spec.name} is a {spec.kind}")


def lut_write_address(waddr: Value, fault: Fault | None) -> Value:
    """The entry a programmable LUT write goes to: ``lut_waddr`` (fault lut_waddr: one address
    bit inverted)."""
    return waddr ^ (1 << fault.bit) if fault_is(fault, "lut_waddr") else waddr  # type: ignore[union-attr]


def group_last(m: Module, last: Value, fault: Fault | None) -> Value:
    """The ``last`` a decoupleQ group MAC acts on: the port (fault dq_last: one cycle late)."""
    if not fault_is(fault, "dq_last"):
        return last
    late = Signal(name="last_late")
    m.d.sync += late.eq(last)
    return late


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
    """The pipeline's ``term`` levels on the term and ``latency - 1`` levels on (en, clr), then
    the accumulator register:

    ``acc <= R((clr ? 0 : acc) + (en ? term : 0))`` with R = wrap or saturate to acc_bits.
    ``term`` has already passed the levels inside the lane product (``pipeline_cuts``: split,
    operands), so en/clr stay aligned with it. ``load``/``load_value`` (systolic drain): when
    ``load`` is high, ``acc <= load_value``.
    """
    cuts = pipeline_cuts(spec)
    rl = fault_is(fault, "reset_pipeline")
    cur_t: Value = term
    cur_en, cur_clr = en, clr
    for stage, cut in enumerate(cuts):
        if cut == "term":
            t_r = Signal(signed(len(Value.cast(term))), name=f"pipe{stage}_term", reset_less=rl)
            m.d.sync += t_r.eq(cur_t)
            cur_t = t_r
        cur_en, cur_clr = _reg(m, cur_en, f"pipe{stage}_en", rl), _reg(m, cur_clr, f"pipe{stage}_clr", rl)
    term_sig = Signal(signed(len(Value.cast(term))), name="term")
    m.d.comb += term_sig.eq(cur_t)
    # injected bugs: clr_ignored keeps the old sum, en_ignored adds the term every cycle
    base = acc if fault_is(fault, "clr_ignored") else Mux(cur_clr, 0, acc)
    addend = term_sig if fault_is(fault, "en_ignored") else Mux(cur_en, term_sig, 0)
    width = max(spec.acc_bits, len(term_sig)) + 1
    carry = fault.bit if fault_is(fault, "acc_carry") else None  # type: ignore[union-attr]
    s = _add(m, base, addend, width, carry)
    if spec.overflow == "saturate":
        hi = (1 << (spec.acc_bits - 1)) - 1
        lo = -(1 << (spec.acc_bits - 1))
        if fault_is(fault, "sat_clamp"):  # injected bug: the clamp is one step inside the range
            hi, lo = hi - 1, lo + 1
        nxt: Value = Mux(s > hi, hi, Mux(s < lo, lo, s))
    else:
        nxt = s  # wrap: the assignment keeps the low acc_bits bits
    if load is not None:
        assert load_value is not None
        nxt = Mux(load, load_value, nxt)
    m.d.sync += acc.eq(nxt)
