"""What-if sweeps (sim/whatif): study parsing, point expansion, local pool, Dask LocalCluster on
loopback, the point cache (kill and resume), infeasible points, outputs, the CLI function.

Studies here give explicit PE figures (no synthesis runs)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import MacforgeError
from sim.whatif import (POINT_DELAY_ENV, expand_points, load_study, pareto_front, read_cache, run_study,
                        write_outputs)
from sim.whatif.cli import add_parser

ROOT = Path(__file__).resolve().parents[1]

STUDY = """
name = "{name}"
description = "test study"
arch = ["examples/arch/w8a8_int8.toml", "examples/arch/w4a8_dint.toml"]
baseline = "w8a8_int8"
[sweep]
"pe.energy_per_mac_pj" = [0.05]
"pe.area_um2" = [300.0]
"array.rows" = [8, 16]
[[variant]]
[[variant]]
"formats.weights" = "int4"
[workload]
models = ["opt-125m"]
phases = ["prefill", "decode"]
seq = [64]
context = [128]
"""


def study_file(tmp_path: Path, name: str = "t_whatif", text: str = STUDY) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(text.format(name=name))
    return p


def test_expand_points_is_the_product(tmp_path: Path) -> None:
    st = load_study(study_file(tmp_path))
    pts = expand_points(st)
    assert len(pts) == 2 * 2 * 2 * 2  # archs × variants × rows × phases
    assert {p["workload"]["phase"] for p in pts} == {"prefill", "decode"}
    assert all(p["overrides"]["pe.area_um2"] == 300.0 for p in pts)


def test_study_errors_name_file_key_and_line(tmp_path: Path) -> None:
    with pytest.raises(MacforgeError, match=r"bad\.toml: key 'sweeps' \(line 3\): unknown key"):
        load_study(study_file(tmp_path, "bad", 'arch = ["examples/arch/w8a8_int8.toml"]\n[workload]\n'
                                               '[sweeps]\n"array.rows" = [1]\n'))
    with pytest.raises(MacforgeError, match=r"key 'workload\.model' \(line 3\): unknown key"):
        load_study(study_file(tmp_path, "bad2", 'arch = ["examples/arch/w8a8_int8.toml"]\n[workload]\n'
                                                'model = ["x"]\n'))
    with pytest.raises(MacforgeError, match=r"accelerator file 'nope\.toml' not found"):
        load_study(study_file(tmp_path, "bad3", 'arch = ["nope.toml"]\n[workload]\nmodels = ["opt-125m"]\n'))
    with pytest.raises(MacforgeError, match=r"malformed TOML: .*line 1"):
        load_study(study_file(tmp_path, "bad4", 'arch = [\n'))


def test_named_variants_label_points_and_are_checked(tmp_path: Path) -> None:
    named = STUDY.replace('[[variant]]\n[[variant]]\n"formats.weights" = "int4"',
                          '[[variant]]\nname = "int8 w"\n[[variant]]\nname = "int4 w"\n"formats.weights" = "int4"')
    pts = expand_points(load_study(study_file(tmp_path, "named", named)))
    assert {p["variant"] for p in pts} == {"int8 w", "int4 w"}
    assert all("name" not in p["overrides"] for p in pts)  # a label, not an accelerator field
    assert {p["overrides"].get("formats.weights") for p in pts if p["variant"] == "int4 w"} == {"int4"}
    dup = named.replace('name = "int4 w"', 'name = "int8 w"')
    with pytest.raises(MacforgeError, match=r"variant name 'int8 w' is used twice"):
        load_study(study_file(tmp_path, "dup", dup))
    with pytest.raises(MacforgeError, match=r"variant 0's name must be a non-empty string, not 3"):
        load_study(study_file(tmp_path, "badname", named.replace('name = "int8 w"', "name = 3")))


def test_point_key_follows_the_code_that_prices_the_pe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from sim.whatif import _study

    pt = expand_points(load_study(study_file(tmp_path)))[0]
    text = (ROOT / "examples" / "arch" / "w8a8_int8.toml").read_text()
    assert _study.point_key(pt, text) != _study.point_key(dict(pt, measure="synth"), text)
    fake = tmp_path / "repo"  # a copy of the priced sources; editing the flow changes the keys
    for rel in ("models/units.py", "models/cost.py", "sim/costfit.py"):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, fake / rel)
    for rel in ("rtl", "models/formats"):
        shutil.copytree(ROOT / rel, fake / rel, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(_study, "ROOT", fake)
    _study.pe_cost_code_digest.cache_clear()
    before = {m: _study.pe_cost_code_digest(m) for m in ("model", "synth")}
    k0 = _study.point_key(dict(pt, measure="synth"), text)
    (fake / "rtl" / "flow" / "_cells.py").write_text((fake / "rtl" / "flow" / "_cells.py").read_text() + "\n# x\n")
    _study.pe_cost_code_digest.cache_clear()
    assert {m: _study.pe_cost_code_digest(m) != before[m] for m in before} == {"model": True, "synth": True}
    assert _study.point_key(dict(pt, measure="synth"), text) != k0
    mid = {m: _study.pe_cost_code_digest(m) for m in ("model", "synth")}
    (fake / "sim" / "costfit.py").write_text("# changed\n")  # the fitted model: not a synth point's price
    _study.pe_cost_code_digest.cache_clear()
    assert _study.pe_cost_code_digest("model") != mid["model"]
    assert _study.pe_cost_code_digest("synth") == mid["synth"]
    _study.pe_cost_code_digest.cache_clear()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, pd.DataFrame, dict, Path]:
    tmp = tmp_path_factory.mktemp("whatif")
    st = load_study(study_file(tmp))
    df, stats = run_study(st, "local", workers=2, progress=False, cache_dir=tmp / "cache")
    return st, df, stats, tmp


def test_local_run_flags_infeasible_points_and_writes_outputs(local_run: tuple) -> None:
    st, df, stats, tmp = local_run
    assert stats["points"] == len(df) == 16 and stats["computed"] == 16 and stats["cached"] == 0
    bad = df[~df.feasible]
    # the dINT4 PE cannot take INT4 weights: flagged with the reason, the sweep goes on
    assert len(bad) == 4 and set(bad.arch) == {"w4a8_dint"} and bad.error.str.contains("takes dint4_sym").all()
    ok = df[df.feasible]
    assert (ok.tokens_per_s > 0).all() and (ok.utilization <= 1).all()
    paths = write_outputs(st, df, stats, tmp / "out")
    names = {p.name for p in paths}
    assert {"results.csv", "summary.md", "pareto_energy_per_token_j.png", "pareto_area_mm2.png"} <= names
    back = pd.read_csv(tmp / "out" / "results.csv")
    assert len(back) == 16 and np.allclose(back.tokens_per_s.dropna(), ok.tokens_per_s)
    md = (tmp / "out" / "summary.md").read_text()
    assert "16 points" in md and "4 flagged infeasible" in md and "takes dint4_sym" in md
    best = ok[ok.workload == "opt-125m-decode"].tokens_per_s.max()
    assert f"{best:.4g}" in md  # the front's best throughput is reported from the data


def test_baseline_comparison(local_run: tuple) -> None:
    from sim.whatif import baseline_table

    _, df, _, tmp = local_run
    bt = baseline_table(df, "w8a8_int8")
    assert set(bt.arch) == {"w4a8_dint"} and len(bt) == 4  # variant 0 only: variant 1 is infeasible on dINT
    assert np.allclose(bt.pe_energy_x, 1.0)  # both PEs priced 0.05 pJ/MAC here
    dec = bt[bt.workload == "opt-125m-decode"]
    assert (dec.energy_per_token_x > 1.3).all()  # half the weight bytes
    assert ((bt.mac_energy_share > 0) & (bt.mac_energy_share < 1)).all()
    assert "how much of the PE-level saving survives" in (tmp / "out" / "summary.md").read_text()


def test_rerun_reads_every_point_from_the_cache(local_run: tuple) -> None:
    st, df1, _, tmp = local_run
    df2, stats = run_study(st, workers=1, progress=False, cache_dir=tmp / "cache")
    assert stats["computed"] == 0 and stats["cached"] == 16
    pd.testing.assert_frame_equal(df1.reset_index(drop=True), df2.reset_index(drop=True), check_dtype=False)


def test_killed_sweep_resumes_with_only_the_missing_points(tmp_path: Path) -> None:
    sf = study_file(tmp_path, "t_kill")
    cache = tmp_path / "kill_cache"
    code = (f"from sim.whatif import load_study, run_study\n"
            f"run_study(load_study({str(sf)!r}), workers=1, progress=False, cache_dir=__import__('pathlib').Path({str(cache)!r}))\n")
    env = dict(os.environ, **{POINT_DELAY_ENV: "0.4"})
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(read_cache(cache)) < 3:
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = len(read_cache(cache))
    assert 3 <= done < 16
    df, stats = run_study(load_study(sf), workers=1, progress=False, cache_dir=cache)
    assert stats["cached"] == done and stats["computed"] == 16 - done
    assert len(df) == 16 and df.feasible.sum() == 12


def test_dask_local_cluster_matches_the_local_pool(local_run: tuple) -> None:
    st, a, _, tmp = local_run
    b, stats = run_study(st, "dask", workers=2, progress=False, cache_dir=tmp / "dask")
    assert stats["executor"] == "dask" and stats["computed"] == 16
    cols = ["tokens_per_s", "energy_per_token_j", "area_mm2", "cycles"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


def test_pareto_front() -> None:
    x = np.array([1.0, 2.0, 3.0, 3.0, 0.5])
    y = np.array([1.0, 0.5, 2.0, 0.7, 0.2])
    # (2, .5) beats (1, 1); (3, .7) beats (3, 2); (.5, .2) has the lowest y
    assert pareto_front(x, y).tolist() == [False, True, False, True, True]


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser(prog="macforge")
    add_parser(p.add_subparsers(dest="cmd", required=True))
    small = STUDY.replace('"array.rows" = [8, 16]', '"array.rows" = [8]').replace('phases = ["prefill", "decode"]',
                                                                                   'phases = ["decode"]')
    sf = study_file(tmp_path, "t_cli", small)
    args = p.parse_args(["whatif", str(sf), "--workers", "1", "--out", str(tmp_path / "o"), "--cache",
                         str(tmp_path / "c"), "--json"])
    assert args.func(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["points"] == 4 and d["computed"] == 4 and any(o.endswith("summary.md") for o in d["outputs"])
    bad = p.parse_args(["whatif", str(sf), "--scheduler", "tcp://127.0.0.1:1"])
    with pytest.raises(MacforgeError, match="--scheduler needs --executor dask"):
        bad.func(bad)
