"""The cocotb test that runs inside the simulator (toplevel: the generated ``mf_tb`` harness).

It only moves data, in the run directory (its cwd): per chunk ``stim_NNNN.bin`` (and
``exp_NNNN.bin``) in, ``res_NNNN.hex`` out when the harness wrote one, and the harness's count of
mismatching lane-cycles. ``mf_run.json`` says how many cycles each chunk has, how many of them
each lane checks and which method to use; the parent writes it last, so the simulator may start
(and import cocotb) while the parent is still preparing the stimulus: this test waits for it.
Expected values come from ``models.golden`` in the parent process (``testbench._run``). This
module imports nothing but cocotb and the standard library, so the simulator starts quickly.

* batched: no cocotb clock. Per chunk, rename the files to ``stim.bin`` / ``exp.bin``, write
  ``lanes.hex``, toggle ``go`` and wait the chunk's simulated time (2 steps per cycle) for
  ``n_done`` to count it; the harness clocks, compares and (on a mismatch) dumps by itself.
* naive: a GPI (C++) clock of period 2 steps on ``clk``; per cycle, write ``ext_stim`` on a
  falling edge, await the next falling edge (the rising edge in between consumed the word),
  read ``res_now`` — one Python callback per vector. Every result goes back as hex.
"""

from __future__ import annotations

import json
import os
import time

# ruff: noqa: ASYNC230, ASYNC251 - blocking file I/O and sleep are fine: simulated time stands still
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer, ValueChange

# How long to wait for the parent's mf_run.json before giving up (it is written within seconds).
_CONFIG_WAIT_S = 1800.0


def _hex_word(value: object, digits: int) -> str:
    try:
        return format(value.to_unsigned(), f"0{digits}x")  # type: ignore[attr-defined]
    except ValueError:  # x/z bits: keep them visible to the parser as non-hex digits
        return "x" * digits


def _wait_config() -> dict[str, object]:
    parent = os.getppid()
    deadline = time.monotonic() + _CONFIG_WAIT_S
    while not os.path.exists("mf_run.json"):
        if os.getppid() != parent or time.monotonic() > deadline:
            raise RuntimeError("mf_run.json never appeared (the parent process is gone)")
        time.sleep(0.002)
    with open("mf_run.json") as fh:
        return json.load(fh)  # type: ignore[no-any-return]


@cocotb.test()
async def run_harness(dut: object) -> None:
    cfg = _wait_config()
    if cfg.get("abort"):
        return  # the parent failed while preparing the run; it reports why
    chunks: list[int] = cfg["chunks"]  # type: ignore[assignment]
    naive = cfg["method"] == "naive"
    digits: int = cfg["result_digits"]  # type: ignore[assignment]
    dut.go.value = 0  # type: ignore[attr-defined]
    dut.ext.value = 1 if naive else 0  # type: ignore[attr-defined]
    dut.dump_all.value = 1 if cfg.get("dump_all") else 0  # type: ignore[attr-defined]
    dut.ext_stim.value = 0  # type: ignore[attr-defined]
    dut.n_cycles.value = 0  # type: ignore[attr-defined]
    bad: list[int] = []
    if naive:
        Clock(dut.clk, 2, unit="step", impl="gpi").start()  # type: ignore[attr-defined]
        await FallingEdge(dut.clk)  # type: ignore[attr-defined]
    else:
        dut.clk.value = 0  # type: ignore[attr-defined]
        await Timer(1, "step")
    t0, c0 = time.perf_counter(), time.process_time()
    for k, n in enumerate(chunks):
        stim_file, res_file = f"stim_{k:04d}.bin", f"res_{k:04d}.hex"
        if naive:
            nb: int = cfg["stim_bytes"]  # type: ignore[assignment]
            with open(stim_file, "rb") as fh:
                data = fh.read()
            words = [int.from_bytes(data[i : i + nb], "big") for i in range(0, len(data), nb)]
            ext_stim, res_now, clk = dut.ext_stim, dut.res_now, dut.clk  # type: ignore[attr-defined]
            got = []
            for word in words:
                ext_stim.value = word
                await FallingEdge(clk)
                got.append(_hex_word(res_now.value, digits))
            ext_stim.value = 0
            with open(res_file, "w") as fh:
                fh.write("\n".join(got) + "\n")
            continue
        os.replace(stim_file, "stim.bin")
        if os.path.exists(f"exp_{k:04d}.bin"):
            os.replace(f"exp_{k:04d}.bin", "exp.bin")
        lanes: list[int] = cfg["lanes"][k]  # type: ignore[index]
        with open("lanes.hex", "w") as fh:
            fh.write("".join(f"{v:08x}\n" for v in lanes))
        if os.path.exists("res.hex"):
            os.remove("res.hex")
        dut.n_cycles.value = n  # type: ignore[attr-defined]
        want = int(dut.n_done.value) + 1  # type: ignore[attr-defined]
        dut.go.value = (k + 1) & 1  # type: ignore[attr-defined]
        # the chunk takes 2 steps per cycle; a timer, not a value callback, so that cocotb has
        # nothing to check at every step (the value wait only covers a slower harness)
        await Timer(2 * n + 1, "step")
        while int(dut.n_done.value) < want:  # type: ignore[attr-defined]
            await ValueChange(dut.n_done)  # type: ignore[attr-defined]
        bad.append(int(dut.n_bad.value))  # type: ignore[attr-defined]
        if os.path.exists("res.hex"):
            os.replace("res.hex", res_file)
        await Timer(1, "step")
    with open("mf_timing.json", "w") as fh:
        json.dump(
            {
                "sim_seconds": time.perf_counter() - t0,
                "sim_cpu_seconds": time.process_time() - c0,
                "cycles": sum(chunks),
                "bad": bad,
            },
            fh,
        )
