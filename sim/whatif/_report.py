"""A study's outputs: ``results.csv`` (the DataFrame), Pareto plots with the front marked, and a
markdown summary, all in ``reports/whatif/<study>/``; every number in them comes from the rows.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._study import MODEL_VERSION, ROOT, Study

__all__ = ["pareto_front", "write_outputs", "PARETO_AXES", "baseline_table"]

# (x maximized, y minimized) pairs plotted per workload
PARETO_AXES = (("tokens_per_s", "energy_per_token_j"), ("tokens_per_s", "area_mm2"))


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of the points no other point beats (x larger or equal and y smaller or equal, one
    strictly): maximize x, minimize y."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.lexsort((y, -x))  # by x descending, then y ascending
    mask = np.zeros(len(x), bool)
    best_y = np.inf
    for i in order:
        if y[i] < best_y:
            mask[i] = True
            best_y = y[i]
    return mask


def _label(row: pd.Series, set_cols: list[str]) -> str:
    parts = [str(row["arch"])] + [f"{c[4:]}={row[c]}" for c in set_cols if pd.notna(row[c])]
    return ", ".join(parts)


def _plot(df: pd.DataFrame, x: str, y: str, path: Path, title: str, set_cols: list[str]) -> list[dict[str, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fronts = []
    wls = list(dict.fromkeys(df.workload))
    fig, axes = plt.subplots(1, len(wls), figsize=(5.2 * len(wls), 4.2), squeeze=False)
    for ax, wl in zip(axes[0], wls):
        sub = df[df.workload == wl]
        mask = pareto_front(sub[x].to_numpy(), sub[y].to_numpy())
        ax.scatter(sub[x], sub[y], s=14, c="#9ab", label="points")
        fr = sub[mask].sort_values(x)
        ax.plot(fr[x], fr[y], "o-", c="#c33", ms=5, label="Pareto front")
        for _, r in fr.iterrows():
            fronts.append({"workload": wl, "label": _label(r, set_cols), x: r[x], y: r[y]})
        if len(sub) <= 12:  # few points: name each (its arch and the overrides that vary)
            varying = [c for c in set_cols if sub[c].nunique(dropna=False) > 1]
            for _, r in sub.iterrows():
                ax.annotate(_label(r, varying), (r[x], r[y]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # log minor labels overlap on narrow ranges
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(wl, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fronts


def baseline_table(df: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Each feasible point against the ``baseline`` arch's point with the same workload, variant
    and overrides: PE-level ratios (energy per MAC, PE area) beside system-level ones (J/token,
    tokens/s, chip area, TOPS/W). Ratios are "baseline / this" for costs, "this / baseline" for
    throughput, so > 1 is better for both."""
    ok = df[df.feasible.astype(bool)]
    keys = ["workload", "batch", "seq", "context", "variant"] + [c for c in df.columns if c.startswith("set:")]
    keys = [k for k in keys if k in ok.columns]
    base = ok[ok.arch == baseline]
    # the sweep's settings: columns that vary inside a variant (a variant's own overrides are its name)
    varying = [c for c in df.columns if c.startswith("set:") and c in ok.columns
               and ok.groupby(ok["variant"].astype(str))[c].nunique(dropna=True).max() > 1]
    out = []
    for _, r in ok[ok.arch != baseline].iterrows():
        m = base
        for k in keys:
            m = m[(m[k] == r[k]) | (m[k].isna() & pd.isna(r[k]))]
        if len(m) != 1:
            continue
        b = m.iloc[0]
        out.append({
            "workload": r.workload, "arch": r.arch, "variant": r.variant,
            "settings": ", ".join(f"{c[4:]}={_fmt(r[c])}" for c in varying if not pd.isna(r[c])),
            "pe_energy_x": b.pe_energy_per_mac_pj / r.pe_energy_per_mac_pj, "pe_area_x": b.pe_area_um2 / r.pe_area_um2,
            "energy_per_token_x": b.energy_per_token_j / r.energy_per_token_j,
            "tokens_per_s_x": r.tokens_per_s / b.tokens_per_s, "area_x": b.area_mm2 / r.area_mm2,
            "tops_per_w_x": r.tops_per_w / b.tops_per_w,
            "mac_energy_share": r.energy_j_mac / sum(r[c] for c in ok.columns if c.startswith("energy_j_")),
            "bound": r.bound, "baseline_bound": b.bound,
        })
    return pd.DataFrame(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_outputs(study: Study, df: pd.DataFrame, stats: dict[str, Any], out_dir: Path | None = None) -> list[Path]:
    """Write ``results.csv``, ``pareto_<y>.png`` and ``summary.md``; returns their paths."""
    out = out_dir or ROOT / "reports" / "whatif" / study.name
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.csv"]
    df.to_csv(paths[0], index=False)
    ok = df[df.feasible.astype(bool)]
    set_cols = [c for c in df.columns if c.startswith("set:")]
    where = study.path.relative_to(ROOT) if study.path and study.path.is_relative_to(ROOT) else study.path
    md = [f"# What-if study `{study.name}`", "", study.description, "",
          f"Generated by `macforge whatif {where}`"
          f" (accelerator model {MODEL_VERSION}, PE cost `{study.measure}`, Python {platform.python_version()}): "
          f"{stats['points']} points ({stats['computed']} computed, {stats['cached']} from the point cache), "
          f"{len(ok)} feasible, {stats['points'] - len(ok)} flagged infeasible. Executor {stats['executor']}, "
          f"{stats['workers']} workers, {stats['seconds']:.1f} s.", "",
          "Base accelerators: " + ", ".join(f"`{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}`" for p in study.archs),
          "", "Columns of `results.csv`: inputs (`arch`, `variant`, `set:<field>` overrides, workload) and the "
          "accelerator model's outputs (sim/accel: `tokens_per_s`, `energy_per_token_j`, `area_mm2`, `utilization`, "
          "`bound`, energy and area breakdowns).", ""]
    if len(ok) and study.baseline:
        bt = baseline_table(df, study.baseline)
        if len(bt):
            bt.to_csv(out / "versus_baseline.csv", index=False)
            paths.append(out / "versus_baseline.csv")
            md += [f"## Against `{study.baseline}`: how much of the PE-level saving survives", "",
                   "Ratios baseline/this for costs and this/baseline for throughput (> 1: this point is better). "
                   "`PE energy×` and `PE area×` are the single PE's (energy per MAC, µm² per PE) from the cost "
                   "source above; the system ratios include buffers, DRAM traffic (with each format's scales and "
                   "zero points), the vector unit and the array's utilization. `MAC share` is the fraction of "
                   "this point's energy spent in the PEs.", "",
                   "| workload | arch | variant | settings | PE energy× | PE area× | J/token× | tokens/s× | chip area× | "
                   "TOPS/W× | MAC share | bound (this / baseline) |", "|" + "---|" * 12]
            for r in bt.itertuples():
                md.append(f"| {r.workload} | {r.arch} | {r.variant} | {r.settings or '-'} | {r.pe_energy_x:.2f} | "
                          f"{r.pe_area_x:.2f} | "
                          f"{r.energy_per_token_x:.2f} | {r.tokens_per_s_x:.2f} | {r.area_x:.2f} | {r.tops_per_w_x:.2f} | "
                          f"{r.mac_energy_share:.0%} | {r.bound} / {r.baseline_bound} |")
            md.append("")
    if len(ok):
        for x, y in PARETO_AXES:
            png = out / f"pareto_{y}.png"
            fronts = _plot(ok, x, y, png, f"{study.name}: {y} vs {x} (front: red)", set_cols)
            paths.append(png)
            md += [f"## Pareto front: {x} (higher is better) vs {y} (lower is better)", "", f"![{y}]({png.name})", "",
                   f"| workload | point | {x} | {y} |", "|---|---|---|---|"]
            md += [f"| {f['workload']} | {f['label']} | {_fmt(f[x])} | {_fmt(f[y])} |" for f in fronts]
            md.append("")
        cols = ["workload", "arch"] + set_cols + ["tokens_per_s", "energy_per_token_j", "area_mm2", "utilization",
                                                  "bound"]
        md += ["## All feasible points", "", "| " + " | ".join(c.replace("set:", "") for c in cols) + " |",
               "|" + "---|" * len(cols)]
        for _, r in ok.head(200).iterrows():
            md.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
        if len(ok) > 200:
            md.append(f"\n({len(ok) - 200} more in results.csv)")
        md.append("")
    bad = df[~df.feasible.astype(bool)]
    if len(bad):
        md += ["## Infeasible points", "", "| workload | arch | reason |", "|---|---|---|"]
        md += [f"| {r.workload} | {r.arch} | {r.error} |" for r in bad.head(50).itertuples()]
        md.append("")
    paths.append(out / "summary.md")
    paths[-1].write_text("\n".join(md))
    return paths
