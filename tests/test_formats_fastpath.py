"""The rint + clip fast path of integer grids gives exactly the general nearest-value codes."""

from __future__ import annotations

import numpy as np
import pytest

from models.formats import _core, get_format, nearest_codes


@pytest.mark.parametrize("name", ["int2", "int4", "int8", "int4_asym", "int8_asym", "dint4_asym", "nf4", "mxint8"])
def test_fast_integer_path_equals_the_general_one(name, monkeypatch):
    f = get_format(name)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=200_000) * 40, np.arange(-300, 300, 0.5), [-0.0, 0.0]])
    fast = nearest_codes(f, x)
    monkeypatch.setattr(_core, "_is_even_tie_integer_grid", lambda fmt: False)
    assert np.array_equal(fast, nearest_codes(f, x))
    expect_fast = name in ("int2", "int4", "int8", "int4_asym", "int8_asym")
    monkeypatch.undo()
    assert _core._is_even_tie_integer_grid(f) == expect_fast
