"""Many configurations -> one table (pandas DataFrame), for reports and sweeps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ._config import QuantConfig
from ._run import run_quant

__all__ = ["summary_row", "run_study", "W4A8_STUDY"]


def _mean(layers: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in layers if isinstance(r.get(key), (int, float))]
    return float(np.mean(vals)) if vals else None


def summary_row(doc: dict[str, Any]) -> dict[str, Any]:
    """One flat row of a result document: configuration, perplexity, KL, bits and the
    per-layer errors averaged over the quantized linears."""
    c = doc["configuration"]
    layers = doc["layers"]
    mse = _mean(layers, "weight_mse")
    under = _mean(layers, "weight_underflow_mse")
    return {
        "model": doc["model"], "weights": c["weights"], "acts": c["acts"],
        "method": doc["method"], "group": c["group"], "kv": c["kv"],
        "windows": c["windows"], "window": c["window"],
        "perplexity": doc["perplexity"], "reference_perplexity": doc.get("reference_perplexity"),
        "kl_vs_reference": doc["kl_vs_reference"],
        "weight_bits_per_element": doc["weight_bits_per_element"],
        "mean_weight_sqnr_db": _mean(layers, "weight_sqnr_db"),
        "mean_act_sqnr_db": _mean(layers, "act_sqnr_db"),
        "mean_flushed_fraction": _mean(layers, "weight_flushed_fraction"),
        "underflow_share": (under / mse) if mse and under is not None else None,
    }


def run_study(configs: Iterable[QuantConfig], use_cache: bool = True,
              progress: bool = True) -> Any:
    """``pandas.DataFrame`` with one :func:`summary_row` per configuration (cached runs are
    loaded, the rest computed in order)."""
    import pandas as pd

    return pd.DataFrame([summary_row(run_quant(qc, use_cache=use_cache, progress=progress))
                         for qc in configs])


def _w4a8_study() -> list[QuantConfig]:
    rows = [QuantConfig(), QuantConfig(weights="int8", group="channel", acts="int8")]
    for w in ("int4_asym", "dint4_asym", "int4", "dint4_sym"):
        rows.append(QuantConfig(weights=w, group=64))  # W4A16
        for m in ("rtn", "smoothquant", "aqas", "slac", "gptq", "aqas+gptq"):
            rows.append(QuantConfig(weights=w, group=64, acts="int8", method=m))
    return rows


#: The rows of issue #9's W4A8 table (FP, W8A8, W4A16, W4A8 × INT4/dINT4 × methods), g64.
W4A8_STUDY: list[QuantConfig] = _w4a8_study()
