"""Report section ``variable_length``: the entropy-coded uniform grid against fixed-length 4-bit
formats at equal size, its Huffman-vs-ideal gap, sparse outliers, and what its decoder costs in
hardware (PAPERS.md §2; issue 11).

``variable_length_section(seed)`` returns ``{file name under reports/: bytes}`` like the other
sections of ``sim.report``. Every figure is computed here: weight errors with ``models.formats``
on real weights (``models.realdata``), the decoder's area / FPGA / energy with the synthesis
flow (``rtl.flow.synth_unit``, ``rtl.huffman_energy``; both cached under build/cache), the
cost model's decoder fit with ``sim.costfit.fit_decoder_area``.
"""

from __future__ import annotations

import io
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["variable_length_section", "weight_study"]

Files = dict[str, bytes]

# fixed-length formats at their default scaling (groups of 32-128, stated per row), and one
# sparse-outlier variant: INT4 g128 with the top 0.5% of |w| kept as BF16 value + 32-bit index
FIXED = ("int3", "int4", "nf4", "crd4_normal_absmax64", "nupes4_a0.8", "mxfp4", "int5")
OUTLIER_FRACTION = 0.005
BUDGETS = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
MAX_LENS = (8, 12, 16)
DECODER = "huffman_egrid4_L16"
MAC = "mac_int4xint8"


# one CSV writer and one markdown-table writer for every report section
from sim.report import _csv, _md_table as _table  # noqa: E402


def _tensors(model: str) -> dict[str, np.ndarray]:
    from models import realdata

    if model == "minilm":
        w = realdata.minilm_weights()
        return {k: v for k, v in w.items() if k.startswith(("encoder.layer.0.", "encoder.layer.3."))}
    names = [f"blk.{b}.{s}" for b in (0, 15) for s in ("attn_q", "attn_v", "ffn_up", "ffn_down")]
    return realdata.smollm2_weights(names)


def weight_study(model: str, seed: int = 0) -> list[dict[str, Any]]:
    """One row per (format, tensor set): weight MSE relative to the weights' mean square, SQNR
    and stored bits per element (everything stored), summed over the tensors."""
    from dataclasses import replace

    from models.formats import entropy_format, get_format

    ts = _tensors(model)
    n = sum(v.size for v in ts.values())
    power = sum(float(np.sum(v.astype(np.float64) ** 2)) for v in ts.values())
    rows: list[dict[str, Any]] = []

    def add(name: str, kind: str, quant: Any, extra: dict[str, Any] | None = None) -> None:
        err = bits = 0.0
        ideal = 0.0
        for v in ts.values():
            q = quant(v)
            err += float(np.sum((q.dequantize() - v) ** 2))
            bits += q.bits_per_element * v.size
            g = getattr(q, "grid", None)
            if g is not None:
                ideal += (g.ideal_bits_per_element) * v.size
        rel = err / power
        rows.append({"model": model, "format": name, "kind": kind, "bits_per_element": bits / n,
                     "ideal_bits_per_element": (ideal / n) if ideal else None,
                     "relative_mse": rel, "sqnr_db": -10 * math.log10(rel), "elements": n, **(extra or {})})

    for f in FIXED:
        fmt = get_format(f)
        sc = fmt.default_scaling
        if model == "smollm2" and sc is not None and sc.granularity == "group" and 576 % sc.group_size:
            sc = replace(sc, group_size=64)  # d = 576 = 9 × 64
        add(f, "fixed", lambda v, fmt=fmt, sc=sc: fmt.quantize(v, sc), {"scaling": sc.describe() if sc else "-"})
    fmt = get_format("int4")
    sc = replace(fmt.default_scaling, outlier_fraction=OUTLIER_FRACTION)  # type: ignore[arg-type]
    if model == "smollm2":
        sc = replace(sc, group_size=64)
    add(f"int4 + {OUTLIER_FRACTION:.1%} outliers", "sparse outliers", lambda v: fmt.quantize(v, sc),
        {"scaling": sc.describe()})
    for b in BUDGETS:
        ef = entropy_format(f"egrid{b:g}_L16_report", b, 16)
        add(f"egrid{b:g}_L16", "entropy", ef.quantize, {"scaling": ef.default_scaling.describe()})  # type: ignore[union-attr]
    return rows


def _gap_rows(model: str) -> list[dict[str, Any]]:
    """Huffman vs ideal code length and the length limit's loss at a 4-bit budget."""
    from models.formats import entropy_coded_grid

    ts = _tensors(model)
    out = []
    for L in MAX_LENS:
        h = u = i = 0.0
        n = 0
        longest = 0
        for v in ts.values():
            g = entropy_coded_grid(v, 4.0, max_len=L, max_levels=127)
            h += g.huffman_bits * v.size
            u += g.unlimited_huffman_bits * v.size
            i += g.ideal_bits * v.size
            n += v.size
            longest = max(longest, int(g.table.lengths.max()))
        out.append({"model": model, "max_len": L, "ideal_bits": i / n, "huffman_bits": h / n,
                    "unlimited_huffman_bits": u / n, "huffman_minus_ideal": (h - i) / n,
                    "length_limit_loss": (h - u) / n, "longest_code": longest})
    return out


def _at_equal_error(rows: list[dict[str, Any]], target: str) -> float | None:
    """Bits per element the entropy grid needs for the SQNR of ``target`` (log-linear
    interpolation between the measured budgets)."""
    eg = sorted((r["sqnr_db"], r["bits_per_element"]) for r in rows if r["kind"] == "entropy")
    t = next(r["sqnr_db"] for r in rows if r["format"] == target)
    for (s0, b0), (s1, b1) in zip(eg, eg[1:]):
        if s0 <= t <= s1:
            return b0 + (b1 - b0) * (t - s0) / (s1 - s0)
    return None


def _hardware() -> dict[str, Any]:
    from models.cost import dram_pj_per_64b, sram_read_pj_per_64b
    from models.units import get_unit
    from rtl import huffman_energy
    from rtl.flow import NAND2_UM2, synth_unit, unit_energy

    hw: dict[str, Any] = {}
    for u in (DECODER, MAC):
        hw[u] = {"generic": synth_unit(u, "generic")}
        for t in ("ice40", "ecp5"):
            hw[u][t] = synth_unit(u, t)
    hw[DECODER]["energy"] = {d: huffman_energy(DECODER, d) for d in ("real", "random")}
    hw[MAC]["energy"] = unit_energy(MAC, "random")
    hw["nand2_um2"] = NAND2_UM2
    hw["dram_pj_per_bit"] = dram_pj_per_64b("lpddr4") / 64
    hw["sram_pj_per_bit"] = sram_read_pj_per_64b(256 * 1024) / 64
    hw["decoder_params"] = get_unit(DECODER).huffman_params
    return hw


def _decoder_fit() -> dict[str, Any]:
    from sim.costfit import fit_decoder_area

    m, specs, recs = fit_decoder_area(workers=2)
    return {"model": m, "points": [(s.name, s.huffman_params, r["nand2_eq"], m.predict(s),
                                    m.validation["leave_one_out"]["errors"][s.name]) for s, r in zip(specs, recs)]}


PPL_CONFIGS = (("egrid4_L16", None), ("int4", 64), ("nf4", None), ("mxfp4", None), ("crd4_normal_absmax64", None))


def _perplexity() -> list[dict[str, Any]]:
    """SmolLM2 weight-only perplexity and KL through ``macforge quant``'s Python API (RTN; the
    entropy grid per tensor, INT4 in groups of 64; cached by sim.accuracy)."""
    from sim.accuracy._config import QuantConfig
    from sim.accuracy._run import run_quant

    out = []
    for w, g in PPL_CONFIGS:
        r = run_quant(QuantConfig(model="smollm2", weights=w, acts="fp", group=g), progress=False)
        from models.formats import get_format

        sc = get_format(w).default_scaling
        label = (f"group {g}" if g else sc.describe() if sc is not None and sc.granularity != "tensor"
                 else "per tensor")
        out.append({"weights": w, "group": label, "bits_per_element": r["weight_bits_per_element"],
                    "perplexity": r["perplexity"], "reference_perplexity": r["reference_perplexity"],
                    "kl_vs_reference": r["kl_vs_reference"]})
    return out


def _plot(rows: list[dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    for ax, m in zip(axes[0], models):
        sub = [r for r in rows if r["model"] == m]
        eg = sorted((r["bits_per_element"], r["sqnr_db"]) for r in sub if r["kind"] == "entropy")
        ax.plot(*zip(*eg), "o-", label="entropy-coded grid (Huffman, L=16)")
        for r in sub:
            if r["kind"] != "entropy":
                ax.plot(r["bits_per_element"], r["sqnr_db"], "s" if r["kind"] == "fixed" else "^")
                ax.annotate(r["format"], (r["bits_per_element"], r["sqnr_db"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("stored bits / element (everything stored)")
        ax.set_ylabel("weight SQNR (dB)")
        ax.set_title(f"{m} weights")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    return png.getvalue()


def _system_rows() -> list[dict[str, Any]]:
    """Accelerator model (sim.accel): entropy-coded egrid4_L16 weights on INT8 PEs with their
    decoders (examples/arch/w4a8_egrid.toml) against fixed-length dINT4-B on its PEs
    (w4a8_dint.toml), same array, buffers and DRAM; PE and decoder priced by synthesis +
    gate-level energy. The same comparison as the what-if study entropy_coded_decode."""
    from sim.accel import evaluate, load_arch, resolve_formats, transformer_workload

    arch = ROOT / "examples" / "arch"
    out = []
    for model in ("llama-7b", "smollm2-135m"):
        for phase in ("decode", "prefill"):
            for name, over in (("w4a8_dint", {}), ("w4a8_egrid", {"decoder.count": 16}),
                               ("w4a8_egrid", {"decoder.count": 128})):
                spec = load_arch(arch / f"{name}.toml").replace(**{"pe.cost": "synth", **over})
                s = evaluate(spec, transformer_workload(model, phase, formats=resolve_formats(spec))).summary
                out.append({"model": model, "phase": phase, "arch": name, "decoders": s["decoders"],
                            "weights": s["formats"]["weights"], "tokens_per_s": s["tokens_per_s"],
                            "energy_per_token_j": s["energy_per_token_j"], "area_mm2": s["area_mm2"],
                            "decode_energy_share": s["energy_j_breakdown"]["decode"] / s["energy_j"],
                            "dram_energy_j": s["energy_j_breakdown"]["dram"] * 1.0 / s["tokens"],
                            "bound": s["bound"]})
    return out


def _system_verdict(rows: list[dict[str, Any]]) -> str:
    """The system table's reading, from its own numbers."""
    base = {(r["model"], r["phase"]): r for r in rows if r["arch"] == "w4a8_dint"}
    eg = [r for r in rows if r["arch"] != "w4a8_dint"]
    dram = [r["dram_energy_j"] / base[(r["model"], r["phase"])]["dram_energy_j"] for r in eg]
    ej = [r["energy_per_token_j"] / base[(r["model"], r["phase"])]["energy_per_token_j"] for r in eg]
    full = [r for r in eg if r["decoders"] == max(x["decoders"] for x in eg)]
    few = [r for r in eg if r["decoders"] == min(x["decoders"] for x in eg)]
    tp_few = [r["tokens_per_s"] / base[(r["model"], r["phase"])]["tokens_per_s"] for r in few]
    share = [r["decode_energy_share"] for r in eg]
    area = [r["area_mm2"] / base[(r["model"], r["phase"])]["area_mm2"] for r in full]
    return (f"Against dINT4-B the entropy-coded design's DRAM energy per token is {min(dram):.2f}-{max(dram):.2f}× "
            f"(coded weights at 4.0 b/elem against 4.25, activations and KV cache unchanged), its decoders take "
            f"{min(share):.0%}-{max(share):.0%} of its energy, so J/token is {min(ej):.2f}-{max(ej):.2f}× "
            f"dINT4-B's (> 1: worse). With {full[0]['decoders']} decoders (the array's full weight rate) its chip "
            f"is {min(area):.2f}× as large; with {few[0]['decoders']} the decode roof binds and tokens/s falls to "
            f"{min(tp_few):.2f}-{max(tp_few):.2f}×. "
            + ("The decoder's cost eats the gain in every row." if min(ej) > 1 else
               "The decoder's cost eats the gain in some rows." if max(ej) > 1 else
               "The entropy-coded design keeps a net energy gain in every row."))


def variable_length_section(seed: int = 0) -> Files:
    """reports/variable_length.md (+ .csv, _gap.csv, _hardware.csv, .png)."""
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    notes: list[str] = []
    for m in ("minilm", "smollm2"):
        try:
            rows += weight_study(m, seed)
            gaps += _gap_rows(m)
        except Exception as e:  # noqa: BLE001 - a missing data package: the report says so
            notes.append(f"{m} skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    try:
        ppl = _perplexity()
    except Exception as e:  # noqa: BLE001 - SmolLM2 or its text missing: the report says so
        ppl = []
        notes.append(f"perplexity skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    hw = _hardware()
    fit = _decoder_fit()
    d, mac = hw[DECODER], hw[MAC]
    de = d["energy"]["real"]
    hp = hw["decoder_params"]

    wrows = [[r["model"], r["format"], r["kind"], f"{r['bits_per_element']:.3f}",
              "-" if r["ideal_bits_per_element"] is None else f"{r['ideal_bits_per_element']:.3f}",
              f"{r['relative_mse']:.3e}", f"{r['sqnr_db']:.2f}", r["scaling"]] for r in rows]
    grows = [[g["model"], str(g["max_len"]), f"{g['ideal_bits']:.4f}", f"{g['huffman_bits']:.4f}",
              f"{g['unlimited_huffman_bits']:.4f}", f"{g['huffman_minus_ideal']:.4f}",
              f"{g['length_limit_loss']:.4f}", str(g["longest_code"])] for g in gaps]
    eq = []
    for m in sorted({r["model"] for r in rows}):
        sub = [r for r in rows if r["model"] == m]
        for target in ("int4", "nf4", "mxfp4"):
            b = _at_equal_error(sub, target)
            tb = next(r["bits_per_element"] for r in sub if r["format"] == target)
            eq.append([m, target, f"{tb:.3f}", "-" if b is None else f"{b:.3f}",
                       "-" if b is None else f"{tb - b:+.3f}"])

    # hardware per weight: one decoded symbol is one weight
    dram, sram = hw["dram_pj_per_bit"], hw["sram_pj_per_bit"]
    # MiniLM: unbiased fp32 weights (SmolLM2's sit on a Q4_1 grid)
    saved_bits = [float(r[4]) for r in eq if r[0] == "minilm" and r[1] == "int4" and r[4] != "-"]
    saved = saved_bits[0] if saved_bits else float("nan")
    hrows = [
        ["decoder area (generic cells)", f"{d['generic']['nand2_eq']:.0f} NAND2-eq "
         f"({d['generic']['nand2_eq'] * hw['nand2_um2']:.0f} µm²), {d['generic']['sequential_nand2_eq'] / d['generic']['nand2_eq']:.0%} sequential",
         f"{mac['generic']['nand2_eq']:.0f} NAND2-eq"],
        ["iCE40-HX8K LUTs / FFs / Fmax", f"{d['ice40']['luts']} / {d['ice40']['ffs']} / {d['ice40']['fmax_mhz']:.1f} MHz",
         f"{mac['ice40']['luts']} / {mac['ice40']['ffs']} / {mac['ice40']['fmax_mhz']:.1f} MHz"],
        ["ECP5-25F LUTs / FFs / Fmax", f"{d['ecp5']['luts']} / {d['ecp5']['ffs']} / {d['ecp5']['fmax_mhz']:.1f} MHz",
         f"{mac['ecp5']['luts']} / {mac['ecp5']['ffs']} / {mac['ecp5']['fmax_mhz']:.1f} MHz"],
        ["generic-cell critical path", f"{d['generic'].get('fmax_mhz', float('nan')):.1f} MHz",
         f"{mac['generic'].get('fmax_mhz', float('nan')):.1f} MHz"],
        ["energy per weight (gate level)", f"{de['energy_per_symbol_pj']:.3f} pJ/symbol (real), "
         f"{d['energy']['random']['energy_per_symbol_pj']:.3f} (reference N(0,1)); clock share "
         f"{de['clock_energy_per_symbol_nand2'] / de['energy_per_symbol_nand2']:.0%}",
         f"{mac['energy']['energy_per_mac_pj']:.3f} pJ/MAC (random)"],
        ["throughput", f"{de['symbols_per_cycle']:.3f} symbols/cycle (table load included)", "1 MAC/cycle"],
        ["DRAM energy of the bits saved at equal SQNR vs INT4 g128",
         f"{saved:.3f} b/weight × {dram:.2f} pJ/bit = {saved * dram:.2f} pJ/weight (LPDDR4)", "-"],
        ["SRAM energy of the bits saved (256 KB buffer read)",
         f"{saved * sram:.3f} pJ/weight", "-"],
    ]
    sysrows = _system_rows()
    fm = fit["model"]
    frows = [[n, str(p["max_len"]), str(p["symbol_bits"]), f"{meas:.0f}", f"{est:.0f}", f"{loo:+.1%}"]
             for n, p, meas, est, loo in fit["points"]]
    verdict = ("eats" if de["energy_per_symbol_pj"] > saved * dram else "does not eat")
    verdict_sram = ("eats" if de["energy_per_symbol_pj"] > saved * sram else "does not eat")
    md = [
        "# Variable-length codes: the entropy-coded grid, its decoder, what it buys",
        "",
        f"Generated by `make report` (`python -m sim.report`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; "
        f"Python {platform.python_version()}, numpy {np.__version__}; seed {seed}; run time {time.time() - t0:.0f} s "
        "(synthesis and gate-level energy cached under build/cache).",
        "",
        "The entropy-coded uniform grid (PAPERS.md §2: Orr, Ribar & Luschi 2025) is `x → Δ·rint(x/Δ)` "
        "on 255 points with one step Δ per tensor, bisected so that *everything stored* — "
        "Huffman-coded symbols (codes of at most L bits, package-merge), the code table, the FP32 "
        "step and one chunk offset per 4096 symbols — fits the budget. Fixed-length formats are "
        "at their default scaling (their scales counted in bits/element).",
        "",
        "## Weight error at equal size",
        "",
        "Tensors: MiniLM (all-MiniLM-L6-v2, fp32) layers 0 and 3 (12 linears); SmolLM2-135M blocks "
        "0 and 15 (q, v, ffn_up, ffn_down). SmolLM2's weights are already on a Q4_1 grid "
        "(REALDATA.md): any 4-bit figure on them is biased; groups of 128 become 64 there "
        "(d = 576). SQNR = −10 log10(Σ err² / Σ w²).",
        "",
        _table(["model", "format", "kind", "b/elem", "ideal b/elem", "rel. MSE", "SQNR dB", "scaling"], wrows),
        "",
        "![SQNR vs bits](variable_length.png)",
        "",
        "On MiniLM the grid flattens above 4.5 b: its 255-point alphabet (8-bit symbols, one step "
        "per tensor) saturates the tensors' outliers once the step is small, so INT5 with groups of "
        "128 wins at 5 b; a wider symbol (a TOML format with `symbol_bits`) moves that limit.",
        "",
        "Bits the entropy grid needs for the same SQNR (interpolated between budgets):",
        "",
        _table(["model", "fixed format", "its b/elem", "entropy grid b/elem", "saved"], eq),
        "",
        "## What it does to SmolLM2 (weight-only, RTN, `macforge quant` API)",
        "",
        "Perplexity on the project's Wikipedia windows (8 × 512 tokens; reference = the dequantized "
        "model) and mean KL of the next-token distribution against the reference. The caveat of "
        "the weight table holds here too: SmolLM2's weights sit on a Q4_1 grid, so a 4-bit format "
        "re-quantizes already-quantized weights.",
        "",
        _table(["weights", "scaling", "b/elem", "perplexity", "reference", "KL vs reference"],
               [[r["weights"], str(r["group"]),
                 f"{r['bits_per_element']:.3f}", f"{r['perplexity']:.2f}", f"{r['reference_perplexity']:.2f}",
                 f"{r['kl_vs_reference']:.4f}"] for r in ppl]),
        "",
        "## Huffman vs ideal code length (4-bit budget)",
        "",
        _table(["model", "L", "ideal", "Huffman (L)", "Huffman (unlimited)", "Huffman − ideal",
                "loss of the limit", "longest code"], grows),
        "",
        "## Hardware: the decoder (" + DECODER + f": L = {hp['max_len']}, {hp['symbol_bits']}-bit symbols, "
        f"chunk {hp['chunk']}) beside the MAC it feeds ({MAC})",
        "",
        "Measured with the project's flow: generic-cell synthesis (NAND2-eq, NanGate45 areas), "
        "nextpnr place and route (iCE40-HX8K, ECP5-25F), gate-level switching energy on a "
        "4096-weight stream decoded at full rate (pJ through the flow's Horowitz int8-multiplier "
        "anchor). The decoder verified bit-exact against the golden codec on Icarus and Verilator "
        "(`make sim`).",
        "",
        _table(["quantity", "decoder", MAC], hrows),
        "",
        f"Verdict on energy: one decoded weight costs {de['energy_per_symbol_pj']:.2f} pJ in this "
        f"decoder, against {saved * dram:.2f} pJ of LPDDR4 traffic saved per weight by the "
        f"{saved:.2f} fewer bits the entropy grid needs for INT4's error (MiniLM): the decoder cost "
        f"**{verdict}** the DRAM gain in this implementation, by a thin margin. For weights that stay "
        f"in an on-chip buffer the saving is {saved * sram:.2f} pJ per read and the decoder "
        f"**{verdict_sram}** it. The gain that does not depend on energy is accuracy at equal size "
        "(the tables above) and DRAM bandwidth (fewer bits per weight in a bandwidth-bound decode "
        "phase). The decoder's generic-cell critical path "
        f"({d['generic'].get('fmax_mhz', float('nan')):.0f} MHz: the L-way match, priority select and "
        "barrel shift in one cycle) is also far slower than the MAC's; it is not pipelined. Most of its energy "
        f"({de['clock_energy_per_symbol_nand2'] / de['energy_per_symbol_nand2']:.0%}) is the clock "
        "of ungated flip-flops (the 256 × 8-bit symbol memory and the length table are registers); "
        "an SRAM macro or clock gating would change that, and is not modelled here. A decoder is "
        "shared by every MAC that uses its weight: in a weight-stationary or output-stationary "
        "R×C array the top edge takes C weights per cycle, so C decoders keep it fed "
        f"(each {d['generic']['nand2_eq']:.0f} NAND2-eq, about "
        f"{d['generic']['nand2_eq'] / mac['generic']['nand2_eq']:.0f} INT4×INT8 MACs), and "
        "each weight is decoded once per reuse pass, not once per MAC.",
        "",
        "## System level: tokens/s and J/token (accelerator model)",
        "",
        "`sim.accel` with entropy-coded `egrid4_L16` weights stored and moved at their coded size "
        "and decoded between the weight buffer and a 16×16 array of INT8×INT8 8-lane PEs "
        "(`examples/arch/w4a8_egrid.toml`; 16 decoders or 128 = cols × lanes, the array's full "
        "weight rate), against fixed-length dINT4-B on dINT4×INT8 PEs (`w4a8_dint.toml`), same "
        "buffers and DRAM, batch 1, 512 tokens. PEs and decoders priced by synthesis + gate-level "
        "energy (random data). The what-if study `reports/whatif/entropy_coded_decode/` sweeps the "
        "decoder count.",
        "",
        _table(["model", "phase", "design", "decoders", "tokens/s", "J/token", "DRAM J/token", "decode share",
                "area mm²", "bound"],
               [[r["model"], r["phase"], r["arch"], str(r["decoders"]), f"{r['tokens_per_s']:.4g}",
                 f"{r['energy_per_token_j']:.4g}", f"{r['dram_energy_j']:.4g}", f"{r['decode_energy_share']:.0%}",
                 f"{r['area_mm2']:.3f}", r["bound"]] for r in sysrows]),
        "",
        _system_verdict(sysrows),
        "",
        "## Cost model of the decoder",
        "",
        f"{fm.note}; in-sample mean |error| {fm.mean_abs_rel_error:.1%} (max {fm.max_abs_rel_error:.1%}), "
        f"leave-one-out mean {fm.validation['leave_one_out']['mean_abs_rel_error']:.1%} (max "
        f"{fm.validation['leave_one_out']['max_abs_rel_error']:.1%}). Coefficients (NAND2-eq per "
        "feature unit): " + ", ".join(f"{k} {v:.3g}" for k, v in fm.coefficients.items()) + ".",
        "",
        _table(["unit", "L", "S", "synth NAND2-eq", "model", "leave-one-out error"], frows),
        "",
        "## Not covered here",
        "",
        f"Perplexity of the other formats and budgets (only the {len(ppl)} rows above are run: a few "
        "minutes each on this machine); the decoder feeding a LUT-dequant MAC directly; a "
        "pipelined decoder; clock-gated or SRAM-macro symbol storage.",
    ]
    md += [f"- {n}" for n in notes]
    cols = ["model", "format", "kind", "bits_per_element", "ideal_bits_per_element", "relative_mse", "sqnr_db",
            "scaling", "elements"]
    gcols = list(gaps[0]) if gaps else []
    return {
        "variable_length.md": ("\n".join(md) + "\n").encode(),
        "variable_length.csv": _csv(cols, [[r.get(c) for c in cols] for r in rows]),
        "variable_length_gap.csv": _csv(gcols, [[g[c] for c in gcols] for g in gaps]),
        "variable_length_hardware.csv": _csv(["quantity", "decoder", MAC], hrows),
        "variable_length_perplexity.csv": _csv(list(ppl[0]) if ppl else [],
                                               [list(r.values()) for r in ppl]),
        "variable_length.png": _plot(rows),
        "variable_length_system.csv": _csv(list(sysrows[0]), [list(r.values()) for r in sysrows]),
    }
