"""The macforge CLI contract: --json is one JSON document on stdout; bad input exits 2 with one line."""

from __future__ import annotations

import json
import math

import pytest

from models.formats import format_names, get_format
from sim.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_formats_json_lists_every_format_with_values(capsys):
    rc, out, err = run(capsys, "formats", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    recs = {r["name"]: r for r in doc["formats"]}
    assert list(recs) == format_names()
    required = ["int2", "int8", "int4_asym", "int8_asym", "dint4_asym", "dint4_sym", "fp4_e2m1", "fp6_e2m3",
                "fp6_e3m2", "fp8_e4m3", "fp8_e5m2", "nf4", "mxfp4", "mxint8", "nvfp4", "decoupleq_int2",
                "fp32", "fp16", "bf16", "e8m0", "ue4m3", "crd4_normal_rms", "nupes4_a0.8"]
    for name in required:
        assert name in recs, name
    for name, r in recs.items():
        f = get_format(name)
        if f.bits <= 8:
            vals = r["values"]
            assert len(vals) == 2 ** f.bits
            for v, ref in zip(vals, f.values):
                if math.isnan(ref):
                    assert v is None
                elif math.isinf(ref):
                    assert v == ("inf" if ref > 0 else "-inf")
                else:
                    assert v == ref
        if f.kind == "entropy":  # variable-length codes: the coded size, below the symbol width
            assert r["bits_per_element"] == r["entropy"]["bits_per_element"] < f.bits
        else:
            assert r["bits_per_element"] >= f.bits
    assert recs["dint4_sym"]["values"][:8] == [0, 0.5, 1, 2, 3, 4, 5, 6]
    assert recs["int4"]["bits_per_element"] == 4.125
    assert recs["dint4_asym"]["zero_point"]["max"] == 13


def test_formats_table_and_selection(capsys):
    rc, out, _ = run(capsys, "formats", "dint4_asym", "nupes4_a0.5")
    assert rc == 0
    assert "dint4_asym" in out and "0 1 4 9 16 25 36 49" in out


def test_unknown_format_exits_2_with_known_names(capsys):
    rc, out, err = run(capsys, "formats", "int9")
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("macforge: error: unknown format 'int9'; known: int2, int3")


def test_unknown_unit_exits_2(capsys):
    rc, _, err = run(capsys, "sim", "mac_nope")
    assert rc == 2
    assert "unknown unit 'mac_nope'; known: mac_int8xint8" in err


def test_units_json(capsys):
    rc, out, _ = run(capsys, "units", "--json", "mac_dint4_asym_xint8", "dot8_int4xint8")
    assert rc == 0
    units = {u["name"]: u for u in json.loads(out)["units"]}
    u = units["mac_dint4_asym_xint8"]
    assert (u["acc_bits"], u["overflow"], u["latency"], u["integer_unit"]) == (32, "wrap", 1, "half")
    assert u["weight_int_range"] == [-26, 26]
    assert units["dot8_int4xint8"]["lanes"] == 8


@pytest.mark.parametrize("bad", ["crd4_normal_absmax", "nupes4_a0", "crd4_t2_rms"])
def test_bad_parametric_names(bad, capsys):
    rc, _, err = run(capsys, "formats", bad)
    assert rc == 2 and "macforge: error:" in err and len(err.strip().splitlines()) == 1


def test_report_unknown_section_exits_2_and_writes_nothing(capsys, tmp_path):
    import sim.report as rep

    before = sorted(p.name for p in rep.REPORTS.iterdir())
    rc, _, err = run(capsys, "report", "nope")
    assert rc == 2
    assert err.strip() == "macforge: error: unknown report section 'nope'; known: formats, w4a8, whatif, w4a8_accuracy, variable_length"
    assert sorted(p.name for p in rep.REPORTS.iterdir()) == before


@pytest.mark.parametrize("flag, value, message", [
    ("--cell-energy", "bogus", "unknown cell-energy variant 'bogus'; known: library, internal_x0.5"),
    ("--clock-energy", "-1", "--clock-energy must be a finite number >= 0"),
    ("--clock-energy", "nan", "--clock-energy must be a finite number >= 0"),
])
def test_energy_sensitivity_flags_refuse_bad_values(flag, value, message, capsys):
    rc, out, err = run(capsys, "energy", "mac_int8xint8", flag, value)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
