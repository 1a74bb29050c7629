"""The accelerator model: a workload on an accelerator → cycles, energy, area and the metrics.

Per GEMM: ``_dataflow.evaluate_gemm`` (tiling, schedule, SRAM/DRAM traffic, double-buffered
overlap, bound). Engines: linear GEMMs run on the PE array (its formats must be ones the PE
consumes); attention matmuls run on the array when the PE (or its ``attention_unit``) consumes
their formats, else on the vector unit (one op per MAC, operands from DRAM/on chip as for the
array). Vector work (norms, softmax, RoPE, activation functions, residuals, activation
quantization, scale application) is elements × ops per element / ops per cycle, serialized after
the layer's GEMMs unless ``vector.overlap``. Energy = MACs × PE energy per MAC + SRAM + DRAM +
vector ops (dynamic only: idle PEs and leakage cost nothing). Area = PEs × PE area + buffers +
vector unit.

Entropy-coded weights (``models.formats`` family ``entropy``) are stored and moved at their coded
size; ``spec.decoder`` decoders sit between the weight buffer and the array, one symbol per
decoder per cycle: they cap the weight port at (decoders × symbols per cycle) coded elements per
cycle (``bound`` = ``decode`` where that cap is the binding roof), each decoded symbol costs the
decoder's energy (``energy_pj_decode``) and the decoders' area is added (``decoders``).

Results: ``AccelResult`` with ``gemms`` (pandas DataFrame, one row per GEMM of one decoder
layer plus the LM head), ``layers`` (one row per decoder layer and the head) and ``summary``.
``cycles`` counts memory stalls (per GEMM the double-buffered DRAM/SRAM timing of ``_dataflow``);
``cycles_compute`` is the same sum with every GEMM at its compute schedule (no memory stalls),
the vector unit's cycles included in both. ``utilization`` = MACs / (cycles × PEs × lanes);
``bound``: the roof (compute, sram_*, dram, vector) that accounts for the most cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import pandas as pd

from models.errors import MacforgeError
from models.units import UnitSpec

from ._costs import (DecoderCost, PECost, arch_pe_costs, buffer_costs, decoder_cost, dram_pj_per_bit, resolve_unit,
                     vector_costs)
from ._dataflow import GemmMachine, bound_of, evaluate_gemm, gemm_raw
from ._spec import AcceleratorSpec
from ._workloads import Gemm, TensorFormats, Workload

__all__ = ["AccelResult", "evaluate", "evaluate_summary", "machine", "consumes", "resolve_formats"]

_VECTOR_KINDS = {"norm": "norm_ops", "residual": "residual_ops", "rope": "rope_ops", "softmax": "softmax_ops",
                 "act_fn": "act_fn_ops", "quant": "quant_ops", "scale": "scale_ops"}


def consumes(unit: UnitSpec, fmt: str, port: str) -> bool:
    """Whether ``unit`` takes tensors of format ``fmt`` on its weight (``w``) or activation
    (``a``) port: the unit's own format; a narrower signed integer (sign-extended); on the weight
    port of a plain integer PE any format whose values are integers inside the PE's weight range
    (e.g. decoupleQ's {-2..1}: its float offset is applied as z·Σa on the vector unit); for a
    programmable-LUT unit any format with as many code bits (its table is loaded). Cached on
    the format objects, not their names: a format registered again under a name is a new key."""
    from models.formats import get_format

    mine = unit.weight_format if port == "w" else unit.act_format
    return _consumes(unit, get_format(fmt), get_format(mine), port)


@lru_cache(maxsize=4096)
def _consumes(unit: UnitSpec, f: Any, g: Any, port: str) -> bool:
    import numpy as np

    if f is g:
        return True
    if f.kind == "int" and g.kind == "int" and f.bits <= g.bits:
        return True
    if port != "w" or f.zp_codes is not None:
        return False
    if unit.lut == "programmable":
        return f.bits == unit.decode.bits
    v = f.values[np.isfinite(f.values)] if f.values is not None else np.array([np.nan])
    lo, hi = unit.weight_int_range
    return (unit.lut == "none" and unit.decode.unit == 1 and unit.decode.zp_mask is None
            and bool(np.all(v == np.round(v))) and lo <= v.min() and v.max() <= hi)


def machine(spec: AcceleratorSpec, unit: UnitSpec, cost: PECost) -> GemmMachine:
    """The plain numbers ``evaluate_gemm`` needs, for one PE datapath."""
    b = spec.buffers
    cw, ca, co = buffer_costs(b.weights), buffer_costs(b.inputs), buffer_costs(b.outputs)
    dram_bpc = spec.dram.bandwidth_gb_s * 1e9 * 8 / (spec.clock_mhz * 1e6)
    return GemmMachine(
        rows=spec.array.rows, cols=spec.array.cols, lanes=unit.lanes, arrays=spec.array.count,
        dataflow=spec.array.dataflow, schedule=spec.array.schedule, acc_bits=unit.acc_bits,
        w_buf_bits=b.weights.size_bytes * 8, a_buf_bits=b.inputs.size_bytes * 8, o_buf_bits=b.outputs.size_bytes * 8,
        w_port_bits=b.weights.bits_per_cycle, a_port_bits=b.inputs.bits_per_cycle,
        o_port_bits=b.outputs.bits_per_cycle, dram_bits_per_cycle=dram_bpc, mac_pj=cost.energy_per_mac_pj,
        w_rd_pj=cw.read_pj_per_bit, w_wr_pj=cw.write_pj_per_bit, a_rd_pj=ca.read_pj_per_bit,
        a_wr_pj=ca.write_pj_per_bit, o_rd_pj=co.read_pj_per_bit, o_wr_pj=co.write_pj_per_bit,
        dram_pj_bit=dram_pj_per_bit(spec.dram))


def resolve_formats(spec: AcceleratorSpec, weights: str | None = None, acts: str | None = None,
                    kv: str | None = None, attn: str | None = None) -> TensorFormats:
    """Formats per tensor class: the arguments, else the spec's ``[formats]``, else the PE's own
    (``None`` / ``"auto"``: weights and KV cache in the PE's weight format, activations and
    attention operands in its activation format)."""
    unit = resolve_unit(spec.pe.unit)
    f = spec.formats

    def pick(given: str | None, default: str | None, pe: str) -> str:
        for v in (given, default):
            if v is not None and v != "auto":
                return v
        return pe

    return TensorFormats(pick(weights, f.weights, unit.weight_format), pick(acts, f.acts, unit.act_format),
                         pick(kv, f.kv, unit.weight_format), pick(attn, f.attn, unit.act_format))


@dataclass
class AccelResult:
    """``gemms`` and ``layers`` DataFrames and the ``summary`` dict (see the module docstring)."""

    spec: AcceleratorSpec
    workload: Workload
    gemms: pd.DataFrame
    layers: pd.DataFrame
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        d = dict(self.summary)
        d["layers"] = _records(self.layers)
        d["gemms"] = _records(self.gemms)
        return d


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()})
    return out


@lru_cache(maxsize=4096)
def _engine(g: Gemm, unit: UnitSpec, att: UnitSpec | None) -> str:
    if g.role == "linear":
        for port, fmt, what in (("w", g.w_fmt, "weights"), ("a", g.a_fmt, "activations")):
            if not consumes(unit, fmt, port):
                mine = unit.weight_format if port == "w" else unit.act_format
                raise MacforgeError(f"PE unit {unit.name} takes {mine} {what}, not {fmt} ({g.name}); "
                                    f"choose a unit for this format or --{'weights' if port == 'w' else 'acts'} {mine}")
        return "array"
    if consumes(unit, g.w_fmt, "w") and consumes(unit, g.a_fmt, "a"):
        return "array"
    if att is not None and consumes(att, g.w_fmt, "w") and consumes(att, g.a_fmt, "a"):
        return "attention_unit"
    return "vector"


def _vector_gemm(spec: AcceleratorSpec, g: Gemm, vec_pj: float, dram_pj_bit: float, dram_bpc: float) -> dict[str, Any]:
    """A matmul on the vector unit: one op per MAC; operands move once (no reuse modelled)."""
    ops = g.macs
    comp = math.ceil(ops / spec.vector.ops_per_cycle)
    dram = g.count * ((g.m * g.k * g.a_bits if g.a_dram else 0) + (g.k * g.n * g.w_bits if g.w_dram else 0)
                      + (g.m * g.n * g.y_bits if g.y_dram else 0))
    dcyc = dram / dram_bpc
    return {"cycles": max(comp, dcyc), "cycles_compute": comp, "cycles_sram": 0.0, "cycles_dram": dcyc,
            "bound": "vector" if comp >= dcyc else "dram", "tile_m": g.m, "tile_n": g.n, "loop_order": "-",
            "folds": 0, "dram_bytes_weights": g.count * g.k * g.n * g.w_bits / 8 * g.w_dram,
            "dram_bytes_inputs": g.count * g.m * g.k * g.a_bits / 8 * g.a_dram,
            "dram_bytes_outputs": g.count * g.m * g.n * g.y_bits / 8 * g.y_dram,
            "sram_bytes_weights": 0.0, "sram_bytes_inputs": 0.0, "sram_bytes_outputs": 0.0,
            "energy_pj_mac": ops * vec_pj, "energy_pj_sram": 0.0, "energy_pj_dram": dram * dram_pj_bit}


def _is_entropy(fmt: str) -> bool:
    # not cached by name: a user format of that name may be registered again (tests do)
    from models.formats import get_format

    return get_format(fmt).kind == "entropy"


def decoders_per_array(spec: AcceleratorSpec, unit: UnitSpec) -> int:
    """``decoder.count``, or (0) the weight elements the array takes per cycle at full rate:
    os/ws feed weights through the top edge (cols × lanes), is through the rows (rows × lanes)."""
    if spec.decoder.count:
        return spec.decoder.count
    a = spec.array
    return (a.cols if a.dataflow in ("os", "ws") else a.rows) * unit.lanes


@lru_cache(maxsize=4096)
def _decoded_machine(m: GemmMachine, symbols_per_cycle: float, w_bits: float) -> tuple[GemmMachine, bool]:
    """``m`` with its weight port capped by the decoders' symbol rate (coded bits per cycle), and
    whether the decoders (not the buffer's banks) set the cap."""
    cap = symbols_per_cycle * w_bits
    return (replace(m, w_port_bits=cap), True) if cap < m.w_port_bits else (m, False)


def _decoded_symbols(m: GemmMachine, o: tuple[float, ...], w_bits: float) -> float:
    """Weight elements the array reads from the weight buffer (each one decoded): the buffer's
    array-side read cycles × its port width / coded bits per element (fills excluded)."""
    return o[2] * m.w_port_bits / w_bits


def _decode_rate(spec: AcceleratorSpec, unit: UnitSpec | None) -> float:
    """Symbols per cycle all arrays' decoders deliver."""
    assert unit is not None
    return decoders_per_array(spec, unit) * spec.array.count * spec.decoder.symbols_per_cycle


def evaluate(spec: AcceleratorSpec, workload: Workload) -> AccelResult:
    """Run ``workload`` on ``spec`` (see the module docstring)."""
    return _evaluate(spec, workload, True)  # type: ignore[return-value]


def evaluate_summary(spec: AcceleratorSpec, workload: Workload) -> dict[str, Any]:
    """Only ``evaluate(...).summary`` (no DataFrames: the fast path for sweeps)."""
    return _evaluate(spec, workload, False)  # type: ignore[return-value]


def _evaluate(spec: AcceleratorSpec, workload: Workload, frames: bool) -> AccelResult | dict[str, Any]:
    unit = resolve_unit(spec.pe.unit)
    att = resolve_unit(spec.pe.attention_unit) if spec.pe.attention_unit is not None else None
    cost, att_cost = arch_pe_costs(spec)
    mc = machine(spec, unit, cost)
    mc_att = machine(spec, att, att_cost) if att is not None and att_cost is not None else None
    vec_pj, vec_area = vector_costs(spec.vector)
    dpb = dram_pj_per_bit(spec.dram)
    decoders: dict[str, DecoderCost] = {}  # by weight format: entropy-coded weights only
    rows = []
    for g in (*workload.layer_gemms, *workload.head_gemms):
        eng = _engine(g, unit, att)
        dec = None
        if eng != "vector" and _is_entropy(g.w_fmt):
            dec = decoders.get(g.w_fmt) or decoders.setdefault(g.w_fmt, decoder_cost(spec.decoder, g.w_fmt))
        if eng != "vector" and not frames:  # the sweep path: only what the aggregates need
            m = mc if eng == "array" else mc_att
            assert m is not None
            capped = False
            if dec is not None:
                m, capped = _decoded_machine(m, _decode_rate(spec, unit if eng == "array" else att), g.w_bits)
            try:
                o = gemm_raw(m, g.m, g.k, g.n, g.count, g.a_bits, g.w_bits, g.y_bits, g.a_dram, g.w_dram, g.y_dram)
            except MacforgeError as e:
                raise MacforgeError(f"{g.name}: {e}") from None
            e_dec = _decoded_symbols(m, o, g.w_bits) * dec.energy_per_symbol_pj if dec is not None else 0.0
            b = bound_of(o)
            rows.append({"layer": g.layer, "cycles": o[0], "cycles_compute": o[1],
                         "bound": "decode" if capped and b == "sram_weights" else b,
                         "macs": g.macs, "energy_pj_mac": o[15], "energy_pj_sram": o[16], "energy_pj_dram": o[17],
                         "energy_pj_decode": e_dec, "energy_pj": o[15] + o[16] + o[17] + e_dec,
                         "dram_bytes_weights": o[10] / 8, "dram_bytes_inputs": o[9] / 8, "dram_bytes_outputs": o[11] / 8})
            continue
        capped = False
        if eng == "vector":
            r = _vector_gemm(spec, g, vec_pj, dpb, mc.dram_bits_per_cycle)
        else:
            m = mc if eng == "array" else mc_att
            assert m is not None
            if dec is not None:
                m, capped = _decoded_machine(m, _decode_rate(spec, unit if eng == "array" else att), g.w_bits)
            r = evaluate_gemm(m, g.m, g.k, g.n, g.count, g.a_bits, g.w_bits, g.y_bits, g.a_dram, g.w_dram,
                              g.y_dram, g.name).as_row()
            if capped and r["bound"] == "sram_weights":
                r["bound"] = "decode"
            if dec is not None:  # the same (cached) tile search evaluate_gemm ran
                o = gemm_raw(m, g.m, g.k, g.n, g.count, g.a_bits, g.w_bits, g.y_bits, g.a_dram, g.w_dram, g.y_dram)
                r["decoded_symbols"] = _decoded_symbols(m, o, g.w_bits)
        r.setdefault("decoded_symbols", 0.0)
        r["energy_pj_decode"] = r["decoded_symbols"] * dec.energy_per_symbol_pj if dec is not None else 0.0
        pes = spec.array.rows * spec.array.cols * spec.array.count * (unit.lanes if eng == "array" else
                                                                     att.lanes if att and eng != "vector" else 1)
        r.update({"name": g.name, "layer": g.layer, "role": g.role, "engine": eng, "m": g.m, "k": g.k, "n": g.n,
                  "count": g.count, "macs": g.macs, "w_fmt": g.w_fmt, "a_fmt": g.a_fmt, "y_fmt": g.y_fmt,
                  "w_bits": g.w_bits, "a_bits": g.a_bits, "y_bits": g.y_bits})
        r["energy_pj"] = r["energy_pj_mac"] + r["energy_pj_sram"] + r["energy_pj_dram"] + r["energy_pj_decode"]
        r["utilization"] = g.macs / (r["cycles"] * (pes if eng != "vector" else spec.vector.ops_per_cycle))
        rows.append(r)
    layer, head = _aggregate(spec, workload, rows, vec_pj)
    summary = _summary(spec, workload, rows, layer, head, unit, cost, att_cost, vec_area, decoders)
    if not frames:
        return summary  # type: ignore[return-value]
    first = ["name", "layer", "role", "engine", "m", "k", "n", "count", "macs", "cycles", "cycles_compute",
             "bound", "utilization", "energy_pj"]
    gemms = pd.DataFrame(rows)
    gemms = gemms[first + [c for c in gemms.columns if c not in first]]
    layers = pd.DataFrame([dict(layer, layer=i) for i in range(workload.n_layers)] + ([head] if head else []))
    return AccelResult(spec, workload, gemms, layers, summary)


def _aggregate(spec: AcceleratorSpec, wl: Workload, rows: list[dict[str, Any]],
               vec_pj: float) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One decoder layer's totals (all layers are the same) and the LM head's (plain dicts)."""
    v = spec.vector

    def agg(sub: list[dict[str, Any]], elems: dict[str, float], name: Any) -> dict[str, Any]:
        ops = sum(e * getattr(v, _VECTOR_KINDS[k]) for k, e in elems.items())
        vcyc, vpj = ops / v.ops_per_cycle, ops * vec_pj
        # one pass over the GEMM rows (a sweep's hot loop); each sum in row order as before
        gc = gcc = macs = e_all = e_mac = e_sram = e_dram = e_dec = dram = 0  # as sum(): int 0 + float
        by_bound: dict[str, float] = {}
        for r in sub:
            c = r["cycles"]
            gc += c
            gcc += r["cycles_compute"]
            macs += r["macs"]
            e_all += r["energy_pj"]
            e_mac += r["energy_pj_mac"]
            e_sram += r["energy_pj_sram"]
            e_dram += r["energy_pj_dram"]
            e_dec += r["energy_pj_decode"]
            dram += r["dram_bytes_weights"]
            dram += r["dram_bytes_inputs"]
            dram += r["dram_bytes_outputs"]
            by_bound[r["bound"]] = by_bound.get(r["bound"], 0.0) + c
        by_bound["vector"] = by_bound.get("vector", 0.0) + vcyc
        return {
            "layer": name, "cycles": max(gc, vcyc) if v.overlap else gc + vcyc,
            "cycles_compute": max(gcc, vcyc) if v.overlap else gcc + vcyc,
            "cycles_gemm": gc, "cycles_vector": vcyc, "macs": macs, "vector_ops": ops,
            "energy_pj": e_all + vpj, "energy_pj_mac": e_mac, "energy_pj_sram": e_sram, "energy_pj_dram": e_dram,
            "energy_pj_decode": e_dec, "energy_pj_vector": vpj, "dram_bytes": dram,
            "bound": max(by_bound, key=by_bound.get),  # type: ignore[arg-type]
            "cycles_by_bound": by_bound,
        }

    layer = agg([r for r in rows if r["layer"] >= 0], wl.vector_elems_layer, 0)
    head_rows = [r for r in rows if r["layer"] < 0]
    head = agg(head_rows, wl.vector_elems_head, "lm_head") if head_rows or wl.vector_elems_head else None
    return layer, head


def _summary(spec: AcceleratorSpec, wl: Workload, rows: list[dict[str, Any]], layer: dict[str, Any],
             head: dict[str, Any] | None, unit: UnitSpec, cost: PECost, att_cost: PECost | None,
             vec_area: float, decoders: dict[str, DecoderCost]) -> dict[str, Any]:
    a = spec.array
    n = wl.n_layers
    parts = [(layer, n)] + ([(head, 1)] if head else [])

    def total(key: str) -> float:  # n layers + the head
        t = layer[key] * n
        return float(t + head[key] if head else t)

    cycles, cycles_compute = total("cycles"), total("cycles_compute")
    time_s = cycles / (spec.clock_mhz * 1e6)
    energy_j = total("energy_pj") * 1e-12
    macs = int(total("macs"))
    n_pe = a.rows * a.cols * a.count
    n_dec = decoders_per_array(spec, unit) * a.count if decoders else 0  # one set per weight format in use
    pe_um2 = cost.area_um2 + (att_cost.area_um2 if att_cost else 0.0)
    area = {"pe_array": n_pe * pe_um2 * 1e-6,
            **{f"buffer_{k}": buffer_costs(getattr(spec.buffers, k)).area_mm2 for k in ("weights", "inputs", "outputs")},
            "vector": vec_area,
            "decoders": n_dec * sum(d.area_um2 for d in decoders.values()) * 1e-6}
    area_mm2 = sum(area.values())
    ops = 2.0 * macs
    tops = ops / time_s / 1e12
    by_bound: dict[str, float] = {}
    for p, mult in parts:
        by_bound[p["bound"]] = by_bound.get(p["bound"], 0.0) + p["cycles"] * mult
    gb: dict[str, float] = {}
    for r in rows:
        gb[r["bound"]] = gb.get(r["bound"], 0.0) + r["cycles"] * (n if r["layer"] >= 0 else 1)
    return {
        "arch": spec.name, "workload": wl.name, "phase": wl.phase, "model": wl.model.name if wl.model else None,
        "batch": wl.batch, "seq": wl.seq or None, "context": wl.context or None, "tokens": wl.tokens,
        "formats": None if wl.formats is None else {k: getattr(wl.formats, k) for k in ("weights", "acts", "kv", "attn")},
        "pe_unit": unit.name, "lanes": unit.lanes, "rows": a.rows, "cols": a.cols, "arrays": a.count,
        "dataflow": a.dataflow, "schedule": a.schedule, "clock_mhz": spec.clock_mhz,
        "cycles": cycles, "cycles_compute": cycles_compute, "time_s": time_s,
        "tokens_per_s": wl.tokens / time_s, "energy_j": energy_j, "energy_per_token_j": energy_j / wl.tokens,
        "power_w": energy_j / time_s, "area_mm2": area_mm2, "area_mm2_breakdown": area,
        "macs": macs, "tops": tops, "tops_per_mm2": tops / area_mm2, "tops_per_w": ops / energy_j / 1e12,
        "utilization": macs / (cycles * n_pe * unit.lanes),
        "bound": max(by_bound, key=by_bound.get),  # type: ignore[arg-type]
        "gemm_cycles_by_bound": gb,
        "energy_j_breakdown": {k: total(f"energy_pj_{k}") * 1e-12 for k in ("mac", "sram", "dram", "vector", "decode")},
        "dram_bytes": total("dram_bytes"),
        "pe_area_um2": pe_um2, "pe_energy_per_mac_pj": cost.energy_per_mac_pj, "pe_cost_source": cost.source,
        "decoders": n_dec, "decoder_units": sorted(d.unit for d in decoders.values()),
        "decoder_area_um2": sum(d.area_um2 for d in decoders.values()),
        "decoder_energy_per_symbol_pj": max((d.energy_per_symbol_pj for d in decoders.values()), default=0.0),
        "decoder_cost_source": "; ".join(sorted({d.source for d in decoders.values()})),
    }
