"""Synthesis flow: generic-cell gate-level area (NAND2-eq), FPGA mapping and Fmax, and
gate-level switching activity for energy. Yosys/nextpnr are the pinned YoWASP builds."""

from ._cells import CELLS, DFF, DFF_CLOCK_ENERGY, NAND2_UM2, liberty_text, verilog_models
from ._components import LaneProduct, component_areas
from ._energy import ActivityResult, count_vcd_toggles, netlist_activity, parse_netlist_cells
from ._fpga import FPGA_TARGETS, FpgaResult, registered_wrapper, synth_fpga
from ._gate import ABC_SCRIPT, SYNTH_VARIANTS, GateResult, synth_gates
from ._unitflow import PJ_ANCHOR, REAL_LAYER, TARGETS, pj_per_toggle_unit, synth_unit, unit_energy, unit_stimulus
from ._yosys import run_tool, run_yosys, tool_version

__all__ = ["CELLS", "DFF", "DFF_CLOCK_ENERGY", "NAND2_UM2", "liberty_text", "verilog_models",
           "GateResult", "synth_gates", "FpgaResult", "synth_fpga", "registered_wrapper", "FPGA_TARGETS",
           "ActivityResult", "netlist_activity", "count_vcd_toggles", "parse_netlist_cells", "SYNTH_VARIANTS", "ABC_SCRIPT", "component_areas", "LaneProduct", "synth_unit", "unit_energy", "unit_stimulus", "pj_per_toggle_unit",
           "PJ_ANCHOR", "REAL_LAYER", "TARGETS", "run_yosys", "run_tool", "tool_version"]
