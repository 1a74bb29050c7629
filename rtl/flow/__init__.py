"""Synthesis flow: gate-level area (NAND2-eq), timing and energy on the generic cell library or
a user's Liberty file; FPGA mapping and Fmax; gate-level switching activity for energy.
Yosys/nextpnr are the pinned YoWASP builds."""

from ._cells import (CELLS, DFF, DFF_CLOCK_ENERGY, GENERIC_SOURCE, NAND2_UM2, TAU_NS, generic_library, liberty_text,
                     verilog_models)
from ._components import LaneProduct, component_areas
from ._energy import ActivityResult, count_vcd_toggles, net_loads, netlist_activity, parse_netlist, parse_netlist_cells
from ._fpga import FPGA_TARGETS, FpgaResult, registered_wrapper, synth_fpga
from ._gate import ABC_SCRIPT, MAPPINGS, SYNTH_VARIANTS, GateResult, synth_gates
from ._liberty import CellLibrary, LibCell, function_truth_table, library_verilog, load_liberty, parse_liberty
from ._timing import FO4_NS, TimingResult, netlist_timing
from ._unitflow import (CELL_ENERGY_VARIANTS, MULT8_VERILOG, PJ_ANCHOR, REAL_DOT_LEN, REAL_LAYER, TARGETS, cell_library,
                        energy_variant_library, pj_per_toggle_unit, real_operand_stream, synth_unit, unit_energy,
                        unit_stimulus)
from ._yosys import run_tool, run_yosys, tool_version

__all__ = ["CELLS", "DFF", "DFF_CLOCK_ENERGY", "NAND2_UM2", "TAU_NS", "GENERIC_SOURCE", "liberty_text", "verilog_models",
           "generic_library", "GateResult", "synth_gates", "MAPPINGS", "FpgaResult", "synth_fpga", "registered_wrapper",
           "FPGA_TARGETS", "ActivityResult", "netlist_activity", "count_vcd_toggles", "parse_netlist_cells",
           "parse_netlist", "net_loads", "SYNTH_VARIANTS", "ABC_SCRIPT", "component_areas", "LaneProduct",
           "CellLibrary", "LibCell", "function_truth_table", "load_liberty", "parse_liberty", "library_verilog", "TimingResult",
           "netlist_timing", "FO4_NS", "synth_unit", "unit_energy", "unit_stimulus", "pj_per_toggle_unit",
           "real_operand_stream", "cell_library", "MULT8_VERILOG", "PJ_ANCHOR", "REAL_LAYER", "REAL_DOT_LEN",
           "TARGETS", "run_yosys", "run_tool", "tool_version", "CELL_ENERGY_VARIANTS", "energy_variant_library"]
