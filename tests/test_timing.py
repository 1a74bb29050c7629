"""Static timing of mapped netlists (rtl.flow.netlist_timing) and synthesis for a target delay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtl.flow import TAU_NS, load_liberty, netlist_timing, synth_unit
from sim.cli import main

TINY = Path(__file__).parent / "data" / "tiny45.lib"


def test_a_gate_chain_has_the_logical_effort_delay(tmp_path: Path):
    """in -> INV -> NAND2 -> XOR2 -> out: each stage pre + p + its load (rtl/flow/_cells.py)."""
    n = tmp_path / "netlist.v"
    n.write_text("module c(a, b, y, z);\n  input a; input b; output y; output z; wire n1; wire n2;\n"
                 "  INV u0 (.A(a), .Y(n1));\n  NAND2 u1 (.A(n1), .B(b), .Y(n2));\n  XOR2 u2 (.A(n2), .B(b), .Y(y));\n"
                 "  INV u3 (.A(b), .Y(z));\nendmodule\n")
    t = netlist_timing(n)
    tau = (0 + 1 + 4 / 3) + (0 + 2 + 5) + (5 + 4 + 0)
    assert t.critical_ns == pytest.approx(tau * TAU_NS)
    assert t.path == ["INV", "NAND2", "XOR2"] and t.gates == 3 and t.start == "input" and t.end == "output y"
    assert t.fo4 == pytest.approx(tau / 5)


def test_register_to_register_path_includes_clock_to_q_and_setup(tmp_path: Path):
    n = tmp_path / "netlist.v"
    n.write_text("module r(clk, d, q);\n  input clk; input d; output q; wire a; wire b;\n"
                 "  DFF f0 (.C(clk), .D(d), .Q(a));\n  INV u0 (.A(a), .Y(b));\n  DFF f1 (.C(clk), .D(b), .Q(q));\n"
                 "endmodule\n")
    t = netlist_timing(n)
    # clock->Q: pre 3 + p 1 + the INV's input (1); INV: p 1 + f1's D (1); setup: 3 τ
    assert t.critical_ns == pytest.approx(((3 + 1 + 1) + (1 + 1) + 3) * TAU_NS)
    assert t.path == ["DFF", "INV"] and t.start == "flip-flop" and t.end == "DFF.D"


def test_timing_with_a_liberty(tmp_path: Path):
    lib = load_liberty(TINY)
    n = tmp_path / "netlist.v"
    n.write_text("module c(a, b, y);\n  input a; input b; output y; wire n1;\n"
                 "  TNAND2 u0 (.A1(a), .A2(b), .ZN(n1));\n  TINV u1 (.A(n1), .ZN(y));\nendmodule\n")
    t = netlist_timing(n, lib)
    i0, s0 = lib.cells["TNAND2"].delay["A2"]
    i1, _ = lib.cells["TINV"].delay["A"]
    assert t.critical_ns == pytest.approx(i0 + s0 * 1.5 + i1)  # the INV's input is 1.5 fF; y drives nothing


@pytest.mark.synth
def test_target_delay_picks_the_smallest_mapping_that_meets_it(capsys):
    free = synth_unit("mac_int8xint8")
    tried = synth_unit("mac_int8xint8", target_delay_ns=100.0)["mappings_tried"]
    fastest = min(v["critical_ns"] for v in tried.values())
    smallest = min(v["nand2_eq"] for v in tried.values())
    loose = synth_unit("mac_int8xint8", target_delay_ns=100.0)
    assert loose["meets_target"] and loose["nand2_eq"] == smallest and loose["mapping"] == "area"
    tight = synth_unit("mac_int8xint8", target_delay_ns=fastest)
    assert tight["meets_target"] and tight["critical_path_ns"] == pytest.approx(fastest)
    assert tight["nand2_eq"] >= loose["nand2_eq"]
    # the default (area-only) mapping is one of the three, and its record is the untimed synthesis
    assert tried["default"]["nand2_eq"] == pytest.approx(free["nand2_eq"])
    assert tried["default"]["critical_ns"] == pytest.approx(free["critical_path_ns"])
    assert main(["synth", "mac_int8xint8", "--target-delay", f"{fastest / 2}", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert rec["meets_target"] is False and rec["critical_path_ns"] == pytest.approx(fastest)  # the best achieved
    assert main(["synth", "mac_int8xint8", "--target-delay", "-1"]) == 2
    assert "target delay must be a positive number of ns" in capsys.readouterr().err
