"""Cost-model, report and Verilog-export review (issue 7 §3): features read from the Format
object (kind, 2**bits LUT entries), decoupleQ bits/element in reports/formats.md from the
library, and an unwritable Verilog output directory as a one-line error (exit 2)."""

from __future__ import annotations

import csv
import io
from contextlib import redirect_stderr
from dataclasses import replace
from pathlib import Path

import pytest

from models import cost
from models.errors import MacforgeError
from models.formats import Scaling, get_format
from models.units import UnitSpec, get_unit


# ------------------------------------------------------------------ cost.features
def test_features_accept_a_format_object() -> None:
    """A UnitSpec on a Format object (the kernels accept it) has the same features as the named one."""
    for name in ("mac_int4xint8", "mac_dint4_sym_xint8", "mac_dint4_asym_xint8", "mac_fp8_e4m3xint8",
                 "dot8_dint4_sym_xint8", "mac_lut4xint8"):
        u = get_unit(name)
        obj = replace(u)
        object.__setattr__(obj, "weight_format", get_format(u.weight_format))
        assert cost.features(obj) == cost.features(u)


def test_dint_detected_by_kind_not_name() -> None:
    dint = replace(get_format("dint4_sym"), name="my_sign_magnitude4")
    u = UnitSpec(name="u1", kind="mac", weight_format=dint)  # type: ignore[arg-type]
    assert cost.features(u)["decode_dint"] == 1.0
    assert cost.features(u) == cost.features(get_unit("mac_dint4_sym_xint8"))
    named_like_dint = replace(get_format("int4"), name="dint_but_really_int4")
    v = UnitSpec(name="u2", kind="mac", weight_format=named_like_dint)  # type: ignore[arg-type]
    assert cost.features(v)["decode_dint"] == 0.0
    assert cost.features(v) == cost.features(get_unit("mac_int4xint8"))


def test_programmable_lut_registers_from_the_format() -> None:
    """A programmable LUT holds 2**bits entries of lut_bits: 8 for a 3-bit format, not 16."""
    u3 = UnitSpec(name="lut3", kind="mac", weight_format="crd3_normal_absmax64", lut="programmable")
    assert cost.register_bits(u3) == u3.acc_bits + 8 * u3.lut_bits
    u4 = get_unit("mac_lut4xint8")
    assert cost.register_bits(u4) == u4.acc_bits + 16 * u4.lut_bits
    u2 = UnitSpec(name="lut2", kind="mac", weight_format="int2", lut="programmable", lut_bits=6, latency=2)
    per_stage = u2.lanes * u2.product_bits + 2
    assert cost.register_bits(u2) == u2.acc_bits + per_stage + 4 * 6


# ------------------------------------------------------------------ reports/formats.md
def test_report_decoupleq_bits_come_from_the_library() -> None:
    """The decoupleQ rows store FP32 s and z per group of 64: 2 + 64/64 = 3 bits/element."""
    from sim.report import formats_section

    files = formats_section(seed=0, n_samples=1 << 14)
    table = list(csv.reader(io.StringIO(files["formats.csv"].decode())))
    assert table[0][:2] == ["anchor", "bits/elem"]
    rows = [r for r in table if r[0].startswith("decoupleQ")]
    assert len(rows) == 2
    want = get_format("decoupleq_int2").bits_per_element(
        Scaling(method="affine", group_size=64, scale_format="fp32"))
    assert want == 3.0
    for r in rows:
        assert r[1] == f"{want:.4g}"
    assert f"| {rows[0][0]} | 3 |" in files["formats.md"].decode()


# ------------------------------------------------------------------ write_verilog
def test_write_verilog_unwritable_directory(tmp_path: Path) -> None:
    import rtl

    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory\n")
    with pytest.raises(MacforgeError) as ei:
        rtl.write_verilog(["mac_int4xint8"], blocker / "sub")
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot write Verilog to {blocker / 'sub'}: ")
    # a unit file that is a directory
    out = tmp_path / "out"
    (out / "mac_int4xint8.v").mkdir(parents=True)
    with pytest.raises(MacforgeError) as ei:
        rtl.write_verilog(["mac_int4xint8"], out)
    assert str(ei.value).startswith(f"cannot write Verilog to {out / 'mac_int4xint8.v'}: ")


def test_cli_verilog_unwritable_directory_exit_2(tmp_path: Path) -> None:
    from sim.cli import main

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["verilog", "mac_int4xint8", "--out", str(blocker / "sub")])
    assert rc == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("macforge: error: cannot write Verilog to ")
    assert not (blocker / "sub").exists()
