"""Synthesis / energy flow (rtl.flow) on small units. Marked `synth`: CI runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.errors import MacforgeError
from rtl.flow import (
    count_vcd_toggles,
    liberty_text,
    netlist_activity,
    parse_netlist_cells,
    synth_gates,
    synth_unit,
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
    assert g.nand2_eq > 10 and g.sequential_nand2_eq == 0
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
    assert busy.energy_per_op_nand2 == pytest.approx(sum(busy.by_cell_type.values()))
    with pytest.raises(MacforgeError, match="stimulus is all zeros: no switching activity to measure"):
        netlist_activity(g.netlist, "m", ports, {"a": np.zeros(10, int), "b": np.zeros(10, int)}, ops=10, workdir=wd)
    with pytest.raises(MacforgeError, match="stimulus has no values for input port 'b'"):
        netlist_activity(g.netlist, "m", ports, {"a": np.ones(10, int)}, ops=10, workdir=wd)


def test_vcd_toggle_count(tmp_path: Path):
    vcd = tmp_path / "t.vcd"
    vcd.write_text("$timescale 1ns $end\n$scope module dut $end\n$var wire 1 ! x $end\n"
                   "$var wire 3 \" v [2:0] $end\n$upscope $end\n$enddefinitions $end\n"
                   "#0\n$dumpvars\n0!\nb000 \"\n$end\n#1\n1!\nb101 \"\n#2\n0!\nb100 \"\n#3\nb100 \"\n")
    t = count_vcd_toggles(vcd)
    assert t == {"x": 2, "v[0]": 2, "v[1]": 0, "v[2]": 1}


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
    assert r["luts"] > 20 and r["ffs"] >= 32 and r["fmax_mhz"] > 10
    assert r["device"].startswith("iCE40-HX8K")


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
        assert r["target"] == "generic" and r["nand2_eq"] > 0 and r["cells"] > 0


def test_a_failing_synthesis_names_its_log():
    with pytest.raises(MacforgeError, match=r"yosys failed: design.v:1: ERROR: syntax error.*; log: .*yosys\.log$"):
        synth_gates("module broken(input a, output y); assign y = ; endmodule\n", "broken", use_cache=False)


def test_component_areas_add_up_and_explain_the_ratio():
    from rtl.flow import component_areas

    c8 = component_areas("mac_int8xint8")
    cd = component_areas("mac_dint4_sym_xint8")
    for c in (c8, cd):
        parts = c["decode"] + c["multiplier"] + c["accumulator"] + c["registers"]
        assert parts == pytest.approx(c["total"])
        assert c["registers"] == pytest.approx(32 * 4.522 / 0.798, rel=1e-3)  # 32 accumulator flip-flops
    assert c8["decode"] == 0.0  # INT8 decode is wiring
    assert cd["decode"] > 0 and cd["multiplier"] < c8["multiplier"] / 2
    with pytest.raises(MacforgeError, match="component areas cover single-lane mac units, not dot"):
        component_areas("dot4_int4xint8")
