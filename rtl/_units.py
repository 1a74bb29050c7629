"""One Amaranth component per unit kind, generated from a ``models.units.UnitSpec``."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models.errors import MacforgeError
from models.units import UnitSpec, as_spec

from ._datapath import (accumulate, accumulated_bits, adder_tree, check_fault, group_last, lane_product,
                        lut_write_address, product_bits)
from ._decode import DecodePlan, WeightDecoder, decode_plan
from ._fault import Fault

__all__ = ["DotUnit", "DqGroupMac", "MacUnit", "UnitLayout", "as_spec", "build_unit", "ports", "unit_layout"]


def _lut_regfile(m: Module, unit: MacUnit | DotUnit) -> Value | None:
    """2^bits × lut_bits register file (one register per entry, reset content = the spec's
    table); written at the clock edge, so a read in the same cycle sees the old entry.
    Returns the entries packed for the decoders' ``lut`` port."""
    spec = unit.spec
    if spec.lut != "programmable":
        return None
    entries = [Signal(signed(spec.lut_bits), init=int(v), name=f"lut{i}")
               for i, v in enumerate(spec.decode.table)]
    with m.If(unit.lut_we), m.Switch(lut_write_address(unit.lut_waddr, unit.fault)):
        for i, entry in enumerate(entries):
            with m.Case(i):
                m.d.sync += entry.eq(unit.lut_wdata)
    return Cat(*entries)


def _connect_decoder(m: Module, dec: WeightDecoder, w: object, z: object, lut: object) -> None:
    m.d.comb += dec.w.eq(w)
    if dec.plan.has_zp:
        m.d.comb += dec.z.eq(z)
    if dec.plan.style == "lut":
        m.d.comb += dec.lut.eq(lut)


@dataclass(frozen=True)
class UnitLayout:
    """Everything a unit's ports and widths follow from, checked: the decode plan, the product
    width over every port value, the exact lane-sum width and the port signature members."""

    plan: DecodePlan
    product_bits: int
    sum_bits: int
    members: dict[str, wiring.Member]


def unit_layout(spec: UnitSpec, fault: Fault | None = None) -> UnitLayout:
    """Check ``spec`` (and ``fault``) for the RTL and derive its widths and ports."""
    if spec.kind == "systolic":
        from ._systolic import systolic_layout  # imports this module

        return systolic_layout(spec, fault)
    plan = decode_plan(spec, fault)
    pbits = product_bits(plan, spec)
    lanes = spec.lanes
    members: dict[str, wiring.Member] = {"en": In(1), "clr": In(1)}
    if spec.kind == "dq_group":
        if plan.has_zp or plan.style == "lut":
            raise MacforgeError(f"unit {spec.name}: a dq_group unit takes codes without zero point or LUT")
        sum_bits = spec.sum_bits  # S1 = Σ q·a and S2 = Σ a over one group
        coef = signed(spec.coef_bits)
        members.update(q=In(unsigned(plan.bits)), a=In(signed(spec.act_bits)), last=In(1),
                       s=In(coef), zc=In(coef))
    else:
        sum_bits = accumulated_bits(plan, spec) + (lanes - 1).bit_length()
        what = "one product" if spec.kind == "mac" else f"the exact sum of {lanes} products"
        if sum_bits > spec.acc_bits:
            raise MacforgeError(f"unit {spec.name}: acc_bits={spec.acc_bits} cannot hold {what} "
                                f"({sum_bits} bits over every port value)")
        if spec.kind == "mac":
            members.update(w=In(unsigned(plan.bits)), a=In(signed(spec.act_bits)))
        else:
            members.update(w=In(data.ArrayLayout(unsigned(plan.bits), lanes)),
                           a=In(data.ArrayLayout(signed(spec.act_bits), lanes)))
        if plan.has_zp:
            members["z"] = In(unsigned(plan.zp_bits))
        if spec.lut == "programmable":
            members.update(lut_we=In(1), lut_waddr=In(unsigned(plan.bits)),
                           lut_wdata=In(signed(spec.lut_bits)))
    check_fault(spec, fault, pbits, lanes)
    members["acc"] = Out(signed(spec.acc_bits))
    return UnitLayout(plan, pbits, sum_bits, members)


def refused(component: object) -> None:
    """A component whose constructor refuses its arguments is never elaborated: tell Amaranth
    not to warn that it was "created but never used" (the error already says why)."""
    component._MustUse__silence = True  # type: ignore[attr-defined]


def _init_unit(unit: MacUnit | DotUnit | DqGroupMac, spec: UnitSpec, fault: Fault | None, kind: str) -> None:
    try:
        if spec.kind != kind:
            raise MacforgeError(f"unit {spec.name} is a {spec.kind}, not a {kind}")
        unit.layout = unit_layout(spec, fault)
    except MacforgeError:
        refused(unit)
        raise
    unit.spec, unit.fault = spec, fault
    unit.plan, unit.product_bits = unit.layout.plan, unit.layout.product_bits
    wiring.Component.__init__(unit, unit.layout.members)


class MacUnit(wiring.Component):
    """Single-lane MAC: ``acc`` accumulates decoded-weight × activation products.

    Ports (all synchronous to ``clk``; ``rst`` synchronous, clears ``acc`` and the pipeline):
    ``en``, ``clr`` (1 bit), ``w`` (unsigned, decode.bits), ``a`` (signed, act_bits), ``z``
    (unsigned, decode.zp_bits; zero-point formats only), ``lut_we``/``lut_waddr``/``lut_wdata``
    (programmable LUT only), ``acc`` (signed, acc_bits, output register).

    Latency L = spec.latency: ``acc`` at cycle t+L = R((clr_t ? 0 : acc_{t+L-1}) + (en_t ? p_t : 0))
    with p_t = decode(w_t, z_t) × a_t exact (the weight format's integer unit, half-units for
    dINT) and R = wrap mod 2^acc_bits or saturate, per spec.overflow. L = 1: acc is the
    accumulator register; L > 1: L-1 pipeline levels (``rtl._decode.pipeline_cuts``: the
    product, then inside the multiplier, then the decoded operands; en/clr carried along).
    A LUT write is visible from the next cycle on.
    """

    def __init__(self, spec: UnitSpec, fault: Fault | None = None) -> None:
        _init_unit(self, spec, fault, "mac")

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lut = _lut_regfile(m, self)
        dec = m.submodules.decode = WeightDecoder(self.plan)
        _connect_decoder(m, dec, self.w, getattr(self, "z", None), lut)
        flip = self.fault.bit if self.fault is not None and self.fault.kind == "product_bit" else None
        p = lane_product(m, self.plan, dec, self.a, self.product_bits, "product", flip)
        accumulate(m, self.spec, p, self.en, self.clr, self.acc, self.fault)
        return m


class DotUnit(wiring.Component):
    """N-lane dot-product PE: ``acc`` accumulates Σ_lanes decode(w_i) × a_i each enabled cycle.

    Ports as ``MacUnit`` except ``w`` (lanes × decode.bits) and ``a`` (lanes × act_bits, each
    lane signed) are packed, lane i at bits [i·width, (i+1)·width); ``z`` is one zero point
    shared by all lanes; a programmable LUT is one register file read by all lanes.
    The lane products are summed by an exact adder tree (one bit wider per level). Latency L:
    L = 1 accumulates the tree output directly; L ≥ 2 registers the tree output, L ≥ 3 also
    splits each lane's multiplier, L ≥ 4 registers the decoded operands (``pipeline_cuts``),
    carrying en/clr along, so acc at t+L follows the MacUnit formula with p_t = the exact lane sum.
    """

    def __init__(self, spec: UnitSpec, fault: Fault | None = None) -> None:
        _init_unit(self, spec, fault, "dot")

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lut = _lut_regfile(m, self)
        products = []
        for i in range(self.spec.lanes):
            dec = WeightDecoder(self.plan)
            m.submodules[f"decode{i}"] = dec
            _connect_decoder(m, dec, self.w[i], getattr(self, "z", None), lut)
            flip = (self.fault.bit if self.fault is not None and self.fault.kind == "product_bit"
                    and self.fault.lane == i else None)
            products.append(lane_product(m, self.plan, dec, self.a[i], self.product_bits,
                                         f"product{i}", flip))
        total = adder_tree(m, products)
        accumulate(m, self.spec, total, self.en, self.clr, self.acc, self.fault)
        return m


class DqGroupMac(wiring.Component):
    """decoupleQ group MAC (kind ``dq_group``): y += s·Σq·a + zc·Σa per group.

    Ports: ``en``, ``clr``, ``q`` (unsigned code, decode.bits), ``a`` (signed, act_bits),
    ``last`` (this cycle ends a group), ``s``, ``zc`` (signed coef_bits fixed point with
    frac_bits fractional bits; only sampled on an enabled ``last`` cycle), ``acc`` (signed,
    acc_bits, in units of 2^-frac_bits).

    Cycle semantics. Internal exact partial sums S1 = Σ decode(q)·a and S2 = Σ a (sum_bits
    wide: exact for groups of up to group_size elements; longer groups wrap). In a cycle t:
    the bases are S1' = clr_t ? 0 : S1 and S2' = clr_t ? 0 : S2. With en_t low nothing is added
    (and ``last`` is ignored): S1 <= S1', S2 <= S2'. With en_t high and last_t low:
    S1 <= S1' + decode(q_t)·a_t, S2 <= S2' + a_t. With en_t and last_t high, the group term
    G_t = s_t·(S1' + decode(q_t)·a_t) + zc_t·(S2' + a_t) is formed exactly and S1, S2 restart
    at 0. The accumulator then follows the MAC rule with latency L = spec.latency:
    acc at t+L = R((clr_t ? 0 : acc_{t+L-1}) + (en_t & last_t ? G_t : 0)).
    So feeding groups back to back with ``last`` on every group_size-th element (``clr`` or
    ``rst`` before the first) reproduces ``models.golden.dq_group_mac``: acc, L cycles after the
    last cycle of group g, equals its output g.
    """

    def __init__(self, spec: UnitSpec, fault: Fault | None = None) -> None:
        _init_unit(self, spec, fault, "dq_group")

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self.spec
        dec = m.submodules.decode = WeightDecoder(self.plan)
        m.d.comb += dec.w.eq(self.q)
        flip = self.fault.bit if self.fault is not None and self.fault.kind == "product_bit" else None
        qa = lane_product(m, self.plan, dec, self.a, self.product_bits, "product", flip)
        s1 = Signal(signed(spec.sum_bits))
        s2 = Signal(signed(spec.sum_bits))
        s1_next = Signal(signed(spec.sum_bits))
        s2_next = Signal(signed(spec.sum_bits))
        s1_base = Mux(self.clr, 0, s1)
        s2_base = Mux(self.clr, 0, s2)
        m.d.comb += [s1_next.eq(s1_base + qa), s2_next.eq(s2_base + self.a)]
        group = Signal(signed(spec.coef_bits + spec.sum_bits + 1))  # exact
        m.d.comb += group.eq(self.s * s1_next + self.zc * s2_next)
        ends = Signal()
        m.d.comb += ends.eq(self.en & group_last(m, self.last, self.fault))
        with m.If(ends):
            m.d.sync += [s1.eq(0), s2.eq(0)]
        with m.Elif(self.en):
            m.d.sync += [s1.eq(s1_next), s2.eq(s2_next)]
        with m.Else():
            m.d.sync += [s1.eq(s1_base), s2.eq(s2_base)]
        accumulate(m, spec, group, ends, self.clr, self.acc, self.fault)
        return m


_KINDS: dict[str, type[MacUnit | DotUnit | DqGroupMac]] = {
    "mac": MacUnit, "dot": DotUnit, "dq_group": DqGroupMac}


def build_unit(spec_or_name: UnitSpec | str, *, fault: Fault | None = None) -> wiring.Component:
    """The Amaranth component of a unit (by name or spec); ``fault`` injects one bug.

    Kinds mac / dot / dq_group give ``MacUnit`` / ``DotUnit`` / ``DqGroupMac``; kind systolic
    gives ``SystolicArray(rows, cols, pe_spec(spec))`` (its fault goes into PE ``fault.lane``);
    kind huffman gives ``HuffmanDecoder`` with the entropy format's L, symbol and chunk widths.
    """
    spec = as_spec(spec_or_name)
    if fault is not None and not isinstance(fault, Fault):
        raise MacforgeError(f"fault must be a rtl.Fault or None, not {type(fault).__name__}")
    if spec.kind == "systolic":
        from ._systolic import SystolicArray, pe_spec  # imports this module

        return SystolicArray(spec.rows, spec.cols, pe_spec(spec), fault=fault)
    if spec.kind == "huffman":
        if fault is not None:
            raise MacforgeError(f"unit {spec.name}: rtl.Fault targets MAC datapaths; a huffman decoder takes "
                                "rtl.HuffmanDecoder(..., mutant=...) instead")
        from ._huffman import huffman_decoder

        return huffman_decoder(spec)
    return _KINDS[spec.kind](spec, fault)


def ports(spec_or_name: UnitSpec | str) -> list[dict[str, object]]:
    """The unit's Verilog ports: name, direction (in/out), width (total bits), signed (of each
    element), lanes (packed elements: lane i at bits [i·width/lanes, (i+1)·width/lanes))."""
    spec = as_spec(spec_or_name)
    if spec.kind == "huffman":
        from ._huffman import huffman_members

        members = huffman_members(**{k: v for k, v in spec.huffman_params.items() if k != "chunk"})
    else:
        members = unit_layout(spec).members
    out: list[dict[str, object]] = [
        {"name": "clk", "direction": "in", "width": 1, "signed": False, "lanes": 1},
        {"name": "rst", "direction": "in", "width": 1, "signed": False, "lanes": 1},
    ]
    for name, member in members.items():
        shape = member.shape
        if isinstance(shape, data.ArrayLayout):
            elem = Shape.cast(shape.elem_shape)
            width, sgn, lanes = elem.width * shape.length, elem.signed, shape.length
        else:
            s = Shape.cast(shape)
            width, sgn, lanes = s.width, s.signed, 1
        out.append({"name": name, "direction": "in" if member.flow == wiring.In else "out",
                    "width": width, "signed": sgn, "lanes": lanes})
    return out
