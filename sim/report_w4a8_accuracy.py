"""Report section ``w4a8_accuracy``: what each format and method costs SmolLM2-135M, joined with
what its MAC unit costs in silicon -> ``reports/w4a8_accuracy.{md,csv}`` + two PNGs.

Every number comes from :func:`sim.accuracy.run_quant` (cached by configuration under
build/cache/quant, so ``make report`` recomputes only what is missing and an interrupted run
keeps every finished configuration), :func:`sim.accel.pe_cost` (the fitted cost model of
models/cost.py) and :func:`sim.accel.evaluate` (J/token of the shipped accelerator specs).

The evaluation set is smaller than ``macforge quant``'s default (8 × 512): :data:`EVAL`
(8 windows of 256 tokens = 2048 scored positions), and calibrated methods use :data:`CALIB`
tokens; both are stated in the report.
"""

from __future__ import annotations

import io
import math
import os
import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from sim.accuracy import QuantConfig
from sim.accuracy._run import DEFAULT_WORKERS, RUN_BLAS_THREADS, cached_result, run_quant

__all__ = ["w4a8_accuracy_section", "report_configs", "EVAL", "CALIB", "warm_cache"]

Files = dict[str, bytes]

#: evaluation windows of every report row (8 × 256 tokens: SLAC's 256-token calibration then
#: differs from AQAS's 512-token default)
EVAL: dict[str, Any] = {"windows": 8, "window": 256}
#: calibration budget of the calibrated methods (4 × 512 wiki tokens; SLAC: 8 × 256)
CALIB: dict[str, Any] = {"calib_tokens": 2048}
#: calibration budget of the rows whose weights are rounded on a Hessian (GPTQ, decoupleQ):
#: 2048 tokens leave GPTQ over-fitted to its calibration text (the layer check of
#: sim.accuracy._gptq_check, reported), so these rows take more
HESSIAN_CALIB: dict[str, Any] = {"calib_tokens": 8192}
W4 = ("int4_asym", "dint4_asym", "int4", "dint4_sym")
W4A8_METHODS = ("rtn", "smoothquant", "aqas", "slac", "gptq", "aqas+gptq")
METHOD_LABEL = {"rtn": "RTN", "smoothquant": "SmoothQuant", "aqas": "AQAS", "slac": "AQAS+SLAC",
                "gptq": "GPTQ", "aqas+gptq": "AQAS+GPTQ", "nupes": "NUPES search",
                "decoupleq": "decoupleQ", "fisher": "RTN, Fisher bits"}
#: weight format -> the models.units MAC (× int8 activations) that computes it
UNITS = {"int8": "mac_int8xint8", "int4": "mac_int4xint8", "dint4_asym": "mac_dint4_asym_xint8",
         "dint4_sym": "mac_dint4_sym_xint8", "nf4": "mac_lut4c_nf4xint8",
         "fp4_e2m1": "mac_lut4c_fp4_e2m1xint8",
         "crd4_normal_absmax64": "mac_lut4c_crd4_normal_absmax64xint8",
         "fp8_e4m3": "mac_fp8_e4m3xint8", "nupes4_a0.5": "mac_lut4xint8"}
#: accelerator specs (examples/arch) whose PE computes the format: J/token for SmolLM2 decode
ARCHS = {"int8": "w8a8_int8", "dint4_sym": "w4a8_dint", "nf4": "w4a8_lut4"}
FISHER_MEANS = (3.0, 3.5, 4.0)
#: calibration budgets of the GPTQ budget table
BUDGETS = (2048, 8192)
UNIFORM_BITS = (3, 4, 5, 6)


@dataclass(frozen=True)
class Row:
    table: str
    label: str
    qc: QuantConfig


def _qc(**kw: Any) -> QuantConfig:
    base = dict(EVAL)
    m = kw.get("method", "rtn")
    if m != "rtn" and m != "nupes" or kw.get("act_calibration") == "static":
        base.update(CALIB)
    if m.endswith("gptq") or m == "decoupleq":
        base.update(HESSIAN_CALIB)
    base.update(kw)
    return QuantConfig(**base)


def report_configs() -> list[Row]:
    """Every row of the report, in the order the cache is warmed (cheap and central first)."""
    rows = [Row("main", "FP (reference)", _qc())]
    for w in W4:
        rows.append(Row("main", f"W4A8 {w} RTN", _qc(weights=w, group=64, acts="int8")))
    rows.append(Row("main", "W8A8 INT8 per-channel", _qc(weights="int8", group="channel",
                                                         acts="int8")))
    for b in UNIFORM_BITS:
        label = "W4A16 int4 RTN" if b == 4 else f"W{b}A16 int{b} uniform"
        rows.append(Row("main" if b == 4 else "fisher", label, _qc(weights=f"int{b}", group=64)))
    for mb in FISHER_MEANS:
        rows.append(Row("fisher", f"Fisher allocation, mean {mb:g} bits",
                        _qc(weights="int4", group=64, allocate="fisher", mean_bits=mb)))
    for w in W4:
        if w != "int4":
            rows.append(Row("main", f"W4A16 {w} RTN", _qc(weights=w, group=64)))
    for w in W4:
        rows.append(Row("main", f"W4A8 {w} AQAS", _qc(weights=w, group=64, acts="int8",
                                                      method="aqas")))
    for name, grp in (("nf4", None), ("crd4_normal_absmax64", None), ("mxfp4", None),
                      ("nvfp4", None), ("fp4_e2m1", 64)):
        rows.append(Row("lut", f"W4A16 {name}", _qc(weights=name, group=grp)))
    rows.append(Row("lut", "W4A16 nupes4 (exponent searched per layer)",
                    _qc(weights="nupes4_a0.5", group=64, method="nupes")))
    for name, grp in (("nf4", None), ("crd4_normal_absmax64", None), ("fp4_e2m1", 64),
                      ("fp8_e4m3", 64)):
        rows.append(Row("pareto", f"W{8 if name.startswith('fp8') else 4}A8 {name} RTN",
                        _qc(weights=name, group=grp, acts="int8")))
    for m in ("aqas+gptq", "gptq", "slac", "smoothquant"):
        for w in W4:
            rows.append(Row("main", f"W4A8 {w} {METHOD_LABEL[m]}",
                            _qc(weights=w, group=64, acts="int8", method=m)))
    # the same GPTQ rows at the other calibration budget (the under-calibration evidence)
    rows += [Row("budget", f"W4A16 int4 g64 GPTQ, {n} calibration tokens",
                 _qc(weights="int4", group=64, method="gptq", calib_tokens=n))
             for n in BUDGETS]
    rows += [Row("budget", f"W4A8 {w} AQAS+GPTQ, {n} calibration tokens",
                 _qc(weights=w, group=64, acts="int8", method="aqas+gptq", calib_tokens=n))
             for w in ("int4_asym", "dint4_asym") for n in BUDGETS]
    rows += [Row("low", "W4A16 int4 g64 GPTQ", _qc(weights="int4", group=64, method="gptq")),
             Row("low", "W2A16 int2 g64 RTN", _qc(weights="int2", group=64)),
             Row("low", "W2A16 int2 g64 GPTQ", _qc(weights="int2", group=64, method="gptq")),
             Row("low", "W2A16 decoupleq_int2 g64 (decoupleQ)",
                 _qc(weights="decoupleq_int2", group=64, method="decoupleq")),
             Row("low", "W3A16 int3 g64 RTN", _qc(weights="int3", group=64)),
             Row("low", "W3A16 int3 g64 GPTQ", _qc(weights="int3", group=64, method="gptq")),
             Row("low", "W3A16 decoupleq_int3 g64 (decoupleQ)",
                 _qc(weights="decoupleq_int3", group=64, method="decoupleq"))]
    return rows


def warm_cache(rows: Iterable[Row] | None = None, progress: bool = False,
               log: Callable[[str], None] | None = None, tokens: bool = False,
               only: str | None = None, workers: int = 1) -> None:
    """Run every configuration not yet cached, in order (each result is cached as it ends).

    ``tokens``: also re-run finished configurations of a bootstrap pair whose per-token NLL /
    KL were not kept (cached before they were); ``only``: rows whose label
    contains this text; ``workers``: threads per run (``run_quant``; the results do not
    depend on it)."""
    from sim.accuracy._run import token_stats

    in_pairs = {n for pair in _ci_pairs() for n in pair}
    for r in rows if rows is not None else report_configs():
        if only is not None and only not in r.label:
            continue
        have = cached_result(r.qc)
        if have is None or (tokens and r.label in in_pairs and token_stats(r.qc) is None):
            doc = run_quant(r.qc, progress=progress, use_cache=False, workers=workers)
            if have is not None and log is not None and doc["perplexity"] != have["perplexity"]:
                log(f"{r.label}: re-run PPL {doc['perplexity']!r} differs from the cached "
                    f"{have['perplexity']!r}")
            if log is not None:
                log(f"{r.label}: PPL {doc['perplexity']:.3f} ({sum(doc['timing_s'].values()):.0f} s)")


# ------------------------------------------------------------------------------- formatting
def _f(v: Any, nd: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _underflow_share(doc: dict[str, Any]) -> float | None:
    mse = [r["weight_mse"] for r in doc["layers"] if "weight_mse" in r]
    und = [r["weight_underflow_mse"] for r in doc["layers"] if "weight_underflow_mse" in r]
    return float(np.sum(und) / np.sum(mse)) if mse and np.sum(mse) > 0 else None


def _interp_bits(kl: float, bits: list[float], kls: list[float]) -> float | None:
    """The uniform-allocation bits that reach ``kl`` (log KL linear between measured points)."""
    order = np.argsort(bits)
    b = np.asarray(bits)[order]
    lk = np.log(np.asarray(kls)[order])
    if not (np.all(np.diff(lk) < 0) and lk[-1] <= math.log(kl) <= lk[0]):
        return None
    return float(np.interp(-math.log(kl), -lk, b))


def _pareto(points: list[tuple[float, float]]) -> list[bool]:
    """True where no other point is at least as good on both axes and better on one."""
    out = []
    for i, (x, y) in enumerate(points):
        out.append(not any((x2 <= x and y2 <= y) and (x2 < x or y2 < y)
                           for j, (x2, y2) in enumerate(points) if j != i))
    return out


# ------------------------------------------------------------------------------- the section
def w4a8_accuracy_section(seed: int = 0, run_missing: bool = True, progress: bool = False,
                          workers: int = DEFAULT_WORKERS) -> Files:
    """``reports/w4a8_accuracy.md`` + ``.csv`` + ``w4a8_accuracy_pareto.png`` +
    ``w4a8_accuracy_underflow.png``.

    ``run_missing=False`` writes only the cached configurations and lists the others as not
    run (for a partial report); ``make report`` computes them. ``seed`` is the runs' seed
    (part of each configuration's cache key only where it matters: calibration sampling).
    ``workers``: threads per missing run (``run_quant``; the results do not depend on it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report_configs()
    if seed:
        rows = [Row(r.table, r.label, r.qc.with_(seed=seed)) for r in rows]
    docs: dict[str, dict[str, Any] | None] = {}
    for r in rows:
        docs[r.label] = (run_quant(r.qc, progress=progress, workers=workers) if run_missing
                         else cached_result(r.qc))
    ref = docs.get("FP (reference)")
    ref_ppl = None if ref is None else ref["perplexity"]
    missing = [r.label for r in rows if docs[r.label] is None]

    csv_rows: list[list[Any]] = []
    header = ["table", "label", "weights", "acts", "method", "group", "perplexity",
              "delta_ppl_vs_fp", "kl_vs_reference", "weight_bits_per_element",
              "underflow_share", "unit", "unit_area_um2", "unit_energy_pj_per_mac",
              "accel_j_per_token", "status"]
    costs = _unit_costs()
    jtok = _accel_j_per_token()

    def row_cells(r: Row) -> dict[str, Any]:
        d = docs[r.label]
        c = r.qc
        unit = UNITS.get(c.weights) if c.acts == "int8" or c.weights == "int8" else None
        cell: dict[str, Any] = {"weights": c.weights, "acts": c.acts, "method": c.method,
                                "group": c.group, "unit": unit}
        if c.allocate:
            cell["method"] = f"rtn, {c.allocate} bits"
        if d is not None:
            cell.update(perplexity=d["perplexity"], kl=d["kl_vs_reference"],
                        bits=d["weight_bits_per_element"], under=_underflow_share(d),
                        dppl=None if ref_ppl is None else d["perplexity"] - ref_ppl)
            if c.allocate:
                cell["elem_bits"] = d["allocation"]["mean_element_bits"]
        if unit is not None and unit in costs:
            cell["area"], cell["energy"] = costs[unit]
        if unit is not None and c.weights in jtok and c.acts == "int8":
            cell["jtok"] = jtok[c.weights][0]
        return cell

    cells = {r.label: row_cells(r) for r in rows}
    for r in rows:
        c = cells[r.label]
        csv_rows.append([r.table, r.label, c["weights"], c["acts"], c["method"], c["group"],
                         c.get("perplexity"), c.get("dppl"), c.get("kl"), c.get("bits"),
                         c.get("under"), c.get("unit"), c.get("area"), c.get("energy"),
                         c.get("jtok"), "done" if docs[r.label] is not None else "not run"])

    def table(names: Iterable[str], with_cost: bool = False) -> str:
        hdr = ["configuration", "PPL", "ΔPPL vs FP", "KL nats/token", "weight bits/elem",
               "underflow share of weight MSE"]
        if with_cost:
            hdr += ["MAC unit", "area µm²", "pJ/MAC"]
        out = []
        for name in names:
            c = cells[name]
            if docs[name] is None:
                line = [name, "not run"] + ["–"] * (len(hdr) - 2)
            else:
                line = [name, _f(c["perplexity"]), _f(c.get("dppl")), _f(c["kl"], 4),
                        _f(c["bits"], 4), _f(c.get("under"), 3)]
                if with_cost:
                    line += [c.get("unit") or "–", _f(c.get("area"), 0), _f(c.get("energy"), 4)]
            out.append(line)
        return _md_table(hdr, out)

    main = [r.label for r in rows if r.table == "main"]
    main_sorted = ["FP (reference)", "W8A8 INT8 per-channel"] + [f"W4A16 {w} RTN" for w in W4] + [
        f"W4A8 {w} {METHOD_LABEL[m]}" for w in W4 for m in W4A8_METHODS]
    main_sorted = [n for n in main_sorted if n in cells]
    low = sorted((r.label for r in rows if r.table == "low"), key=lambda n: n[:2]) + (
        ["W4A16 int4 RTN"] if "W4A16 int4 RTN" in cells else [])
    low = [n for n in low if not n.startswith("W4")] + [n for n in low if n.startswith("W4")][::-1]

    # ---- dINT vs INT head-to-head (what the paper claims)
    claims = []
    for meth in W4A8_METHODS:
        for a, b in (("int4_asym", "dint4_asym"), ("int4", "dint4_sym")):
            na, nb = f"W4A8 {a} {METHOD_LABEL[meth]}", f"W4A8 {b} {METHOD_LABEL[meth]}"
            da, db = docs.get(na), docs.get(nb)
            if da is not None and db is not None:
                claims.append([METHOD_LABEL[meth], f"{a} → {b}", _f(da["perplexity"]),
                               _f(db["perplexity"]), _f(db["perplexity"] - da["perplexity"]),
                               _f(db["kl_vs_reference"] - da["kl_vs_reference"], 4)])

    # ---- Fisher: bits saved at equal KL
    fisher_lines = []
    ub, uk = [], []
    for b in UNIFORM_BITS:
        d = docs.get("W4A16 int4 RTN" if b == 4 else f"W{b}A16 int{b} uniform")
        if d is not None:
            ub.append(float(b))
            uk.append(d["kl_vs_reference"])
    for mb in FISHER_MEANS:
        name = f"Fisher allocation, mean {mb:g} bits"
        if name not in docs:
            continue
        d = docs[name]
        if d is None:
            fisher_lines.append([name, "not run", "–", "–", "–", "–"])
            continue
        eb = d["allocation"]["mean_element_bits"]
        eq = _interp_bits(d["kl_vs_reference"], ub, uk) if len(ub) >= 2 else None
        hist = ", ".join(f"{k} b: {v}" for k, v in d["allocation"]["histogram"].items())
        fisher_lines.append([name, _f(eb, 3), _f(d["kl_vs_reference"], 4), _f(d["perplexity"]),
                             "outside the uniform curve" if eq is None else _f(eq, 3),
                             "–" if eq is None else _f(eq - eb, 3)])
        fisher_lines[-1].append(hist)

    # ---- underflow picture (per layer, RTN W4A8)
    png_under = _underflow_png(plt, docs)
    png_pareto, pareto_rows = _pareto_png(plt, rows, cells, docs)

    n_tok = EVAL["windows"] * (EVAL["window"] - 1)
    cis: dict[tuple[str, str], Any] = {}
    lines = [
        "# W4A8 accuracy on SmolLM2-135M, joined with silicon cost",
        "",
        f"Generated by `make report` (section `w4a8_accuracy`, sim/report_w4a8_accuracy.py) on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; Python {platform.python_version()}, "
        f"numpy {np.__version__}; BLAS threads {RUN_BLAS_THREADS} in every run.",
        "",
        "## What was measured",
        "",
        f"* Model: SmolLM2-135M-Instruct (GGUF, linears on a Q4_1 grid, dequantized to float32), "
        f"numpy forward. Every linear of the 30 blocks is quantized (weights; for WxA8 the "
        f"activation entering it, per-token dynamic absmax INT8); embeddings, the tied LM head, "
        f"norms and attention matmuls stay float.",
        f"* **Evaluation set (smaller than `macforge quant`'s 8 × 512 default, to fit the "
        f"{len(rows)} configurations): {EVAL['windows']} windows × {EVAL['window']} tokens of "
        f"the Wikipedia text = {n_tok} scored tokens.** Perplexity and the mean per-token "
        f"KL(FP ‖ quantized) over every position of those windows. The FP perplexity on this set"
        f" is {_f(ref_ppl)} (8 × 512: 23.716 — shorter windows give less context).",
        f"* Calibrated methods: {CALIB['calib_tokens']} Wikipedia tokens disjoint from the "
        f"evaluation windows (4 × 512; SLAC: 8 × 256, the evaluation length); rows rounded on "
        f"a Hessian (GPTQ, AQAS+GPTQ, decoupleQ): {HESSIAN_CALIB['calib_tokens']} tokens "
        f"(16 × 512, `macforge quant`'s default; why: the GPTQ check below). AQAS α grid of 20 "
        f"points, GPTQ damp 0.01, block 128, no act-order. Weights g64 unless named (d = 576 "
        f"is not divisible by 128).",
        "* Weight bits/elem include scales and zero points. Underflow share: Δu / (Δu + Δr) of "
        "the weight MSE summed over the linears (PAPERS.md §1.1), the part from values that "
        "round to zero.",
        "",
    ]
    if missing:
        lines += [f"**Not run yet ({len(missing)} of {len(rows)} configurations; `make report` "
                  f"computes them, each cached as it finishes):** " + "; ".join(missing) + ".", ""]
    lines += ["## FP, W8A8, W4A16 and W4A8: INT4 vs dINT4 × method", "", table(main_sorted), "",
              "### dINT4 vs INT4 at the same method (negative = dINT4 better)", ""]
    lines += [_md_table(["method", "pair", "PPL INT", "PPL dINT", "ΔPPL", "ΔKL"], claims)
              if claims else "No pair finished yet.", ""]
    lines += ["## Per-layer underflow, INT4 vs dINT4 (W4A8 RTN)", "",
              "![underflow](w4a8_accuracy_underflow.png)", "",
              "## W4A16 LUT formats (weight-only, RTN with each format's own scaling)", "",
              table([r.label for r in rows if r.table == "lut"]), "",
              "## W2 / W3: decoupleQ vs RTN and GPTQ", "",
              table(low), "",
              "decoupleQ runs on `decoupleq_int2` / `decoupleq_int3` (integers in [−2, 1] / "
              "[−4, 3] with an FP16 scale and an FP16 offset per row and group of 64, the paper's "
              "W ≈ q·s + z, layer-wise alternating steps, 2 iterations, no block-wise step); "
              "int2/int3 RTN and GPTQ on the symmetric grids with one FP16 scale per group of "
              "64 — the bits/elem column gives the storage each really uses: decoupleQ's offset "
              "costs 16 more bits per group (+0.25 b/elem). Its own default group of 128 (the "
              "bits of int<b> g64) does not divide SmolLM2's d = 576.", "",
              ] + _ci_lines(rows, docs, cis) + _gptq_check_lines(docs) + [
              "### GPTQ's calibration budget at the model level", "",
              table([n for n in [r.label for r in rows if r.table == "budget"] + [
                  "W4A16 int4 RTN", "W4A8 int4_asym AQAS", "W4A8 dint4_asym AQAS"] if n in cells]),
              "",
              "The 8192-token rows are the ones in the tables above. AQAS rows calibrate on "
              f"{CALIB['calib_tokens']} tokens (their α search scores 512 of them).", "",
              "## Fisher bit allocation vs uniform (W-only, int<b> g64, RTN)", "",
              table([r.label for r in rows if r.table == "fisher"
                     or r.label == "W4A16 int4 RTN"]), ""]
    if fisher_lines:
        lines += [_md_table(["allocation", "mean element bits", "KL", "PPL",
                             "uniform bits at equal KL", "bits saved", "bits per linear"],
                            fisher_lines), "",
                  "Uniform bits at equal KL: log KL interpolated linearly between the uniform "
                  "int3..int6 runs. Fisher per tensor from 4 × 512 calibration tokens (disjoint "
                  "from the evaluation), labels sampled from the model, one backward each "
                  "(sim/accuracy/_fisher.py); rule b_t = b̄ + δ_t − mean δ, δ_t = log2 RMS_t + "
                  "½ log2 f̄_t, rounded, clamped to [2, 8] (PAPERS.md §2; the paper reports up to "
                  "0.25 bits/param saved on LLMs).", ""]
    lines += ["## Accuracy vs energy per MAC and area: every format with a unit", "",
              "![pareto](w4a8_accuracy_pareto.png)", "",
              _md_table(["configuration", "MAC unit", "area µm²", "pJ/MAC", "KL", "PPL",
                         "Pareto (energy)", "Pareto (area)", "accel J/token (decode)"],
                        pareto_rows), "",
              "Unit area and energy: `sim.accel.pe_cost(unit, \"model\")`, the fitted cost "
              "model of models/cost.py (NanGate45 NAND2 area, Horowitz int8-multiplier pJ "
              "anchor). J/token: `sim.accel.evaluate` of the shipped accelerator spec whose PE "
              "computes that format (examples/arch/w8a8_int8, w4a8_dint (dot8 dINT4-sym PEs), "
              "w4a8_lut4 (programmable-LUT PEs running NF4)) on SmolLM2-135M decode; the other "
              "formats have a MAC unit but no accelerator spec.", ""]
    lines += ["## Where SmolLM2 departs from the papers", ""] + _departures(docs, ref_ppl, cis) + [""]
    md = "\n".join(lines) + "\n"
    buf = io.StringIO()
    import csv

    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(csv_rows)
    return {"w4a8_accuracy.md": md.encode(), "w4a8_accuracy.csv": buf.getvalue().encode(),
            "w4a8_accuracy_underflow.png": png_under, "w4a8_accuracy_pareto.png": png_pareto}


#: (b, a) pairs whose difference b − a gets a paired bootstrap interval
def _ci_pairs() -> list[tuple[str, str]]:
    pairs = []
    for m in W4A8_METHODS:
        for a, b in (("int4_asym", "dint4_asym"), ("int4", "dint4_sym")):
            pairs.append((f"W4A8 {b} {METHOD_LABEL[m]}", f"W4A8 {a} {METHOD_LABEL[m]}"))
    for w in W4:
        pairs += [(f"W4A8 {w} AQAS", f"W4A8 {w} RTN"), (f"W4A8 {w} GPTQ", f"W4A8 {w} RTN"),
                  (f"W4A8 {w} AQAS+GPTQ", f"W4A8 {w} AQAS"),
                  (f"W4A8 {w} AQAS+SLAC", f"W4A8 {w} AQAS")]
    pairs += [("W4A16 int4 g64 GPTQ", "W4A16 int4 RTN"), ("W3A16 int3 g64 GPTQ", "W3A16 int3 g64 RTN"),
              ("W3A16 decoupleq_int3 g64 (decoupleQ)", "W3A16 int3 g64 RTN"),
              ("W2A16 int2 g64 GPTQ", "W2A16 int2 g64 RTN"),
              ("W2A16 decoupleq_int2 g64 (decoupleQ)", "W2A16 int2 g64 RTN")]
    return pairs


def _ci_lines(rows: list[Row], docs: dict[str, Any], ci_out: dict[tuple[str, str], Any] | None = None
              ) -> list[str]:
    """Paired bootstrap intervals of ΔPPL and ΔKL between configurations (sim.accuracy._ci)."""
    from sim.accuracy._ci import paired_bootstrap
    from sim.accuracy._run import token_stats

    qcs = {r.label: r.qc for r in rows}
    table, no_tokens, resolved, unresolved = [], [], [], []
    for b, a in _ci_pairs():
        if docs.get(a) is None or docs.get(b) is None:
            continue
        ta, tb = token_stats(qcs[a]), token_stats(qcs[b])
        if ta is None or tb is None:
            no_tokens.append(f"{b} vs {a}")
            continue
        ci = paired_bootstrap(ta, tb, block=CI_BLOCK, draws=CI_DRAWS, seed=CI_SEED)
        if ci_out is not None:
            ci_out[(b, a)] = ci
        table.append([f"{b} − {a}", f"{ci.dppl:+.3f} [{ci.dppl_lo:+.3f}, {ci.dppl_hi:+.3f}]",
                      "yes" if ci.ppl_resolved else "no",
                      f"{ci.dkl:+.4f} [{ci.dkl_lo:+.4f}, {ci.dkl_hi:+.4f}]",
                      "yes" if ci.kl_resolved else "no"])
        (resolved if ci.ppl_resolved else unresolved).append(f"{b} vs {a} ({ci.dppl:+.2f})")
    out = ["## How sure are the differences? Paired bootstrap, 95 %", ""]
    if table:
        out += [_md_table(["difference (b − a)", "ΔPPL [95 % interval]", "PPL resolved",
                           "ΔKL [95 % interval]", "KL resolved"], table), "",
                f"Both configurations score the same {EVAL['windows']} × {EVAL['window']} "
                f"evaluation tokens; each window is cut into blocks of {CI_BLOCK} scored tokens "
                f"({EVAL['windows'] * ((EVAL['window'] - 1) // CI_BLOCK)} blocks), blocks are drawn "
                f"with replacement, the same draw for both (paired), {CI_DRAWS} draws, seed "
                f"{CI_SEED}; the interval is the 2.5-97.5 percentile of the redrawn difference "
                "(sim/accuracy/_ci.py). \"Resolved\" = the interval excludes 0. This is the "
                "uncertainty from which text is scored, not from calibration sampling.", ""]
        out.append(f"PPL differences resolved: {len(resolved)} of {len(table)}"
                   + (f"; not resolved: {'; '.join(unresolved)}." if unresolved else "."))
        out.append("")
    if no_tokens:
        out += [f"No per-token data (cached before runs kept it; `python -m "
                f"sim.report_w4a8_accuracy --warm --tokens` re-runs them): "
                + "; ".join(no_tokens) + ".", ""]
    return out


def _gptq_check_lines(docs: dict[str, Any]) -> list[str]:
    """The layer-level GPTQ calibration check, if it has been computed (cached)."""
    from sim.accuracy._gptq_check import gptq_holdout_check
    from sim.accuracy._run import cache_dir

    if not any(cache_dir().glob("gptq_check_*.json")) and not GPTQ_CHECK_RUN[0]:
        return []
    recs = gptq_holdout_check(**GPTQ_CHECK)
    tab = [[f"blk.{r['block']}.{r['linear']}", str(r["in_features"]), str(r["fit_tokens"]),
            f"{r['rtn_fit']:.2e}", f"{r['gptq_fit']:.2e}", f"{r['rtn_heldout']:.2e}",
            f"{r['gptq_heldout']:.2e}", f"{r['gptq_heldout'] / r['rtn_heldout']:.2f}"]
           for r in recs]
    worse = [r for r in recs if r["gptq_heldout"] > r["rtn_heldout"]]
    fit_gain = [r["rtn_fit"] / r["gptq_fit"] for r in recs]
    worst = max((r for r in recs if r["fit_tokens"] == min(x["fit_tokens"] for x in recs)),
                key=lambda r: r["gptq_heldout"] / r["rtn_heldout"])
    by_n: dict[int, list[float]] = {}
    for r in recs:
        by_n.setdefault(r["fit_tokens"], []).append(r["gptq_heldout"] / r["rtn_heldout"])
    gist = "; ".join(f"{n} tokens: GPTQ/RTN held-out error {min(v):.2f}-{max(v):.2f}"
                     for n, v in sorted(by_n.items()))
    return ["## Is GPTQ under-calibrated? A layer-level check", "",
            _md_table(["linear", "inputs", "fit tokens", "RTN err (fit)", "GPTQ err (fit)",
                       "RTN err (held-out)", "GPTQ err (held-out)", "GPTQ/RTN held-out"], tab), "",
            f"Relative output error ‖X(W−Ŵ)ᵀ‖²/‖XWᵀ‖² of {GPTQ_CHECK['weights']} g"
            f"{GPTQ_CHECK['group']} weights, float model inputs, GPTQ damp {GPTQ_CHECK['damp']} "
            f"fitted on the first `fit tokens` of a Wikipedia slice disjoint from the evaluation "
            f"windows, held-out = {GPTQ_CHECK['heldout_tokens']} further disjoint tokens "
            f"(sim/accuracy/_gptq_check.py). {gist}; GPTQ is worse than RTN on held-out text in "
            f"{len(worse)} of {len(recs)} cases. On the fitting tokens GPTQ cuts RTN's error "
            f"{min(fit_gain):.1f}-{max(fit_gain):.1f}x, so the algorithm does what it "
            "minimises; the gap to the held-out tokens is its Hessian fitting the calibration "
            f"text (worst at {min(by_n)} tokens: {worst['linear']}, {worst['in_features']} "
            "inputs). Hence "
            f"the GPTQ and decoupleQ rows calibrate on {HESSIAN_CALIB['calib_tokens']} tokens "
            f"(the other calibrated rows: {CALIB['calib_tokens']}; AQAS's α search scores "
            "512 tokens either way).", ""]


CI_BLOCK, CI_DRAWS, CI_SEED = 51, 2000, 0
GPTQ_CHECK: dict[str, Any] = dict(blocks=(5, 20), budgets=(2048, 8192), weights="int4", group=64,
                                  damp=0.01, heldout_tokens=4096)
#: set by ``--gptq-check``: compute the check if it is not cached
GPTQ_CHECK_RUN = [False]


def _big(v: float) -> str:
    """A perplexity that may be astronomically large: 3 significant digits."""
    return f"{v:.3g}" if v >= 1e4 else f"{v:.1f}"


def _departures(docs: dict[str, Any], ref_ppl: float | None,
                cis: dict[tuple[str, str], Any] | None = None) -> list[str]:
    """Plain statements computed from the finished rows (nothing tuned, nothing typed in)."""
    out = []

    def ppl(name: str) -> float | None:
        d = docs.get(name)
        return None if d is None else d["perplexity"]

    def kl(name: str) -> float:
        return float(docs[name]["kl_vs_reference"])

    for meth in (METHOD_LABEL[m] for m in W4A8_METHODS):
        for a, b in (("int4_asym", "dint4_asym"), ("int4", "dint4_sym")):
            pa, pb = ppl(f"W4A8 {a} {meth}"), ppl(f"W4A8 {b} {meth}")
            if pa is not None and pb is not None:
                verdict = "beats" if pb < pa else "does not beat"
                ka, kb = kl(f"W4A8 {a} {meth}"), kl(f"W4A8 {b} {meth}")
                agree = "" if (pb < pa) == (kb < ka) else " — the KL says the opposite"
                ci = (cis or {}).get((f"W4A8 {b} {meth}", f"W4A8 {a} {meth}"))
                sure = "" if ci is None else (
                    f"; 95 % interval of ΔPPL [{ci.dppl_lo:+.3f}, {ci.dppl_hi:+.3f}], "
                    + ("resolved" if ci.ppl_resolved else "not resolved")
                    + f", of ΔKL [{ci.dkl_lo:+.4f}, {ci.dkl_hi:+.4f}], "
                    + ("resolved" if ci.kl_resolved else "not resolved"))
                out.append(f"* W4A8 {meth}: {b} {verdict} {a} in perplexity here (PPL {pb:.3f} "
                           f"vs {pa:.3f}, {pb - pa:+.3f}; KL {kb:.4f} vs {ka:.4f}{agree}{sure}).")
    rtn16 = docs.get("W4A16 int4 RTN")
    gq = [(n, docs.get(f"W4A16 int4 g64 GPTQ, {n} calibration tokens")) for n in BUDGETS]
    gq = [(n, d) for n, d in gq if d is not None]
    if rtn16 is not None and gq:
        parts = [f"{n} tokens PPL {d['perplexity']:.3f} / KL {d['kl_vs_reference']:.4f}"
                 for n, d in gq]
        out.append(f"* W4A16 int4 g64: GPTQ {'; '.join(parts)} vs RTN PPL "
                   f"{rtn16['perplexity']:.3f} / KL {rtn16['kl_vs_reference']:.4f}: GPTQ beats RTN "
                   "in perplexity at "
                   + (", ".join(str(n) for n, d in gq if d["perplexity"] < rtn16["perplexity"])
                      or "no budget")
                   + " calibration tokens, not at "
                   + (", ".join(str(n) for n, d in gq if d["perplexity"] >= rtn16["perplexity"])
                      or "any")
                   + " (the reference GPTQ code calibrates on 128 × 2048 tokens).")
    for mb in FISHER_MEANS:
        d = docs.get(f"Fisher allocation, mean {mb:g} bits")
        if d is None:
            continue
        ub = [(b, docs.get("W4A16 int4 RTN" if b == 4 else f"W{b}A16 int{b} uniform"))
              for b in UNIFORM_BITS]
        ub = [(float(b), x["kl_vs_reference"]) for b, x in ub if x is not None]
        eb = d["allocation"]["mean_element_bits"]
        eq = _interp_bits(d["kl_vs_reference"], [b for b, _ in ub], [k for _, k in ub]) \
            if len(ub) >= 2 else None
        n2 = d["allocation"]["histogram"].get("2", 0)
        if eq is None:
            out.append(f"* Fisher allocation around {mb:g} bits ({eb:.3f} element bits, {n2} "
                       f"linears clamped to 2 bits): KL {d['kl_vs_reference']:.4f}, no better "
                       "than the uniform curve. The rule assumes MSE ∝ RMS²·2^(−2b), least likely "
                       "to hold on the 3-level int2 grid (not isolated here).")
        else:
            out.append(f"* Fisher allocation around {mb:g} bits: {eb:.3f} element bits reach the "
                       f"KL of uniform {eq:.3f} bits: {eq - eb:+.3f} bits saved (paper: up to "
                       "0.25 bits/param on LLMs).")
    low = {b: (ppl(f"W{b}A16 int{b} g64 RTN"), ppl(f"W{b}A16 int{b} g64 GPTQ"),
               ppl(f"W{b}A16 decoupleq_int{b} g64 (decoupleQ)")) for b in (2, 3)}
    if all(v is not None for v in low[2]) and ref_ppl is not None:
        r2, g2, d2 = low[2]
        out.append(f"* W2 (g64): RTN {_big(r2)} and GPTQ {_big(g2)} leave no language model; "
                   f"decoupleQ keeps {d2:.1f} ({d2 / ref_ppl:.1f}× FP's {ref_ppl:.2f}), with its "
                   "FP16 offset per group (+0.25 b/elem). The paper on Llama-1-7B: decoupleQ W2 "
                   "g64 8.18 vs FP16 5.68 (1.44×), GPTQ per-channel 2.1e3 (PAPERS.md §4); its "
                   "block-wise step (training s, z and the norms) is not run here, and a 135M "
                   "model has far less redundancy than 7B.")
    if all(v is not None for v in low[3]):
        r3, g3, d3 = low[3]
        out.append(f"* W3 (g64): GPTQ {g3:.1f} vs RTN {r3:.1f}; decoupleQ {d3:.1f} at "
                   f"{docs['W3A16 decoupleq_int3 g64 (decoupleQ)']['weight_bits_per_element']:.2f} "
                   f"b/elem against {docs['W3A16 int3 g64 GPTQ']['weight_bits_per_element']:.2f}.")
    best = [(ppl(f"W4A8 {w} {m}"), f"{w} {m}") for w in W4 for m in
            (METHOD_LABEL[x] for x in W4A8_METHODS)]
    best = [b for b in best if b[0] is not None]
    if best and ref_ppl is not None:
        p, name = min(best)
        out.append(f"* Best W4A8 row: {name}, PPL {p:.3f}, {p - ref_ppl:+.3f} vs FP "
                   f"(the paper: AQAS+SLAC+dINT4 within about one PPL point of FP16 on OPT/LLaMA, "
                   "PAPERS.md §1.3).")
    out.append("* SmolLM2's linears already sit on a Q4_1 grid (4-bit, blocks of 32 with a scale "
               "and a min): 4-bit errors are lower than on fp weights, and a g32 int4_asym fit "
               "would reproduce the grid exactly (g64 is used here). The papers quantize fp16 "
               "checkpoints of OPT/LLaMA (125M-70B); a 135M model with 4-bit-born weights is "
               "a different regime. The evaluation scores 2040 tokens: the paired bootstrap "
               "section says which differences that resolves.")
    return out


def _unit_costs() -> dict[str, tuple[float, float]]:
    """unit -> (area µm², pJ/MAC) from the fitted cost model (units that fail are left out)."""
    from sim.accel import pe_cost

    out = {}
    for unit in sorted(set(UNITS.values())):
        try:
            c = pe_cost(unit, "model")
        except Exception as e:  # noqa: BLE001 - a missing fit must not sink the accuracy report
            print(f"w4a8_accuracy: no cost for {unit}: {e}", file=sys.stderr)
            continue
        out[unit] = (c.area_um2, c.energy_per_mac_pj)
    return out


def _accel_j_per_token() -> dict[str, tuple[float, str]]:
    from pathlib import Path

    from sim.accel import evaluate, load_arch, transformer_workload

    root = Path(__file__).resolve().parents[1]
    out = {}
    for fmt, arch in ARCHS.items():
        try:
            r = evaluate(load_arch(str(root / "examples" / "arch" / f"{arch}.toml")),
                         transformer_workload("smollm2-135m", "decode", weights=fmt, acts="int8"))
        except Exception as e:  # noqa: BLE001
            print(f"w4a8_accuracy: no J/token for {arch}: {e}", file=sys.stderr)
            continue
        out[fmt] = (float(r.summary["energy_per_token_j"]), arch)
    return out


def _underflow_png(plt: Any, docs: dict[str, Any]) -> bytes:
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for ax, (a, b) in zip(axes, (("int4_asym", "dint4_asym"), ("int4", "dint4_sym"))):
        for name, style in ((a, "o"), (b, "x")):
            d = docs.get(f"W4A8 {name} RTN")
            if d is None:
                continue
            share = [r["weight_underflow_mse"] / r["weight_mse"] if r.get("weight_mse") else 0.0
                     for r in d["layers"]]
            ax.plot(range(len(share)), share, style, ms=3, label=name)
        ax.set_ylabel("underflow share of MSE")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("linear (blk.0.attn_q … blk.29.ffn_down, 7 per block)")
    fig.suptitle("Weight underflow Δu / (Δu + Δr) per linear, W4A8 RTN g64 (SmolLM2-135M)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _pareto_png(plt: Any, rows: list[Row], cells: dict[str, Any],
                docs: dict[str, Any]) -> tuple[bytes, list[list[str]]]:
    pts = [(r.label, cells[r.label]) for r in rows
           if cells[r.label].get("energy") is not None and docs[r.label] is not None
           and r.qc.acts == "int8" and not r.qc.allocate]
    tab: list[list[str]] = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    if pts:
        kl = [c["kl"] for _, c in pts]
        pe = _pareto([(c["energy"], c["kl"]) for _, c in pts])
        pa = _pareto([(c["area"], c["kl"]) for _, c in pts])
        for ax, key, front, xl in ((axes[0], "energy", pe, "energy per MAC (pJ, cost model)"),
                                   (axes[1], "area", pa, "MAC unit area (µm², cost model)")):
            xs = [c[key] for _, c in pts]
            ax.scatter(xs, kl, c=["C3" if f else "C0" for f in front], s=18)
            for (name, c), x, y in zip(pts, xs, kl):
                ax.annotate(name.replace("W4A8 ", "").replace("W8A8 ", ""), (x, y), fontsize=6)
            fr = sorted((x, y) for x, y, f in zip(xs, kl, front) if f)
            ax.plot([p[0] for p in fr], [p[1] for p in fr], "C3-", lw=1)
            ax.set_yscale("log")
            ax.set_xlabel(xl)
            ax.set_ylabel("KL vs FP (nats/token)")
        for (name, c), fe, fa in zip(pts, pe, pa):
            tab.append([name, c["unit"], _f(c["area"], 0), _f(c["energy"], 4), _f(c["kl"], 4),
                        _f(c["perplexity"]), "yes" if fe else "", "yes" if fa else "",
                        _f(c.get("jtok"), 5)])
    fig.suptitle("SmolLM2-135M W·A8: accuracy vs MAC cost (red: Pareto front)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue(), tab


def main() -> int:
    """``python -m sim.report_w4a8_accuracy [--warm] [--partial]``: warm the cache in order, or
    write the report files into reports/ (``--partial``: cached rows only)."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--warm", action="store_true")
    ap.add_argument("--partial", action="store_true")
    ap.add_argument("--tokens", action="store_true",
                    help="with --warm: re-run finished rows that lack per-token NLL/KL")
    ap.add_argument("--only", default=None, help="with --warm: rows whose label contains this")
    ap.add_argument("--gptq-check", action="store_true",
                    help="compute the layer-level GPTQ calibration check (cached)")
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                    help="with --warm: threads per run (results do not depend on it)")
    args = ap.parse_args()
    GPTQ_CHECK_RUN[0] = args.gptq_check
    if args.gptq_check:
        from sim.accuracy._gptq_check import gptq_holdout_check

        gptq_holdout_check(**GPTQ_CHECK)
    if args.warm:
        warm_cache(log=lambda s: print(s, file=sys.stderr, flush=True), tokens=args.tokens,
                   only=args.only, workers=args.workers)
        return 0
    files = w4a8_accuracy_section(run_missing=not args.partial)
    out = Path(__file__).resolve().parents[1] / "reports"
    for name, data in files.items():
        tmp = out / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
