"""Every registered unit runs on a simulator in the CI tier (issue 10 item 4).

``tests/test_cocotb_units.py`` runs a few units with their full default plan (every pair); the
slow tier runs every unit on both simulators. Here every other registered unit
(``models.units.unit_names()``) gets a short run: the testbench's own plan (reset, overflow
runs of the extreme products, LUT programming, a seeded random stretch with en/clr/LUT writes
and resets, resets mid-accumulation, its narrow wrap and saturate variants) with its
``exhaustive`` sections cut to a seeded sample plus their corner rows (the largest and smallest
activation and weight code in some lane), so a unit costs about 2-3k cycles instead of up to
70k. Expected values still come from ``testbench.expected_trace`` (golden) on the stream that
ran. Units are spread over Icarus and Verilator.

Pipelined units (latency 2 and 3: registers inside the multiplier and at the decoded operands,
``rtl._decode.pipeline_cuts``) run the same short plan on both simulators, and a nextpnr-ecp5
place-and-route (``rtl.flow.synth_fpga``, uncached) checks that latency 3 really raises Fmax.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import testbench
from models.errors import MacforgeError
from models.units import UnitSpec, get_unit, unit_names

from test_cocotb_units import CI_CASES  # tests/ is on sys.path (pytest rootdir-relative import)

ROOT = Path(__file__).resolve().parents[1]

# rows kept per exhaustive section: corners (extreme a or w in some lane) and a random sample
CORNER_ROWS = 768
SAMPLE_ROWS = 1024
RANDOM_VECTORS = 600

# units whose full plan already runs in the CI tier (test_cocotb_units.CI_CASES)
FULL_PLAN_UNITS = {u for u, _ in CI_CASES}
# systolic arrays: the tile plan cannot be cut row by row; on Verilator their whole plan costs
# < 1 s of simulation (the build dominates), so they run it with few random tiles
# the MAC-datapath kinds this file covers; a decoder unit (kind huffman) has its own plan and
# tests in its own files
DATAPATH_KINDS = ("mac", "dot", "dq_group", "systolic")
DATAPATH_UNITS = [u for u in unit_names() if get_unit(u).kind in DATAPATH_KINDS]
SHORT_UNITS = [u for u in DATAPATH_UNITS if u not in FULL_PLAN_UNITS]


# single-lane MACs whose Verilator build is small; Verilator's C++ build of a many-lane PE costs
# 10-50 s (cold ccache) against 2-4 s for Icarus to run the short plan
VERILATOR_UNITS = ("mac_dint4_sym_xint8",)


def _simulator_for(unit: str) -> str:
    """Verilator for the systolic arrays (Icarus needs 10-15 s per array for one pass of their
    tile plan) and one small MAC; Icarus for the rest (test_cocotb_units' CI cases run four more
    units on Verilator)."""
    if get_unit(unit).kind == "systolic" or unit in VERILATOR_UNITS:
        return "verilator"
    return "icarus"


SHORT_CASES = [(u, _simulator_for(u)) for u in SHORT_UNITS]


def _build_root(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]
    return ROOT / "build" / "tests" / "ci_units" / name


def _require(sim: str) -> None:
    try:
        testbench.check_simulator(sim)
    except MacforgeError as e:
        pytest.skip(str(e))


def _corner_rows(spec: UnitSpec, stim: testbench.Stimulus, sl: slice) -> np.ndarray:
    """Rows of the section whose operands sit at a corner in some lane: the smallest or largest
    activation, or the first or last weight code."""
    lo, hi = spec.act_range
    a = stim.cols["a"][sl].reshape(sl.stop - sl.start, -1)
    w = stim.cols["w"][sl].reshape(sl.stop - sl.start, -1)
    wmax = (1 << spec.decode.bits) - 1
    hit = ((a == lo) | (a == hi) | (w == 0) | (w == wmax)).any(axis=1)
    return np.flatnonzero(hit)


def shorten(stim: testbench.Stimulus, seed: int, corner_rows: int = CORNER_ROWS,
            sample_rows: int = SAMPLE_ROWS) -> testbench.Stimulus:
    """``stim`` with every ``exhaustive*`` section longer than corner_rows + sample_rows cut to
    a seeded choice of its corner rows and a random sample of the others (stream order kept).
    The other sections (reset, overflow, LUT programming, random, mid-stream resets, tail) are
    unchanged; ``exhaustive`` becomes False."""
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    sections: list[tuple[str, int, int]] = []
    at = 0
    for name, lo, hi in stim.sections:
        rows = np.arange(lo, hi)
        if name.startswith("exhaustive") and hi - lo > corner_rows + sample_rows:
            corners = _corner_rows(stim.spec, stim, slice(lo, hi))
            if corners.size > corner_rows:
                corners = rng.choice(corners, corner_rows, replace=False)
            rest = np.setdiff1d(np.arange(hi - lo), corners)
            sample = rng.choice(rest, min(sample_rows, rest.size), replace=False)
            rows = lo + np.sort(np.concatenate([corners, sample]))
        keep.append(rows)
        sections.append((name, at, at + rows.size))
        at += rows.size
    idx = np.concatenate(keep)
    cols = {k: v[idx] for k, v in stim.cols.items()}
    notes = stim.notes + [f"CI run: exhaustive sections cut to <= {corner_rows} corner + "
                          f"{sample_rows} sampled rows"]
    return dataclasses.replace(stim, cols=cols, sections=sections, notes=notes, exhaustive=False)


def test_every_registered_unit_runs_in_ci() -> None:
    """The CI tier covers every registered datapath unit, on both simulators across the set."""
    covered = FULL_PLAN_UNITS | {u for u, _ in SHORT_CASES}
    assert covered == set(DATAPATH_UNITS) and len(DATAPATH_UNITS) >= 27
    sims = {s for _, s in CI_CASES} | {s for _, s in SHORT_CASES}
    assert sims == set(testbench.SIMULATORS)


def test_shorten_keeps_the_plan_and_cuts_exhaustive() -> None:
    import rtl

    spec = get_unit("dot8_int8xint8")
    stim = testbench.build_stimulus(spec, rtl.ports(spec), vectors=RANDOM_VECTORS, seed=4)
    short = shorten(stim, seed=4)
    names = [n for n, _, _ in stim.sections]
    assert [n for n, _, _ in short.sections] == names
    for (n, lo, hi), (n2, lo2, hi2) in zip(stim.sections, short.sections):
        if n == "exhaustive":
            assert hi - lo == 65536 and hi2 - lo2 == CORNER_ROWS + SAMPLE_ROWS
            rows = short.cols["a"][lo2:hi2]
            assert (rows == -128).any() and (rows == 127).any()
        else:  # every other section is the original, cycle for cycle
            for k in stim.cols:
                np.testing.assert_array_equal(short.cols[k][lo2:hi2], stim.cols[k][lo:hi])
    assert short.cycles == stim.cycles - 65536 + CORNER_ROWS + SAMPLE_ROWS and not short.exhaustive
    # the sampled rows are rows of the enumeration, in stream order
    (lo, hi), (lo2, hi2) = [next((a, b) for n, a, b in s.sections if n == "exhaustive")
                            for s in (stim, short)]
    full = {tuple(r) for r in stim.cols["w"][lo:hi].tolist()}
    assert all(tuple(r) in full for r in short.cols["w"][lo2:hi2].tolist())


@pytest.mark.cocotb
@pytest.mark.parametrize("unit,sim", SHORT_CASES, ids=[f"{u}-{s}" for u, s in SHORT_CASES])
def test_unit_short_run_matches_golden(unit: str, sim: str, request: pytest.FixtureRequest) -> None:
    _require(sim)
    spec = get_unit(unit)
    root = _build_root(request)
    if spec.kind == "systolic":
        # no narrow variants: test_cocotb_systolic runs them on a 2x3 array in CI
        results = testbench.run_units([unit], simulator=sim, vectors=200, seed=6, real_data=False,
                                      variants=False, build_root=root)
    else:
        def stim_fn(s: UnitSpec, ports: list[dict[str, object]]) -> testbench.Stimulus:
            full = testbench.build_stimulus(s, ports, vectors=RANDOM_VECTORS, seed=6)
            return shorten(full, seed=6)

        # narrow wrap / saturate variants beside the unit up to 4 lanes (run_units' default);
        # the 8- and 16-lane PEs share the 4-lane PEs' accumulator code
        results = [testbench.run_stream(unit, stim_fn, simulator=sim, variants=spec.lanes <= 4,
                                        build_root=root)]
    (r,) = results
    assert (r.unit, r.simulator) == (unit, sim)
    assert r.mismatches == 0, testbench.format_table(results)
    assert r.checked == r.vectors * len(r.instances) and r.vectors > 0
    if spec.kind in ("mac", "dot"):
        assert len(r.instances) == (3 if spec.lanes <= 4 else 1)


# pipelined variants (not registered units): every pipeline level kind, zero points, a LUT, FP
PIPELINED_CASES = [
    ("kind=mac,weights=fp8_e4m3,latency=3", "icarus"),
    ("kind=dot,lanes=4,weights=dint4_sym,latency=3", "icarus"),
    ("kind=mac,weights=int8,latency=4,acc_bits=20,overflow=saturate", "icarus"),
    ("kind=mac,weights=dint4_asym,latency=3", "verilator"),
    ("kind=mac,weights=int2,lut=programmable,lut_bits=6,latency=3", "icarus"),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("unit,sim", PIPELINED_CASES, ids=[f"{u}-{s}" for u, s in PIPELINED_CASES])
def test_pipelined_unit_matches_golden(unit: str, sim: str, request: pytest.FixtureRequest) -> None:
    from models.units import as_spec

    _require(sim)
    spec = as_spec(unit)

    def stim_fn(s: UnitSpec, ports: list[dict[str, object]]) -> testbench.Stimulus:
        return shorten(testbench.build_stimulus(s, ports, vectors=RANDOM_VECTORS, seed=9), seed=9)

    r = testbench.run_stream(spec, stim_fn, simulator=sim, variants=True, build_root=_build_root(request))
    assert r.mismatches == 0, testbench.format_table([r])
    assert r.checked == r.vectors * 3


@pytest.mark.synth
def test_ecp5_pipelining_raises_fmax() -> None:
    """nextpnr-ecp5 on the registered-I/O wrapper of a dINT4-B MAC (no DSP blocks, so the
    multiplier is in the fabric): latency 3 (product split + term register) must be clearly
    faster than latency 1; measured 80 vs 130 MHz (seed 1). A delay line would leave the
    multiply-accumulate path, and so Fmax, as it is."""
    import rtl
    from models.units import as_spec
    from rtl.flow import synth_fpga

    res = {}
    for lat in (1, 3):
        spec = as_spec(f"kind=mac,weights=dint4_sym,latency={lat}")
        res[lat] = synth_fpga(rtl.verilog(spec), spec.name, rtl.ports(spec), "ecp5", nodsp=True, use_cache=False)
    assert res[1].ffs == get_unit("mac_dint4_sym_xint8").acc_bits  # latency 1: the accumulator only
    assert res[1].dsp == res[3].dsp == 0 and res[1].device == "ECP5 LFE5U-25F (CABGA381)"
    assert res[3].fmax_mhz > 1.25 * res[1].fmax_mhz, (res[1].fmax_mhz, res[3].fmax_mhz)
