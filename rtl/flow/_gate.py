"""Gate-level synthesis to the generic NAND2-equivalent library (Yosys + ABC)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.errors import MacforgeError

from ._cells import liberty_text
from ._yosys import BUILD, cache_get, cache_key, cache_put, design_text, run_yosys, tool_version

__all__ = ["GateResult", "synth_gates", "SYNTH_VARIANTS", "ABC_SCRIPT"]

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def synth_gates(verilog: str, top: str, variant: str = "default", workdir: Path | None = None,
                use_cache: bool = True) -> GateResult:
    """Synthesize ``verilog`` (text) to the generic cells; area in NAND2-equivalents."""
    if variant not in SYNTH_VARIANTS:
        raise MacforgeError(f"unknown synthesis variant {variant!r}; known: {', '.join(SYNTH_VARIANTS)}")
    lib = liberty_text()
    flow = [
        "read_verilog -sv design.v",
        f"hierarchy -check -top {top}",
        SYNTH_VARIANTS[variant].format(top=top),
        "dfflibmap -liberty cells.lib",
        f"abc -liberty cells.lib -script {ABC_SCRIPT}",
        "opt_clean -purge",
        "tee -q -o stat.json stat -json -liberty cells.lib",
        "write_verilog -noexpr -noattr -noparallelcase netlist.v",
    ]
    key = cache_key(design_text(verilog), lib, "\n".join(flow), tool_version())
    wd = workdir or (BUILD / "synth" / "gates" / f"{top}-{variant}-{key}")
    if use_cache:
        hit = cache_get("gates", key)
        if hit is not None and (wd / "netlist.v").exists():
            return GateResult(**hit)
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "design.v").write_text(verilog)
    (wd / "cells.lib").write_text(lib)
    run_yosys(flow, wd)
    stat = json.loads((wd / "stat.json").read_text())
    mods = stat["modules"]
    design = stat.get("design", {})
    by_type = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items() if not k.startswith("$scopeinfo")}
    if any(k.startswith("$") for k in by_type):
        raise MacforgeError(f"unmapped cells after synthesis of {top}: "
                            f"{sorted(k for k in by_type if k.startswith('$'))}; log: {wd / 'yosys.log'}")
    res = GateResult(
        top=top, variant=variant, nand2_eq=float(design.get("area", 0.0)),  # no cells: no area key
        sequential_nand2_eq=float(design.get("sequential_area", 0.0)),
        cells=sum(by_type.values()), cells_by_type=by_type, tool=tool_version(),
        flow="; ".join(flow[1:6]), netlist=str((wd / "netlist.v").relative_to(BUILD.parent)),
        per_module={k.lstrip("\\"): float(v.get("area", 0.0)) for k, v in mods.items()},
    )
    cache_put("gates", key, res.to_dict())
    return res
