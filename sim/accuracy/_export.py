"""Export what a method really sends to the MAC: the integer activation codes entering one
linear of the quantized model and that linear's weight codes, for hardware energy runs on
real data (``macforge energy``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from models import realdata as rd
from models.errors import MacforgeError
from models.realdata import load_operand_stream  # the one definition (rtl.flow reads it too)
from models.quant import ActQuantizer

from ._config import QuantConfig
from ._smollm2 import ActHook, quantize_model

__all__ = ["export_streams", "load_operand_stream"]


def export_streams(qc: QuantConfig, layer: str, path: str | Path,
                   n_tokens: int = 256) -> dict[str, Any]:
    """Write ``path`` (.npz) with the streams of ``layer`` (e.g. ``blk.29.ffn_down``).

    The model is quantized per ``qc`` up to the layer's block; the first ``n_tokens`` tokens of
    the first evaluation window run through it, and the activation entering ``layer`` is
    quantized as the method quantizes it. Arrays: ``act_codes`` (tokens, in) integer values,
    ``act_scales``, ``weight_codes`` (out, in), ``weight_scales``, ``weight_zero_points``
    (absent for symmetric formats), ``weight_offsets`` (decoupleQ's float z; absent otherwise),
    ``smoothing_scales`` (SmoothQuant / AQAS / SLAC: the per-input-channel s the activation was
    divided by; absent without smoothing); strings ``weight_format``, ``act_format``, ``layer``,
    ``method``. Returns a summary (path, shapes, formats).
    """
    if qc.model != "smollm2":
        raise MacforgeError("stream export runs on model smollm2")
    if qc.weight_format is None or qc.act_format is None or qc.act_format.kind != "int":
        raise MacforgeError("stream export needs quantized weights and a signed integer "
                            "activation format (e.g. --weights dint4_asym --acts int8)")
    cfg = rd.smollm2_config()
    parts = layer.split(".")
    if (len(parts) != 3 or parts[0] != "blk" or not parts[1].isdigit()
            or int(parts[1]) >= cfg.n_layers or parts[2] not in rd.SMOLLM2_LINEARS):
        raise MacforgeError(f"layer must be 'blk.<0..{cfg.n_layers - 1}>.<"
                            f"{'|'.join(rd.SMOLLM2_LINEARS)}>', not {layer!r}")
    block = int(parts[1])
    if not isinstance(n_tokens, int) or not 1 <= n_tokens <= qc.window:
        raise MacforgeError(f"n_tokens must be in 1..{qc.window} (one evaluation window)")
    qm = quantize_model(qc, list(range(block + 1)))
    act_q = ActQuantizer(qc.act_format, qc.act_granularity, qc.act_calibration)  # type: ignore[arg-type]
    hook = ActHook(act_q, {layer}, qm.static_scales)
    got: dict[str, np.ndarray] = {}

    def record(name: str, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if name == layer:
            aq = hook.quantized(name, x)
            got["codes"] = qc.act_format.decode(aq.codes).astype(np.int16)  # type: ignore[union-attr]
            got["scales"] = aq.scales
            return aq.values @ w.T
        return x @ w.T

    seq = rd.smollm2_eval_windows(1, qc.window)[0][:n_tokens]
    rd.smollm2_forward(seq, capture=[layer], logits=False, weights=qm.weights, linear=record)
    qt = qm.qweights[layer]
    arrays: dict[str, Any] = {
        "act_codes": got["codes"], "act_scales": got["scales"],
        "weight_codes": qt.codes, "weight_scales": qt.scales,
        "weight_format": np.array(qt.format.name), "act_format": np.array(qc.acts),
        "layer": np.array(layer), "method": np.array(qc.method),
    }
    if qt.zero_points is not None:
        arrays["weight_zero_points"] = qt.zero_points
    if qt.offsets is not None:
        arrays["weight_offsets"] = qt.offsets
    if qm.smoothing.get(layer) is not None:
        arrays["smoothing_scales"] = qm.smoothing[layer]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npz")
    os.close(fd)
    np.savez(tmp, **arrays)
    os.replace(tmp, out)
    return {"path": str(out), "layer": layer, "act_shape": list(got["codes"].shape),
            "weight_shape": list(qt.codes.shape), "weight_format": qt.format.name,
            "act_format": qc.acts, "act_absmax_code": int(np.max(np.abs(got["codes"])))}
