"""run_units: build each unit's harness, simulate its stimulus plan, compare with golden."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import MacforgeError, UnknownNameError
from models.units import UnitSpec, as_spec, unit_names

from ._expected import expected_trace
from ._harness import (
    CHUNK_DEPTH,
    HARNESS_TOP,
    MAX_LANES,
    Harness,
    Instance,
    build_harness,
    c_record_bytes,
    make_harness,
)
from ._layout import pack_bytes, pack_result_bytes, parse_hex_lines, result_layout, unpack_nibbles
from ._sims import SIMULATORS, check_simulator, make_runner
from ._stimulus import Stimulus, build_stimulus, real_data_columns
from ._systolic import (
    build_systolic_stimulus,
    compare_systolic,
    idle_chunks,
    systolic_expected,
    systolic_real_columns,
)

__all__ = [
    "DEFAULT_VECTORS",
    "METHODS",
    "SimResult",
    "check_real_data",
    "default_build_root",
    "format_table",
    "load_real_data",
    "run_stream",
    "run_units",
    "unit_instances",
]

METHODS: tuple[str, ...] = ("batched", "naive")
# Random cycles per unit on top of the exhaustive and directed sections.
DEFAULT_VECTORS = 20_000
# Real-data cycles per unit (when models.realdata and its packages are installed).
REAL_DATA_CYCLES = 4096
MAX_FAILURES = 8
# variants=None simulates the narrow overflow variants of units with at most this many lanes.
AUTO_VARIANT_MAX_LANES = 4
# A batched MAC / dot / decoupleQ stream is split over parallel harness lanes (at most
# MAX_LANES, a power of two) when each lane gets at least this many cycles; shorter streams run
# in one lane (the CI runs: one build per unit, every reset seen with its history).
LANE_MIN_CYCLES = CHUNK_DEPTH
# Environment of the simulator process: cocotb's pytest assertion rewriting (which loads every
# pytest plugin at start-up, ~1 s) is not needed by a test module without asserts.
SIM_ENV = {"COCOTB_REWRITE_ASSERTION_FILES": ""}

ROOT = Path(__file__).resolve().parents[1]
_run_counter = itertools.count()


def default_build_root() -> Path:
    return ROOT / "build" / "testbench"


@dataclass
class SimResult:
    """Outcome of one unit on one simulator.

    ``vectors``: clock cycles applied and checked (on every instance); ``checked``: results
    compared (vectors × instances); ``mismatches``: results that differ from golden (an error in
    an accumulation shows on every cycle until the next clr or reset); ``failures``: the first
    few, error onsets first, each with the cycle, the instance, the section of the plan, the
    inputs of the cycle whose result is wrong, expected and got. ``seconds``: wall-clock for the
    unit (Verilog, build, stimulus, simulation, comparison); ``sim_seconds``: the simulator's
    own loop (``sim_cpu_seconds``: its CPU time); ``lanes``: parallel harness lanes the stream
    was split over; ``exhaustive``: every (w, a[, z]) pair was applied (through every PE of a
    systolic array). For a systolic unit a checked result is one cycle of one instance (its
    out_valid, and out_row / c when a row is due); ``notes`` give the tiles and rows compared.
    """

    unit: str
    simulator: str
    vectors: int
    mismatches: int
    seconds: float
    method: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    checked: int = 0
    instances: list[str] = field(default_factory=list)
    exhaustive: bool = False
    build_seconds: float = 0.0
    sim_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    run_dir: str | None = None
    sim_cpu_seconds: float = 0.0
    lanes: int = 1

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _narrow_acc_bits(spec: UnitSpec) -> int:
    """The narrowest accumulator the spec accepts (+2 bits of headroom for the product MACs),
    so that overflow happens within a few cycles."""
    for bits in range(2, spec.acc_bits + 1):
        try:
            dataclasses.replace(spec, acc_bits=bits)
        except MacforgeError:
            continue
        return min(spec.acc_bits, bits + (0 if spec.kind == "dq_group" else 2))
    return spec.acc_bits


def unit_instances(
    spec: UnitSpec, *, variants: bool = True, fault: object | None = None
) -> list[Instance]:
    """The instances simulated side by side for a unit: the unit itself (with ``fault``), and,
    with ``variants``, a narrow-accumulator wrap variant and a narrow saturating variant (same
    ports; overflow then happens within a few cycles)."""
    base = Instance("unit" if fault is None else "unit+fault", spec, f"{spec.name}__dut", fault)
    if not variants:
        return [base]
    nb = _narrow_acc_bits(spec)
    out = [base]
    if nb != spec.acc_bits or spec.overflow != "wrap":
        v = dataclasses.replace(spec, acc_bits=nb, overflow="wrap")
        out.append(Instance(f"wrap{nb}", v, f"{spec.name}__wrap{nb}", fault))
    v = dataclasses.replace(spec, acc_bits=nb, overflow="saturate")
    if v != spec:
        out.append(Instance(f"sat{nb}", v, f"{spec.name}__sat{nb}", fault))
    return out


def load_real_data(
    spec: UnitSpec, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(activations, weight codes, zero points or None): ``n`` elements of SmolLM2 activations
    (blk.29.ffn_down input, per tensor in the unit's activation format, int8 by default) and
    MiniLM fp32 weights quantized to the unit's weight format, from ``models.realdata``. Raises if that module or its packages are
    missing (callers then run without real data and say so)."""
    from models import realdata

    # one text window: a new one costs a forward pass
    acts, _ = realdata.int8_stream(n, seed=0, act_format=spec.act_format)
    cs = realdata.weight_codes_stream(spec.weight_format, n, seed=seed)
    return acts, cs.codes, cs.zero_points


def lane_starts(stim: Stimulus, max_lanes: int = MAX_LANES) -> tuple[int, list[int]]:
    """(harness lanes, first cycle of each lane's part of the stream). A lane other than the
    first starts at a reset cycle: reset returns every register (and a programmable LUT) to its
    reset state, so a fresh instance from there on sees exactly what the unit sees in the whole
    stream, and the expected trace of the whole stream holds for it unchanged."""
    t = stim.cycles
    lanes = 1
    while lanes * 2 <= max_lanes and t // (lanes * 2) >= LANE_MIN_CYCLES:
        lanes *= 2
    if lanes == 1:
        return 1, [0]
    rst = np.flatnonzero(np.asarray(stim.cols["rst"]).reshape(t, -1)[:, 0] != 0)
    starts = [0]
    for j in range(1, lanes):
        i = int(np.searchsorted(rst, j * t // lanes))
        if i < rst.size and rst[i] > starts[-1]:
            starts.append(int(rst[i]))
    return lanes, starts


def _lane_schedule(
    total: int, starts: list[int], depth: int
) -> tuple[list[int], list[list[int]]]:
    """Chunk sizes and, per chunk, how many of its cycles each lane checks: lane p runs
    cycles [starts[p], starts[p + 1]) of the stream, ``depth`` per chunk."""
    lens = np.diff(np.array(starts + [total]))
    longest = int(lens.max()) if lens.size else 0
    chunks, valid = [], []
    for k0 in range(0, longest, depth):
        n = min(depth, longest - k0)
        chunks.append(n)
        valid.append([int(v) for v in np.clip(lens - k0, 0, n)])
    return chunks, valid


def _file_records(rec: np.ndarray, simulator: str) -> bytes:
    """Big-endian records (n, bytes) as the harness reads them: as they are for ``$fread``
    (Icarus), in the memory's C++ layout (little-endian, padded) for Verilator."""
    if simulator != "verilator":
        return rec.tobytes()
    n, nb = rec.shape
    out = np.zeros((n, c_record_bytes(8 * nb)), dtype=np.uint8)
    out[:, :nb] = rec[:, ::-1]
    return out.tobytes()


def _records(rows: np.ndarray, starts: list[int], lanes: int, k0: int, valid: list[int],
             n: int, simulator: str) -> bytes:
    """One chunk's stimulus records: n records of ``lanes`` words (rows (T, bytes)), the
    highest lane first (big-endian), lane p from stream cycle starts[p] + k0; unused words zero."""
    rec = np.zeros((n, lanes, rows.shape[1]), dtype=np.uint8)
    for p, v in enumerate(valid):
        if v:
            rec[:v, lanes - 1 - p] = rows[starts[p] + k0 : starts[p] + k0 + v]
    return _file_records(rec.reshape(n, -1), simulator)


def _expected_records(h: Harness, exp: np.ndarray, starts: list[int], k0: int,
                      valid: list[int], n: int, simulator: str) -> bytes:
    """One chunk's ``exp.bin``: per cycle the lanes' expected result words packed at
    [p·bits, (p+1)·bits) (the layout of the harness's ``r_all``)."""
    if h.lanes == 1:
        rows = pack_result_bytes(h.result, exp[starts[0] + k0 : starts[0] + k0 + valid[0]])
        return _file_records(rows, simulator)
    vals = np.zeros((n, h.lanes, exp.shape[1]), dtype=np.int64)
    for p, v in enumerate(valid):
        vals[:v, p] = exp[starts[p] + k0 : starts[p] + k0 + v]
    # the lanes' fields side by side: each field starts on a hex digit, so lane p's fields sit
    # at p·bits + their offsets in one lane
    wide = result_layout(list(h.result.widths) * h.lanes, list(h.result.signed) * h.lanes or None)
    assert wide.offsets == tuple(p * h.result.bits + o for p in range(h.lanes) for o in h.result.offsets)
    return _file_records(pack_result_bytes(wide, vals.reshape(n, -1)), simulator)


def _simulate(
    h: Harness,
    bdir: Path,
    simulator: str,
    method: str,
    run_dir: Path,
    prepare: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run the harness on the chunk files that ``prepare()`` writes into ``run_dir`` (it returns
    the run's configuration). The simulator starts first, in a thread, and loads cocotb while
    ``prepare`` runs (the two overlap on a machine with a free core); the configuration file is
    written last and the cocotb test waits for it. Returns the harness's timing record."""
    run_dir.mkdir(parents=True, exist_ok=True)
    runner = make_runner(simulator)
    log = run_dir / "sim.log"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.test(
                test_module="testbench._cocotb_harness",
                hdl_toplevel=HARNESS_TOP,
                hdl_toplevel_lang="verilog",
                build_dir=bdir,
                test_dir=run_dir,
                results_xml=str(run_dir / "results.xml"),
                log_file=log,
                extra_env=SIM_ENV,
            )
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    def write_config(cfg: dict[str, Any]) -> None:
        tmp = run_dir / "mf_run.json.tmp"
        tmp.write_text(json.dumps(cfg))
        tmp.replace(run_dir / "mf_run.json")

    sim = threading.Thread(target=run, name=f"{simulator}-{h.unit}", daemon=True)
    sim.start()
    try:
        cfg = prepare()
    except BaseException:
        write_config({"abort": True})
        sim.join()
        raise
    write_config(cfg)
    sim.join()

    def tail() -> str:
        lines = log.read_text(errors="replace").strip().splitlines()[-20:] if log.exists() else []
        return "\n".join(lines)

    if errors:
        e = errors[0]
        raise RuntimeError(
            f"{simulator} run of {h.unit} failed ({e!r}); log: {log}\n" + tail()
        ) from None
    timing_file = run_dir / "mf_timing.json"
    if not timing_file.exists():
        raise RuntimeError(f"{simulator} run of {h.unit} did not finish; log: {log}\n" + tail())
    return dict(json.loads(timing_file.read_text()))


def _read_results(
    h: Harness, simulator: str, run_dir: Path, k: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Chunk k's dumped outputs: (values, valid), each (n, lanes, fields)."""
    path = run_dir / f"res_{k:04d}.hex"
    if not path.exists():
        raise RuntimeError(f"{simulator} run of {h.unit}: chunk {k} wrote no results ({path})")
    d4 = h.result.hex_digits
    nib = parse_hex_lines(path.read_bytes(), d4 * h.lanes)
    if nib.shape[0] != n:
        raise RuntimeError(
            f"{simulator} run of {h.unit}: chunk {k} returned {nib.shape[0]} results, expected {n}"
        )
    nf = len(h.result.widths)
    vals = np.zeros((n, h.lanes, nf), dtype=np.int64)
    valid = np.zeros((n, h.lanes, nf), dtype=bool)
    for p in range(h.lanes):
        col = (h.lanes - 1 - p) * d4  # the highest lane's digits come first
        vals[:, p], valid[:, p] = unpack_nibbles(h.result, nib[:, col : col + d4])
    return vals, valid


def _run_batched(
    h: Harness,
    bdir: Path,
    simulator: str,
    method: str,
    stim: Stimulus,
    run_dir: Path,
    expected: Callable[[], np.ndarray] | None,
    chunks: list[int] | None = None,
    starts: list[int] | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, dict[str, Any]]:
    """Simulate ``stim`` and return (expected (T, fields) or None, got, valid, timing).

    With ``expected`` (batched MAC / dot / decoupleQ streams) the harness compares every lane
    with it as it goes and dumps a chunk only on a mismatch: got/valid are None when nothing
    differed (every result equalled its expected value bit for bit), else the expected values
    with the dumped chunks' outputs in place. Without it (systolic streams, given ``chunks``;
    the naive method) every chunk is dumped and got/valid hold every output."""
    total = stim.cycles
    lanes = h.lanes
    naive = method == "naive"
    if starts is None:
        starts = [0]
    if chunks is None:
        chunks, valid = _lane_schedule(total, starts, h.depth)
    else:
        if lanes != 1:
            raise MacforgeError("explicit chunks need a one-lane harness")
        valid = [[n] for n in chunks]
    # pairs (chunk start within each lane): offsets of the chunks in lane-local cycles
    offsets = np.concatenate([[0], np.cumsum(chunks)[:-1]]).astype(int).tolist() if chunks else []
    check = expected is not None and not naive
    exp_holder: list[np.ndarray] = []

    def prepare() -> dict[str, Any]:
        srows = pack_bytes(h.stim, stim.cols)
        if check:
            assert expected is not None
            exp_holder.append(expected())
        for k, (n, k0) in enumerate(zip(chunks, offsets)):
            (run_dir / f"stim_{k:04d}.bin").write_bytes(
                _records(srows, starts, lanes, k0, valid[k], n, "icarus" if naive else simulator)
            )
            if check:
                (run_dir / f"exp_{k:04d}.bin").write_bytes(
                    _expected_records(h, exp_holder[0], starts, k0, valid[k], n, simulator)
                )
        return {
            "chunks": chunks,
            "lanes": valid,
            "method": method,
            "dump_all": not check,
            "result_digits": h.result.hex_digits,
            "stim_bytes": h.stim_bytes,
        }

    timing = _simulate(h, bdir, simulator, method, run_dir, prepare)
    if expected is not None and not exp_holder:
        exp_holder.append(expected())  # the naive method compares here, after the run
    exp = exp_holder[0] if exp_holder else None
    bad = [int(b) for b in timing.get("bad", [])]
    if check and not any(bad):
        return exp, None, None, timing
    nf = len(h.result.widths)
    if exp is not None:
        got, ok = exp.copy(), np.ones(exp.shape, dtype=bool)
    else:
        got, ok = np.zeros((total, nf), dtype=np.int64), np.zeros((total, nf), dtype=bool)
    for k, (n, k0) in enumerate(zip(chunks, offsets)):
        if check and not bad[k]:
            continue
        vals, vld = _read_results(h, simulator, run_dir, k, n)
        seen = 0
        for p, v in enumerate(valid[k]):
            at = slice(starts[p] + k0, starts[p] + k0 + v)
            got[at], ok[at] = vals[:v, p], vld[:v, p]
            if check:
                assert exp is not None
                seen += int(((vals[:v, p] != exp[at]) | ~vld[:v, p]).any(axis=1).sum())
        if check and seen != bad[k]:
            raise RuntimeError(
                f"{simulator} run of {h.unit}: chunk {k}: the harness counted {bad[k]} "
                f"mismatching cycles, its dump shows {seen}"
            )
    return exp, got, ok, timing


def _failures(
    stim: Stimulus, insts: Sequence[Instance], got: np.ndarray, valid: np.ndarray, exp: np.ndarray
) -> tuple[int, list[dict[str, Any]]]:
    bad = (got != exp) | ~valid
    total = int(bad.sum())
    if not total:
        return 0, []
    cand: list[tuple[int, int, int]] = []  # (rank: 0 = onset, cycle, instance)
    for i in range(bad.shape[1]):
        col = bad[:, i]
        onset = col & ~np.concatenate([[False], col[:-1]])
        cand += [(0, int(t), i) for t in np.flatnonzero(onset)[:MAX_FAILURES]]
        cand += [(1, int(t), i) for t in np.flatnonzero(col & ~onset)[:MAX_FAILURES]]
    cand.sort()
    out = []
    for rank, t, i in cand[:MAX_FAILURES]:
        inst = insts[i]
        src = t - (inst.spec.latency - 1)
        out.append(
            {
                "cycle": t,
                "instance": inst.label,
                "onset": rank == 0,
                "section": stim.section_at(max(src, 0)),
                "input_cycle": src,
                "inputs": stim.inputs_at(src) if src >= 0 else {},
                "expected": int(exp[t, i]),
                "got": int(got[t, i]) if valid[t, i] else "x",
            }
        )
    return total, out


def _systolic_depth(idle: np.ndarray) -> int:
    """Harness memory depth for a systolic stream: ``CHUNK_DEPTH`` unless a stretch without
    an idle cycle (a very long tile) needs more (a power of two)."""
    ok = np.flatnonzero(idle)
    longest = int(np.max(np.diff(ok))) if ok.size > 1 else int(idle.size)
    depth = CHUNK_DEPTH
    while depth < longest:
        depth *= 2
    return depth


def _check_vectors(vectors: object) -> int:
    if isinstance(vectors, bool) or not isinstance(vectors, (int, np.integer)) or vectors < 0:
        raise MacforgeError(f"vectors must be a non-negative integer, not {vectors!r}")
    return int(vectors)


def run_stream(
    unit: UnitSpec | str,
    stim_fn: Callable[[UnitSpec, list[dict[str, object]]], Stimulus],
    *,
    simulator: str = "icarus",
    method: str = "batched",
    variants: bool = True,
    fault: object | None = None,
    build_root: Path | str | None = None,
    keep: bool = False,
    keep_failed: bool = True,
) -> SimResult:
    """Simulate one unit on the stimulus ``stim_fn(spec, ports)`` and compare every cycle of
    every instance with golden."""
    t0 = time.perf_counter()
    spec = as_spec(unit)
    check_simulator(simulator)
    if method not in METHODS:
        raise UnknownNameError("method", method, list(METHODS))
    root = Path(build_root) if build_root is not None else default_build_root()
    import rtl

    insts = unit_instances(spec, variants=variants, fault=fault)
    ports = rtl.ports(spec)
    stim = stim_fn(spec, ports)
    notes = list(stim.notes)
    run_dir = root / "runs" / f"{simulator}-{spec.name}-{method}-{os.getpid()}-{next(_run_counter)}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    if spec.kind == "systolic":
        # expected outputs first: they also say where the stream may be cut into chunks
        exps = [systolic_expected(i.spec, stim) for i in insts]
        h = make_harness(spec.name, insts, root, _systolic_depth(exps[0].idle))
        chunks = idle_chunks(stim.cycles, exps[0].idle, h.depth)
        bdir, build_s = build_harness(h, simulator, root)
        _, got, valid, timing = _run_batched(h, bdir, simulator, method, stim, run_dir, None,
                                             chunks=chunks)
        assert got is not None and valid is not None
        mism, rows, fails = compare_systolic(stim, [i.label for i in insts], exps, h.fields, got, valid)
        notes.append(f"{len(exps[0].tiles)} tiles; every cycle's out_valid and {rows} result rows "
                     f"(out_row, c) compared")
    else:
        lanes, starts = lane_starts(stim) if method == "batched" else (1, [0])
        h = make_harness(spec.name, insts, root, lanes=lanes)
        if [k for k, _, _ in h.fields] != list(range(len(insts))):
            raise MacforgeError(f"unit {spec.name}: expected one result field per instance")
        bdir, build_s = build_harness(h, simulator, root)

        def expected() -> np.ndarray:
            return np.stack([expected_trace(i.spec, stim) for i in insts], axis=1)

        exp, got, valid, timing = _run_batched(h, bdir, simulator, method, stim, run_dir,
                                               expected, starts=starts)
        assert exp is not None
        if got is None:  # the harness compared every cycle: nothing differed
            mism, fails = 0, []
        else:
            assert valid is not None
            mism, fails = _failures(stim, insts, got, valid, exp)
    sim_s = float(timing["sim_seconds"])
    kept = keep or (keep_failed and mism > 0)
    if not kept:
        shutil.rmtree(run_dir, ignore_errors=True)
    return SimResult(
        unit=spec.name,
        simulator=simulator,
        vectors=stim.cycles,
        mismatches=mism,
        seconds=time.perf_counter() - t0,
        method=method,
        failures=fails,
        checked=stim.cycles * len(insts),
        instances=[i.label for i in insts],
        exhaustive=stim.exhaustive,
        build_seconds=build_s,
        sim_seconds=sim_s,
        notes=notes,
        run_dir=str(run_dir) if kept else None,
        sim_cpu_seconds=float(timing.get("sim_cpu_seconds", 0.0)),
        lanes=h.lanes,
    )


def run_units(
    units: Sequence[UnitSpec | str] | None = None,
    simulator: str = "icarus",
    vectors: int = DEFAULT_VECTORS,
    exhaustive: bool = False,
    seed: int = 0,
    method: str = "batched",
    progress: Callable[[str], None] | None = None,
    *,
    variants: bool | None = None,
    fault: object | None = None,
    real_data: bool = True,
    build_root: Path | str | None = None,
    keep: bool = False,
    keep_failed: bool = True,
) -> list[SimResult]:
    """Simulate each unit with cocotb and compare every cycle with ``models.golden``.

    Parameters
    ----------
    units
        Unit names or ``UnitSpec``s (default: every unit of ``models.units.unit_names()``).
        Systolic arrays (kind ``systolic``) run the tile plan of ``testbench._systolic``:
        every cycle's out_valid and every valid result row (out_row, c) against
        ``models.golden.gemm``. Huffman decoders (kind ``huffman``) run the plan of
        ``testbench._huffman`` (``vectors`` × 0.3 symbols per random / real stream) against
        the golden codec.
    simulator
        ``"icarus"`` or ``"verilator"`` (``SIMULATORS``).
    vectors
        Random cycles (interleaved en/clr, LUT writes, resets) on top of the exhaustive and
        directed sections (see ``testbench._stimulus``).
    exhaustive
        Enumerate pair spaces up to 2^20 (default: up to 2^16, which covers every built-in
        unit), run the full-width accumulator until it wraps, program a second LUT. For a
        systolic unit the enumeration is every (w, a[, z]) through every PE (the k's of
        back-to-back tiles, arranged so that each PE(i, j) sees each combination once: the
        same 2^16 / 2^20 limits, independent of the array size, which only makes each cycle
        costlier), and the wrap tile is one tile whose full-width accumulators wrap.
    seed
        Seed of every random choice; the same seed gives the same stimulus.
    method
        ``"batched"`` (stimulus and results through $readmemh/$writememh memories, compared in
        bulk) or ``"naive"`` (one Python callback per cycle).
    progress
        Called with one line of text per finished unit.
    variants
        Also simulate a narrow wrap and a narrow saturating accumulator variant side by side.
        Default (None): for every unit with at most 4 lanes; the 8- and 16-lane PEs share the
        accumulator code of the 4-lane ones and would triple the default run on Icarus.
    fault
        An ``rtl.Fault`` built into every instance (mutation testing); implies no variants.
    real_data
        Append a real SmolLM2-activation × MiniLM-weight stream when ``models.realdata`` can
        provide it; otherwise the result's ``notes`` say it was skipped and why.
    build_root
        Directory for generated sources, simulator builds and run directories (default
        build/testbench; pytest-xdist workers pass their own).
    keep, keep_failed
        Keep the run directory (stimulus / result hex, simulator log) always / when a
        mismatch was found (the result's ``run_dir``).
    """
    if simulator not in SIMULATORS:
        raise UnknownNameError("simulator", simulator, list(SIMULATORS))
    check_simulator(simulator)
    if method not in METHODS:
        raise UnknownNameError("method", method, list(METHODS))
    nvec = _check_vectors(vectors)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MacforgeError(f"seed must be an integer, not {seed!r}")
    specs = [as_spec(u) for u in (units if units is not None else unit_names())]
    results = []
    for k, spec in enumerate(specs):
        if spec.kind == "huffman":  # a decoder, not a MAC: its own plan against the golden codec
            from ._huffman import run_huffman

            if fault is not None:
                raise MacforgeError(f"unit {spec.name}: rtl.Fault targets MAC datapaths; mutate a huffman "
                                    "decoder with testbench._huffman.run_huffman(..., mutant=...)")
            r = run_huffman(spec, simulator=simulator, seed=int(seed) + k, symbols=max(300, nvec * 3 // 10),
                            real_data=real_data, build_root=build_root, keep=keep)
            results.append(r)
            if progress is not None:
                status = "ok" if r.ok else f"{r.mismatches} MISMATCHES"
                progress(f"[{k + 1}/{len(specs)}] {r.unit} on {simulator} (huffman plan): {r.vectors} cycles, "
                         f"{r.checked} symbols, {status}, {r.seconds:.1f} s")
            continue
        notes: list[str] = []
        real = None
        if real_data:
            try:
                lanes = _lanes(spec)
                acts, codes, zps = load_real_data(spec, REAL_DATA_CYCLES * lanes, seed=int(seed))
                real = (acts, codes, zps)
            except Exception as e:  # noqa: BLE001 - any failure of the optional real data: note it
                first = str(e).splitlines()[0] if str(e) else ""
                notes.append(f"real data skipped: {type(e).__name__}: {first}")

        def stim_fn(
            s: UnitSpec,
            ports: list[dict[str, object]],
            real: Any = real,
            notes: list[str] = notes,
            k: int = k,
        ) -> Stimulus:
            if s.kind == "systolic":
                return build_systolic_stimulus(
                    s,
                    ports,
                    vectors=nvec,
                    seed=int(seed) + k,
                    exhaustive=exhaustive,
                    real=None if real is None else systolic_real_columns(s, *real),
                    notes=notes,
                )
            cols = None
            if real is not None:
                from ._stimulus import _lanes_of

                cols = real_data_columns(s, _lanes_of(ports), *real)
            return build_stimulus(
                s,
                ports,
                vectors=nvec,
                seed=int(seed) + k,
                exhaustive=exhaustive,
                real=cols,
                notes=notes,
            )

        with_variants = (
            (spec.lanes <= AUTO_VARIANT_MAX_LANES) if variants is None else bool(variants)
        )
        r = run_stream(
            spec,
            stim_fn,
            simulator=simulator,
            method=method,
            variants=with_variants and fault is None,
            fault=fault,
            build_root=build_root,
            keep=keep,
            keep_failed=keep_failed,
        )
        results.append(r)
        if progress is not None:
            status = "ok" if r.ok else f"{r.mismatches} MISMATCHES"
            progress(
                f"[{k + 1}/{len(specs)}] {r.unit} on {simulator} ({method}): {r.vectors} cycles × "
                f"{len(r.instances)} instances, {status}, {r.seconds:.1f} s"
            )
    return results


def check_real_data(
    unit: UnitSpec | str,
    activations: np.ndarray,
    weight_codes: np.ndarray,
    zero_points: np.ndarray | None = None,
    *,
    simulator: str = "icarus",
    method: str = "batched",
    dot_length: int = 576,
    seed: int = 0,
    variants: bool = True,
    build_root: Path | str | None = None,
    keep: bool = False,
) -> SimResult:
    """The real-data hook: simulate ``unit`` on given arrays (int8 activations, the unit's weight
    codes, per-element zero points for zero-point formats) and compare with golden.

    Elements are consumed in order, ``lanes`` per cycle; ``clr`` every ``dot_length`` elements.
    decoupleQ units take whole groups (the tail that does not fill a group is dropped) with
    random seeded coefficients. ``models.realdata`` (``load_real_data``) provides such arrays
    from SmolLM2 / MiniLM; any other source works the same way."""
    from ._stimulus import _lanes_of

    def stim_fn(s: UnitSpec, ports: list[dict[str, object]]) -> Stimulus:
        if s.kind == "systolic":
            tiles = systolic_real_columns(
                s,
                np.asarray(activations),
                np.asarray(weight_codes),
                None if zero_points is None else np.asarray(zero_points),
            )
            return build_systolic_stimulus(s, ports, vectors=0, seed=seed, real=tiles, real_only=True)
        cols = real_data_columns(
            s,
            _lanes_of(ports),
            np.asarray(activations),
            np.asarray(weight_codes),
            None if zero_points is None else np.asarray(zero_points),
            dot_length,
        )
        return build_stimulus(s, ports, vectors=0, seed=seed, real=cols, real_only=True)

    return run_stream(
        unit,
        stim_fn,
        simulator=simulator,
        method=method,
        variants=variants,
        build_root=build_root,
        keep=keep,
    )


def _lanes(spec: UnitSpec) -> int:
    """Elements a unit consumes per real-data cycle (per k for a systolic array)."""
    if spec.kind == "systolic":
        return max(spec.rows, spec.cols)
    return spec.lanes if spec.kind == "dot" else 1


def format_table(results: Sequence[SimResult]) -> str:
    """A plain-text table: unit, simulator, vectors, mismatches, seconds (+ method, instances,
    exhaustive), then each failing unit's first failures with their inputs."""
    head = ("unit", "simulator", "method", "vectors", "checked", "mismatches", "seconds", "exh")
    rows = [
        (
            r.unit,
            r.simulator,
            r.method,
            str(r.vectors),
            str(r.checked),
            str(r.mismatches),
            f"{r.seconds:.1f}",
            "yes" if r.exhaustive else "no",
        )
        for r in results
    ]
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    right = {3, 4, 5, 6}

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        )

    lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    total_mism = sum(r.mismatches for r in results)
    lines.append(
        f"{len(results)} unit runs, {sum(r.checked for r in results)} results checked, "
        f"{total_mism} mismatches, {sum(r.seconds for r in results):.1f} s"
    )
    for r in results:
        for f in r.failures:
            lines.append(
                f"  {r.unit} [{f['instance']}] cycle {f['cycle']} ({f['section']}): inputs "
                f"{_fmt_inputs(f['inputs'])} expected {f['expected']} got {f['got']}"
            )
    by_note: dict[str, list[str]] = {}
    for r in results:
        for n in r.notes:
            by_note.setdefault(n, []).append(r.unit)
    for n, units in by_note.items():
        who = units[0] if len(units) == 1 else f"{len(units)} units"
        lines.append(f"  note ({who}): {n}")
    return "\n".join(lines)


def _fmt_inputs(inputs: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in inputs.items())
