"""Run one :class:`QuantConfig`: quantize, evaluate perplexity and per-token KL on the
evaluation windows of ``models.realdata.smollm2_perplexity``, and collect per-layer errors.
Results are cached as JSON under ``build/cache/quant/`` by the configuration's hash.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from models import realdata as rd
from models.errors import MacforgeError
from models.quant import ActQuantizer, kl_per_token, weight_error

from ._blas import blas_threads, pinned_blas_threads
from ._config import QuantConfig
from ._smollm2 import ActHook, GoldenHook, KVQuantHook, linear_names, quantize_model, site_of

__all__ = ["run_quant", "cached_result", "cache_dir", "reference_hidden", "window_kl",
           "token_stats", "token_stats_path"]

RESULT_VERSION = 1
#: BLAS threads of every accuracy run (results depend on it in the last bits: ``_blas``)
RUN_BLAS_THREADS = 1
#: default ``workers`` of the CLI, the report warm-up and the benchmark (results do not depend on it)
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


def blas_tag() -> str:
    """``b<threads>`` of the BLAS in effect, part of every cached file name (``bx``: unknown)."""
    n = blas_threads()
    return "bx" if n is None else f"b{n}"


def cache_dir() -> Path:
    """``build/cache/quant`` (or ``$MACFORGE_QUANT_CACHE``), created on demand."""
    default = Path(__file__).resolve().parents[2] / "build" / "cache" / "quant"
    path = Path(os.environ.get("MACFORGE_QUANT_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    # write beside the target, then rename: a reader never sees half a file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def reference_hidden(j: int, window: int) -> np.ndarray:
    """Final normed hidden state (window, d) of the unquantized model on evaluation window
    ``j``, cached: the reference logits are ``hidden @ token_embd.T``, the same product the
    forward's LM head forms, so they equal its logits exactly."""
    path = cache_dir() / f"ref_hidden_v{RESULT_VERSION}_w{window}_j{j}_{blas_tag()}.npy"
    if path.is_file():
        return np.load(path)
    seq = rd.smollm2_eval_windows(j + 1, window)[j]
    h = rd.smollm2_forward(seq, capture=["output"], logits=False).captured["output"]
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
    os.close(fd)
    np.save(tmp, h)
    os.replace(tmp, path)
    return h


def window_kl(j: int, window: int, logits: np.ndarray) -> np.ndarray:
    """Per-token KL(reference ‖ model) on every position of evaluation window ``j``."""
    ref = reference_hidden(j, window) @ rd.smollm2_weights(["token_embd"])["token_embd"].T
    return kl_per_token(ref, logits)


def token_stats_path(qc: QuantConfig) -> Path:
    """Where the per-token NLL / KL of ``qc``'s evaluation are kept (beside its result)."""
    with pinned_blas_threads(RUN_BLAS_THREADS):
        return cache_dir() / f"tokens_{qc.key()}_{blas_tag()}.npz"


def token_stats(qc: QuantConfig) -> dict[str, np.ndarray] | None:
    """Per-token ``nll`` (windows × (window - 1): the scored tokens, window-major) and ``kl``
    (windows × window: every position) of a finished smollm2 run, or None if not kept (a
    result cached before they were stored: run it again with ``use_cache=False``)."""
    path = token_stats_path(qc)
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {"nll": z["nll"], "kl": z["kl"]}


def _finite(v: float) -> float | str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _notes(qc: QuantConfig) -> list[str]:
    notes = []
    wf = qc.weight_format
    if qc.model == "smollm2" and wf is not None and wf.bits <= 4:
        sc = wf.default_scaling if qc.group is None else None
        g = qc.group if isinstance(qc.group, int) else (sc.group_size if sc is not None and
                                                         sc.granularity == "group" else None)
        base = ("SmolLM2's linears ship on a Q4_1 grid (4-bit, blocks of 32, per-block scale "
                "and min): ")
        if g is not None and 32 % g == 0:
            notes.append(base + f"a {wf.bits}-bit fit with groups of {g} can reproduce that grid, "
                         "so its error is biased low (zero for int4_asym g32)")
        elif g is not None and g % 32 == 0:
            notes.append(base + f"a group of {g} spans {g // 32} Q4_1 blocks; the weights are "
                         f"already 4-bit, so {wf.bits}-bit errors are lower than on fp weights")
        else:
            notes.append(base + "the weights are already 4-bit, so 4-bit errors are lower than "
                         "on fp weights")
    if qc.needs_calibration:
        notes.append(f"calibration: {qc.calib} text, {qc.calib_tokens // qc.effective_calib_len} "
                     f"sequences × {qc.effective_calib_len} tokens, disjoint from the "
                     "evaluation windows")
    if qc.smoothing == "aqas":
        notes.append("AQAS α per site on a grid of "
                     f"{qc.alpha_points} points in [0, 0.95], loss on {qc.search_tokens} "
                     f"calibration tokens and {qc.search_rows or 'all'} output rows per linear")
    if qc.allocate is not None:
        notes.append(f"Fisher bit allocation (PAPERS.md §2) around {qc.target_bits:g} bits: int<b> "
                     "per linear, b = b̄ + δ − mean δ, δ = log2 RMS + ½ log2 f̄, rounded, clamped "
                     f"to [2, 8]; f̄ from {qc.fisher_seqs} × {qc.fisher_len} {qc.calib} tokens "
                     "with labels sampled from the model")
    if qc.blocks is not None:
        notes.append(f"only blocks {list(qc.blocks)} quantized (a partial model)")
    return notes


def run_quant(qc: QuantConfig, *, use_cache: bool = True, progress: bool = True,
              with_reference: bool = True, workers: int = 1) -> dict[str, Any]:
    """The result document of one configuration (see :func:`sim.accuracy.cmd_quant`).

    Keys: ``perplexity``, ``reference_perplexity``, ``kl_vs_reference`` (mean per-token KL in
    nats over every position of the evaluation windows), ``kl_vs_reference_max``,
    ``weight_bits_per_element``, ``method``, ``configuration``, ``layers`` (per linear: weight
    SQNR, underflow / rounding split, activation SQNR, α), ``notes``, ``timing_s``, ``cached``.

    Runs with :data:`RUN_BLAS_THREADS` BLAS threads (restored afterwards). ``workers`` > 1 runs
    the calibration sequences and the evaluation windows that many at a time in threads, each
    with those BLAS threads: the same computations, combined in the serial order, so the
    result (and its cache entry) is the same bit for bit; only the time changes.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise MacforgeError(f"workers must be a positive integer, not {workers!r}")
    with pinned_blas_threads(RUN_BLAS_THREADS):
        return _run_quant(qc, use_cache, progress, with_reference, workers)


def cached_result(qc: QuantConfig) -> dict[str, Any] | None:
    """The cached result document of ``qc`` (as :func:`run_quant` would return it), or None."""
    with pinned_blas_threads(RUN_BLAS_THREADS):
        path = cache_dir() / f"result_{qc.key()}_{blas_tag()}.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    doc["cached"] = True
    return doc


def _run_quant(qc: QuantConfig, use_cache: bool, progress: bool,
               with_reference: bool, workers: int = 1) -> dict[str, Any]:
    path = cache_dir() / f"result_{qc.key()}_{blas_tag()}.json"
    if use_cache and path.is_file():
        doc = json.loads(path.read_text())
        doc["cached"] = True
        return doc
    doc = _run_minilm(qc) if qc.model == "minilm" else _run_smollm2(qc, progress, workers)
    per_token = doc.pop("_per_token", None)
    doc["blas_threads"] = blas_threads()
    if with_reference and qc.model == "smollm2" and qc != qc.reference():
        # the reference does not depend on any quantization code: always taken from the cache
        ref = _run_quant(qc.reference(), True, progress, False, workers)
        doc["reference_perplexity"] = ref["perplexity"]
    elif qc.model == "smollm2":
        doc["reference_perplexity"] = doc["perplexity"]
    if per_token is not None:  # paired bootstrap intervals between configurations need these
        buf = io.BytesIO()
        np.savez(buf, **per_token)
        _atomic_write(path.with_name(path.name.replace("result_", "tokens_", 1)
                                     .replace(".json", ".npz")), buf.getvalue())
    _atomic_write(path, json.dumps(doc, indent=1).encode())
    doc["cached"] = False
    return doc


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                disable=None if enabled else True)


def _run_smollm2(qc: QuantConfig, progress: bool, workers: int = 1) -> dict[str, Any]:
    cfg = rd.smollm2_config()
    t0 = time.perf_counter()
    rd.smollm2_weights()
    blocks = list(range(cfg.n_layers)) if qc.blocks is None else list(qc.blocks)
    if any(not 0 <= b < cfg.n_layers for b in blocks):
        raise MacforgeError(f"blocks must be in 0..{cfg.n_layers - 1}, not {list(qc.blocks or [])}")
    rd.smollm2_eval_windows(qc.windows, qc.window)  # validates the window budget early
    t_load = time.perf_counter() - t0

    names = linear_names(blocks) if qc.weight_format is not None or qc.act_format is not None else []
    bar = _bar(len(names) if qc.weight_format is not None else 0, "quantize", progress)
    qm = quantize_model(qc, blocks, progress=lambda _: bar.update(), workers=workers)
    bar.close()
    t_quant = time.perf_counter() - t0 - t_load

    act_q = None if qc.act_format is None else ActQuantizer(
        qc.act_format, qc.act_granularity, qc.act_calibration)

    def make_hook() -> ActHook | None:
        if qc.bitexact:
            assert act_q is not None
            return GoldenHook(act_q, set(names), qm.qweights, qm.static_scales)
        if act_q is not None:
            return ActHook(act_q, set(names), qm.static_scales)
        return None

    kv_hook = None
    if qc.kv_format is not None:
        kv_hook = KVQuantHook(ActQuantizer(qc.kv_format, "token", "dynamic"), set(blocks))
    # one hook per window (they keep per-linear sums), merged below in window order: the same
    # sums as one hook seeing the windows in turn, whichever thread ran which window
    hooks = [make_hook() for _ in range(qc.windows)]
    kls: list[np.ndarray] = [np.empty(0)] * qc.windows
    nlls: list[np.ndarray] = [np.empty(0)] * qc.windows
    wbar = _bar(qc.windows, "evaluate", progress)

    def on_window(j: int, seq: np.ndarray, logits: np.ndarray, nll: np.ndarray) -> None:
        kls[j] = window_kl(j, qc.window, logits)
        nlls[j] = nll  # the per-token terms smollm2_perplexity sums
        wbar.update()

    ppl = rd.smollm2_perplexity(qc.windows, qc.window, weights=qm.weights or None,
                                on_window=on_window, workers=workers,
                                hooks=lambda j: (hooks[j], kv_hook))
    wbar.close()
    t_eval = time.perf_counter() - t0 - t_load - t_quant
    kl = np.concatenate(kls)
    hook = hooks[0]
    if hook is not None:
        for h in hooks[1:]:
            for name in h.signal:
                hook.signal[name] = hook.signal.get(name, 0.0) + h.signal[name]
                hook.noise[name] = hook.noise.get(name, 0.0) + h.noise[name]

    layers = []
    total_bits = total_n = 0.0
    for name in names:
        rec: dict[str, Any] = {"name": name}
        w_ref = qm.reference.get(name)
        if w_ref is not None:
            rec["shape"] = list(w_ref.shape)
            e = weight_error(w_ref, qm.weights[name])
            rec.update(weight_sqnr_db=_finite(e.sqnr_db), weight_mse=e.mse,
                       weight_rounding_mse=e.rounding_mse, weight_underflow_mse=e.underflow_mse,
                       weight_flushed_fraction=e.flushed_fraction)
            q = qm.qweights.get(name)
            bits = q.bits_per_element if q is not None else float(qc.weight_format.bits)
            rec["weight_bits_per_element"] = bits
            total_bits += bits * w_ref.size
            total_n += w_ref.size
        if hook is not None and name in hook.signal:
            sig, err = hook.signal[name], hook.noise[name]
            rec["act_sqnr_db"] = _finite(math.inf if err == 0 else 10 * math.log10(sig / err))
        blk, lin = name.rsplit(".", 1)
        site = f"{blk}.{site_of(lin)}"
        if site in qm.alphas:
            rec["alpha"] = round(qm.alphas[site], 6)
        if name in qm.exponents:
            rec["nupes_exponent"] = qm.exponents[name]
        if name in qm.bits:
            rec["weight_format"] = f"int{qm.bits[name]}"
        if name in qm.gptq_loss:
            rec["gptq_loss"] = qm.gptq_loss[name]
        layers.append(rec)
    return {
        "model": qc.model,
        "method": qc.method,
        "configuration": qc.as_dict(),
        "perplexity": ppl,
        "kl_vs_reference": float(np.mean(kl)),
        "kl_vs_reference_max": float(np.max(kl)),
        "eval_tokens": int(kl.size),
        "weight_bits_per_element": (total_bits / total_n) if total_n else 32.0,
        "weight_bits_note": "mean over the quantized block linears, scales and zero points "
                            "included; embeddings, norms and the tied LM head stay float",
        "calibration_sequences": qm.calib_sequences,
        **({"allocation": {"rule": qc.allocate, "target_mean_bits": qc.target_bits,
                           "mean_element_bits": float(np.average(
                               [qm.bits[n] for n in names],
                               weights=[qm.reference[n].size for n in names])),
                           "fisher_tokens": qc.fisher_seqs * qc.fisher_len,
                           "histogram": {str(b): sum(1 for n in names if qm.bits[n] == b)
                                         for b in sorted(set(qm.bits.values()))}}}
           if qc.allocate else {}),
        "layers": layers,
        "notes": _notes(qc),
        "timing_s": {"load": round(t_load, 2), "quantize": round(t_quant, 2),
                     "evaluate": round(t_eval, 2)},
        **({"quantize_cpu_s": {k: round(v, 2) for k, v in qm.phase_s.items()}}
           if qm.phase_s else {}),
        "_per_token": {"nll": np.stack(nlls), "kl": np.stack(kls)},
    }


def _run_minilm(qc: QuantConfig) -> dict[str, Any]:
    from models.quant import check_group, weight_scaling

    from ._smollm2 import _rtn

    t0 = time.perf_counter()
    wfmt = qc.weight_format
    layers = []
    total_bits = total_n = 0.0
    for name, w in rd.minilm_weights().items():
        rec: dict[str, Any] = {"name": name, "shape": list(w.shape)}
        if wfmt is not None:
            sc = weight_scaling(wfmt, qc.group)
            check_group(name, w.shape[1], sc)
            wq, q = _rtn(w, wfmt, sc)
            e = weight_error(w, wq)
            bits = q.bits_per_element if q is not None else float(wfmt.bits)
            rec.update(weight_sqnr_db=_finite(e.sqnr_db), weight_mse=e.mse,
                       weight_rounding_mse=e.rounding_mse, weight_underflow_mse=e.underflow_mse,
                       weight_flushed_fraction=e.flushed_fraction, weight_bits_per_element=bits)
            total_bits += bits * w.size
            total_n += w.size
        layers.append(rec)
    sq = [r["weight_sqnr_db"] for r in layers if isinstance(r.get("weight_sqnr_db"), float)]
    return {
        "model": qc.model, "method": qc.method, "configuration": qc.as_dict(),
        "perplexity": None, "reference_perplexity": None, "kl_vs_reference": None,
        "weight_bits_per_element": (total_bits / total_n) if total_n else 32.0,
        "mean_weight_sqnr_db": float(np.mean(sq)) if sq else None,
        "layers": layers,
        "notes": ["all-MiniLM-L6-v2 fp32 weights: a weight-only error study (an encoder; no "
                  "perplexity)"],
        "timing_s": {"quantize": round(time.perf_counter() - t0, 2)},
    }
