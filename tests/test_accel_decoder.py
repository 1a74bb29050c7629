"""Entropy-coded weights in the accelerator model (issue #11 item 4): stored and moved at their
coded size, decoded between the weight buffer and the array (a decode roof), each decoded
symbol priced, the decoders' area added. Explicit decoder figures (no synthesis here)."""

from __future__ import annotations

import math

import pytest

from models.errors import MacforgeError
from models.formats import storage_bits_per_element, get_format
from sim.accel import evaluate, gemm_workload, load_arch, resolve_formats
from sim.accel._model import decoders_per_array

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIG = {"decoder.energy_per_symbol_pj": 0.25, "decoder.area_um2": 2000.0,
       "pe.energy_per_mac_pj": 0.05, "pe.area_um2": 400.0}


def _spec(**over: object):
    return load_arch(ROOT / "examples" / "arch" / "w8a8_int8.toml").replace(**{**FIG, **over})


def _run(spec, w: str, m: int = 1, k: int = 1024, n: int = 512):
    return evaluate(spec, gemm_workload(m, k, n, formats=resolve_formats(spec, weights=w)))


def test_coded_weights_move_at_their_coded_size_and_each_symbol_is_priced() -> None:
    spec = _spec()
    r = _run(spec, "egrid3_L12")
    g = r.gemms.iloc[0]
    bits = storage_bits_per_element(get_format("egrid3_L12"), None, (512, 1024))
    assert 2.99 < bits < 3.05  # the 3-bit budget, not the 8-bit symbols
    assert g.dram_bytes_weights == pytest.approx(1024 * 512 * g.w_bits / 8)
    assert g.w_bits == pytest.approx(bits, rel=1e-9)
    # M = 1: every weight reaches the array once, so one decoded symbol per weight
    assert g.decoded_symbols == pytest.approx(1024 * 512)
    assert r.summary["energy_j_breakdown"]["decode"] == pytest.approx(1024 * 512 * 0.25e-12)
    assert r.summary["decoders"] == decoders_per_array(spec, _unit(spec)) == 16 * 8  # cols x lanes (os)
    assert r.summary["area_mm2_breakdown"]["decoders"] == pytest.approx(128 * 2000e-6)
    plain = _run(spec, "int8")
    assert plain.summary["decoders"] == 0 and plain.summary["area_mm2_breakdown"]["decoders"] == 0
    assert plain.summary["energy_j_breakdown"]["decode"] == 0


def _unit(spec):
    from sim.accel._costs import resolve_unit

    return resolve_unit(spec.pe.unit)


def test_few_decoders_become_the_binding_roof() -> None:
    fed = _run(_spec(), "egrid4_L16", m=64)
    starved = _run(_spec(**{"decoder.count": 1}), "egrid4_L16", m=64)
    g = starved.gemms.iloc[0]
    assert fed.gemms.iloc[0].bound != "decode"
    assert g.bound == "decode"
    # one symbol per cycle: at least every weight symbol read from the buffer takes a cycle
    assert g.cycles >= g.decoded_symbols
    assert starved.summary["tokens_per_s"] < fed.summary["tokens_per_s"]
    # the same decoders at half the rate take about twice as long once decoding binds
    half = _run(_spec(**{"decoder.count": 1, "decoder.symbols_per_cycle": 0.5}), "egrid4_L16", m=64)
    assert half.gemms.iloc[0].cycles == pytest.approx(2 * g.cycles, rel=0.05)


def test_sweep_path_equals_the_full_path() -> None:
    from sim.accel import evaluate_summary, transformer_workload

    spec = _spec(**{"decoder.count": 2})
    wl = transformer_workload("smollm2-135m", "decode", formats=resolve_formats(spec, weights="egrid4_L16"))
    full, fast = evaluate(spec, wl).summary, evaluate_summary(spec, wl)
    for k in ("cycles", "energy_per_token_j", "area_mm2", "bound"):
        assert fast[k] == full[k] if isinstance(full[k], str) else math.isclose(fast[k], full[k], rel_tol=1e-12)
    assert fast["gemm_cycles_by_bound"].get("decode", 0) > 0


def test_decoder_spec_errors() -> None:
    with pytest.raises(MacforgeError, match=r"decoder.count must be a non-negative integer"):
        _spec(**{"decoder.count": -1})
    with pytest.raises(MacforgeError, match=r"decoder.symbols_per_cycle must be a positive number"):
        _spec(**{"decoder.symbols_per_cycle": 0.0})
    with pytest.raises(MacforgeError, match=r"is a dot, not a huffman decoder"):
        _run(_spec(**{"decoder.unit": "dot8_int8xint8"}), "egrid4_L16")
    with pytest.raises(MacforgeError, match=r"decodes egrid4_L16, not the weights' egrid3_L12"):
        _run(_spec(**{"decoder.unit": "huffman_egrid4_L16"}), "egrid3_L12")
