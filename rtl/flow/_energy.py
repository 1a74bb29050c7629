"""Energy per operation from the switching activity of a mapped gate-level netlist.

The netlist produced by ``synth_gates`` (generic cells, see ``_cells``) is simulated with
Icarus Verilog, driven cycle by cycle from a stimulus memory; every net's value is dumped to a
VCD and each bit's changes are counted (the last value per timestamp, so a zero-delay run counts
functional toggles only; ``delay="unit"`` gives every cell a 1-unit inertial delay and so
also counts glitches). Each toggle of a net costs its driving cell's internal energy per output
toggle plus ½V² times the input-pin capacitance the net drives (its fanout in this netlist), from
the cell library (``_cells`` for the shipped one, ``_liberty`` for a user's); each flip-flop also
pays its clock-pin energy every cycle. Energies are in NAND2-toggle units (one output toggle of
the library's NAND2 driving one NAND2 input); the clock part is kept apart so a report can show
how the totals move with the clock energy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import MacforgeError

from ._cells import generic_library
from ._liberty import CellLibrary, library_verilog

__all__ = ["ActivityResult", "netlist_activity", "parse_netlist_cells", "parse_netlist", "net_loads",
           "count_vcd_toggles"]

_INST_RE = re.compile(r"^\s*(\w+)\s+(\\?\S+)\s*\((.*?)\);", re.S | re.M)
_PIN_RE = re.compile(r"\.(\w+)\(([^()]*)\)")


@dataclass
class ActivityResult:
    top: str
    cycles: int
    ops: int
    toggles: int
    toggles_per_op: float
    energy_nand2: float  # total, NAND2-output-toggle units
    energy_per_op_nand2: float
    by_cell_type: dict[str, float]  # energy per op by driving cell type (toggles, clock excluded)
    clock_energy_per_op: float  # at the library's flip-flop clock energy
    delay: str
    dffs: int = 0
    dff_cycles_per_op: float = 0.0  # flip-flops × cycles / ops: energy per op moves by this per unit of clock energy
    library: str = "macforge_generic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_netlist(netlist: str, library: CellLibrary | None = None) -> list[tuple[str, dict[str, str]]]:
    """(cell type, {pin: net}) of every instance of a library cell in a mapped netlist."""
    lib = library or generic_library()
    out = []
    for m in _INST_RE.finditer(netlist):
        ctype = m.group(1)
        if ctype not in lib.cells:
            continue
        out.append((ctype, {pin: net.strip() for pin, net in _PIN_RE.findall(m.group(3))}))
    return out


def parse_netlist_cells(netlist: str, library: CellLibrary | None = None) -> dict[str, str]:
    """{driven net bit -> cell type} for every cell instance of the library."""
    lib = library or generic_library()
    return {pins[lib.cells[ctype].output]: ctype for ctype, pins in parse_netlist(netlist, lib)
            if lib.cells[ctype].output in pins}


def net_loads(instances: list[tuple[str, dict[str, str]]], library: CellLibrary) -> dict[str, float]:
    """{net -> input-pin capacitance it drives} (library capacitance unit)."""
    loads: dict[str, float] = {}
    for ctype, pins in instances:
        cell = library.cells[ctype]
        for pin, net in pins.items():
            if pin != cell.output and pin in cell.pin_cap:
                loads[net] = loads.get(net, 0.0) + cell.pin_cap[pin]
    return loads


def count_vcd_toggles(vcd: Path) -> dict[str, int]:
    """{net bit name -> number of value changes after the initial dump}; vector bits as name[i].

    Values are compared once per timestamp, at its end: a bit that changes several times
    within one timestamp (zero-delay evaluation order, a 0-width pulse) counts only if its last
    value there differs from its value at the end of the previous timestamp. The initial state
    is the end of the first timestamp that sets any value (the one holding ``$dumpvars``); a net
    first seen later starts from its first value."""
    ids: dict[str, tuple[str, int, int]] = {}  # id -> (name, width, lsb)
    counts: dict[str, np.ndarray] = {}
    with vcd.open() as fh:
        for line in fh:
            if line.startswith("$var"):
                parts = line.split()
                width, ident, name = int(parts[2]), parts[3], parts[4]
                lsb = 0
                if len(parts) > 6 and parts[5].startswith("["):
                    rng = parts[5].strip("[]").split(":")
                    lsb = min(int(rng[0]), int(rng[-1]))
                if ident not in ids:
                    ids[ident] = (name, width, lsb)
                    counts[ident] = np.zeros(width, dtype=np.int64)
            elif line.startswith("$enddefinitions"):
                break
        committed: dict[str, str] = {}  # id -> value at the end of the last finished timestamp
        pending: dict[str, str] = {}  # id -> last value seen in the current timestamp
        baseline = True  # the current timestamp sets initial values (the first one with any)

        def commit() -> None:
            for ident, bits in pending.items():
                prev = committed.get(ident)
                if prev is not None and not baseline and prev != bits:
                    diff = np.frombuffer(bits.encode(), dtype=np.uint8) != np.frombuffer(prev.encode(), dtype=np.uint8)
                    counts[ident] += diff[::-1]  # index 0 = lsb
                committed[ident] = bits
            pending.clear()

        for line in fh:
            c = line[0] if line else ""
            if c == "#":
                commit()
                baseline = not committed
                continue
            if c in "01xzXZ":
                ident, bits = line[1:].strip(), c
            elif c in "bB":
                bits, ident = line[1:].split()
            else:
                continue  # $end, $comment, real values
            width = ids.get(ident, ("", 0, 0))[1]
            if width:
                pending[ident] = bits.rjust(width, "0" if bits[0] in "01" else bits[0])[-width:]
        commit()
    out: dict[str, int] = {}
    for ident, (name, width, lsb) in ids.items():
        for i in range(width):
            out[name if width == 1 and lsb == 0 and "[" not in name else f"{name}[{lsb + i}]"] = int(counts[ident][i])
    return out


def _vecname(net: str) -> str:
    return net.replace(" ", "")


def netlist_activity(netlist_path: Path | str, top: str, ports: list[dict[str, Any]],
                     stimulus: dict[str, np.ndarray], *, ops: int, warmup: int = 4, delay: str = "zero",
                     workdir: Path, library: CellLibrary | None = None) -> ActivityResult:
    """Simulate the mapped netlist on ``stimulus`` (per-cycle values by input port name) and
    return toggles and energy per operation (``ops`` = operations performed in those cycles)."""
    if shutil.which("iverilog") is None:
        raise MacforgeError("iverilog is not installed; run `make setup`")
    if delay not in ("zero", "unit"):
        raise MacforgeError(f"delay must be 'zero' or 'unit', not {delay!r}")
    ins = [p for p in ports if p["direction"] == "in" and p["name"] != "clk"]
    n = None
    for p in ins:
        if p["name"] == "rst":
            continue
        arr = stimulus.get(p["name"])
        if arr is None:
            raise MacforgeError(f"stimulus has no values for input port {p['name']!r}")
        if n is None:
            n = len(arr)
        elif len(arr) != n:
            raise MacforgeError(f"stimulus port {p['name']!r} has {len(arr)} cycles, expected {n}")
    if not n or ops <= 0:
        raise MacforgeError("stimulus is empty: nothing to measure")
    if all(not np.any(np.asarray(stimulus[p["name"]], dtype=object) != 0) for p in ins if p["name"] != "rst"):
        raise MacforgeError("stimulus is all zeros: no switching activity to measure")
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    lib = library or generic_library()
    netlist = Path(netlist_path).read_text()
    (wd / "cells.v").write_text(library_verilog(lib, delay))
    (wd / "netlist.v").write_text(netlist)
    # stimulus memory: one word per cycle, inputs concatenated in port order (rst first)
    total_w = sum(int(p["width"]) for p in ins)
    words = []
    rst_w = [1] * warmup + [0] * n
    for t in range(warmup + n):
        v = 0
        for p in ins:
            w = int(p["width"])
            if p["name"] == "rst":
                x = rst_w[t]
            else:
                x = int(stimulus[p["name"]][t - warmup]) if t >= warmup else 0
            v = (v << w) | (x & ((1 << w) - 1))
        words.append(f"{v:0{(total_w + 3) // 4}x}")
    (wd / "stim.hex").write_text("\n".join(words) + "\n")
    cat = ", ".join(p["name"] for p in ins)
    decl = "\n".join(f"  reg [{int(p['width']) - 1}:0] {p['name']};" for p in ins)
    conns = ", ".join(f".{p['name']}({p['name']})" for p in ports if p["direction"] == "in") + ", " + \
        ", ".join(f".{p['name']}()" for p in ports if p["direction"] == "out")
    period = 2000 if delay == "unit" else 2
    tb = f"""`timescale 1ns/1ps
module tb;
  reg clk = 0;
{decl}
  reg [{total_w - 1}:0] mem [0:{warmup + n - 1}];
  integer t;
  {top} dut({conns});
  initial begin
    $readmemh("stim.hex", mem);
    for (t = 0; t < {warmup + n}; t = t + 1) begin
      {{{cat}}} = mem[t];
      if (t == {warmup}) begin $dumpfile("act.vcd"); $dumpvars(0, dut); end
      #{period // 2} clk = 1;
      #{period // 2} clk = 0;
    end
    $finish;
  end
endmodule
"""
    (wd / "tb.v").write_text(tb)
    r = subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "tb.v", "netlist.v", "cells.v"], cwd=wd,
                       capture_output=True, text=True)
    if r.returncode:
        (wd / "iverilog.log").write_text(r.stdout + r.stderr)
        raise MacforgeError(f"iverilog failed on the netlist of {top}; log: {wd / 'iverilog.log'}")
    r = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=wd, capture_output=True, text=True)
    if r.returncode:
        (wd / "vvp.log").write_text(r.stdout + r.stderr)
        raise MacforgeError(f"gate-level simulation of {top} failed; log: {wd / 'vvp.log'}")
    toggles = count_vcd_toggles(wd / "act.vcd")
    insts = parse_netlist(netlist, lib)
    loads = net_loads(insts, lib)
    ref = lib.nand2_toggle_energy
    by_type: dict[str, float] = {}
    total_t = 0
    energy = 0.0
    n_dff = 0
    clock_units = 0.0
    for ctype, pins in insts:
        cell = lib.cells[ctype]
        if cell.is_ff:
            n_dff += 1
            clock_units += cell.clock_energy
        net = pins.get(cell.output)
        if net is None:
            continue
        k = _vecname(net)
        tg = toggles.get(k, toggles.get(k.lstrip("\\"), 0))
        total_t += tg
        e = tg * (cell.toggle_energy + lib.load_energy(loads.get(net, 0.0))) / ref
        by_type[ctype] = by_type.get(ctype, 0.0) + e
        energy += e
    clock = clock_units / ref * n
    energy += clock
    (wd / "act.vcd").unlink(missing_ok=True)  # large; the counts are what we keep
    return ActivityResult(top=top, cycles=n, ops=ops, toggles=total_t, toggles_per_op=total_t / ops,
                          energy_nand2=energy, energy_per_op_nand2=energy / ops,
                          by_cell_type={k: v / ops for k, v in sorted(by_type.items())},
                          clock_energy_per_op=clock / ops, delay=delay, dffs=n_dff,
                          dff_cycles_per_op=n_dff * n / ops, library=lib.name)
