"""The ``macforge`` command line (DESIGN.md "CLI contract").

``--json`` prints exactly one JSON document on stdout; tables and progress go to stderr.
Bad input exits 2 with one line naming it; a simulation mismatch exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Sequence

from models.errors import MacforgeError

__all__ = ["main", "build_parser"]


def _json_value(v: float) -> Any:
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float(v)


def format_record(name: str) -> dict[str, Any]:
    from models.formats import get_format

    f = get_format(name)
    sc = getattr(f, "default_scaling", None)
    rec: dict[str, Any] = {
        "name": f.name,
        "bits": f.bits,
        "kind": f.kind,
        "bits_per_element": f.bits_per_element(),
        "default_scaling": sc.describe() if sc is not None else None,
        "nan_policy": f.nan_policy,
        "inf_policy": f.inf_policy,
        "description": f.description,
        "source": f.source,
    }
    if f.values is not None and f.bits <= 8:
        rec["values"] = [_json_value(v) for v in f.values]
    else:
        rec["values"] = None
        rec["values_note"] = f"{2 ** f.bits} codes: too many to list; use models.formats.get_format({name!r}).values"
    if getattr(f, "zp_codes", None) is not None:
        rec["zero_point"] = {"max": f.zero_point_max,
                             "codes": [int(c) for c in range(1 << f.bits) if f.zp_codes[c]],
                             "note": "values listed at zero point 0; code value = listed - z"}
    return rec


def cmd_formats(args: argparse.Namespace) -> int:
    from models.formats import FORMAT_PATTERNS, format_names

    names = args.names or format_names()
    recs = [format_record(n) for n in names]
    if args.json:
        print(json.dumps({"formats": recs, "patterns": FORMAT_PATTERNS}, indent=1))
        return 0
    out = sys.stdout
    print(f"{'name':24} {'bits':>4} {'kind':9} {'b/elem':>7}  default scaling / values", file=out)
    for r in recs:
        vals = r["values"]
        if vals is not None and len(vals) <= 16:
            vs = " ".join("nan" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in vals)
        elif vals is not None:
            fin = [v for v in vals if isinstance(v, float)]
            vs = f"{len(vals)} codes, finite range [{min(fin):g}, {max(fin):g}]"
        else:
            vs = r["values_note"].split(":")[0]
        print(f"{r['name']:24} {r['bits']:>4} {r['kind']:9} {r['bits_per_element']:7.4g}  "
              f"{r['default_scaling'] or '-'}", file=out)
        print(f"{'':24}   values: {vs}", file=out)
    print("parametric families: " + "; ".join(f"{k} ({v})" for k, v in FORMAT_PATTERNS.items()), file=out)
    return 0


def _ports(unit: object) -> list[dict[str, Any]] | None:
    """Port list from the RTL generator (rtl.ports), the one place ports are defined."""
    try:
        import rtl
    except ImportError:  # pragma: no cover - rtl ships with the package
        return None
    fn = getattr(rtl, "ports", None)
    return fn(unit) if fn is not None else None


def cmd_units(args: argparse.Namespace) -> int:
    from models.units import get_unit, unit_names

    names = args.names or unit_names()
    recs = []
    for n in names:
        u = get_unit(n)
        rec = u.describe()
        rec["ports"] = _ports(u)
        recs.append(rec)
    if args.json:
        print(json.dumps({"units": recs}, indent=1))
        return 0
    print(f"{'unit':38} {'weight':22} {'lanes':>5} {'acc':>4} {'ovf':9} {'lat':>3} {'int unit':10} ports")
    for r in recs:
        ports = " ".join(f"{p['name']}[{p['width']}]" for p in (r["ports"] or []))
        print(f"{r['name']:38} {r['weight_format']:22} {r['lanes']:>5} {r['acc_bits']:>4} {r['overflow']:9} "
              f"{r['latency']:>3} {r['integer_unit']:10} {ports}")
    return 0


def cmd_verilog(args: argparse.Namespace) -> int:
    import rtl
    from models.units import get_unit, unit_names

    names = args.units or unit_names()
    for n in names:
        get_unit(n)  # validate names first: nothing half-written
    paths = rtl.write_verilog(names, out_dir=args.out)
    for p in paths:
        print(p)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    import testbench
    from models.units import get_unit, unit_names

    names = args.units or unit_names()
    for n in names:
        get_unit(n)
    testbench.check_simulator(args.simulator)
    kw: dict[str, Any] = {"simulator": args.simulator, "exhaustive": args.exhaustive, "seed": args.seed}
    if args.vectors is not None:
        kw["vectors"] = args.vectors

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = testbench.run_units(names, progress=progress, **kw)
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results]}, indent=1))
    else:
        print(testbench.format_table(results))
    return 1 if any(r.mismatches for r in results) else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="macforge", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("formats", help="every format: name, bits, values by code, bits/elem")
    f.add_argument("names", nargs="*", help="formats to show (default: all listed)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_formats)
    u = sub.add_parser("units", help="every unit: ports, widths, latency")
    u.add_argument("names", nargs="*")
    u.add_argument("--json", action="store_true")
    u.set_defaults(func=cmd_units)
    v = sub.add_parser("verilog", help="write DIR/<unit>.v for each unit")
    v.add_argument("units", nargs="*")
    v.add_argument("--out", default="build/verilog")
    v.set_defaults(func=cmd_verilog)
    s = sub.add_parser("sim", help="simulate units with cocotb against the golden models")
    s.add_argument("units", nargs="*")
    s.add_argument("--simulator", default="icarus")
    s.add_argument("--vectors", type=int, default=None)
    s.add_argument("--exhaustive", action="store_true")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sim)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except MacforgeError as e:
        print(f"macforge: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `macforge formats | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
