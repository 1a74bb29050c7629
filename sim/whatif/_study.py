"""A what-if study: TOML → the list of independent points it sweeps.

Study file (every key below; unknown keys are errors naming the file, key and line)::

    name = "w4a8_dint_vs_int8"          # default: the file's stem; output reports/whatif/<name>/
    description = "..."
    measure = "model"                   # PE cost: "model" (fitted cost model) | "synth" (each point's
                                        # PE synthesized and simulated for energy: slow)
    arch = ["examples/arch/w8a8_int8.toml", "examples/arch/w4a8_dint.toml"]   # base accelerators
                                        # (relative to the study file, else the repository root)
    baseline = "w8a8_int8"              # optional: summary.md compares every other arch with it

    [sweep]                             # cartesian product of accelerator overrides
    "array.rows" = [16, 32]             # dotted AcceleratorSpec paths (sim/accel/_spec.py)
    "dram.bandwidth_gb_s" = [34.0, 68.0]

    [[variant]]                         # optional groups of overrides that go together (crossed
    name = "int8 PE"                    # with the sweep), e.g. a PE and its formats; `name` (optional)
    "pe.unit" = "dot8_int8xint8"        # labels the variant in the results (default: its index)
    "formats.weights" = "int8"

    [workload]
    models = ["llama-7b"]               # or gemm = ["64x128x32", ...]
    phases = ["prefill", "decode"]
    batch = [1]
    seq = [512]                         # prefill only
    context = [512]                     # decode only

Points are plain JSON-able dicts; ``point_key`` hashes one (with the content of its base arch
file) for the cache.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.errors import MacforgeError
from models.formats._userdef import read_toml
from sim.accel._spec import _where

__all__ = ["Study", "load_study", "study_from_dict", "expand_points", "point_key", "pe_cost_code_digest",
           "MODEL_VERSION"]

ROOT = Path(__file__).resolve().parents[2]
# Bumped when the accelerator model's arithmetic changes, so cached points are recomputed.
MODEL_VERSION = "accel-4"

_TOP = {"name", "description", "measure", "arch", "baseline", "sweep", "variant", "workload"}
_WORKLOAD = {"models", "gemm", "phases", "batch", "seq", "context"}


@dataclass(frozen=True)
class Study:
    """A parsed study (see the module docstring)."""

    name: str
    description: str
    measure: str
    archs: tuple[Path, ...]
    sweep: dict[str, list[Any]]
    variants: tuple[dict[str, Any], ...]
    workload: dict[str, list[Any]]
    path: Path | None = None
    baseline: str | None = None
    arch_text: dict[str, str] = field(default_factory=dict, compare=False)


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def study_from_dict(data: dict[str, Any], path: str = "<dict>", text: str = "", base: Path | None = None) -> Study:
    """A ``Study`` from a parsed TOML document."""
    for k in data:
        if k not in _TOP:
            raise MacforgeError(f"{_where(path, text, (), k)}: unknown key; known here: {', '.join(sorted(_TOP))}")
    measure = data.get("measure", "model")
    if measure not in ("model", "synth"):
        raise MacforgeError(f"{_where(path, text, (), 'measure')}: must be 'model' or 'synth', not {measure!r}")
    archs = _as_list(data.get("arch", []))
    if not archs or not all(isinstance(a, str) for a in archs):
        raise MacforgeError(f"{_where(path, text, (), 'arch')}: must be a list of accelerator TOML paths")
    resolved = []
    for a in archs:
        cands = [Path(a)] if Path(a).is_absolute() else [p / a for p in ([base] if base else []) + [ROOT]]
        hit = next((c for c in cands if c.exists()), None)
        if hit is None:
            raise MacforgeError(f"{_where(path, text, (), 'arch')}: accelerator file {a!r} not found")
        resolved.append(hit.resolve())
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        raise MacforgeError(f"{_where(path, text, (), 'sweep')}: must be a table of override lists")
    sweep = {k: _as_list(v) for k, v in sweep.items()}
    for k, v in sweep.items():
        if not v:
            raise MacforgeError(f"{_where(path, text, ('sweep',), k)}: needs at least one value")
    variants = data.get("variant", [{}])
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise MacforgeError(f"{_where(path, text, (), 'variant')}: must be an array of tables ([[variant]])")
    names = [v.get("name") for v in variants]
    for i, n in enumerate(names):
        if n is not None and (not isinstance(n, str) or not n.strip()):
            raise MacforgeError(f"{_where(path, text, ('variant',), 'name')}: variant {i}'s name must be a "
                                f"non-empty string, not {n!r}")
    dup = {n for n in names if n is not None and names.count(n) > 1}
    if dup:
        raise MacforgeError(f"{_where(path, text, ('variant',), 'name')}: variant name {sorted(dup)[0]!r} is "
                            f"used twice")
    wl = data.get("workload", {})
    if not isinstance(wl, dict):
        raise MacforgeError(f"{_where(path, text, (), 'workload')}: must be a table")
    for k in wl:
        if k not in _WORKLOAD:
            raise MacforgeError(f"{_where(path, text, ('workload',), k)}: unknown key; known here: "
                                f"{', '.join(sorted(_WORKLOAD))}")
    workload = {k: _as_list(v) for k, v in wl.items()}
    if not workload.get("models") and not workload.get("gemm"):
        raise MacforgeError(f"{path}: [workload] needs models = [...] or gemm = [...]")
    name = data.get("name") or (Path(path).stem if path != "<dict>" else "study")
    texts = {str(p): p.read_text() for p in resolved}
    baseline = data.get("baseline")
    if baseline is not None and baseline not in {p.stem for p in resolved}:
        raise MacforgeError(f"{_where(path, text, (), 'baseline')}: {baseline!r} is not one of the arch files' "
                            f"names ({', '.join(p.stem for p in resolved)})")
    return Study(str(name), str(data.get("description", "")), measure, tuple(resolved), sweep,
                 tuple(variants), workload, Path(path) if path != "<dict>" else None, baseline, texts)


def load_study(path: str | Path) -> Study:
    """Read a study TOML file (errors name the file, the key and its line)."""
    p = Path(path)
    data, text = read_toml(p, "study")
    return study_from_dict(data, str(p), text, p.parent.resolve())


def _workloads(w: dict[str, list[Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for g in w.get("gemm", []):
        out.append({"gemm": str(g)})
    for model in w.get("models", []):
        for phase in w.get("phases", ["decode"]):
            for batch in w.get("batch", [1]):
                if phase == "prefill":
                    for seq in w.get("seq", [512]):
                        out.append({"model": model, "phase": phase, "batch": batch, "seq": seq})
                else:
                    for ctx in w.get("context", [512]):
                        out.append({"model": model, "phase": phase, "batch": batch, "context": ctx})
    return out


def expand_points(study: Study) -> list[dict[str, Any]]:
    """Every point: base arch × variant × sweep product × workload (plain dicts)."""
    keys = list(study.sweep)
    combos = list(itertools.product(*(study.sweep[k] for k in keys))) if keys else [()]
    points = []
    for arch in study.archs:
        for vi, var in enumerate(study.variants):
            label = var.get("name", vi)
            for combo in combos:
                over = {k: v for k, v in var.items() if k != "name"}
                over.update(zip(keys, combo))
                for wl in _workloads(study.workload):
                    points.append({"arch": str(arch), "variant": label, "overrides": over, "workload": wl,
                                   "measure": study.measure})
    return points


def point_key(point: dict[str, Any], arch_text: str) -> str:
    """Cache key of a point: its spec, its base arch file's content, ``MODEL_VERSION`` and the
    source of the code that prices its PE (``pe_cost_code_digest``), so a change of the RTL, the
    synthesis/energy flow or the cost model recomputes the points it priced."""
    ident = json.dumps({"p": {k: v for k, v in point.items() if k != "arch"}, "arch": _text_hash(arch_text),
                        "v": MODEL_VERSION, "cost": pe_cost_code_digest(str(point.get("measure", "model")))},
                       sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()[:24]


# What a PE's price depends on, by ``measure``: the unit definitions and the RTL for both; the
# synthesis and gate-level energy flow for "synth"; the fitted cost model for "model".
_COST_SOURCES = {"model": ("models/units.py", "models/formats", "models/cost.py", "sim/costfit.py", "rtl"),
                 "synth": ("models/units.py", "models/formats", "rtl")}


@lru_cache(maxsize=4)
def pe_cost_code_digest(measure: str) -> str:
    """Digest of the source files that price a PE under ``measure`` (directories: every .py)."""
    h = hashlib.sha256()
    for rel in _COST_SOURCES.get(measure, _COST_SOURCES["model"]):
        p = ROOT / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=256)
def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
