"""macforge testbenches: every unit's RTL simulated with cocotb (Icarus or Verilator) and
compared, cycle by cycle, with ``models.golden``.

>>> import testbench
>>> [r.mismatches for r in testbench.run_units(["mac_int8xint8"])]
[0]

Stimulus and expected values come from ``models`` only (the golden functions and the unit
spec); the testbench never re-implements the arithmetic. How a run works:

1. ``unit_instances``: the unit and (by default) a narrow-accumulator wrap and saturate variant
   of it, each converted to Verilog by ``rtl.verilog`` under its own module name.
2. A generated harness (``testbench._harness``) instantiates them side by side, all fed the
   same per-cycle input word (a long batched stream: several such lanes, each on its own part
   of the stream, cut at reset cycles).
3. A stimulus plan (``testbench._stimulus``): reset, every (w, a[, z]) pair, overflow runs,
   LUT programming, random en/clr/LUT/reset traffic, mid-stream resets, real data.
4. cocotb (``cocotb_tools.runner``) runs the harness. Batched: the harness clocks itself,
   reads binary stimulus and expected records per chunk and compares every cycle's outputs
   with the expected trace (``testbench._expected``, from golden) as it goes, writing the
   outputs back (``$writememh``) only when something differed. Naive: cocotb drives and reads
   the ports from Python every cycle.
5. Differences (from the dump, or every naive result) are compared again with numpy and come
   back with the failing cycles' inputs.

Systolic arrays (kind ``systolic``) follow the same steps with their own plan and check
(``testbench._systolic``): tiles of k's (every pair through every PE, overflow, back-to-back at
the ``systolic_schedule`` period, bubbles, resets mid-tile and mid-drain, real data), the
stream cut into chunks only where the array is idle, and every cycle's ``out_valid`` plus each
due result row (``out_row``, ``c``) compared with ``models.golden.gemm`` of its tile.

Huffman decoders (kind ``huffman``) run ``testbench._huffman``'s plan: code tables loaded through
the write ports, bitstreams from ``models.golden.encode_stream`` (real MiniLM weights, random,
one-symbol, uniform and maximum-length histograms) decoded chunk by chunk from their offsets
with word gaps and back-pressure, a reset mid-chunk, corrupt and truncated streams; the symbols
that cross the decoder are compared with ``models.golden``'s decode.

The public names are loaded on first use: the simulator process imports
``testbench._cocotb_harness`` and must not pay for numba and Amaranth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_VECTORS",
    "METHODS",
    "SIMULATORS",
    "SimResult",
    "Stimulus",
    "build_stimulus",
    "check_real_data",
    "check_simulator",
    "expected_trace",
    "format_table",
    "load_real_data",
    "real_data_columns",
    "run_stream",
    "run_units",
    "run_huffman",
    "huffman_cases",
    "simulator_version",
    "unit_instances",
]

if TYPE_CHECKING:
    from ._expected import expected_trace
    from ._huffman import huffman_cases, run_huffman
    from ._run import (
        DEFAULT_VECTORS,
        METHODS,
        SimResult,
        check_real_data,
        format_table,
        load_real_data,
        run_stream,
        run_units,
        unit_instances,
    )
    from ._sims import SIMULATORS, check_simulator, simulator_version
    from ._stimulus import Stimulus, build_stimulus, real_data_columns

_HOME = {
    "run_units": "_run",
    "run_stream": "_run",
    "SimResult": "_run",
    "format_table": "_run",
    "METHODS": "_run",
    "DEFAULT_VECTORS": "_run",
    "unit_instances": "_run",
    "load_real_data": "_run",
    "SIMULATORS": "_sims",
    "check_simulator": "_sims",
    "simulator_version": "_sims",
    "real_data_columns": "_stimulus",
    "build_stimulus": "_stimulus",
    "Stimulus": "_stimulus",
    "expected_trace": "_expected",
    "check_real_data": "_run",
    "run_huffman": "_huffman",
    "huffman_cases": "_huffman",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
