"""The synthesis and energy flow applied to macforge units (by name or UnitSpec).

- ``synth_unit``: generic-cell area (NAND2-eq) or FPGA resources + Fmax of a unit's Verilog.
- ``unit_stimulus``: per-cycle port values for an energy run, from uniformly random codes or
  from real data (SmolLM2 activations quantized to int8 × that layer's weights quantized to
  the unit's weight format — a real dot product, cycle after cycle).
- ``unit_energy``: switching energy per MAC of the synthesized netlist, in NAND2-toggle units
  and in pJ through one anchor (``PJ_ANCHOR``).

Systolic units (kind ``systolic``): area per PE three ways (array / PEs, one PE alone, that PE
split like a MAC unit) and energy per MAC of the whole array on back-to-back tiles.
"""

from __future__ import annotations

import hashlib
import os
import inspect
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np

from models.errors import MacforgeError
from models.units import UnitSpec, as_spec

from ._energy import netlist_activity
from ._fpga import FPGA_TARGETS, synth_fpga
from ._gate import synth_gates
from ._yosys import BUILD, cache_get, cache_key, cache_put, design_text

__all__ = ["synth_unit", "unit_stimulus", "unit_energy", "pj_per_toggle_unit", "PJ_ANCHOR", "TARGETS",
           "REAL_LAYER"]

TARGETS = ("generic", *FPGA_TARGETS)
PJ_ANCHOR = ("an 8×8-bit signed array multiplier (combinational) under uniform random operands "
             "costs 0.2 pJ per multiply: Horowitz, ISSCC 2014, 45 nm 'int8 mult' (PAPERS.md §6)")
HOROWITZ_INT8_MULT_PJ = 0.2
REAL_LAYER = "blk.15.ffn_down"  # SmolLM2-135M layer whose input activations and weights feed 'real' data
DOT_LEN_RANDOM = 128  # random data: the accumulator is cleared every 128 MACs (one dot product)


def _verilog_ports(spec: UnitSpec) -> tuple[str, list[dict[str, Any]]]:
    import rtl  # the RTL generator's public face; imported late: rtl imports this package

    return rtl.verilog(spec), rtl.ports(spec)


def synth_unit(unit: UnitSpec | str, target: str = "generic", *, variant: str = "default",
               nodsp: bool = False, pnr: bool = True) -> dict[str, Any]:
    """One synthesis record: ``unit``, ``target`` and the target's figures."""
    spec = as_spec(unit)
    if target not in TARGETS:
        raise MacforgeError(f"unknown synthesis target {target!r}; known: {', '.join(TARGETS)}")
    v, ports = _verilog_ports(spec)
    # MACs per cycle: the lanes of a PE, the PEs of a systolic array
    macs = spec.rows * spec.cols if spec.kind == "systolic" else spec.lanes
    if target == "generic":
        r = synth_gates(v, spec.name, variant)
        from ._components import component_areas  # builds RTL parts: imported late like rtl

        comps = component_areas(spec, variant) if spec.kind == "mac" else None
        rec = {"unit": spec.name, "target": target, "nand2_eq": r.nand2_eq, "components_nand2_eq": comps,
               "sequential_nand2_eq": r.sequential_nand2_eq, "cells": r.cells, "cells_by_type": r.cells_by_type,
               "variant": variant, "flow": r.flow, "tool": r.tool, "lanes": spec.lanes,
               "nand2_eq_per_mac": r.nand2_eq / macs}
        if spec.kind == "systolic":
            rec.update(_array_areas(spec, r.nand2_eq, variant))
        return rec
    f = synth_fpga(v, spec.name, ports, target, nodsp=nodsp, pnr=pnr)
    rec = {"unit": spec.name, "target": target, "device": f.device, "luts": f.luts, "ffs": f.ffs,
           "carry": f.carry, "dsp": f.dsp, "cells": f.cells, "fmax_mhz": f.fmax_mhz, "nodsp": nodsp,
           "seed": f.seed, "tool": f.tool, "lanes": spec.lanes}
    if spec.kind == "systolic":
        rec.update(pes=macs, luts_per_pe=f.luts / macs, ffs_per_pe=f.ffs / macs)
    return rec


def _array_areas(spec: UnitSpec, total: float, variant: str) -> dict[str, Any]:
    """Area per PE of a systolic array, three ways: the whole array / PEs (skew registers and
    drain control shared out); one interior PE synthesized alone (all pass-through registers);
    and that PE split into the parts of a MAC unit with the same datapath (decode, multiplier,
    accumulator, registers) plus what the array adds to it (operand pass-through registers and
    the drain multiplexer). ``array_overhead_nand2_eq`` = array - PEs × the PE alone: skew
    registers and drain control, less what flattening saves at the edges (the east column's
    activation and south row's weight pass-through registers drive nothing and are removed)."""
    from .._systolic import pe_spec, systolic_pe  # builds RTL parts: imported late like rtl
    from ._components import component_areas

    import rtl

    pes = spec.rows * spec.cols
    top = f"{spec.name}_array_pe"
    pe = synth_gates(rtl.verilog(systolic_pe(spec), name=top), top, variant)
    mac = component_areas(pe_spec(spec), variant)
    parts = {k: v for k, v in mac.items() if k != "total"}
    parts["pass_through_and_drain"] = pe.nand2_eq - mac["total"]
    return {"pes": pes, "nand2_eq_per_pe": total / pes, "pe_nand2_eq": pe.nand2_eq,
            "pe_sequential_nand2_eq": pe.sequential_nand2_eq, "pe_components_nand2_eq": parts,
            "array_overhead_nand2_eq": total - pes * pe.nand2_eq}


# ----------------------------------------------------------------------------- stimulus
def _pack(lanes_vals: np.ndarray, width: int) -> list[int]:
    """(T, lanes) ints -> T packed Python ints, lane i at bits [i·width, (i+1)·width)."""
    mask = (1 << width) - 1
    out = []
    for row in lanes_vals.tolist():
        v = 0
        for i, x in enumerate(row):
            v |= (int(x) & mask) << (i * width)
        out.append(v)
    return out


@lru_cache(maxsize=8)
def _real_operands(fmt_name: str, layer: str, n_tokens: int, act_format: str = "int8"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(activations (M, K) in ``act_format``, weight codes (N, K), zero points (N, K//128) or None)."""
    from models import realdata
    from models.formats import Scaling, get_format, quantize

    acts = realdata.real_activations(layer, n_tokens=n_tokens)
    afmt = get_format(act_format)
    a_q = quantize(acts, afmt, Scaling(granularity="tensor", method="absmax", scale_format="fp32"))
    a_int = afmt.decode(a_q.codes).astype(np.int64)
    w = realdata.smollm2_weights([layer])[layer]
    fmt = get_format(fmt_name)
    sc = fmt.default_scaling
    if sc is not None and sc.granularity == "group":
        sc = replace(sc, group_size=128)  # SmolLM2 weights sit on a Q4_1 grid at group 32 (REALDATA.md)
    q = quantize(w, fmt, sc)
    zp = None if q.zero_points is None else q.zero_points.reshape(w.shape[0], -1)
    return a_int, q.codes.reshape(w.shape), zp


def unit_stimulus(unit: UnitSpec | str, data: str = "random", n_macs: int = 2048, seed: int = 0
                  ) -> tuple[dict[str, list[int] | np.ndarray], int, str]:
    """(per-port values per cycle, number of MACs, description) for an energy run."""
    spec = as_spec(unit)
    if spec.kind not in ("mac", "dot", "systolic"):
        raise MacforgeError(f"energy runs cover mac, dot and systolic units, not {spec.kind} ({spec.name})")
    if data not in ("random", "real"):
        raise MacforgeError(f"data must be 'random' or 'real', not {data!r}")
    if spec.kind == "systolic":
        return _systolic_stimulus(spec, data, n_macs, seed)
    lanes = spec.lanes
    cycles = n_macs // lanes
    if cycles < 1:
        raise MacforgeError(f"n_macs={n_macs} is fewer than the unit's {lanes} lanes: nothing to measure")
    rng = np.random.default_rng(seed)
    dec = spec.decode
    if data == "random":
        w = rng.integers(0, 1 << dec.bits, (cycles, lanes))
        lo, hi = spec.act_range
        a = rng.integers(lo, hi + 1, (cycles, lanes))
        dot_len = DOT_LEN_RANDOM
        desc = f"uniform random weight codes and int8 activations, seed {seed}; clr every {dot_len} MACs"
        zs = None
        if dec.zp_mask is not None:  # one random zero point per group of 128 weights
            z_groups = rng.integers(0, dec.zp_max + 1, -(-cycles * lanes // 128))
            zs = z_groups[(np.arange(cycles) * lanes) // 128]
    else:
        a_int, codes, zp = _real_operands(spec.weight_format, REAL_LAYER, 256, spec.act_format)
        k = codes.shape[1]
        n_dots = -(-cycles * lanes // k)
        # dot product d: output row n = d·7 mod N with token m = d·3 mod M (spread over the layer)
        rows = [(d * 7) % codes.shape[0] for d in range(n_dots)]
        toks = [(d * 3) % a_int.shape[0] for d in range(n_dots)]
        wf = np.concatenate([codes[r] for r in rows])[: cycles * lanes]
        af = np.concatenate([a_int[t] for t in toks])[: cycles * lanes]
        w = wf.reshape(cycles, lanes)
        a = af.reshape(cycles, lanes)
        dot_len = k
        zs = None
        if zp is not None:
            zf = np.concatenate([np.repeat(zp[r], 128) for r in rows])[: cycles * lanes]
            zs = zf.reshape(cycles, lanes)[:, 0]
        desc = (f"SmolLM2-135M {REAL_LAYER}: input activations of 256 Wikipedia tokens quantized to int8 "
                f"(per-tensor absmax) × that layer's weights quantized to {spec.weight_format} "
                f"(group 128 where grouped); real dot products of length {k}")
    t = np.arange(cycles)
    clr = ((t * lanes) % dot_len < lanes).astype(np.int64)
    stim: dict[str, list[int] | np.ndarray] = {"en": np.ones(cycles, dtype=np.int64), "clr": clr}
    if lanes == 1:
        stim["w"] = w[:, 0]
        stim["a"] = a[:, 0]
    else:
        stim["w"] = _pack(w, dec.bits)
        stim["a"] = _pack(a, spec.act_bits)
    if dec.zp_mask is not None:
        stim["z"] = np.asarray(zs, dtype=np.int64)
    if spec.lut == "programmable":
        for p in ("lut_we", "lut_waddr", "lut_wdata"):
            stim[p] = np.zeros(cycles, dtype=np.int64)
    return stim, cycles * lanes, desc


def _systolic_stimulus(spec: UnitSpec, data: str, n_macs: int, seed: int
                       ) -> tuple[dict[str, list[int] | np.ndarray], int, str]:
    """Back-to-back tiles at the ``systolic_schedule`` period (each PE's share of the fill and
    drain cycles included): random tiles of K = 128, or real tiles of K = the layer's input
    width (rows: tokens, columns: output channels of the layer, z per column per k)."""
    from .._systolic import systolic_schedule

    R, C = spec.rows, spec.cols
    dec = spec.decode
    rng = np.random.default_rng(seed)
    if data == "random":
        k = DOT_LEN_RANDOM
        n_tiles = -(-n_macs // (R * C * k))
        lo, hi = spec.act_range
        a = rng.integers(lo, hi + 1, (n_tiles, k, R))
        w = rng.integers(0, 1 << dec.bits, (n_tiles, k, C))
        z = rng.integers(0, dec.zp_max + 1, (n_tiles, k, C)) if dec.zp_mask is not None else None
        desc = (f"uniform random weight codes and {spec.act_format} activations, seed {seed}; "
                f"{R}×{C}×{k} tiles back to back")
    else:
        a_int, codes, zp = _real_operands(spec.weight_format, REAL_LAYER, 256, spec.act_format)
        k = codes.shape[1]
        n_tiles = -(-n_macs // (R * C * k))
        toks = [[((t * R + i) * 3) % a_int.shape[0] for i in range(R)] for t in range(n_tiles)]
        outs = [[((t * C + j) * 7) % codes.shape[0] for j in range(C)] for t in range(n_tiles)]
        a = np.stack([a_int[tk].T for tk in toks])
        w = np.stack([codes[oc].T for oc in outs])
        z = None
        if zp is not None:
            z = np.stack([np.repeat(zp[oc], 128, axis=1)[:, :k].T for oc in outs])
        desc = (f"SmolLM2-135M {REAL_LAYER}: int8 activations of 256 Wikipedia tokens (rows) × that "
                f"layer's weights quantized to {spec.weight_format} (columns, group 128 where grouped); "
                f"{R}×{C}×{k} tiles back to back")
    period = systolic_schedule(R, C, k)
    cycles = n_tiles * period
    t_in = (np.arange(n_tiles)[:, None] * period + np.arange(k)[None, :]).reshape(-1)
    valid = np.zeros(cycles, dtype=np.int64)
    valid[t_in] = 1
    first = np.zeros(cycles, dtype=np.int64)
    first[np.arange(n_tiles) * period] = 1
    last = np.zeros(cycles, dtype=np.int64)
    last[np.arange(n_tiles) * period + k - 1] = 1

    def lanes(x: np.ndarray, n: int) -> np.ndarray:
        full = np.zeros((cycles, n), dtype=np.int64)
        full[t_in] = x.reshape(-1, n)
        return full

    stim: dict[str, list[int] | np.ndarray] = {
        "valid": valid, "first": first, "last": last,
        "a": _pack(lanes(a, R), spec.act_bits), "w": _pack(lanes(w, C), dec.bits)}
    if z is not None:
        stim["z"] = _pack(lanes(z, C), dec.zp_bits)
    return stim, n_tiles * R * C * k, desc


# ----------------------------------------------------------------------------- energy
_MULT8 = """module mult8(input signed [7:0] a, input signed [7:0] b, output signed [15:0] p);
  assign p = a * b;
endmodule
"""


def pj_per_toggle_unit(delay: str = "zero") -> float:
    """pJ per NAND2-output-toggle unit, from ``PJ_ANCHOR`` measured with the same flow."""
    g = synth_gates(_MULT8, "mult8")
    key = cache_key("pj-anchor-v2", g.netlist, delay)  # the netlist path carries the synthesis flow's key
    hit = cache_get("energy", key)
    if hit is not None:
        return float(hit["pj_per_unit"])
    rng = np.random.default_rng(12345)
    n = 4000
    ports = [{"name": "a", "direction": "in", "width": 8}, {"name": "b", "direction": "in", "width": 8},
             {"name": "p", "direction": "out", "width": 16}]
    stim = {"a": rng.integers(-128, 128, n), "b": rng.integers(-128, 128, n)}
    act = netlist_activity(BUILD.parent / g.netlist, "mult8", ports, stim, ops=n, warmup=1, delay=delay,
                           workdir=BUILD / "energy" / f"anchor-{delay}")
    pj = HOROWITZ_INT8_MULT_PJ / act.energy_per_op_nand2
    cache_put("energy", key, {"pj_per_unit": pj, "mult8_energy_nand2": act.energy_per_op_nand2})
    return pj


def _stimulus_digest(stim: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(stim):
        h.update(name.encode())
        try:
            h.update(np.ascontiguousarray(np.asarray(stim[name], dtype=np.int64)).tobytes())
        except OverflowError:  # packed-lane ports wider than 64 bits are lists of Python ints
            h.update(",".join(map(str, stim[name])).encode())
    return h.hexdigest()[:20]


@lru_cache(maxsize=1)
def _energy_code_digest() -> str:
    from . import _cells, _energy

    return hashlib.sha256("".join(inspect.getsource(m) for m in (_cells, _energy)).encode()).hexdigest()[:20]


def unit_energy(unit: UnitSpec | str, data: str = "random", *, n_macs: int = 2048, seed: int = 0,
                delay: str = "zero", variant: str = "default") -> dict[str, Any]:
    """Energy record of a unit: toggles and energy per MAC (NAND2-toggle units and pJ)."""
    spec = as_spec(unit)
    stim, ops, desc = unit_stimulus(spec, data, n_macs, seed)
    v, ports = _verilog_ports(spec)
    g = synth_gates(v, spec.name, variant)
    # keyed on what is simulated (the stimulus itself) and on the energy flow's own code, so a
    # change of either re-measures (a fixed tag once let stale records survive a stimulus change)
    key = cache_key("energy-v2", design_text(v), g.netlist, data, str(n_macs), str(seed), delay, desc,
                    _stimulus_digest(stim), _energy_code_digest())
    hit = cache_get("energy", key)
    if hit is None:
        act = netlist_activity(BUILD.parent / g.netlist, spec.name, ports, stim, ops=ops, delay=delay,
                               workdir=BUILD / "energy" / f"{spec.name}-{data}-{key}-{os.getpid()}")
        hit = act.to_dict()
        cache_put("energy", key, hit)
    pj = pj_per_toggle_unit(delay)
    rec = {"unit": spec.name, "data": data, "macs": ops, "toggles_per_mac": hit["toggles_per_op"],
           "energy_per_mac_nand2": hit["energy_per_op_nand2"], "energy_per_mac_pj": hit["energy_per_op_nand2"] * pj,
           "clock_energy_per_mac_nand2": hit["clock_energy_per_op"], "by_cell_type": hit["by_cell_type"],
           "delay_model": delay, "stimulus": desc, "pj_anchor": PJ_ANCHOR, "nand2_eq": g.nand2_eq,
           "variant": variant}
    if spec.kind == "systolic":
        # a PE's energy per MAC inside the array: the whole array's energy over its MACs, so
        # each MAC carries its share of the fill / drain cycles and of the skew registers
        pes = spec.rows * spec.cols
        rec.update(pes=pes, mac_utilization=ops / (pes * len(stim["valid"])))
    return rec
