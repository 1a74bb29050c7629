"""Benchmark: an analytical what-if sweep over LLaMA-7B, 10,000 accelerator configurations, each
evaluated on every GEMM of prefill (seq 512) and of decode (context 512): 20,000 workload points.

Writes reports/bench/whatif.md (the figures also as build/bench_whatif/whatif.csv). Run: `make bench`
or `PYTHONPATH=. .venv/bin/python bench/bench_whatif.py` (`--quick`: 1/12 of the points, written to
build/bench_whatif/ only).

Measured: the full `run_study` (point expansion, hashing, the local process pool with 2 workers,
each point's row written to a fresh point cache) — what `macforge whatif` does before writing its
report; the re-run that reads every point from the cache; and the single-process evaluation
rate (`evaluate_point` in a loop). The PE figures are given explicitly (energy per MAC, area):
with the fitted cost model they are looked up once per PE unit, so timing does not depend on
them. Goal (issue #8): 10,000 points in ≤ 10 s on this 2-core machine.

`--synth N` (not part of `make bench`: tens of minutes) runs only the synthesis-backed comparison
(written to reports/bench/whatif_synth.md, linked from whatif.md): N
points, each with its own inline dot-product PE (lanes × weight bits × activation bits), priced
by `measure = "synth"` (the PE synthesized and simulated at gate level for energy), on a 2-worker
Dask LocalCluster and on the local pool. The flow caches synthesis by design, so the two runs use
two disjoint PE sets of the same shapes (accumulators 24 and 26 bits wide).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.whatif import expand_points, run_study, study_from_dict  # noqa: E402
from sim.whatif._run import evaluate_point  # noqa: E402

OUT = ROOT / "reports" / "bench"
CACHE = ROOT / "build" / "bench_whatif"


def study(quick: bool) -> dict:
    sweep = {
        "pe.energy_per_mac_pj": [0.05],
        "pe.area_um2": [400.0],
        "array.rows": [8, 12, 16, 24, 32],
        "array.cols": [8, 12, 16, 24, 32],
        "array.dataflow": ["os", "ws"],
        "dram.bandwidth_gb_s": [17.0, 34.0, 68.0, 136.0, 272.0],
        "buffers.weights.size_kib": [128.0, 256.0, 512.0, 1024.0],
        "buffers.inputs.size_kib": [64.0, 128.0, 256.0, 512.0, 1024.0],
    }
    if quick:
        sweep["buffers.inputs.size_kib"] = [256.0]
        sweep["dram.bandwidth_gb_s"] = [34.0, 68.0]
    return {"name": "bench_llama7b" + ("_quick" if quick else ""), "arch": ["examples/arch/w8a8_int8.toml"],
            "variant": [{"pe.unit": "dot8_int8xint8", "formats.weights": "int8", "formats.kv": "int8"},
                        {"pe.unit": "dot8_dint4_sym_xint8", "formats.weights": "dint4_sym", "formats.kv": "dint4_sym"}],
            "sweep": sweep, "workload": {"models": ["llama-7b"], "phases": ["prefill", "decode"], "seq": [512],
                                         "context": [512]}}


def synth_study(n: int, acc_bits: int) -> dict:
    """``n`` points, each a distinct inline dot-product PE, decode of SmolLM2 (one point each)."""
    shapes = [(lanes, wb, ab) for lanes in (2, 3, 4, 5, 6, 8) for wb in (2, 3, 4, 5, 6, 7) for ab in (4, 6, 8)]
    variants = [{"pe.unit": f"kind=dot,weights=int{wb},acts=int{ab},lanes={lanes},acc_bits={acc_bits}",
                 "formats.weights": f"int{wb}", "formats.acts": f"int{ab}", "formats.kv": "int8", "formats.attn": "int8"}
                for lanes, wb, ab in shapes[:n]]
    return {"name": f"bench_synth_acc{acc_bits}", "measure": "synth", "arch": ["examples/arch/w8a8_int8.toml"],
            "variant": variants, "workload": {"models": ["smollm2-135m"], "phases": ["decode"], "context": [512]}}


def synth_comparison(n: int, workers: int) -> list[str]:
    results = []
    for executor, acc in (("dask", 24), ("local", 26)):
        st = study_from_dict(synth_study(n, acc), "<bench>")
        cache = CACHE / st.name
        shutil.rmtree(cache, ignore_errors=True)
        t = time.perf_counter()
        df, _ = run_study(st, executor, workers=workers, progress=False, cache_dir=cache)
        results.append((executor, len(df), int(df.feasible.sum()), time.perf_counter() - t))
    md = ["## Synthesis-backed sweep: Dask LocalCluster vs local pool", "",
          f"{n} points, each a distinct inline INT dot-product PE (lanes 2-8, weights int2-int7, activations "
          f"int4/int6/int8) priced by synthesis + gate-level energy, SmolLM2 decode; {workers} workers.", "",
          "| executor | points | feasible | seconds | points per minute |", "|---|---|---|---|---|"]
    md += [f"| {e} | {p} | {f} | {s:.1f} | {p / s * 60:.1f} |" for e, p, f, s in results]
    return md + [""]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--synth", type=int, default=0, metavar="N", help="also the synthesis-backed comparison")
    args = ap.parse_args()
    if args.synth:
        return synth_main(args.synth, args.workers)
    st = study_from_dict(study(args.quick), "<bench>")
    points = expand_points(st)
    configs = len(points) // 2
    # warm: imports, numba kernel, workload shapes (not timed)
    text = st.arch_text[points[0]["arch"]]
    for p in points[:4]:
        evaluate_point(p, text)
    cache = CACHE / st.name
    shutil.rmtree(cache, ignore_errors=True)
    load0 = os.getloadavg()[0]

    def cpu() -> float:  # this process and its finished children (the pool's workers)
        me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime

    t, c0 = time.perf_counter(), cpu()
    df, stats = run_study(st, "local", workers=args.workers, progress=False, cache_dir=cache)
    sweep_s = time.perf_counter() - t
    sweep_cpu = cpu() - c0
    t = time.perf_counter()
    _, stats2 = run_study(st, "local", workers=args.workers, progress=False, cache_dir=cache)
    cached_s = time.perf_counter() - t
    n1 = min(2000, len(points))
    t, c = time.perf_counter(), time.process_time()
    for p in points[:n1]:
        evaluate_point(p, text)
    single_rate = n1 / (time.perf_counter() - t)
    cpu_ms = (time.process_time() - c) / n1 * 1e3
    load1 = os.getloadavg()[0]
    feasible = int(df.feasible.sum())
    rows = [("configurations", configs), ("workload points (prefill + decode each)", len(points)),
            ("feasible points", feasible), ("workers", args.workers), ("sweep seconds (fresh cache)", round(sweep_s, 2)),
            ("configurations per second", round(configs / sweep_s, 1)),
            ("sweep CPU seconds (parent + pool workers)", round(sweep_cpu, 1)),
            ("sweep CPU seconds / 2 cores (an idle machine's lower bound)", round(sweep_cpu / 2, 1)),
            ("re-run seconds (all points cached)", round(cached_s, 2)),
            ("single-process workload points per second", round(single_rate, 1)),
            ("single-process CPU ms per workload point", round(cpu_ms, 3)),
            ("load average before / after", f"{load0:.1f} / {load1:.1f}")]
    out = CACHE if args.quick else OUT
    out.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "whatif.csv", "w", newline="") as f:
        csv.writer(f).writerows([("metric", "value"), *rows])
    goal = "met" if (configs >= 10000 and sweep_s <= 10.0) else ("not met" if configs >= 10000 else "n/a (--quick)")
    md = [
        "# What-if sweep benchmark (analytical, LLaMA-7B)", "",
        f"Generated by `bench/bench_whatif.py{' --quick' if args.quick else ''}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}; Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(machine shared with other jobs: load average {load0:.1f} before, {load1:.1f} after).", "",
        f"Sweep: {configs} accelerator configurations (PE unit × rows × cols × dataflow × DRAM bandwidth × weight "
        f"and input buffer sizes, base `examples/arch/w8a8_int8.toml`), each on LLaMA-7B prefill (batch 1, seq 512) "
        f"and decode (context 512): every GEMM of a decoder layer plus the LM head, tiled and scheduled by "
        f"`sim.accel` — {len(points)} workload points, {feasible} feasible. Local process pool, {args.workers} "
        f"workers, fresh point cache (each row written to build/).", "",
        "| metric | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
        f"Goal: 10,000 configurations (prefill + decode each) in ≤ 10 s on this 2-core machine — **{goal}** "
        f"({sweep_s:.1f} s measured).", "",
    ]
    synth_md = OUT / "whatif_synth.md"
    if synth_md.exists():
        md += ["The synthesis-backed sweep on a 2-worker Dask LocalCluster vs the local pool (issue #8 item 9, "
               "second part) is measured separately (`bench/bench_whatif.py --synth 50`, tens of minutes; not part "
               "of `make bench`): [whatif_synth.md](whatif_synth.md).", ""]
    else:
        md += ["The synthesis-backed sweep on a 2-worker Dask LocalCluster vs the local pool (issue #8 item 9, second "
               "part) has not been run on this checkout (`bench/bench_whatif.py --synth 50`, tens of minutes).", ""]
    (out / "whatif.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


def synth_main(n: int, workers: int) -> int:
    """``--synth N``: only the synthesis-backed comparison, written to reports/bench/whatif_synth.md."""
    load0 = os.getloadavg()[0]
    body = synth_comparison(n, workers)
    load1 = os.getloadavg()[0]
    md = ["# What-if sweep benchmark: synthesis-backed points, Dask LocalCluster vs local pool", "",
          f"Generated by `bench/bench_whatif.py --synth {n}` on {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs; 1-minute load average {load0:.1f} before, {load1:.1f} "
          f"after (above the CPU count: other jobs shared the machine). Each executor starts from an empty point "
          f"cache and its own PE set, so every point is synthesized (Yosys, generic library) and simulated at "
          f"gate level for energy.", "", *body]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "whatif_synth.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
