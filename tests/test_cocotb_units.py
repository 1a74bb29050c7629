"""Golden-vs-RTL: every unit simulated with cocotb on Icarus and Verilator (testbench package).

CI (not slow) runs one exhaustive unit per simulator, a representative subset (LUT
programming, decoupleQ groups, a zero-point dot PE, a constant-LUT MAC), the naive method and
the real-data hook; the full matrix (every unit × both simulators, and ``exhaustive=True``
runs) is marked slow. Each test builds under its own directory (pytest-xdist safe).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import golden
from models.errors import MacforgeError, UnknownNameError
from models.units import get_unit, unit_names

ROOT = Path(__file__).resolve().parents[1]

import testbench


def _build_root(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:100]
    return ROOT / "build" / "tests" / "cocotb" / name


@pytest.fixture
def build_root(request: pytest.FixtureRequest) -> Path:
    return _build_root(request)


def _require(sim: str) -> None:
    try:
        testbench.check_simulator(sim)
    except MacforgeError as e:
        pytest.skip(str(e))


def _assert_clean(results: list, unit: str, sim: str) -> None:
    assert len(results) == 1
    r = results[0]
    assert (r.unit, r.simulator) == (unit, sim)
    assert r.vectors > 0 and r.checked == r.vectors * len(r.instances)
    assert r.mismatches == 0, testbench.format_table(results)


# ------------------------------------------------------------------ CI subset
CI_CASES = [
    # (unit, simulator): one exhaustive unit per simulator first
    ("mac_int8xint8", "icarus"),  # 65536 pairs, + wrap/saturate variants
    ("mac_dint4_asym_xint8", "verilator"),  # 16 x 256 x 14 (w, a, z) triples
    ("mac_lut4xint8", "icarus"),  # LUT reset content, programming, writes during MACs
    ("dq_int2_group_mac", "icarus"),  # decoupleQ groups, idle cycles, short groups, clr/rst
    ("dot4_dint4_asym_xint8", "icarus"),  # packed lanes, shared zero point
    ("mac_lut4c_crd4_normal_absmax64xint8", "icarus"),
    ("dq_int2_group_mac", "verilator"),
    ("dot4_lut4xint8", "verilator"),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("unit,sim", CI_CASES, ids=[f"{u}-{s}" for u, s in CI_CASES])
def test_unit_matches_golden(unit: str, sim: str, build_root: Path) -> None:
    _require(sim)
    results = testbench.run_units(
        [unit], simulator=sim, vectors=5000, seed=1, build_root=build_root
    )
    _assert_clean(results, unit, sim)
    r = results[0]
    assert r.exhaustive, "the pair space of every built-in unit is enumerated"
    if get_unit(unit).lanes <= 4:
        assert len(r.instances) >= 2, "narrow overflow variants run beside the unit"


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_naive_method_matches_golden(sim: str, build_root: Path) -> None:
    _require(sim)
    results = testbench.run_units(
        ["mac_int4xint8"],
        simulator=sim,
        method="naive",
        vectors=1000,
        real_data=False,
        build_root=build_root,
    )
    _assert_clean(results, "mac_int4xint8", sim)
    assert results[0].method == "naive"


@pytest.mark.cocotb
def test_real_data_hook_takes_arrays(build_root: Path) -> None:
    """check_real_data accepts any int8 activation / weight-code arrays (here synthetic, with a
    heavy-tailed activation channel like SmolLM2's)."""
    rng = np.random.default_rng(7)
    acts = np.clip(np.round(rng.standard_t(3, 3000) * 12), -127, 127).astype(np.int8)
    codes = rng.integers(0, 16, 3000).astype(np.uint8)
    zps = np.repeat(rng.integers(0, 14, 3000 // 100 + 1), 100)[:3000]
    r = testbench.check_real_data("dot4_dint4_asym_xint8", acts, codes, zps, build_root=build_root)
    assert r.mismatches == 0 and r.vectors >= 3000 // 4
    with pytest.raises(MacforgeError, match="zero points"):
        testbench.check_real_data("dot4_dint4_asym_xint8", acts, codes, None, build_root=build_root)


@pytest.mark.cocotb
def test_real_data_from_models_realdata(build_root: Path) -> None:
    try:
        acts, codes, zps = testbench.load_real_data(get_unit("mac_int4xint8"), 4096)
    except MacforgeError as e:  # models.realdata's wheels are not installed here
        pytest.skip(f"real data not available: {e}")
    r = testbench.check_real_data("mac_int4xint8", acts, codes, zps, build_root=build_root)
    assert r.mismatches == 0 and r.vectors >= 4096


# ------------------------------------------------------------ API and bad input (no simulator)
def test_unknown_simulator_lists_known() -> None:
    with pytest.raises(
        UnknownNameError, match=r"unknown simulator 'modelsim'; known: icarus, verilator"
    ):
        testbench.run_units(["mac_int8xint8"], simulator="modelsim")
    with pytest.raises(UnknownNameError, match="known: icarus, verilator"):
        testbench.check_simulator("xcelium")


def test_unknown_unit_and_method() -> None:
    with pytest.raises(
        UnknownNameError, match=r"unknown unit 'mac_int9xint8'; known: mac_int8xint8"
    ):
        testbench.run_units(["mac_int9xint8"])
    with pytest.raises(UnknownNameError, match=r"unknown method 'fast'; known: batched, naive"):
        testbench.run_units(["mac_int8xint8"], method="fast")
    with pytest.raises(MacforgeError, match="vectors must be a non-negative integer"):
        testbench.run_units(["mac_int8xint8"], vectors=-1)


def test_missing_simulator_says_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    import testbench._sims as sims

    real_which = shutil.which
    monkeypatch.setattr(
        sims.shutil, "which", lambda t: None if t in ("iverilog", "vvp") else real_which(t)
    )
    with pytest.raises(MacforgeError) as e:
        testbench.check_simulator("icarus")
    msg = str(e.value)
    assert "\n" not in msg and "icarus" in msg and "`make setup` installs it" in msg
    monkeypatch.setattr(sims, "verilator_bin_dir", lambda: None)
    monkeypatch.setattr(sims.shutil, "which", lambda t: None)
    with pytest.raises(
        MacforgeError, match=r"simulator verilator is not installed.*`make setup` installs it"
    ):
        testbench.check_simulator("verilator")


def test_public_surface() -> None:
    assert testbench.SIMULATORS == ("icarus", "verilator")
    for name in testbench.__all__:
        assert getattr(testbench, name) is not None
    r = testbench.SimResult("u", "icarus", 10, 0, 1.0, "batched")
    d = r.to_dict()
    assert {"unit", "simulator", "vectors", "mismatches", "seconds", "method", "failures"} <= set(d)
    table = testbench.format_table([r])
    assert table.splitlines()[0].split()[:8] == [
        "unit",
        "simulator",
        "method",
        "vectors",
        "checked",
        "mismatches",
        "seconds",
        "exh",
    ]


# ------------------------------------------------------------ harness plumbing (no simulator)
def test_pack_unpack_roundtrip() -> None:
    from testbench._layout import pack_hex, parse_hex_lines, result_layout, stim_layout, unpack_hex

    ports = [
        {"name": "clk", "direction": "in", "width": 1, "signed": False, "lanes": 1},
        {"name": "en", "direction": "in", "width": 1, "signed": False, "lanes": 1},
        {"name": "rst", "direction": "in", "width": 1, "signed": False, "lanes": 1},
        {"name": "a", "direction": "in", "width": 4 * 8, "signed": True, "lanes": 4},
        {"name": "s", "direction": "in", "width": 61, "signed": True, "lanes": 1},
        {"name": "acc", "direction": "out", "width": 32, "signed": True, "lanes": 1},
    ]
    lay = stim_layout(ports)
    assert lay.names == ("rst", "en", "a", "s") and lay.bits == 95
    rng = np.random.default_rng(0)
    cols = {
        "rst": rng.integers(0, 2, 50),
        "en": rng.integers(0, 2, 50),
        "a": rng.integers(-128, 128, (50, 4)),
        "s": rng.integers(-(1 << 60), 1 << 60, 50),
    }
    text = pack_hex(lay, cols)
    nib = parse_hex_lines(text, lay.hex_digits)
    for t in (0, 17, 49):
        word = int("".join(f"{d:x}" for d in nib[t]), 16)
        assert word & 1 == cols["rst"][t] and (word >> 1) & 1 == cols["en"][t]
        for lane in range(4):
            assert ((word >> (2 + 8 * lane)) & 0xFF) == cols["a"][t, lane] & 0xFF
        assert (word >> 34) & ((1 << 61) - 1) == int(cols["s"][t]) & ((1 << 61) - 1)
    res = result_layout([32, 18, 18])
    vals = np.array([[-(1 << 31), -(1 << 17), 5], [(1 << 31) - 1, (1 << 17) - 1, -1]])
    lines = []
    for row in vals:
        word = sum((int(v) & ((1 << w) - 1)) << o for v, w, o in zip(row, res.widths, res.offsets))
        lines.append(f"{word:0{res.hex_digits}x}")
    lines.insert(1, "// 0x00000001")  # Icarus writes address comments
    lines.append("x" * res.hex_digits)
    got, valid = unpack_hex(res, ("\n".join(lines) + "\n").encode())
    assert (got[:2] == vals).all() and valid[:2].all() and not valid[2].any()


def test_binary_records_and_fast_parse_match_hex() -> None:
    """The batched harness's binary records carry the same bits as the hex words, and the
    fixed-width fast path of the result parser equals the general one."""
    from testbench._harness import c_record_bytes
    from testbench._layout import (
        pack_bytes,
        pack_hex,
        pack_result_bytes,
        parse_hex_lines,
        result_layout,
        stim_layout,
        unpack_hex,
    )

    ports = [
        {"name": "rst", "direction": "in", "width": 1, "signed": False, "lanes": 1},
        {"name": "w", "direction": "in", "width": 16 * 4, "signed": False, "lanes": 16},
        {"name": "a", "direction": "in", "width": 16 * 8, "signed": True, "lanes": 16},
    ]
    lay = stim_layout(ports)
    rng = np.random.default_rng(4)
    cols = {"rst": rng.integers(0, 2, 40), "w": rng.integers(0, 16, (40, 16)),
            "a": rng.integers(-128, 128, (40, 16))}
    rec = pack_bytes(lay, cols)
    assert rec.shape == (40, -(-lay.bits // 8))
    hexwords = pack_hex(lay, cols).split()
    for t in (0, 21, 39):
        assert int.from_bytes(rec[t].tobytes(), "big") == int(hexwords[t], 16)
    res = result_layout([32, 18, 5])
    vals = rng.integers(-(1 << 4), 1 << 4, (40, 3)) * np.array([1 << 27, 1 << 13, 1])
    rb = pack_result_bytes(res, vals)
    text = "".join(f"{int.from_bytes(r.tobytes(), 'big'):0{res.hex_digits}x}\n" for r in rb).encode()
    got, valid = unpack_hex(res, text)
    assert (got == vals).all() and valid.all()
    slow = parse_hex_lines(text.replace(b"\n", b"\n// 0x0\n", 1), res.hex_digits)
    assert (slow == parse_hex_lines(text, res.hex_digits)).all()
    assert [c_record_bytes(w) for w in (1, 8, 9, 17, 33, 64, 65, 152, 256)] == [1, 1, 2, 4, 8, 8, 12, 20, 32]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_parallel_lanes_report_what_one_lane_reports(
    sim: str, build_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream split over parallel harness lanes (at reset cycles) checks every cycle: with a
    product-bit fault it reports the same mismatching cycles as the one-lane run, and failures
    in the later lanes carry their cycle in the whole stream; without the fault it passes."""
    import rtl
    import testbench._run as run

    _require(sim)
    bug = rtl.Fault(kind="product_bit", bit=4)
    kw = {"simulator": sim, "vectors": 12000, "seed": 4, "real_data": False, "build_root": build_root,
          "keep_failed": False}
    monkeypatch.setattr(run, "MAX_FAILURES", 1 << 30)  # every mismatching cycle, not the first 8
    (one,) = testbench.run_units(["mac_int4xint8"], fault=bug, **kw)
    monkeypatch.setattr(run, "LANE_MIN_CYCLES", 2048)
    starts: list[int] = []
    split = run.lane_starts

    def spy(stim: Any, *a: Any, **k: Any) -> tuple[int, list[int]]:
        lanes, st = split(stim, *a, **k)
        starts[:] = st
        return lanes, st

    monkeypatch.setattr(run, "lane_starts", spy)
    (many,) = testbench.run_units(["mac_int4xint8"], fault=bug, **kw)
    assert (one.lanes, many.lanes) == (1, 8) and len(starts) >= 3  # lanes that got a part
    assert many.mismatches == one.mismatches > 0
    ones = {(f["cycle"], f["got"]) for f in one.failures}
    assert ones == {(f["cycle"], f["got"]) for f in many.failures}
    # the later lanes report failures too, at their cycle in the whole stream
    assert any(f["cycle"] >= starts[-1] for f in many.failures)
    assert any(starts[1] <= f["cycle"] < starts[2] for f in many.failures)
    (good,) = testbench.run_units(["mac_int4xint8"], variants=True, **kw)
    assert good.lanes == 8 and good.mismatches == 0 and len(good.instances) >= 2


def test_expected_trace_follows_golden_through_reset_and_lut_writes() -> None:
    """The expected trace is golden's, cut at a reset (acc and LUT back to reset state) and after a
    LUT write (the next cycle reads the new entry)."""
    import rtl
    from testbench._stimulus import _Builder, _lanes_of

    spec = get_unit("mac_lut4xint8")
    lanes = _lanes_of(rtl.ports(spec))
    b = _Builder(spec, lanes)
    rng = np.random.default_rng(3)
    w, a = rng.integers(0, 16, 30), rng.integers(-128, 128, 30)
    b.add("x", 10, en=1, w=w[:10], a=a[:10])
    b.add("x", 1, en=1, w=w[10], a=a[10], lut_we=1, lut_waddr=int(w[11]), lut_wdata=-77)
    b.add("x", 9, en=1, w=w[11:20], a=a[11:20])
    b.add("x", 1, rst=1, en=1, w=w[20], a=a[20])
    b.add("x", 9, en=1, w=w[21:30], a=a[21:30])
    stim = b.build([], False)
    exp = testbench.expected_trace(spec, stim)
    g1 = golden.mac(spec, w[:11], a[:11])
    lut = np.array(spec.decode.table)
    lut[w[11]] = -77
    g2 = golden.mac(spec, w[11:20], a[11:20], lut=lut, acc0=int(g1[-1]))
    g3 = golden.mac(spec, w[21:30], a[21:30])
    assert (exp == np.concatenate([g1, g2, [0], g3])).all()


def test_stimulus_is_seeded_and_covers_every_pair() -> None:
    import rtl

    spec = get_unit("mac_dint4_asym_xint8")
    ports = rtl.ports(spec)
    s1 = testbench.build_stimulus(spec, ports, vectors=100, seed=5)
    s2 = testbench.build_stimulus(spec, ports, vectors=100, seed=5)
    assert all((s1.cols[k] == s2.cols[k]).all() for k in s1.cols)
    lo, hi = next((lo, hi) for name, lo, hi in s1.sections if name == "exhaustive")
    triples = set(zip(s1.cols["w"][lo:hi], s1.cols["a"][lo:hi], s1.cols["z"][lo:hi]))
    assert len(triples) == 16 * 256 * 14 == hi - lo
    dot = get_unit("dot4_int4xint8")
    s = testbench.build_stimulus(dot, rtl.ports(dot), vectors=0, seed=0)
    lo, hi = next((lo, hi) for name, lo, hi in s.sections if name == "exhaustive")
    for lane in range(4):
        assert len(set(zip(s.cols["w"][lo:hi, lane], s.cols["a"][lo:hi, lane]))) == 16 * 256


def _section(stim: object, name: str) -> slice:
    lo, hi = next((lo, hi) for n, lo, hi in stim.sections if n == name)  # type: ignore[attr-defined]
    return slice(lo, hi)


@pytest.mark.parametrize("unit", ["mac_int8xint8", "dot4_int4xint8", "dq_int2_group_mac"])
def test_overflow_sections_wrap_and_saturate(unit: str) -> None:
    """The directed sections really overflow: the narrow wrap variant wraps, the narrow
    saturating one sits at both clamps, and (exhaustive=True) the full-width accumulator wraps."""
    import rtl

    spec = get_unit(unit)
    stim = testbench.build_stimulus(spec, rtl.ports(spec), vectors=0, seed=0, exhaustive=True)
    insts = {i.label: i.spec for i in testbench.unit_instances(spec)}
    ov = _section(stim, "overflow")
    for label, v in insts.items():
        e = testbench.expected_trace(v, stim)[ov]
        top, bottom = (1 << (v.acc_bits - 1)) - 1, -(1 << (v.acc_bits - 1))
        if v.overflow == "saturate":
            assert e.max() == top and e.min() == bottom, label
        elif label != "unit" or spec.kind == "dq_group":
            step = np.diff(e)
            assert (step < bottom).any() and (step > top).any(), f"{label} never wraps both ways"
    if spec.kind != "dq_group":
        full = testbench.expected_trace(spec, stim)[_section(stim, "wrap_full")]
        assert (np.diff(full) < -(1 << (spec.acc_bits - 1))).any(), "full-width wrap not reached"


# ------------------------------------------------------------------ the full matrix (slow)
ALL_CASES = [
    (u, s) for s in ("icarus", "verilator") for u in unit_names() if (u, s) not in CI_CASES
]


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("unit,sim", ALL_CASES, ids=[f"{u}-{s}" for u, s in ALL_CASES])
def test_every_unit_matches_golden(unit: str, sim: str, build_root: Path) -> None:
    _require(sim)
    results = testbench.run_units(
        [unit], simulator=sim, seed=2, variants=True, build_root=build_root
    )
    _assert_clean(results, unit, sim)


EXHAUSTIVE_CASES = [
    ("mac_int8xint8", "verilator"),
    ("mac_lut4xint8", "verilator"),
    ("dot16_int8xint8", "verilator"),
    ("dq_int2_group_mac", "icarus"),
]


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize(
    "unit,sim", EXHAUSTIVE_CASES, ids=[f"{u}-{s}" for u, s in EXHAUSTIVE_CASES]
)
def test_exhaustive_mode_full_width_wrap(unit: str, sim: str, build_root: Path) -> None:
    """exhaustive=True: the full-width accumulator is driven until it wraps, two LUT tables."""
    _require(sim)
    results = testbench.run_units(
        [unit], simulator=sim, exhaustive=True, vectors=20000, seed=3, build_root=build_root
    )
    _assert_clean(results, unit, sim)
