"""Benchmark: checked MAC results per second of the cocotb testbench, naive vs batched, on
Icarus and Verilator, in the same run.

Writes reports/bench/sim.md and sim.csv. Run: `make bench` or
`PYTHONPATH=. .venv/bin/python bench/bench_sim.py` (add `--quick` for a short smoke run).

* naive: one Python callback per cycle (cocotb writes the packed input word, awaits the next
  falling edge, reads the acc word); expected values from models.golden, compared in bulk.
* batched: the generated harness reads the stimulus from a $readmemh memory, clocks it through
  the unit from an internal counter and writes every cycle's acc with $writememh; Python compares
  with the golden trace in bulk (numpy).

Both methods run the same stimulus plan (testbench._stimulus: reset, the exhaustive pair pass,
overflow runs, N seeded random cycles, mid-stream resets) on the same harness build; each
cycle's accumulator is one checked MAC result. The build is done once before timing.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import testbench
from models.errors import MacforgeError
from models.units import get_unit

OUT = ROOT / "reports" / "bench"
BUILD = ROOT / "build" / "bench_sim"
UNIT = "mac_int8xint8"
DOT_UNIT = "dot16_int8xint8"
# random cycles on top of the fixed sections (~70k cycles for mac_int8xint8)
VECTORS = {"naive": 30_000, "batched": 1_000_000}
QUICK_VECTORS = {"naive": 2_000, "batched": 50_000}
REPEATS = 2
GOAL = 200_000


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _tool(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "not found"


@dataclass
class Row:
    simulator: str
    method: str
    unit: str
    lanes: int
    cycles: int
    seconds_total: float
    seconds_sim: float

    @property
    def rate_total(self) -> float:
        return self.cycles / self.seconds_total

    @property
    def rate_sim(self) -> float:
        return self.cycles / self.seconds_sim

    def csv(self) -> dict[str, object]:
        d: dict[str, object] = asdict(self)
        d.update(
            results_per_s_total=self.rate_total,
            results_per_s_sim=self.rate_sim,
            macs_per_s_total=self.rate_total * self.lanes,
        )
        return {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in d.items()}


def _measure(unit: str, sim: str, method: str, vectors: int, repeats: int) -> Row:
    def run(n: int) -> testbench.SimResult:
        (r,) = testbench.run_units(
            [unit],
            simulator=sim,
            method=method,
            vectors=n,
            seed=0,
            variants=False,
            real_data=False,
            build_root=BUILD,
        )
        if r.mismatches:
            raise SystemExit(
                f"{unit} on {sim} ({method}) has {r.mismatches} mismatches: the "
                "benchmark only counts checked, correct results"
            )
        return r

    run(0)  # build (or reuse) the harness: not timed
    best: Row | None = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = run(vectors)
        wall = time.perf_counter() - t0
        if best is None or wall < best.seconds_total:
            best = Row(sim, method, unit, get_unit(unit).lanes, r.vectors, wall, r.sim_seconds)
    assert best is not None
    return best


COLUMNS = (
    "simulator",
    "method",
    "unit",
    "cycles",
    "end-to-end s",
    "checked results/s (end-to-end)",
    "simulation loop s",
    "checked results/s (loop)",
    "MACs/s (end-to-end)",
)
METHOD = (
    "Method: the same harness build and the same stimulus plan (reset, every (w, a) pair, "
    "overflow runs, N seeded random cycles with interleaved en/clr, mid-stream resets) for both "
    "methods; one checked result = one cycle's accumulator compared bit for bit with "
    "`models.golden`. *naive*: one Python callback per cycle (cocotb writes the packed input word, "
    "awaits the falling edge, reads the acc word). *batched*: a generated Verilog harness reads "
    "the stimulus from a `$readmemh` memory, clocks it through the unit from an internal counter, "
    "stores every cycle's acc and writes it with `$writememh`; the comparison is numpy in bulk. "
    "The clock is cocotb's GPI (C++) clock in both. *end-to-end* = wall-clock of "
    "`testbench.run_units` for the unit (stimulus generation, golden model, hex files, simulator "
    "start-up, simulation, comparison; the build is done before timing); *simulation loop* = time "
    "inside the simulator from the first to the last cycle."
)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small vector counts (smoke test)")
    args = ap.parse_args()
    vectors = QUICK_VECTORS if args.quick else VECTORS
    repeats = 1 if args.quick else REPEATS
    rows: list[Row] = []
    sims = []
    for sim in testbench.SIMULATORS:
        try:
            testbench.check_simulator(sim)
        except MacforgeError as e:
            print(f"skipping {sim}: {e}", file=sys.stderr)
            continue
        sims.append(sim)
        for method in ("naive", "batched"):
            print(f"{UNIT} on {sim}, {method} ...", file=sys.stderr, flush=True)
            rows.append(_measure(UNIT, sim, method, vectors[method], repeats))
        print(f"{DOT_UNIT} on {sim}, batched ...", file=sys.stderr, flush=True)
        rows.append(_measure(DOT_UNIT, sim, "batched", vectors["batched"] // 4, repeats))
    if not rows:
        raise SystemExit("no simulator installed; `make setup` installs them")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "sim.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].csv()))
        w.writeheader()
        for r in rows:
            w.writerow(r.csv())

    def row(sim: str, method: str, unit: str = UNIT) -> Row:
        return next(r for r in rows if (r.simulator, r.method, r.unit) == (sim, method, unit))

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    tools = ", ".join(testbench.simulator_version(s) for s in sims)
    quick = " (--quick)" if args.quick else ""
    machine = (
        f"{os.cpu_count()} cores ({_cpu_model()}), shared with other jobs; {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, cocotb {version('cocotb')}, "
        f"{tools}, {_tool(['g++', '--version'])}, {_tool(['ccache', '--version'])}"
    )
    lines = [
        "# cocotb testbench speed: checked MAC results per second",
        "",
        f"Generated by `bench/bench_sim.py` (`make bench`) on {now}{quick}.",
        f"Machine: {machine}.",
        "",
        f"{METHOD} Best of {repeats} run(s). Goal (issue 3): ≥ {GOAL:,} checked MAC results/s on "
        + "Verilator.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.simulator} | {r.method} | {r.unit} | {r.cycles:,} | {r.seconds_total:.2f} | "
            f"{r.rate_total:,.0f} | {r.seconds_sim:.2f} | {r.rate_sim:,.0f} | "
            f"{r.rate_total * r.lanes:,.0f} |"
        )
    lines.append("")
    for sim in sims:
        b, n = row(sim, "batched"), row(sim, "naive")
        lines.append(
            f"- {sim}: batched {b.rate_total:,.0f} vs naive {n.rate_total:,.0f} checked results/s "
            f"end-to-end ({b.rate_total / n.rate_total:.1f}×); simulation loop "
            f"{b.rate_sim:,.0f} vs {n.rate_sim:,.0f} ({b.rate_sim / n.rate_sim:.1f}×)."
        )
    if "verilator" in sims:
        v = row("verilator", "batched").rate_total
        lines.append(
            f"- Goal ≥ {GOAL:,}/s on Verilator (end-to-end, batched): "
            f"{'met' if v >= GOAL else 'NOT met'} ({v:,.0f}/s)."
        )
    lines.append(f"- `{DOT_UNIT}` checks 16 MACs per cycle: one result per cycle, 16× the MACs/s.")
    (OUT / "sim.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
