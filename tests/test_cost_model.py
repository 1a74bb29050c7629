"""models.cost without synthesis: features and register counts from the spec, the joint NNLS fit
(totals + components) recovering known coefficients, out-of-sample validation, support flags and
bad input. The synthesized checks (flip-flops, a small real sweep, the CLI) are in
tests/test_cost_synth.py."""

from __future__ import annotations

import numpy as np
import pytest

from models import cost
from models.errors import MacforgeError
from models.units import UnitSpec, get_unit, unit_from_spec

# a spread of small units that exercises every feature at least once
_UNITS = [s for s in cost.sweep_specs(weight_bits=(2, 4, 8), act_bits=(4, 8), acc_bits=(16, 32), lanes=(1, 4))] + [
    get_unit(n) for n in ("mac_dint4_asym_xint8", "mac_dint4_sym_xint8", "dot4_dint4_sym_xint8",
                          "mac_fp8_e4m3xint8", "mac_lut4xint8", "dot4_lut4xint8", "mac_lut4c_nf4xint8",
                          "dot4_dint4_asym_xint8")] + cost.coverage_specs()


def _truth() -> dict[str, float]:
    """A known, non-negative coefficient per feature (distinct, so a swap would show)."""
    return {k: 0.5 + i * 0.37 for i, k in enumerate(cost.FEATURES)}


def _synthetic(coef: dict[str, float]) -> tuple[list[float], list[dict[str, float]]]:
    """Totals and measured components that follow ``coef`` exactly (MACs report all four
    measured parts, dot PEs their registers, like rtl.flow.synth_unit)."""
    totals, comps = [], []
    for s in _UNITS:
        f = cost.features(s)
        split = {c: sum(coef[k] * f[k] for k in fs) for c, fs in cost.COMPONENTS.items()}
        totals.append(sum(split.values()))
        comps.append({c: split[c] for c in cost.MEASURED_COMPONENTS} if s.kind == "mac"
                     else {"registers": split["registers"]})
    return totals, comps


def test_register_bits_count_what_the_rtl_registers() -> None:
    """The pipeline registers the accumulator's input (a dot PE's tree output, product width +
    one bit per tree level) plus en / clr, not lanes × product bits."""
    d16 = unit_from_spec("kind=dot,lanes=16,weights=int8,latency=2")
    assert cost.term_bits(d16) == 16 + 4  # int8 × int8 products are 16 bits; 4 tree levels
    assert cost.register_bits(d16) == 32 + 22  # not 32 + 16 × 16 + 2 = 290
    d6 = unit_from_spec("kind=dot,lanes=6,weights=int4,latency=3")
    # latency 3: the tree output (12 + 3 tree levels) and each lane's split multiplier (two
    # partial products int4 × int8 halves: 2·4 + 8 bits), each level with en / clr; the netlist
    # has the same 115 + 32 flip-flops (tests/test_cost_synth.py)
    assert cost.pipeline_bits(d6) == (12 + 3 + 2) + (6 * (2 * 4 + 8) + 2)
    # product rounding keeps one guard bit: 12-bit half-unit product -> 12 - 1 + 1
    rne = unit_from_spec("kind=mac,weights=dint4_sym,latency=2,product_round=rne,acc_bits=20")
    assert rne.product_bits == 11 and cost.term_bits(rne) == 12
    for name in ("mac_int8xint8", "dot16_int8xint8", "mac_fp8_e4m3xint8"):
        assert cost.register_bits(get_unit(name)) == 32  # latency 1: the accumulator only
    assert cost.register_bits(get_unit("mac_lut4xint8")) == 32 + 16 * 8


def test_features_are_grouped_into_components() -> None:
    assert sorted(cost.FEATURES) == sorted(k for fs in cost.COMPONENTS.values() for k in fs)
    assert len(set(cost.FEATURES)) == len(cost.FEATURES)
    f = cost.features(get_unit("mac_fp8_e4m3xint8"))
    assert list(f) == list(cost.FEATURES)
    assert f["decode_fp"] == 1 and f["shifter"] > 0 and f["tree"] == 0
    with pytest.raises(MacforgeError, match="the cost model covers mac and dot units, not dq_group"):
        cost.features(get_unit("dq_int2_group_mac"))


def test_fit_recovers_known_coefficients_and_split() -> None:
    truth = _truth()
    totals, comps = _synthetic(truth)
    m = cost.fit(_UNITS, totals, "nand2_eq", components=comps)
    for k in cost.FEATURES:
        assert m.coefficients[k] == pytest.approx(truth[k], rel=1e-6), k
    assert m.max_abs_rel_error < 1e-9 and m.r2 == pytest.approx(1.0)
    s = _UNITS[-1]
    assert sum(m.components(s).values()) == pytest.approx(m.predict(s))
    for e in m.component_errors.values():
        assert e["max_abs_share_of_total"] < 1e-9
    v = m.validation
    assert v["leave_one_out"]["max_abs_rel_error"] < 1e-6  # exact data: every held-out unit predicted
    assert set(v["leave_one_out"]["errors"]) == {s.name for s in _UNITS}


def test_components_pin_what_totals_alone_cannot() -> None:
    """Without a programmable LUT or pipeline, a unit's flip-flops are its accumulator bits, so
    in the totals 'registers' and 'accumulator' always appear together: the totals fix only their
    sum; the measured split (registers vs accumulator component) fixes each."""
    idx = [i for i, s in enumerate(_UNITS) if s.latency == 1 and s.lut != "programmable"]
    units = [_UNITS[i] for i in idx]
    assert all(cost.features(s)["registers"] == cost.features(s)["accumulator"] for s in units)
    truth = _truth()
    totals, comps = _synthetic(truth)
    y = [totals[i] for i in idx]
    with_split = cost.fit(units, y, "nand2_eq", components=[comps[i] for i in idx], validate=False)
    totals_only = cost.fit(units, y, "nand2_eq", validate=False)
    both = truth["registers"] + truth["accumulator"]
    for m in (with_split, totals_only):
        assert m.coefficients["registers"] + m.coefficients["accumulator"] == pytest.approx(both, rel=1e-6)
        assert m.max_abs_rel_error < 1e-9
    assert with_split.coefficients["registers"] == pytest.approx(truth["registers"], rel=1e-6)
    assert with_split.coefficients["accumulator"] == pytest.approx(truth["accumulator"], rel=1e-6)
    assert totals_only.coefficients["registers"] != pytest.approx(truth["registers"], rel=1e-3)


def test_held_out_family_reports_what_it_cannot_see() -> None:
    truth = _truth()
    totals, comps = _synthetic(truth)
    v = cost.cross_validate(_UNITS, totals, components=comps)
    fp = v["held_out"]["fp"]
    assert "shifter" in fp["unseen_features"] and "decode_fp" in fp["unseen_features"]
    assert fp["mean_abs_rel_error"] > 0.01  # the shifter's cost is missing from every FP prediction
    assert fp["n"] == sum(cost.family(s) == "fp" for s in _UNITS) and fp["n"] + fp["n_fit"] == len(_UNITS)
    # dINT is the only family that exercises decode_dint: its decode cost is missing
    dint = v["held_out"]["dint"]
    assert dint["unseen_features"] == ["decode_dint"] and dint["max_abs_rel_error"] > 0
    # the zero-point integers' features all appear elsewhere (dINT Variant A has a zero point)
    zp = v["held_out"]["int_zp"]
    assert zp["unseen_features"] == [] and zp["max_abs_rel_error"] < 1e-6
    assert set(v["held_out"]) == {"dot", "dint", "lut", "fp", "int_zp", "pipelined"}
    assert v["held_out"]["dot"]["unseen_features"] == ["tree", "tree_partial_products"]


def test_support_flags_thin_features() -> None:
    units = cost.sweep_specs(weight_bits=(2, 4, 8), act_bits=(4, 8), acc_bits=(16, 32), lanes=(1, 4)) + \
        [get_unit("mac_fp8_e4m3xint8")]
    y = [1.0 + sum(cost.features(s).values()) for s in units]
    m = cost.fit(units, y, "nand2_eq", validate=False)
    assert m.support["shifter"] == 1 and m.support["decode_dint"] == 0
    assert m.flagged == ["decode_fp", "shifter"]  # non-zero in 1 unit; unused features are not flagged
    # the area fit's units (INT sweep + named units + coverage units) give every feature >= 5
    from sim.costfit import fit_specs

    x = np.array([list(cost.features(s).values()) for s in fit_specs("area")])
    assert dict(zip(cost.FEATURES, np.count_nonzero(x, axis=0).tolist())) == {
        k: v for k, v in zip(cost.FEATURES, np.count_nonzero(x, axis=0).tolist()) if v >= cost.MIN_SUPPORT}


def test_fit_refuses_bad_input() -> None:
    units = _UNITS[:20]
    y = [100.0] * 20
    with pytest.raises(MacforgeError, match="^fit needs one measurement per spec, got 20 specs and 19 values$"):
        cost.fit(units, y[:19], "nand2_eq")
    with pytest.raises(MacforgeError, match="^measured values contain NaN or Inf$"):
        cost.fit(units, [float("nan")] + y[1:], "nand2_eq")
    with pytest.raises(MacforgeError, match=r"^measured values must be positive \(relative errors\), unit "):
        cost.fit(units, [0.0] + y[1:], "nand2_eq")
    with pytest.raises(MacforgeError, match="^unknown component 'adder'; known: decode, multiplier, tree, "):
        cost.fit(units, y, "nand2_eq", components=[{"adder": 1.0}] + [None] * 19)
    with pytest.raises(MacforgeError, match=f"^fit got unit {units[0].name} twice$"):
        cost.fit(units[:19] + units[:1], y, "nand2_eq")
    with pytest.raises(MacforgeError, match=r"^fit needs at least as many units as features they exercise \(\d+\), got 2$"):
        cost.fit(units[:2], y[:2], "nand2_eq")
    spec = UnitSpec(name="q", kind="dq_group", weight_format="decoupleq_int2", group_size=64)
    with pytest.raises(MacforgeError, match="covers mac and dot units"):
        cost.fit([spec] * 1, [1.0], "nand2_eq")


def test_model_digest_keys_the_definition_and_the_sweep() -> None:
    from sim import costfit

    area = costfit.model_digest("area")
    assert area == costfit.model_digest("area") and len(area) == 16
    assert costfit.model_digest("energy") != area
    specs = costfit.fit_specs("area")
    assert costfit.model_digest("area", specs) == area
    assert costfit.model_digest("area", specs[:-1]) != area  # one unit fewer: another fit
    with pytest.raises(MacforgeError, match="^fit kind must be 'area' or 'energy', not 'power'$"):
        costfit.fit_specs("power")
