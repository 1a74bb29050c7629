"""The format library: element formats as data, scaled tensor quantization, storage cost.

>>> from models.formats import get_format
>>> f = get_format("dint4_sym")
>>> f.values[:8]
array([0. , 0.5, 1. , 2. , 3. , 4. , 5. , 6. ])
"""

from ._core import Format, nearest_codes
from ._families import NF4_VALUES, Fp32Format, crd_values, format_finfo
from ._registry import (
    FORMAT_PATTERNS,
    FORMATS_ENV,
    format_names,
    get_format,
    load_default_formats,
    register_format,
    user_format_names,
)
from ._entropy import (
    CodeTable,
    EntropyCodedGrid,
    EntropyFormat,
    EntropyQuantizedTensor,
    canonical_codes,
    code_table,
    entropy_coded_grid,
    entropy_format,
    huffman_lengths,
    reference_tensor,
)
from ._userdef import format_from_dict, load_formats
from ._tensor import (
    SCALE_FORMAT_BITS,
    QuantizedTensor,
    Scaling,
    dynamic8_values,
    quantize,
    round_scale,
    storage_bits_per_element,
    storage_breakdown,
    zero_point_width,
)

__all__ = [
    "Format",
    "Fp32Format",
    "format_finfo",
    "Scaling",
    "QuantizedTensor",
    "get_format",
    "format_names",
    "register_format",
    "huffman_lengths",
    "canonical_codes",
    "code_table",
    "CodeTable",
    "entropy_coded_grid",
    "EntropyCodedGrid",
    "EntropyFormat",
    "EntropyQuantizedTensor",
    "entropy_format",
    "reference_tensor",
    "load_formats",
    "load_default_formats",
    "format_from_dict",
    "user_format_names",
    "FORMATS_ENV",
    "quantize",
    "dequantize",
    "round_scale",
    "storage_bits_per_element",
    "storage_breakdown",
    "zero_point_width",
    "dynamic8_values",
    "nearest_codes",
    "crd_values",
    "NF4_VALUES",
    "FORMAT_PATTERNS",
    "SCALE_FORMAT_BITS",
]


def dequantize(q: QuantizedTensor):  # type: ignore[no-untyped-def]
    """Values of a ``QuantizedTensor`` (float64, the original shape)."""
    return q.dequantize()
