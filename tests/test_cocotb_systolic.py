"""Systolic-array units (kind ``systolic``) simulated with cocotb on Icarus and Verilator and
compared with ``models.golden.gemm``: every cycle's out_valid, and out_row / c wherever the
RTL must mark a result row valid (``testbench._systolic``).

CI (not slow): a 2×3 dINT4-B array on Icarus (the stream cut into several $readmemh chunks),
a 2×2 dINT4-A array (zero point per column per k) on Verilator with the real-data hook, an
injected fault in one PE, and the stimulus / protocol model without a simulator. Slow: the
4×4 and 8×8 arrays, exhaustive runs, the naive method, real data from ``models.realdata``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import rtl
import testbench
from models import golden
from models.errors import MacforgeError
from models.units import as_spec
from testbench._harness import result_fields
from testbench._run import unit_instances
from testbench._stimulus import Stimulus
from testbench._systolic import (
    build_systolic_stimulus,
    compare_systolic,
    idle_chunks,
    systolic_expected,
    systolic_real_columns,
)

ROOT = Path(__file__).resolve().parents[1]

SYS_DINT4B_2X3 = "kind=systolic,rows=2,cols=3,pe=mac_dint4_sym_xint8"
SYS_DINT4A_2X2 = "kind=systolic,rows=2,cols=2,pe=mac_dint4_asym_xint8"


def _build_root(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]
    return ROOT / "build" / "tests" / "cocotb_systolic" / name


def _require(sim: str) -> None:
    try:
        testbench.check_simulator(sim)
    except MacforgeError as e:
        pytest.skip(str(e))


def _clean(results: list, unit: str, sim: str) -> testbench.SimResult:
    assert len(results) == 1
    r = results[0]
    assert (r.unit, r.simulator) == (as_spec(unit).name, sim)
    assert r.vectors > 0 and r.checked == r.vectors * len(r.instances)
    assert r.mismatches == 0, testbench.format_table(results)
    return r


def _rows_compared(r: testbench.SimResult) -> tuple[int, int]:
    note = next(n for n in r.notes if "result rows" in n)
    m = re.match(r"(\d+) tiles; every cycle's out_valid and (\d+) result rows", note)
    assert m, note
    return int(m.group(1)), int(m.group(2))


# ------------------------------------------------------------------ CI: simulators
@pytest.mark.cocotb
def test_icarus_2x3_dint4_sym_in_chunks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every (w, a) through every PE, overflow of the narrow variants, back-to-back tiles,
    bubbles, resets; the harness memory is made small so that the stream runs in several
    chunks (cut only where the array is idle)."""
    _require("icarus")
    import testbench._run as run

    monkeypatch.setattr(run, "CHUNK_DEPTH", 4096)
    results = testbench.run_units([SYS_DINT4B_2X3], simulator="icarus", vectors=1500, seed=3,
                                  real_data=False, build_root=_build_root(request))
    r = _clean(results, SYS_DINT4B_2X3, "icarus")
    assert r.exhaustive and len(r.instances) == 3  # the unit, a narrow wrap and a saturating variant
    tiles, rows = _rows_compared(r)
    # R = 2 rows per completed tile and instance, but for the few drains cut by a reset
    assert tiles > 30 and 0.9 * 3 * 2 * tiles <= rows <= 3 * 2 * tiles
    assert r.vectors > 2 * 4096  # several chunks


@pytest.mark.cocotb
def test_verilator_2x2_dint4_asym_zero_points(request: pytest.FixtureRequest) -> None:
    """Zero point per column per k; then the real-data hook on the same build."""
    _require("verilator")
    root = _build_root(request)
    results = testbench.run_units([SYS_DINT4A_2X2], simulator="verilator", vectors=3000, seed=5,
                                  real_data=False, build_root=root)
    r = _clean(results, SYS_DINT4A_2X2, "verilator")
    assert r.exhaustive  # 16 codes × 256 activations × 14 zero points through each PE
    rng = np.random.default_rng(11)
    n = 2 * 512 * 3
    acts = np.clip(np.round(rng.standard_t(3, n) * 12), -127, 127).astype(np.int8)
    codes = rng.integers(0, 16, n).astype(np.uint8)
    zps = np.repeat(rng.integers(0, 14, n // 128 + 1), 128)[:n]
    real = testbench.check_real_data(SYS_DINT4A_2X2, acts, codes, zps, simulator="verilator", build_root=root)
    assert real.mismatches == 0
    assert _rows_compared(real) == (3, 3 * 3 * 2)  # 3 tiles of K = 512, 2 rows, 3 instances
    with pytest.raises(MacforgeError, match="zero points"):
        testbench.check_real_data(SYS_DINT4A_2X2, acts, codes, None, build_root=root)


@pytest.mark.cocotb
def test_injected_fault_in_one_pe_is_reported(request: pytest.FixtureRequest) -> None:
    """A product bit flipped in PE(1, 0) of a 2×2 array: mismatches in column 0 only, first
    in a result row of row 1 (the rows above pass through that PE on their way out)."""
    _require("icarus")
    unit = "kind=systolic,rows=2,cols=2,pe=mac_int4xint8"
    (bad,) = testbench.run_units([unit], simulator="icarus", vectors=500, real_data=False,
                                 fault=rtl.Fault("product_bit", bit=4, lane=2),
                                 build_root=_build_root(request), keep_failed=False)
    assert bad.mismatches > 0 and bad.failures
    assert all(f["instance"] == "unit+fault" for f in bad.failures)
    first = bad.failures[0]
    assert first["onset"] and first["inputs"]["bad_columns"] == [0]
    assert "out_row=1" in first["expected"] and first["got"] != first["expected"]
    with pytest.raises(MacforgeError, match=r"^fault product_bit: PE 4 is outside the 2×2 array"):
        rtl.build_unit(unit, fault=rtl.Fault("product_bit", bit=4, lane=4))


# ------------------------------------------------------------------ CI: no simulator
def _plan(unit: str, vectors: int = 400, seed: int = 0, **kw: object) -> Stimulus:
    spec = as_spec(unit)
    return build_systolic_stimulus(spec, rtl.ports(spec), vectors=vectors, seed=seed, **kw)  # type: ignore[arg-type]


def test_exhaustive_section_gives_every_pe_every_pair() -> None:
    unit = "kind=systolic,rows=3,cols=2,pe=mac_dint4_asym_xint8"
    spec = as_spec(unit)
    stim = _plan(unit)
    assert stim.exhaustive
    lo, hi = next((s[1], s[2]) for s in stim.sections if s[0] == "exhaustive")
    v = stim.cols["valid"][lo:hi].astype(bool)
    a, w, z = stim.cols["a"][lo:hi][v], stim.cols["w"][lo:hi][v], stim.cols["z"][lo:hi][v]
    space = 256 * 16 * (spec.decode.zp_max + 1)
    assert a.shape[0] == space
    for i in range(3):
        for j in range(2):
            triples = (a[:, i] + 128) * 16 * 64 + w[:, j] * 64 + z[:, j]
            assert np.unique(triples).size == space, (i, j)


def test_protocol_model_tiles_resets_and_chunks() -> None:
    unit = "kind=systolic,rows=3,cols=2,pe=mac_int4xint8"
    spec = as_spec(unit)
    stim = _plan(unit, vectors=3000, seed=2)
    exp = systolic_expected(spec, stim)
    R, C = 3, 2
    # every completed tile drains R rows, R + C - 1 cycles after its last, unless a reset intervenes
    rst = np.flatnonzero(stim.cols["rst"])
    for idx, (t0, t1, k) in enumerate(exp.tiles):
        samples = np.flatnonzero(exp.tile == idx)
        cut = rst[(rst > t1)]
        want = [t1 + R + C - 2 + q for q in range(R)]
        if cut.size:
            want = [s for s in want if s < cut[0]]
        assert samples.tolist() == want
        assert exp.row[samples].tolist() == [R - 1 - q for q in range(len(want))]
        span = np.flatnonzero(stim.cols["valid"][t0 : t1 + 1]) + t0
        assert span.size == k
        a, w = stim.cols["a"][span].T, stim.cols["w"][span].T
        full = golden.gemm(w, a, "int4", acc_bits=spec.acc_bits)
        np.testing.assert_array_equal(exp.c[samples], full[R - 1 - np.arange(len(want))])
    sections = {s[0] for s in stim.sections}
    assert {"exhaustive", "overflow", "back_to_back", "bubbles", "random", "reset_midstream", "tail"} <= sections
    # a reset inside a drain: the rows already out stay, the rest are dropped
    cut_tiles = [i for i, (_, t1, _) in enumerate(exp.tiles) if 0 < np.sum(exp.tile == i) < R]
    assert cut_tiles, "the plan resets inside a drain"
    chunks = idle_chunks(stim.cycles, exp.idle, 4500)  # the longest tile: K = 4096 (overflow)
    assert len(chunks) > 2 and sum(chunks) == stim.cycles and max(chunks) <= 4500
    edges = np.cumsum(chunks)[:-1]
    assert np.all(exp.idle[edges])


def test_protocol_violation_and_bad_real_data_are_errors() -> None:
    unit = "kind=systolic,rows=2,cols=2,pe=mac_int4xint8"
    spec = as_spec(unit)
    stim = _plan(unit, vectors=0)
    cols = {k: v.copy() for k, v in stim.cols.items()}
    t1 = systolic_expected(spec, stim).tiles[3][1]
    cols["valid"][t1 + 2] = 1  # inside the drain of tile 3
    bad = Stimulus(spec, stim.lanes, cols, stim.sections)
    with pytest.raises(MacforgeError, match=rf"valid input in cycle {t1 + 2} before the drain of the "
                                            rf"previous tile ends \(cycle {t1 + 4}\)"):
        systolic_expected(spec, bad)
    with pytest.raises(MacforgeError, match=r"^real-data streams fill no 2×2×512 tile$"):
        systolic_real_columns(spec, np.zeros(100, np.int8), np.zeros(100, np.uint8))
    with pytest.raises(MacforgeError, match=r"activations out of range"):
        systolic_real_columns(as_spec("kind=systolic,rows=1,cols=1,weights=int4,acts=int4"),
                              np.full(600, 100, np.int8), np.zeros(600, np.uint8))


def test_compare_flags_late_missing_and_wrong_outputs() -> None:
    """The comparison fails an output one cycle late, a missing row and a wrong value."""
    unit = "kind=systolic,rows=2,cols=2,pe=mac_int4xint8"
    spec = as_spec(unit)
    stim = _plan(unit, vectors=200)
    insts = unit_instances(spec, variants=False)
    exps = [systolic_expected(i.spec, stim) for i in insts]
    fields, _, _ = result_fields(insts)
    e = exps[0]
    got = np.zeros((stim.cycles, len(fields)), np.int64)
    got[:, 0], got[:, 1], got[:, 2:] = e.valid, e.row, e.c
    ok = np.ones_like(got, dtype=bool)
    assert compare_systolic(stim, ["unit"], exps, tuple(fields), got, ok)[0] == 0
    late = got.copy()
    late[1:] = got[:-1]
    n_late, _, fails = compare_systolic(stim, ["unit"], exps, tuple(fields), late, ok)
    assert n_late >= len(e.tiles) and fails[0]["onset"]
    wrong = got.copy()
    s = int(np.flatnonzero(e.valid)[5])
    wrong[s, 3] += 1
    n, _, fails = compare_systolic(stim, ["unit"], exps, tuple(fields), wrong, ok)
    assert n == 1 and fails[0]["inputs"]["bad_columns"] == [1] and fails[0]["cycle"] == s + 1
    missing = got.copy()
    missing[s, 0] = 0
    assert compare_systolic(stim, ["unit"], exps, tuple(fields), missing, ok)[0] == 1
    xbits = ok.copy()
    xbits[s, 2] = False
    assert compare_systolic(stim, ["unit"], exps, tuple(fields), got, xbits)[0] == 1


def test_systolic_units_are_rtl_units() -> None:
    spec = as_spec("kind=systolic,rows=4,cols=4,pe=mac_dint4_sym_xint8")
    pe = rtl.pe_spec(spec)
    assert (pe.kind, pe.latency, pe.weight_format, pe.acc_bits) == ("mac", 1, "dint4_sym", spec.acc_bits)
    names = [(p["name"], p["direction"], p["width"], p["lanes"]) for p in rtl.ports(spec)]
    assert names == [("clk", "in", 1, 1), ("rst", "in", 1, 1), ("valid", "in", 1, 1), ("first", "in", 1, 1),
                     ("last", "in", 1, 1), ("a", "in", 32, 4), ("w", "in", 16, 4), ("out_valid", "out", 1, 1),
                     ("out_row", "out", 2, 1), ("c", "out", 128, 4)]
    assert f"module {spec.name}(" in rtl.verilog(spec)
    assert rtl.lint(spec).ok
    with pytest.raises(MacforgeError, match=r"^unit mac_int8xint8 is a mac, not a systolic array$"):
        rtl.pe_spec("mac_int8xint8")


# ------------------------------------------------------------------ slow: the full matrix
SLOW_CASES = [
    ("kind=systolic,rows=4,cols=4,pe=mac_int8xint8", "icarus"),
    ("kind=systolic,rows=4,cols=4,pe=mac_int8xint8", "verilator"),
    ("kind=systolic,rows=4,cols=4,pe=mac_dint4_sym_xint8", "icarus"),
    ("kind=systolic,rows=4,cols=4,pe=mac_dint4_sym_xint8", "verilator"),
    ("kind=systolic,rows=8,cols=8,pe=mac_dint4_asym_xint8", "verilator"),
    ("kind=systolic,rows=8,cols=8,weights=int8", "verilator"),
    ("kind=systolic,rows=4,cols=4,pe=mac_lut4c_nf4xint8", "verilator"),
    ("kind=systolic,rows=3,cols=5,pe=mac_fp8_e4m3xint8", "verilator"),
    ("kind=systolic,rows=3,cols=2,pe=mac_dint4_sym_xint8,product_round=floor", "icarus"),
    ("kind=systolic,rows=2,cols=3,pe=mac_dint4_sym_xint8,product_round=rne", "verilator"),
]


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("unit,sim", SLOW_CASES, ids=[f"{as_spec(u).name}-{s}" for u, s in SLOW_CASES])
def test_systolic_unit_matches_golden(unit: str, sim: str, request: pytest.FixtureRequest) -> None:
    _require(sim)
    results = testbench.run_units([unit], simulator=sim, seed=7, build_root=_build_root(request))
    r = _clean(results, unit, sim)
    assert r.exhaustive


@pytest.mark.slow
@pytest.mark.cocotb
def test_systolic_exhaustive_wraps_full_accumulator(request: pytest.FixtureRequest) -> None:
    """exhaustive=True adds a tile of the largest product long enough to wrap the unit's 32-bit
    accumulator."""
    _require("verilator")
    unit = "kind=systolic,rows=2,cols=2,pe=mac_int8xint8"
    results = testbench.run_units([unit], simulator="verilator", exhaustive=True, vectors=2000,
                                  build_root=_build_root(request))
    r = _clean(results, unit, "verilator")
    assert r.vectors > (1 << 31) // (128 * 128)


@pytest.mark.slow
@pytest.mark.cocotb
def test_systolic_naive_method_and_real_data(request: pytest.FixtureRequest) -> None:
    _require("icarus")
    unit = "kind=systolic,rows=2,cols=2,pe=mac_int4xint8"
    r = _clean(testbench.run_units([unit], simulator="icarus", method="naive", vectors=500, real_data=False,
                                   build_root=_build_root(request)), unit, "icarus")
    assert r.method == "naive"
    results = testbench.run_units([SYS_DINT4A_2X2], simulator="verilator", vectors=0, real_data=True,
                                  build_root=_build_root(request))
    r = _clean(results, SYS_DINT4A_2X2, "verilator")
    assert not any(n.startswith("real data skipped") for n in r.notes), r.notes
