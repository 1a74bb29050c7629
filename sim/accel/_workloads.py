"""Workloads as data: the GEMMs (and vector work) of a transformer decoder in prefill or decode,
or a single GEMM.

A GEMM is Y[M, N] = A[M, K] · W[K, N], repeated ``count`` times (independent instances, e.g. one
per batch element and KV head). W is the operand a PE's weight port takes (a weight matrix, or
K^T / V from the KV cache in attention); A the activation-port operand. Bits per element of
every tensor, including scales, zero points and metadata, come from ``models.formats``
(``storage_bits_per_element``), never typed in.

Model shapes are published configurations (``source`` of each ``ModelConfig``); SmolLM2-135M is
read from its GGUF metadata (``models.realdata.smollm2_config``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

from models.errors import MacforgeError, UnknownNameError

__all__ = ["ModelConfig", "Gemm", "Workload", "MODELS", "model_names", "get_model", "transformer_workload",
           "gemm_workload", "parse_gemm", "TensorFormats", "tensor_bits"]

_HF = "Hugging Face config.json of "


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer's shape.

    ffn ``swiglu``: gate, up (d → ffn) and down (ffn → d); ``relu`` (OPT): fc1, fc2.
    """

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ffn: int
    vocab: int
    ffn: Literal["swiglu", "relu"]
    norm: Literal["rms", "layer"]
    rope: bool
    source: str
    note: str = ""

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def group(self) -> int:
        """Query heads per KV head (GQA; 1 for multi-head attention)."""
        return self.n_heads // self.n_kv_heads


def _opt(name: str, layers: int, d: int, heads: int, note: str = "") -> ModelConfig:
    # OPT (Zhang et al. 2022, arXiv 2205.01068, Table 1): ffn = 4d, vocab 50272, ReLU, LayerNorm
    return ModelConfig(name, layers, d, heads, heads, 4 * d, 50272, "relu", "layer", False,
                       f"Zhang et al. 2022 (OPT), Table 1; {_HF}facebook/{name}", note)


def _llama(name: str, layers: int, d: int, heads: int, kv: int, ffn: int, vocab: int, src: str) -> ModelConfig:
    return ModelConfig(name, layers, d, heads, kv, ffn, vocab, "swiglu", "rms", True, src)


_L1 = "Touvron et al. 2023 (LLaMA, arXiv 2302.13971), Table 2; ffn from the released params"
_L2 = "Touvron et al. 2023 (Llama 2, arXiv 2307.09288); " + _HF + "meta-llama/Llama-2-"
_L3 = "Llama 3 model card / " + _HF + "meta-llama/Meta-Llama-3-"

MODELS: dict[str, ModelConfig] = {m.name: m for m in [
    _opt("opt-125m", 12, 768, 12),
    _opt("opt-350m", 24, 1024, 16, "its 512-wide embedding projections (project_in/out) are not modelled"),
    _opt("opt-1.3b", 24, 2048, 32),
    _opt("opt-2.7b", 32, 2560, 32),
    _opt("opt-6.7b", 32, 4096, 32),
    _opt("opt-13b", 40, 5120, 40),
    _opt("opt-30b", 48, 7168, 56),
    _opt("opt-66b", 64, 9216, 72),
    _llama("llama-7b", 32, 4096, 32, 32, 11008, 32000, _L1),
    _llama("llama-13b", 40, 5120, 40, 40, 13824, 32000, _L1),
    _llama("llama-30b", 60, 6656, 52, 52, 17920, 32000, _L1 + " (the paper's 33B)"),
    _llama("llama-65b", 80, 8192, 64, 64, 22016, 32000, _L1),
    _llama("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, _L2 + "7b-hf"),
    _llama("llama-2-13b", 40, 5120, 40, 40, 13824, 32000, _L2 + "13b-hf"),
    _llama("llama-2-70b", 80, 8192, 64, 8, 28672, 32000, _L2 + "70b-hf (GQA, 8 KV heads)"),
    _llama("llama-3-8b", 32, 4096, 32, 8, 14336, 128256, _L3 + "8B (GQA, 8 KV heads)"),
    _llama("llama-3-70b", 80, 8192, 64, 8, 28672, 128256, _L3 + "70B (GQA, 8 KV heads)"),
]}
_GGUF_MODELS = ("smollm2-135m",)
_CACHE = Path(__file__).resolve().parents[2] / "build" / "cache" / "accel"


@lru_cache(maxsize=1)
def _smollm2() -> ModelConfig:
    """SmolLM2-135M's shape from its GGUF metadata (``models.realdata.smollm2_config``). Parsing
    the GGUF takes seconds (its tokenizer arrays), so the shape is cached under build/ keyed on
    the GGUF file's path, size and mtime."""
    from models import realdata

    gguf = realdata.smollm2_path()
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    path = _CACHE / f"smollm2_config_{key}.json"
    if path.exists():
        c = json.loads(path.read_text())
    else:
        cfg = realdata.smollm2_config()
        c = {k: getattr(cfg, k) for k in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ffn", "vocab_size")}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(c))
        tmp.replace(path)  # atomic: concurrent test workers never read half a file
    return ModelConfig("smollm2-135m", c["n_layers"], c["d_model"], c["n_heads"], c["n_kv_heads"], c["d_ffn"],
                       c["vocab_size"], "swiglu", "rms", True,
                       "GGUF metadata of SmolLM2-135M-Instruct (models.realdata.smollm2_config)")


def model_names() -> list[str]:
    return [*_GGUF_MODELS, *MODELS]


def get_model(name: str) -> ModelConfig:
    """A model's shape by name (``model_names()``); SmolLM2 from its GGUF file."""
    key = name.lower()
    if key == "smollm2-135m":
        return _smollm2()
    if key not in MODELS:
        raise UnknownNameError("model", name, model_names())
    return MODELS[key]


# --------------------------------------------------------------------------- formats
_FLOAT = ("fp16", "bf16", "fp32")


@dataclass(frozen=True)
class TensorFormats:
    """A format per tensor class: linear ``weights``, ``acts`` (linear inputs/outputs), ``kv``
    (the KV cache), ``attn`` (Q and the softmax probabilities P)."""

    weights: str
    acts: str
    kv: str = "int8"
    attn: str = "int8"

    def __post_init__(self) -> None:
        from models.formats import get_format

        for k in ("weights", "acts", "kv", "attn"):
            get_format(getattr(self, k))  # unknown name -> UnknownNameError listing the known ones


def tensor_bits(fmt: str, shape: tuple[int, ...]) -> float:
    """Storage bits per element of a tensor of ``shape`` in ``fmt`` (scales, zero points and
    metadata included; groups along the last axis): ``models.formats.storage_bits_per_element``.
    A last axis that groups do not divide ends in a partial group that still stores a whole
    group's scale (and zero point): counted on the padded shape, minus the padding's elements."""
    from models.formats import get_format, storage_bits_per_element

    f = get_format(fmt)
    sc = f.default_scaling
    k = shape[-1]
    if sc is None or sc.granularity != "group" or k % sc.group_size == 0:
        return float(storage_bits_per_element(f, None, shape))
    rows = math.prod(shape[:-1])
    kp = sc.group_size * -(-k // sc.group_size)
    total = storage_bits_per_element(f, None, (*shape[:-1], kp)) * rows * kp - rows * (kp - k) * f.bits
    return float(total / (rows * k))


def _scale_group(fmt: str, k: int) -> int:
    """Elements along K sharing one weight scale (0: no scale to apply, e.g. a float format)."""
    from models.formats import get_format

    sc = get_format(fmt).default_scaling
    if sc is None:
        return 0
    if sc.granularity == "group":
        return min(sc.group_size, k)
    return k  # per channel / per tensor: one scale per output (applied once)


# --------------------------------------------------------------------------- GEMMs
@dataclass(frozen=True)
class Gemm:
    """One GEMM of a workload (see the module docstring).

    w_fmt / a_fmt / y_fmt: formats of W, A and the stored output Y; the bits are their storage
    bits per element. w_dram / a_dram / y_dram: whether the operand is read from / the output
    written to DRAM (False: produced and consumed on chip, e.g. fused attention scores).
    scale_group: elements along K per weight scale (dequant work on the vector unit);
    ops_per_group: scale applications per group partial sum (2 for decoupleQ's affine s·Σqa + z·Σa).
    role: ``linear`` or ``attention``; layer: decoder layer index or -1 for the LM head.
    """

    name: str
    m: int
    k: int
    n: int
    count: int = 1
    w_fmt: str = "int8"
    a_fmt: str = "int8"
    y_fmt: str = "int8"
    w_bits: float = 8.0
    a_bits: float = 8.0
    y_bits: float = 8.0
    w_dram: bool = True
    a_dram: bool = True
    y_dram: bool = True
    scale_group: int = 0
    ops_per_group: int = 1
    role: Literal["linear", "attention"] = "linear"
    layer: int = 0

    def __post_init__(self) -> None:
        for k in ("m", "k", "n", "count"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise MacforgeError(f"GEMM {self.name}: {k} must be a positive integer, not {v!r}")

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.count


@dataclass(frozen=True)
class Workload:
    """GEMMs of one representative decoder layer (``layer_gemms``, repeated ``n_layers`` times)
    plus ``head_gemms`` (the LM head), vector-unit elements per layer and for the head by kind
    (``norm``, ``residual``, ``rope``, ``softmax``, ``act_fn``, ``quant``, ``scale``; the
    accelerator's ``VectorSpec`` gives ops per element of each kind), and
    the tokens one run produces (prefill: batch × seq processed; decode: batch generated)."""

    name: str
    phase: Literal["prefill", "decode", "gemm"]
    layer_gemms: tuple[Gemm, ...]
    head_gemms: tuple[Gemm, ...] = ()
    n_layers: int = 1
    vector_elems_layer: dict[str, float] = field(default_factory=dict)
    vector_elems_head: dict[str, float] = field(default_factory=dict)
    tokens: int = 1
    formats: TensorFormats | None = None
    model: ModelConfig | None = None
    batch: int = 1
    seq: int = 0
    context: int = 0


def _is_quantized(fmt: str) -> bool:
    return fmt not in _FLOAT


def _linear(name: str, t: int, k: int, n: int, f: TensorFormats, y_fmt: str | None = None) -> Gemm:
    y = y_fmt or f.acts
    return Gemm(name, t, k, n, 1, f.weights, f.acts, y, tensor_bits(f.weights, (n, k)), tensor_bits(f.acts, (t, k)),
                tensor_bits(y, (t, n)), scale_group=_scale_group(f.weights, k), ops_per_group=_ops_per_group(f.weights),
                role="linear")


def _ops_per_group(fmt: str) -> int:
    from models.formats import get_format

    sc = get_format(fmt).default_scaling
    return 2 if sc is not None and sc.method == "affine" else 1


def transformer_workload(model: str | ModelConfig, phase: str = "decode", batch: int = 1, seq: int = 512,
                         context: int = 512, formats: TensorFormats | None = None,
                         weights: str = "int8", acts: str = "int8") -> Workload:
    """The GEMMs and vector work of one forward pass.

    Parameters
    ----------
    model
        A name from ``model_names()`` or a ``ModelConfig``.
    phase
        ``prefill``: ``batch`` sequences of ``seq`` tokens, causal attention computed on full
        S × S score tiles (no tile skipping), logits for the last token of each sequence only.
        ``decode``: one new token for each of ``batch`` sequences attending to ``context``
        cached tokens (KV cache read from DRAM; its new K, V rows written).
    formats
        Per tensor class; default ``TensorFormats(weights, acts)``.

    Attention is fused (flash-attention style): scores and probabilities stay on chip.
    Workloads are immutable and cached (sweeps ask for the same ones many times).
    """
    cfg = model if isinstance(model, ModelConfig) else get_model(model)
    f = formats or TensorFormats(weights, acts)
    return _transformer(cfg, phase, batch, seq, context, f)


@lru_cache(maxsize=4096)
def _transformer(cfg: ModelConfig, phase: str, batch: int, seq: int, context: int, f: TensorFormats) -> Workload:
    for k, val in (("batch", batch), ("seq", seq), ("context", context)):
        if not isinstance(val, int) or val < 1:
            raise MacforgeError(f"{k} must be a positive integer, not {val!r}")
    if phase not in ("prefill", "decode"):
        raise MacforgeError(f"phase must be 'prefill' or 'decode', not {phase!r}")
    d, hd, nq, nkv, g = cfg.d_model, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.group
    q_len = seq if phase == "prefill" else 1
    kv_len = seq if phase == "prefill" else context
    t = batch * q_len
    gemms = [
        _linear("q_proj", t, d, nq * hd, f),
        _linear("k_proj", t, d, nkv * hd, f, f.kv),
        _linear("v_proj", t, d, nkv * hd, f, f.kv),
    ]
    inst = batch * nkv  # one (sequence, KV head) pair; its g query heads share K and V
    qk = Gemm("attn_qk", q_len * g, hd, kv_len, inst, f.kv, f.attn, f.attn,
              tensor_bits(f.kv, (kv_len, hd)), tensor_bits(f.attn, (q_len * g, hd)), tensor_bits(f.attn, (q_len * g, kv_len)),
              y_dram=False, scale_group=_scale_group(f.kv, hd), role="attention")
    pv = Gemm("attn_pv", q_len * g, kv_len, hd, inst, f.kv, f.attn, f.acts,
              tensor_bits(f.kv, (hd, kv_len)), tensor_bits(f.attn, (q_len * g, kv_len)), tensor_bits(f.acts, (q_len * g, hd)),
              a_dram=False, scale_group=_scale_group(f.kv, kv_len), role="attention")
    gemms += [qk, pv, _linear("o_proj", t, nq * hd, d, f)]
    if cfg.ffn == "swiglu":
        gemms += [_linear("gate_proj", t, d, cfg.d_ffn, f), _linear("up_proj", t, d, cfg.d_ffn, f),
                  _linear("down_proj", t, cfg.d_ffn, d, f)]
    else:
        gemms += [_linear("fc1", t, d, cfg.d_ffn, f), _linear("fc2", t, cfg.d_ffn, d, f)]
    # vector work per layer, in element operations
    scores = batch * nq * q_len * kv_len
    quant_elems = t * (d + nq * hd + (d if cfg.ffn == "swiglu" else 0) + cfg.d_ffn) if _is_quantized(f.acts) else 0
    if _is_quantized(f.attn):
        quant_elems += t * nq * hd + scores  # Q and P quantized for the attention matmuls
    elems_layer = {
        "norm": 2.0 * t * d,
        "residual": 2.0 * t * d,
        "rope": float(t * (nq + nkv) * hd) if cfg.rope else 0.0,
        "softmax": float(scores),
        "act_fn": float(t * cfg.d_ffn),
        "quant": float(quant_elems),
        "scale": sum(_scale_elems(gm) for gm in gemms),
    }
    # LM head: final norm + logits of the last position of each sequence
    head_t = batch
    head = _linear("lm_head", head_t, d, cfg.vocab, f, "fp16")
    elems_head = {"norm": float(head_t * d), "quant": float(head_t * d) if _is_quantized(f.acts) else 0.0,
                  "scale": _scale_elems(head)}
    layer_gemms = tuple(replace(gm, layer=0) for gm in gemms)
    return Workload(f"{cfg.name}-{phase}", phase, layer_gemms, (replace(head, layer=-1),), cfg.n_layers,  # type: ignore[arg-type]
                    elems_layer, elems_head, batch * q_len if phase == "prefill" else batch, f, cfg, batch,
                    seq if phase == "prefill" else 0, context if phase == "decode" else 0)


def _scale_elems(g: Gemm) -> float:
    """Scale applications: one per output partial sum per weight-scale group along K, plus one
    per output for the activation scale (when the operands are quantized)."""
    groups = math.ceil(g.k / g.scale_group) * g.ops_per_group if g.scale_group else 0
    act = 1 if _is_quantized(g.a_fmt) else 0
    return float(g.m * g.n * g.count * (groups + act))


_GEMM_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_gemm(text: str) -> tuple[int, int, int]:
    """``'MxKxN'`` → (M, K, N)."""
    m = _GEMM_RE.match(text)
    if not m or min(int(x) for x in m.groups()) < 1:
        raise MacforgeError(f"--gemm must be MxKxN with positive integers (e.g. 64x128x32), not {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def gemm_workload(m: int, k: int, n: int, formats: TensorFormats | None = None, weights: str = "int8",
                  acts: str = "int8") -> Workload:
    """A single GEMM Y[M, N] = A[M, K] · W[K, N], all operands in DRAM; ``tokens`` = M."""
    f = formats or TensorFormats(weights, acts)
    g = replace(_linear("gemm", m, k, n, f), layer=0)
    return Workload(f"gemm-{m}x{k}x{n}", "gemm", (g,), (), 1, {"scale": _scale_elems(g)}, {}, m, f)
