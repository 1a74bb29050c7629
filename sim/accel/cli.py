"""``macforge accel``: one workload on one accelerator spec.

Wiring (sim/cli.py): ``from sim.accel.cli import add_parser`` and ``add_parser(sub)`` in
``build_parser``; the command raises ``MacforgeError`` for bad input (exit 2 in ``main``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from pathlib import Path

__all__ = ["add_parser", "cmd_accel", "run_accel", "DEFAULT_ARCH"]

DEFAULT_ARCH = Path(__file__).resolve().parents[2] / "examples" / "arch" / "w8a8_int8.toml"


def add_parser(sub: Any) -> None:
    """Add the ``accel`` subcommand to ``sub`` (the subparsers object of ``build_parser``)."""
    a = sub.add_parser("accel", help="an LLM (prefill/decode) or one GEMM on an accelerator spec: "
                                     "tokens/s, J/token, mm², utilization, bound")
    a.add_argument("--arch", metavar="FILE", help="accelerator TOML (examples/arch/; default: the W8A8 baseline "
                                                  "examples/arch/w8a8_int8.toml)")
    w = a.add_mutually_exclusive_group(required=True)
    w.add_argument("--model", metavar="NAME", help="transformer decoder (smollm2-135m, opt-125m..66b, "
                                                   "llama-7b..65b, llama-2-*, llama-3-*)")
    w.add_argument("--gemm", metavar="MxKxN", help="a single GEMM Y[M,N] = A[M,K] W[K,N]")
    a.add_argument("--phase", default="decode", choices=["prefill", "decode"])
    a.add_argument("--batch", type=int, default=1)
    a.add_argument("--seq", type=int, default=512, help="prefill: tokens per sequence")
    a.add_argument("--context", type=int, default=512, help="decode: cached tokens attended to")
    a.add_argument("--weights", metavar="FMT", help="weight format (default: the arch's [formats] / PE unit)")
    a.add_argument("--acts", metavar="FMT", help="activation format")
    a.add_argument("--kv", metavar="FMT", help="KV-cache format")
    a.add_argument("--attn", metavar="FMT", help="format of Q and softmax probabilities")
    a.add_argument("--unit", metavar="UNIT", help="PE unit override: a name or inline spec")
    a.add_argument("--rows", type=int)
    a.add_argument("--cols", type=int)
    a.add_argument("--arrays", type=int)
    a.add_argument("--dataflow", choices=["os", "ws", "is"])
    a.add_argument("--schedule", choices=["macforge", "scalesim"])
    a.add_argument("--json", action="store_true", help="one JSON document on stdout")
    a.set_defaults(func=cmd_accel)


def run_accel(args: argparse.Namespace) -> Any:
    """The ``AccelResult`` for parsed ``accel`` arguments."""
    from . import evaluate, gemm_workload, load_arch, parse_gemm, resolve_formats, transformer_workload

    spec = load_arch(args.arch if args.arch is not None else DEFAULT_ARCH)
    changes: dict[str, Any] = {}
    for flag, path in (("rows", "array.rows"), ("cols", "array.cols"), ("arrays", "array.count"),
                       ("dataflow", "array.dataflow"), ("schedule", "array.schedule"), ("unit", "pe.unit")):
        v = getattr(args, flag)
        if v is not None:
            changes[path] = v
    if changes:
        spec = spec.replace(**changes)
    fm = resolve_formats(spec, args.weights, args.acts, args.kv, args.attn)
    if args.gemm is not None:
        wl = gemm_workload(*parse_gemm(args.gemm), formats=fm)
    else:
        wl = transformer_workload(args.model, args.phase, batch=args.batch, seq=args.seq, context=args.context,
                                  formats=fm)
    return evaluate(spec, wl)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def cmd_accel(args: argparse.Namespace) -> int:
    r = run_accel(args)
    if args.json:
        print(json.dumps(_clean(r.to_json()), indent=1))
        return 0
    s = r.summary
    print(f"{s['arch']}: {s['workload']} on {s['arrays']}×{s['rows']}×{s['cols']} {s['pe_unit']} "
          f"({s['dataflow']}, {s['clock_mhz']:g} MHz)")
    print(f"  tokens/s {s['tokens_per_s']:.4g}   J/token {s['energy_per_token_j']:.4g}   area {s['area_mm2']:.4g} mm²   "
          f"utilization {s['utilization']:.1%}   bound {s['bound']}")
    print(f"  TOPS {s['tops']:.4g}   TOPS/mm² {s['tops_per_mm2']:.4g}   TOPS/W {s['tops_per_w']:.4g}   "
          f"cycles {s['cycles']:.4g} (compute {s['cycles_compute']:.4g})")
    e = s["energy_j_breakdown"]
    tot = sum(e.values()) or 1.0
    print("  energy: " + ", ".join(f"{k} {v / tot:.0%}" for k, v in e.items()))
    print(f"{'gemm':10} {'engine':9} {'M':>6} {'K':>6} {'N':>6} {'count':>5} {'cycles':>11} {'util':>6} bound")
    for g in r.gemms.itertuples():
        print(f"{g.name:10} {g.engine:9} {g.m:>6} {g.k:>6} {g.n:>6} {g.count:>5} {g.cycles:>11.4g} "
              f"{g.utilization:>6.1%} {g.bound}")
    print(f"PE cost: {s['pe_cost_source']}", file=sys.stderr)
    return 0
