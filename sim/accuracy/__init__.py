"""Accuracy studies on a real LLM: ``macforge quant`` over ``models.realdata`` (SmolLM2-135M's
numpy forward; MiniLM fp32 weights for weight-only studies), with the PTQ methods of
``models.quant`` and the formats of ``models.formats``."""

from ._config import CALIBRATION_SOURCES, METHODS, MODELS, QuantConfig
from ._run import cache_dir, reference_hidden, run_quant, window_kl
from ._export import export_streams
from ._study import W4A8_STUDY, run_study, summary_row
from .cli import add_parser, cmd_quant, config_from_args

__all__ = ["QuantConfig", "MODELS", "METHODS", "CALIBRATION_SOURCES", "run_quant", "cache_dir",
           "reference_hidden", "window_kl", "add_parser", "cmd_quant", "config_from_args",
           "run_study", "summary_row", "W4A8_STUDY", "export_streams"]
