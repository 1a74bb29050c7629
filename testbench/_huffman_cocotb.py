"""The cocotb test of the huffman harness (toplevel ``mf_tb`` of ``testbench._huffman``): it only
clocks the harness, which plays ``stim.hex`` / ``words.hex`` and writes ``res.hex`` by itself.
Imports nothing but cocotb and the standard library."""

from __future__ import annotations

import json
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


@cocotb.test()
async def run_huffman_harness(dut: object) -> None:
    Clock(dut.clk, 2, unit="step", impl="gpi").start()  # type: ignore[attr-defined]
    dut.go.value = 0  # type: ignore[attr-defined]
    await FallingEdge(dut.clk)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    dut.go.value = 1  # type: ignore[attr-defined]
    if not dut.finished.value:  # type: ignore[attr-defined]
        await RisingEdge(dut.finished)  # type: ignore[attr-defined]
    await FallingEdge(dut.clk)  # type: ignore[attr-defined]
    with open("mf_timing.json", "w") as fh:  # noqa: ASYNC230 - simulated time stands still
        json.dump({"sim_seconds": time.perf_counter() - t0}, fh)
