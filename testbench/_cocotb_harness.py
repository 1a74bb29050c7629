"""The cocotb test that runs inside the simulator (toplevel: the generated ``mf_tb`` harness).

It only moves data: stimulus words in, acc words out, in the run directory (its cwd), as
``stim_NNNN.hex`` → ``res_NNNN.hex`` per chunk; ``mf_run.json`` says how many cycles each
chunk has and which method to use. Expected values and the comparison live in the parent
process (``testbench._run``), computed from ``models.golden``. This module imports nothing
but cocotb and the standard library, so the simulator starts quickly.

Timing: a GPI (C++) clock of period 2 steps; all inputs change on falling edges.
* batched: per chunk, rename the stimulus file to ``stim.hex``, pulse ``load`` for one cycle,
  wait for ``done`` to toggle; the harness clocks the whole chunk by itself.
* naive: per cycle, write ``ext_stim``, await the next falling edge (the rising edge in between
  consumed the word), read ``res_now`` — one Python callback per vector.
"""

from __future__ import annotations

import json
import os
import time

# ruff: noqa: ASYNC230 - blocking file I/O is fine: simulated time stands still meanwhile
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ValueChange


def _hex_word(value: object, digits: int) -> str:
    try:
        return format(value.to_unsigned(), f"0{digits}x")  # type: ignore[attr-defined]
    except ValueError:  # x/z bits: keep them visible to the parser as non-hex digits
        return "x" * digits


@cocotb.test()
async def run_harness(dut: object) -> None:
    with open("mf_run.json") as fh:
        cfg = json.load(fh)
    chunks: list[int] = cfg["chunks"]
    naive = cfg["method"] == "naive"
    digits: int = cfg["result_digits"]
    Clock(dut.clk, 2, unit="step", impl="gpi").start()  # type: ignore[attr-defined]
    dut.load.value = 0  # type: ignore[attr-defined]
    dut.ext.value = 1 if naive else 0  # type: ignore[attr-defined]
    dut.ext_stim.value = 0  # type: ignore[attr-defined]
    dut.n_cycles.value = 0  # type: ignore[attr-defined]
    await FallingEdge(dut.clk)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for k, n in enumerate(chunks):
        stim_file, res_file = f"stim_{k:04d}.hex", f"res_{k:04d}.hex"
        if naive:
            with open(stim_file) as fh:
                words = [int(line, 16) for line in fh.read().split()]
            ext_stim, res_now, clk = dut.ext_stim, dut.res_now, dut.clk  # type: ignore[attr-defined]
            got = []
            for word in words:
                ext_stim.value = word
                await FallingEdge(clk)
                got.append(_hex_word(res_now.value, digits))
            ext_stim.value = 0
            with open(res_file, "w") as fh:
                fh.write("\n".join(got) + "\n")
        else:
            os.replace(stim_file, "stim.hex")
            dut.n_cycles.value = n  # type: ignore[attr-defined]
            dut.load.value = 1  # type: ignore[attr-defined]
            await FallingEdge(dut.clk)  # type: ignore[attr-defined]
            dut.load.value = 0  # type: ignore[attr-defined]
            await ValueChange(dut.done)  # type: ignore[attr-defined]
            os.replace("res.hex", res_file)
            await FallingEdge(dut.clk)  # type: ignore[attr-defined]
    with open("mf_timing.json", "w") as fh:
        json.dump({"sim_seconds": time.perf_counter() - t0, "cycles": sum(chunks)}, fh)
