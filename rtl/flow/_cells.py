"""The generic standard-cell library used for gate-level area, energy and timing.

**Area**: the NanGate FreePDK45 Open Cell Library X1 cell areas (µm², typical corner); reported
divided by NAND2_X1 (0.798 µm²), i.e. NAND2-equivalents.

**Capacitance, energy and delay** come from the method of logical effort (Sutherland, Sproull &
Harris, *Logical Effort*, 1999; Weste & Harris, *CMOS VLSI Design*, 4th ed., §4.4 and Table 4.2)
for unit-sized static CMOS gates, in units of one unit inverter's input capacitance C_inv:
- an input pin's capacitance is its logical effort g (INV 1, NAND2 4/3, NOR2 5/3, AOI21 2 / 2 /
  5/3, AOI22 2, XOR2 4 per true/complement input);
- the output's own (diffusion) capacitance is the parasitic delay p (INV 1, NAND2 2, NOR2 2,
  AOI21 7/3, AOI22 4, XOR2 4); OAI21's g = 2 / 2 / 4/3 and p = 8/3 follow by the same sizing rule
  (pull-down (A‖B)·C with 2-wide NMOS, pull-up A·B ‖ C with 4/4/2-wide PMOS);
- a multi-stage cell (AND2 = NAND2 + INV, OR2 = NOR2 + INV, BUF = INV + INV, XOR2/XNOR2 with
  their own input inverters, MUX2 = INV(S) + AOI22 + INV) switches its internal nodes with
  every output toggle: their capacitance (``internal``) is paid as well, and their stage delays
  (``pre``) come before the output stage.
The energy of one output toggle is ½V²·(p + internal + the driven pins' g) — the load is read
per net from the netlist's fanout. The delay from input i is ``pre[i] + p + load`` in τ (the
delay unit of logical effort; a unit gate's delay grows by 1 τ per C_inv of load).

**Flip-flop** (static transmission-gate master–slave with a local clock inverter, Weste & Harris
§10.3; four unit transmission gates, each with one NMOS and one PMOS gate on opposite clock
phases): the clock pin sees 2 C_inv of transmission gates + the clock inverter (1) = 3 C_inv, the
inverted clock node 2 + its inverter's p (1) = 3 C_inv. Both nodes charge and discharge once per
cycle: ``DFF_CLOCK_ENERGY`` = 2 × (3 + 3) = 12 units of ½V²C_inv = **3.6 NAND2 toggles** per
cycle (a NAND2 toggle at fanout 1 is ½V²·(2 + 4/3)). A data change moves the master and slave
storage nodes and the inverters between them: 11 C_inv internal + the output inverter's p.
The clock tree that drives the clock pins is not counted. The report sweeps this constant
(``rtl.flow.unit_energy`` records the clock part separately) because it carries the flip-flop
share of the energy.

**Time**: τ = 7.57 ps, so that the model's AND2 (pre 3 + p 1 = 4 τ at zero load) equals the
NanGate FreePDK45 AND2_X1 intrinsic delay, 30.3 ps (typical corner, 1.1 V, 25 °C, input slew
17.2 ps; Liberty cell_rise/cell_fall of pin A1 at 3.79 and 7.57 fF, 38.0 and 45.7 ps mean,
extrapolated to zero load). FO4 = 5 τ = 37.8 ps.

The same table generates the Liberty file for Yosys/ABC and the Verilog cell models for
gate-level simulation, so area, switching activity, energy and timing are counted on one netlist.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ._liberty import CellLibrary, LibCell

__all__ = ["Cell", "CELLS", "DFF", "DFF_CLOCK_ENERGY", "NAND2_UM2", "TAU_NS", "GENERIC_SOURCE", "liberty_text",
           "verilog_models", "generic_library"]

NAND2_UM2 = 0.798  # NanGate45 NAND2_X1
TAU_NS = 0.030277 / 4  # see the module doc: NanGate AND2_X1 intrinsic delay / the model's 4 τ
GENERIC_SOURCE = ("areas: NanGate FreePDK45 Open Cell Library X1 (µm²); capacitance, energy and delay: "
                  "logical effort of unit-sized static CMOS gates (Sutherland, Sproull & Harris 1999; Weste & "
                  "Harris, CMOS VLSI Design 4e, Table 4.2), flip-flop: transmission-gate master-slave "
                  "(Weste & Harris §10.3); τ = 7.57 ps from NanGate AND2_X1 (typical, 1.1 V, 25 °C)")


@dataclass(frozen=True)
class Cell:
    name: str
    area_um2: float  # NanGate45 X1
    inputs: tuple[str, ...]
    function: str  # Liberty syntax: ' = not, * = and, + = or, ^ = xor
    verilog: str  # the same function as a Verilog expression
    effort: tuple[float, ...] = ()  # logical effort g of each input = its capacitance, C_inv
    parasitic: float = 0.0  # p: output diffusion capacitance, C_inv (= parasitic delay, τ)
    internal: float = 0.0  # internal nodes switching with each output toggle, C_inv
    pre: tuple[float, ...] = ()  # τ of the stages before the output stage, per input

    @property
    def nand2_eq(self) -> float:
        return self.area_um2 / NAND2_UM2


_T = 1 / 3
CELLS = (
    Cell("BUF", 0.798, ("A",), "A", "A", (1,), 1, 2, (2,)),
    Cell("INV", 0.532, ("A",), "A'", "~A", (1,), 1, 0, (0,)),
    Cell("NAND2", 0.798, ("A", "B"), "(A*B)'", "~(A & B)", (4 * _T, 4 * _T), 2, 0, (0, 0)),
    Cell("NOR2", 0.798, ("A", "B"), "(A+B)'", "~(A | B)", (5 * _T, 5 * _T), 2, 0, (0, 0)),
    Cell("AND2", 1.064, ("A", "B"), "(A*B)", "A & B", (4 * _T, 4 * _T), 1, 3, (3, 3)),
    Cell("OR2", 1.064, ("A", "B"), "(A+B)", "A | B", (5 * _T, 5 * _T), 1, 3, (3, 3)),
    Cell("XOR2", 1.596, ("A", "B"), "(A^B)", "A ^ B", (5, 5), 4, 5, (5, 5)),
    Cell("XNOR2", 1.596, ("A", "B"), "(A^B)'", "~(A ^ B)", (5, 5), 4, 5, (5, 5)),
    Cell("AOI21", 1.064, ("A", "B", "C"), "((A*B)+C)'", "~((A & B) | C)", (2, 2, 5 * _T), 7 * _T, 0, (0, 0, 0)),
    Cell("OAI21", 1.064, ("A", "B", "C"), "((A+B)*C)'", "~((A | B) & C)", (2, 2, 4 * _T), 8 * _T, 0, (0, 0, 0)),
    Cell("MUX2", 1.862, ("A", "B", "S"), "((A*S')+(B*S))", "S ? B : A", (2, 2, 3), 1, 5, (5, 5, 8)),
)
# NanGate DFF_X1; positive edge, no reset. Q: p 1, 11 C_inv internal per data change; clock→Q 4 τ.
DFF = Cell("DFF", 4.522, ("D",), "IQ", "", (1,), 1, 11, (3,))
DFF_CLOCK_PIN = 3.0  # C_inv on the clock pin (see the module doc)
DFF_CLOCK_UNITS = 2 * (3.0 + 3.0)  # per cycle, ½V²C_inv: clock and inverted clock nodes, charge + discharge
_NAND2_FO1 = CELLS[2].parasitic + CELLS[2].effort[0]  # 10/3
DFF_CLOCK_ENERGY = DFF_CLOCK_UNITS / _NAND2_FO1  # 3.6 NAND2 toggles per flip-flop per cycle


def liberty_text(timing: bool = False) -> str:
    """Liberty library for Yosys/ABC: areas in NAND2-eq; with ``timing``, pin capacitances and
    2×2 delay tables from the logical-effort model (ns, C_inv) so ABC can map for delay."""
    out = ["/* macforge generic cells: NanGate45 X1 areas in NAND2-equivalents (see rtl/flow/_cells.py) */",
           "library(macforge_nand2eq) {"]
    if timing:
        out += ['  delay_model : table_lookup;', '  time_unit : "1ns";', "  capacitive_load_unit (1,ff);",
                "  lu_table_template(mf_delay) { variable_1 : input_net_transition; "
                'variable_2 : total_output_net_capacitance; index_1("0.0, 1.0"); index_2("0.0, 10.0"); }']

    def arcs(c: Cell, i: int) -> str:
        if not timing:
            return ""
        d0 = (c.pre[i] + c.parasitic) * TAU_NS
        d1 = d0 + 10 * TAU_NS
        tab = f'values("{d0:.6f}, {d1:.6f}", "{d0:.6f}, {d1:.6f}");'
        tr = 'values("0.01, 0.05", "0.01, 0.05");'
        return (f' timing() {{ related_pin : "{c.inputs[i]}"; cell_rise(mf_delay) {{ {tab} }} '
                f"cell_fall(mf_delay) {{ {tab} }} rise_transition(mf_delay) {{ {tr} }} "
                f"fall_transition(mf_delay) {{ {tr} }} }}")

    for c in CELLS:
        out.append(f"  cell({c.name}) {{ area: {c.nand2_eq:.6f};")
        for p, g in zip(c.inputs, c.effort):
            cap = f" capacitance : {g:.6f};" if timing else ""
            out.append(f"    pin({p}) {{ direction: input;{cap} }}")
        out.append(f'    pin(Y) {{ direction: output; function: "{c.function}";'
                   + "".join(arcs(c, i) for i in range(len(c.inputs))) + " }")
        out.append("  }")
    out.append(f"  cell(DFF) {{ area: {DFF.nand2_eq:.6f};")
    out.append("    ff(IQ, IQN) { clocked_on: C; next_state: D; }")
    cap_c = f" capacitance : {DFF_CLOCK_PIN:.6f};" if timing else ""
    cap_d = f" capacitance : {DFF.effort[0]:.6f};" if timing else ""
    out.append(f"    pin(C) {{ direction: input; clock: true;{cap_c} }}")
    out.append(f"    pin(D) {{ direction: input;{cap_d} }}")
    q_arc = ""
    if timing:
        d0 = (DFF.pre[0] + DFF.parasitic) * TAU_NS
        tab = f'values("{d0:.6f}, {d0 + 10 * TAU_NS:.6f}", "{d0:.6f}, {d0 + 10 * TAU_NS:.6f}");'
        tr = 'values("0.01, 0.05", "0.01, 0.05");'
        q_arc = (f' timing() {{ related_pin : "C"; timing_type : rising_edge; cell_rise(mf_delay) {{ {tab} }} '
                 f"cell_fall(mf_delay) {{ {tab} }} rise_transition(mf_delay) {{ {tr} }} "
                 f"fall_transition(mf_delay) {{ {tr} }} }}")
    out.append(f'    pin(Q) {{ direction: output; function: "IQ";{q_arc} }}')
    out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def verilog_models() -> str:
    """Behavioural Verilog of every cell, for simulating mapped netlists (Icarus)."""
    out = ["// macforge generic cells (generated from rtl/flow/_cells.py)", "`timescale 1ns/1ps"]
    for c in CELLS:
        ports = ", ".join(f"input {p}" for p in c.inputs)
        out.append(f"module {c.name}({ports}, output Y); assign Y = {c.verilog}; endmodule")
    out.append("module DFF(input C, input D, output reg Q); always @(posedge C) Q <= D; endmodule")
    return "\n".join(out) + "\n"


@lru_cache(maxsize=1)
def generic_library() -> CellLibrary:
    """The shipped library as a ``CellLibrary``: energies in ½V²C_inv, capacitances in C_inv,
    delays in ns (``pj_per_energy_unit`` None: pJ come from the flow's one anchor)."""
    cells = {}
    for c in CELLS:
        cells[c.name] = LibCell(
            name=c.name, area=c.area_um2, inputs=c.inputs, output="Y", function=c.function,
            pin_cap=dict(zip(c.inputs, c.effort)), toggle_energy=c.parasitic + c.internal,
            delay={p: ((pre + c.parasitic) * TAU_NS, TAU_NS) for p, pre in zip(c.inputs, c.pre)})
    cells["DFF"] = LibCell(
        name="DFF", area=DFF.area_um2, inputs=("C", "D"), output="Q", function=None,
        pin_cap={"C": DFF_CLOCK_PIN, "D": DFF.effort[0]}, toggle_energy=DFF.parasitic + DFF.internal,
        delay={"C": ((DFF.pre[0] + DFF.parasitic) * TAU_NS, TAU_NS)}, clock_energy=DFF_CLOCK_UNITS,
        clock="C", data="D", setup=DFF.pre[0] * TAU_NS)  # D inverter driving the master node
    return CellLibrary(name="macforge_generic", source=GENERIC_SOURCE, cells=cells, energy_per_cap=1.0,
                       pj_per_energy_unit=None, corner="logical effort, unit-sized gates; NanGate45 typical "
                       "(1.1 V, 25 °C) for τ", text=liberty_text())
