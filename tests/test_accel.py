"""Accelerator model: spec ↔ TOML, workloads, the fold schedule, tiling/traffic and metrics.

Fast tier: PE figures are given explicitly in the specs here (the cost-model fit needs the
synthesis sweep; tests/test_accel_cost.py covers that path, marked slow).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from models.errors import MacforgeError
from models.formats import get_format, storage_bits_per_element
from sim.accel import (AcceleratorSpec, PESpec, TensorFormats, arch_from_dict, arch_to_toml, evaluate,
                       fold_cycles, gemm_compute_cycles, gemm_workload, get_model, load_arch, model_names,
                       parse_gemm, transformer_workload)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "arch").glob("*.toml"))


def explicit(spec: AcceleratorSpec, pj: float = 0.05, um2: float = 300.0) -> AcceleratorSpec:
    return spec.replace(**{"pe.energy_per_mac_pj": pj, "pe.area_um2": um2})


def example(name: str) -> AcceleratorSpec:
    return explicit(load_arch(ROOT / "examples" / "arch" / f"{name}.toml"))


def fmts(spec: AcceleratorSpec) -> TensorFormats:
    f = spec.formats
    return TensorFormats(f.weights or "int8", f.acts or "int8", f.kv, f.attn)


# --------------------------------------------------------------------------- spec
def test_examples_exist_and_round_trip() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"w4a8_dint", "w8a8_int8", "equal_area_w4a8_dint", "equal_area_w8a8_int8"} <= names
    for p in EXAMPLES:
        s = load_arch(p)
        assert s.name == tomllib.loads(p.read_text()).get("name", p.stem)
        assert arch_from_dict(tomllib.loads(arch_to_toml(s))) == s


def test_equal_array_pair_differs_only_in_pe_and_formats() -> None:
    a, b = load_arch(EXAMPLES[0].parent / "w4a8_dint.toml"), load_arch(EXAMPLES[0].parent / "w8a8_int8.toml")
    assert a.array == b.array and a.buffers == b.buffers and a.dram == b.dram and a.vector == b.vector
    assert a.pe.unit != b.pe.unit


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "arch.toml"
    p.write_text(text)
    return p


def test_unknown_key_names_file_key_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, 'name = "x"\n[array]\nrows = 4\ncolz = 4\n')
    with pytest.raises(MacforgeError, match=r"arch\.toml: key 'array\.colz' \(line 4\): unknown key; known here: "
                                            r"cols, count, dataflow, rows, schedule"):
        load_arch(p)


def test_unknown_table_and_nested_key(tmp_path: Path) -> None:
    with pytest.raises(MacforgeError, match=r"key 'cache' \(line 2\): unknown key"):
        load_arch(_write(tmp_path, 'name = "x"\n[cache]\nsize = 1\n'))
    with pytest.raises(MacforgeError, match=r"key 'buffers\.weights\.sise_kib' \(line 3\)"):
        load_arch(_write(tmp_path, '[buffers.weights]\nbanks = 2\nsise_kib = 4\n'))


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, '[array]\nrows = 4\ncols = = 4\n')
    with pytest.raises(MacforgeError, match=r"arch\.toml: malformed TOML: .*line 3"):
        load_arch(p)


def test_wrong_type_and_bad_value(tmp_path: Path) -> None:
    with pytest.raises(MacforgeError, match=r"key 'array\.rows' \(line 2\): must be int, not '4'"):
        load_arch(_write(tmp_path, '[array]\nrows = "4"\n'))
    with pytest.raises(MacforgeError, match=r"key 'array\.dataflow' \(line 2\): must be one of 'os', 'ws', 'is', "
                                            r"not 'rs'"):
        load_arch(_write(tmp_path, '[array]\ndataflow = "rs"\n'))
    with pytest.raises(MacforgeError, match=r"dram.bandwidth_gb_s must be a positive number, not 0"):
        load_arch(_write(tmp_path, '[dram]\nbandwidth_gb_s = 0\n'))
    with pytest.raises(MacforgeError, match="cannot read accelerator spec"):
        load_arch(tmp_path / "missing.toml")


# --------------------------------------------------------------------------- schedule
def test_os_schedule_is_the_rtl_systolic_schedule() -> None:
    from rtl import systolic_schedule

    for r, c, k in [(1, 1, 1), (2, 3, 5), (4, 4, 64), (8, 8, 100), (3, 7, 2)]:
        assert gemm_compute_cycles("os", r, c, r, k, c) == systolic_schedule(r, c, k)
        # two row folds and three column folds: six back-to-back tiles
        assert gemm_compute_cycles("os", r, c, 2 * r, k, 3 * c) == 6 * systolic_schedule(r, c, k)


def test_fold_schedule_by_hand() -> None:
    # WS on 4x4, M=16, K=32, N=8: ceil(32/4)*ceil(8/4) = 16 folds of 4 preload + 16 + 4 + 4 - 2
    assert fold_cycles("ws", 4, 4, 16, 32, 8) == (16, 26)
    # IS: N streams; K on rows, M on columns
    assert fold_cycles("is", 4, 4, 16, 32, 8) == (32, 18)
    # lanes: an 8-lane PE takes K in chunks of 8
    assert fold_cycles("os", 4, 4, 16, 64, 8, lanes=8) == (8, 8 + 8 + 4 - 2)
    assert gemm_compute_cycles("os", 4, 4, 16, 32, 8, schedule="scalesim") == 8 * (32 + 4 + 4 - 2) - 1
    with pytest.raises(MacforgeError, match="dataflow must be os, ws or is"):
        fold_cycles("rs", 4, 4, 1, 1, 1)
    with pytest.raises(MacforgeError, match="rows must be a positive integer"):
        fold_cycles("os", 0, 4, 1, 1, 1)


# --------------------------------------------------------------------------- workloads
def test_model_shapes_match_published_parameter_counts() -> None:
    # Parameters = linear weights per token-MAC of decode + embedding (+ untied head): the shapes
    # must reproduce the published model sizes (Touvron et al. 2023 Table 2; OPT Table 1).
    published = {"llama-7b": 6.7e9, "llama-13b": 13.0e9, "llama-65b": 65.2e9, "opt-6.7b": 6.7e9,
                 "opt-66b": 66e9, "llama-2-70b": 69e9, "llama-3-8b": 8.0e9}
    for name, n in published.items():
        cfg = get_model(name)
        wl = transformer_workload(name, "decode", batch=1, context=1)
        linear = sum(g.k * g.n for g in wl.layer_gemms if g.role == "linear") * wl.n_layers
        params = linear + 2 * cfg.vocab * cfg.d_model  # embedding + LM head (untied)
        assert params == pytest.approx(n, rel=0.03), name


def test_smollm2_from_gguf_and_gqa() -> None:
    cfg = get_model("smollm2-135m")
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ffn, cfg.vocab) == (30, 576, 9, 3, 1536, 49152)
    wl = transformer_workload("llama-2-70b", "decode", batch=2, context=100)
    g = {x.name: x for x in wl.layer_gemms}
    assert g["k_proj"].n == 8 * 128 and g["q_proj"].n == 8192
    assert (g["attn_qk"].m, g["attn_qk"].k, g["attn_qk"].n, g["attn_qk"].count) == (8, 128, 100, 2 * 8)
    assert "smollm2-135m" in model_names() and "opt-125m" in model_names()
    with pytest.raises(MacforgeError, match="unknown model 'gpt-5'"):
        get_model("gpt-5")


def test_bits_per_element_come_from_formats() -> None:
    wl = transformer_workload("llama-7b", "decode", formats=TensorFormats("nf4", "int8", "int4", "int8"))
    g = {x.name: x for x in wl.layer_gemms}
    assert g["q_proj"].w_bits == storage_bits_per_element(get_format("nf4"), None, (4096, 4096))
    assert g["q_proj"].w_bits == get_format("nf4").bits_per_element() > 4
    assert g["attn_qk"].w_bits == get_format("int4").bits_per_element()
    assert g["k_proj"].y_fmt == "int4"  # k_proj writes the KV cache
    with pytest.raises(MacforgeError, match="unknown format 'int33'"):
        TensorFormats("int33", "int8")


def test_parse_gemm() -> None:
    assert parse_gemm("64x128x32") == (64, 128, 32)
    for bad in ("64x128", "0x1x1", "axbxc"):
        with pytest.raises(MacforgeError, match="--gemm must be MxKxN"):
            parse_gemm(bad)


# --------------------------------------------------------------------------- the model
def test_gemm_metrics_are_consistent() -> None:
    spec = explicit(AcceleratorSpec(pe=PESpec(unit="mac_int8xint8")).replace(
        **{"array.rows": 8, "array.cols": 8, "array.dataflow": "os"}))
    r = evaluate(spec, gemm_workload(64, 128, 32))
    s = r.summary
    assert isinstance(r.gemms, pd.DataFrame) and isinstance(r.layers, pd.DataFrame)
    assert r.gemms.cycles_compute.iloc[0] == gemm_compute_cycles("os", 8, 8, 64, 128, 32)
    vector_cycles = float(r.layers.cycles_vector.sum())  # scale application (serialized)
    assert vector_cycles > 0 and s["cycles_compute"] == r.gemms.cycles_compute.iloc[0] + vector_cycles
    assert s["cycles"] >= s["cycles_compute"]
    assert s["tokens_per_s"] == pytest.approx(64 / (s["cycles"] / 1e9))
    assert s["utilization"] == pytest.approx(64 * 128 * 32 / (s["cycles"] * 64))
    assert 0 < s["utilization"] <= 1
    assert s["energy_j"] == pytest.approx(sum(s["energy_j_breakdown"].values()))
    assert s["energy_j_breakdown"]["mac"] == pytest.approx(64 * 128 * 32 * 0.05e-12)
    assert s["area_mm2"] == pytest.approx(sum(s["area_mm2_breakdown"].values()))
    assert s["area_mm2_breakdown"]["pe_array"] == pytest.approx(64 * 300e-6)
    # DRAM: every operand moves once (all fit), outputs written once
    row = r.gemms.iloc[0]
    assert row.dram_bytes_weights == pytest.approx(128 * 32 * get_format("int8").bits_per_element() / 8)
    assert row.dram_bytes_inputs == pytest.approx(64 * 128 * get_format("int8").bits_per_element() / 8)


def test_decode_is_bound_by_weight_traffic_and_scales_with_bandwidth() -> None:
    spec = example("w8a8_int8")
    wl = transformer_workload("llama-7b", "decode", batch=1, context=256, formats=fmts(spec))
    r = evaluate(spec, wl)
    assert r.summary["bound"] == "dram"
    g = r.gemms
    wbytes = float(g.dram_bytes_weights[(g.role == "linear") & (g.layer >= 0)].sum()) * 32 + \
        float(g.dram_bytes_weights[g.layer < 0].sum())
    params = 6.476e9 + 32000 * 4096  # linear weights + LM head
    assert wbytes == pytest.approx(params * get_format("int8").bits_per_element() / 8, rel=0.01)
    # double buffering hides compute under the DRAM stream: close to the DRAM roof, never below
    roof = r.summary["dram_bytes"] * 8 / (spec.dram.bandwidth_gb_s * 8 / (spec.clock_mhz * 1e-3))
    assert roof <= r.summary["cycles"] <= 1.15 * roof
    fast = evaluate(spec.replace(**{"dram.bandwidth_gb_s": 4 * spec.dram.bandwidth_gb_s}), wl)
    assert fast.summary["cycles"] < 0.7 * r.summary["cycles"]
    assert fast.summary["cycles"] >= fast.summary["cycles_compute"] == r.summary["cycles_compute"]


def test_w4a8_halves_decode_weight_traffic_at_equal_array() -> None:
    a, b = example("w4a8_dint"), example("w8a8_int8")
    ra = evaluate(a, transformer_workload("llama-7b", "decode", context=256, formats=fmts(a)))
    rb = evaluate(b, transformer_workload("llama-7b", "decode", context=256, formats=fmts(b)))
    ratio = rb.summary["dram_bytes"] / ra.summary["dram_bytes"]
    bits = get_format("int8").bits_per_element() / get_format("dint4_sym").bits_per_element()
    assert 1.8 < ratio <= bits + 1e-9
    assert ra.summary["energy_per_token_j"] < rb.summary["energy_per_token_j"]


def test_per_layer_frame_and_vector_work() -> None:
    spec = example("w8a8_int8")
    r = evaluate(spec, transformer_workload("opt-125m", "prefill", batch=2, seq=128, formats=fmts(spec)))
    assert len(r.layers) == 12 + 1 and r.layers.layer.iloc[-1] == "lm_head"
    assert r.summary["cycles"] == pytest.approx(r.layers.cycles.sum())
    assert (r.layers.cycles_vector > 0).all()
    assert set(r.gemms.name) == {"q_proj", "k_proj", "v_proj", "attn_qk", "attn_pv", "o_proj", "fc1", "fc2", "lm_head"}
    assert r.summary["tokens"] == 256
    # attention runs on the INT8 array here; with FP16 probabilities the PE cannot take them
    assert set(r.gemms.engine) == {"array"}
    r16 = evaluate(spec, transformer_workload("opt-125m", "prefill", batch=2, seq=128,
                                              formats=TensorFormats("int8", "int8", "int8", "fp16")))
    assert set(r16.gemms[r16.gemms.role == "attention"].engine) == {"vector"}


def test_bad_specs_are_clear_errors() -> None:
    spec = example("w4a8_dint")
    with pytest.raises(MacforgeError, match=r"PE unit dot8_dint4_sym_xint8 takes dint4_sym weights, not int8 \(q_proj\)"):
        evaluate(spec, transformer_workload("opt-125m", "decode", formats=TensorFormats("int8", "int8")))
    tiny = spec.replace(**{"buffers.outputs.size_kib": 0.5})
    with pytest.raises(MacforgeError, match="fits no half of the output buffer"):
        evaluate(tiny, gemm_workload(64, 64, 64, weights="dint4_sym"))
    with pytest.raises(MacforgeError, match="a PE must be a mac or dot unit"):
        evaluate(spec.replace(**{"pe.unit": "dq_int2_group_mac"}), gemm_workload(4, 4, 4))
    with pytest.raises(MacforgeError, match="unknown unit 'nope'"):
        evaluate(spec.replace(**{"pe.unit": "nope"}), gemm_workload(4, 4, 4))
    with pytest.raises(MacforgeError, match="batch must be a positive integer"):
        transformer_workload("opt-125m", "decode", batch=0)


def test_dataflows_differ_and_utilization_bounded() -> None:
    base = example("w8a8_int8")
    wl = transformer_workload("smollm2-135m", "prefill", batch=1, seq=256, formats=fmts(base))
    cyc = {}
    for df in ("os", "ws", "is"):
        r = evaluate(base.replace(**{"array.dataflow": df}), wl)
        assert 0 < r.summary["utilization"] <= 1
        assert (r.gemms.utilization <= 1 + 1e-12).all()
        cyc[df] = r.summary["cycles_compute"]
    assert len(set(cyc.values())) == 3
    assert math.isfinite(sum(cyc.values()))


def test_partial_last_group_stores_a_whole_scale() -> None:
    from models.formats import SCALE_FORMAT_BITS
    from sim.accel import tensor_bits

    sc = get_format("int8").default_scaling
    assert sc is not None and sc.group_size == 128
    # SmolLM2's d = 576 = 4.5 groups of 128: five fp16 scales per row
    assert tensor_bits("int8", (4, 576)) == pytest.approx(8 + 5 * SCALE_FORMAT_BITS[sc.scale_format] / 576)
    assert tensor_bits("int8", (4, 512)) == storage_bits_per_element(get_format("int8"), None, (4, 512))


def test_numba_tile_search_matches_numpy_reference() -> None:
    import numpy as np

    from sim.accel import GemmMachine, evaluate_gemm
    from sim.accel._dataflow import evaluate_gemm_reference

    rng = np.random.default_rng(20261201)
    checked = 0
    for i in range(240):
        df, sched = ("os", "ws", "is")[i % 3], ("macforge", "scalesim")[(i // 3) % 2]
        r, c = (int(x) for x in rng.integers(1, 33, 2))
        bufs = [float(x) for x in rng.choice([2.0 ** 14, 2.0 ** 18, 2.0 ** 23], 3)]
        mc = GemmMachine(r, c, int(rng.choice([1, 4, 8])), int(rng.integers(1, 4)), df, sched, 32, *bufs,
                         512, 256, 1024, 64.0, 0.1, 0.01, 0.012, 0.02, 0.021, 0.03, 0.031, 8.0)
        m, k, n = (int(x) for x in rng.integers(1, 3000, 3))
        flags = [bool(x) for x in rng.integers(0, 2, 3)]
        args = (mc, m, k, n, int(rng.integers(1, 5)), 8.125, 4.125, 8.0, *flags)
        try:
            fast = evaluate_gemm(*args)
        except MacforgeError as e:
            with pytest.raises(MacforgeError, match=str(e).split(":")[1][:20]):
                evaluate_gemm_reference(*args)
            continue
        ref = evaluate_gemm_reference(*args)
        a, b = fast.as_row(), ref.as_row()
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], str):
                assert a[key] == b[key], (key, args)
            else:
                assert a[key] == pytest.approx(b[key], rel=1e-9), (key, args)
        checked += 1
    assert checked > 150


def test_arrays_attention_unit_and_vector_overlap() -> None:
    base = explicit(AcceleratorSpec(pe=PESpec(unit="mac_int8xint8")).replace(
        **{"array.rows": 8, "array.cols": 8, "array.dataflow": "os", "dram.bandwidth_gb_s": 1e4}))
    one = evaluate(base, gemm_workload(64, 256, 64)).gemms.iloc[0]
    two = evaluate(base.replace(**{"array.count": 2}), gemm_workload(64, 256, 64)).gemms.iloc[0]
    folds, per = fold_cycles("os", 8, 8, 64, 256, 64)
    assert (one.cycles_compute, two.cycles_compute) == (folds * per, -(-folds // 2) * per)
    # a W4A8 PE with an INT8 attention datapath: attention on it, its area added to every PE
    w4 = example("w4a8_dint").replace(**{"pe.attention_unit": "dot8_int8xint8",
                                         "pe.attention_energy_per_mac_pj": 0.09, "pe.attention_area_um2": 500.0})
    wl = transformer_workload("opt-125m", "prefill", seq=64, formats=TensorFormats("dint4_sym", "int8", "int8", "int8"))
    r = evaluate(w4, wl)
    att = r.gemms[r.gemms.role == "attention"]
    assert set(att.engine) == {"attention_unit"}
    assert att.energy_pj_mac.sum() == pytest.approx(att.macs.sum() * 0.09)
    assert r.summary["pe_area_um2"] == 300.0 + 500.0
    serial = evaluate(example("w8a8_int8"), transformer_workload("opt-125m", "prefill", seq=64))
    overlap = evaluate(example("w8a8_int8").replace(**{"vector.overlap": True}),
                       transformer_workload("opt-125m", "prefill", seq=64))
    lay_s, lay_o = serial.layers.iloc[0], overlap.layers.iloc[0]
    assert lay_s.cycles == pytest.approx(lay_s.cycles_gemm + lay_s.cycles_vector)
    assert lay_o.cycles == pytest.approx(max(lay_o.cycles_gemm, lay_o.cycles_vector))


def test_which_formats_a_pe_consumes() -> None:
    from models.units import get_unit
    from sim.accel import consumes

    int8, lut, dint = get_unit("dot8_int8xint8"), get_unit("dot8_lut4xint8"), get_unit("dot8_dint4_sym_xint8")
    assert consumes(int8, "int4", "w") and consumes(int8, "decoupleq_int2", "w")  # integers in range
    assert not consumes(int8, "nf4", "w") and not consumes(int8, "fp8_e4m3", "w")
    assert all(consumes(lut, f, "w") for f in ("nf4", "mxfp4", "nvfp4", "crd4_normal_absmax64"))
    assert not consumes(lut, "int8", "w")  # 8 code bits into a 16-entry LUT
    assert consumes(dint, "dint4_sym", "w") and not consumes(dint, "int4", "w")
    assert consumes(int8, "int6", "a") and not consumes(int8, "fp16", "a")



def test_consumes_follows_a_format_defined_again_under_its_name() -> None:
    """``consumes`` is cached on format objects: a user format dropped from the registry (as the
    test fixture does between tests) and defined again differently is judged afresh."""
    from models.formats import _registry, register_format
    from models.units import get_unit
    from sim.accel import consumes

    int8 = get_unit("dot8_int8xint8")
    register_format({"name": "probe_w", "values": [-3, -1, 0, 2]})
    assert consumes(int8, "probe_w", "w")  # integers inside int8's weight range
    del _registry._USER["probe_w"]
    register_format({"name": "probe_w", "values": [-300, -1, 0, 200]})
    assert not consumes(int8, "probe_w", "w")

def test_summary_fast_path_equals_the_full_evaluation() -> None:
    from sim.accel import evaluate_summary

    for name, fm in (("w4a8_dint", None), ("w8a8_int8", TensorFormats("int8", "int8", "int8", "fp16"))):
        spec = example(name)
        for wl in (transformer_workload("smollm2-135m", "prefill", seq=96, formats=fm or fmts(spec)),
                   transformer_workload("llama-2-70b", "decode", batch=3, context=300, formats=fm or fmts(spec))):
            full, fast = evaluate(spec, wl).summary, evaluate_summary(spec, wl)
            assert full.keys() == fast.keys()
            for k in full:
                assert fast[k] == (pytest.approx(full[k], rel=1e-12) if isinstance(full[k], float) else full[k]), k


def test_inline_and_table_pe_units(tmp_path: Path) -> None:
    inline = explicit(AcceleratorSpec(pe=PESpec(unit="kind=dot,weights=int5,acts=int6,lanes=6")))
    r = evaluate(inline, gemm_workload(30, 60, 20, formats=TensorFormats("int5", "int6")))
    assert r.summary["lanes"] == 6 and r.gemms.cycles_compute.iloc[0] == gemm_compute_cycles("ws", 32, 32, 30, 60, 20, 6)
    p = tmp_path / "table.toml"
    p.write_text('[pe]\nenergy_per_mac_pj = 0.02\narea_um2 = 90.0\n[pe.unit]\nkind = "dot"\nweights = "int4"\n'
                 'acts = "int8"\nlanes = 4\n')
    spec = load_arch(p)
    assert isinstance(spec.pe.unit, dict) and arch_from_dict(tomllib.loads(arch_to_toml(spec)), "x") == spec
    from sim.accel import resolve_formats

    assert resolve_formats(spec) == TensorFormats("int4", "int8", "int8", "int8")  # KV and attn default to int8
    s = evaluate(spec, gemm_workload(8, 64, 8, formats=resolve_formats(spec))).summary
    assert s["lanes"] == 4 and s["pe_energy_per_mac_pj"] == 0.02


def test_gemm_machine_hash_is_cached_but_not_pickled() -> None:
    """GemmMachine caches its hash and kernel parameters in the instance; a pickled copy (a Dask
    worker's, whose string hashes differ) recomputes its hash, carries the parameters (they do
    not depend on hashing) and equals a machine built afresh, parameters included."""
    import pickle

    from sim.accel._costs import arch_pe_costs
    from sim.accel._costs import resolve_unit as unit_of
    from sim.accel._model import machine

    spec = load_arch(ROOT / "examples/arch/w4a8_dint.toml")
    m = machine(spec, unit_of(spec.pe.unit), arch_pe_costs(spec)[0])
    h, p = hash(m), m.params()
    assert "_hash" in m.__dict__ and "_params" in m.__dict__
    state = m.__getstate__()
    assert "_hash" not in state and "_params" in state
    m2 = pickle.loads(pickle.dumps(m))
    assert m2 == m and "_hash" not in m2.__dict__ and hash(m2) == h
    fresh = machine(spec, unit_of(spec.pe.unit), arch_pe_costs(spec)[0])  # built, not unpickled
    assert "_params" not in fresh.__dict__
    assert (m2.params() == fresh.params()).all() and p[2] == spec.array.rows and p[3] == spec.array.cols
    from dataclasses import replace

    m3 = replace(m, rows=m.rows + 1)
    assert m3 != m and m3.params()[2] == m.rows + 1


def test_spec_replace_memo_keeps_validation() -> None:
    """Sub-table replaces are memoized for sweeps; a value equal to a cached one but of another
    type (True == 1, 16.0 == 16) is still validated, not served from the memo."""
    spec = load_arch(ROOT / "examples/arch/w8a8_int8.toml")
    a = spec.replace(**{"array.rows": 1, "dram.bandwidth_gb_s": 34.0})
    assert a.array.rows == 1 and a.dram.bandwidth_gb_s == 34.0
    assert spec.replace(**{"array.rows": 1}).array == a.array
    for bad in (True, 1.0):
        with pytest.raises(MacforgeError, match="array.rows must be a positive integer"):
            spec.replace(**{"array.rows": bad})
    with pytest.raises(MacforgeError, match="array.rows must be a positive integer"):
        spec.replace(**{"array.rows": [1]})  # unhashable: the unmemoized path validates it too
