"""The generic standard-cell library used for gate-level area and energy.

Areas are the NanGate FreePDK45 Open Cell Library X1 cell areas (µm², typical corner) divided
by NAND2_X1 (0.798 µm²), i.e. NAND2-equivalents. The same table generates the Liberty file for
Yosys/ABC and the Verilog cell models for gate-level simulation, so area and switching activity
are counted on one netlist.

Switching energy per output toggle is modelled as proportional to the cell's area (a proxy for
the capacitance it drives and switches internally), in units of one NAND2 output toggle; a
flip-flop also pays ``DFF_CLOCK_ENERGY`` per clock cycle for its clock pin. These are modelling
assumptions stated in every report, not measured values.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Cell", "CELLS", "DFF", "DFF_CLOCK_ENERGY", "NAND2_UM2", "liberty_text", "verilog_models"]

NAND2_UM2 = 0.798  # NanGate45 NAND2_X1


@dataclass(frozen=True)
class Cell:
    name: str
    area_um2: float  # NanGate45 X1
    inputs: tuple[str, ...]
    function: str  # Liberty syntax: ' = not, * = and, + = or, ^ = xor
    verilog: str  # the same function as a Verilog expression

    @property
    def nand2_eq(self) -> float:
        return self.area_um2 / NAND2_UM2


CELLS = (
    Cell("BUF", 0.798, ("A",), "A", "A"),
    Cell("INV", 0.532, ("A",), "A'", "~A"),
    Cell("NAND2", 0.798, ("A", "B"), "(A*B)'", "~(A & B)"),
    Cell("NOR2", 0.798, ("A", "B"), "(A+B)'", "~(A | B)"),
    Cell("AND2", 1.064, ("A", "B"), "(A*B)", "A & B"),
    Cell("OR2", 1.064, ("A", "B"), "(A+B)", "A | B"),
    Cell("XOR2", 1.596, ("A", "B"), "(A^B)", "A ^ B"),
    Cell("XNOR2", 1.596, ("A", "B"), "(A^B)'", "~(A ^ B)"),
    Cell("AOI21", 1.064, ("A", "B", "C"), "((A*B)+C)'", "~((A & B) | C)"),
    Cell("OAI21", 1.064, ("A", "B", "C"), "((A+B)*C)'", "~((A | B) & C)"),
    Cell("MUX2", 1.862, ("A", "B", "S"), "((A*S')+(B*S))", "S ? B : A"),
)
DFF = Cell("DFF", 4.522, ("D",), "IQ", "")  # NanGate DFF_X1; positive edge, no reset
DFF_CLOCK_ENERGY = 1.0  # per DFF per cycle, in NAND2-toggle units (assumption, see module doc)


def liberty_text() -> str:
    """Liberty library (area and function only; ABC maps for area)."""
    out = ["/* macforge generic cells: NanGate45 X1 areas in NAND2-equivalents (see rtl/flow/_cells.py) */",
           "library(macforge_nand2eq) {"]
    for c in CELLS:
        out.append(f"  cell({c.name}) {{ area: {c.nand2_eq:.6f};")
        out += [f"    pin({p}) {{ direction: input; }}" for p in c.inputs]
        out.append(f'    pin(Y) {{ direction: output; function: "{c.function}"; }}')
        out.append("  }")
    out.append(f"  cell(DFF) {{ area: {DFF.nand2_eq:.6f};")
    out.append("    ff(IQ, IQN) { clocked_on: C; next_state: D; }")
    out.append("    pin(C) { direction: input; clock: true; }")
    out.append("    pin(D) { direction: input; }")
    out.append('    pin(Q) { direction: output; function: "IQ"; }')
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
