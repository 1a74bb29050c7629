"""macforge RTL: one Amaranth component per unit spec, Verilog export, lint and synthesis checks.

>>> import rtl
>>> unit = rtl.build_unit("mac_dint4_asym_xint8")      # an amaranth wiring.Component
>>> [p["name"] for p in rtl.ports("mac_dint4_asym_xint8")]
['clk', 'rst', 'en', 'clr', 'w', 'a', 'z', 'acc']

Every unit is generated from ``models.units.get_unit(name)``: widths, latency, overflow rule and
the weight decode table come from the spec, never from a second description of the arithmetic.
A ``systolic`` unit builds ``SystolicArray(rows, cols, pe_spec(unit))``: an output-stationary
array whose one-tile cycle count is ``systolic_schedule(R, C, K)``. A ``huffman`` unit builds
``HuffmanDecoder``: the canonical-Huffman chunk decoder of an entropy-coded weight format.
"""

from ._decode import DecodePlan, WeightDecoder, decode_plan, decoded_value
from ._export import (
    LINT_WAIVERS,
    SYNTH_TARGETS,
    LintResult,
    SynthResult,
    ToolError,
    lint,
    synth_check,
    unit_hash,
    verilator_bin,
    verilog,
    write_verilog,
)
from ._fault import FAULT_KINDS, Fault
from ._huffman import HUFFMAN_MUTANTS, HuffmanDecoder, buffer_bits, huffman_decoder, huffman_drive, huffman_energy
from ._systolic import SystolicArray, pe_spec, systolic_schedule
from ._units import DotUnit, DqGroupMac, MacUnit, build_unit, ports

__all__ = [
    "FAULT_KINDS",
    "HUFFMAN_MUTANTS",
    "HuffmanDecoder",
    "buffer_bits",
    "huffman_decoder",
    "huffman_drive",
    "huffman_energy",
    "LINT_WAIVERS",
    "SYNTH_TARGETS",
    "DecodePlan",
    "DotUnit",
    "DqGroupMac",
    "Fault",
    "LintResult",
    "MacUnit",
    "SynthResult",
    "SystolicArray",
    "ToolError",
    "WeightDecoder",
    "build_unit",
    "decode_plan",
    "decoded_value",
    "lint",
    "pe_spec",
    "ports",
    "synth_check",
    "systolic_schedule",
    "unit_hash",
    "verilator_bin",
    "verilog",
    "write_verilog",
]
