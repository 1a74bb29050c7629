"""The huffman decoder in the cost model (its own features and fit, routed from the mac/dot
model), its synthesis records and its gate-level energy per decoded symbol."""

from __future__ import annotations

import math

import pytest

from models import cost
from models.errors import MacforgeError
from models.units import get_unit

UNIT = "huffman_egrid4_L16"


def test_features_follow_the_format():
    f = cost.huffman_features(get_unit(UNIT))  # L = 16, S = 8, chunk 4096 (13 count bits), W = 64
    assert list(f) == list(cost.HUFFMAN_FEATURES)
    assert f == {"symbol_memory": 256 * 8, "length_table": 16 * 33, "matcher": 136 + 16 * 17,
                 "shifter": 2 * 64 * 6, "stream_state": 64 + 13 + 8 + 7}
    with pytest.raises(MacforgeError, match="huffman features are for huffman units, not mac"):
        cost.huffman_features(get_unit("mac_int4xint8"))


def test_fit_decoder_recovers_coefficients_and_routes():
    specs = cost.huffman_sweep_specs()
    assert len(specs) == 9 and {s.huffman_params["symbol_bits"] for s in specs} == {4, 6, 8}
    truth = {"symbol_memory": 9.0, "length_table": 11.0, "matcher": 3.0, "shifter": 0.5, "stream_state": 20.0}
    y = [sum(truth[k] * v for k, v in cost.huffman_features(s).items()) for s in specs]
    m = cost.fit_decoder(specs, y)
    for k, v in truth.items():
        assert m.coefficients[k] == pytest.approx(v, rel=1e-6), k
    assert m.validation["leave_one_out"]["max_abs_rel_error"] < 1e-6 and m.covers == "huffman"
    u = get_unit(UNIT)
    assert m.predict(u) == pytest.approx(sum(truth[k] * v for k, v in cost.huffman_features(u).items()))
    comps = m.components(u)
    assert sum(comps.values()) == pytest.approx(m.predict(u)) and comps["multiplier"] == 0
    with pytest.raises(MacforgeError, match="covers huffman decoders only, not mac"):
        m.predict(get_unit("mac_int4xint8"))
    # a mac/dot model: outside its fit unless the decoder model rides along
    mac = cost.CostModel("nand2_eq", {k: 1.0 for k in cost.FEATURES}, 1, 0.0, 0.0, 1.0)
    with pytest.raises(MacforgeError, match="is a huffman decoder: outside this model's fit"):
        mac.predict(u)
    mac.decoder = m
    assert mac.predict(u) == m.predict(u) and mac.breakdown(u) == m.breakdown(u)
    assert mac.predict(get_unit("mac_int4xint8")) > 0
    with pytest.raises(MacforgeError, match="fit_decoder takes huffman units only"):
        cost.fit_decoder(specs[:6] + [get_unit("mac_int4xint8")], [1.0] * 7)


@pytest.mark.slow
def test_decoder_fit_on_synthesis_is_validated():
    from sim.costfit import decoder_fit_specs, fit_decoder_area

    specs = decoder_fit_specs()
    assert UNIT in [s.name for s in specs] and len(specs) == 9  # the named unit replaces its twin
    m, _, recs = fit_decoder_area(workers=2)
    assert m.n_points == 9 and m.validation["leave_one_out"]["max_abs_rel_error"] < 0.1
    # the symbol memory dominates: 8-bit symbols cost several times the 4-bit ones at equal L
    area = {s.name: r["nand2_eq"] for s, r in zip(specs, recs)}
    assert area["huffman_hsweep_L12_s8"] > 2.5 * area["huffman_hsweep_L12_s4"]


@pytest.mark.slow
def test_energy_per_decoded_symbol():
    from rtl import huffman_energy
    from rtl.flow import synth_unit

    r = huffman_energy(UNIT, "random")
    assert r["symbols"] == 4096 and r["cycles"] < 4096 + 400  # one symbol per cycle + table load
    assert r["energy_per_symbol_pj"] == pytest.approx(r["energy_per_symbol_nand2"] * r["pj_per_nand2_toggle"])
    assert 0 < r["clock_energy_per_symbol_nand2"] < r["energy_per_symbol_nand2"]
    assert r["nand2_eq"] == synth_unit(UNIT, "generic")["nand2_eq"] and math.isfinite(r["toggles_per_symbol"])
