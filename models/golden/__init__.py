"""Bit-exact golden models of every datapath (numba), their plain-Python references, and the
bit-exact GEMM. The RTL must reproduce these numbers on every output bit."""

from ..units import get_unit, unit_names
from ._api import dot, dq_group_mac, for_unit, gemm, lut_entries, mac, products, to_fixed
from ._codec import Bitstream, decode_stream, encode_stream
from ._reference import ref_dot, ref_dq_group, ref_gemm, ref_mac, ref_reduce, ref_weight_int

__all__ = [
    "encode_stream", "decode_stream", "Bitstream",
    "mac", "dot", "dq_group_mac", "gemm", "products", "for_unit", "to_fixed", "lut_entries",
    "ref_mac", "ref_dot", "ref_dq_group", "ref_gemm", "ref_reduce", "ref_weight_int",
    "mac_int8xint8", "mac_int4xint8", "mac_dint4_asym_xint8", "mac_dint4_sym_xint8",
    "mac_lut4xint8", "dq_int2_group_mac", "get_unit", "unit_names",
]

mac_int8xint8 = for_unit("mac_int8xint8")
mac_int4xint8 = for_unit("mac_int4xint8")
mac_dint4_asym_xint8 = for_unit("mac_dint4_asym_xint8")
mac_dint4_sym_xint8 = for_unit("mac_dint4_sym_xint8")
mac_lut4xint8 = for_unit("mac_lut4xint8")
dq_int2_group_mac = for_unit("dq_int2_group_mac")
