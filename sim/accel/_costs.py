"""Costs of the accelerator's parts: the PE (cost model, synthesis or explicit), SRAM and DRAM
accesses (``models.cost``'s cited figures), SRAM and vector-unit area (cited below).

Constants introduced here (not in ``models.cost``), each with its source:
- ``SRAM_BITCELL_UM2``: 0.346 µm², the 45 nm high-k/metal-gate 6T SRAM cell (Mistry et al., "A 45nm
  Logic Technology with High-k+Metal Gate Transistors, Strained Silicon, 9 Cu Interconnect
  Layers, 193nm Dry Patterning, and 100% Pb-free Packaging", IEDM 2007). Macro area = bits × cell
  / array efficiency (a parameter, default 0.7 [inferred]).
- ``HOROWITZ_45NM_AREA_UM2``: Horowitz ISSCC 2014 45 nm operator areas (PAPERS.md §6, listed
  there "to verify").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.cost import HOROWITZ_45NM_PJ, MEMORY_SOURCES, dram_pj_per_64b, sram_read_pj_per_64b
from models.errors import MacforgeError
from models.units import UnitSpec, as_spec

from ._spec import AcceleratorSpec, BufferSpec, DecoderSpec, DramSpec, VectorSpec

__all__ = ["SRAM_BITCELL_UM2", "HOROWITZ_45NM_AREA_UM2", "SRAM_SOURCES", "PECost", "pe_cost", "resolve_unit",
           "buffer_costs", "dram_pj_per_bit", "vector_costs", "BufferCost", "DecoderCost", "decoder_cost",
           "decoder_unit"]

SRAM_BITCELL_UM2 = 0.346  # Mistry et al., IEDM 2007 (Intel 45 nm HK/MG 6T cell)
HOROWITZ_45NM_AREA_UM2 = {"int8_add": 36.0, "int32_add": 137.0, "int8_mult": 282.0, "int32_mult": 3495.0,
                          "fp16_mult": 1640.0, "fp32_mult": 7700.0}  # Horowitz ISSCC 2014 (PAPERS.md §6)
SRAM_SOURCES = {
    **MEMORY_SOURCES,
    "sram_area": "45 nm 6T bit cell 0.346 µm² (Mistry et al., IEDM 2007) / array efficiency",
    "vector": "one FP16 multiply + FP16 add per op (Horowitz ISSCC 2014, 45 nm); area FP16 mult + "
              "32-bit add per lane (Horowitz 45 nm, PAPERS.md §6)",
}

_CACHE = Path(__file__).resolve().parents[2] / "build" / "cache" / "accel"


def resolve_unit(unit: Any) -> UnitSpec:
    """The PE's ``UnitSpec`` from a name, inline spec string or table (``models.units.as_spec``)."""
    try:
        return as_spec(unit)
    except MacforgeError as e:
        raise MacforgeError(f"pe unit {unit!r}: {e}") from None


@dataclass(frozen=True)
class PECost:
    """Area of one PE and energy of one MAC in it, and where they came from."""

    unit: str
    lanes: int
    area_um2: float
    energy_per_mac_pj: float
    source: str


def _fit_cache(kind: str) -> Any:
    """The cost model fitted to the synthesis sweep (``sim.costfit``), cached on disk under
    build/cache/accel keyed on ``sim.costfit.model_digest`` (the model's definition and its sweep)."""
    from models.cost import CostModel
    from sim import costfit

    key = costfit.model_digest(kind)  # the cost model's definition + the fitting sweep
    path = _CACHE / f"costfit_{kind}_{key}.json"
    if path.exists():
        return CostModel(**json.loads(path.read_text()))
    model, _, _ = costfit.fit_area() if kind == "area" else costfit.fit_energy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(model.to_dict()))
    tmp.replace(path)
    return model


@lru_cache(maxsize=None)
def _model_cost(spec: UnitSpec) -> tuple[float, float, str]:
    from rtl.flow import NAND2_UM2, pj_per_toggle_unit

    am, em = _fit_cache("area"), _fit_cache("energy")
    area = am.predict(spec) * NAND2_UM2
    energy = em.predict(spec) / spec.lanes * pj_per_toggle_unit()
    # the fits' own errors travel with the figures: a poor fit must be visible where it is used
    return area, energy, (f"fitted cost model (sim.costfit NNLS: area over {am.n_points} synthesized units, mean "
                          f"|error| {am.mean_abs_rel_error:.0%}; energy over {em.n_points} gate-level simulations, "
                          f"mean |error| {em.mean_abs_rel_error:.0%}, max {em.max_abs_rel_error:.0%}; NanGate45 NAND2 "
                          f"area, Horowitz int8-mult pJ anchor)")


@lru_cache(maxsize=None)
def _synth_cost(spec: UnitSpec) -> tuple[float, float, str]:
    from rtl.flow import NAND2_UM2, synth_unit, unit_energy

    area = synth_unit(spec, "generic")["nand2_eq"] * NAND2_UM2
    if spec.kind == "huffman":  # per decoded symbol, on the format's reference tensor at full rate
        from rtl import huffman_energy

        energy = float(huffman_energy(spec, "random")["energy_per_symbol_pj"])  # type: ignore[arg-type]
        return area, energy, "this decoder synthesized (macforge synth, generic cells) and its gate-level " \
                             "energy per decoded symbol measured (rtl.huffman_energy, the format's reference tensor)"
    energy = unit_energy(spec, "random")["energy_per_mac_pj"]
    return area, energy, "this unit synthesized (macforge synth, generic cells) and its gate-level energy " \
                         "measured (macforge energy, random data)"


def pe_cost(unit: Any, cost: str = "model", energy_per_mac_pj: float | None = None,
            area_um2: float | None = None, source: str = "") -> PECost:
    """Area per PE and energy per MAC: explicit figures first, else ``cost`` (model | synth)."""
    spec = resolve_unit(unit)
    if spec.kind not in ("mac", "dot"):
        raise MacforgeError(f"pe unit {spec.name} is a {spec.kind}; a PE must be a mac or dot unit")
    if energy_per_mac_pj is not None and area_um2 is not None:
        return PECost(spec.name, spec.lanes, float(area_um2), float(energy_per_mac_pj),
                      source or "explicit in the accelerator spec")
    if cost not in ("model", "synth"):
        raise MacforgeError(f"pe cost must be 'model' or 'synth', not {cost!r}")
    a, e, src = (_model_cost if cost == "model" else _synth_cost)(spec)
    if area_um2 is not None:
        a, src = float(area_um2), f"area explicit; energy: {src}"
    if energy_per_mac_pj is not None:
        e, src = float(energy_per_mac_pj), f"energy explicit; area: {src}"
    return PECost(spec.name, spec.lanes, a, e, src)


@dataclass(frozen=True)
class BufferCost:
    read_pj_per_bit: float
    write_pj_per_bit: float
    area_mm2: float


@lru_cache(maxsize=4096)
def buffer_costs(b: BufferSpec) -> BufferCost:
    """Per-bit access energy (the bank's size on Horowitz's SRAM curve unless given) and area."""
    bank = b.size_bytes / b.banks
    rd = b.read_pj_per_64b if b.read_pj_per_64b is not None else sram_read_pj_per_64b(bank)
    wr = b.write_pj_per_64b if b.write_pj_per_64b is not None else rd  # write priced as a read [inferred]
    area = b.area_mm2 if b.area_mm2 is not None else \
        b.size_bytes * 8 * SRAM_BITCELL_UM2 / b.array_efficiency * 1e-6
    return BufferCost(rd / 64.0, wr / 64.0, area)


def dram_pj_per_bit(d: DramSpec) -> float:
    return d.pj_per_bit if d.pj_per_bit is not None else dram_pj_per_64b(d.kind) / 64.0


def vector_costs(v: VectorSpec) -> tuple[float, float]:
    """(pJ per op, area mm²) of the vector unit."""
    pj = v.pj_per_op if v.pj_per_op is not None else HOROWITZ_45NM_PJ["fp16_mult"] + HOROWITZ_45NM_PJ["fp16_add"]
    area = v.area_mm2 if v.area_mm2 is not None else \
        v.ops_per_cycle * (HOROWITZ_45NM_AREA_UM2["fp16_mult"] + HOROWITZ_45NM_AREA_UM2["int32_add"]) * 1e-6
    return pj, area


@dataclass(frozen=True)
class DecoderCost:
    """One weight decoder: its unit, area, energy per decoded symbol and their source."""

    unit: str
    area_um2: float
    energy_per_symbol_pj: float
    source: str


def decoder_unit(d: DecoderSpec, weight_format: str) -> UnitSpec:
    """The decoder unit for weights in ``weight_format`` (``"auto"``: that format's own)."""
    spec = resolve_unit(f"kind=huffman,weights={weight_format}" if d.unit == "auto" else d.unit)
    if spec.kind != "huffman":
        raise MacforgeError(f"decoder unit {spec.name} is a {spec.kind}, not a huffman decoder")
    if spec.weight_format != weight_format:
        raise MacforgeError(f"decoder unit {spec.name} decodes {spec.weight_format}, not the weights' "
                            f"{weight_format}")
    return spec


def decoder_cost(d: DecoderSpec, weight_format: str) -> DecoderCost:
    """Area per decoder and energy per decoded symbol: explicit figures first, else ``d.cost``
    (one decoded symbol is the decoder's unit of work, as one MAC is a PE's)."""
    spec = decoder_unit(d, weight_format)
    if d.energy_per_symbol_pj is not None and d.area_um2 is not None:
        return DecoderCost(spec.name, float(d.area_um2), float(d.energy_per_symbol_pj),
                           "explicit in the accelerator spec")
    a, e, src = (_model_cost if d.cost == "model" else _synth_cost)(spec)
    if d.area_um2 is not None:
        a, src = float(d.area_um2), f"area explicit; energy: {src}"
    if d.energy_per_symbol_pj is not None:
        e, src = float(d.energy_per_symbol_pj), f"energy explicit; area: {src}"
    return DecoderCost(spec.name, a, e, src)


def arch_pe_costs(spec: AcceleratorSpec) -> tuple[PECost, PECost | None]:
    """The PE's cost and, when the spec has one, the attention datapath's."""
    p = spec.pe
    main = pe_cost(p.unit, p.cost, p.energy_per_mac_pj, p.area_um2, p.source)
    att = None
    if p.attention_unit is not None:
        att = pe_cost(p.attention_unit, p.cost, p.attention_energy_per_mac_pj, p.attention_area_um2, p.source)
    return main, att


def describe_sources() -> dict[str, Any]:
    return dict(SRAM_SOURCES)
