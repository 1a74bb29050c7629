"""The synthesis and energy flow applied to macforge units (by name or UnitSpec).

- ``synth_unit``: generic-cell area (NAND2-eq) or FPGA resources + Fmax of a unit's Verilog.
- ``unit_stimulus``: per-cycle port values for an energy run, from uniformly random codes or
  from real data (``real_operand_stream``: the testbench's definition, SmolLM2 activations ×
  MiniLM weights quantized to the unit's formats, cleared every 576 MACs).
- ``unit_energy``: switching energy per MAC of the synthesized netlist, in NAND2-toggle units
  and in pJ through one anchor (``PJ_ANCHOR``; a Liberty with units also gives pJ directly).
- ``cell_library``: the generic library or a user's Liberty file (``--liberty``).

Systolic units (kind ``systolic``): area per PE three ways (array / PEs, one PE alone, that PE
split like a MAC unit) and energy per MAC of the whole array on back-to-back tiles.
"""

from __future__ import annotations

import hashlib
import os
import inspect
import math
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import MacforgeError
from models.units import UnitSpec, as_spec

from models.cost import HOROWITZ_45NM_PJ

from ._energy import netlist_activity
from ._fpga import FPGA_TARGETS, synth_fpga
from ._gate import synth_gates
from ._liberty import CellLibrary, load_liberty
from ._yosys import BUILD, cache_get, cache_key, cache_put, design_text

__all__ = ["synth_unit", "unit_stimulus", "unit_energy", "pj_per_toggle_unit", "PJ_ANCHOR", "TARGETS",
           "REAL_LAYER", "REAL_DOT_LEN", "real_operand_stream", "cell_library", "MULT8_VERILOG",
           "CELL_ENERGY_VARIANTS", "energy_variant_library"]

TARGETS = ("generic", *FPGA_TARGETS)
HOROWITZ_INT8_MULT_PJ = HOROWITZ_45NM_PJ["int8_mult"]  # the one table of Horowitz's figures (models.cost)
PJ_ANCHOR = (f"an 8×8-bit signed array multiplier (combinational) under uniform random operands "
             f"costs {HOROWITZ_INT8_MULT_PJ} pJ per multiply: Horowitz, ISSCC 2014, 45 nm 'int8 mult' (PAPERS.md §6)")
REAL_LAYER = "blk.29.ffn_down"  # SmolLM2-135M layer whose input activations feed 'real' data (realdata.int8_stream)
DOT_LEN_RANDOM = 128  # random data: the accumulator is cleared every 128 MACs (one dot product)


def _verilog_ports(spec: UnitSpec) -> tuple[str, list[dict[str, Any]]]:
    import rtl  # the RTL generator's public face; imported late: rtl imports this package

    return rtl.verilog(spec), rtl.ports(spec)


_LIBS: dict[tuple[str, float], CellLibrary] = {}


def cell_library(liberty: str | None = None) -> CellLibrary:
    """The generic library (``None``) or a user's Liberty file, loaded once per path and mtime."""
    from ._cells import generic_library

    if liberty is None:
        return generic_library()
    from pathlib import Path

    p = Path(liberty)
    if not p.is_file():
        raise MacforgeError(f"Liberty file {liberty} does not exist")
    key = (str(p.resolve()), p.stat().st_mtime)
    if key not in _LIBS:
        _LIBS[key] = load_liberty(p)
    return _LIBS[key]


# How the combinational cells' internal energy per output toggle is weighed: the library's own
# figures (logical effort for the generic library) and the sensitivity variants a report sweeps.
# Loads (the driven pins' capacitance), the flip-flops' data and clock energies and the NAND2-toggle
# unit itself stay the library's in every variant except ``toggle_count``.
CELL_ENERGY_VARIANTS = {
    "library": "the library's internal energy per output toggle (generic: logical effort)",
    "internal_x0.5": "every combinational cell's internal energy × 0.5",
    "internal_x2": "every combinational cell's internal energy × 2",
    "load_only": "combinational internal energy 0: a toggle costs only the pin capacitance it drives",
    "uniform_internal": "every combinational cell's internal energy = the NAND2's (uniform per toggle), "
                        "plus the pin capacitance it drives",
    "toggle_count": "every net toggle costs 1 NAND2 toggle, capacitance ignored (flip-flop clock kept)",
}


def energy_variant_library(lib: CellLibrary, variant: str) -> tuple[CellLibrary, float]:
    """(``lib`` re-weighed as ``CELL_ENERGY_VARIANTS[variant]``, factor to ``lib``'s NAND2 toggles).

    ``netlist_activity`` reports energy in NAND2 toggles of the library it weighs with; a variant
    that changes the NAND2's own energy changes that unit, so its results are multiplied by the
    factor (the variant's NAND2 toggle / ``lib``'s) to stay in ``lib``'s unit: the clock energy
    and the loads mean the same physical energy in every variant."""
    if variant not in CELL_ENERGY_VARIANTS:
        raise MacforgeError(f"unknown cell-energy variant {variant!r}; known: {', '.join(CELL_ENERGY_VARIANTS)}")
    if variant == "library":
        return lib, 1.0
    ref = lib.nand2_toggle_energy
    nand2_internal = lib.cells[lib.nand2].toggle_energy
    cells = {}
    for name, c in lib.cells.items():
        if variant == "toggle_count":
            e = ref
        elif c.is_ff:
            e = c.toggle_energy
        elif variant == "load_only":
            e = 0.0
        elif variant == "uniform_internal":
            e = nand2_internal
        else:
            e = c.toggle_energy * {"internal_x0.5": 0.5, "internal_x2": 2.0}[variant]
        cells[name] = replace(c, toggle_energy=e)
    new = replace(lib, cells=cells, name=f"{lib.name}[{variant}]",
                  energy_per_cap=0.0 if variant == "toggle_count" else lib.energy_per_cap)
    return new, new.nand2_toggle_energy / ref


def synth_unit(unit: UnitSpec | str, target: str = "generic", *, variant: str = "default",
               nodsp: bool = False, pnr: bool = True, liberty: str | None = None,
               target_delay_ns: float | None = None, seeds: int = 1) -> dict[str, Any]:
    """One synthesis record: ``unit``, ``target`` and the target's figures.

    Generic target: area (NAND2-eq of the library: the generic one or ``liberty``), the
    per-component split of a MAC, and the mapped netlist's timing; with ``target_delay_ns`` the
    smallest mapping that meets that delay (``meets_target`` says whether one did). FPGA
    targets: resources and Fmax, over ``seeds`` nextpnr seeds (median, min, max)."""
    spec = as_spec(unit)
    if target not in TARGETS:
        raise MacforgeError(f"unknown synthesis target {target!r}; known: {', '.join(TARGETS)}")
    v, ports = _verilog_ports(spec)
    # MACs per cycle: the lanes of a PE, the PEs of a systolic array
    macs = spec.rows * spec.cols if spec.kind == "systolic" else spec.lanes
    if target == "generic":
        lib = cell_library(liberty)
        library = None if liberty is None else lib
        r = synth_gates(v, spec.name, variant, library=library, target_delay_ns=target_delay_ns)
        from ._components import component_areas  # builds RTL parts: imported late like rtl

        comps = component_areas(spec, variant, library=library) if spec.kind == "mac" and target_delay_ns is None \
            else None
        rec = {"unit": spec.name, "target": target, "nand2_eq": r.nand2_eq, "components_nand2_eq": comps,
               "sequential_nand2_eq": r.sequential_nand2_eq, "cells": r.cells, "cells_by_type": r.cells_by_type,
               "variant": variant, "flow": r.flow, "tool": r.tool, "lanes": spec.lanes,
               "nand2_eq_per_mac": r.nand2_eq / macs, "library": lib.name, "library_source": lib.source,
               "nand2_area": lib.nand2_area, "critical_path_ns": r.timing.get("critical_ns"),
               "critical_path_gates": r.timing.get("gates"), "critical_path_fo4": r.timing.get("fo4"),
               "fmax_mhz": r.timing.get("fmax_mhz"), "timing_corner": lib.corner, "mapping": r.mapping,
               "target_delay_ns": target_delay_ns, "meets_target": r.meets_target, "mappings_tried": r.tried}
        if spec.kind == "systolic":
            rec.update(_array_areas(spec, r.nand2_eq, variant))
        return rec
    if liberty is not None or target_delay_ns is not None:
        raise MacforgeError(f"--liberty and --target-delay apply to the generic target, not {target}")
    if seeds > 1:
        from ._fpga import SEED

        runs = [synth_fpga(v, spec.name, ports, target, nodsp=nodsp, pnr=pnr, seed=SEED + k) for k in range(seeds)]
        f = runs[0]
        fm = sorted(x.fmax_mhz for x in runs if x.fmax_mhz is not None)
        rec = {"unit": spec.name, "target": target, "device": f.device, "luts": f.luts, "ffs": f.ffs,
               "carry": f.carry, "dsp": f.dsp, "cells": f.cells, "nodsp": nodsp, "tool": f.tool, "lanes": spec.lanes,
               "seeds": [x.seed for x in runs], "fmax_mhz": float(np.median(fm)) if fm else None,
               "fmax_mhz_min": fm[0] if fm else None, "fmax_mhz_max": fm[-1] if fm else None,
               "fmax_mhz_by_seed": [x.fmax_mhz for x in runs]}
        if spec.kind == "systolic":
            rec.update(pes=macs, luts_per_pe=f.luts / macs, ffs_per_pe=f.ffs / macs)
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


REAL_DOT_LEN = 576  # real data: clr every 576 MACs, a row of a SmolLM2 linear (d_model), as the testbench


@lru_cache(maxsize=16)
def real_operand_stream(spec: UnitSpec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(activations, weight codes, zero points or None) of the real-data stream, ``n`` elements.

    The one definition of "real data" shared with the testbench (``testbench.load_real_data``
    calls the same two ``models.realdata`` functions with the same arguments): SmolLM2-135M
    ``blk.29.ffn_down`` input activations on 256-token Wikipedia windows 0, 1, ... quantized per
    tensor to the unit's activation format (``realdata.int8_stream``), against MiniLM fp32
    weights quantized to the unit's weight format, read from an offset drawn from ``seed``
    (``realdata.weight_codes_stream``)."""
    from models import realdata

    acts, _ = realdata.int8_stream(n, seed=0, act_format=spec.act_format)
    cs = realdata.weight_codes_stream(spec.weight_format, n, seed=seed)
    return acts.astype(np.int64), cs.codes.astype(np.int64), (None if cs.zero_points is None
                                                            else cs.zero_points.astype(np.int64))


def _real_desc(spec: UnitSpec, seed: int) -> str:
    return (f"real data: SmolLM2-135M {REAL_LAYER} input activations (256-token Wikipedia windows from 0, "
            f"per-tensor {spec.act_format}) × MiniLM weights quantized to {spec.weight_format} "
            f"(stream offset seed {seed}); clr every {REAL_DOT_LEN} MACs")


def exported_operand_stream(spec: UnitSpec, path: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                                                        int, str]:
    """(activations, weight codes, zero points or None, dot length, description) of ``n`` MACs
    from a file ``macforge quant --export-streams`` wrote: what that method really sends to
    the MAC. The file's weight format must be the unit's and its activations must fit the
    unit's activation range."""
    from models import realdata

    ex = realdata.read_exported_streams(path)
    if ex.weight_format != spec.weight_format:
        raise MacforgeError(f"{path}: exported weights are {ex.weight_format}, unit {spec.name} takes "
                            f"{spec.weight_format}")
    lo, hi = spec.act_range
    if ex.act_codes.min() < lo or ex.act_codes.max() > hi:
        raise MacforgeError(f"{path}: exported activations ({ex.act_format}, {ex.act_codes.min()}..{ex.act_codes.max()}) "
                            f"do not fit unit {spec.name}'s {spec.act_format} range {lo}..{hi}")
    k = ex.act_codes.shape[1]
    a, w, z = realdata.load_operand_stream(ex, n)  # the file read above, not read again
    desc = (f"exported streams {Path(path).name} (method {ex.method or '?'}, layer {ex.layer or '?'}: "
            f"{ex.act_codes.shape[0]} tokens x {ex.weight_codes.shape[0]} rows, K = {k}, {ex.act_format} "
            f"activations x {ex.weight_format} weights); clr every {k} MACs")
    return a, w, z, k, desc


def unit_stimulus(unit: UnitSpec | str, data: str = "random", n_macs: int = 2048, seed: int = 0,
                  streams: str | None = None) -> tuple[dict[str, list[int] | np.ndarray], int, str]:
    """(per-port values per cycle, number of MACs, description) for an energy run; ``streams``
    (with ``data="real"``): the operands from an exported-streams file instead of the shared
    real-data stream (``real_operand_stream``)."""
    spec = as_spec(unit)
    if spec.kind not in ("mac", "dot", "systolic"):
        raise MacforgeError(f"energy runs cover mac, dot and systolic units, not {spec.kind} ({spec.name})")
    if data not in ("random", "real"):
        raise MacforgeError(f"data must be 'random' or 'real', not {data!r}")
    if streams is not None and (data != "real" or spec.kind == "systolic"):
        raise MacforgeError("exported streams are real data for a mac or dot unit (--data real; not a systolic array)")
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
        if streams is not None:
            a_s, w_s, z_s, dot_len, desc = exported_operand_stream(spec, streams, cycles * lanes)
            if dot_len % lanes:
                raise MacforgeError(f"{streams}: K = {dot_len} is not a multiple of unit {spec.name}'s {lanes} lanes")
        else:
            a_s, w_s, z_s = real_operand_stream(spec, cycles * lanes, seed)
            dot_len = REAL_DOT_LEN
            desc = _real_desc(spec, seed)
        if dec.zp_mask is not None and z_s is None:
            raise MacforgeError(f"unit {spec.name} takes a zero point per group; the real-data stream has none")
        w = w_s.reshape(cycles, lanes)
        a = a_s.reshape(cycles, lanes)
        zs = None if z_s is None else z_s.reshape(cycles, lanes)[:, 0]  # the first lane's, as the testbench
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
        k = REAL_DOT_LEN
        n_tiles = -(-n_macs // (R * C * k))
        a_s, _, _ = real_operand_stream(spec, n_tiles * R * k, seed)
        _, w_s, z_s = real_operand_stream(spec, n_tiles * C * k, seed)
        a = a_s[: n_tiles * R * k].reshape(n_tiles, R, k).transpose(0, 2, 1)  # rows: consecutive dot products
        w = w_s[: n_tiles * C * k].reshape(n_tiles, C, k).transpose(0, 2, 1)
        z = None if z_s is None else z_s[: n_tiles * C * k].reshape(n_tiles, C, k).transpose(0, 2, 1)
        desc = _real_desc(spec, seed) + f"; {R}×{C}×{k} tiles back to back"
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


MULT8_VERILOG = _MULT8


def pj_per_toggle_unit(delay: str = "zero", liberty: str | None = None, cell_energy: str = "library") -> float:
    """pJ per NAND2-output-toggle unit, from ``PJ_ANCHOR`` measured with the same flow (and the
    same ``cell_energy`` weighing: the anchor multiplier is 0.2 pJ under every variant)."""
    library = None if liberty is None else cell_library(liberty)
    wlib, factor = energy_variant_library(cell_library(liberty), cell_energy)
    g = synth_gates(_MULT8, "mult8", library=library)
    # the netlist path carries the synthesis flow's key; the energy code digest the energy model
    # (the variant joins the key only when it is not the library's, so library records stay valid)
    key = cache_key("pj-anchor-v3", g.netlist, delay, _energy_code_digest(),
                    *([] if cell_energy == "library" else [f"cell-energy {cell_energy}"]))
    hit = cache_get("energy", key)
    if hit is not None:
        return float(hit["pj_per_unit"])
    rng = np.random.default_rng(12345)
    n = 4000
    ports = [{"name": "a", "direction": "in", "width": 8}, {"name": "b", "direction": "in", "width": 8},
             {"name": "p", "direction": "out", "width": 16}]
    stim = {"a": rng.integers(-128, 128, n), "b": rng.integers(-128, 128, n)}
    act = netlist_activity(BUILD.parent / g.netlist, "mult8", ports, stim, ops=n, warmup=1, delay=delay,
                           workdir=BUILD / "energy" / f"anchor-{delay}-{key}-{os.getpid()}",
                           library=library if cell_energy == "library" else wlib)
    pj = HOROWITZ_INT8_MULT_PJ / (act.energy_per_op_nand2 * factor)
    cache_put("energy", key, {"pj_per_unit": pj, "mult8_energy_nand2": act.energy_per_op_nand2 * factor})
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
    from . import _cells, _energy, _liberty

    return hashlib.sha256("".join(inspect.getsource(m) for m in (_cells, _energy, _liberty)).encode()).hexdigest()[:20]


def unit_energy(unit: UnitSpec | str, data: str = "random", *, n_macs: int = 2048, seed: int = 0,
                delay: str = "zero", variant: str = "default", liberty: str | None = None,
                clock_energy: float | None = None, cell_energy: str = "library",
                streams: str | None = None) -> dict[str, Any]:
    """Energy record of a unit: toggles and energy per MAC (NAND2-toggle units and pJ).

    ``liberty``: weigh (and synthesize) with a user's Liberty library; ``clock_energy``: the
    flip-flop clock-pin energy per cycle in NAND2 toggles instead of the library's (the
    simulation is the same: only the clock part, ``dff_cycles_per_mac`` × it, changes);
    ``cell_energy``: weigh the combinational cells' internal energies as one of
    ``CELL_ENERGY_VARIANTS`` (a sensitivity; energies stay in the library's NAND2 toggles, pJ
    come from the anchor weighed the same way); ``streams`` (``data="real"``): the operands a
    quantization method exported (``macforge quant --export-streams``) instead of the shared
    real-data stream.

    A ``huffman`` decoder's unit of work is one decoded symbol: ``rtl.huffman_energy`` runs it
    (``n_macs`` symbols at full rate, generic library), its record under the same keys."""
    spec = as_spec(unit)
    if clock_energy is not None and not (math.isfinite(float(clock_energy)) and clock_energy >= 0):
        # before any synthesis or simulation (NaN and infinity too)
        raise MacforgeError(f"clock energy must be >= 0 NAND2 toggles per flip-flop per cycle (finite), "
                            f"not {clock_energy}")
    if spec.kind == "huffman":
        if (liberty is not None or clock_energy is not None or variant != "default" or cell_energy != "library"
                or streams is not None):
            raise MacforgeError(f"{spec.name}: a huffman decoder's energy is measured with the generic library "
                                f"and default synthesis only (no --liberty, clock energy, cell-energy or synthesis "
                                f"variant, no exported streams)")
        from .._huffman import huffman_energy

        return huffman_energy(spec, data, n_symbols=n_macs, seed=seed, delay=delay)
    stim, ops, desc = unit_stimulus(spec, data, n_macs, seed, streams)
    v, ports = _verilog_ports(spec)
    lib = cell_library(liberty)
    library = None if liberty is None else lib
    wlib, factor = energy_variant_library(lib, cell_energy)  # checks the name first
    g = synth_gates(v, spec.name, variant, library=library)
    # keyed on what is simulated (the stimulus itself) and on the energy flow's own code, so a
    # change of either re-measures (a fixed tag once let stale records survive a stimulus change);
    # an exported stream does not depend on the seed, so its records do not either
    key = cache_key("energy-v3", design_text(v), g.netlist, data, str(n_macs), str(seed) if streams is None else "-",
                    delay, desc,
                    _stimulus_digest(stim), _energy_code_digest(), lib.text if library else "",
                    *([] if cell_energy == "library" else [f"cell-energy {cell_energy}"]))
    hit = cache_get("energy", key)
    if hit is None:
        act = netlist_activity(BUILD.parent / g.netlist, spec.name, ports, stim, ops=ops, delay=delay,
                               workdir=BUILD / "energy" / f"{spec.name}-{data}-{key}",
                               library=library if cell_energy == "library" else wlib)
        hit = act.to_dict()
        if factor != 1.0:  # back to the library's NAND2 toggles (see energy_variant_library)
            for k in ("energy_nand2", "energy_per_op_nand2", "clock_energy_per_op"):
                hit[k] *= factor
            hit["by_cell_type"] = {k: e * factor for k, e in hit["by_cell_type"].items()}
        cache_put("energy", key, hit)
    pj = pj_per_toggle_unit(delay, liberty, cell_energy)
    data_e = hit["energy_per_op_nand2"] - hit["clock_energy_per_op"]
    lib_clock = hit["clock_energy_per_op"] / hit["dff_cycles_per_op"] if hit["dff_cycles_per_op"] else 0.0
    ck = lib_clock if clock_energy is None else float(clock_energy)
    total = data_e + ck * hit["dff_cycles_per_op"]
    rec = {"unit": spec.name, "data": data, "macs": ops, "toggles_per_mac": hit["toggles_per_op"],
           "energy_per_mac_nand2": total, "energy_per_mac_pj": total * pj,
           "data_energy_per_mac_nand2": data_e, "clock_energy_per_mac_nand2": ck * hit["dff_cycles_per_op"],
           "dff_cycles_per_mac": hit["dff_cycles_per_op"], "dff_clock_energy_nand2": ck,
           "by_cell_type": hit["by_cell_type"], "delay_model": delay, "stimulus": desc, "pj_anchor": PJ_ANCHOR,
           "pj_per_nand2_toggle": pj, "nand2_eq": g.nand2_eq, "variant": variant, "library": lib.name,
           "library_source": lib.source, "cell_energy": cell_energy}
    if lib.pj_per_energy_unit is not None:  # a Liberty with units: pJ straight from its tables too
        rec["energy_per_mac_pj_liberty"] = total * lib.nand2_toggle_energy * lib.pj_per_energy_unit
    if spec.kind == "systolic":
        # a PE's energy per MAC inside the array: the whole array's energy over its MACs, so
        # each MAC carries its share of the fill / drain cycles and of the skew registers
        pes = spec.rows * spec.cols
        rec.update(pes=pes, mac_utilization=ops / (pes * len(stim["valid"])))
    return rec
