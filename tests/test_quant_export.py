"""Stream export for every method (issue #9 item 3): the int8 activation codes and weight codes
a method sends to the MAC of one linear, on a tiny slice (block 0, 8 tokens, short calibration),
and their layout as the real-data operand stream of the energy flow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.formats import get_format
from sim.accuracy import QuantConfig, export_streams
from sim.accuracy._export import load_operand_stream

TINY = dict(windows=1, window=16, calib_tokens=64, calib_len=32, alpha_points=4,
            search_tokens=64, search_rows=32, decoupleq_iters=1)
# aqas is slac's code path at another calibration length; aqas+gptq is the two in sequence
METHODS = [("int4_asym", "rtn"), ("int4_asym", "smoothquant"), ("dint4_asym", "slac"),
           ("int4_asym", "gptq"), ("decoupleq_int2", "decoupleq")]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACFORGE_QUANT_CACHE", str(tmp_path))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    d = tmp_path_factory.mktemp("streams")
    for w, m in METHODS:
        qc = QuantConfig(weights=w, acts="int8", group=64, method=m, **TINY)
        export_streams(qc, "blk.0.ffn_down", d / f"{m}.npz", n_tokens=8)
        with np.load(d / f"{m}.npz") as z:
            out[m] = {k: z[k] for k in z.files}
        out[m]["path"] = d / f"{m}.npz"  # type: ignore[assignment]
    return out


@pytest.mark.parametrize("w, m", METHODS)
def test_every_method_exports_codes_in_range(exported, w: str, m: str) -> None:
    z = exported[m]
    fmt = get_format(w)
    assert str(z["method"]) == m and str(z["weight_format"]) == w
    assert z["act_codes"].shape == (8, 1536) and z["weight_codes"].shape == (576, 1536)
    assert np.abs(z["act_codes"]).max() == 127  # per-token absmax int8: every token hits ±127
    assert z["weight_codes"].min() >= 0 and z["weight_codes"].max() < 2 ** fmt.bits
    assert ("smoothing_scales" in z) == (m in ("smoothquant", "slac"))
    assert ("weight_offsets" in z) == (m == "decoupleq")  # q·s + z: float offsets per group
    assert ("weight_zero_points" in z) == w.endswith("_asym")


def test_smoothing_and_gptq_change_what_the_mac_sees(exported) -> None:
    for m in ("smoothquant", "slac"):
        s = exported[m]["smoothing_scales"]
        assert s.shape == (1536,) and np.ptp(s) > 0
        # the input is divided by s before it is quantized: other int8 codes than RTN's
        assert np.mean(exported[m]["act_codes"] != exported["rtn"]["act_codes"]) > 0.25
    r, g = exported["rtn"], exported["gptq"]
    # same method of activation quantization; the input differs only through gate/up's rounding
    assert np.mean(np.abs(r["act_codes"].astype(int) - g["act_codes"])) < 1.0
    frac = np.mean(r["weight_codes"] != g["weight_codes"])
    assert 0.01 < frac < 0.5  # error feedback moves some codes, most stay


def test_operand_stream_layout(exported) -> None:
    z = exported["slac"]
    acts, codes, zps = load_operand_stream(z["path"], 2 * 1536 + 5)
    assert np.array_equal(acts[:1536], z["act_codes"][0]) and np.array_equal(codes[:1536], z["weight_codes"][0])
    assert np.array_equal(codes[1536:3072], z["weight_codes"][1])  # next row, same token
    assert np.array_equal(acts[1536:3072], z["act_codes"][0])
    assert np.array_equal(zps[:64], np.full(64, z["weight_zero_points"][0, 0]))
    assert np.array_equal(zps[64:128], np.full(64, z["weight_zero_points"][0, 1]))
    a2, c2, _ = load_operand_stream(z["path"], 10, dot_len=4)
    assert np.array_equal(a2[4:8], z["act_codes"][0, :4]) and np.array_equal(c2[4:8], z["weight_codes"][1, :4])
    _, _, none = load_operand_stream(exported["decoupleq"]["path"], 8)
    assert none is None
    from models.errors import MacforgeError

    with pytest.raises(MacforgeError, match="fewer than the"):
        load_operand_stream(z["path"], 8 * 576 * 1536 + 1)
