"""Synthesis / energy flow (rtl.flow) on small units. Marked `synth`: CI runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.errors import MacforgeError
from models import cost
from models.units import get_unit
from rtl.flow import (
    CELLS,
    DFF,
    DFF_CLOCK_ENERGY,
    count_vcd_toggles,
    energy_variant_library,
    generic_library,
    liberty_text,
    netlist_activity,
    parse_netlist_cells,
    synth_fpga,
    synth_gates,
    synth_unit,
    unit_energy,
)
from sim.cli import main

pytestmark = pytest.mark.synth

MULT = """module m(input [3:0] a, input [3:0] b, output [7:0] p); assign p = a * b; endmodule
"""


def test_liberty_areas_are_nand2_equivalents():
    lib = liberty_text()
    assert "cell(NAND2) { area: 1.000000;" in lib
    assert "cell(INV) { area: 0.666667;" in lib  # NanGate45 INV_X1 0.532 / NAND2_X1 0.798
    assert "cell(DFF) { area: 5.666667;" in lib  # DFF_X1 4.522 / 0.798


def test_gate_synthesis_and_activity_of_a_multiplier(tmp_path: Path):
    g = synth_gates(MULT, "m", use_cache=False)
    area = {c.name: c.nand2_eq for c in (*CELLS, DFF)}
    # the reported area is the mapped cells' library area, cell by cell
    assert g.nand2_eq == pytest.approx(sum(area[k] * n for k, n in g.cells_by_type.items()), rel=1e-5)
    assert g.sequential_nand2_eq == 0 and "DFF" not in g.cells_by_type
    assert not any(k.startswith("$") for k in g.cells_by_type)
    netlist = (Path(__file__).resolve().parents[1] / g.netlist).read_text()
    drivers = parse_netlist_cells(netlist)
    assert len(drivers) == g.cells
    ports = [{"name": "a", "direction": "in", "width": 4}, {"name": "b", "direction": "in", "width": 4},
             {"name": "p", "direction": "out", "width": 8}]
    rng = np.random.default_rng(0)
    wd = Path("build") / "test_flow" / "act"
    busy = netlist_activity(g.netlist, "m", ports, {"a": rng.integers(0, 16, 300), "b": rng.integers(0, 16, 300)},
                            ops=300, warmup=1, workdir=wd)
    # b held at 0: the product never changes, only the a-input side of the array toggles
    quiet = netlist_activity(g.netlist, "m", ports, {"a": rng.integers(0, 16, 300), "b": np.zeros(300, int)},
                             ops=300, warmup=1, workdir=wd)
    assert busy.toggles_per_op > 0 and 2 * quiet.toggles_per_op < busy.toggles_per_op
    with pytest.raises(MacforgeError, match="stimulus is all zeros: no switching activity to measure"):
        netlist_activity(g.netlist, "m", ports, {"a": np.zeros(10, int), "b": np.zeros(10, int)}, ops=10, workdir=wd)
    with pytest.raises(MacforgeError, match="stimulus has no values for input port 'b'"):
        netlist_activity(g.netlist, "m", ports, {"a": np.ones(10, int)}, ops=10, workdir=wd)


def test_energy_of_a_net_is_its_driver_internal_energy_plus_its_fanout_load(tmp_path: Path):
    """A hand-written netlist: n = a ^ b drives a NAND2 (with c) and an INV. Each net's energy
    per toggle is its driver's p + internal capacitance plus the logical effort of the pins it
    drives (rtl/flow/_cells.py), over a NAND2 toggle at fanout 1 (2 + 4/3); the toggles are
    counted here from the stimulus, not from the simulation."""
    netlist = tmp_path / "netlist.v"
    netlist.write_text("module x(a, b, c, y1, y2);\n  input a; input b; input c; output y1; output y2; wire n;\n"
                       "  XOR2 u0 (.A(a), .B(b), .Y(n));\n  NAND2 u1 (.A(n), .B(c), .Y(y1));\n"
                       "  INV u2 (.A(n), .Y(y2));\nendmodule\n")
    ports = [{"name": p, "direction": "in", "width": 1} for p in "abc"] + \
        [{"name": p, "direction": "out", "width": 1} for p in ("y1", "y2")]
    rng = np.random.default_rng(3)
    a, b, c = rng.integers(0, 2, 400), rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    r = netlist_activity(netlist, "x", ports, {"a": a, "b": b, "c": c}, ops=400, warmup=1,
                         workdir=Path("build") / "test_flow" / "fanout")
    n = a ^ b
    y1 = 1 - (n & c)
    y2 = 1 - n
    tog = {k: int(np.count_nonzero(v[1:] != v[:-1])) for k, v in (("n", n), ("y1", y1), ("y2", y2))}
    ref = 2 + 4 / 3
    expect = (tog["n"] * (4 + 5 + 4 / 3 + 1) + tog["y1"] * 2 + tog["y2"] * 1) / ref / 400
    assert r.toggles == sum(tog.values()) and r.clock_energy_per_op == 0 and r.dffs == 0
    assert r.energy_per_op_nand2 == pytest.approx(expect)
    assert r.by_cell_type["XOR2"] == pytest.approx(tog["n"] * (4 + 5 + 4 / 3 + 1) / ref / 400)


def test_flip_flop_clock_energy_is_paid_every_cycle(tmp_path: Path):
    """Two flip-flops, d held at 0 after reset: no toggles, so the energy is 2 × 3.6 NAND2
    toggles per cycle (rtl/flow/_cells.py: 12 units of ½V²C_inv over 10/3)."""
    netlist = tmp_path / "netlist.v"
    netlist.write_text("module r(clk, d, q);\n  input clk; input d; output [1:0] q;\n"
                       "  DFF f0 (.C(clk), .D(d), .Q(q[0]));\n  DFF f1 (.C(clk), .D(q[0]), .Q(q[1]));\nendmodule\n")
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "d", "direction": "in", "width": 1},
             {"name": "q", "direction": "out", "width": 2}]
    d = np.zeros(100, int)
    d[0] = 1  # one pulse: q0 toggles twice, q1 twice
    # two warm-up cycles: the netlist's flip-flops start unknown (x) and f1 needs two edges to be 0
    r = netlist_activity(netlist, "r", ports, {"d": d}, ops=100, warmup=2, workdir=Path("build") / "test_flow" / "ff")
    assert DFF_CLOCK_ENERGY == pytest.approx(3.6)
    assert r.dffs == 2 and r.dff_cycles_per_op == pytest.approx(2.0)
    assert r.clock_energy_per_op == pytest.approx(2 * 3.6)
    q_toggle = (1 + 11) / (2 + 4 / 3)  # DFF: p 1 + 11 internal; q0 drives f1's D (1 C_inv)
    assert r.energy_per_op_nand2 == pytest.approx(2 * 3.6 + (2 * (q_toggle + 1 / (2 + 4 / 3)) + 2 * q_toggle) / 100)


def test_clock_energy_override_moves_only_the_clock_part():
    base = unit_energy("mac_int4xint8", n_macs=256)
    for ck in (0.0, 1.0, 8.0):
        r = unit_energy("mac_int4xint8", n_macs=256, clock_energy=ck)
        assert r["data_energy_per_mac_nand2"] == base["data_energy_per_mac_nand2"]
        assert r["energy_per_mac_nand2"] == pytest.approx(base["data_energy_per_mac_nand2"] + ck * 32)
    assert base["dff_cycles_per_mac"] == 32 and base["dff_clock_energy_nand2"] == pytest.approx(DFF_CLOCK_ENERGY)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(MacforgeError, match="clock energy must be >= 0"):
            unit_energy("mac_int4xint8", n_macs=256, clock_energy=bad)


def test_cell_energy_variants_reweigh_only_the_combinational_internal_energy():
    lib = generic_library()
    # load_only: a NAND2 toggle is left with its fanout-1 load, 4/3 of the library's 2 + 4/3
    assert energy_variant_library(lib, "load_only")[1] == pytest.approx((4 / 3) / (2 + 4 / 3))
    assert energy_variant_library(lib, "internal_x2")[0].cells["DFF"] == lib.cells["DFF"]  # flip-flops untouched
    base = unit_energy("mac_int4xint8", n_macs=256)
    r = {v: unit_energy("mac_int4xint8", n_macs=256, cell_energy=v) for v in ("internal_x2", "load_only", "toggle_count")}
    for rec in r.values():  # same simulation, same unit: the clock part is the same physical energy
        assert rec["toggles_per_mac"] == base["toggles_per_mac"]
        assert rec["clock_energy_per_mac_nand2"] == pytest.approx(base["clock_energy_per_mac_nand2"])
    # energy is linear in the internal scale s (load + s × internal): ×2 adds what ×0 removes
    internal = base["energy_per_mac_nand2"] - r["load_only"]["energy_per_mac_nand2"]
    assert internal > 0.2 * base["data_energy_per_mac_nand2"]
    assert r["internal_x2"]["energy_per_mac_nand2"] == pytest.approx(base["energy_per_mac_nand2"] + internal, rel=1e-9)
    # toggle count: one NAND2 toggle per net toggle, plus the clock
    assert r["toggle_count"]["energy_per_mac_nand2"] == pytest.approx(base["toggles_per_mac"]
                                                                     + base["clock_energy_per_mac_nand2"], rel=1e-9)
    # pJ re-anchored: the 8x8 multiplier costs the same 0.2 pJ, so a NAND2 toggle is worth less when cells cost more
    assert r["internal_x2"]["pj_per_nand2_toggle"] < base["pj_per_nand2_toggle"] < r["load_only"]["pj_per_nand2_toggle"]
    with pytest.raises(MacforgeError, match="unknown cell-energy variant 'x3'"):
        unit_energy("mac_int4xint8", n_macs=256, cell_energy="x3")


def test_vcd_toggle_count(tmp_path: Path):
    vcd = tmp_path / "t.vcd"
    vcd.write_text("$timescale 1ns $end\n$scope module dut $end\n$var wire 1 ! x $end\n"
                   "$var wire 3 \" v [2:0] $end\n$upscope $end\n$enddefinitions $end\n"
                   "#0\n$dumpvars\n0!\nb000 \"\n$end\n#1\n1!\nb101 \"\n#2\n0!\nb100 \"\n#3\nb100 \"\n")
    t = count_vcd_toggles(vcd)
    assert t == {"x": 2, "v[0]": 2, "v[1]": 0, "v[2]": 1}


def test_vcd_toggle_count_keeps_the_last_value_per_timestamp(tmp_path: Path):
    """Two changes of a net in one timestamp count as one comparison: x pulses 0->1->0 within
    #1 (no toggle), v goes 000 -> 101 -> 100 within #2 (one toggle, bit 2); changes after the
    $dumpvars block in the same timestamp belong to the initial state."""
    vcd = tmp_path / "t.vcd"
    vcd.write_text("$timescale 1ns $end\n$scope module dut $end\n$var wire 1 ! x $end\n"
                   "$var wire 3 \" v [2:0] $end\n$upscope $end\n$enddefinitions $end\n"
                   "#0\n$dumpvars\n1!\nb111 \"\n$end\n0!\nb000 \"\n"
                   "#1\n1!\n0!\n"
                   "#2\nb101 \"\nb100 \"\n1!\n"
                   "#3\nb101 \"\n")
    assert count_vcd_toggles(vcd) == {"x": 1, "v[0]": 1, "v[1]": 0, "v[2]": 1}


def test_unit_synthesis_ratios_and_cache():
    i8 = synth_unit("mac_int8xint8")
    d4 = synth_unit("mac_dint4_sym_xint8")
    i4 = synth_unit("mac_int4xint8")
    assert i8["nand2_eq"] > d4["nand2_eq"] and i8["nand2_eq"] > i4["nand2_eq"]
    assert synth_unit("mac_int8xint8") == i8  # cached: identical record
    with pytest.raises(MacforgeError, match="unknown synthesis target 'asic'; known: generic, ice40, ecp5"):
        synth_unit("mac_int4xint8", "asic")


def test_fpga_flow_on_a_small_unit():
    r = synth_unit("mac_int4xint8", "ice40")
    assert r["ffs"] == cost.register_bits(get_unit("mac_int4xint8")) == 32  # the accumulator, nothing else
    assert r["carry"] >= 31  # the 32-bit accumulator adder is a carry chain
    assert r["device"].startswith("iCE40-HX8K")
    # the same flow on registers with no logic between them: a much shorter critical path
    regs = "module regs(input clk, input [7:0] a, output reg [7:0] q); always @(posedge clk) q <= a; endmodule\n"
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "a", "direction": "in", "width": 8},
             {"name": "q", "direction": "out", "width": 8}]
    fast = synth_fpga(regs, "regs", ports, "ice40")
    assert fast.ffs == 8 and fast.luts == 0
    assert fast.fmax_mhz is not None and r["fmax_mhz"] is not None and fast.fmax_mhz > 2 * r["fmax_mhz"]


def test_energy_cli_json_and_refusals(capsys):
    rc = main(["energy", "mac_int4xint8", "--json", "--macs", "256"])
    out = capsys.readouterr().out
    assert rc == 0
    rec = json.loads(out)[0]
    assert rec["unit"] == "mac_int4xint8" and rec["data"] == "random"
    assert rec["toggles_per_mac"] > 0 and rec["energy_per_mac_pj"] > 0
    assert main(["energy", "dq_int2_group_mac"]) == 2
    assert main(["energy", "mac_int4xint8", "--macs", "0"]) == 2


def test_synth_cli_json(capsys):
    rc = main(["synth", "mac_int8xint8", "mac_dint4_sym_xint8", "--json"])
    recs = json.loads(capsys.readouterr().out)
    assert rc == 0 and [r["unit"] for r in recs] == ["mac_int8xint8", "mac_dint4_sym_xint8"]
    for r in recs:
        assert r["target"] == "generic" and r == json.loads(json.dumps(synth_unit(r["unit"])))
        assert r["cells"] == sum(r["cells_by_type"].values())
        assert r["sequential_nand2_eq"] == pytest.approx(r["cells_by_type"]["DFF"] * DFF.nand2_eq)


def test_a_failing_synthesis_names_its_log():
    with pytest.raises(MacforgeError, match=r"yosys failed: design.v:1: ERROR: syntax error.*; log: .*yosys\.log$"):
        synth_gates("module broken(input a, output y); assign y = ; endmodule\n", "broken", use_cache=False)


def test_component_areas_hold_their_parts_and_explain_the_ratio():
    from rtl.flow import component_areas

    c8 = component_areas("mac_int8xint8")
    cd = component_areas("mac_dint4_sym_xint8")
    for name, c in (("mac_int8xint8", c8), ("mac_dint4_sym_xint8", cd)):
        assert c["registers"] == pytest.approx(32 * 4.522 / 0.798, rel=1e-3)  # 32 accumulator flip-flops
        assert c["total"] == synth_unit(name)["nand2_eq"]
        # the accumulator share (a difference) holds at least the accumulator's adder synthesized alone
        pb = get_unit(name).product_bits
        adder = synth_gates(f"module add{pb}(input [31:0] a, input [{pb - 1}:0] b, output [31:0] s); "
                            f"assign s = a + {{{{{32 - pb}{{b[{pb - 1}]}}}}, b}}; endmodule\n", f"add{pb}")
        assert c["accumulator"] >= adder.nand2_eq, name
    # the same 32-bit accumulator behind both multipliers: its share does not follow the weight format
    assert cd["accumulator"] == pytest.approx(c8["accumulator"], rel=0.10)
    assert c8["decode"] == 0.0  # INT8 decode is wiring
    assert cd["decode"] > 0 and cd["multiplier"] < c8["multiplier"] / 2
    with pytest.raises(MacforgeError, match="component areas cover single-lane mac units, not dot"):
        component_areas("dot4_int4xint8")


def test_real_data_is_the_testbenchs_stream():
    """One definition of real data: the energy flow's operands are the testbench's, element for
    element, and the energy stimulus clears every REAL_DOT_LEN MACs."""
    import testbench
    from rtl.flow import REAL_DOT_LEN, real_operand_stream, unit_stimulus

    spec = get_unit("mac_dint4_asym_xint8")  # a zero-point format: zero points too
    a, w, z = real_operand_stream(spec, 1200, 0)
    ta, tw, tz = testbench.load_real_data(spec, 1200, 0)
    assert np.array_equal(a, ta) and np.array_equal(w, tw) and np.array_equal(z, tz)
    stim, macs, desc = unit_stimulus(spec, "real", n_macs=1200)
    assert macs == 1200 and np.array_equal(stim["w"], w) and np.array_equal(stim["a"], a)
    assert np.flatnonzero(stim["clr"]).tolist() == list(range(0, 1200, REAL_DOT_LEN))
    assert "blk.29.ffn_down" in desc and "seed 0" in desc
