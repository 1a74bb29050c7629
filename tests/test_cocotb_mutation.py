"""The testbench can fail: a unit built with an injected bug (``rtl.Fault``) is reported with
mismatches and the inputs of the failing cycles; the same unit without the bug passes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from models.errors import MacforgeError
from models.units import get_unit

ROOT = Path(__file__).resolve().parents[1]

import rtl
import testbench


def _build_root(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]
    return ROOT / "build" / "tests" / "cocotb_mutation" / name


def _require(sim: str) -> None:
    try:
        testbench.check_simulator(sim)
    except MacforgeError as e:
        pytest.skip(str(e))


def _half_unit_special(unit: str) -> int:
    """The dINT code whose value is +0.5: integer +1 in the unit's half-units."""
    table = get_unit(unit).decode.table
    return table.index(1)


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("mac_int4xint8", "icarus", {"kind": "product_bit", "bit": 3}),
    ("dot4_int4xint8", "icarus", {"kind": "product_bit", "bit": 5, "lane": 2}),
    ("mac_dint4_asym_xint8", "icarus", {"kind": "dint_special"}),
    ("mac_int8xint8", "icarus", {"kind": "acc_carry", "bit": 20}),
    ("mac_dint4_sym_xint8", "verilator", {"kind": "dint_special"}),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("unit,sim,fault", CASES, ids=[f"{u}-{f['kind']}-{s}" for u, s, f in CASES])
def test_injected_fault_is_reported(
    unit: str, sim: str, fault: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    _require(sim)
    root = _build_root(request)
    bug = rtl.Fault(**fault)
    (bad,) = testbench.run_units(
        [unit],
        simulator=sim,
        vectors=2000,
        real_data=False,
        fault=bug,
        build_root=root,
        keep_failed=False,
    )
    assert bad.mismatches > 0
    assert bad.failures and all(f["instance"] == "unit+fault" for f in bad.failures)
    onsets = [f for f in bad.failures if f["onset"]]
    assert onsets, "the first failures are error onsets (the previous cycle was still right)"
    for f in onsets:
        assert {"w", "a", "en", "clr"} <= set(f["inputs"]) and f["got"] != f["expected"]
        diff = (f["got"] - f["expected"]) % (1 << 32)
        if bug.kind == "product_bit":
            # the flipped product bit is the whole error of the cycle it first shows in
            assert diff in (1 << bug.bit, (1 << 32) - (1 << bug.bit))
        elif bug.kind == "acc_carry":
            assert diff % (1 << (bug.bit + 1)) == 0
        else:
            special = _half_unit_special(unit)
            lanes = f["inputs"]["w"] if isinstance(f["inputs"]["w"], list) else [f["inputs"]["w"]]
            assert special in lanes, (
                f"a dINT-special failure without the special code {special}: {f}"
            )
    text = testbench.format_table([bad])
    assert f"{unit} [unit+fault] cycle {bad.failures[0]['cycle']}" in text and "inputs" in text

    (good,) = testbench.run_units(
        [unit], simulator=sim, vectors=2000, real_data=False, variants=False, build_root=root
    )
    assert good.mismatches == 0 and good.vectors == bad.vectors


# ------------------------------------------------------------------ control-path mutants
# (unit spec, simulator, fault): each is one plausible control bug; the testbench's plan (with its
# exhaustive sections cut as in test_ci_units, which keeps the directed sections whole) must
# report it, and the same unit without it must pass on the same stream.
CONTROL_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("mac_int4xint8", "icarus", {"kind": "en_ignored"}),
    ("dot4_int8xint8", "icarus", {"kind": "clr_ignored"}),
    ("kind=mac,weights=int8,latency=3", "icarus", {"kind": "reset_pipeline"}),
    ("kind=mac,weights=int4,acc_bits=14,overflow=saturate", "icarus", {"kind": "sat_clamp"}),
    ("mac_lut4xint8", "icarus", {"kind": "lut_waddr", "bit": 0}),
    ("mac_dint4_asym_xint8", "icarus", {"kind": "zp_sign"}),
    ("dq_int2_group_mac", "icarus", {"kind": "dq_last"}),
    ("mac_fp8_e4m3xint8", "verilator", {"kind": "fp_exponent"}),
]


def _short_stream(seed: int) -> Any:
    from test_ci_units import RANDOM_VECTORS, shorten  # tests/ is on sys.path

    made: list[testbench.Stimulus] = []

    def stim_fn(spec: Any, ports: list[dict[str, object]]) -> testbench.Stimulus:
        made.append(shorten(testbench.build_stimulus(spec, ports, vectors=RANDOM_VECTORS, seed=seed), seed=seed))
        return made[-1]

    return stim_fn, made


@pytest.mark.cocotb
@pytest.mark.parametrize("unit,sim,fault", CONTROL_CASES, ids=[f"{f['kind']}-{s}" for _, s, f in CONTROL_CASES])
def test_control_path_fault_is_reported(
    unit: str, sim: str, fault: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    from models.units import as_spec

    _require(sim)
    root = _build_root(request)
    spec = as_spec(unit)
    bug = rtl.Fault(**fault)
    stim_fn, made = _short_stream(seed=8)
    bad = testbench.run_stream(spec, stim_fn, simulator=sim, fault=bug, variants=False, build_root=root,
                               keep_failed=False)
    (stim,) = made
    assert bad.mismatches > 0, f"{bug.kind} went unnoticed"
    assert bad.failures and all(f["instance"] == "unit+fault" for f in bad.failures)
    onsets = [f for f in bad.failures if f["onset"]]
    assert onsets
    lat = spec.latency
    hi, lo = (1 << (spec.acc_bits - 1)) - 1, -(1 << (spec.acc_bits - 1))
    for f in onsets:
        t, inp = f["input_cycle"], f["inputs"]
        assert f["got"] != f["expected"]
        if bug.kind == "en_ignored":  # an idle cycle added its operands
            assert inp["en"] == 0 and inp["rst"] == 0
        elif bug.kind == "clr_ignored":  # a clear kept the old sum
            assert inp["clr"] == 1 and inp["rst"] == 0
        elif bug.kind == "reset_pipeline":  # operands in flight at a reset landed after it
            # (operands of cycle t reach acc at edge t + L - 1; a reset in t .. t + L - 1 drops them)
            assert stim.cols["rst"][t:t + lat].any()
        elif bug.kind == "sat_clamp":  # one step short of the clamp
            assert f["expected"] in (hi, lo) and abs(f["got"] - f["expected"]) == 1
        elif bug.kind == "lut_waddr":  # the entry read was (mis)written earlier
            written = stim.cols["lut_waddr"][:t][stim.cols["lut_we"][:t] == 1]
            assert written.size and ({inp["w"], inp["w"] ^ 1} & set(written.tolist()))
        elif bug.kind == "zp_sign":  # only a nonzero zero point shows the sign
            assert inp["z"] != 0
        elif bug.kind == "dq_last":  # the group boundary is where it goes wrong
            assert stim.cols["last"][max(0, t - 1):t + 1].any()
        elif bug.kind == "fp_exponent":  # a normal code (exponent field > 0) with a nonzero product
            assert (inp["w"] >> 3) & 0xF and inp["a"] != 0
    good = testbench.run_stream(spec, lambda s, p: stim, simulator=sim, variants=False, build_root=root)
    assert good.mismatches == 0 and good.vectors == bad.vectors >= stim.cycles
