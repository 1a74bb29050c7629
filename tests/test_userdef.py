"""User-defined formats and unit specs as data: TOML / dict / inline string -> Format / UnitSpec,
the registries, generic minifloat and MX names, dINT parameters, and their bad-input errors."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from models import golden
from models.errors import MacforgeError, UnknownNameError
from models.formats import _registry, format_from_dict, get_format, load_formats, register_format
from models import units as U
from models.units import as_spec, get_unit, load_units, register_unit, unit_from_spec
from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
EX_FORMATS = ROOT / "examples" / "formats" / "my_formats.toml"
EX_UNITS = ROOT / "examples" / "units" / "my_units.toml"


@pytest.fixture(autouse=True)
def clean_registries():
    """Every test starts and ends with only the built-in formats and units."""
    saved_f, saved_u = dict(_registry._USER), dict(U._USER_UNITS)
    _registry._USER.clear()
    U._USER_UNITS.clear()
    yield
    _registry._USER.clear()
    _registry._USER.update(saved_f)
    U._USER_UNITS.clear()
    U._USER_UNITS.update(saved_u)


def write(tmp_path: Path, text: str, name: str = "f.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


MY4 = [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6, 8]


# ------------------------------------------------------------------------------ formats
def test_example_file_loads_and_every_consumer_sees_it():
    fmts = load_formats(EX_FORMATS)
    assert [f.name for f in fmts] == ["my4", "dint4_sym_q", "dint4_asym_t", "fp7_e3m3"]
    my4 = get_format("my4")
    assert my4.values.tolist() == MY4 and my4.bits == 4 and my4.kind == "lut"
    assert my4.default_scaling.group_size == 64 and my4.default_scaling.scale_format == "bf16"
    # ties = "away": exact midpoints go to the larger magnitude; saturation at both ends
    assert my4.decode(my4.encode([0.75, -0.75, 2.5, -2.5, 0.25, 100, -100])).tolist() == \
        [1, -1, 3, -3, 0.5, 8, -6]
    # the unit spec, the golden model and the reference take it by name
    u = as_spec("kind=mac,weights=my4,acts=int8")
    assert u.name == "mac_my4_x_int8" and u.decode.unit == Fraction(1, 2)
    assert list(u.decode.table) == [int(2 * v) for v in MY4]
    w, a = np.arange(16), np.arange(-8, 8) * 16
    assert golden.mac(u, w, a).tolist() == golden.ref_mac(u, w.tolist(), a.tolist())
    assert golden.mac(u, w, a)[-1] == sum(int(2 * v) * int(x) for v, x in zip(MY4, a))
    q = my4.quantize(np.random.default_rng(0).normal(size=(8, 128)))
    assert q.bits_per_element == 4 + 16 / 64


def test_dict_and_toml_give_the_same_format(tmp_path):
    d = {"name": "cb4", "values": MY4, "scaling": {"group_size": 32, "scale_format": "fp16"}}
    p = write(tmp_path, '[[format]]\nname = "cb4"\nvalues = ' + json.dumps(MY4) +
              '\n[format.scaling]\ngroup_size = 32\nscale_format = "fp16"\n')
    (from_toml,) = load_formats(p, register=False)
    from_dict = format_from_dict(d)
    assert _registry._fingerprint(from_toml) == _registry._fingerprint(from_dict)
    register_format(d)
    register_format(from_toml)  # identical: accepted
    assert get_format("cb4").default_scaling.group_size == 32


def test_families_build_the_builtin_tables():
    assert np.array_equal(format_from_dict({"name": "i4", "family": "int", "bits": 4}).values, get_format("int4").values)
    assert np.array_equal(format_from_dict({"name": "d4", "family": "dint", "variant": "asym"}).values,
                          get_format("dint4_asym").values)
    assert np.array_equal(format_from_dict({"name": "s4", "family": "dint", "variant": "sym"}).values,
                          get_format("dint4_sym").values)
    e4 = format_from_dict({"name": "e4", "family": "minifloat", "ebits": 4, "mbits": 3, "specials": "fn"})
    assert np.array_equal(e4.values, get_format("fp8_e4m3").values, equal_nan=True)
    n = format_from_dict({"name": "np4", "family": "nupes", "bits": 4, "a": 0.8})
    assert np.array_equal(n.values, get_format("nupes4_a0.8").values)
    c = format_from_dict({"name": "c4", "family": "crd", "bits": 4, "dist": "t", "nu": 5, "scale_rule": "rms"})
    assert np.array_equal(c.values, get_format("crd4_t5_rms").values)
    za = format_from_dict({"name": "za", "family": "int_asym", "bits": 4})
    assert za.has_zero_point and za.default_scaling.method == "minmax" and za.default_scaling.zero_point_bits == 4


def test_dint_parameters_change_the_code_and_defaults_keep_the_paper():
    # defaults: PAPERS.md §1.1 Variant A (codes 0..13 = q, 14 = +0.5, 15 = -0.5; 0.75 / 0.25)
    a = get_format("dint4_asym")
    assert a.values.tolist() == list(range(14)) + [0.5, -0.5]
    assert a.params["thresholds"] == (0.75, 0.25) and a.params["special_codes"] == (14, 15)
    z = np.array([5])
    assert a.encode([0.74, 0.26, 0.24, -0.74], z).tolist() == [14, 14, 5, 15]
    moved = format_from_dict({"name": "dt", "family": "dint", "variant": "asym", "thresholds": [0.6, 0.4]})
    assert moved.encode([0.74, 0.5, 0.39, -0.45], z).tolist() == [6, 14, 5, 15]
    swapped = format_from_dict({"name": "ds", "family": "dint", "variant": "asym", "special_codes": [15, 14]})
    assert swapped.values[14] == -0.5 and swapped.encode([0.5], z).tolist() == [15]
    b = format_from_dict({"name": "db", "family": "dint", "variant": "sym", "magnitudes": [0, 0.25, 1, 2, 3, 4, 6, 8]})
    assert b.decode(b.encode([0.2, 0.125, 7.5, 7, -5])).tolist() == [0.25, 0.25, 8, 6, -6]
    assert get_format("dint4_sym").encode([0.25, 0.75, 2.5, 3.5]).tolist() == [1, 2, 3, 5]  # as before
    with pytest.raises(MacforgeError, match=r"0 < t_zero <= denormal <= t_half <= 1"):
        format_from_dict({"name": "x", "family": "dint", "variant": "asym", "thresholds": [0.25, 0.75]})
    with pytest.raises(MacforgeError, match=r"magnitudes must start at 0 and be finite and strictly increasing"):
        format_from_dict({"name": "x", "family": "dint", "variant": "sym", "magnitudes": [0, 2, 1, 3, 4, 5, 6, 7]})


@pytest.mark.parametrize("name,dtype", [
    ("fp8_e3m4", ml_dtypes.float8_e3m4), ("fp8_e4m3_ieee", ml_dtypes.float8_e4m3),
    ("fp8_e4m3_fnuz", ml_dtypes.float8_e4m3fnuz), ("fp8_e5m2_fnuz", ml_dtypes.float8_e5m2fnuz),
    ("fp8_e4m3", ml_dtypes.float8_e4m3fn), ("fp8_e5m2", ml_dtypes.float8_e5m2),
])
def test_generic_minifloat_names_match_ml_dtypes(name, dtype):
    f = get_format(name)
    ref = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float64)
    assert np.array_equal(f.values, ref, equal_nan=True)
    x = np.random.default_rng(1).normal(size=50_000) * f.max_value / 8
    grid = np.unique(ref[np.isfinite(ref)])
    x = np.concatenate([x[np.abs(x) <= f.max_value], (grid[:-1] + grid[1:]) / 2])  # every tie
    # float32-representable inputs: ml_dtypes converts through float32 (a double rounding for
    # float64 inputs just below a midpoint)
    x = x[np.isfinite(x) & (np.abs(x) <= f.max_value)].astype(np.float32).astype(np.float64)
    assert np.array_equal(f.encode(x), x.astype(dtype).view(np.uint8))
    rec = json.loads(_cli_out(["formats", name, "--json"]))["formats"][0]["finfo"]
    fi = ml_dtypes.finfo(dtype)
    assert rec["max_finite"] == float(fi.max) and rec["smallest_normal"] == float(fi.smallest_normal)
    assert rec["smallest_subnormal"] == float(fi.smallest_subnormal) and rec["eps"] == float(fi.eps)
    assert rec["emax"] == fi.maxexp - 1 and rec["emin"] == fi.minexp


def _cli_out(argv):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


def test_nf4_double_quantization_costs_4_127_bits():
    f = get_format("nf4_dq")
    assert np.array_equal(f.values, get_format("nf4").values)
    # PAPERS.md §5: block 64 with double-quantized absmax ≈ 4.127 b/elem (4 + 8/64 + 32/(64·256))
    assert f.bits_per_element() == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-4)
    w = np.random.default_rng(2).normal(size=(64, 1024))
    plain, dq = get_format("nf4").quantize(w), f.quantize(w)
    err = lambda q: float(np.mean((q.dequantize() - w) ** 2))  # noqa: E731
    assert err(plain) < err(dq) < 1.05 * err(plain), "8-bit scales cost little accuracy"


def test_generic_minifloat_names_are_canonical():
    assert get_format("fp5_e2m2").values[:4].tolist() == [0, 0.25, 0.5, 0.75]
    assert get_format("fp8_e4m3").params["specials"] == "fn"
    with pytest.raises(UnknownNameError, match=r"did you mean 'fp8_e4m3'\?"):
        get_format("fp8_e4m3_fn")
    with pytest.raises(UnknownNameError, match=r"did you mean 'fp8_e4m3_fnuz'\?"):
        get_format("fp8_e4m3_b8_fnuz")
    with pytest.raises(UnknownNameError, match=r"1 \+ E \+ M = 9, not 8"):
        get_format("fp8_e4m4")
    with pytest.raises(MacforgeError, match=r"^a format name must be a string, not list \['int4'\]$"):
        get_format(["int4"])  # type: ignore[arg-type]


@pytest.mark.parametrize("name,elem", [("mxfp6_e2m3", "fp6_e2m3"), ("mxfp6_e3m2", "fp6_e3m2"),
                                       ("mxfp8_e4m3", "fp8_e4m3"), ("mxfp8_e5m2", "fp8_e5m2")])
def test_mx_block_formats_follow_ocp_mx(name, elem):
    f, e = get_format(name), get_format(elem)
    assert np.array_equal(f.values, e.values, equal_nan=True)
    sc = f.default_scaling
    assert (sc.group_size, sc.method, sc.scale_format) == (32, "mx", "e8m0")
    assert f.bits_per_element() == f.bits + 8 / 32
    # OCP MX v1.0 §6.3: X = 2^(floor(log2 amax) - emax_elem); emax_elem of E2M3/E3M2/E4M3/E5M2
    emax = {"mxfp6_e2m3": 2, "mxfp6_e3m2": 4, "mxfp8_e4m3": 8, "mxfp8_e5m2": 15}[name]
    block = np.linspace(-1, 1, 32) * 5.0  # amax 5: floor(log2 5) = 2
    q = f.quantize(block[None, :])
    assert q.scales.ravel().tolist() == [2.0 ** (2 - emax)]


def test_bad_format_files_name_file_key_and_problem(tmp_path):
    cases = {
        '[[format]]\nname = "a"\nvalues = [0, 1, 2]\n': r"f\.toml:3: format 'a': key 'values': has 3 entries",
        '[[format]]\nname = "a"\nvalues = [0, 1, 1, 2]\n': r"key 'values': value 1 appears at codes \[1, 2\]",
        '[[format]]\nname = "a"\nbitz = 4\nvalues = [0, 1, 2, 3]\n': r"f\.toml:3: format 'a': key 'bitz': unknown key",
        '[[format]]\nname = "a"\nvalues = [0, 1, 2, 3]\nnan = "nan_code"\n': r"key 'nan': is 'nan_code' but no code",
        '[[format]]\nname = "a"\nfamily = "int"\nbits = 12\n': r"key 'bits': must be an integer in 2\.\.8, not 12",
        '[[format]]\nname = "a"\nfamily = "int"\nbits = 4\n[format.scaling]\nmethod = "minmax"\n':
            r"key 'method': 'minmax' needs a zero-point format",
        '[[format]]\nname = "a"\nfamily = "int"\nbits = 4\n[format.scaling]\ngroup = 4\n':
            r"f\.toml:6: format 'a': key 'group': unknown scaling key",
        '[[format]]\nname = "a"\nfamily = "minifloat"\nebits = 2\nmbits = 1\nspecials = "odd"\n':
            r"key 'specials': must be one of ieee, fn, fnuz, none",
        '[[format]]\nname = "a"\nfamily = "dint"\nvariant = "sym"\nthresholds = [0.7, 0.3]\n':
            r"key 'thresholds': applies to variant 'asym' only",
        '[[format]]\nname = "1a"\nvalues = [0, 1]\n': r"key 'name': must be a name",
        '[[format]]\nname = "a"\nvalues = [0, 1,\n': r"f\.toml: malformed TOML: Invalid value",
        '[[formats]]\nname = "a"\n': r"f\.toml:1: unknown top-level key 'formats'",
        '[[format]]\nname = "int4"\nvalues = [0, 1, 2, 3]\n': r"format 'int4' is already defined \(built in\)",
    }
    for text, pattern in cases.items():
        p = write(tmp_path, text)
        with pytest.raises(MacforgeError, match=pattern) as ei:
            load_formats(p)
        assert "\n" not in str(ei.value)
        assert _registry.user_format_names() == [], "nothing registered from a bad file"


def test_two_definitions_of_one_name(tmp_path):
    a = write(tmp_path, '[[format]]\nname = "t4"\nvalues = [0, 1, 2, 3]\n', "a.toml")
    b = write(tmp_path, '[[format]]\nname = "t4"\nvalues = [0, 1, 2, 4]\n', "b.toml")
    both = write(tmp_path, '[[format]]\nname = "u4"\nvalues = [0, 1, 2, 3]\n'
                           '[[format]]\nname = "v4"\nvalues = [0, 1, 2, 3]\n'
                           '[[format]]\nname = "u4"\nvalues = [0, 1, 2, 5]\n', "c.toml")
    load_formats(a)
    load_formats(a)  # identical again: fine
    with pytest.raises(MacforgeError, match=r"b\.toml: format 't4' is already defined with a different"):
        load_formats(b)
    with pytest.raises(MacforgeError, match=r"c\.toml: format 'u4' is already defined"):
        load_formats(both)
    assert _registry.user_format_names() == ["t4"], "a refused file registers none of its formats"
    # a builtin re-stated identically is accepted
    register_format(get_format("nf4"))


# -------------------------------------------------------------------------------- units
def test_inline_units_get_canonical_stable_names():
    u = as_spec("kind=dot,weights=int5,acts=int6,lanes=6,acc_bits=20,overflow=saturate,latency=2")
    assert u.name == "dot6_int5_x_int6_acc20_sat_l2"
    assert (u.kind, u.lanes, u.acc_bits, u.overflow, u.latency, u.act_range) == ("dot", 6, 20, "saturate", 2, (-32, 31))
    assert u.product_bits == 11  # -16 × -32 = 512 needs 11 signed bits
    assert as_spec("acts=int6,lanes=6,kind=dot,weights=int5,latency=2,overflow=saturate,acc_bits=20").name == u.name
    # the same datapath as a named unit takes its name (caches and reports share it)
    assert as_spec("kind=dot,weights=dint4_sym,lanes=8").name == "dot8_dint4_sym_xint8"
    assert as_spec({"kind": "mac", "weights": "int8"}) == get_unit("mac_int8xint8")
    assert as_spec("kind=mac,weights=nupes4_a0.8,lut=constant").name == "mac_nupes4_a0p8_x_int8_lutc8"


def test_named_units_are_defined_with_the_same_keys():
    for n in U.unit_names():
        spec = get_unit(n)
        d = {"kind": spec.kind, "weights": spec.weight_format, "acts": spec.act_format, "lanes": spec.lanes,
             "lut": spec.lut, "lut_bits": spec.lut_bits, "group_size": spec.group_size, "rows": spec.rows,
             "cols": spec.cols}
        assert unit_from_spec(d).name == n


def test_unit_file_and_registry(tmp_path):
    load_formats(EX_FORMATS)
    specs = load_units(EX_UNITS)
    assert [s.name for s in specs] == ["pe6_int5xint6", "mac_my4_x_int8", "mac_my4_x_int8_lutc6"]
    assert get_unit("pe6_int5xint6").latency == 2 and "pe6_int5xint6" in U.unit_names()
    register_unit("kind=dot,weights=int5,acts=int6,lanes=6,acc_bits=20,overflow=saturate,latency=2,name=pe6_int5xint6")
    with pytest.raises(MacforgeError, match=r"unit 'pe6_int5xint6' is already defined with a different datapath"):
        register_unit("kind=dot,weights=int5,acts=int6,lanes=6,name=pe6_int5xint6")
    with pytest.raises(MacforgeError, match=r"unit 'mac_int8xint8' is already defined"):
        register_unit("kind=mac,weights=int4,name=mac_int8xint8")
    bad = write(tmp_path, '[[unit]]\nkind = "dot"\nweights = "int4"\nlanes = 4\nlanez = 2\n', "u.toml")
    with pytest.raises(MacforgeError, match=r"u\.toml:5: unit '#1': unknown key 'lanez'"):
        load_units(bad)


@pytest.mark.parametrize("spec,pattern", [
    ("kind=mac,weights=int8,acts=fp8_e4m3", r"activation format 'fp8_e4m3' is a minifloat: no unit kind"),
    ("kind=mac,weights=int8,acts=int4_asym", r"activation format 'int4_asym' \(int_asym\) cannot feed a unit"),
    ("kind=mac,weights=int8,acts=mxint8", r"activation format 'mxint8' \(int\) cannot feed a unit"),
    ("kind=mac,weights=nf4,lut=constant,lut_bits=1", r"lut_bits must be an integer in 2\.\.16, not 1"),
    ("kind=mac,weights=nf4,lut=constant,lut_bits=0", r"lut_bits must be an integer in 2\.\.16, not 0"),
    ("kind=mac,weights=nf4,lut=constant,lut_bits=26", r"lut_bits must be an integer in 2\.\.16, not 26"),
    ("kind=mac,weights=nf4,lut=constant,lut_bits=70", r"lut_bits must be an integer in 2\.\.16, not 70"),
    ("kind=dq_group,weights=decoupleq_int2,group_size=8,coef_bits=40", r"coef_bits must be an integer in 2\.\.32"),
    ("kind=dq_group,weights=decoupleq_int2,group_size=8,frac_bits=-1", r"frac_bits must be an integer in 0\.\.32"),
    ("kind=mac,weights=int8,group_size=4", r"group_size applies to dq_group units only"),
    ("kind=mac,weights=int8,lanes=2", r"lanes must be an integer in 1\.\.256 \(1 for a mac\)"),
    ("kind=mac,weights=int8,acc_bits=10", r"acc_bits=10 cannot hold one mac result"),
    ("kind=mac,weights=int8,overflow=clamp", r"overflow must be 'wrap' or 'saturate'"),
    ("kind=mac,weights=int8,lanes=x", r"key 'lanes': must be an integer, not 'x'"),
    ("kind=mac,weights=int8,bogus=1", r"unknown key 'bogus'"),
    ("kind=mac,weights=int8,weights=int4", r"key 'weights' given twice"),
    ("kind=mac,acts=int8", r"key 'weights' missing"),
    ("kind=mac,weights=fp8_e5m2", r"format fp8_e5m2 has non-finite codes"),
    ("kind=mac,weights=nope4", r"unknown format 'nope4'"),
    ("kind=mac,weights=int8,name=9bad", r"unit name must be a Verilog identifier"),
    ("kind=mac,weights", r"'weights' is not key=value"),
])
def test_bad_unit_specs_are_one_line_errors(spec, pattern):
    with pytest.raises(MacforgeError, match=pattern) as ei:
        as_spec(spec)
    assert "\n" not in str(ei.value)


def test_nan_codes_only_for_minifloat_weights():
    register_format({"name": "nanlut", "values": [0, 1, 2, "nan"]})
    with pytest.raises(MacforgeError, match=r"format nanlut has NaN code\(s\) \[3\]: an integer datapath has no NaN"):
        as_spec("kind=mac,weights=nanlut")
    assert as_spec("kind=mac,weights=fp8_e4m3").decode.table[0x7F] == 0  # documented: NaN codes add 0


def test_unitspec_takes_a_format_object():
    f = format_from_dict({"name": "obj4", "values": MY4})
    u = U.UnitSpec(name="mac_obj4", kind="mac", weight_format=f)
    assert u.weight_format == "obj4" and get_format("obj4") is f
    assert golden.ref_mac(u, [15, 1], [3, 3]) == golden.mac(u, [15, 1], [3, 3]).tolist()


# ---------------------------------------------------------------------------------- CLI
def test_cli_formats_file_and_env(tmp_path, capsys, monkeypatch):
    rc = main(["formats", "--formats", str(EX_FORMATS), "--json"])
    out, _ = capsys.readouterr()
    names = [r["name"] for r in json.loads(out)["formats"]]
    assert rc == 0 and names[-4:] == ["my4", "dint4_sym_q", "dint4_asym_t", "fp7_e3m3"]
    _registry._USER.clear()
    extra = write(tmp_path, '[[format]]\nname = "envfmt"\nfamily = "int"\nbits = 3\n', "e.toml")
    monkeypatch.setenv("MACFORGE_FORMATS", f"{EX_FORMATS}:{extra}")
    rc = main(["units", "--unit", "kind=mac,weights=envfmt", "--unit", "kind=mac,weights=my4", "--json"])
    out, _ = capsys.readouterr()
    recs = json.loads(out)["units"]
    assert rc == 0 and [r["name"] for r in recs] == ["mac_envfmt_x_int8", "mac_my4_x_int8"]
    w_port = next(p for p in recs[0]["ports"] if p["name"] == "w")
    assert w_port["width"] == 3  # envfmt is a 3-bit int family


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    bad = write(tmp_path, '[[format]]\nname = "b"\nvalues = [0, 1, 2]\n')
    for argv in (["formats", "--formats", str(bad)],
                 ["sim", "--unit", "kind=mac,weights=int8,acts=fp8_e4m3"],
                 ["synth", "kind=mac,weights=int8,lanes=3"],
                 ["formats", "--formats", str(tmp_path / "missing.toml")]):
        rc = main(argv)
        out, err = capsys.readouterr()
        assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1, (argv, err)
        assert err.startswith("macforge: error: ")


def test_cli_verilog_of_an_inline_unit(tmp_path, capsys):
    out_dir = tmp_path / "v"
    rc = main(["verilog", "--formats", str(EX_FORMATS), "--unit", "kind=mac,weights=my4", "--out", str(out_dir)])
    out, _ = capsys.readouterr()
    assert rc == 0 and out.strip().endswith("mac_my4_x_int8.v")
    assert "module mac_my4_x_int8" in (out_dir / "mac_my4_x_int8.v").read_text()


# ------------------------------------------------------------------------ product rounding
@pytest.mark.parametrize("mode", ["floor", "rne"])
def test_half_unit_products_rounded_by_the_unit_parameter(mode):
    exact = get_unit("mac_dint4_sym_xint8")
    u = as_spec(f"kind=mac,weights=dint4_sym,product_round={mode}")
    assert u.name == f"mac_dint4_sym_x_int8_p{mode}" and u.integer_unit == "integer"
    assert exact.product_range == (-1536, 1536) and u.product_range == (-768, 768) and u.product_bits == 11
    # code 1 is +0.5: 0.5·a for odd a is a half; floor goes down, rne to the even neighbour
    a = np.array([3, 5, -3, -5, 7, 1])
    got = golden.mac(u, np.ones(6, int), a, clr=np.ones(6, int)).tolist()
    want = {"floor": [1, 2, -2, -3, 3, 0], "rne": [2, 2, -2, -2, 4, 0]}[mode]
    assert got == want
    rng = np.random.default_rng(5)
    w, x = rng.integers(0, 16, 3000), rng.integers(-128, 128, 3000)
    assert golden.mac(u, w, x).tolist() == golden.ref_mac(u, w.tolist(), x.tolist())
    W, A = rng.integers(0, 16, (7, 96)), rng.integers(-128, 128, (5, 96))
    assert golden.gemm(W, A, "dint4_sym", product_round=mode).tolist() == golden.ref_gemm(u, W.tolist(), A.tolist())
    d = as_spec(f"kind=dot,lanes=4,weights=dint4_asym,product_round={mode}")
    wd, ad, zd = rng.integers(0, 16, (300, 4)), rng.integers(-128, 128, (300, 4)), rng.integers(0, 14, 300)
    assert golden.dot(d, wd, ad, z=zd).tolist() == golden.ref_dot(d, wd.tolist(), ad.tolist(), z=zd.tolist())


def test_product_rounding_rtl_matches_golden_in_amaranth_sim():
    from amaranth.sim import Simulator

    import rtl

    for mode in ("floor", "rne"):
        spec = as_spec(f"kind=dot,lanes=2,weights=dint4_sym,product_round={mode},acc_bits=14,overflow=saturate")
        dut = rtl.build_unit(spec)
        rng = np.random.default_rng(9)
        w, a = rng.integers(0, 16, (400, 2)), rng.integers(-128, 128, (400, 2))
        clr = (rng.random(400) < 0.1).astype(int)
        seen: list[int] = []

        async def bench(ctx):  # type: ignore[no-untyped-def]
            for t in range(400):
                ctx.set(dut.en, 1)
                ctx.set(dut.clr, int(clr[t]))
                ctx.set(dut.w, [int(v) for v in w[t]])
                ctx.set(dut.a, [int(v) for v in a[t]])
                await ctx.tick()
                seen.append(ctx.get(dut.acc))

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        assert seen == golden.dot(spec, w, a, clr=clr).tolist()


def test_product_rounding_is_refused_where_it_means_nothing():
    with pytest.raises(MacforgeError, match=r"product_round='floor' applies to mac/dot/systolic units .* int4 "
                                            r"decodes in units of 1"):
        as_spec("kind=mac,weights=int4,product_round=floor")
    with pytest.raises(MacforgeError, match=r"nf4 has no exact integer form"):
        as_spec("kind=mac,weights=nf4,lut=constant,product_round=rne")
    with pytest.raises(MacforgeError, match=r"product_round must be one of exact, floor, rne, not 'ceil'"):
        as_spec("kind=mac,weights=dint4_sym,product_round=ceil")
    with pytest.raises(MacforgeError, match=r"product_round='rne' needs an exact fractional power-of-two"):
        golden.gemm(np.zeros((1, 4), int), np.zeros((1, 4), int), "int8", product_round="rne")
