"""Measure the fitting sweep with the synthesis / energy flow and fit ``models.cost`` to it.

Every point is an independent synthesis (cached by the flow), run on a local process pool with
a progress bar on stderr.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

from models.cost import CostModel, fit, sweep_specs
from models.units import UnitSpec, get_unit, unit_names

__all__ = ["measure", "fit_area", "fit_energy", "named_fit_units", "ENERGY_SWEEP"]

ENERGY_SWEEP = dict(weight_bits=(2, 4, 8), act_bits=(4, 8), acc_bits=(16, 32), lanes=(1, 4))


def named_fit_units() -> list[UnitSpec]:
    """The named mac/dot units (they carry the decode styles the INT sweep lacks)."""
    return [get_unit(n) for n in unit_names() if get_unit(n).kind in ("mac", "dot")]


def _area(spec: UnitSpec) -> dict[str, Any]:
    from rtl.flow import synth_unit

    return synth_unit(spec, "generic")


def _energy(spec: UnitSpec) -> dict[str, Any]:
    from rtl.flow import unit_energy

    return unit_energy(spec, "random")


def measure(specs: Sequence[UnitSpec], what: Callable[[UnitSpec], dict[str, Any]], workers: int = 2,
            label: str = "synth") -> list[dict[str, Any]]:
    """Run ``what`` on every spec (process pool, progress on stderr), in order."""
    from tqdm import tqdm

    out: list[dict[str, Any]] = [{} for _ in specs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futs = {pool.submit(what, s): i for i, s in enumerate(specs)}
        from concurrent.futures import as_completed

        for f in tqdm(as_completed(futs), total=len(futs), desc=label, file=sys.stderr, leave=False,
                      disable=None):
            out[futs[f]] = f.result()
    return out


def fit_area(workers: int = 2) -> tuple[CostModel, list[UnitSpec], list[dict[str, Any]]]:
    specs = sweep_specs() + named_fit_units()
    recs = measure(specs, _area, workers, "area sweep")
    model = fit(specs, [r["nand2_eq"] for r in recs], "nand2_eq")
    model.note = (f"NNLS fit of generic-cell area (NAND2-eq, Yosys default flow) over {len(specs)} units: "
                  f"the INT×INT sweep plus the {len(named_fit_units())} named mac/dot units")
    return model, specs, recs


def fit_energy(workers: int = 2) -> tuple[CostModel, list[UnitSpec], list[dict[str, Any]]]:
    specs = sweep_specs(**ENERGY_SWEEP) + [s for s in named_fit_units() if s.lanes <= 4]
    recs = measure(specs, _energy, workers, "energy sweep")
    model = fit(specs, [r["energy_per_mac_nand2"] for r in recs], "energy_per_mac_nand2", per_mac=True)
    model.note = (f"NNLS fit of switching energy per MAC (NAND2-toggle units, uniform random data, "
                  f"zero-delay) over {len(specs)} units")
    return model, specs, recs
