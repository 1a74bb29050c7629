"""One accuracy run, as data: which model, formats, method and evaluation text.

A :class:`QuantConfig` is validated eagerly (unknown model / format / method -> MacforgeError
with the known names) and hashed for the result cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from models.errors import MacforgeError, UnknownNameError
from models.formats import Format, get_format
from models.quant import (
    ACT_CALIBRATIONS,
    ACT_GRANULARITIES,
    ActQuantizer,
    check_act_format,
    weight_scaling,
)

__all__ = ["QuantConfig", "MODELS", "METHODS", "CALIBRATION_SOURCES", "ALLOCATIONS", "FLOAT_NAMES",
           "resolve_format"]

MODELS = ("smollm2", "minilm")
#: method -> (smoothing, weight rounding)
METHODS: dict[str, tuple[str | None, str]] = {
    "rtn": (None, "rtn"),
    "smoothquant": ("smoothquant", "rtn"),
    "aqas": ("aqas", "rtn"),
    "slac": ("aqas", "rtn"),  # AQAS calibrated at the target sequence length (PAPERS.md §1.3)
    "gptq": (None, "gptq"),
    "aqas+gptq": ("aqas", "gptq"),
    "slac+gptq": ("aqas", "gptq"),
    "nupes": (None, "nupes"),  # per-layer power-law exponent, data-free (PAPERS.md §3)
    "decoupleq": (None, "decoupleq"),  # H-weighted alternating q / (s, z) (PAPERS.md §4)
}
CALIBRATION_SOURCES = ("wiki", "news")
#: --allocate: per-tensor bit widths (PAPERS.md §2, Fisher rule)
ALLOCATIONS = ("fisher",)
#: names that mean "leave this tensor in float32"
FLOAT_NAMES = ("fp", "fp32", "float")
#: the symmetric integer formats a bit allocation chooses from
_INT_FAMILY = tuple(f"int{b}" for b in range(2, 9))
# bump when the quantized forward / methods change, so cached results are not reused
CODE_VERSION = 1


def resolve_format(name: str, what: str) -> Format | None:
    """``None`` for a float name, else ``models.formats.get_format(name)`` (which lists the
    known names when it fails)."""
    if name in FLOAT_NAMES:
        return None
    try:
        return get_format(name)
    except UnknownNameError as e:
        raise UnknownNameError(f"{what} format", name, ["fp"] + e.known) from None


@dataclass(frozen=True)
class QuantConfig:
    """Everything that determines one ``macforge quant`` result.

    ``group``: None (the format's default scaling), an int group size, ``"channel"`` or
    ``"tensor"``. ``calib_len``: calibration sequence length (SLAC's parameter); None means
    512 for ``aqas``/``gptq``/``smoothquant`` (the authors' base code: 512-token samples) and
    the evaluation window for ``slac``. ``calib_tokens``: calibration budget in tokens (split
    into ``calib_tokens // calib_len`` sequences). ``blocks``: quantize only these blocks
    (None: all; for short tests). ``allocate="fisher"``: each linear gets its own bit width
    ``int<b>`` by the Fisher rule (:func:`models.quant.fisher_bit_allocation`) around
    ``mean_bits`` (default: the bits of ``weights``, which must be a symmetric ``int<b>``),
    with the Fisher estimated on ``fisher_seqs`` × ``fisher_len`` calibration tokens and labels sampled
    from the model (:func:`sim.accuracy._fisher.smollm2_fisher`).
    """

    model: str = "smollm2"
    weights: str = "fp"
    acts: str = "fp"
    method: str = "rtn"
    group: int | str | None = None
    act_granularity: str = "token"
    act_calibration: str = "dynamic"
    kv: str | None = None
    windows: int = 8
    window: int = 512
    calib: str = "wiki"
    calib_tokens: int = 8192
    calib_len: int | None = None
    alpha: float = 0.5
    alpha_points: int = 20
    search_tokens: int = 512
    search_rows: int | None = 128
    damp: float = 0.01
    act_order: bool = False
    gptq_block: int = 128
    decoupleq_iters: int = 2
    outliers: float = 0.0
    blocks: tuple[int, ...] | None = None
    bitexact: bool = False
    seed: int = 0
    allocate: str | None = None
    mean_bits: float | None = None
    fisher_seqs: int = 4
    fisher_len: int = 512

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise UnknownNameError("model", self.model, list(MODELS))
        if self.method not in METHODS:
            raise UnknownNameError("method", self.method, list(METHODS))
        wf = resolve_format(self.weights, "weight")
        af = resolve_format(self.acts, "activation")
        if af is not None:
            check_act_format(af)
        if self.kv is not None:
            kf = resolve_format(self.kv, "kv")
            if kf is not None:
                check_act_format(kf)
        if wf is not None:
            sc = weight_scaling(wf, self.group)  # validates the override
            if self.outliers and sc is None:
                raise MacforgeError(f"--outliers needs a scaled weight format, not {wf.name}")
            if self.outliers and self.rounding != "rtn":
                raise MacforgeError(f"--outliers is supported with rtn rounding, not {self.method}")
            if not isinstance(self.outliers, (int, float)) or not 0.0 <= self.outliers < 0.5:
                raise MacforgeError(f"outliers must be a fraction in [0, 0.5), not {self.outliers!r}")
        elif self.group is not None:
            raise MacforgeError("--group needs a quantized weight format (weights are fp)")
        if self.act_granularity not in ACT_GRANULARITIES:
            raise UnknownNameError("activation granularity", self.act_granularity,
                                   list(ACT_GRANULARITIES))
        if self.act_calibration not in ACT_CALIBRATIONS:
            raise UnknownNameError("activation calibration", self.act_calibration,
                                   list(ACT_CALIBRATIONS))
        if af is not None:  # refuses e.g. static calibration with per-token scales
            ActQuantizer(af, self.act_granularity, self.act_calibration)  # type: ignore[arg-type]
        if self.calib not in CALIBRATION_SOURCES:
            raise UnknownNameError("calibration text", self.calib, list(CALIBRATION_SOURCES))
        for name in ("windows", "window", "calib_tokens", "alpha_points", "search_tokens",
                     "gptq_block"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise MacforgeError(f"{name} must be a positive integer, not {v!r}")
        if self.window < 2:
            raise MacforgeError(f"window must be at least 2 tokens, not {self.window}")
        if self.calib_len is not None and (not isinstance(self.calib_len, int) or self.calib_len < 2):
            raise MacforgeError(f"calib_len must be an integer >= 2, not {self.calib_len!r}")
        if self.search_rows is not None and self.search_rows < 1:
            raise MacforgeError(f"search_rows must be positive, not {self.search_rows!r}")
        smoothing, rounding = METHODS[self.method]
        if wf is None and (smoothing is not None or rounding != "rtn"):
            raise MacforgeError(f"method {self.method} quantizes weights: give --weights FMT")
        if rounding == "nupes" and (wf is None or wf.kind != "nupes"):
            raise MacforgeError("method nupes searches the exponent of a NUPES format: give "
                                "--weights nupes<bits>_a<a> (e.g. nupes4_a1); a is the start")
        if rounding == "decoupleq" and (wf is None or wf.default_scaling is None
                                        or wf.default_scaling.method != "affine"):
            raise MacforgeError("method decoupleq fits W ≈ q·s + z: give --weights decoupleq_int2 "
                                "or decoupleq_int3")
        if smoothing is not None and af is None:
            raise MacforgeError(f"method {self.method} balances weight and activation "
                                "quantization: give --acts FMT (e.g. int8)")
        if self.act_calibration == "static" and af is None:
            raise MacforgeError("--act-calibration static needs a quantized --acts format")
        if self.bitexact and (wf is None or af is None):
            raise MacforgeError("--bitexact needs quantized weights and activations (e.g. "
                                "--weights int4 --acts int8)")
        if self.model == "minilm" and (af is not None or self.method != "rtn" or self.kv):
            raise MacforgeError("model minilm is for weight-only error studies on fp32 weights: "
                                "use --acts fp --method rtn and no --kv")
        if self.allocate is not None:
            if self.allocate not in ALLOCATIONS:
                raise UnknownNameError("bit allocation", self.allocate, list(ALLOCATIONS))
            if wf is None or wf.name not in _INT_FAMILY:
                raise MacforgeError("--allocate fisher picks int<b> per tensor: give --weights "
                                    f"one of {', '.join(_INT_FAMILY)} (its bits are the mean)")
            if self.rounding != "rtn" or self.smoothing is not None or self.outliers:
                raise MacforgeError(f"--allocate fisher is supported with --method rtn, not "
                                    f"{self.method}")
            if self.model != "smollm2":
                raise MacforgeError("--allocate fisher needs the model's gradients: smollm2 only")
            mb = self.mean_bits
            if mb is not None and (isinstance(mb, bool) or not isinstance(mb, (int, float))
                                   or not 2 <= mb <= 8):
                raise MacforgeError(f"--mean-bits must lie in [2, 8], not {mb!r}")
            for name in ("fisher_seqs", "fisher_len"):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise MacforgeError(f"{name} must be a positive integer, not {v!r}")
        elif self.mean_bits is not None:
            raise MacforgeError("--mean-bits needs --allocate fisher")
        if self.blocks is not None:
            object.__setattr__(self, "blocks", tuple(sorted(set(int(b) for b in self.blocks))))

    # --------------------------------------------------------------------------- derived
    @property
    def weight_format(self) -> Format | None:
        return resolve_format(self.weights, "weight")

    @property
    def act_format(self) -> Format | None:
        return resolve_format(self.acts, "activation")

    @property
    def kv_format(self) -> Format | None:
        return None if self.kv is None else resolve_format(self.kv, "kv")

    @property
    def smoothing(self) -> str | None:
        return METHODS[self.method][0]

    @property
    def rounding(self) -> str:
        return METHODS[self.method][1]

    @property
    def effective_calib_len(self) -> int:
        if self.calib_len is not None:
            return self.calib_len
        return self.window if self.method.startswith("slac") else 512

    @property
    def target_bits(self) -> float | None:
        """b̄ of a bit allocation (None without ``allocate``)."""
        if self.allocate is None:
            return None
        wf = self.weight_format
        assert wf is not None
        return float(wf.bits if self.mean_bits is None else self.mean_bits)

    @property
    def needs_calibration(self) -> bool:
        return (self.smoothing is not None or self.rounding in ("gptq", "decoupleq")
                or self.act_calibration == "static")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = None if self.blocks is None else list(self.blocks)
        d["calib_len"] = self.effective_calib_len if self.needs_calibration else self.calib_len
        return d

    def key(self) -> str:
        """Hash of the fields that change the result (``bitexact`` included: a different path)."""
        d = self.as_dict()
        if not self.needs_calibration:  # calibration knobs are irrelevant then
            for k in ("calib", "calib_tokens", "calib_len", "alpha", "alpha_points",
                      "search_tokens", "search_rows", "damp", "act_order", "gptq_block",
                      "decoupleq_iters", "seed"):
                d.pop(k)
        if self.allocate is None:  # keys of configurations without allocation stay as they were
            for k in ("allocate", "mean_bits", "fisher_seqs", "fisher_len"):
                d.pop(k)
        d["code_version"] = CODE_VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:20]

    def reference(self) -> "QuantConfig":
        """The unquantized configuration on the same evaluation windows."""
        return QuantConfig(model=self.model, windows=self.windows, window=self.window)

    def with_(self, **kw: Any) -> "QuantConfig":
        return replace(self, **kw)
