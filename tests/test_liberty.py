"""A user's Liberty library through the flow (rtl.flow.load_liberty, synth/energy --liberty) on
tests/data/tiny45.lib, a five-cell library written for these tests, and the generic library's
documented numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.errors import MacforgeError
from rtl.flow import (DFF_CLOCK_ENERGY, function_truth_table, generic_library, load_liberty, parse_liberty, synth_unit,
                      unit_energy)
from sim.cli import main

TINY = Path(__file__).parent / "data" / "tiny45.lib"
HALF_V2 = 1.1 ** 2 / 2  # fJ per fF per toggle at tiny45's nom_voltage


def test_tiny_library_numbers_are_read_at_the_stated_point():
    lib = load_liberty(TINY)
    assert (lib.nand2, lib.buf, lib.dff) == ("TNAND2", "TBUF", "TDFF")
    assert set(lib.cells) == {"TINV", "TNAND2", "TNOR2", "TBUF", "TDFF"}
    nand = lib.cells["TNAND2"]
    assert nand.pin_cap == {"A1": 1.6, "A2": 1.6} and nand.area == 0.8
    # internal energy: (rise + fall) / 2 of each arc at the middle slew (0.05 ns), mean over arcs
    assert nand.toggle_energy == pytest.approx((0.9 + 0.5) / 2)
    assert lib.nand2_toggle_energy == pytest.approx(0.7 + HALF_V2 * 1.6)
    assert lib.cells["TNOR2"].toggle_energy == 0 and "no internal_power" in lib.cells["TNOR2"].notes[0]
    # delay of A1: mean of cell_rise / cell_fall, linear in load through 1.6 and 3.2 fF
    d16 = ((0.019 + 0.032 * 0.6 / 4) + (0.016 + 0.024 * 0.6 / 4)) / 2
    d32 = ((0.019 + 0.032 * 2.2 / 4) + (0.016 + 0.024 * 2.2 / 4)) / 2
    slope = (d32 - d16) / 1.6
    assert nand.delay["A1"] == pytest.approx((d16 - slope * 1.6, slope))
    assert set(lib.cells["TNOR2"].delay) == {"A1", "A2"}  # related_pin "A1 A2": one arc, two pins
    dff = lib.cells["TDFF"]
    assert (dff.clock, dff.data) == ("CK", "D")
    assert dff.clock_energy == pytest.approx(1.7 + 1.3 + 2 * 0.9 * HALF_V2)  # both edges + CK pin charged
    assert dff.setup == pytest.approx(0.045)
    assert lib.pj_per_energy_unit == pytest.approx(1e-3)  # fF × V² = fJ


def test_generic_library_documented_numbers():
    lib = generic_library()
    ref = 2 + 4 / 3  # NAND2: p 2 + one NAND2 input (g 4/3), in ½V²C_inv
    assert lib.nand2_toggle_energy == pytest.approx(ref)
    assert DFF_CLOCK_ENERGY == pytest.approx(12 / ref) == pytest.approx(3.6)
    assert lib.cells["DFF"].clock_energy / ref == pytest.approx(DFF_CLOCK_ENERGY)
    assert lib.cells["AOI21"].pin_cap == pytest.approx({"A": 2, "B": 2, "C": 5 / 3})
    assert lib.cells["NAND2"].area == 0.798 and lib.cells["DFF"].area == 4.522


@pytest.mark.parametrize("fn,inputs,table", [
    ("!(A1 & A2)", ("A1", "A2"), (1, 1, 1, 0)),
    ("(A B)'", ("A", "B"), (1, 1, 1, 0)),
    ("A+B'", ("A", "B"), (1, 1, 0, 1)),
    ("(A^B)", ("A", "B"), (0, 1, 1, 0)),
    ("((A*S')+(B*S))", ("A", "B", "S"), (0, 1, 0, 1, 0, 0, 1, 1)),
])
def test_liberty_functions(fn, inputs, table):
    assert function_truth_table(fn, inputs) == table


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = TINY.read_text()
    assert old in text
    p = tmp_path / "bad.lib"
    p.write_text(text.replace(old, new, 1))
    return p


def test_bad_liberty_files_name_the_line_or_the_cell(tmp_path: Path):
    unclosed = tmp_path / "unclosed.lib"
    unclosed.write_text(TINY.read_text().rstrip()[:-1])  # the library's closing brace dropped
    with pytest.raises(MacforgeError, match=r"unclosed\.lib:\d+: liberty parse error: group library\(tiny45\) "
                                            r"opened on line 4 is not closed"):
        load_liberty(unclosed)
    with pytest.raises(MacforgeError, match=r"bad\.lib:\d+: liberty parse error: unmatched '\}'"):
        load_liberty(_variant(tmp_path, "      function : \"IQ\";\n", "      function : \"IQ\";\n  }\n  }\n}\n}\n"))
    with pytest.raises(MacforgeError, match=r"bad\.lib:24: liberty parse error: expected ':' or '\(' after 'area'"):
        load_liberty(_variant(tmp_path, "    area : 0.5;", "    area 0.5;"))
    with pytest.raises(MacforgeError, match="has no positive-edge D flip-flop without set/reset"):
        load_liberty(_variant(tmp_path, "ff (IQ, IQN) { next_state : \"D\"; clocked_on : \"CK\"; }",
                              "ff (IQ, IQN) { next_state : \"D\"; clocked_on : \"CK\"; clear : \"D\"; }"))
    with pytest.raises(MacforgeError, match="has no 2-input NAND .the NAND2-equivalent reference. cell"):
        load_liberty(_variant(tmp_path, 'function : "!(A1 & A2)";', 'function : "(A1 & A2)";'))
    with pytest.raises(MacforgeError, match="has no buffer"):
        load_liberty(_variant(tmp_path, 'function : "A";', 'function : "!A";'))
    with pytest.raises(MacforgeError, match="cannot read Liberty file"):
        load_liberty(tmp_path / "missing.lib")
    with pytest.raises(MacforgeError, match=r"<liberty>:1: liberty parse error: expected one library"):
        parse_liberty("cell (X) { area : 1; }")


@pytest.mark.synth
def test_synthesis_energy_and_cli_with_a_liberty(capsys, tmp_path: Path):
    lib = load_liberty(TINY)
    r = synth_unit("mac_int4xint8", liberty=str(TINY))
    assert set(r["cells_by_type"]) <= set(lib.cells) and r["cells_by_type"]["TDFF"] == 32
    area = sum(lib.cells[k].area * n for k, n in r["cells_by_type"].items())
    assert r["nand2_eq"] == pytest.approx(area / 0.8)
    assert r["sequential_nand2_eq"] == pytest.approx(32 * 4.5 / 0.8)
    assert r["library"] == "tiny45" and r["critical_path_ns"] > lib.cells["TDFF"].delay["CK"][0]
    comps = r["components_nand2_eq"]
    assert comps["registers"] == pytest.approx(32 * 4.5 / 0.8) and comps["total"] == r["nand2_eq"]
    e = unit_energy("mac_int4xint8", n_macs=256, liberty=str(TINY))
    assert e["library"] == "tiny45"
    assert e["clock_energy_per_mac_nand2"] == pytest.approx(32 * lib.cells["TDFF"].clock_energy / lib.nand2_toggle_energy)
    assert e["energy_per_mac_pj_liberty"] == pytest.approx(e["energy_per_mac_nand2"] * lib.nand2_toggle_energy * 1e-3)
    assert main(["synth", "mac_int4xint8", "--liberty", str(TINY), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert rec["nand2_eq"] == pytest.approx(r["nand2_eq"])
    bad = _variant(tmp_path, "    area : 0.5;", "    area 0.5;")
    assert main(["synth", "mac_int4xint8", "--liberty", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.lib:24: liberty parse error" in err[0]
    assert main(["energy", "mac_int4xint8", "--liberty", str(tmp_path / "none.lib")]) == 2
    assert "Liberty file" in capsys.readouterr().err
