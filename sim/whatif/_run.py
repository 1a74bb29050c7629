"""Evaluate a study's points: cache by point hash, local process pool or Dask, resume.

Every finished point is appended (one JSON line ``{"key", "row"}``, flushed at once) by the
worker that computed it to a ``part-*.jsonl`` file in ``build/cache/whatif/<study>/``, so killing
a sweep loses only the points in flight (a torn last line is ignored) and a re-run computes only
the missing ones. One file per chunk rather than per point: creating thousands of small files
cost more than evaluating the points. A point whose spec cannot work (a format the PE cannot consume,
a tile that fits no buffer, ...) is a row with ``feasible = False`` and the error, not a crash.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from models.errors import MacforgeError

from ._study import ROOT, Study, expand_points, point_key

__all__ = ["evaluate_point", "run_study", "RunStats", "CACHE_ROOT", "POINT_DELAY_ENV", "read_cache"]

CACHE_ROOT = ROOT / "build" / "cache" / "whatif"
# Seconds to sleep per point (only for tests and demos of kill/resume; unset in normal use).
POINT_DELAY_ENV = "MACFORGE_WHATIF_POINT_DELAY"

_OUT = ("tokens_per_s", "energy_per_token_j", "area_mm2", "cycles", "cycles_compute", "utilization", "bound",
        "tops", "tops_per_mm2", "tops_per_w", "power_w", "time_s", "dram_bytes", "macs", "pe_unit", "lanes",
        "rows", "cols", "arrays", "dataflow", "pe_area_um2", "pe_energy_per_mac_pj", "decoders")


@lru_cache(maxsize=64)
def _base_spec(path: str, text: str) -> Any:
    from sim.accel import arch_from_dict

    data = tomllib.loads(text)
    data.setdefault("name", Path(path).stem)
    return arch_from_dict(data, path, text)


def _spec_of(point: dict[str, Any], arch_text: str) -> Any:
    return _prepared(point, arch_text)[0]


def _prepared(point: dict[str, Any], arch_text: str) -> tuple[Any, Any]:
    """The point's accelerator spec and its tensor formats."""
    over = dict(point["overrides"])
    if point.get("measure") == "synth":
        over["pe.cost"] = "synth"
    # A sweep lists each configuration's workloads one after another (expand_points): the spec
    # (validated dataclass replaces, a quarter of a point's time) is built once for them.
    return _spec_cached(point["arch"], arch_text, json.dumps(over, sort_keys=True, default=str))


@lru_cache(maxsize=16)
def _spec_cached(path: str, arch_text: str, overrides_json: str) -> tuple[Any, Any]:
    from sim.accel import resolve_formats

    spec = _base_spec(path, arch_text)
    over = json.loads(overrides_json)
    spec = spec.replace(**over) if over else spec
    return spec, resolve_formats(spec)


def _workload_of(formats: Any, wl: dict[str, Any]) -> Any:
    from sim.accel import gemm_workload, parse_gemm, transformer_workload

    if "gemm" in wl:
        return gemm_workload(*parse_gemm(wl["gemm"]), formats=formats)
    return transformer_workload(wl["model"], wl["phase"], batch=int(wl["batch"]), seq=int(wl.get("seq", 512)),
                                context=int(wl.get("context", 512)), formats=formats)


@lru_cache(maxsize=64)
def _stem(path: str) -> str:
    return Path(path).stem


def evaluate_point(point: dict[str, Any], arch_text: str) -> dict[str, Any]:
    """One row: the point's inputs (``arch``, ``variant``, each override, the workload) and the
    accelerator model's outputs, or ``feasible = False`` and ``error``."""
    from sim.accel import evaluate_summary

    delay = float(os.environ.get(POINT_DELAY_ENV, "0") or 0)
    if delay:
        time.sleep(delay)
    row: dict[str, Any] = {"arch": _stem(point["arch"]), "variant": point["variant"], "measure": point["measure"]}
    row.update({f"set:{k}": v for k, v in point["overrides"].items()})
    wl = point["workload"]
    row["workload"] = wl.get("gemm") or f"{wl['model']}-{wl['phase']}"
    row.update({k: wl.get(k) for k in ("model", "phase", "batch", "seq", "context")})
    try:
        spec, formats = _prepared(point, arch_text)
        s = evaluate_summary(spec, _workload_of(formats, wl))
    except MacforgeError as e:
        row.update(feasible=False, error=str(e))
        return row
    row.update({k: s[k] for k in _OUT})
    row.update({f"format_{k}": v for k, v in (s["formats"] or {}).items()})
    row.update({f"energy_j_{k}": v for k, v in s["energy_j_breakdown"].items()})
    row.update({f"area_mm2_{k}": v for k, v in s["area_mm2_breakdown"].items()})
    row.update(feasible=True, error="")
    return row


def _eval_chunk(items: Sequence[tuple[str, dict[str, Any]]], texts: dict[str, str],
                cache_dir: str) -> list[tuple[str, dict[str, Any]]]:
    """Worker: evaluate points (``texts``: base arch file contents by path, sent once per chunk),
    appending each one's row to the cache as soon as it is done."""
    out = []
    path = Path(cache_dir) / f"part-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
    with open(path, "a") as f:
        for key, point in items:
            row = evaluate_point(point, texts[point["arch"]])
            f.write(json.dumps({"key": key, "row": row}, default=str) + "\n")
            f.flush()  # in the OS as soon as it is computed: a killed worker loses only its current point
            out.append((key, row))
    return out


def read_cache(cache_dir: Path) -> dict[str, dict[str, Any]]:
    """Every cached row by point key (torn lines from a killed writer are skipped)."""
    rows: dict[str, dict[str, Any]] = {}
    for part in sorted(Path(cache_dir).glob("part-*.jsonl")):
        for line in part.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[rec["key"]] = rec["row"]
    return rows


class RunStats(dict):  # type: ignore[type-arg]
    """``points``, ``cached`` (found in the cache), ``computed``, ``infeasible``, ``seconds``."""


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _distinct_pes(study: Study, points: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """One point per distinct PE definition (base arch + its ``pe.*`` overrides)."""
    seen: dict[Any, tuple[dict[str, Any], str]] = {}
    done: set[tuple[str, int]] = set()  # a configuration's workloads share one overrides dict
    for p in points:
        if (p["arch"], id(p["overrides"])) in done:
            continue
        done.add((p["arch"], id(p["overrides"])))
        pe_over = tuple(sorted((k, str(v)) for k, v in p["overrides"].items() if k.startswith("pe.")))
        seen.setdefault((p["arch"], pe_over), (p, study.arch_text[p["arch"]]))
    return list(seen.values())


def _warm_pe(item: tuple[dict[str, Any], str]) -> None:
    """Price one PE (fit the cost model, or synthesize and simulate the unit) so the points that
    share it find it cached; a PE that cannot work is flagged later, per point."""
    from sim.accel._costs import arch_pe_costs

    try:
        arch_pe_costs(_spec_of(*item))
    except MacforgeError:
        pass


def run_study(study: Study, executor: str = "local", workers: int = 2, scheduler: str | None = None,
              progress: bool = True, cache_dir: Path | None = None) -> tuple[pd.DataFrame, RunStats]:
    """Evaluate every point of ``study`` (cached points are read, not recomputed)."""
    from tqdm import tqdm

    if executor not in ("local", "dask"):
        raise MacforgeError(f"--executor must be 'local' or 'dask', not {executor!r}")
    if not isinstance(workers, int) or workers < 1:
        raise MacforgeError(f"--workers must be a positive integer, not {workers!r}")
    t0 = time.perf_counter()
    points = expand_points(study)
    cdir = cache_dir or CACHE_ROOT / study.name
    cdir.mkdir(parents=True, exist_ok=True)
    found = read_cache(cdir)
    bar = tqdm(total=len(points), desc=f"whatif {study.name}", file=sys.stderr, disable=not progress or None,
               leave=False)
    keys: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    todo: dict[str, dict[str, Any]] = {}
    size = max(1, min(256, len(points) // (workers * 8) or 1))

    def todo_chunks() -> Iterable[list[tuple[str, dict[str, Any]]]]:
        """Hash the points block by block; a block's uncached points are submitted as soon as
        they are known, so the workers start while the parent is still hashing. Each block's
        uncached points go out in up to ``workers`` pieces: in a mostly cached study the new
        points may all sit in a few blocks, which must still spread over every worker."""
        for block in _chunks(points, size):
            chunk = []
            for p in block:
                k = point_key(p, study.arch_text[p["arch"]])
                keys.append(k)
                if k in found:
                    rows[k] = found[k]
                elif k not in todo:
                    todo[k] = p
                    chunk.append((k, p))
            bar.update(len(block) - len(chunk))
            step = -(-len(chunk) // workers)
            for i in range(0, len(chunk), step or 1):
                yield chunk[i:i + step]

    if study.measure == "model" and executor == "local":
        def warmed_first() -> Iterable[list[tuple[str, dict[str, Any]]]]:
            # Before the first uncached point is submitted (the pool forks its workers on the first
            # submit): the global cost fit (then cached) and the numba kernel, once in the parent
            # instead of once per worker. A fully cached study does neither.
            for i, chunk in enumerate(todo_chunks()):
                if i == 0:
                    for item in _distinct_pes(study, points):
                        _warm_pe(item)
                    from sim.accel._kernel import warm

                    warm()
                yield chunk

        _run_local(warmed_first(), study.arch_text, [], str(cdir), workers, rows, bar)
    else:
        chunks = list(todo_chunks())
        if chunks:
            pes = _distinct_pes(study, list(todo.values()))
            if study.measure == "model":
                for item in pes:
                    _warm_pe(item)
                pes = []
            if executor == "local":
                _run_local(chunks, study.arch_text, pes, str(cdir), workers, rows, bar)
            else:
                _run_dask(chunks, study.arch_text, pes, str(cdir), workers, scheduler, rows, bar)
    bar.close()
    df = pd.DataFrame([rows[k] for k in keys])
    stats = RunStats(points=len(points), cached=len(points) - sum(1 for k in keys if k not in found),
                     computed=len(todo), infeasible=int((~df.feasible.astype(bool)).sum()) if len(df) else 0,
                     seconds=time.perf_counter() - t0, executor=executor, workers=workers)
    return df, stats


def _run_local(chunks: Iterable[list[Any]], texts: dict[str, str], pes: list[Any], cdir: str, workers: int,
               rows: dict[str, Any], bar: Any) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        # measure = "synth": each distinct PE once, in parallel, before the points that share it
        list(pool.map(_warm_pe, pes))
        futs = [pool.submit(_eval_chunk, c, texts, cdir) for c in chunks]
        for f in as_completed(futs):
            done = f.result()
            rows.update(done)
            bar.update(len(done))


def _run_dask(chunks: list[list[Any]], texts: dict[str, str], pes: list[Any], cdir: str, workers: int,
              scheduler: str | None, rows: dict[str, Any], bar: Any) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:  # a local cluster on loopback only
        # the scheduler always runs an HTTP server: a free loopback port, never a fixed public one
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                               host="127.0.0.1")
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            client.gather(client.map(_warm_pe, pes, pure=False))  # measure = "synth": each PE once
            futs = client.map(_eval_chunk, chunks, texts=texts, cache_dir=cdir, pure=False)
            for f in as_completed(futs):
                done = f.result()
                rows.update(done)
                bar.update(len(done))
    finally:
        if cluster is not None:
            cluster.close()
