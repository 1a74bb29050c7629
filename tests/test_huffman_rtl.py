"""The canonical-Huffman decoder unit: spec, ports, amaranth.sim against the golden codec, and
cocotb on Icarus (CI) / Icarus + Verilator (slow) with a mutant the testbench must catch."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import rtl
import testbench
from models.errors import MacforgeError
from models.formats import code_table, huffman_lengths
from models.golden._codec import decode_prefix, encode_stream
from models.units import as_spec, get_unit, unit_names

ROOT = Path(__file__).resolve().parents[1]
UNIT = "huffman_egrid4_L16"


def _root(request: pytest.FixtureRequest) -> Path:
    return ROOT / "build" / "tests" / "huffman" / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]


def test_spec_ports_and_errors():
    u = get_unit(UNIT)
    assert UNIT in unit_names() and u.kind == "huffman"
    assert u.huffman_params == {"max_len": 16, "symbol_bits": 8, "count_bits": 13, "chunk": 4096}
    ports = {p["name"]: p["width"] for p in rtl.ports(u)}
    assert (ports["in_word"], ports["out_sym"], ports["len_first"], ports["len_count"], ports["n"]) == (32, 8, 16, 9, 13)
    assert rtl.buffer_bits(16) == 64
    with pytest.raises(MacforgeError, match="a huffman unit decodes an entropy-coded format"):
        as_spec("kind=huffman,weights=nf4")
    with pytest.raises(MacforgeError, match="latency does not apply to a huffman unit"):
        as_spec("kind=huffman,weights=egrid3_L12,latency=2")
    with pytest.raises(MacforgeError, match="rtl.Fault targets MAC datapaths"):
        rtl.build_unit(UNIT, fault=rtl.Fault("product_bit", bit=0))
    with pytest.raises(MacforgeError, match="mutant must be one of count_le, skip_ignored"):
        rtl.HuffmanDecoder(8, 4, mutant="nope")
    assert "module huffman_egrid4_L16" in rtl.verilog(UNIT)


def _amaranth_decode(L: int, S: int, table, stream, ready_p: float, seed: int) -> tuple[list[int], int]:
    """Drive the decoder in amaranth.sim chunk by chunk with back-pressure; (symbols, cycles)."""
    from amaranth.sim import Simulator

    dut = rtl.HuffmanDecoder(L, S, 16)
    rng = np.random.default_rng(seed)
    got: list[int] = []
    cycles = [0]

    async def bench(ctx):  # type: ignore[no-untyped-def]
        for l in range(1, L + 1):
            for port, v in ((dut.len_we, 1), (dut.len_addr, l), (dut.len_first, int(table.first[l])),
                            (dut.len_count, int(table.count[l])), (dut.len_index, int(table.index[l]))):
                ctx.set(port, v)
            await ctx.tick()
        ctx.set(dut.len_we, 0)
        for i, s in enumerate(table.symbols.tolist()):
            ctx.set(dut.sym_we, 1)
            ctx.set(dut.sym_addr, i)
            ctx.set(dut.sym_data, s)
            await ctx.tick()
        ctx.set(dut.sym_we, 0)
        words = stream.words
        for c in range(stream.n_chunks):
            off = int(stream.offsets[c])
            ctx.set(dut.start, 1)
            ctx.set(dut.skip, off % 32)
            ctx.set(dut.n, min(stream.chunk, stream.n_symbols - c * stream.chunk))
            await ctx.tick()
            ctx.set(dut.start, 0)
            w = off // 32
            while not ctx.get(dut.done):
                ready = int(rng.random() < ready_p)
                ctx.set(dut.out_ready, ready)
                ctx.set(dut.in_valid, int(w < words.size))
                ctx.set(dut.in_word, int(words[w]) if w < words.size else 0)
                ctx.set(dut.in_last, int(w == words.size - 1))
                give = ctx.get(dut.out_valid) and ready
                sym, take = ctx.get(dut.out_sym), ctx.get(dut.in_ready) and w < words.size
                await ctx.tick()
                cycles[0] += 1
                assert not ctx.get(dut.error)
                if give:
                    got.append(sym)
                if take:
                    w += 1
                assert cycles[0] < 20 * stream.n_symbols + 1000, "decoder stalled"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, cycles[0]


def test_amaranth_sim_matches_golden():
    rng = np.random.default_rng(11)
    counts = rng.integers(1, 500, 13)
    table = code_table(huffman_lengths(counts, 6), 6)  # the limit binds: some codes are 6 bits
    sym = rng.choice(13, 900, p=counts / counts.sum())
    st = encode_stream(sym, table, chunk=250)
    want, status, _ = decode_prefix(st, table)
    assert status == "ok"
    got, cycles = _amaranth_decode(6, 4, table, st, ready_p=1.0, seed=1)
    assert np.array_equal(got, want)
    assert cycles <= 900 + 4 * 4  # one symbol per cycle at full rate (+ a few start-up cycles per chunk)
    got, _ = _amaranth_decode(6, 4, table, st, ready_p=0.5, seed=2)  # back-pressure
    assert np.array_equal(got, want)


@pytest.mark.cocotb
def test_cocotb_icarus_short(request: pytest.FixtureRequest):
    testbench.check_simulator("icarus")
    r = testbench.run_huffman(UNIT, simulator="icarus", symbols=1200, seed=3, build_root=_root(request))
    assert r.mismatches == 0, testbench.format_table([r])
    assert r.checked > 4000 and not any("skipped" in n for n in r.notes)
    assert any("real MiniLM weights" in n for n in r.notes)
    tp = next(n for n in r.notes if n.startswith("full rate"))
    assert float(re.search(r"\(([\d.]+) symbols/cycle", tp).group(1)) > 0.95  # type: ignore[union-attr]


@pytest.mark.cocotb
def test_cocotb_catches_a_mutant(request: pytest.FixtureRequest):
    """count_le accepts one code too many per length: a longer code whose first bits equal
    first[l] + count[l] decodes as a wrong short symbol; the plan must see it."""
    testbench.check_simulator("icarus")
    r = testbench.run_huffman(UNIT, simulator="icarus", symbols=1200, seed=3, real_data=False,
                              mutant="count_le", build_root=_root(request))
    assert r.mismatches > 0 and r.instances == ["unit+mutant:count_le"]
    assert any("first difference at symbol" in f["got"] for f in r.failures)


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_cocotb_full_plan(sim: str, request: pytest.FixtureRequest):
    testbench.check_simulator(sim)
    (r,) = testbench.run_units([UNIT], simulator=sim, build_root=_root(request))
    assert r.mismatches == 0, testbench.format_table([r])
    assert r.checked > 20000
    for mutant in rtl.HUFFMAN_MUTANTS:
        bad = testbench.run_huffman(UNIT, simulator=sim, symbols=1500, real_data=False, mutant=mutant,
                                    build_root=_root(request))
        assert bad.mismatches > 0, mutant
