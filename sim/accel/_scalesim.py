"""Cross-check with SCALE-Sim 3.0.0 (an independent systolic-array simulator).

SCALE-Sim runs in its own small venv (``.venv/scalesim``, made by ``make setup``: it needs
numpy < 2.4 while macforge pins 2.4) through ``_scalesim_runner.py``.

Systematic difference (``sim.accel._dataflow`` docstring): with ``schedule = "scalesim"`` the
counts are equal; with the RTL's ``macforge`` convention WS and IS are one cycle more per GEMM
(SCALE-Sim reports one cycle less per layer) and OS is ``folds × R + 1`` more (the R drain cycles
in which the RTL shifts each fold's result rows out of the array, which SCALE-Sim overlaps with
the fold's skew).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from models.errors import MacforgeError

__all__ = ["SCALESIM_VENV", "scalesim_python", "run_scalesim"]

ROOT = Path(__file__).resolve().parents[2]
SCALESIM_VENV = ROOT / ".venv" / "scalesim"
_RUNNER = Path(__file__).with_name("_scalesim_runner.py")


def scalesim_python() -> Path:
    """The SCALE-Sim venv's Python (``MACFORGE_SCALESIM_PYTHON`` overrides)."""
    p = Path(os.environ.get("MACFORGE_SCALESIM_PYTHON", SCALESIM_VENV / "bin" / "python"))
    if not p.exists():
        raise MacforgeError(f"SCALE-Sim venv not found at {p}; run `make setup` (scripts/setup.sh makes it)")
    return p


def run_scalesim(gemms: Sequence[tuple[int, int, int]], rows: int, cols: int, dataflow: str,
                 timeout: float = 600.0) -> list[int]:
    """SCALE-Sim's "Total Cycles" for each (M, K, N) GEMM on a rows × cols array (no stalls)."""
    if dataflow not in ("os", "ws", "is"):
        raise MacforgeError(f"dataflow must be os, ws or is, not {dataflow!r}")
    if not gemms:
        raise MacforgeError("run_scalesim needs at least one GEMM")
    py = scalesim_python()
    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scalesim-", dir=ROOT / "build") as work:
        args = [str(py), str(_RUNNER), work, dataflow, str(rows), str(cols)] + [f"{m},{k},{n}" for m, k, n in gemms]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=work)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise MacforgeError(f"SCALE-Sim failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}")
    out = json.loads(lines[-1])
    if any(out["stall_cycles"]):
        raise MacforgeError(f"SCALE-Sim reported memory stalls {out['stall_cycles']}; the comparison needs none")
    cycles = [int(c) for c in out["total_cycles"]]
    if len(cycles) != len(gemms):
        raise MacforgeError(f"SCALE-Sim returned {len(cycles)} layers for {len(gemms)} GEMMs")
    return cycles
