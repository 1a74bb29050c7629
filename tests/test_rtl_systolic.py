"""The output-stationary systolic array against models.golden.gemm, cycle by cycle: results
appear exactly in the cycles ``rtl/_systolic.py`` documents and ``systolic_schedule`` counts."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

import rtl
from models import golden
from models.errors import MacforgeError
from models.units import get_unit


def _tile(spec, rows, cols, k, rng, *, group=None, extremes=False):  # type: ignore[no-untyped-def]
    A = rng.integers(-128, 128, (rows, k))
    W = rng.integers(0, 1 << spec.decode.bits, (cols, k))
    if extremes:
        A[:] = 127
        W[:] = 127  # int8 code 127 = +127: every product is +16129
    zp = None
    if spec.decode.zp_mask is not None:
        zp = rng.integers(0, spec.decode.zp_max + 1, (cols, k // group))
    exp = golden.gemm(W, A, spec.weight_format, spec.act_format, spec.acc_bits, spec.overflow,
                      zero_points=zp, group_size=group if zp is not None else None,
                      lut_bits=spec.lut_bits if spec.lut != "none" else None)
    return A, W, zp, exp


def run_tiles(unit, rows, cols, tiles, *, starts, group=None, gaps=None, extra=4):  # type: ignore[no-untyped-def]
    """Present each tile's k = 0..K-1 from cycle ``starts[i]`` on (``gaps``: cycles with
    valid = 0 inserted after each k, per tile); record (cycle, out_row, c) of every out_valid."""
    dut = rtl.SystolicArray(rows, cols, unit)
    schedule: dict[int, tuple[list[int], list[int], list[int] | None, int, int]] = {}
    for (A, W, zp, _), t0, gap in zip(tiles, starts, gaps or [0] * len(tiles), strict=True):
        k_len = A.shape[1]
        t = t0
        for k in range(k_len):
            z = None if zp is None else zp[:, k // group].tolist()
            schedule[t] = (A[:, k].tolist(), W[:, k].tolist(), z, int(k == 0), int(k == k_len - 1))
            t += 1 + gap
    end = max(schedule) + rows + cols + rows + extra
    outs: list[tuple[int, int, list[int]]] = []

    async def bench(ctx):  # type: ignore[no-untyped-def]
        for t in range(end):
            if t in schedule:
                a, w, z, first, last = schedule[t]
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, first)
                ctx.set(dut.last, last)
                ctx.set(dut.a, a)
                ctx.set(dut.w, w)
                if z is not None:
                    ctx.set(dut.z, z)
            else:
                ctx.set(dut.valid, 0)
                ctx.set(dut.first, 0)
                ctx.set(dut.last, 0)
            if ctx.get(dut.out_valid):
                outs.append((t, ctx.get(dut.out_row), [int(v) for v in ctx.get(dut.c)]))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return outs


def check_tile(outs, rows, cols, k, t0, exp):  # type: ignore[no-untyped-def]
    d = t0 + k + rows + cols - 2
    mine = [o for o in outs if d <= o[0] < d + rows]
    assert [o[0] for o in mine] == list(range(d, d + rows))
    got = np.zeros((rows, cols), dtype=np.int64)
    for s, (_, row, c) in enumerate(mine):
        assert row == rows - 1 - s
        got[row] = c
    np.testing.assert_array_equal(got, exp)
    assert d + rows - 1 - t0 + 1 == rtl.systolic_schedule(rows, cols, k)


@pytest.mark.parametrize("unit,rows,cols,k,group", [
    ("mac_int4xint8", 2, 2, 6, None),
    ("mac_int8xint8", 4, 4, 16, None),
    ("mac_dint4_asym_xint8", 4, 4, 16, 4),
    ("mac_dint4_sym_xint8", 3, 2, 9, None),
    ("mac_lut4c_nf4xint8", 2, 3, 8, None),
    ("mac_lut4c_fp4_e2m1xint8", 1, 4, 5, None),
])
def test_tile_matches_golden_gemm(unit: str, rows: int, cols: int, k: int, group: int | None) -> None:
    spec = get_unit(unit)
    tile = _tile(spec, rows, cols, k, np.random.default_rng(rows * 10 + cols), group=group)
    outs = run_tiles(spec, rows, cols, [tile], starts=[0], group=group)
    assert len(outs) == rows  # out_valid is high in exactly the R drain cycles
    check_tile(outs, rows, cols, k, 0, tile[3])


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_tile_overflow(overflow: str) -> None:
    spec = get_unit("mac_int8xint8", acc_bits=18, overflow=overflow)
    tile = _tile(spec, 2, 2, 12, np.random.default_rng(0), extremes=True)
    wide = golden.gemm(tile[1], tile[0], "int8", acc_bits=62)
    assert np.all(wide != tile[3])
    check_tile(run_tiles(spec, 2, 2, [tile], starts=[0]), 2, 2, 12, 0, tile[3])


def test_back_to_back_tiles_at_the_schedule_period() -> None:
    """The next tile may present k = 0 in cycle systolic_schedule(R, C, K) of the previous one."""
    spec = get_unit("mac_dint4_asym_xint8")
    rows, cols, k = 3, 3, 8
    rng = np.random.default_rng(4)
    tiles = [_tile(spec, rows, cols, k, rng, group=4) for _ in range(3)]
    period = rtl.systolic_schedule(rows, cols, k)
    starts = [0, period, 2 * period]
    outs = run_tiles(spec, rows, cols, tiles, starts=starts, group=4)
    assert len(outs) == 3 * rows
    for tile, t0 in zip(tiles, starts, strict=True):
        check_tile(outs, rows, cols, k, t0, tile[3])


def test_bubbles_in_valid() -> None:
    """Gaps in valid idle the PEs; the drain starts R + C - 1 cycles after `last`."""
    spec = get_unit("mac_int4xint8")
    rows, cols, k = 2, 3, 5
    tile = _tile(spec, rows, cols, k, np.random.default_rng(8))
    outs = run_tiles(spec, rows, cols, [tile], starts=[0], gaps=[2])
    last_cycle = (k - 1) * 3
    d = last_cycle + rows + cols - 1
    assert [o[0] for o in outs] == list(range(d, d + rows))
    got = np.array([o[2] for o in sorted(outs, key=lambda o: o[1])])
    np.testing.assert_array_equal(got, tile[3])


def test_schedule_formula() -> None:
    assert rtl.systolic_schedule(1, 1, 1) == 2
    assert rtl.systolic_schedule(4, 4, 16) == 16 + 8 + 4 - 2
    assert rtl.systolic_schedule(2, 8, 64) == 64 + 4 + 8 - 2
    with pytest.raises(MacforgeError, match=r"^k must be a positive integer, not 0$"):
        rtl.systolic_schedule(2, 2, 0)


def test_array_errors() -> None:
    with pytest.raises(MacforgeError, match=r"^rows must be a positive integer, not 0$"):
        rtl.SystolicArray(0, 2)
    with pytest.raises(MacforgeError, match=r"^systolic array PEs are single-lane MACs; dot4_int4xint8 is a dot$"):
        rtl.SystolicArray(2, 2, "dot4_int4xint8")
    with pytest.raises(MacforgeError, match=r"^systolic array needs a constant decode; mac_lut4xint8 has a "
                                            r"programmable LUT \(use a mac_lut4c_<format>xint8 unit\)$"):
        rtl.SystolicArray(2, 2, "mac_lut4xint8")
    with pytest.raises(MacforgeError, match=r"^systolic array PEs need latency 1, mac_int4xint8 has latency 2$"):
        rtl.SystolicArray(2, 2, get_unit("mac_int4xint8", latency=2))


def test_array_verilog() -> None:
    text = rtl.verilog(rtl.SystolicArray(2, 2, "mac_int4xint8"), name="systolic_2x2_int4")
    assert "module systolic_2x2_int4(" in text


# (R, C, K): square, tall, wide, K < R + C, K = 1, and the 8×8 array with K ≥ 64
CYCLE_CASES = [(1, 1, 1), (2, 3, 5), (3, 8, 2), (4, 4, 64),  # amaranth.sim: 8×8 ~20 s, 8×2 ~6 s
               pytest.param(8, 2, 64, marks=pytest.mark.slow), pytest.param(8, 8, 70, marks=pytest.mark.slow)]


@pytest.mark.parametrize("rows,cols,k", CYCLE_CASES)
def test_schedule_equals_measured_rtl_cycles(rows: int, cols: int, k: int) -> None:
    """The cycle count the accelerator model uses for one output-stationary tile
    (``sim.accel.fold_cycles('os', ...)``, from ``rtl.systolic_schedule``) is the RTL's:
    measured from the cycle k = 0 is presented through the last cycle with out_valid, and
    the next tile really can start in that cycle (one cycle earlier corrupts it)."""
    from sim.accel import fold_cycles

    spec = get_unit("mac_int8xint8")
    rng = np.random.default_rng(rows * 100 + cols * 10 + k)
    tile = _tile(spec, rows, cols, k, rng)
    outs = run_tiles(spec, rows, cols, [tile], starts=[0])
    cycles = [o[0] for o in outs]
    measured = max(cycles) - 0 + 1
    assert cycles == list(range(measured - rows, measured))  # R consecutive output cycles, last one counted
    assert measured == rtl.systolic_schedule(rows, cols, k)
    folds, per_fold = fold_cycles("os", rows, cols, rows, k, cols)
    assert (folds, per_fold) == (1, measured)
    # back to back at the measured period: both tiles right
    nxt = _tile(spec, rows, cols, k, rng)
    nxt[0][0, 0] = nxt[1][0, 0] = 1  # PE(0, 0)'s first product is 1, not 0
    exp2 = golden.gemm(nxt[1], nxt[0], "int8")
    nxt = (nxt[0], nxt[1], None, exp2)
    outs = run_tiles(spec, rows, cols, [tile, nxt], starts=[0, measured])
    check_tile(outs, rows, cols, k, 0, tile[3])
    check_tile(outs, rows, cols, k, measured, exp2)
    # one cycle earlier, PE(0, 0)'s k = 0 meets the last drain cycle of the previous tile
    outs = run_tiles(spec, rows, cols, [tile, nxt], starts=[0, measured - 1])
    late = sorted((o for o in outs if o[0] >= measured - 1 + k + rows + cols - 2), key=lambda o: o[1])
    assert late[0][1] == 0 and late[0][2][0] != exp2[0, 0]


def _array_flip_flops(spec) -> int:  # type: ignore[no-untyped-def]
    """Registers of an R×C array after Yosys merges equal ones: R·C accumulators; row i's
    activation passes i skew registers and C-1 PE hops, column j's weight code (and zero
    point) j skew registers and R-1 hops; valid and first depend only on i + j (delays
    1 … R+C-2, one register each); `last` is delayed R + C - 1 times; the drain step counter."""
    R, C = spec.rows, spec.cols
    dec = spec.decode
    w_bits = dec.bits + (dec.zp_bits if dec.zp_mask is not None else 0)
    a_regs = sum(i + C - 1 for i in range(R)) * spec.act_bits
    w_regs = sum(j + R - 1 for j in range(C)) * w_bits
    return R * C * spec.acc_bits + a_regs + w_regs + 2 * (R + C - 2) + (R + C - 1) + R.bit_length()


@pytest.mark.parametrize("unit", [
    "kind=systolic,rows=2,cols=2,pe=mac_int4xint8",
    pytest.param("kind=systolic,rows=3,cols=4,pe=mac_dint4_asym_xint8", marks=pytest.mark.slow),
    pytest.param("kind=systolic,rows=4,cols=4,pe=mac_int8xint8", marks=pytest.mark.slow),
])
def test_synth_area_per_pe(unit: str) -> None:
    """Generic-cell synthesis of a systolic unit: the array's flip-flops are exactly the
    registers its schedule needs, one PE alone holds its accumulator and pass-through
    registers, and the area per PE is reported three ways that add up."""
    from models.units import as_spec
    from rtl.flow import DFF, synth_unit

    spec = as_spec(unit)
    r = synth_unit(spec, "generic")
    pes = spec.rows * spec.cols
    assert r["pes"] == pes
    assert r["cells_by_type"]["DFF"] == _array_flip_flops(spec)
    dec = spec.decode
    pe_regs = spec.acc_bits + spec.act_bits + 2 + dec.bits + (dec.zp_bits if dec.zp_mask is not None else 0)
    assert r["pe_sequential_nand2_eq"] == pytest.approx(pe_regs * DFF.nand2_eq, rel=1e-6)
    assert r["nand2_eq_per_pe"] == pytest.approx(r["nand2_eq"] / pes)
    assert r["nand2_eq_per_mac"] == r["nand2_eq_per_pe"]
    parts = r["pe_components_nand2_eq"]
    assert sum(parts.values()) == pytest.approx(r["pe_nand2_eq"])
    # the PE is the MAC unit of the same datapath plus its pass-through registers and drain mux
    assert parts["pass_through_and_drain"] >= (spec.act_bits + 2 + dec.bits) * DFF.nand2_eq
    assert r["array_overhead_nand2_eq"] == pytest.approx(r["nand2_eq"] - pes * r["pe_nand2_eq"])


def test_energy_stimulus_is_back_to_back_tiles() -> None:
    """The energy run of a systolic unit: tiles of K = 128 at the schedule period, MACs counted
    as R·C·K per tile."""
    from models.units import as_spec
    from rtl.flow import unit_stimulus

    spec = as_spec("kind=systolic,rows=2,cols=3,pe=mac_dint4_asym_xint8")
    stim, macs, desc = unit_stimulus(spec, "random", n_macs=2000, seed=1)
    k, period = 128, rtl.systolic_schedule(2, 3, 128)
    tiles = -(-2000 // (6 * k))
    assert macs == tiles * 6 * k and "2×3×128 tiles back to back" in desc
    valid = np.asarray(stim["valid"])
    assert valid.size == tiles * period and valid.sum() == tiles * k
    assert np.flatnonzero(stim["first"]).tolist() == [t * period for t in range(tiles)]
    assert np.flatnonzero(stim["last"]).tolist() == [t * period + k - 1 for t in range(tiles)]
    z = np.array(stim["z"], dtype=object)
    zb = spec.decode.zp_bits
    lanes = [(z >> (zb * j)) & ((1 << zb) - 1) for j in range(3)]  # zero-point lanes
    assert all(int(x.max()) <= spec.decode.zp_max for x in lanes)
    assert np.all(z[valid == 0] == 0)


@pytest.mark.slow
def test_systolic_energy_per_mac() -> None:
    from rtl.flow import unit_energy

    r = unit_energy("kind=systolic,rows=2,cols=2,pe=mac_int8xint8", "random", n_macs=1024)
    assert r["pes"] == 4 and r["macs"] == 4 * 128 * 2
    assert r["mac_utilization"] == pytest.approx(128 / rtl.systolic_schedule(2, 2, 128))
    # the clock share is every flip-flop of the array (its schedule's registers) on every
    # simulated cycle (2 tiles at the schedule's period), spread over the MACs
    from models.units import as_spec

    cycles = r["macs"] / (r["pes"] * r["mac_utilization"])
    assert cycles == 2 * rtl.systolic_schedule(2, 2, 128)
    ffs = _array_flip_flops(as_spec("kind=systolic,rows=2,cols=2,pe=mac_int8xint8"))
    assert r["dff_cycles_per_mac"] == pytest.approx(ffs * cycles / r["macs"])
