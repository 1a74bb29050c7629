"""``macforge quant``: the argparse subcommand (wired into ``sim.cli.build_parser`` through
:func:`add_parser`) and its command function :func:`cmd_quant`."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from models.errors import MacforgeError

from ._config import ALLOCATIONS, CALIBRATION_SOURCES, METHODS, MODELS, QuantConfig
from ._run import DEFAULT_WORKERS

__all__ = ["add_parser", "cmd_quant", "config_from_args"]


def _group(text: str) -> int | str:
    if text in ("channel", "tensor"):
        return text
    try:
        g = int(text)
    except ValueError:
        raise MacforgeError(f"--group must be a positive integer, 'channel' or 'tensor', "
                            f"not {text!r}") from None
    if g < 1:
        raise MacforgeError(f"--group must be a positive integer, not {g}")
    return g


def _blocks(text: str) -> tuple[int, ...]:
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise MacforgeError(f"--blocks must look like '0,1,5' or '0-3', not {text!r}") from None
    if not out:
        raise MacforgeError(f"--blocks names no block: {text!r}")
    return tuple(out)


def add_parser(sub: Any) -> None:
    """Add the ``quant`` subcommand to ``sub`` (the subparsers object of sim.cli)."""
    q = sub.add_parser(
        "quant", help="quantize a real LLM's weights/activations; perplexity, KL, per-layer error")
    q.add_argument("--model", default="smollm2", help=f"one of {', '.join(MODELS)}")
    q.add_argument("--weights", default="fp", metavar="FMT",
                   help="weight format (models.formats name, or fp)")
    q.add_argument("--acts", default="fp", metavar="FMT",
                   help="activation format entering every linear (int8 = per-token absmax INT8)")
    q.add_argument("--method", default="rtn", help=f"one of {', '.join(METHODS)}")
    q.add_argument("--group", default=None, metavar="G|channel|tensor",
                   help="weight scaling granularity (default: the format's)")
    q.add_argument("--act-granularity", default="token", help="token | tensor")
    q.add_argument("--act-calibration", default="dynamic", help="dynamic | static")
    q.add_argument("--kv", default=None, metavar="FMT",
                   help="quantize keys/values per (head, token) with FMT")
    q.add_argument("--windows", type=int, default=8, help="evaluation windows (default 8)")
    q.add_argument("--window", type=int, default=512, help="tokens per window (default 512)")
    q.add_argument("--calib", default="wiki", help=f"calibration text: {', '.join(CALIBRATION_SOURCES)}")
    q.add_argument("--calib-tokens", type=int, default=8192, help="calibration budget in tokens")
    q.add_argument("--calib-len", type=int, default=None,
                   help="calibration sequence length (default 512; slac: the eval window)")
    q.add_argument("--alpha", type=float, default=0.5, help="SmoothQuant migration strength")
    q.add_argument("--alpha-points", type=int, default=20, help="AQAS α grid points in [0, 0.95]")
    q.add_argument("--search-tokens", type=int, default=512, help="AQAS loss tokens per site")
    q.add_argument("--search-rows", type=int, default=128,
                   help="AQAS loss output rows per linear (0 = all)")
    q.add_argument("--damp", type=float, default=0.01, help="GPTQ damping (fraction of mean diag H)")
    q.add_argument("--act-order", action="store_true", help="GPTQ: columns by descending diag H")
    q.add_argument("--gptq-block", type=int, default=128, help="GPTQ lazy-batch block size")
    q.add_argument("--decoupleq-iters", type=int, default=2,
                   help="decoupleQ alternating (integer, s/z) rounds")
    q.add_argument("--outliers", type=float, default=0.0, metavar="FRACTION",
                   help="keep the top FRACTION of |w| per matrix as BF16 + index (e.g. 0.001)")
    q.add_argument("--blocks", default=None, help="quantize only these blocks, e.g. 0-3 or 0,29")
    q.add_argument("--bitexact", action="store_true",
                   help="run every quantized linear through models.golden.gemm")
    q.add_argument("--export-streams", default=None, metavar="LAYER:FILE",
                   help="also write LAYER's int activation codes and weight codes to FILE.npz "
                        "(e.g. blk.29.ffn_down:build/streams/aqas.npz) for energy runs")
    q.add_argument("--allocate", default=None, metavar="RULE",
                   help=f"per-tensor bit widths: {', '.join(ALLOCATIONS)} (int<b> per linear by "
                        "the Fisher rule of PAPERS.md §2; --weights int<b> sets the mean)")
    q.add_argument("--mean-bits", type=float, default=None, metavar="B",
                   help="--allocate: target mean element bits (default: the bits of --weights)")
    q.add_argument("--fisher-seqs", type=int, default=4,
                   help="--allocate fisher: calibration sequences for the Fisher (default 4)")
    q.add_argument("--fisher-len", type=int, default=512,
                   help="--allocate fisher: tokens per Fisher calibration sequence")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--workers", type=int, default=DEFAULT_WORKERS, metavar="N",
                   help="threads for calibration sequences and evaluation windows (results do not "
                        "depend on it; default: 2, or 1 on a 1-CPU machine)")
    q.add_argument("--no-cache", action="store_true", help="recompute even if cached")
    q.add_argument("--json", action="store_true", help="one JSON document on stdout")
    q.set_defaults(func=cmd_quant)


def config_from_args(args: argparse.Namespace) -> QuantConfig:
    """The QuantConfig an argparse namespace of ``quant`` describes (validated)."""
    return QuantConfig(
        model=args.model, weights=args.weights, acts=args.acts, method=args.method,
        group=None if args.group is None else _group(str(args.group)),
        act_granularity=args.act_granularity, act_calibration=args.act_calibration,
        kv=args.kv, windows=args.windows, window=args.window, calib=args.calib,
        calib_tokens=args.calib_tokens, calib_len=args.calib_len, alpha=args.alpha,
        alpha_points=args.alpha_points, search_tokens=args.search_tokens,
        search_rows=None if args.search_rows == 0 else args.search_rows, damp=args.damp,
        act_order=args.act_order, gptq_block=args.gptq_block,
        decoupleq_iters=getattr(args, "decoupleq_iters", 2),
        outliers=getattr(args, "outliers", 0.0),
        blocks=None if args.blocks is None else _blocks(args.blocks),
        bitexact=args.bitexact, seed=args.seed, allocate=getattr(args, "allocate", None),
        mean_bits=getattr(args, "mean_bits", None), fisher_seqs=getattr(args, "fisher_seqs", 4),
        fisher_len=getattr(args, "fisher_len", 512))


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def cmd_quant(args: argparse.Namespace) -> int:
    """Run one configuration; ``--json`` prints the result document, else a summary."""
    from ._run import run_quant

    qc = config_from_args(args)
    export = getattr(args, "export_streams", None)
    if export is not None and ":" not in export:
        raise MacforgeError(f"--export-streams must be LAYER:FILE, not {export!r}")
    if args.workers < 1:
        raise MacforgeError(f"--workers must be >= 1, not {args.workers}")
    doc = run_quant(qc, use_cache=not args.no_cache, progress=True, workers=args.workers)
    if export is not None:
        from ._export import export_streams

        layer, path = export.split(":", 1)
        doc = dict(doc, exported=export_streams(qc, layer, path))
    if args.json:
        print(json.dumps(_json_safe(doc), indent=1))
        return 0
    out = sys.stdout
    ppl = doc.get("perplexity")
    print(f"model {doc['model']}  weights {qc.weights}  acts {qc.acts}  method {doc['method']}"
          f"{'  (cached)' if doc.get('cached') else ''}", file=out)
    if ppl is not None:
        print(f"perplexity {ppl:.3f}  (reference {doc['reference_perplexity']:.3f})  "
              f"KL vs reference {doc['kl_vs_reference']:.4f} nats/token  "
              f"weight bits/elem {doc['weight_bits_per_element']:.3f}", file=out)
    else:
        print(f"mean weight SQNR {doc['mean_weight_sqnr_db']} dB  weight bits/elem "
              f"{doc['weight_bits_per_element']:.3f}", file=out)
    layers = doc["layers"]
    if layers and "weight_sqnr_db" in layers[0]:
        print(f"{'layer':22} {'W SQNR dB':>9} {'A SQNR dB':>9} {'flushed':>8} {'Δu/Δ':>6}", file=out)
        for r in layers:
            mse = r.get("weight_mse") or 0.0
            share = (r.get("weight_underflow_mse", 0.0) / mse) if mse else 0.0
            a = r.get("act_sqnr_db")
            w = r.get("weight_sqnr_db")
            print(f"{r['name']:22} {w if isinstance(w, str) else f'{w:9.2f}':>9} "
                  f"{'-' if a is None else a if isinstance(a, str) else f'{a:9.2f}':>9} "
                  f"{r.get('weight_flushed_fraction', 0.0):8.4f} {share:6.3f}", file=out)
    for n in doc.get("notes", []):
        print(f"note: {n}", file=out)
    return 0
