"""A canonical-Huffman chunk decoder (unit kind ``huffman``): reads the golden codec's bitstream
(``models.golden.encode_stream``: 32-bit words, MSB first, codes MSB first, chunks back to back)
word by word and emits up to one symbol per cycle.

The decode rule is the golden codec's: the code of length l is a symbol when
``first[l] <= code < first[l] + count[l]``, and it is ``symbols[index[l] + code - first[l]]``.
All lengths 1..L are tried at once on the top L bits of a bit buffer; the shortest that
matches is the code (a prefix code has at most one match among the lengths the buffer holds,
so a match on the bits already present is final even when fewer than L bits are buffered).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.errors import MacforgeError

__all__ = ["HuffmanDecoder", "HUFFMAN_MUTANTS", "WORD_BITS", "buffer_bits", "huffman_decoder", "huffman_members",
           "huffman_drive", "huffman_energy"]

WORD_BITS = 32
# Deliberate bugs for mutation testing of the testbench (one at a time):
# ``count_le``: the count check is ``code - first <= count`` (one code too many per length);
# ``skip_ignored``: a chunk's start bit offset is not applied.
HUFFMAN_MUTANTS = ("count_le", "skip_ignored")


def buffer_bits(max_len: int) -> int:
    """Bit-buffer width: a word is taken while at most ``W - 32`` bits are buffered, so after a
    cycle without a word more than ``W - 32 - L`` bits remain; ``W = 32 + 2L`` keeps at least
    L bits, i.e. one symbol per cycle whenever words are offered."""
    return WORD_BITS + 2 * max_len


def huffman_members(max_len: int, symbol_bits: int, count_bits: int) -> dict[str, wiring.Member]:
    """The decoder's ports (see ``HuffmanDecoder``)."""
    L, S = max_len, symbol_bits
    return {
        "len_we": In(1), "len_addr": In(unsigned(L.bit_length())), "len_first": In(unsigned(L)),
        "len_count": In(unsigned(S + 1)), "len_index": In(unsigned(S)),
        "sym_we": In(1), "sym_addr": In(unsigned(S)), "sym_data": In(unsigned(S)),
        "start": In(1), "skip": In(unsigned(5)), "n": In(unsigned(count_bits)),
        "in_valid": In(1), "in_word": In(unsigned(WORD_BITS)), "in_last": In(1), "out_ready": In(1),
        "in_ready": Out(1), "out_valid": Out(1), "out_sym": Out(unsigned(S)),
        "done": Out(1), "error": Out(1),
    }


def huffman_decoder(spec: object, mutant: str | None = None) -> "HuffmanDecoder":
    """The decoder of a huffman ``UnitSpec`` (parameters from its entropy format)."""
    hp = spec.huffman_params  # type: ignore[attr-defined]
    return HuffmanDecoder(hp["max_len"], hp["symbol_bits"], hp["count_bits"], mutant=mutant)


class HuffmanDecoder(wiring.Component):
    """Canonical-Huffman decoder of one chunk at a time.

    Parameters
    ----------
    max_len
        L, the longest code (1..32).
    symbol_bits
        S: symbols are 0..2^S - 1; the symbol memory has 2^S entries.
    count_bits
        Width of the symbol count of a chunk (``n``).
    mutant
        One of ``HUFFMAN_MUTANTS`` (mutation testing) or None.

    Ports (synchronous to ``clk``; ``rst`` synchronous, clears the stream state but not the
    code table):

    * code table, written at the clock edge: ``len_we``, ``len_addr`` (l = 1..L),
      ``len_first`` (L bits), ``len_count`` (S+1 bits), ``len_index`` (S bits);
      ``sym_we``, ``sym_addr``, ``sym_data`` (S bits each): symbol memory in canonical order.
    * ``start`` (with ``skip`` = the chunk's start bit within its first word, 0..31, and ``n``
      = its symbol count): drop any buffered bits and begin a chunk (priority over everything).
    * words: ``in_valid``, ``in_word`` (32 bits, stream bit 0 = bit 31), ``in_last`` (no word
      follows), ``in_ready``; a word moves at an edge where ``in_valid & in_ready``.
      ``in_ready`` depends on registers only.
    * symbols: ``out_valid``, ``out_sym``, ``out_ready``; a symbol moves at an edge where
      ``out_valid & out_ready``; ``out_valid``/``out_sym`` hold until then (back-pressure).
    * ``done``: the chunk's n symbols have all moved out. ``error`` (sticky until ``start`` or
      ``rst``): no code of at most L bits matches L buffered bits (corrupt stream), or fewer
      than L bits are left after the last word and none matches (truncated stream).

    Latency and throughput: a symbol whose code is in the buffer at edge t is in ``out_sym``
    after edge t; with words offered every cycle and ``out_ready`` high, one symbol per cycle.
    """

    def __init__(self, max_len: int, symbol_bits: int, count_bits: int = 16,
                 mutant: str | None = None) -> None:
        for what, v, lo, hi in (("max_len", max_len, 1, 32), ("symbol_bits", symbol_bits, 1, 16),
                                ("count_bits", count_bits, 1, 32)):
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                self._MustUse__silence = True
                raise MacforgeError(f"{what} must be an integer in {lo}..{hi}, not {v!r}")
        if mutant is not None and mutant not in HUFFMAN_MUTANTS:
            self._MustUse__silence = True
            raise MacforgeError(f"mutant must be one of {', '.join(HUFFMAN_MUTANTS)} or None, not {mutant!r}")
        self.max_len, self.symbol_bits, self.count_bits, self.mutant = max_len, symbol_bits, count_bits, mutant
        super().__init__(huffman_members(max_len, symbol_bits, count_bits))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        L, S = self.max_len, self.symbol_bits
        W = buffer_bits(L)
        vbits = W.bit_length()

        # code table: per length registers (reset_less: the table survives rst) + symbol memory
        first = [Signal(unsigned(L), name=f"first{l}", reset_less=True) for l in range(L + 1)]
        count = [Signal(unsigned(S + 1), name=f"count{l}", reset_less=True) for l in range(L + 1)]
        index = [Signal(unsigned(S), name=f"index{l}", reset_less=True) for l in range(L + 1)]
        with m.If(self.len_we):
            with m.Switch(self.len_addr):
                for l in range(1, L + 1):
                    with m.Case(l):
                        m.d.sync += [first[l].eq(self.len_first), count[l].eq(self.len_count),
                                     index[l].eq(self.len_index)]
        m.submodules.symbols = mem = Memory(shape=unsigned(S), depth=1 << S, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        m.d.comb += [wr.addr.eq(self.sym_addr), wr.data.eq(self.sym_data), wr.en.eq(self.sym_we)]

        # stream state
        buf = Signal(unsigned(W))  # MSB = next stream bit; bits below nvalid are 0
        nvalid = Signal(unsigned(vbits))
        remaining = Signal(unsigned(self.count_bits))
        skip_pending = Signal(unsigned(5))
        first_word = Signal()  # the next word is the chunk's first (skip applies)
        eos = Signal()
        error = Signal()
        out_valid = Signal()
        out_sym = Signal(unsigned(S))

        # all lengths at once on the top L bits
        top = buf[W - L:]
        found = Signal()
        length = Signal(unsigned(L.bit_length()))
        offset = Signal(unsigned(L))  # code - first of the matched length
        base = Signal(unsigned(S))  # index of the matched length
        matches = []
        for l in range(1, L + 1):
            code = top[L - l:]
            d = Signal(unsigned(L + 1), name=f"d{l}")
            m.d.comb += d.eq(code - first[l])
            ok = Signal(name=f"match{l}")
            in_range = (d <= count[l]) if self.mutant == "count_le" else (d < count[l])
            m.d.comb += ok.eq((nvalid >= l) & (code >= first[l]) & in_range)
            matches.append((l, ok, d))
        # priority: the shortest matching length (written last-to-first so the first wins)
        for l, ok, d in reversed(matches):
            with m.If(ok):
                m.d.comb += [found.eq(1), length.eq(l), offset.eq(d[:L]), base.eq(index[l])]
        m.d.comb += rd.addr.eq(base + offset)

        out_free = ~out_valid | self.out_ready
        fire = Signal()
        m.d.comb += fire.eq(found & (remaining != 0) & out_free & ~error)
        consume = Mux(fire, length, 0)
        rem_bits = Signal(unsigned(vbits))
        m.d.comb += rem_bits.eq(nvalid - consume)
        in_ready = Signal()
        m.d.comb += in_ready.eq((nvalid <= W - WORD_BITS) & (remaining != 0) & ~error & ~eos)
        take = Signal()
        m.d.comb += take.eq(self.in_valid & in_ready)
        skip = Mux(first_word, skip_pending, 0) if self.mutant != "skip_ignored" else Const(0, 5)
        word = Signal(unsigned(WORD_BITS))
        m.d.comb += word.eq(self.in_word << skip)
        shifted = Signal(unsigned(W))
        m.d.comb += shifted.eq(buf << consume)
        shamt = Signal(unsigned(vbits))  # where the word lands: right below the remaining bits
        m.d.comb += shamt.eq(W - WORD_BITS - rem_bits)
        placed = Signal(unsigned(W + W))
        m.d.comb += placed.eq(word << shamt)

        m.d.comb += [self.in_ready.eq(in_ready), self.out_valid.eq(out_valid), self.out_sym.eq(out_sym),
                     self.error.eq(error), self.done.eq((remaining == 0) & ~out_valid)]

        with m.If(self.start):
            m.d.sync += [buf.eq(0), nvalid.eq(0), remaining.eq(self.n), skip_pending.eq(self.skip),
                         first_word.eq(1), eos.eq(0), error.eq(0), out_valid.eq(0)]
        with m.Else():
            with m.If(take):
                m.d.sync += [buf.eq(shifted | placed[:W]), nvalid.eq(rem_bits + WORD_BITS - skip),
                             first_word.eq(0), eos.eq(self.in_last)]
            with m.Else():
                m.d.sync += [buf.eq(shifted), nvalid.eq(rem_bits)]
            with m.If(fire):
                m.d.sync += [out_valid.eq(1), out_sym.eq(rd.data), remaining.eq(remaining - 1)]
            with m.Elif(self.out_ready):
                m.d.sync += out_valid.eq(0)
            # corrupt: L bits and no code; truncated: the last word is in and nothing matches
            with m.If((remaining != 0) & ~found & ((nvalid >= L) | eos)):
                m.d.sync += error.eq(1)
        return m


# ----------------------------------------------------------------------------- energy
def huffman_drive(dut: HuffmanDecoder, table: object, stream: object, *, out_ready_p: float = 1.0,
                  seed: int = 0, max_cycles: int | None = None) -> tuple[dict[str, list[int]], list[int]]:
    """Run ``dut`` in amaranth.sim as its system would: load ``table`` (a ``CodeTable``) through
    the write ports, then decode ``stream`` (a golden ``Bitstream``) chunk by chunk, offering a
    word every cycle. Returns (every input port's value at every cycle, the symbols moved out);
    the inputs replay the same run open loop (gate-level energy simulation)."""
    from amaranth.sim import Simulator

    import numpy as np

    names = [n for n, m in dut.signature.members.items() if m.flow == In]
    cols: dict[str, list[int]] = {n: [] for n in names}
    got: list[int] = []
    rng = np.random.default_rng(seed)
    tb, st = table, stream
    limit = max_cycles or 64 * int(st.n_symbols) + 4096  # type: ignore[attr-defined]

    async def bench(ctx):  # type: ignore[no-untyped-def]
        cur = {n: 0 for n in names}

        async def cycle(**vals: int) -> None:
            for k in names:
                v = int(vals.get(k, 0))
                if v != cur[k]:
                    ctx.set(getattr(dut, k), v)
                    cur[k] = v
                cols[k].append(v)
            await ctx.tick()

        for l in range(1, tb.max_len + 1):  # type: ignore[attr-defined]
            await cycle(len_we=1, len_addr=l, len_first=int(tb.first[l]), len_count=int(tb.count[l]),  # type: ignore[attr-defined]
                        len_index=int(tb.index[l]) if tb.count[l] else 0)  # type: ignore[attr-defined]
        for i, s in enumerate(tb.symbols.tolist()):  # type: ignore[attr-defined]
            await cycle(sym_we=1, sym_addr=i, sym_data=int(s))
        words = st.words  # type: ignore[attr-defined]
        for c in range(st.n_chunks):  # type: ignore[attr-defined]
            off = int(st.offsets[c])  # type: ignore[attr-defined]
            await cycle(start=1, skip=off % 32, n=min(st.chunk, st.n_symbols - c * st.chunk))  # type: ignore[attr-defined]
            w = off // 32
            while True:
                if ctx.get(dut.done) or len(cols[names[0]]) > limit:
                    break
                ready = int(rng.random() < out_ready_p)
                valid = int(w < words.size)
                vals = {"in_valid": valid, "in_word": int(words[w]) if valid else 0,
                        "in_last": int(w == words.size - 1), "out_ready": ready}
                give = ctx.get(dut.out_valid) and ready
                sym = ctx.get(dut.out_sym)
                take = ctx.get(dut.in_ready) and valid
                await cycle(**vals)
                if give:
                    got.append(int(sym))
                if take:
                    w += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return cols, got


def huffman_energy(unit: object, data: str = "real", *, n_symbols: int = 4096, seed: int = 0,
                   delay: str = "zero") -> dict[str, object]:
    """Switching energy per decoded symbol of a huffman unit's gate-level netlist (the flow's
    generic cells, ``rtl.flow.netlist_activity``) on a stream decoded at full rate: ``real``
    = MiniLM fp32 weights coded with the unit's entropy format, ``random`` = the format's
    seeded reference tensor. The run includes loading the code table (L + symbols cycles) and
    one ``start`` per chunk; energy is per symbol of the whole run, pJ through the flow's
    anchor (``rtl.flow.pj_per_toggle_unit``)."""
    import numpy as np

    from models.formats import get_format, reference_tensor
    from models.golden._codec import decode_prefix, encode_stream
    from models.units import as_spec

    from ._export import verilog
    from ._units import ports
    from .flow import PJ_ANCHOR, netlist_activity, pj_per_toggle_unit, synth_gates
    from .flow._yosys import BUILD, cache_get, cache_key, cache_put, design_text

    spec = as_spec(unit)  # type: ignore[arg-type]
    if spec.kind != "huffman":
        raise MacforgeError(f"unit {spec.name} is a {spec.kind}, not a huffman decoder")
    if data not in ("real", "random"):
        raise MacforgeError(f"data must be 'real' or 'random', not {data!r}")
    fmt = get_format(spec.weight_format)
    if data == "real":
        from models import realdata

        w = next(v for k, v in realdata.minilm_weights().items() if v.ndim == 2).reshape(-1)[:n_symbols]
        desc = f"MiniLM fp32 weights (first 2-D tensor, {w.size} elements) coded with {fmt.name}"
    else:
        w = reference_tensor(fmt.reference)[:n_symbols]  # type: ignore[attr-defined]
        desc = f"{fmt.name}'s reference tensor ({fmt.reference}, seed 0, {w.size} elements)"  # type: ignore[attr-defined]
    g = fmt.code_tensor(w)  # type: ignore[attr-defined]
    st = encode_stream(g.symbols, g.table, chunk=spec.huffman_params["chunk"])
    cols, got = huffman_drive(huffman_decoder(spec), g.table, st)
    want, status, _ = decode_prefix(st, g.table)
    if status != "ok" or not np.array_equal(np.array(got), want):
        raise MacforgeError(f"{spec.name}: the RTL run feeding the energy measurement does not match golden")
    v = verilog(spec)
    gates = synth_gates(v, spec.name)
    stim = {k: np.array(x, dtype=np.int64) for k, x in cols.items()}
    key = cache_key("huffman-energy-v1", design_text(v), gates.netlist, data, str(n_symbols), str(seed), delay,
                    desc, str(len(got)), str(sum(map(sum, cols.values()))))
    hit = cache_get("energy", key)
    if hit is None:
        act = netlist_activity(BUILD.parent / gates.netlist, spec.name, ports(spec), stim, ops=len(got), delay=delay,
                               workdir=BUILD / "energy" / f"{spec.name}-{data}-{key}")
        hit = act.to_dict()
        cache_put("energy", key, hit)
    pj = pj_per_toggle_unit(delay)
    cycles = len(cols["start"])
    return {"unit": spec.name, "data": data, "symbols": len(got), "cycles": cycles,
            "symbols_per_cycle": len(got) / cycles, "bits_per_symbol": g.huffman_bits,
            "toggles_per_symbol": hit["toggles_per_op"], "energy_per_symbol_nand2": hit["energy_per_op_nand2"],
            "energy_per_symbol_pj": hit["energy_per_op_nand2"] * pj,
            "clock_energy_per_symbol_nand2": hit["clock_energy_per_op"], "pj_per_nand2_toggle": pj,
            "pj_anchor": PJ_ANCHOR, "nand2_eq": gates.nand2_eq, "stimulus": desc, "delay_model": delay,
            "note": "table load (L + symbols cycles) and one start per chunk included in the run",
            # the energy command's column names (a MAC's unit of work; here one decoded symbol)
            "per": "decoded symbol", "toggles_per_mac": hit["toggles_per_op"],
            "energy_per_mac_nand2": hit["energy_per_op_nand2"],
            "energy_per_mac_pj": hit["energy_per_op_nand2"] * pj}
