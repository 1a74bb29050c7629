"""The variable_length report section's weight study (on small seeded tensors here; the report
runs it on MiniLM and SmolLM2 weights)."""

from __future__ import annotations

import numpy as np
import pytest

import sim.report_variable_length as vl


def test_weight_study_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    ts = {"a": rng.standard_t(5, size=(64, 256)) * 0.02, "b": rng.normal(size=(32, 512)) * 0.05}
    monkeypatch.setattr(vl, "_tensors", lambda model: ts)
    rows = vl.weight_study("toy")
    by = {r["format"]: r for r in rows}
    assert by["int4"]["bits_per_element"] == pytest.approx(4.125) and by["int4"]["kind"] == "fixed"
    eg = [r for r in rows if r["kind"] == "entropy"]
    assert [r["format"] for r in eg] == [f"egrid{b:g}_L16" for b in vl.BUDGETS]
    for r, b in zip(eg, vl.BUDGETS):
        assert b - 0.05 < r["bits_per_element"] <= b  # everything stored, summed over both tensors
        assert r["ideal_bits_per_element"] < r["bits_per_element"]
    sq = [r["sqnr_db"] for r in eg]
    assert all(x < y for x, y in zip(sq, sq[1:]))  # more bits, less error
    # sparse outliers cost their value + index bits on top of INT4
    assert by["int4 + 0.5% outliers"]["bits_per_element"] > by["int4"]["bits_per_element"]
    b = vl._at_equal_error(rows, "int4")
    assert b is not None and 2.5 < b < 5.0
    # the interpolation hits the target SQNR between the two bracketing budgets
    lo = max((r for r in eg if r["bits_per_element"] <= b), key=lambda r: r["bits_per_element"])
    assert lo["sqnr_db"] <= by["int4"]["sqnr_db"]
