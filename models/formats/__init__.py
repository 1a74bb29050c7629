"""The format library: element formats as data, scaled tensor quantization, storage cost.

>>> from models.formats import get_format
>>> f = get_format("dint4_sym")
>>> f.values[:8]
array([0. , 0.5, 1. , 2. , 3. , 4. , 5. , 6. ])
"""

from ._core import Format, nearest_codes
from ._families import NF4_VALUES, Fp32Format, crd_values
from ._registry import FORMAT_PATTERNS, format_names, get_format
from ._tensor import SCALE_FORMAT_BITS, QuantizedTensor, Scaling, quantize, round_scale, storage_bits_per_element

__all__ = [
    "Format",
    "Fp32Format",
    "Scaling",
    "QuantizedTensor",
    "get_format",
    "format_names",
    "quantize",
    "dequantize",
    "round_scale",
    "storage_bits_per_element",
    "nearest_codes",
    "crd_values",
    "NF4_VALUES",
    "FORMAT_PATTERNS",
    "SCALE_FORMAT_BITS",
]


def dequantize(q: QuantizedTensor):  # type: ignore[no-untyped-def]
    """Values of a ``QuantizedTensor`` (float64, the original shape)."""
    return q.dequantize()
