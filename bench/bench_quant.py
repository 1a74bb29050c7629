"""Benchmark: one W4A8 evaluation of SmolLM2-135M (quantize every block linear + perplexity and
per-token KL on 8 × 512 Wikipedia tokens), RTN and AQAS+GPTQ.

Writes reports/bench/quant.md and quant.csv. Goals (issue #9): RTN W4A8 ≤ 90 s, AQAS+GPTQ W4A8
≤ 5 min. Each timed run starts with the model's weights loaded and the unquantized reference
(its perplexity and final hidden states, used for the KL) already cached — both are one-time
costs, measured and reported separately. Run:
`.venv/bin/python bench/bench_quant.py [--blas-threads N] [--skip-gptq]`.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # BLAS threads must be fixed before numpy is imported
    _pre = argparse.ArgumentParser(add_help=False)
    _pre.add_argument("--blas-threads", type=int, default=None)
    _n = _pre.parse_known_args()[0].blas_threads
    if _n is not None:
        for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[_var] = str(_n)

import csv  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import realdata as rd  # noqa: E402
from sim.accuracy import QuantConfig, run_quant  # noqa: E402
from sim.accuracy._run import DEFAULT_WORKERS, RUN_BLAS_THREADS, cached_result  # noqa: E402

RUNS = [
    ("RTN W4A8 int4_asym g64", dict(weights="int4_asym", group=64, acts="int8", method="rtn"), 90.0),
    ("AQAS+GPTQ W4A8 dint4_asym g64", dict(weights="dint4_asym", group=64, acts="int8",
                                           method="aqas+gptq"), 300.0),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OPENBLAS/OMP threads (default: the library's own choice)")
    ap.add_argument("--skip-gptq", action="store_true", help="only the RTN runs")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help="run_quant threads (calibration sequences, evaluation windows)")
    args = ap.parse_args()
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    rd.smollm2_weights()
    rd.wiki_tokens()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = run_quant(QuantConfig(), progress=False)
    t_ref = time.perf_counter() - t0
    rows = []
    for label, kw, goal in RUNS:
        if args.skip_gptq and "gptq" in kw["method"]:
            continue
        la0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        qc = QuantConfig(**kw)
        before = cached_result(qc)  # a serial (or earlier) run of the same configuration
        doc = run_quant(qc, use_cache=False, progress=False, workers=args.workers)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        same = "–" if before is None else ("yes" if (before["perplexity"], before["kl_vs_reference"])
                                           == (doc["perplexity"], doc["kl_vs_reference"]) else "NO")
        rows.append({"run": label, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                     "load_avg_1min": f"{la0:.1f}-{os.getloadavg()[0]:.1f}", "goal_s": goal,
                     "met": "yes" if wall <= goal else "no", "workers": args.workers,
                     "same_as_cached": same,
                     "quantize_s": doc["timing_s"]["quantize"],
                     "evaluate_s": doc["timing_s"]["evaluate"],
                     "perplexity": round(doc["perplexity"], 3),
                     "kl_vs_reference": round(doc["kl_vs_reference"], 4),
                     "weight_bits_per_element": round(doc["weight_bits_per_element"], 4),
                     "quantize_cpu_s_by_phase": "; ".join(
                         f"{k} {v:.1f}" for k, v in doc.get("quantize_cpu_s", {}).items()) or "–"})
        print(f"{label}: {wall:.1f} s (goal {goal:.0f} s), PPL {doc['perplexity']:.3f}",
              file=sys.stderr)
    load_end = os.getloadavg()
    _d = QuantConfig(weights="dint4_asym", group=64, acts="int8", method="aqas+gptq")
    threads = (f"{RUN_BLAS_THREADS} in every run (pinned by run_quant; loading used "
               f"{args.blas_threads if args.blas_threads is not None else 'the library default'})")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    (out / "quant.csv").write_text(buf.getvalue())
    lines = [
        "# Benchmark: W4A8 accuracy evaluation of SmolLM2-135M",
        "",
        f"Measured by `bench/bench_quant.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
        f"BLAS threads: {threads}. 1-minute load average {load_start[0]:.1f} at the start, "
        f"{load_end[0]:.1f} at the end (other jobs shared the machine when it is above the "
        "CPU count).",
        "",
        "Each run = quantize every linear of the 30 blocks (weights; int8 per-token dynamic "
        "activations on the way into each linear) + perplexity and per-token KL on 8 × 512 "
        "Wikipedia tokens (`models.realdata.smollm2_perplexity`'s windows). Weights already "
        f"loaded ({t_load:.1f} s once per process: GGUF dequantization + tokens) and the "
        f"unquantized reference cached ({t_ref:.1f} s in this process; "
        f"{'a cache hit' if ref.get('cached') else 'computed now'}, reference PPL "
        f"{ref['perplexity']:.3f}). AQAS+GPTQ calibrates on {_d.calib_tokens // _d.effective_calib_len}"
        f" × {_d.effective_calib_len} {_d.calib} tokens disjoint from the evaluation windows "
        f"({_d.alpha_points}-point α grid, loss on {_d.search_tokens} tokens × {_d.search_rows} "
        f"rows per linear; GPTQ damp {_d.damp}, block {_d.gptq_block}).",
        "",
        f"Each run uses {args.workers} worker thread(s) (`run_quant(workers=...)`, `macforge quant "
        "--workers`): the calibration sequences through a block and the evaluation windows run "
        "that many at a time, each with the pinned BLAS thread count, and are combined in the "
        "serial order, so the result is bit for bit the serial one. `same as cached` compares "
        "PPL and KL with the result already cached for the configuration (from the report's "
        "serial runs): `yes` = equal to the last bit, `–` = nothing cached to compare.",
        "",
        "| run | wall s | CPU s | load (1 min) | goal s | met (wall) | quantize s | evaluate s | "
        "PPL | KL nats/token | weight bits/elem | workers | same as cached |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['run']} | {r['wall_s']} | {r['cpu_s']} | {r['load_avg_1min']} | "
                     f"{r['goal_s']:.0f} | {r['met']} | "
                     f"{r['quantize_s']} | {r['evaluate_s']} | {r['perplexity']} | "
                     f"{r['kl_vs_reference']} | {r['weight_bits_per_element']} | {r['workers']} | "
                     f"{r['same_as_cached']} |")
    lines += ["", "Quantize CPU s by phase (process CPU time inside the calibrated path; RTN "
              "without calibration has no phases):", ""]
    lines += [f"* {r['run']}: {r['quantize_cpu_s_by_phase']}" for r in rows]
    lines += ["", "Where the time goes: `quantize s` is the weight quantization (and calibration), "
              "`evaluate s` the quantized forward over the evaluation windows, activation "
              "quantization included (both measured above). `CPU s` is this process's CPU time: "
              "with a load average above the CPU count, wall time includes waiting for the CPU; "
              "on an idle machine CPU s approaches workers × wall s where the threads overlap: the "
              "calibration sequences through each block, the four sites' α searches and "
              "roundings (GPTQ) of each block, and the evaluation windows. The phase CPU seconds "
              "above add both threads; with 4 sites per block on 2 threads the search and GPTQ "
              "phases are only partly parallel (the largest site, ffn_in / ffn_down, bounds a "
              "block).", ""]
    (out / "quant.md").write_text("\n".join(lines))
    print(f"wrote {out / 'quant.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
