"""The accelerator model: spec (TOML ↔ dataclasses), workloads (transformer decoders, single
GEMMs), systolic dataflows with an exact fold schedule, tiling and SRAM/DRAM traffic with
double-buffered overlap, and the evaluation to tokens/s, J/token, mm², TOPS/W and utilization
(pandas DataFrames per GEMM and per layer).

>>> from sim.accel import load_arch, transformer_workload, evaluate
>>> r = evaluate(load_arch("examples/arch/w4a8_dint.toml"),
...              transformer_workload("llama-7b", "decode", weights="dint4_sym", acts="int8"))  # doctest: +SKIP
>>> r.summary["tokens_per_s"], r.gemms, r.layers  # doctest: +SKIP
"""

from ._costs import HOROWITZ_45NM_AREA_UM2, SRAM_BITCELL_UM2, SRAM_SOURCES, PECost, pe_cost, resolve_unit
from ._dataflow import GemmMachine, GemmResult, evaluate_gemm, fold_cycles, gemm_compute_cycles
from ._model import AccelResult, consumes, evaluate, evaluate_summary, machine, resolve_formats
from ._scalesim import SCALESIM_VENV, run_scalesim, scalesim_python
from ._spec import (DATAFLOWS, SCHEDULES, AcceleratorSpec, ArraySpec, BufferSpec, BuffersSpec, DramSpec,
                    FormatsSpec, PESpec, VectorSpec, arch_from_dict, arch_to_toml, load_arch)
from ._workloads import (MODELS, Gemm, ModelConfig, TensorFormats, Workload, gemm_workload, get_model,
                         model_names, parse_gemm, tensor_bits, transformer_workload)

__all__ = [
    "AcceleratorSpec", "PESpec", "ArraySpec", "BufferSpec", "BuffersSpec", "VectorSpec", "DramSpec", "FormatsSpec",
    "load_arch", "arch_from_dict", "arch_to_toml", "DATAFLOWS", "SCHEDULES",
    "ModelConfig", "MODELS", "model_names", "get_model", "Gemm", "Workload", "TensorFormats", "tensor_bits",
    "transformer_workload", "gemm_workload", "parse_gemm",
    "fold_cycles", "gemm_compute_cycles", "GemmMachine", "GemmResult", "evaluate_gemm",
    "PECost", "pe_cost", "resolve_unit", "SRAM_BITCELL_UM2", "HOROWITZ_45NM_AREA_UM2", "SRAM_SOURCES",
    "AccelResult", "evaluate", "evaluate_summary", "machine", "resolve_formats", "consumes",
    "run_scalesim", "scalesim_python", "SCALESIM_VENV",
]
