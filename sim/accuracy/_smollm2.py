"""SmolLM2 specifics of the accuracy runs: where smoothing scales fold, the calibration text,
the layer-by-layer calibration pass, the activation / KV / bit-exact hooks of the forward.

The four smoothing sites of a block and what absorbs ``1/s``:

==========  ==========================  ===========================================
site        consumers (columns × s)     producer (÷ s)
==========  ==========================  ===========================================
attn_in     attn_q, attn_k, attn_v      attn_norm weight
attn_out    attn_output                 attn_v rows (s tied over the 3 query heads
                                        that share a value head: GQA)
ffn_in      ffn_gate, ffn_up            ffn_norm weight
ffn_out     ffn_down                    ffn_up rows (silu(gate)·up is linear in up)
==========  ==========================  ===========================================

Every fold is exact in float: the unquantized model computes the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
import time
from typing import Any

import numpy as np

from models import realdata as rd
from models.errors import MacforgeError
from models.formats import Format, QuantizedTensor, Scaling, get_format
from models.quant import (
    ActQuantizer,
    QuantizedActivation,
    aqas_scales,
    alpha_grid,
    check_group,
    decoupleq_quantize,
    gptq_quantize_shared,
    hessian,
    nupes_search,
    smoothquant_scales,
    split_rows,
    weight_scaling,
)

__all__ = ["SITES", "site_of", "calibration_sequences", "QuantizedModel", "quantize_model",
           "ActHook", "GoldenHook", "KVQuantHook", "linear_names"]

#: site -> (consumers, producer kind, producer name)
SITES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "attn_in": (("attn_q", "attn_k", "attn_v"), "norm", "attn_norm"),
    "attn_out": (("attn_output",), "rows_gqa", "attn_v"),
    "ffn_in": (("ffn_gate", "ffn_up"), "norm", "ffn_norm"),
    "ffn_out": (("ffn_down",), "rows", "ffn_up"),
}
_SITE_OF = {lin: site for site, (cons, _, _) in SITES.items() for lin in cons}


def site_of(linear: str) -> str:
    """The smoothing site whose input ``linear`` (e.g. ``attn_k``) consumes."""
    return _SITE_OF[linear]


def linear_names(blocks: Iterable[int]) -> list[str]:
    return [f"blk.{i}.{lin}" for i in blocks for lin in rd.SMOLLM2_LINEARS]


def _gqa_groups(cfg: rd.SmolLM2Config) -> np.ndarray:
    """Label of each attn_output input channel = the value channel it reads (GQA)."""
    per_kv = cfg.n_heads // cfg.n_kv_heads
    heads = np.arange(cfg.n_heads) // per_kv
    return (heads[:, None] * cfg.head_dim + np.arange(cfg.head_dim)[None, :]).reshape(-1)


def calibration_sequences(source: str, n_tokens: int, seq_len: int,
                          eval_tokens: int) -> list[np.ndarray]:
    """``n_tokens // seq_len`` calibration sequences of ``seq_len`` tokens.

    ``wiki``: taken from the end of :func:`models.realdata.wiki_tokens`, refused if they would
    overlap the evaluation windows (its first ``eval_tokens`` tokens). ``news``: the start of
    :func:`models.realdata.news_tokens` (gensim's Lee news corpus).
    """
    n_seq = n_tokens // seq_len
    if n_seq < 1:
        raise MacforgeError(f"calibration budget {n_tokens} tokens is shorter than one "
                            f"{seq_len}-token sequence")
    need = n_seq * seq_len
    if source == "wiki":
        ids = rd.wiki_tokens()
        start = ids.size - need
        if start < eval_tokens:
            raise MacforgeError(f"calibration text too short: {need} Wikipedia tokens asked, only "
                                f"{ids.size - eval_tokens} follow the evaluation windows")
    elif source == "news":
        ids = rd.news_tokens()
        start = 0
        if need > ids.size:
            raise MacforgeError(f"calibration text too short: {need} news tokens asked, the Lee "
                                f"corpus has {ids.size}")
    else:
        raise MacforgeError(f"unknown calibration text {source!r}; known: wiki, news")
    return [np.asarray(ids[start + j * seq_len:start + (j + 1) * seq_len]) for j in range(n_seq)]


# ------------------------------------------------------------------------------ the hooks
class ActHook:
    """Linear hook: quantize the input of every quantized linear, then ``x_q @ w.T``.

    Linears sharing one input (q/k/v, gate/up) quantize it once. Keeps, per linear, the sums
    Σx² and Σ(x - x_q)² for the activation SQNR.
    """

    def __init__(self, quantizer: ActQuantizer | None, names: set[str],
                 static_scales: dict[str, float] | None = None) -> None:
        self.quantizer = quantizer
        self.names = names
        self.static_scales = static_scales or {}
        self.signal: dict[str, float] = {}
        self.noise: dict[str, float] = {}
        self._last: tuple[Any, str, QuantizedActivation, float, float] | None = None

    def quantized(self, name: str, x: np.ndarray) -> QuantizedActivation:
        assert self.quantizer is not None
        site_key = name.rsplit(".", 1)[0] + "." + site_of(name.rsplit(".", 1)[1])
        if self._last is not None and self._last[0] is x and self._last[1] == site_key:
            _, _, aq, sig, err = self._last
        else:
            aq = self.quantizer.quantize(x, self.static_scales.get(site_key))
            x64 = x.astype(np.float64)
            sig = float(np.sum(x64 * x64))
            err = float(np.sum((x64 - aq.values) ** 2))
            self._last = (x, site_key, aq, sig, err)
        self.signal[name] = self.signal.get(name, 0.0) + sig
        self.noise[name] = self.noise.get(name, 0.0) + err
        return aq

    def __call__(self, name: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.quantizer is None or name not in self.names:
            return x @ w.T
        return self.quantized(name, x).values @ w.T


class GoldenHook(ActHook):
    """Linear hook running every quantized linear through ``models.golden.gemm``: integer
    weight codes × integer activation codes per weight group, then the weight scale, the
    format's integer unit (1/2 for dINT) and the activation scale in float64."""

    def __init__(self, quantizer: ActQuantizer, names: set[str], qweights: dict[str, QuantizedTensor],
                 static_scales: dict[str, float] | None = None) -> None:
        super().__init__(quantizer, names, static_scales)
        from models.units import weight_decode

        if quantizer.fmt.kind != "int":
            raise MacforgeError(f"the bit-exact path needs a signed integer activation format, "
                                f"not {quantizer.fmt.name}")
        missing = sorted(n for n in names if n not in qweights)
        if missing:
            raise MacforgeError(f"no quantized weight codes for {missing[0]}")
        self.qweights = qweights
        fmt = next(iter(qweights.values())).format
        self.unit = float(weight_decode(fmt).unit)

    def __call__(self, name: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if name not in self.names:
            return x @ w.T
        from models.golden import gemm

        aq = self.quantized(name, x)
        assert self.quantizer is not None
        a_int = self.quantizer.fmt.decode(aq.codes).astype(np.int64)
        qt = self.qweights[name]
        n, k = qt.shape
        sc = qt.scaling
        if sc.granularity == "tensor":
            g, scales = k, np.full((n, 1), float(qt.scales.reshape(-1)[0]) * qt.tensor_scale)
        else:
            g = k if sc.granularity == "channel" else sc.group_size
            scales = qt.scales.reshape(n, k // g) * qt.tensor_scale
        if qt.offsets is not None:
            raise MacforgeError(f"{qt.format.name} has float offsets: no integer GEMM")
        zps = None if qt.zero_points is None else np.broadcast_to(
            qt.zero_points.reshape(n, -1), (n, k // g))
        out = np.zeros((x.shape[0], n))
        for j in range(k // g):
            sl = slice(j * g, (j + 1) * g)
            acc = gemm(qt.codes[:, sl], a_int[:, sl], qt.format, self.quantizer.fmt.name,
                       zero_points=None if zps is None else zps[:, j:j + 1],
                       group_size=None if zps is None else g)
            out += acc.astype(np.float64) * scales[:, j][None, :]
        a_scale = aq.scales.reshape(-1, 1) if aq.scales.size > 1 else float(aq.scales[0])
        return (out * self.unit * a_scale).astype(np.float32)


class KVQuantHook:
    """KV hook: keys (after RoPE) and values quantized per (head, token) with ``quantizer``."""

    def __init__(self, quantizer: ActQuantizer, blocks: set[int]) -> None:
        self.quantizer = quantizer
        self.blocks = blocks

    def __call__(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if layer not in self.blocks:
            return k, v
        q = self.quantizer

        def one(t: np.ndarray) -> np.ndarray:
            return q.quantize(t.reshape(-1, t.shape[-1])).values.reshape(t.shape)
        return one(k), one(v)


# ----------------------------------------------------------------------- model quantization
@dataclass
class QuantizedModel:
    """What quantizing SmolLM2 produced: replacement tensors for the forward, the weight codes
    of every quantized linear, static activation scales and per-layer facts."""

    weights: dict[str, np.ndarray] = field(default_factory=dict)
    qweights: dict[str, QuantizedTensor] = field(default_factory=dict)
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    """each quantized linear's weight right before rounding (smoothed, float)"""
    static_scales: dict[str, float] = field(default_factory=dict)
    alphas: dict[str, float] = field(default_factory=dict)
    smoothing: dict[str, np.ndarray] = field(default_factory=dict)
    """per consumer linear: the input-channel scales s its input was divided by"""
    gptq_loss: dict[str, float] = field(default_factory=dict)
    exponents: dict[str, float] = field(default_factory=dict)
    bits: dict[str, int] = field(default_factory=dict)
    """element bits per linear of a bit allocation"""
    calib_sequences: int = 0
    allocation: dict[str, Any] = field(default_factory=dict)
    phase_s: dict[str, float] = field(default_factory=dict)
    """process CPU seconds of the calibrated path's phases (calibration forwards, smoothing
    search, Hessian rounding, RTN)"""

    def add_time(self, phase: str, t0: float) -> float:
        t = time.process_time()
        self.phase_s[phase] = self.phase_s.get(phase, 0.0) + t - t0
        return t


def _scaling_for(fmt: Format, group: int | str | None, name: str, in_features: int,
                 outliers: float = 0.0) -> Scaling | None:
    sc = weight_scaling(fmt, group)
    check_group(name, in_features, sc)
    if outliers and sc is not None:  # PAPERS.md §2: top |w| kept as BF16 + 32-bit index
        sc = replace(sc, outlier_fraction=float(outliers))
    return sc


def _rtn(w: np.ndarray, fmt: Format, sc: Scaling | None) -> tuple[np.ndarray, QuantizedTensor | None]:
    if sc is None:  # unscaled float format: element rounding only
        return fmt.decode(fmt.encode(np.asarray(w, dtype=np.float64))).astype(np.float32), None
    q = fmt.quantize(w, sc)
    return q.dequantize().astype(np.float32), q


def _fold(cur: dict[str, np.ndarray], block: int, site: str, s: np.ndarray,
          cfg: rd.SmolLM2Config) -> None:
    """Fold ``1/s`` into the producer and ``s`` into the consumers of ``site`` (in place)."""
    p = f"blk.{block}."
    cons, kind, prod = SITES[site]
    s32 = s.astype(np.float32)
    for c in cons:
        cur[p + c] = cur[p + c] * s32[None, :]
    if kind == "norm":
        cur[p + prod] = cur[p + prod] / s32
    elif kind == "rows":
        cur[p + prod] = cur[p + prod] / s32[:, None]
    else:  # GQA: the scale of a value channel = the (tied) scale of the channels reading it
        per_kv = cfg.n_heads // cfg.n_kv_heads
        s_kv = s32.reshape(cfg.n_kv_heads, per_kv, cfg.head_dim)[:, 0, :].reshape(-1)
        cur[p + prod] = cur[p + prod] / s_kv[:, None]


def quantize_model(qc: Any, blocks: list[int], progress: Callable[[str], None] | None = None,
                   workers: int = 1) -> QuantizedModel:
    """Quantize the linears of ``blocks`` per the QuantConfig ``qc`` (see module docstring).

    Without calibration (RTN, dynamic activations) each linear is rounded on its own. With
    calibration the model is processed block by block on the calibration sequences: a float
    pass of the block captures the inputs of its four sites; smoothing scales are chosen and
    folded; the block's linears are rounded (RTN) or GPTQ-quantized with the Hessian of their
    (smoothed) calibration inputs; static activation scales are taken; then the calibration
    stream is propagated through the block with its quantized weights (activations float),
    so later blocks calibrate on what the quantized model feeds them.

    ``workers`` > 1 runs the calibration sequences through each block that many at a time in
    threads (the same per-sequence computations, kept in sequence order: the same result).
    """
    cfg = rd.smollm2_config()
    wfmt = qc.weight_format
    all_w = rd.smollm2_weights()
    qm = QuantizedModel()
    act_q = None if qc.act_format is None else ActQuantizer(
        qc.act_format, qc.act_granularity, qc.act_calibration)
    # scalings first: a bad group size fails before any work, naming the layer
    scalings = {}
    if wfmt is not None:
        for name in linear_names(blocks):
            scalings[name] = _scaling_for(wfmt, qc.group, name, all_w[name].shape[1], qc.outliers)

    if qc.allocate is not None:
        qm.bits = _allocation(qc, blocks)
        for name, b in qm.bits.items():
            scalings[name] = _scaling_for(get_format(f"int{b}"), qc.group, name,
                                          all_w[name].shape[1])
    if not qc.needs_calibration:
        if wfmt is not None:
            for name in linear_names(blocks):
                qm.reference[name] = np.asarray(all_w[name])
                fmt, sc = wfmt, scalings[name]
                if name in qm.bits:
                    fmt = get_format(f"int{qm.bits[name]}")
                if qc.rounding == "nupes":
                    res = nupes_search(all_w[name], wfmt.bits, qc.group, rows=qc.search_rows,
                                       seed=qc.seed)
                    fmt, sc = res.format, weight_scaling(res.format, qc.group)
                    qm.exponents[name] = res.exponent
                qm.weights[name], q = _rtn(all_w[name], fmt, sc)
                if q is not None:
                    qm.qweights[name] = q
                if progress:
                    progress(name)
        return qm

    seqs = calibration_sequences(qc.calib, qc.calib_tokens, qc.effective_calib_len,
                                 qc.windows * qc.window)
    qm.calib_sequences = len(seqs)
    emb = all_w["token_embd"]
    streams = [emb[s].astype(np.float32) for s in seqs]
    pool = ThreadPoolExecutor(workers) if workers > 1 else None

    def each(fn: Callable[[Any], Any], xs: list[Any]) -> list[Any]:
        """``[fn(x) for x in xs]``, on the pool when there is one (results in order)."""
        return [fn(x) for x in xs] if pool is None else list(pool.map(fn, xs))

    try:
        return _calibrated(qc, blocks, progress, qm, streams, scalings, act_q, all_w, cfg, each)
    finally:
        if pool is not None:
            pool.shutdown()


def _calibrated(qc: Any, blocks: list[int], progress: Callable[[str], None] | None, qm: QuantizedModel,
                streams: list[np.ndarray], scalings: dict[str, Scaling | None], act_q: ActQuantizer | None,
                all_w: Any, cfg: rd.SmolLM2Config,
                each: Callable[[Callable[[Any], Any], list[Any]], list[Any]]) -> QuantizedModel:
    """The calibrated path of :func:`quantize_model`, block by block (``each``: map over the
    calibration streams)."""
    wfmt = qc.weight_format
    block_set = set(blocks)
    cur: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(qc.seed)
    last = max(blocks)
    for i in range(last + 1):
        p = f"blk.{i}."
        t0 = time.process_time()
        if i not in block_set:
            streams = each(lambda x: rd.smollm2_block(x, i, weights=cur), streams)
            qm.add_time("calibration forward", t0)
            continue
        for lin in rd.SMOLLM2_LINEARS + ("attn_norm", "ffn_norm"):
            cur[p + lin] = np.array(all_w[p + lin], dtype=np.float32)
        caps = _capture_sites(streams, i, cur, each)
        t0 = qm.add_time("calibration forward", t0)
        # Smoothing. No site's search reads a tensor another site of the block folds into (its
        # consumers are never another site's producer or consumers; module docstring), so every
        # search runs on the unfolded block, on the pool, and the folds follow in site order:
        # the serial loop's result. The random draws are taken first, in site order.
        found: dict[str, tuple[np.ndarray, float | None]] = {}
        if qc.smoothing == "aqas":
            jobs = [_aqas(qc, caps[site], [cur[p + c] for c in cons], cons, p, scalings, act_q,
                          _gqa_groups(cfg) if site == "attn_out" else None, rng)
                    for site, (cons, _, _) in SITES.items()]
            found = {site: (sa[0], sa[1]) for site, sa in zip(SITES, each(lambda job: job(), jobs))}
        elif qc.smoothing == "smoothquant":
            for site, (cons, _, _) in SITES.items():
                found[site] = (smoothquant_scales(np.max(np.abs(caps[site]), axis=0),
                                                  [cur[p + c] for c in cons], qc.alpha,
                                                  _gqa_groups(cfg) if site == "attn_out" else None),
                               None)
        for site, (cons, _, _) in SITES.items():
            x = caps[site]
            if site in found:
                s, alpha = found[site]
                if alpha is not None:
                    qm.alphas[p + site] = alpha
                _fold(cur, i, site, s, cfg)
                for c in cons:
                    qm.smoothing[p + c] = s
                x = x / s.astype(np.float32)[None, :]
                caps[site] = x
            if act_q is not None and qc.act_calibration == "static":
                qm.static_scales[p + site] = act_q.static_scale(float(np.max(np.abs(x))))
        if qc.smoothing is not None or qc.act_calibration == "static":
            t0 = qm.add_time("smoothing search" if qc.smoothing else "static scales", t0)
        for lin in ("attn_norm", "ffn_norm"):
            qm.weights[p + lin] = cur[p + lin]
        for site, (cons, _, _) in SITES.items():
            for c in cons:
                qm.reference[p + c] = cur[p + c]
        # rounding: each site on its own (folded) weights and Hessian, on the pool
        rounded = each(lambda site: _round_site(qc, [p + c for c in SITES[site][0]], cur, caps[site],
                                                scalings), list(SITES))
        t0 = qm.add_time({"gptq": "gptq", "decoupleq": "decoupleq"}.get(qc.rounding, "rtn"), t0)
        for out in rounded:
            for name, wq, q, loss in out:
                qm.weights[name] = wq
                if q is not None:
                    qm.qweights[name] = q
                if loss is not None:
                    qm.gptq_loss[name] = loss
                cur[name] = wq
                if progress:
                    progress(name)
        del caps
        if i < last:
            streams = each(lambda x: rd.smollm2_block(x, i, weights=cur), streams)
            qm.add_time("calibration forward", t0)
    return qm


def _round_site(qc: Any, names: list[str], cur: dict[str, np.ndarray], x: np.ndarray,
                scalings: dict[str, Scaling | None]
                ) -> list[tuple[str, np.ndarray, QuantizedTensor | None, float | None]]:
    """(name, rounded weight, codes, GPTQ loss) of the linears ``names`` consuming input ``x``:
    GPTQ or decoupleQ with the Hessian of ``x``, or RTN."""
    wfmt = qc.weight_format
    sc = scalings[names[0]]
    if qc.rounding == "gptq":
        if sc is None:
            raise MacforgeError(f"gptq needs a scaled weight format, not {wfmt.name}")
        # q/k/v (gate/up) share one input, hence one Hessian: solved together
        results = gptq_quantize_shared([cur[n] for n in names], hessian(x), wfmt, sc,
                                       damp=qc.damp, block_size=qc.gptq_block,
                                       act_order=qc.act_order)
        return [(n, r.weight, r.quantized, r.loss) for n, r in zip(names, results)]
    if qc.rounding == "decoupleq":
        # rows are solved independently given H: q/k/v (gate/up) stacked in one call
        stacked = [cur[n] for n in names]
        res_dq = decoupleq_quantize(np.concatenate(stacked), hessian(x), wfmt, sc,
                                    iters=qc.decoupleq_iters, damp=qc.damp, block_size=qc.gptq_block)
        parts = split_rows(res_dq.quantized, [w.shape[0] for w in stacked])
        rows = np.cumsum([0] + [w.shape[0] for w in stacked])
        return [(n, res_dq.weight[r0:r1], part, None)
                for n, part, r0, r1 in zip(names, parts, rows[:-1], rows[1:])]
    out: list[tuple[str, np.ndarray, QuantizedTensor | None, float | None]] = []
    for n in names:
        wq, q = _rtn(cur[n], wfmt, scalings[n])
        out.append((n, wq, q, None))
    return out


def _allocation(qc: Any, blocks: list[int]) -> dict[str, int]:
    """int bits per linear of ``blocks`` by the Fisher rule around ``qc.target_bits``."""
    from models.quant import fisher_bit_allocation

    from ._fisher import smollm2_fisher

    fi = smollm2_fisher(qc.fisher_seqs, qc.fisher_len, calib=qc.calib, seed=qc.seed,
                        eval_tokens=qc.windows * qc.window)
    names = linear_names(blocks)
    alloc = fisher_bit_allocation({n: fi["rms"][n] for n in names},
                                  {n: fi["fisher"][n] for n in names},
                                  {n: fi["sizes"][n] for n in names}, qc.target_bits)
    return alloc.bits


def _capture_sites(streams: list[np.ndarray], block: int, cur: dict[str, np.ndarray],
                   each: Callable[[Callable[[np.ndarray], Any], list[np.ndarray]], list[Any]] | None = None
                   ) -> dict[str, np.ndarray]:
    """The (tokens, in) float input of each site of ``block`` over all calibration streams
    (in stream order; ``each`` maps over the streams, default a loop)."""
    first = {"attn_in": "attn_q", "attn_out": "attn_output", "ffn_in": "ffn_gate",
             "ffn_out": "ffn_down"}
    wanted = {f"blk.{block}.{lin}": site for site, lin in first.items()}

    def one(x: np.ndarray) -> dict[str, np.ndarray]:
        got: dict[str, np.ndarray] = {}

        def record(name: str, xin: np.ndarray, w: np.ndarray) -> np.ndarray:
            if name in wanted:
                got[wanted[name]] = xin.copy()
            return xin @ w.T

        rd.smollm2_block(x, block, weights=cur, linear=record)
        return got

    per = [one(x) for x in streams] if each is None else each(one, streams)
    return {site: np.concatenate([g[site] for g in per]) for site in first}


def _aqas(qc: Any, x: np.ndarray, ws: list[np.ndarray], cons: tuple[str, ...], p: str,
          scalings: dict[str, Scaling | None], act_q: ActQuantizer | None,
          groups: np.ndarray | None, rng: np.random.Generator
          ) -> Callable[[], tuple[np.ndarray, float]]:
    """Draw this site's random numbers from ``rng`` now (token subset, row-subset seed) and
    return the α search over them (a call gives the scales and α; thread-safe)."""
    wfmt = qc.weight_format
    sc = scalings[p + cons[0]]
    assert act_q is not None
    if x.shape[0] > qc.search_tokens:
        x = x[np.sort(rng.choice(x.shape[0], qc.search_tokens, replace=False))]
    seed = int(rng.integers(1 << 31))

    def quant_w(w: np.ndarray) -> np.ndarray:
        return _rtn(w, wfmt, sc)[0]

    search_q = act_q
    if act_q.calibration == "static":  # the search scores a per-tensor scale of x itself
        search_q = ActQuantizer(act_q.fmt, "tensor", "dynamic")

    def quant_x(v: np.ndarray) -> np.ndarray:
        return search_q.quantize(v).values

    rows = None if sc is not None and sc.granularity == "tensor" else qc.search_rows
    gsize = sc.group_size if sc is not None and sc.granularity == "group" else None

    def search() -> tuple[np.ndarray, float]:
        res = aqas_scales(x, ws, quant_w, quant_x, alpha_grid(qc.alpha_points), gsize, groups,
                          rows, seed=seed)
        return res.scales, res.alpha
    return search
