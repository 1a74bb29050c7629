"""Measure the fitting sweep with the synthesis / energy flow and fit ``models.cost`` to it.

Every point is an independent synthesis (cached by the flow), run on a local process pool with
a progress bar on stderr. The area fit uses each MAC's measured per-component area
(``rtl.flow.synth_unit(...)["components_nand2_eq"]``) and each dot PE's measured flip-flop
area beside the totals, and comes back validated out of sample (``models.cost.cross_validate``:
leave-one-out and held-out families in ``CostModel.validation``).

``model_digest(kind)`` is a stable hash of what a fitted model depends on (the cost model's
definition and the sweep's specs): key caches of fitted models on it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Mapping, Sequence

from models import cost
from models.cost import CostModel, coverage_specs, fit, sweep_specs
from models.units import UnitSpec, get_unit, unit_names

__all__ = ["measure", "fit_area", "fit_energy", "fit_specs", "named_fit_units", "area_components",
           "model_digest", "ENERGY_SWEEP", "sweep_specs", "coverage_specs", "fit_decoder_area", "decoder_fit_specs"]

ENERGY_SWEEP = dict(weight_bits=(2, 4, 8), act_bits=(4, 8), acc_bits=(16, 32), lanes=(1, 4))
_FIT_VERSION = "costfit-v2: NNLS on totals + measured components, rows weighted by 1/total"


def named_fit_units() -> list[UnitSpec]:
    """The named mac/dot units (they carry the decode styles the INT sweep lacks)."""
    return [get_unit(n) for n in unit_names() if get_unit(n).kind in ("mac", "dot")]


def fit_specs(kind: str = "area") -> list[UnitSpec]:
    """The units a fit is made on: ``area``: the INT×INT sweep, the named mac/dot units and
    ``models.cost.coverage_specs`` (so every decode style rests on >= 5 units); ``energy``: the
    smaller ``ENERGY_SWEEP`` grid and the named units of at most 4 lanes."""
    if kind == "area":
        specs = sweep_specs() + named_fit_units() + coverage_specs()
    elif kind == "energy":
        specs = sweep_specs(**ENERGY_SWEEP) + [s for s in named_fit_units() if s.lanes <= 4]  # type: ignore[arg-type]
    else:
        from models.errors import MacforgeError

        raise MacforgeError(f"fit kind must be 'area' or 'energy', not {kind!r}")
    seen: dict[str, UnitSpec] = {}
    for s in specs:
        seen.setdefault(s.name, s)
    return list(seen.values())


def model_digest(kind: str = "area", specs: Sequence[UnitSpec] | None = None) -> str:
    """A stable 16-hex-digit digest of a fitted model's definition: the cost model's feature
    and component definitions (the source of ``models.cost``'s feature functions), the fit
    method and the sweep's specs. Equal digests mean the fit would be made from the same
    definition on the same units (the measurements themselves are cached by the flow)."""
    specs = fit_specs(kind) if specs is None else list(specs)
    src = "".join(inspect.getsource(f) for f in (cost.features, cost.register_bits, cost.pipeline_bits,
                                                     cost.term_bits, cost._multiplier_bits, cost._shift_positions,
                                                     cost._solve, cost.fit))
    ident = json.dumps([_FIT_VERSION, kind, cost.FEATURES, cost.COMPONENTS, src,
                        [(s.name, repr(s)) for s in specs]], sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


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

    if workers <= 1:  # in process: no pool start-up, and callers' registered units stay visible
        return [what(s) for s in tqdm(specs, desc=label, file=sys.stderr, leave=False, disable=None)]
    out: list[dict[str, Any]] = [{} for _ in specs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futs = {pool.submit(what, s): i for i, s in enumerate(specs)}
        for f in tqdm(as_completed(futs), total=len(futs), desc=label, file=sys.stderr, leave=False,
                      disable=None):
            out[futs[f]] = f.result()
    return out


def area_components(rec: Mapping[str, Any]) -> dict[str, float]:
    """The measured split of a generic-synthesis record: a MAC's ``components_nand2_eq``
    (decode, multiplier, accumulator, registers), a dot PE's flip-flop area (registers)."""
    comps = rec.get("components_nand2_eq")
    if comps:
        return {k: float(v) for k, v in comps.items() if k != "total"}
    return {"registers": float(rec["sequential_nand2_eq"])}


def fit_area(workers: int = 2, specs: Sequence[UnitSpec] | None = None
             ) -> tuple[CostModel, list[UnitSpec], list[dict[str, Any]]]:
    """Synthesize ``specs`` (default ``fit_specs("area")``) and fit the area model to their
    totals and measured components; the model carries its leave-one-out and held-out errors."""
    default = specs is None
    specs = fit_specs("area") if specs is None else list(specs)
    recs = measure(specs, _area, workers, "area sweep")
    model = fit(specs, [r["nand2_eq"] for r in recs], "nand2_eq", components=[area_components(r) for r in recs])
    n_named = sum(1 for s in specs if s.name in set(unit_names()))
    model.note = (f"NNLS fit of generic-cell area (NAND2-eq, Yosys default flow) over {len(specs)} units "
                  f"({n_named} named mac/dot units) on their totals, each MAC's measured decode / multiplier / "
                  f"accumulator / register split and each dot PE's measured register area")
    if default:  # the full fit also carries the huffman decoders' own model (model.decoder)
        model.decoder = fit_decoder_area(workers)[0]
        model.note += f"; huffman decoders: {model.decoder.note}"
    return model, specs, recs


def decoder_fit_specs() -> list[UnitSpec]:
    """The huffman units the decoder model is fitted on: the named huffman units and
    ``models.cost.huffman_sweep_specs``, one per design (max_len, symbol_bits, count_bits)."""
    seen: dict[tuple[int, ...], UnitSpec] = {}
    for s in [get_unit(n) for n in unit_names() if get_unit(n).kind == "huffman"] + cost.huffman_sweep_specs():
        # one point per decoder design: a named unit replaces the sweep point with its parameters
        p = s.huffman_params
        seen.setdefault((p["max_len"], p["symbol_bits"], p["count_bits"]), s)
    return list(seen.values())


def fit_decoder_area(workers: int = 2, specs: Sequence[UnitSpec] | None = None
                     ) -> tuple[CostModel, list[UnitSpec], list[dict[str, Any]]]:
    """Synthesize huffman decoders (default ``decoder_fit_specs``) and fit ``models.cost.fit_decoder``."""
    specs = decoder_fit_specs() if specs is None else list(specs)
    recs = measure(specs, _area, workers, "decoder area sweep")
    return cost.fit_decoder(specs, [r["nand2_eq"] for r in recs]), specs, recs


def fit_energy(workers: int = 2, specs: Sequence[UnitSpec] | None = None
               ) -> tuple[CostModel, list[UnitSpec], list[dict[str, Any]]]:
    """Simulate ``specs`` (default ``fit_specs("energy")``) and fit energy per MAC."""
    specs = fit_specs("energy") if specs is None else list(specs)
    recs = measure(specs, _energy, workers, "energy sweep")
    model = fit(specs, [r["energy_per_mac_nand2"] for r in recs], "energy_per_mac_nand2", per_mac=True)
    model.note = (f"NNLS fit of switching energy per MAC (NAND2-toggle units, uniform random data, "
                  f"zero-delay) over {len(specs)} units")
    return model, specs, recs
