"""The entropy-coded uniform grid as a Format: registry names, the TOML family, the record
`macforge formats --json` prints (ideal vs Huffman bits, storage breakdown) and tensor coding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.errors import MacforgeError
from models.formats import (
    EntropyFormat,
    EntropyQuantizedTensor,
    entropy_coded_grid,
    entropy_format,
    format_names,
    get_format,
    load_formats,
    reference_tensor,
)
from models.formats import _registry
from models.golden import decode_stream, encode_stream
from sim.cli import main

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_registry():
    saved = dict(_registry._USER)
    yield
    _registry._USER.clear()
    _registry._USER.update(saved)


def test_listed_and_resolved_by_name():
    assert {"egrid3_L12", "egrid4_L16"} <= set(format_names())
    f = get_format("egrid3_L12")
    assert isinstance(f, EntropyFormat) and f.kind == "entropy"
    assert (f.budget, f.max_len, f.chunk, f.bits, f.max_levels) == (3.0, 12, 4096, 8, 127)
    # code c is grid point c - 127; the top code holds none
    assert f.values[0] == -127 and f.values[127] == 0 and f.values[254] == 127 and np.isnan(f.values[255])
    assert np.array_equal(f.encode(np.array([-500.0, -0.5, 0.5, 1.5, 3.2])), [0, 127, 127, 129, 130])
    with pytest.raises(MacforgeError, match=r"did you mean 'egrid2.5_L9'"):
        get_format("egrid2.50_L9")


def test_record_carries_ideal_huffman_and_storage(capsys):
    assert main(["formats", "egrid3_L12", "egrid4_L16", "--json"]) == 0
    recs = {r["name"]: r for r in json.loads(capsys.readouterr().out)["formats"]}
    for name, budget in (("egrid3_L12", 3.0), ("egrid4_L16", 4.0)):
        r, e = recs[name], recs[name]["entropy"]
        n = e["n_elements"]
        assert n == reference_tensor("normal").size
        # everything stored is what the breakdown sums to, and it fits the budget
        assert sum(e["storage_bits"].values()) / n == pytest.approx(r["bits_per_element"], abs=1e-12)
        assert budget - 0.02 < r["bits_per_element"] <= budget
        assert e["ideal_bits"] < e["huffman_bits"] <= e["ideal_bits"] + 1  # Huffman is within 1 bit of H
        assert e["huffman_minus_ideal"] == pytest.approx(e["huffman_bits"] - e["ideal_bits"])
        assert e["length_limit_loss"] >= 0 and e["longest_code"] <= e["max_len"]
        # the same numbers as coding the reference tensor directly
        g = entropy_coded_grid(reference_tensor("normal"), budget, max_len=e["max_len"], max_levels=127)
        assert (e["step"], e["huffman_bits"], e["storage_bits"]["code_table"]) == (g.step, g.huffman_bits, g.table_bits)


def test_toml_family(tmp_path):
    fmts = load_formats(ROOT / "examples" / "formats" / "entropy_formats.toml")
    f = get_format("egrid3p5_laplace")
    assert fmts == [f] and (f.bits, f.max_len, f.chunk, f.scale_format, f.reference) == (6, 10, 1024, "bf16", "laplace")
    rec = f.entropy_record()
    assert rec["storage_bits"]["scale"] == 16 and rec["bits_per_element"] <= 3.5
    # a 10-bit limit on a Laplace source costs bits against the unlimited code
    assert rec["length_limit_loss"] > 0 and rec["longest_code"] == 10

    def bad(body: str) -> str:
        p = tmp_path / "bad.toml"
        p.write_text('[[format]]\nname = "e1"\nfamily = "entropy"\n' + body)
        with pytest.raises(MacforgeError) as ei:
            load_formats(p)
        return str(ei.value)

    assert "key 'budget': missing" in bad("")
    assert "it takes no scaling" in bad('budget = 3\n[format.scaling]\ngranularity = "tensor"\n')
    assert "max_len 4 cannot code the 255 symbols of symbol_bits 8" in bad("budget = 3\nmax_len = 4\n")
    assert "reference must be one of normal, laplace" in bad('budget = 3\nreference = "cauchy"\n')
    assert "unknown key for family 'entropy'" in bad("budget = 3\nbits = 4\n")


def test_budget_out_of_range_names_the_limits():
    with pytest.raises(MacforgeError, match=r"budget 0.01 b/elem is below what any grid reaches here"):
        entropy_format("e", 0.01, 12).bits_per_element()
    with pytest.raises(MacforgeError, match=r"budget 12 b/elem is above what the finest grid needs"):
        entropy_format("e", 12.0, 12, symbol_bits=4).bits_per_element()


def test_quantize_codes_the_tensor_itself():
    f = get_format("egrid3_L12")
    w = np.random.default_rng(5).standard_t(4, size=(96, 128)) * 0.02
    q = f.quantize(w)
    assert isinstance(q, EntropyQuantizedTensor) and q.grid is not None
    step = float(q.scales[0])
    k = np.clip(np.rint(w / step), -127, 127)
    assert np.array_equal(q.dequantize(), k * step)
    assert 2.98 < q.bits_per_element <= 3.0
    assert set(q.stored_bits()) == {"elements", "code_table", "scales", "chunk_offsets"}
    st = encode_stream(q.grid.symbols, q.grid.table, chunk=f.chunk)
    assert st.n_bits == q.stored_bits()["elements"]
    assert np.array_equal(decode_stream(st, q.grid.table), q.codes.reshape(-1))
    with pytest.raises(MacforgeError, match="takes no other scaling"):
        f.quantize(w, get_format("int4").default_scaling)


def test_fixed_alphabet_saturates():
    x = np.concatenate([np.random.default_rng(2).normal(size=4000), [60.0, -80.0]])
    g = entropy_coded_grid(x, 2.5, max_levels=7)
    assert 2.48 < g.bits_per_element <= 2.5 and g.dequantize().max() == 7 * g.step  # 60 saturated
    assert g.levels == 7 and g.table.n_symbols == 15 and g.symbols.min() == 0 and g.symbols.max() == 14
    with pytest.raises(MacforgeError, match=r"max_levels must be an integer in 1\.\.32767, not 0"):
        entropy_coded_grid(x, 3.0, max_levels=0)
