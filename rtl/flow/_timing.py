"""Static timing of a mapped gate-level netlist (the one area and energy are measured on).

Every cell arc has the library's linear delay ``intrinsic + slope × load``, the load being the
input-pin capacitance its output net drives in this netlist (``_energy.net_loads``). Paths start
at the top-level inputs (arrival 0) and at flip-flop outputs (clock→Q) and end at the top-level
outputs and at flip-flop data pins (plus setup). The critical path is the longest; its length
is reported in ns, in FO4 delays of the generic library, and in cells ("gate delays"). No wire
delay, no slew propagation, one corner (the library's: see ``CellLibrary.corner``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.errors import MacforgeError

from ._cells import TAU_NS, generic_library
from ._energy import net_loads, parse_netlist
from ._liberty import CellLibrary

__all__ = ["TimingResult", "netlist_timing", "FO4_NS"]

FO4_NS = 5 * TAU_NS  # an inverter driving four copies of itself: p 1 + load 4 = 5 τ (logical effort)


@dataclass
class TimingResult:
    critical_ns: float
    fo4: float  # critical_ns / FO4_NS
    gates: int  # cells on the critical path (flip-flop at its start counted)
    path: list[str]  # cell types along the critical path, start to end
    start: str
    end: str
    fmax_mhz: float
    corner: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def netlist_timing(netlist_path: Path | str, library: CellLibrary | None = None) -> TimingResult:
    """Longest register-to-register / input-to-output path of a mapped netlist."""
    lib = library or generic_library()
    text = Path(netlist_path).read_text()
    insts = parse_netlist(text, lib)
    if not insts:  # wires only (e.g. an int8 weight "decoder"): no gate on any path
        return TimingResult(0.0, 0.0, 0, [], "input", "output", float("inf"), lib.corner)
    loads = net_loads(insts, lib)
    driver: dict[str, int] = {}
    for i, (ctype, pins) in enumerate(insts):
        net = pins.get(lib.cells[ctype].output)
        if net is not None:
            driver[net] = i
    # arrival time at each instance's output, found in topological order (iteratively: deep
    # multiplier arrays would overflow recursion)
    arrival: dict[int, float] = {}
    prev: dict[int, int | None] = {}
    state: dict[int, int] = {}

    def out_delay(i: int, pin: str) -> float:
        ctype, pins = insts[i]
        cell = lib.cells[ctype]
        d0, slope = cell.delay.get(pin, (0.0, 0.0))
        return d0 + slope * loads.get(pins.get(cell.output, ""), 0.0)

    def visit(root: int) -> None:
        stack = [root]
        while stack:
            i = stack[-1]
            ctype, pins = insts[i]
            cell = lib.cells[ctype]
            if cell.is_ff:
                arrival[i] = out_delay(i, cell.clock or "")
                prev[i] = None
                state[i] = 2
                stack.pop()
                continue
            if state.get(i) == 2:
                stack.pop()
                continue
            fanin = [(p, driver[n]) for p, n in pins.items() if p != cell.output and n in driver]
            todo = [j for _, j in fanin if state.get(j) != 2]
            if todo and state.get(i) != 1:
                state[i] = 1
                stack.extend(todo)
                continue
            if todo:  # a combinational loop: revisited before its inputs were done
                bad = [j for j in todo if state.get(j) == 1]
                if bad:
                    raise MacforgeError(f"combinational loop through a {insts[bad[0]][0]} cell in {netlist_path}")
                stack.extend(todo)
                continue
            best, arg = 0.0, None
            for p, j in fanin:
                a = arrival[j] + out_delay(i, p)
                if a > best or arg is None:
                    best, arg = a, j
            if not fanin:
                best = max((out_delay(i, p) for p in cell.inputs), default=0.0)
            arrival[i] = best
            prev[i] = arg
            state[i] = 2
            stack.pop()

    for i in range(len(insts)):
        if state.get(i) != 2:
            visit(i)
    # endpoints: flip-flop D pins (+ setup) and every net that leaves the netlist's cells
    best_t, best_end, best_i = -1.0, "", None
    sink_nets = set()
    for ctype, pins in insts:
        cell = lib.cells[ctype]
        for p, n in pins.items():
            if p != cell.output:
                sink_nets.add(n)
        if cell.is_ff and cell.data in pins and pins[cell.data] in driver:
            j = driver[pins[cell.data]]
            t = arrival[j] + cell.setup
            if t > best_t:
                best_t, best_end, best_i = t, f"{ctype}.{cell.data}", j
    for net, j in driver.items():
        if net not in sink_nets and arrival[j] > best_t:  # drives only top-level outputs
            best_t, best_end, best_i = arrival[j], f"output {net}", j
    if best_i is None:  # cells that drive nothing observable
        return TimingResult(0.0, 0.0, 0, [], "input", "output", float("inf"), lib.corner)
    path = []
    k: int | None = best_i
    while k is not None:
        path.append(insts[k][0])
        k = prev.get(k)
    path.reverse()
    start = "flip-flop" if lib.cells[path[0]].is_ff else "input"
    return TimingResult(critical_ns=best_t, fo4=best_t / FO4_NS, gates=len(path), path=path, start=start,
                        end=best_end, fmax_mhz=1000.0 / best_t if best_t > 0 else float("inf"), corner=lib.corner)
