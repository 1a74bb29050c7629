"""``macforge whatif STUDY.toml``: run a sweep and write reports/whatif/<study>/.

Wiring (sim/cli.py): ``from sim.whatif.cli import add_parser`` and ``add_parser(sub)`` in
``build_parser``; bad input raises ``MacforgeError`` (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "cmd_whatif"]


def add_parser(sub: Any) -> None:
    """Add the ``whatif`` subcommand to ``sub`` (the subparsers object of ``build_parser``)."""
    w = sub.add_parser("whatif", help="sweep formats x units x arrays x memory x workloads: CSV, Pareto plots, "
                                      "markdown in reports/whatif/<study>/")
    w.add_argument("study", metavar="STUDY.toml")
    w.add_argument("--executor", default="local", choices=["local", "dask"])
    w.add_argument("--workers", type=int, default=2)
    w.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address (default: a LocalCluster on loopback)")
    w.add_argument("--out", metavar="DIR", help="output directory (default reports/whatif/<study>)")
    w.add_argument("--cache", metavar="DIR", help="point cache (default build/cache/whatif/<study>)")
    w.add_argument("--json", action="store_true", help="print the run statistics and output paths as JSON")
    w.set_defaults(func=cmd_whatif)


def cmd_whatif(args: argparse.Namespace) -> int:
    from . import load_study, run_study, write_outputs

    study = load_study(args.study)
    if args.scheduler and args.executor != "dask":
        from models.errors import MacforgeError

        raise MacforgeError("--scheduler needs --executor dask")
    df, stats = run_study(study, args.executor, args.workers, args.scheduler, progress=not args.json,
                          cache_dir=Path(args.cache) if args.cache else None)
    paths = write_outputs(study, df, stats, Path(args.out) if args.out else None)
    if args.json:
        print(json.dumps({**stats, "outputs": [str(p) for p in paths]}, indent=1))
    else:
        print(f"{study.name}: {stats['points']} points ({stats['computed']} computed, {stats['cached']} cached, "
              f"{stats['infeasible']} infeasible) in {stats['seconds']:.1f} s", file=sys.stderr)
        for p in paths:
            print(p)
    return 0
