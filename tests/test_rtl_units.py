"""Quick RTL tier: every unit simulated with amaranth.sim against models.golden (no external
simulator). The decoders are checked against spec.decode for every code and zero point; each
unit kind runs a few hundred cycles of seeded random stimulus with en/clr, overflow (wrap and
saturate) and pipeline latency variants. Latency model: inputs are applied during cycle t,
``await ctx.tick()`` is the clock edge ending cycle t; ``acc`` read after the edge ending cycle
t+L-1 is the golden value for cycle t.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

import rtl
from models import golden
from models.errors import MacforgeError
from models.units import UnitSpec, get_unit, unit_names
from rtl._decode import MinifloatFields, minifloat_fields

MAC_UNITS = [n for n in unit_names() if get_unit(n).kind == "mac"]
DOT_UNITS = [n for n in unit_names() if get_unit(n).kind == "dot"]
DQ_UNITS = [n for n in unit_names() if get_unit(n).kind == "dq_group"]
# units with a weight decoder (a huffman decoder unit has none)
DECODE_UNITS = [n for n in unit_names() if get_unit(n).kind in ("mac", "dot", "dq_group", "systolic")]


# ----------------------------------------------------------------------------- sim helpers
def simulate(dut: object, stim: dict[str, list[object]], n: int, *, rst: list[int] | None = None,
             out: str = "acc") -> np.ndarray:
    """Drive input ports with per-cycle values (ints, or lists for packed lanes); return the
    output ``out`` after each clock edge. ``rst``: per-cycle synchronous reset."""
    m = Module()
    m.submodules.dut = dut  # type: ignore[assignment]
    m.domains.sync = cd = ClockDomain()
    obs = np.empty(n, dtype=np.int64)
    ports = [(getattr(dut, name), vals) for name, vals in stim.items()]
    out_port = getattr(dut, out)

    async def bench(ctx):  # type: ignore[no-untyped-def]
        for t in range(n):
            for port, vals in ports:
                ctx.set(port, vals[t])
            if rst is not None:
                ctx.set(cd.rst, rst[t])
            await ctx.tick()
            obs[t] = ctx.get(out_port)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return obs


def _ints(x: np.ndarray) -> list[object]:
    return [v.tolist() if isinstance(v, np.ndarray) else int(v) for v in x]


def random_stimulus(spec: UnitSpec, n: int, rng: np.random.Generator, *, extremes: bool = False
                    ) -> dict[str, np.ndarray]:
    """Seeded random (w, a, en, clr, z). ``extremes``: mostly full-scale activations whose sign
    follows the decoded weight's, up for 160 cycles then down, and one late clear, so a right-sized
    accumulator overflows (wrap) or clamps (saturate) both ways."""
    lanes = (n, spec.lanes) if spec.kind == "dot" else (n,)
    lo, hi = spec.act_range
    w = rng.integers(0, 1 << spec.decode.bits, lanes)
    a = rng.integers(lo, hi + 1, lanes)
    z = None
    if spec.decode.zp_mask is not None:  # the zero point changes now and then (per group in real use)
        z = np.repeat(rng.integers(0, spec.decode.zp_max + 1, n // 16 + 1), 16)[:n]
    if extremes:
        zz = None if z is None else (z[:, None] if spec.kind == "dot" else z) * np.ones(lanes, dtype=np.int64)
        wsign = np.sign(golden.products(spec, w, np.ones(lanes, dtype=np.int64), z=zz))
        up = ((np.arange(n) // 160) % 2 == 0).astype(np.int64) * 2 - 1
        target = (up[:, None] if spec.kind == "dot" else up) * wsign
        full = np.where(target > 0, hi, np.where(target < 0, lo, a))
        a = np.where(rng.random(lanes) < 0.9, full, a)
    clr = (rng.random(n) < 0.04).astype(np.int64)
    if extremes:  # one clear, late, out of an overflowed state
        clr[:] = 0
        clr[n - 40] = 1
    stim = {"w": w, "a": a, "en": (rng.random(n) < 0.8).astype(np.int64), "clr": clr}
    if z is not None:
        stim["z"] = z
    return stim


def golden_trace(spec: UnitSpec, stim: dict[str, np.ndarray], **kw: object) -> np.ndarray:
    fn = golden.mac if spec.kind == "mac" else golden.dot
    return fn(spec, stim["w"], stim["a"], en=stim["en"], clr=stim["clr"], z=stim.get("z"), **kw)


def check_against_golden(spec: UnitSpec, stim: dict[str, np.ndarray], **kw: object) -> None:
    n = len(stim["en"])
    L = spec.latency
    obs = simulate(rtl.build_unit(spec), {k: _ints(v) for k, v in stim.items()}, n)
    exp = golden_trace(spec, stim, **kw)
    assert np.array_equal(obs[:L - 1], np.zeros(L - 1)), "acc must stay 0 while the pipeline fills"
    bad = np.nonzero(obs[L - 1:] != exp[:n - L + 1])[0]
    assert bad.size == 0, (f"{spec.name}: first mismatch at cycle {bad[0]}: rtl {obs[bad[0] + L - 1]} "
                           f"golden {exp[bad[0]]}; w={stim['w'][bad[0]]} a={stim['a'][bad[0]]}")


def _tail_bits(spec: UnitSpec) -> int:
    """Bits by which the largest decoded weight exceeds twice the mean one (0..2): random codes
    of a heavy-tailed format (FP8 E4M3: max/mean ≈ 10) rarely hit the largest product, so its
    right-sized accumulator is made that much smaller for the random stream to overflow it."""
    t = np.abs(np.array(spec.decode.table, dtype=np.float64))
    return min(2, max(0, int(np.log2(t.max() / t.mean())) - 1))


def variants(name: str) -> list[UnitSpec]:
    """The unit as specified, a right-sized wrap and saturate accumulator that overflows, and
    pipelined versions (latency 2 and 3)."""
    base = get_unit(name)
    # +1: a programmable LUT's product is one bit wider than its reset table implies
    small = base.product_bits + (base.lanes - 1).bit_length() + 3 - _tail_bits(base)
    return [base,
            get_unit(name, acc_bits=small, overflow="wrap"),
            get_unit(name, acc_bits=small, overflow="saturate"),
            get_unit(name, latency=2),
            get_unit(name, latency=3, acc_bits=small, overflow="saturate")]


# ----------------------------------------------------------------------------- decoders
EXPECTED_STYLE = {"int8": "twos", "int4": "twos", "dint4_sym": "sign_mag_half",
                  "dint4_asym": "zp_linear", "decoupleq_int2": "twos", "fp8_e4m3": "fp"}


@pytest.mark.parametrize("name", DECODE_UNITS)
def test_decode_style(name: str) -> None:
    spec = get_unit(name)
    style = rtl.decode_plan(spec).style
    if spec.lut == "programmable":
        assert style == "lut"
    elif spec.lut == "constant":
        assert style == "rom"
    else:
        assert style == EXPECTED_STYLE[spec.weight_format]


def _decoder_outputs(plan: rtl.DecodePlan, cases: list[tuple[int, int, list[int] | None]]) -> list[int]:
    dec = rtl.WeightDecoder(plan)
    outs: list[int] = []
    names = plan.output_names

    async def bench(ctx):  # type: ignore[no-untyped-def]
        for w, z, lut in cases:
            ctx.set(dec.w, w)
            if plan.has_zp:
                ctx.set(dec.z, z)
            if lut is not None:
                ctx.set(dec.lut, lut)
            outs.append(rtl.decoded_value(plan, {k: ctx.get(getattr(dec, k)) for k in names}))

    sim = Simulator(dec)
    sim.add_testbench(bench)
    sim.run()
    return outs


def _spec_decode(spec: UnitSpec, w: int, z: int, table: list[int] | tuple[int, ...]) -> int:
    d = spec.decode
    return table[w] - (d.zp_scale * z if d.zp_mask is not None and d.zp_mask[w] else 0)


@pytest.mark.parametrize("name", DECODE_UNITS)
def test_decoder_matches_spec_decode(name: str) -> None:
    """Every code × every zero point the z port can carry (0..zp_max is the format's range;
    the rest follows the same formula) against table[w] - zp_mask[w]·zp_scale·z."""
    spec = get_unit(name)
    plan = rtl.decode_plan(spec)
    zs = range(1 << plan.zp_bits) if plan.has_zp else [0]
    codes = range(1 << plan.bits)
    luts: list[list[int] | None] = [None]
    if plan.style == "lut":
        b = spec.lut_bits
        rng = np.random.default_rng(7)
        extreme = [-(1 << (b - 1)), (1 << (b - 1)) - 1] * 8
        luts = [list(spec.decode.table), extreme, rng.integers(-(1 << (b - 1)), 1 << (b - 1), 16).tolist()]
    cases = [(w, z, lut) for lut in luts for z in zs for w in codes]
    got = _decoder_outputs(plan, cases)
    exp = [_spec_decode(spec, w, z, spec.decode.table if lut is None else lut) for w, z, lut in cases]
    assert got == exp
    lo, hi = plan.wi_range
    assert lo <= min(exp) and max(exp) <= hi


def test_dint_special_fault_changes_only_the_special() -> None:
    for name, code in (("mac_dint4_sym_xint8", 1), ("mac_dint4_asym_xint8", 14)):
        spec = get_unit(name)
        plan = rtl.decode_plan(spec, rtl.Fault("dint_special"))
        assert plan.special_fault_code == code
        zs = range(spec.decode.zp_max + 1) if plan.has_zp else [0]
        cases = [(w, z, None) for z in zs for w in range(16)]
        got = _decoder_outputs(plan, cases)
        for (w, z, _), v in zip(cases, got, strict=True):
            want = 2 if w == code else _spec_decode(spec, w, z, spec.decode.table)
            assert v == want, (name, w, z)


# ----------------------------------------------------------------------------- minifloat decode
# the fp decoder on other minifloats than the registered unit's (as spec overrides); mxfp4 has
# no eXmY in its name, so its split comes from the value table alone
FP_VARIANTS = ["fp4_e2m1", "fp6_e2m3", "fp6_e3m2", "mxfp4"]


def _fp_unit(fmt: str, **kw: object) -> UnitSpec:
    return get_unit("mac_fp8_e4m3xint8", weight_format=fmt, **kw)


def test_fp8_e4m3_fields() -> None:
    plan = rtl.decode_plan(get_unit("mac_fp8_e4m3xint8"))
    assert plan.style == "fp" and plan.output_names == ("sign", "sig", "exp")
    assert plan.fp == MinifloatFields(ebits=4, mbits=3, bias=7, shift0=0, nan_codes=(0x7F, 0xFF))
    assert plan.fp.split(0x7E) == (0, 0b1110, 14)  # +448 = 1.75·2^8 = 14·2^14 units of 2^-9
    assert plan.fp.split(0x81) == (1, 1, 0)  # -2^-9, the smallest subnormal
    assert plan.fp.split(0xFF) == (1, 0, 14)  # NaN: significand 0


@pytest.mark.parametrize("fmt", FP_VARIANTS)
def test_fp_decoder_on_other_minifloats(fmt: str) -> None:
    spec = _fp_unit(fmt)
    plan = rtl.decode_plan(spec)
    assert plan.style == "fp"
    codes = list(range(1 << plan.bits))
    assert _decoder_outputs(plan, [(w, 0, None) for w in codes]) == list(spec.decode.table)


@pytest.mark.parametrize("fmt", FP_VARIANTS)
def test_fp_mac_products_on_other_minifloats(fmt: str) -> None:
    spec = _fp_unit(fmt)
    lo, hi = spec.act_range
    rows = [(w, a) for w in range(1 << spec.decode.bits) for a in (lo, lo + 1, -1, 0, 1, hi)]
    n = len(rows)
    check_against_golden(spec, {"w": np.array([r[0] for r in rows]), "a": np.array([r[1] for r in rows]),
                                "en": np.ones(n, dtype=np.int64), "clr": np.ones(n, dtype=np.int64)})


def test_fp_dot_unit_against_golden() -> None:
    for spec in (get_unit("dot4_int8xint8", weight_format="fp8_e4m3"),
                 get_unit("dot8_int4xint8", weight_format="fp6_e3m2", latency=2)):
        assert rtl.decode_plan(spec).style == "fp"
        check_against_golden(spec, random_stimulus(spec, 200, np.random.default_rng(31)))


def test_fp_fields_are_checked_against_the_table() -> None:
    from dataclasses import replace

    from models.formats import get_format
    from models.units import weight_decode

    e4m3 = get_format("fp8_e4m3")
    dec = weight_decode(e4m3)
    assert minifloat_fields(e4m3, dec).bias == 7
    msg = r"^format {}: its decode table is not a sign \+ exponent \+ mantissa minifloat in a power-of-two " \
          r"integer unit; no fp decode$"
    bad = list(dec.table)
    bad[0x42] += 1  # one entry off
    with pytest.raises(MacforgeError, match=msg.format("fp8_e4m3")):
        minifloat_fields(e4m3, replace(dec, table=tuple(bad)))
    with pytest.raises(MacforgeError, match=msg.format("fp8_e4m3")):  # NaN codes must decode to 0
        minifloat_fields(e4m3, replace(dec, table=dec.table[:-1] + (1,)))
    with pytest.raises(MacforgeError, match=msg.format("odd_e5m2")):  # the name's split is the only one tried
        minifloat_fields(replace(e4m3, name="odd_e5m2"), dec)
    int4 = replace(get_format("int4"), kind="fp")  # two's complement is not sign + magnitude
    with pytest.raises(MacforgeError, match=msg.format("int4")):
        minifloat_fields(int4, weight_decode(int4))
    nf4 = replace(get_format("nf4"), kind="fp")  # a quantized LUT has no exact integer form
    with pytest.raises(MacforgeError, match=msg.format("nf4")):
        minifloat_fields(nf4, weight_decode(nf4, lut_bits=8))
    with pytest.raises(MacforgeError, match=r"^fault dint_special cannot target the fp decoder of "
                                            r"mac_fp8_e4m3xint8$"):
        rtl.build_unit(_fp_unit("fp4_e2m1"), fault=rtl.Fault("dint_special"))


def test_fp_constant_lut_keeps_its_lut() -> None:
    assert rtl.decode_plan(get_unit("mac_lut4c_fp4_e2m1xint8")).style == "rom"
    assert rtl.decode_plan(get_unit("mac_lut4c_fp4_e2m1xint8", lut="none")).style == "fp"


# ----------------------------------------------------------------------------- products
@pytest.mark.parametrize("name", MAC_UNITS)
def test_mac_products_every_code(name: str) -> None:
    """clr every cycle, so acc = p(w, a): every code (× every zero point) × edge activations."""
    spec = get_unit(name)
    lo, hi = spec.act_range
    acts = [lo, lo + 1, -1, 0, 1, 2, hi - 1, hi]
    zs = range(spec.decode.zp_max + 1) if spec.decode.zp_mask is not None else [None]
    rows = [(w, a, z) for z in zs for w in range(1 << spec.decode.bits) for a in acts]
    n = len(rows)
    stim = {"w": np.array([r[0] for r in rows]), "a": np.array([r[1] for r in rows]),
            "en": np.ones(n, dtype=np.int64), "clr": np.ones(n, dtype=np.int64)}
    if zs != [None]:
        stim["z"] = np.array([r[2] for r in rows])
    check_against_golden(spec, stim)


# ----------------------------------------------------------------------------- MAC / dot
@pytest.mark.parametrize("name", MAC_UNITS + DOT_UNITS)
def test_random_stream_against_golden(name: str) -> None:
    for i, spec in enumerate(variants(name)):
        rng = np.random.default_rng(1000 + i)
        n = 480 if spec.kind == "mac" else 360
        small = spec.acc_bits < 32
        stim = random_stimulus(spec, n, rng, extremes=small)
        if small:  # the stream really overflows (wrap) or clamps (saturate) the accumulator
            wide = golden_trace(get_unit(name, acc_bits=62), stim)
            assert np.any(wide != golden_trace(spec, stim)), spec
            if spec.overflow == "saturate":
                lim = 1 << (spec.acc_bits - 1)
                got = golden_trace(spec, stim)
                assert np.any(got == lim - 1) and np.any(got == -lim), spec
        check_against_golden(spec, stim)


@pytest.mark.parametrize("name", ["mac_lut4xint8", "dot4_lut4xint8"])
def test_programmable_lut_write(name: str) -> None:
    """Random stream on the reset LUT, then 16 write cycles (en = 0; a write in a cycle is seen
    from the next one), then a stream on the new LUT, including entries at -2^(lut_bits-1)."""
    spec = get_unit(name)
    rng = np.random.default_rng(11)
    b = spec.lut_bits
    new_lut = rng.integers(-(1 << (b - 1)), 1 << (b - 1), 16)
    new_lut[3] = -(1 << (b - 1))  # -128 × -128 needs one bit more than the NF4 table implies
    s1 = random_stimulus(spec, 120, rng)
    s2 = random_stimulus(spec, 120, rng)
    s2["clr"][:] = 0
    if spec.kind == "mac":
        s2["w"][:20] = 3
        s2["a"][:20] = spec.act_range[0]
    wr = {"w": s1["w"][:16], "a": s1["a"][:16], "en": np.zeros(16, dtype=np.int64),
          "clr": np.zeros(16, dtype=np.int64)}
    n1, n2 = 120, 120
    stim: dict[str, list[object]] = {k: _ints(np.concatenate([s1[k], wr[k], s2[k]])) for k in s1}
    we = [0] * n1 + [1] * 16 + [0] * n2
    waddr = [0] * n1 + list(range(16)) + [0] * n2
    wdata = [0] * n1 + new_lut.tolist() + [0] * n2
    stim.update(lut_we=we, lut_waddr=waddr, lut_wdata=wdata)
    obs = simulate(rtl.build_unit(spec), stim, n1 + 16 + n2)
    e1 = golden_trace(spec, s1)
    e2 = golden_trace(spec, s2, lut=new_lut, acc0=int(e1[-1]))
    assert np.array_equal(obs[:n1], e1)
    assert np.all(obs[n1:n1 + 16] == e1[-1])
    assert np.array_equal(obs[n1 + 16:], e2)


def test_lut_write_and_read_same_cycle_sees_old_entry() -> None:
    spec = get_unit("mac_lut4xint8")
    table = spec.decode.table
    stim: dict[str, list[object]] = {"w": [5, 5], "a": [1, 1], "en": [1, 1], "clr": [1, 1],
                                     "lut_we": [1, 0], "lut_waddr": [5, 0], "lut_wdata": [77, 0]}
    assert simulate(rtl.build_unit(spec), stim, 2).tolist() == [table[5], 77]


@pytest.mark.parametrize("latency", [1, 2, 3])
def test_reset_mid_stream(latency: int) -> None:
    """rst clears acc and drops the operands in flight; afterwards the unit restarts from 0."""
    spec = get_unit("dot4_dint4_asym_xint8", latency=latency)
    rng = np.random.default_rng(5)
    s1, s2 = random_stimulus(spec, 60, rng), random_stimulus(spec, 60, rng)
    stim = {k: _ints(np.concatenate([s1[k], s2[k]])) for k in s1}
    rst = [0] * 60 + [1] + [0] * 59  # reset in the first cycle of s2: that cycle is lost
    obs = simulate(rtl.build_unit(spec), stim, 120, rst=rst)
    e1 = golden_trace(spec, s1)
    L = latency
    assert np.array_equal(obs[L - 1:60], e1[:61 - L])
    assert np.all(obs[60:60 + L] == 0)
    s2b = {k: v[1:] for k, v in s2.items()}
    e2 = golden_trace(spec, s2b)
    assert np.array_equal(obs[60 + L:], e2[:59 - L + 1])


# ----------------------------------------------------------------------------- decoupleQ
def _dq_stream(spec: UnitSpec, n_groups: int, rng: np.random.Generator, *, bubbles: float,
               extremes: bool) -> tuple[dict[str, list[int]], dict[str, np.ndarray], list[int]]:
    g = spec.group_size
    q = rng.integers(0, 4, n_groups * g)
    a = rng.integers(-128, 128, n_groups * g)
    cmax = (1 << (spec.coef_bits - 1)) - 1
    s = rng.integers(-cmax - 1, cmax + 1, n_groups)
    zc = rng.integers(-cmax - 1, cmax + 1, n_groups)
    if extremes:
        q[:] = 2  # -2
        a[:] = -128
        s[:] = cmax
        zc[:] = cmax
    cyc: dict[str, list[int]] = {k: [] for k in ("en", "clr", "q", "a", "last", "s", "zc")}
    ends: list[int] = []
    for i in range(n_groups * g):
        while rng.random() < bubbles:  # a bubble with garbage on every other input
            for k, v in (("en", 0), ("clr", 0), ("q", int(rng.integers(4))), ("a", int(rng.integers(-128, 128))),
                         ("last", int(rng.integers(2))), ("s", int(rng.integers(-cmax, cmax))),
                         ("zc", int(rng.integers(-cmax, cmax)))):
                cyc[k].append(v)
        last = (i + 1) % g == 0
        grp = i // g
        for k, v in (("en", 1), ("clr", int(i == 0)), ("q", int(q[i])), ("a", int(a[i])), ("last", int(last)),
                     ("s", int(s[grp]) if last else int(rng.integers(-cmax, cmax))),
                     ("zc", int(zc[grp]) if last else int(rng.integers(-cmax, cmax)))):
            cyc[k].append(v)
        if last:
            ends.append(len(cyc["en"]) - 1)
    return cyc, {"q": q, "a": a, "s": s, "zc": zc}, ends


@pytest.mark.parametrize("overrides", [
    {},
    {"latency": 2},
    {"group_size": 4, "coef_bits": 8, "acc_bits": 20, "overflow": "wrap"},
    {"group_size": 4, "coef_bits": 8, "acc_bits": 20, "overflow": "saturate", "latency": 3},
], ids=["as_specified", "latency2", "g4_wrap20", "g4_sat20_lat3"])
@pytest.mark.parametrize("extremes", [False, True], ids=["random", "extreme"])
def test_dq_group_mac_against_golden(overrides: dict[str, object], extremes: bool) -> None:
    spec = get_unit(DQ_UNITS[0], **overrides)
    rng = np.random.default_rng(21)
    n_groups = 5 if spec.group_size > 8 else 40
    cyc, data, ends = _dq_stream(spec, n_groups, rng, bubbles=0.15, extremes=extremes)
    n = len(cyc["en"]) + spec.latency
    for v in cyc.values():
        v.extend([0] * spec.latency)
    obs = simulate(rtl.build_unit(spec), cyc, n)
    exp = golden.dq_group_mac(spec, data["q"], data["a"], data["s"], data["zc"])
    got = obs[[t + spec.latency - 1 for t in ends]]
    assert np.array_equal(got, exp)
    if extremes and spec.acc_bits < 32:  # the stream really overflows the accumulator
        wide = golden.dq_group_mac(get_unit(DQ_UNITS[0], **{**overrides, "acc_bits": 62}),
                                   data["q"], data["a"], data["s"], data["zc"])
        assert np.any(wide != exp)


# ----------------------------------------------------------------------------- faults
@pytest.mark.parametrize("name,fault", [
    ("mac_int8xint8", rtl.Fault("product_bit", bit=4)),
    ("dot8_int4xint8", rtl.Fault("product_bit", bit=2, lane=5)),
    ("mac_dint4_sym_xint8", rtl.Fault("dint_special")),
    ("dot4_dint4_asym_xint8", rtl.Fault("dint_special")),
    ("mac_int4xint8", rtl.Fault("acc_carry", bit=3)),
    ("dot4_lut4xint8", rtl.Fault("acc_carry", bit=9)),
    ("mac_fp8_e4m3xint8", rtl.Fault("product_bit", bit=0)),
    ("mac_fp8_e4m3xint8", rtl.Fault("product_bit", bit=25)),
    ("mac_fp8_e4m3xint8", rtl.Fault("acc_carry", bit=14)),
])
def test_fault_is_visible(name: str, fault: rtl.Fault) -> None:
    spec = get_unit(name)
    stim = random_stimulus(spec, 200, np.random.default_rng(9))
    ports = {k: _ints(v) for k, v in stim.items()}
    want = golden_trace(spec, stim)
    # the same stimulus through the fault-free unit matches: the difference is the fault's
    np.testing.assert_array_equal(simulate(rtl.build_unit(spec), ports, 200), want)
    obs = simulate(rtl.build_unit(spec, fault=fault), ports, 200)
    bad = np.flatnonzero(obs != want)
    assert bad.size
    # where it first shows, the accumulator is off by what the fault does to one addition:
    # a flipped product bit by ±2^bit, a dropped carry out of bit b by -2^(b+1)
    mod = 1 << spec.acc_bits
    d = (int(obs[bad[0]]) - int(want[bad[0]])) % mod
    if fault.kind == "product_bit":
        assert d in (1 << fault.bit, mod - (1 << fault.bit))
    elif fault.kind == "acc_carry":
        assert d == mod - (1 << (fault.bit + 1))


def test_fault_errors() -> None:
    with pytest.raises(MacforgeError, match=r"^fault kind must be one of product_bit, dint_special, "
                                            r"acc_carry, en_ignored, clr_ignored, reset_pipeline, sat_clamp, "
                                            r"lut_waddr, zp_sign, dq_last, fp_exponent, not 'stuck'$"):
        rtl.Fault("stuck")  # type: ignore[arg-type]
    # control-path faults on a unit without that control
    with pytest.raises(MacforgeError, match=r"^fault reset_pipeline needs a pipelined unit \(latency >= 2\); "
                                            r"mac_int4xint8 has latency 1$"):
        rtl.build_unit("mac_int4xint8", fault=rtl.Fault("reset_pipeline"))
    with pytest.raises(MacforgeError, match=r"^fault sat_clamp needs a saturating accumulator; mac_int4xint8 "
                                            r"has overflow wrap$"):
        rtl.build_unit("mac_int4xint8", fault=rtl.Fault("sat_clamp"))
    with pytest.raises(MacforgeError, match=r"^fault lut_waddr needs a programmable LUT; mac_lut4c_nf4xint8 "
                                            r"has lut=constant$"):
        rtl.build_unit("mac_lut4c_nf4xint8", fault=rtl.Fault("lut_waddr"))
    with pytest.raises(MacforgeError, match=r"^fault lut_waddr: bit 4 is outside the 4-bit LUT address of "
                                            r"mac_lut4xint8$"):
        rtl.build_unit("mac_lut4xint8", fault=rtl.Fault("lut_waddr", bit=4))
    with pytest.raises(MacforgeError, match=r"^fault zp_sign needs a zero-point weight format; "
                                            r"mac_dint4_sym_xint8 \(dint4_sym\) has none$"):
        rtl.build_unit("mac_dint4_sym_xint8", fault=rtl.Fault("zp_sign"))
    with pytest.raises(MacforgeError, match=r"^fault dq_last needs a decoupleQ group MAC; mac_int4xint8 is a mac$"):
        rtl.build_unit("mac_int4xint8", fault=rtl.Fault("dq_last"))
    with pytest.raises(MacforgeError, match=r"^fault fp_exponent needs an fp-decoded weight format; "
                                            r"mac_int8xint8 decodes int8 as twos$"):
        rtl.build_unit("mac_int8xint8", fault=rtl.Fault("fp_exponent"))
    with pytest.raises(MacforgeError, match=r"^fault dint_special needs a unit with a \+0\.5 half-unit "
                                            r"special code; mac_int8xint8 \(int8\) has none$"):
        rtl.build_unit("mac_int8xint8", fault=rtl.Fault("dint_special"))
    with pytest.raises(MacforgeError, match=r"^fault product_bit: bit 12 is outside the 12-bit product "
                                            r"of mac_int4xint8$"):
        rtl.build_unit("mac_int4xint8", fault=rtl.Fault("product_bit", bit=12))
    with pytest.raises(MacforgeError, match=r"^fault product_bit: lane 4 is outside dot4_int8xint8's 4 lane\(s\)$"):
        rtl.build_unit("dot4_int8xint8", fault=rtl.Fault("product_bit", lane=4))
    with pytest.raises(MacforgeError, match=r"^fault acc_carry: bit 31 has no carry"):
        rtl.build_unit("mac_int4xint8", fault=rtl.Fault("acc_carry", bit=31))


# ----------------------------------------------------------------------------- widths
def test_impossible_widths_are_refused() -> None:
    # the spec refuses an accumulator narrower than one product ...
    with pytest.raises(MacforgeError, match=r"acc_bits=10 cannot hold one mac"):
        get_unit("mac_int8xint8", acc_bits=10)
    # ... including the programmable LUT, whose entries span all of lut_bits
    # (-128 × -128 = 2^14 needs 16 bits, one more than the NF4 reset table implies)
    with pytest.raises(MacforgeError, match=r"acc_bits=15 cannot hold one mac result of nf4 × int8 "
                                            r"\(1 lane\(s\)\): needs >= 16 bits"):
        get_unit("mac_lut4xint8", acc_bits=15)
    with pytest.raises(MacforgeError, match=r"acc_bits=17 cannot hold one dot result of nf4 × int8 "
                                            r"\(4 lane\(s\)\): needs >= 18 bits"):
        get_unit("dot4_lut4xint8", acc_bits=17)
    with pytest.raises(MacforgeError, match=r"^unit mac_int8xint8 is a mac, not a dot$"):
        rtl.DotUnit(get_unit("mac_int8xint8"))
    with pytest.raises(MacforgeError, match=r"^unit must be a UnitSpec, a unit name or an inline spec, not int$"):
        rtl.build_unit(3)  # type: ignore[arg-type]
    with pytest.raises(MacforgeError, match=r"^unknown unit 'mac_nope'"):
        rtl.build_unit("mac_nope")


# ----------------------------------------------------------------------------- ports / Verilog
def test_port_contract() -> None:
    names = {n: [p["name"] for p in rtl.ports(n)] for n in unit_names()}
    assert names["mac_int8xint8"] == ["clk", "rst", "en", "clr", "w", "a", "acc"]
    assert names["mac_dint4_asym_xint8"] == ["clk", "rst", "en", "clr", "w", "a", "z", "acc"]
    assert names["mac_lut4xint8"] == ["clk", "rst", "en", "clr", "w", "a", "lut_we", "lut_waddr",
                                      "lut_wdata", "acc"]
    assert names["dq_int2_group_mac"] == ["clk", "rst", "en", "clr", "q", "a", "last", "s", "zc", "acc"]
    p = {d["name"]: d for d in rtl.ports("dot8_dint4_asym_xint8")}
    assert p["w"] == {"name": "w", "direction": "in", "width": 32, "signed": False, "lanes": 8}
    assert p["a"] == {"name": "a", "direction": "in", "width": 64, "signed": True, "lanes": 8}
    assert p["z"] == {"name": "z", "direction": "in", "width": 4, "signed": False, "lanes": 1}
    assert p["acc"] == {"name": "acc", "direction": "out", "width": 32, "signed": True, "lanes": 1}
    lut = {d["name"]: d for d in rtl.ports("mac_lut4xint8")}
    assert (lut["lut_waddr"]["width"], lut["lut_wdata"]["width"], lut["lut_wdata"]["signed"]) == (4, 8, True)


@pytest.fixture(scope="module")
def verilog_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("verilog")
    paths = rtl.write_verilog(unit_names(), out)
    assert [p.name for p in paths] == [f"{n}.v" for n in unit_names()]
    return {p.stem: p.read_text() for p in paths}


@pytest.mark.parametrize("name", unit_names())
def test_verilog_top_module_and_ports(name: str, verilog_files: dict[str, str]) -> None:
    text = verilog_files[name]
    tops = re.findall(r"^\(\* top =\s*1\s*\*\)\n(?:\(\*.*\*\)\n)*module ([^\s(]+)\(", text, re.MULTILINE)
    assert tops == [name]
    body = text[text.index(f"module {name}("):]
    body = body[:body.index("endmodule")]
    decl = {nm: (d, int(hi) + 1 if hi else 1)
            for d, hi, nm in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.MULTILINE)}
    assert set(decl) == {p["name"] for p in rtl.ports(name)}
    for p in rtl.ports(name):
        direction, width = decl[p["name"]]
        assert direction == ("input" if p["direction"] == "in" else "output")
        assert width == p["width"], p


def test_write_verilog_is_cached(tmp_path_factory: pytest.TempPathFactory, verilog_files: dict[str, str]) -> None:
    out = tmp_path_factory.mktemp("verilog2")
    paths = rtl.write_verilog(unit_names(), out)
    assert {p.stem: p.read_text() for p in paths} == verilog_files
    mtimes = [p.stat().st_mtime_ns for p in paths]
    rtl.write_verilog(unit_names(), out)
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    faulty = rtl.verilog("mac_int8xint8", fault=rtl.Fault("product_bit", bit=1))
    assert faulty != verilog_files["mac_int8xint8"] and "module mac_int8xint8(" in faulty
    assert rtl.unit_hash(get_unit("mac_int8xint8")) != rtl.unit_hash(get_unit("mac_int8xint8", acc_bits=24))


# ----------------------------------------------------------------------------- pipelining
def test_pipeline_levels_are_placed_not_delayed() -> None:
    """Latency L puts its L - 1 register levels at the accumulator's input, inside the
    multiplier (partial products of the activation's halves) and at the decoded operands, in
    that order; a decoupleQ group MAC only registers its group term. The levels show in the
    Verilog as registers of those names."""
    from rtl._decode import pipeline_cuts

    assert pipeline_cuts(get_unit("mac_int8xint8")) == ()
    assert pipeline_cuts(get_unit("mac_int8xint8", latency=3)) == ("term", "split")
    assert pipeline_cuts(get_unit("dot4_int4xint8", latency=5)) == ("term", "split", "operands", "term")
    assert pipeline_cuts(get_unit("dq_int2_group_mac", latency=3)) == ("term", "term")
    # flip-flops: the Verilog's regs with a reset value ("reg [n:0] name = ...;")
    flops = r"^\s*reg\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?(\w+) = "
    found = {lat: re.findall(flops, rtl.verilog(get_unit("mac_dint4_sym_xint8", latency=lat)), re.MULTILINE)
             for lat in (2, 3, 4)}
    regs = {lat: {name for _, name in f} for lat, f in found.items()}
    pp = {"product_pp_lo", "product_pp_hi", "product_pp_sign", "product_pp_half"}
    ops = {"product_op_a", "product_op_sign", "product_op_mag", "product_op_half"}
    # latency 2: the accumulator, the term (the product: 12 bits) and en / clr
    assert sum(int(hi or 0) + 1 for hi, _ in found[2]) == 32 + 12 + 2 and not (pp | ops) & regs[2]
    assert pp <= regs[3] and not ops & regs[3]
    assert pp | ops <= regs[4]
