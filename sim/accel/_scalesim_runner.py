"""Run SCALE-Sim 3.0.0 on GEMMs and print their cycle counts as JSON (one line on stdout).

Executed by ``sim.accel.run_scalesim`` with the SCALE-Sim venv's Python (SCALE-Sim needs
numpy < 2.4; TOOLCHAIN.md), so it imports nothing from macforge. Usage::

    python _scalesim_runner.py WORKDIR DATAFLOW ROWS COLS M,K,N [M,K,N ...]

SCALE-Sim's topology rows are ``Layer, M, N, K,`` (A is M × K, the filter K × N); the config needs
exactly the sections general, architecture_presets, layout, sparsity and run_presets; a layout
file must be given (unused without custom layouts). ``InterfaceBandwidth = CALC`` sizes the DRAM
interface so that there are no memory stalls: "Total Cycles" is the compute schedule.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
import sys

_CONFIG = """[general]
run_name = macforge_validation

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : 4096
FilterSramSzkB : 4096
OfmapSramSzkB : 4096
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 10
Dataflow : {dataflow}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
FilterCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
"""


def main(argv: list[str]) -> int:
    workdir, dataflow, rows, cols = argv[0], argv[1], int(argv[2]), int(argv[3])
    gemms = [tuple(int(x) for x in g.split(",")) for g in argv[4:]]
    os.makedirs(workdir, exist_ok=True)
    cfg = os.path.join(workdir, "scalesim.cfg")
    topo = os.path.join(workdir, "topology.csv")
    layout = os.path.join(workdir, "layout.csv")
    with open(cfg, "w") as f:
        f.write(_CONFIG.format(rows=rows, cols=cols, dataflow=dataflow))
    with open(topo, "w") as f:
        f.write("Layer, M, N, K,\n")
        for i, (m, k, n) in enumerate(gemms):
            f.write(f"gemm{i}, {m}, {n}, {k},\n")
    with open(layout, "w") as f:
        f.write("Layer name, " + ", ".join(f"f{i}" for i in range(16)) + ",\n")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
    from scalesim.scale_sim import scalesim

    with contextlib.redirect_stdout(io.StringIO()):  # SCALE-Sim prints progress on stdout
        s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                     input_type_gemm=True)
        s.run_scale(top_path=workdir)
    report = glob.glob(os.path.join(workdir, "**", "COMPUTE_REPORT.csv"), recursive=True)
    if not report:
        print(json.dumps({"error": "SCALE-Sim wrote no COMPUTE_REPORT.csv"}))
        return 1
    with open(report[0]) as f:
        rows_out = [[c.strip() for c in r] for r in csv.reader(f)]
    header, body = rows_out[0], [r for r in rows_out[1:] if r and r[0]]
    col = header.index("Total Cycles")
    stall = header.index("Stall Cycles")
    out = {"total_cycles": [int(r[col]) for r in body], "stall_cycles": [int(r[stall]) for r in body]}
    import numpy
    import scalesim as ss

    out["versions"] = {"numpy": numpy.__version__, "scalesim": getattr(ss, "__version__", "3.0.0 (pinned)")}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
