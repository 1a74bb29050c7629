"""The ``macforge`` command line (DESIGN.md "CLI contract").

``--json`` prints exactly one JSON document on stdout; tables and progress go to stderr.
Bad input exits 2 with one line naming it; a simulation mismatch exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import re
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
    from models.formats import format_finfo, get_format

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
        "finfo": format_finfo(f),
    }
    if f.values is not None and f.bits <= 8:
        rec["values"] = [_json_value(v) for v in f.values]
    else:
        rec["values"] = None
        rec["values_note"] = f"{2 ** f.bits} codes: too many to list; use models.formats.get_format({name!r}).values"
    if hasattr(f, "entropy_record"):  # entropy-coded grids: ideal vs Huffman bits, storage breakdown
        rec["entropy"] = f.entropy_record()
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


def selected_units(args: argparse.Namespace, positional: list[str] | None = None,
                   kinds: tuple[str, ...] | None = None) -> list[Any]:
    """The units a command works on, as UnitSpecs: positional names or inline specs, then
    ``--unit`` specs, then every ``[[unit]]`` of the ``--units`` files; all named units (of
    ``kinds``) when none is given. Every one is validated before any work starts."""
    from models.units import as_spec, get_unit, load_units, register_unit, unit_names

    chosen = [register_unit(as_spec(u)) for u in (positional or [])]
    chosen += [register_unit(as_spec(u)) for u in (getattr(args, "unit", None) or [])]
    for path in getattr(args, "units_files", None) or []:
        chosen += load_units(path)
    if not chosen:
        chosen = [get_unit(n) for n in unit_names()]
        if kinds:
            chosen = [u for u in chosen if u.kind in kinds]
    elif kinds:
        for u in chosen:
            if u.kind not in kinds:
                raise MacforgeError(f"unit {u.name} is a {u.kind}; this command covers {', '.join(kinds)} units")
    seen: dict[str, Any] = {}
    for u in chosen:
        seen.setdefault(u.name, u)
    return list(seen.values())


def cmd_units(args: argparse.Namespace) -> int:
    recs = []
    for u in selected_units(args, args.names):
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

    specs = selected_units(args, args.units)  # validated first: nothing half-written
    paths = rtl.write_verilog(specs, out_dir=args.out)
    for p in paths:
        print(p)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    import testbench

    names = selected_units(args, args.units)
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


def _units_arg(args: argparse.Namespace, kinds: tuple[str, ...] = ("mac", "dot", "dq_group", "systolic", "huffman")) -> list[Any]:
    return selected_units(args, args.units, kinds)


def _emit(records: list[dict[str, Any]], as_json: bool, columns: list[tuple[str, str, str]]) -> None:
    if as_json:
        print(json.dumps(records, indent=1))
        return
    widths = [int(re.search(r"\d+", c[2]).group()) for c in columns]  # type: ignore[union-attr]
    print("  ".join(f"{c[0]:>{w}}" if i else f"{c[0]:{w}}" for i, (c, w) in enumerate(zip(columns, widths))))
    for r in records:
        cells = []
        for i, (_, key, fmt) in enumerate(columns):
            v = r.get(key)
            cells.append(("-" if v is None else format(v, fmt)) if i else f"{v:{fmt}}")
        print("  ".join(cells))


def _progress(it: list[Any], label: str) -> Any:
    from tqdm import tqdm

    return tqdm(it, desc=label, file=sys.stderr, leave=False, disable=None)


def cmd_synth(args: argparse.Namespace) -> int:
    from rtl.flow import synth_unit

    names = _units_arg(args)
    recs = [synth_unit(n, args.target, variant=args.variant, nodsp=args.nodsp, liberty=args.liberty,
                       target_delay_ns=args.target_delay) for n in _progress(names, "synth")]
    for r, u in zip(recs, names):
        r.setdefault("unit", u.name)
    if args.target == "generic":
        cols = [("unit", "unit", "38"), ("nand2_eq", "nand2_eq", "10.1f"), ("per MAC", "nand2_eq_per_mac", "9.1f"),
                ("seq", "sequential_nand2_eq", "8.1f"), ("cells", "cells", "7d"),
                ("path ns", "critical_path_ns", "8.3f")]
    else:
        cols = [("unit", "unit", "38"), ("LUTs", "luts", "6d"), ("FFs", "ffs", "5d"), ("carry", "carry", "6d"),
                ("DSP", "dsp", "4d"), ("Fmax MHz", "fmax_mhz", "9.1f")]
    _emit(recs, args.json, cols)
    return 0


def cmd_energy(args: argparse.Namespace) -> int:
    from rtl.flow import unit_energy

    names = _units_arg(args, ("mac", "dot", "systolic", "huffman"))
    if args.macs < 1:
        raise MacforgeError(f"--macs must be a positive number of MACs, not {args.macs}")
    if args.clock_energy is not None and not (math.isfinite(args.clock_energy) and args.clock_energy >= 0):
        raise MacforgeError(f"--clock-energy must be a finite number >= 0 of NAND2 toggles, not {args.clock_energy}")
    data = args.data or ("real" if args.streams else "random")
    if args.streams and data != "real":
        raise MacforgeError("--streams are real data: use --data real (or leave --data out)")
    recs = [unit_energy(n, data, n_macs=args.macs, seed=args.seed, delay=args.delay, liberty=args.liberty,
                        clock_energy=args.clock_energy, cell_energy=args.cell_energy, streams=args.streams)
            for n in _progress(names, "energy")]
    _emit(recs, args.json, [("unit", "unit", "38"), ("data", "data", "7"), ("toggles/MAC", "toggles_per_mac", "12.1f"),
                            ("NAND2-toggles/MAC", "energy_per_mac_nand2", "18.1f"),
                            ("pJ/MAC", "energy_per_mac_pj", "8.4f")])
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from rtl.flow import synth_unit
    from sim.costfit import area_components, fit_area

    specs = _units_arg(args, ("mac", "dot", "huffman"))
    if args.workers < 1:
        raise MacforgeError(f"--workers must be a positive number of processes, not {args.workers}")
    model, _, _ = fit_area(workers=args.workers)
    dec = model.decoder  # huffman decoders: their own area model, fitted beside the MAC/dot one
    loo = {**model.validation["leave_one_out"]["errors"],
           **(dec.validation["leave_one_out"]["errors"] if dec is not None else {})}
    recs = []
    for spec in specs:
        syn = synth_unit(spec, "generic")
        meas = syn["nand2_eq"]
        est = model.predict(spec)
        recs.append({"unit": spec.name, "estimate_nand2_eq": est, "measured_nand2_eq": meas,
                     "error": est / meas - 1, "in_fit": spec.name in loo,
                     "leave_one_out_error": loo.get(spec.name),
                     "components_model": model.components(spec), "components_measured": area_components(syn),
                     "breakdown": model.breakdown(spec)})
    if args.json:
        v = model.validation
        doc = {"quantity": model.quantity, "note": model.note, "n_points": model.n_points, "r2": model.r2,
               "coefficients": model.coefficients, "feature_support": model.support,
               "flagged_features": model.flagged, "in_sample": v["in_sample"],
               "leave_one_out": v["leave_one_out"], "held_out_family": v["held_out"],
               "component_errors": model.component_errors}
        if dec is not None:
            doc["decoder_model"] = {"note": dec.note, "n_points": dec.n_points, "coefficients": dec.coefficients,
                                    "in_sample": dec.validation["in_sample"],
                                    "leave_one_out": dec.validation["leave_one_out"]}
        print(json.dumps({"model": doc, "units": recs}, indent=1))
        return 0
    _emit(recs, False, [("unit", "unit", "38"), ("model", "estimate_nand2_eq", "9.1f"),
                        ("synth", "measured_nand2_eq", "9.1f"), ("error", "error", "+8.1%"),
                        ("LOO error", "leave_one_out_error", "+10.1%")])
    v = model.validation
    print(f"model: {model.note}", file=sys.stderr)
    print(f"error, mean |.| / max: in-sample {v['in_sample']['mean_abs_rel_error']:.1%} / "
          f"{v['in_sample']['max_abs_rel_error']:.1%}; leave-one-out {v['leave_one_out']['mean_abs_rel_error']:.1%} / "
          f"{v['leave_one_out']['max_abs_rel_error']:.1%}", file=sys.stderr)
    for g, h in v["held_out"].items():
        unseen = f" (features never seen in the fit: {', '.join(h['unseen_features'])})" if h["unseen_features"] else ""
        print(f"held out {g} ({h['n']} units, fit on {h['n_fit']}): {h['mean_abs_rel_error']:.1%} / "
              f"{h['max_abs_rel_error']:.1%}{unseen}", file=sys.stderr)
    for c, e in model.component_errors.items():
        print(f"component {c}: mean |model - synth| {e['mean_abs_error']:.1f} NAND2-eq "
              f"({e['mean_abs_share_of_total']:.1%} of the unit), max {e['max_abs_share_of_total']:.1%}, "
              f"{e['n']} units", file=sys.stderr)
    if model.flagged:
        print(f"flagged: {', '.join(model.flagged)} rest on fewer than 5 fitted units", file=sys.stderr)
    return 0


UNIT_COMMANDS = ("units", "verilog", "sim", "synth", "energy", "cost")


def load_user_formats(args: argparse.Namespace) -> None:
    """MACFORGE_FORMATS files, then every ``--formats`` file, registered before the command runs."""
    from models.formats import load_default_formats, load_formats

    load_default_formats()
    for path in getattr(args, "formats", None) or []:
        load_formats(path)


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit code 2 (DESIGN.md CLI contract)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="macforge", description=__doc__.splitlines()[0] if __doc__ else None)
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
    y = sub.add_parser("synth", help="synthesize units: generic-cell area or FPGA resources + Fmax")
    y.add_argument("units", nargs="*")
    y.add_argument("--target", default="generic", choices=["generic", "ice40", "ecp5"])
    y.add_argument("--variant", default="default", choices=["default", "booth", "noalumacc"])
    y.add_argument("--nodsp", action="store_true", help="FPGA: map multipliers to LUTs, not DSP blocks")
    y.add_argument("--liberty", metavar="FILE", help="generic target: synthesize, map and time with this Liberty library")
    y.add_argument("--target-delay", type=float, metavar="NS",
                   help="generic target: the smallest mapping whose critical path meets NS (else the fastest, flagged)")
    y.add_argument("--json", action="store_true")
    y.set_defaults(func=cmd_synth)
    e = sub.add_parser("energy", help="energy per MAC from gate-level switching activity")
    e.add_argument("units", nargs="*")
    e.add_argument("--data", default=None, choices=["random", "real"], help="operands (default: random)")
    e.add_argument("--streams", metavar="FILE.npz", default=None,
                   help="real data from macforge quant --export-streams: the codes that method sends to the MAC")
    e.add_argument("--macs", type=int, default=2048)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--delay", default="zero", choices=["zero", "unit"])
    e.add_argument("--liberty", metavar="FILE", help="synthesize and weigh energy with this Liberty library")
    e.add_argument("--clock-energy", type=float, metavar="NAND2", default=None,
                   help="flip-flop clock-pin energy per cycle in NAND2 toggles (default: the library's; a sensitivity)")
    e.add_argument("--cell-energy", default="library", metavar="WEIGHING",
                   help="weighing of the combinational cells' internal energy, a sensitivity (default: library; "
                        "rtl.flow.CELL_ENERGY_VARIANTS, an unknown name lists them)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_energy)
    r = sub.add_parser("report", help="regenerate reports/ (all sections, or the ones named)")
    r.add_argument("sections", nargs="*")
    r.set_defaults(func=lambda a: __import__("sim.report", fromlist=["main"]).main(a.sections))
    c = sub.add_parser("cost", help="the fitted cost model's estimate beside the synthesized value")
    c.add_argument("units", nargs="*")
    c.add_argument("--workers", type=int, default=2, help="synthesis processes for the fitting sweep")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cost)
    from sim.accel.cli import add_parser as add_accel
    from sim.accuracy.cli import add_parser as add_quant
    from sim.whatif.cli import add_parser as add_whatif

    add_accel(sub)
    add_quant(sub)
    add_whatif(sub)
    for name, sp in sub.choices.items():
        sp.add_argument("--formats", action="append", default=[], metavar="FILE.toml",
                        help="load user-defined formats ([[format]] tables; repeatable); "
                             "MACFORGE_FORMATS names default files")
        if name in UNIT_COMMANDS:
            sp.add_argument("--unit", action="append", default=[], metavar="SPEC",
                            help="an inline unit spec 'kind=dot,weights=int5,acts=int6,lanes=6,...' (repeatable)")
            sp.add_argument("--units", dest="units_files", action="append", default=[], metavar="FILE.toml",
                            help="units from a TOML file of [[unit]] tables (repeatable)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        load_user_formats(args)
        return int(args.func(args))
    except MacforgeError as e:
        print(f"macforge: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `macforge formats | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
