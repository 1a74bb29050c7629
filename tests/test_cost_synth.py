"""The cost model against real synthesis: flip-flop counts equal the RTL's (``register_bits``
vs the mapped netlist's DFF cells), a small real sweep fitted and validated (sim.costfit), and
``macforge cost --json``. Marked ``synth``; the full fitting sweep (~170 units, minutes on a
cold cache) is ``slow``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from models import cost
from models.units import get_unit, unit_from_spec, unit_names
from rtl.flow import DFF, synth_unit
from sim import costfit
from sim.cli import main

pytestmark = pytest.mark.synth
ROOT = Path(__file__).resolve().parents[1]

# pipelined and LUT units whose flip-flops the old count (lanes × product bits per stage) got wrong
# or that stress a width rule: tree output of 4/6/16 lanes, rounding's guard bit, a zero-point port
_DFF_UNITS = (
    "kind=mac,weights=int4,acts=int4,acc_bits=16,latency=2",
    "kind=mac,weights=int4,acts=int4,acc_bits=16,latency=3",
    "kind=dot,lanes=4,weights=int2,acts=int4,acc_bits=16,latency=2",
    "kind=dot,lanes=6,weights=int4,latency=3",
    "kind=dot,lanes=16,weights=int2,acts=int4,acc_bits=16,latency=2",
    "kind=mac,weights=int2,lut=programmable,lut_bits=6,latency=2",
    "kind=mac,weights=dint4_sym,latency=2,product_round=rne,acc_bits=20",
    "kind=mac,weights=int4_asym,latency=2",
    # real pipelining (rtl/_decode.py pipeline_cuts): split multiplier at 3, decoded operands at 4
    "kind=mac,weights=fp8_e4m3,latency=3",
    "kind=mac,weights=dint4_sym,latency=4",
    "kind=mac,weights=int8,latency=4",
)
# a small real sweep: INT×INT MACs and 4-lane dot PEs, one pipelined unit
_SMALL = cost.sweep_specs(weight_bits=(2, 3, 4), act_bits=(4, 6), acc_bits=(16,), lanes=(1, 4)) + [
    unit_from_spec("kind=mac,weights=int4,acts=int4,acc_bits=16,latency=2")]


@pytest.mark.parametrize("text", _DFF_UNITS)
def test_register_bits_equal_the_netlist_flip_flops(text: str) -> None:
    spec = unit_from_spec(text)
    rec = synth_unit(spec, "generic")
    assert rec["cells_by_type"].get("DFF", 0) == cost.register_bits(spec)
    assert rec["sequential_nand2_eq"] == pytest.approx(cost.register_bits(spec) * DFF.nand2_eq, rel=1e-5)


@pytest.fixture(scope="module")
def small_fit() -> tuple[cost.CostModel, list, list]:
    return costfit.fit_area(workers=1, specs=_SMALL)


def test_small_sweep_fit_is_validated_out_of_sample(small_fit) -> None:  # type: ignore[no-untyped-def]
    model, specs, recs = small_fit
    assert [s.name for s in specs] == [s.name for s in _SMALL] and len(recs) == len(_SMALL)
    v = model.validation
    assert v["in_sample"]["n"] == v["leave_one_out"]["n"] == len(_SMALL)
    # predicting a unit from a fit that never saw it is no better than fitting it
    assert v["leave_one_out"]["mean_abs_rel_error"] >= v["in_sample"]["mean_abs_rel_error"] - 1e-12
    dot = v["held_out"]["dot"]
    assert dot["n"] == 6 and dot["n_fit"] == len(_SMALL) - 6
    assert dot["unseen_features"] == ["tree", "tree_partial_products"]
    # one pipelined unit: its pipeline logic rests on 1 unit and is flagged
    assert model.support["pipeline_logic"] == 1 and "pipeline_logic" in model.flagged
    assert set(v["held_out"]) == {"dot", "pipelined"}  # no dINT / LUT / FP / zero-point unit here


def test_small_sweep_split_follows_the_measured_split(small_fit) -> None:  # type: ignore[no-untyped-def]
    model, specs, recs = small_fit
    # every flip-flop is one DFF cell: fitted to the measured register areas, the coefficient is its area
    assert model.coefficients["registers"] == pytest.approx(DFF.nand2_eq, rel=0.01)
    assert model.component_errors["registers"]["max_abs_share_of_total"] < 0.01
    for c in ("multiplier", "accumulator"):  # the old totals-only fit missed INT8's accumulator by 17 %
        assert model.component_errors[c]["mean_abs_share_of_total"] < 0.10, c
    for s, r in zip(specs, recs):
        split = model.components(s)
        assert sum(split.values()) == pytest.approx(model.predict(s))
        if s.kind == "mac":
            meas = r["components_nand2_eq"]
            assert abs(split["registers"] - meas["registers"]) < 0.01 * meas["total"], s.name


def test_small_sweep_predicts_a_unit_it_never_saw(small_fit) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = small_fit
    for text in ("kind=mac,weights=int3,acts=int5,acc_bits=16", "kind=dot,lanes=4,weights=int3,acts=int5,acc_bits=16"):
        spec = unit_from_spec(text)
        assert spec.name not in model.residuals
        meas = synth_unit(spec, "generic")["nand2_eq"]
        assert model.predict(spec) == pytest.approx(meas, rel=0.15), spec.name


def test_cost_cli_json(small_fit, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                      capsys: pytest.CaptureFixture[str]) -> None:
    # the command's own fit is sim.costfit.fit_area on the full sweep; here: the small sweep's
    monkeypatch.setattr(costfit, "fit_area", lambda workers=2, specs=None: small_fit)
    unit = "kind=mac,weights=int3,acts=int5,acc_bits=16"
    rc = main(["cost", "mac_int4xint8", "--unit", unit, "--json", "--workers", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    doc = json.loads(out)
    m = doc["model"]
    assert m["n_points"] == len(_SMALL) and m["quantity"] == "nand2_eq"
    for key in ("in_sample", "leave_one_out", "held_out_family"):
        assert key in m
    assert m["leave_one_out"]["mean_abs_rel_error"] >= m["in_sample"]["mean_abs_rel_error"] - 1e-12
    assert "dot" in m["held_out_family"] and m["flagged_features"] == ["pipeline_logic"]
    assert set(m["component_errors"]) == {"decode", "multiplier", "accumulator", "registers"}
    names = [r["unit"] for r in doc["units"]]
    assert names == ["mac_int4xint8", unit_from_spec(unit).name]
    for r in doc["units"]:
        syn = synth_unit(get_unit(r["unit"]) if r["unit"] in unit_names() else unit_from_spec(unit))
        assert r["measured_nand2_eq"] == syn["nand2_eq"]
        assert r["error"] == pytest.approx(r["estimate_nand2_eq"] / r["measured_nand2_eq"] - 1)
        assert sum(r["components_model"].values()) == pytest.approx(r["estimate_nand2_eq"])
        assert r["components_measured"] == {k: v for k, v in syn["components_nand2_eq"].items() if k != "total"}
        assert r["in_fit"] is False and r["leave_one_out_error"] is None


def test_cost_cli_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "dq_int2_group_mac"]) == 2
    assert "dq_int2_group_mac is a dq_group; this command covers mac, dot, huffman units" in capsys.readouterr().err
    assert main(["cost", "mac_int4xint8", "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "macforge: error: --workers must be a positive number of processes, not 0"


@pytest.mark.slow
def test_full_cost_command_reports_out_of_sample_errors() -> None:
    """The full fitting sweep through the command line, as a user runs it."""
    out = subprocess.run([sys.executable, "-m", "sim.cli", "cost", "mac_int8xint8", "dot16_int8xint8", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    m = doc["model"]
    assert m["n_points"] == len(costfit.fit_specs("area"))
    assert m["flagged_features"] == []  # the coverage units give every feature >= 5 units
    assert set(m["held_out_family"]) == {"dot", "dint", "lut", "fp", "int_zp", "pipelined"}
    assert m["leave_one_out"]["mean_abs_rel_error"] >= m["in_sample"]["mean_abs_rel_error"]
    assert m["leave_one_out"]["mean_abs_rel_error"] < 0.06
    assert m["component_errors"]["registers"]["max_abs_share_of_total"] < 0.01
    i8 = doc["units"][0]
    for c in ("multiplier", "accumulator", "registers"):  # the INT8 MAC's split, model vs synthesis
        assert i8["components_model"][c] == pytest.approx(i8["components_measured"][c], rel=0.10), c
    assert i8["in_fit"] and i8["leave_one_out_error"] is not None


@pytest.mark.slow
@pytest.mark.parametrize("latency", [1, 2])
def test_register_bits_of_every_named_unit(latency: int) -> None:
    """dot16_int8xint8 at latency 2: 32 + 22 flip-flops (tree output + en/clr), not 32 + 258."""
    from dataclasses import replace

    for name in unit_names():
        spec = get_unit(name)
        if spec.kind not in ("mac", "dot"):
            continue
        if latency > 1:
            spec = replace(spec, name=f"{name}_l{latency}", latency=latency)
        assert synth_unit(spec)["cells_by_type"].get("DFF", 0) == cost.register_bits(spec), spec.name
