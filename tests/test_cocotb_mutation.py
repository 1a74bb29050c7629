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
