"""Per-component area of a single-lane MAC, measured by synthesizing its parts separately.

The parts are built by the same RTL code the unit uses (``WeightDecoder``, ``lane_product``):
- ``decode``: the weight decoder alone (combinational);
- ``multiplier``: decoder + product, minus the decoder;
- ``registers``: the flip-flops of the full unit (accumulator, pipeline, LUT storage);
- ``accumulator``: everything else in the full unit (accumulator adder, overflow rule, clr/en
  and reset logic, LUT write port), i.e. full - (decoder + product) - registers.
Parts synthesized apart lose cross-boundary optimization (Yosys merges ``acc + w·a`` of a
whole unit into one ``$macc``), so the accumulator share is a difference, not a cell count.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models.errors import MacforgeError
from models.units import UnitSpec, as_spec

from .._datapath import lane_product, product_bits
from .._decode import DecodePlan, WeightDecoder, decode_plan
from ._gate import synth_gates
from ._liberty import CellLibrary

__all__ = ["LaneProduct", "component_areas"]


class LaneProduct(wiring.Component):
    """Combinational decoder + product of one lane: ``p = decode(w[, z, lut]) × a``."""

    def __init__(self, spec: UnitSpec) -> None:
        self.spec = spec
        self.plan: DecodePlan = decode_plan(spec)
        self.width = product_bits(self.plan, spec)
        ports: dict[str, Any] = {"w": In(unsigned(self.plan.bits)), "a": In(signed(spec.act_bits)),
                                 "p": Out(signed(self.width))}
        if self.plan.has_zp:
            ports["z"] = In(unsigned(self.plan.zp_bits))
        if self.plan.style == "lut":
            assert self.plan.lut_bits is not None
            ports["lut"] = In(data.ArrayLayout(signed(self.plan.lut_bits), 1 << self.plan.bits))
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.dec = dec = WeightDecoder(self.plan)
        m.d.comb += dec.w.eq(self.w)
        if self.plan.has_zp:
            m.d.comb += dec.z.eq(self.z)
        if self.plan.style == "lut":
            m.d.comb += dec.lut.eq(self.lut)
        p = lane_product(m, self.plan, dec, self.a, self.width, "prod")
        m.d.comb += self.p.eq(p)
        return m


def component_areas(unit: UnitSpec | str, variant: str = "default", *,
                    library: CellLibrary | None = None) -> dict[str, float]:
    """NAND2-eq of decode, multiplier, accumulator and registers of a single-lane MAC."""
    import rtl

    spec = as_spec(unit)
    if spec.kind != "mac":
        raise MacforgeError(f"component areas cover single-lane mac units, not {spec.kind} ({spec.name})")
    full = synth_gates(rtl.verilog(spec), spec.name, variant, library=library)
    dec = synth_gates(rtl.verilog(WeightDecoder(decode_plan(spec)), name=f"{spec.name}_decode"),
                      f"{spec.name}_decode", variant, library=library)
    prod = synth_gates(rtl.verilog(LaneProduct(spec), name=f"{spec.name}_product"), f"{spec.name}_product", variant,
                       library=library)
    return {
        "decode": dec.nand2_eq,
        "multiplier": prod.nand2_eq - dec.nand2_eq,
        "accumulator": full.nand2_eq - prod.nand2_eq - full.sequential_nand2_eq,
        "registers": full.sequential_nand2_eq,
        "total": full.nand2_eq,
    }
