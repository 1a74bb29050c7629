"""A user's own format and datapath, end to end with no code change: TOML / inline spec ->
format -> golden -> RTL -> cocotb on Icarus and Verilator (exhaustive) -> synthesis -> cost.

(a) ``my4``: a 4-bit codebook nobody ships (examples/formats/my_formats.toml) in a MAC;
(b) the inline ``kind=dot,weights=int5,acts=int6,lanes=6`` PE.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import testbench
from models import cost, golden
from models import units as U
from models.errors import MacforgeError
from models.formats import _registry, get_format, load_formats
from models.units import as_spec, signed_bits
from rtl.flow import synth_unit

ROOT = Path(__file__).resolve().parents[1]
EX_FORMATS = ROOT / "examples" / "formats" / "my_formats.toml"
CASES = {"codebook": "kind=mac,weights=my4,acts=int8", "int5xint6_pe": "kind=dot,weights=int5,acts=int6,lanes=6"}


@pytest.fixture(autouse=True)
def user_formats():
    saved_f, saved_u = dict(_registry._USER), dict(U._USER_UNITS)
    load_formats(EX_FORMATS)
    yield
    _registry._USER.clear()
    _registry._USER.update(saved_f)
    U._USER_UNITS.clear()
    U._USER_UNITS.update(saved_u)


def _build_root(request: pytest.FixtureRequest) -> Path:
    return ROOT / "build" / "tests" / "userdef" / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]


def _require(sim: str) -> None:
    try:
        testbench.check_simulator(sim)
    except MacforgeError as e:
        pytest.skip(str(e))


def test_golden_of_the_user_units_equals_the_reference():
    rng = np.random.default_rng(7)
    mac = as_spec(CASES["codebook"])
    w = rng.integers(0, 16, 500)
    a = rng.integers(-128, 128, 500)
    assert golden.mac(mac, w, a).tolist() == golden.ref_mac(mac, w.tolist(), a.tolist())
    pe = as_spec(CASES["int5xint6_pe"])
    assert pe.name == "dot6_int5_x_int6" and pe.act_range == (-32, 31)
    wd = rng.integers(0, 32, (200, 6))
    ad = rng.integers(-32, 32, (200, 6))
    assert golden.dot(pe, wd, ad).tolist() == golden.ref_dot(pe, wd.tolist(), ad.tolist())
    # int5 codes are two's complement: code 16 is -16
    assert golden.dot(pe, [[16, 0, 0, 0, 0, 0]], [[-32, 0, 0, 0, 0, 0]]).tolist() == [512]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("case", list(CASES))
def test_user_unit_rtl_matches_golden_exhaustively(case: str, sim: str, request: pytest.FixtureRequest):
    _require(sim)
    spec = as_spec(CASES[case])
    results = testbench.run_units([spec], simulator=sim, exhaustive=True, seed=11, build_root=_build_root(request))
    (r,) = results
    assert r.unit == spec.name and r.simulator == sim
    assert r.exhaustive, "every (w, a) pair of the unit was enumerated"
    wcodes, (alo, ahi) = 1 << spec.decode.bits, spec.act_range
    assert r.vectors >= wcodes * (ahi - alo + 1)
    assert r.mismatches == 0, testbench.format_table(results)


@pytest.mark.cocotb
def test_rounded_half_unit_products_on_icarus(request: pytest.FixtureRequest):
    # dINT-B with rne product rounding: the RTL rounds each half-unit product like golden
    _require("icarus")
    spec = as_spec("kind=dot,lanes=2,weights=dint4_sym,product_round=rne,acc_bits=14,overflow=saturate")
    (r,) = testbench.run_units([spec], simulator="icarus", vectors=4000, seed=5, build_root=_build_root(request))
    assert r.exhaustive and r.mismatches == 0 and r.checked >= 16 * 256


@pytest.mark.synth
@pytest.mark.parametrize("case", list(CASES))
def test_user_unit_synthesizes_and_feeds_the_cost_model(case: str):
    spec = as_spec(CASES[case])
    rec = synth_unit(spec, "generic")
    assert rec["unit"] == spec.name
    # the netlist keeps exactly the accumulator's flip-flops (latency 1: no pipeline registers),
    # the count the cost model derives from the spec
    assert rec["cells_by_type"].get("DFF", 0) == cost.register_bits(spec) == spec.acc_bits
    f = cost.features(spec)
    wlo, whi = spec.weight_int_range
    assert f["multiplier"] == spec.lanes * signed_bits(wlo, whi) * spec.act_bits
    assert f["accumulator"] == spec.acc_bits and f["product"] == spec.lanes * spec.product_bits
    if case == "codebook":
        # my4 in half-units: -12..16 (6-bit signed), products in [-2048, 2032]: 12 bits
        assert (wlo, whi, spec.product_bits, f["multiplier"]) == (-12, 16, 12, 6 * 8)
        assert get_format("my4").values.tolist()[-1] == 8
