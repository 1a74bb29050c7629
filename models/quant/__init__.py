"""Post-training quantization methods on plain arrays (no model-specific code).

Weights: round-to-nearest with a format's scaling or a granularity override
(:func:`weight_scaling`, :func:`fake_quant`), GPTQ (:func:`gptq_quantize`); activations:
per-token / per-tensor, dynamic / static (:class:`ActQuantizer`); per-input-channel smoothing
(SmoothQuant :func:`smoothquant_scales`, AQAS :func:`aqas_scales`); the NUPES exponent
search (:func:`nupes_search`); decoupleQ's layer-wise step (:func:`decoupleq_quantize`); error measures (SQNR, the
underflow / rounding split, per-token KL). Every format comes from ``models.formats``.
"""

from ._acts import ACT_CALIBRATIONS, ACT_GRANULARITIES, ActQuantizer, QuantizedActivation, check_act_format
from ._decoupleq import DecoupleqResult, decoupleq_quantize, hessian_loss
from ._fisher import BitAllocation, fisher_bit_allocation
from ._gptq import GptqResult, gptq_quantize, gptq_quantize_shared, hessian, split_rows
from ._metrics import kl_per_token, log_softmax
from ._nupes import NupesResult, nupes_exponents, nupes_search
from ._smooth import AqasResult, alpha_grid, aqas_scales, awq_weight_stat, smoothquant_scales, tie_channels
from ._weights import (
    GranularityOverride,
    WeightError,
    check_group,
    fake_quant,
    quantize_weight,
    sqnr_db,
    weight_error,
    weight_scaling,
)

__all__ = [
    "ACT_CALIBRATIONS",
    "ACT_GRANULARITIES",
    "ActQuantizer",
    "QuantizedActivation",
    "check_act_format",
    "DecoupleqResult",
    "decoupleq_quantize",
    "hessian_loss",
    "BitAllocation",
    "fisher_bit_allocation",
    "GptqResult",
    "gptq_quantize",
    "gptq_quantize_shared",
    "hessian",
    "split_rows",
    "kl_per_token",
    "log_softmax",
    "NupesResult",
    "nupes_exponents",
    "nupes_search",
    "AqasResult",
    "alpha_grid",
    "aqas_scales",
    "awq_weight_stat",
    "smoothquant_scales",
    "tie_channels",
    "GranularityOverride",
    "WeightError",
    "check_group",
    "fake_quant",
    "quantize_weight",
    "sqnr_db",
    "weight_error",
    "weight_scaling",
]
