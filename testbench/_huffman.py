"""Testbench of the canonical-Huffman decoder unit (kind ``huffman``) against the golden codec.

A plan is a list of *cases*; each case loads a code table through the write ports and decodes
a bitstream made by ``models.golden.encode_stream``, chunk by chunk, each chunk started at its
offset (``start`` with the word address and bit ``skip`` of ``offsets[c]``), with seeded random
gaps in the word stream (``in_valid`` low) and back-pressure on the symbol stream
(``out_ready`` low). The expected symbols, and for a corrupt or truncated stream the symbols
before the point where decoding must stop, come from ``models.golden`` (``decode_prefix``).

Cases (``huffman_cases``): real weights (MiniLM fp32 tensors coded with the unit's entropy
format, its own table), a random histogram, one symbol, every symbol equally likely,
codes of exactly the maximum length L, a reset in the middle of a chunk (the table survives,
the chunk is restarted), a corrupt stream (a code that is not in an incomplete table) and a
truncated one (the last word is flagged early).

The harness (toplevel ``mf_tb``) plays a per-cycle control memory (``stim.hex``) and a word
memory (``words.hex``) into the decoder and records at every rising edge what crosses it
(word taken, symbol given and its value, done, error) into ``res.hex``; the cocotb test
(``testbench._huffman_cocotb``) only clocks it. Python then checks, per phase: the symbols
given equal the expected ones, in order, no more; ``done`` (or ``error``) at the end; no error
elsewhere; a symbol offered and not taken is held unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import MacforgeError
from models.formats import CodeTable, code_table, huffman_lengths
from models.golden._codec import Bitstream, decode_prefix, encode_stream
from models.units import UnitSpec, as_spec

__all__ = ["HuffmanCase", "huffman_cases", "run_huffman", "HUFFMAN_TOP"]

HUFFMAN_TOP = "mf_tb"  # the toplevel name testbench._harness.build_harness builds
WORD_ADDR_BITS = 20


@dataclass(frozen=True)
class HuffmanCase:
    """One table + stream. ``mode``: ``decode`` (every chunk), ``reset`` (reset after
    ``reset_after`` symbols of chunk 0, then decode every chunk), ``corrupt`` / ``truncated``
    (one chunk, decoding must stop where golden stops, with ``error``). ``last_word``: the
    word flagged ``in_last`` (default: the stream's last)."""

    name: str
    table: CodeTable
    stream: Bitstream
    mode: str = "decode"
    reset_after: int = 0
    last_word: int | None = None
    p_word: float = 0.8
    p_ready: float = 0.8


def _table_for(counts: np.ndarray, max_len: int) -> CodeTable:
    return code_table(huffman_lengths(np.asarray(counts, dtype=np.int64), max_len), max_len)


def _real_case(spec: UnitSpec, n: int, chunk: int) -> HuffmanCase:
    """MiniLM fp32 weights coded with the unit's entropy format (its table, its step)."""
    from models import realdata
    from models.formats import get_format

    fmt = get_format(spec.weight_format)
    tensors = [v for k, v in realdata.minilm_weights().items() if v.ndim == 2]
    w = np.concatenate([t.reshape(-1) for t in tensors[:2]])[:n]
    g = fmt.code_tensor(w)  # type: ignore[attr-defined]
    return HuffmanCase(f"real MiniLM weights ({fmt.name}, {g.huffman_bits:.3f} b/symbol)", g.table,
                       encode_stream(g.symbols, g.table, chunk=chunk), p_word=0.9, p_ready=0.9)


def huffman_cases(spec: UnitSpec, *, seed: int = 0, symbols: int = 6000, real: bool = True,
                  notes: list[str] | None = None) -> list[HuffmanCase]:
    """The plan of a huffman unit (see module docstring). ``symbols``: length of the random
    and real streams; chunks are the unit's chunk size or smaller (several per stream)."""
    hp = spec.huffman_params
    L, S = hp["max_len"], hp["symbol_bits"]
    nsym = 1 << S
    rng = np.random.default_rng(seed)
    chunk = min(hp["chunk"], max(64, symbols // 3))
    cases: list[HuffmanCase] = []
    if real:
        try:
            cases.append(_real_case(spec, symbols, chunk))
        except Exception as e:  # noqa: BLE001 - optional real data: say why it was skipped
            if notes is not None:
                notes.append(f"real data skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    # random histogram over a random subset of the alphabet
    counts = np.where(rng.random(nsym) < 0.6, rng.integers(1, 2000, nsym), 0)
    counts[rng.integers(nsym)] += 1
    cases.append(_case("random histogram", counts, symbols, L, chunk, rng, p_word=0.7, p_ready=0.6))
    one = np.zeros(nsym, dtype=np.int64)
    one[int(rng.integers(nsym))] = 10
    cases.append(_case("one symbol", one, 300, L, 97, rng))
    uniform_n = min(nsym, 1 << L)
    uni = np.zeros(nsym, dtype=np.int64)
    uni[:uniform_n] = 7
    cases.append(_case("uniform", uni, 1500, L, 256, rng, p_word=1.0, p_ready=1.0))
    # Fibonacci-like counts: the unlimited Huffman code would be a chain; the limit binds, and
    # the longest codes are exactly L bits
    k = min(nsym, L + 6)
    fib = np.zeros(nsym, dtype=np.int64)
    a, b = 1, 1
    for i in range(k):
        fib[i] = a
        a, b = b, a + b
    mx = _case("max-length codes", fib, 1500, L, 200, rng, p_word=1.0, p_ready=1.0)
    if int(mx.table.lengths.max()) != L:
        raise MacforgeError(f"max-length case: longest code {int(mx.table.lengths.max())}, not {L}")
    cases.append(mx)
    base = cases[1]
    cases.append(HuffmanCase("reset mid-chunk", base.table, base.stream, mode="reset",
                             reset_after=min(37, base.stream.chunk - 1), p_word=0.9, p_ready=0.9))
    # corrupt: the one-symbol code "0" is incomplete; a 1 bit where a code starts is no code
    lone = _case("corrupt", one, 200, L, 200, rng)
    words = lone.stream.words.copy()
    bad_bit = 123  # codes are 1 bit: bit 123 starts symbol 123
    words[bad_bit // 32] |= np.uint32(1 << (31 - bad_bit % 32))
    cases.append(HuffmanCase("corrupt stream", lone.table, Bitstream(words, lone.stream.n_bits, 200, 200,
                                                                     lone.stream.offsets), mode="corrupt"))
    # truncated: one chunk, the stream ends (in_last) a few words early
    one_chunk = _case("truncated", counts, 800, L, 800, rng)
    cut = max(1, one_chunk.stream.words.size - 3)
    trunc = Bitstream(one_chunk.stream.words[:cut].copy(), 32 * cut, 800, 800, one_chunk.stream.offsets)
    cases.append(HuffmanCase("truncated stream", one_chunk.table, trunc, mode="truncated", last_word=cut - 1))
    return cases


def _case(name: str, counts: np.ndarray, n: int, max_len: int, chunk: int, rng: np.random.Generator,
          **kw: Any) -> HuffmanCase:
    """A stream of ``n`` symbols drawn from ``counts`` (every used symbol appears at least once)."""
    table = _table_for(counts, max_len)
    used = np.flatnonzero(np.asarray(counts) > 0)
    p = np.asarray(counts, dtype=np.float64)[used]
    sym = used[rng.choice(used.size, n, p=p / p.sum())]
    if n >= used.size:
        sym[rng.permutation(n)[: used.size]] = used  # each used symbol at least once
    return HuffmanCase(name, table, encode_stream(sym, table, chunk=chunk), **kw)


# ----------------------------------------------------------------------------- layout
def _fields(spec: UnitSpec) -> list[tuple[str, int]]:
    hp = spec.huffman_params
    L, S, C = hp["max_len"], hp["symbol_bits"], hp["count_bits"]
    A = WORD_ADDR_BITS
    return [("rst", 1), ("start", 1), ("skip", 5), ("n", C), ("in_valid", 1), ("out_ready", 1), ("wload", 1),
            ("wptr", A), ("lastp", A), ("len_we", 1), ("len_addr", L.bit_length()), ("len_first", L),
            ("len_count", S + 1), ("len_index", S), ("sym_we", 1), ("sym_addr", S), ("sym_data", S)]


def _res_fields(spec: UnitSpec) -> list[tuple[str, int]]:
    S = spec.huffman_params["symbol_bits"]
    return [("take", 1), ("give", 1), ("out_sym", S), ("out_valid", 1), ("in_ready", 1), ("error", 1), ("done", 1)]


def _pack(fields: list[tuple[str, int]], cols: dict[str, np.ndarray]) -> list[int]:
    n = len(next(iter(cols.values())))
    out = [0] * n
    shift = 0
    for name, w in reversed(fields):  # the first field is the most significant
        v = cols[name].astype(np.int64).tolist()
        mask = (1 << w) - 1
        for i in range(n):
            out[i] |= (v[i] & mask) << shift
        shift += w
    return out


def _unpack(fields: list[tuple[str, int]], words: list[int]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    shift = 0
    for name, w in reversed(fields):
        mask = (1 << w) - 1
        out[name] = np.array([(x >> shift) & mask for x in words], dtype=np.int64)
        shift += w
    return out


def _harness_verilog(spec: UnitSpec, depth: int, wdepth: int) -> str:
    f = _fields(spec)
    r = _res_fields(spec)
    sw, rw = sum(w for _, w in f), sum(w for _, w in r)
    pos, sl = sw, {}
    for name, w in f:
        sl[name] = f"cur[{pos - 1}:{pos - w}]" if w > 1 else f"cur[{pos - 1}]"
        pos -= w
    A = WORD_ADDR_BITS
    S = spec.huffman_params["symbol_bits"]
    conn = {k: sl[k] for k in ("rst", "start", "skip", "n", "out_ready", "len_we", "len_addr", "len_first",
                               "len_count", "len_index", "sym_we", "sym_addr", "sym_data")}
    conn.update(in_valid="in_valid_eff", in_word=f"words[wptr[{(wdepth - 1).bit_length() - 1}:0]]",
                in_last="in_last", in_ready="in_ready", out_valid="out_valid", out_sym="out_sym", done="done",
                error="error", clk="clk")
    ports = ",\n    ".join(f".{k}({v})" for k, v in conn.items())
    return f"""// generated by testbench._huffman for {spec.name}: plays stim.hex / words.hex, records res.hex
module {HUFFMAN_TOP}(input clk, input go, output reg finished);
  reg [{sw - 1}:0] stim [0:{depth - 1}];
  reg [31:0] words [0:{wdepth - 1}];
  reg [{rw - 1}:0] res [0:{depth - 1}];
  reg [31:0] ncyc [0:0];
  reg [{sw - 1}:0] cur;
  reg active;
  integer t, cidx;
  reg [{A - 1}:0] wptr, lastp;
  wire in_valid_eff = {sl['in_valid']} && (wptr <= lastp);
  wire in_last = (wptr == lastp);
  wire in_ready, out_valid, done, error;
  wire [{S - 1}:0] out_sym;
  wire take = in_valid_eff && in_ready;
  wire give = out_valid && {sl['out_ready']} && !{sl['rst']} && !{sl['start']};
  {spec.name} dut(
    {ports});
  initial begin
    $readmemh("stim.hex", stim);
    $readmemh("words.hex", words);
    $readmemh("n.hex", ncyc);
    cur = 0; active = 1'b0; t = 0; cidx = 0; wptr = 0; lastp = 0; finished = 1'b0;
  end
  always @(negedge clk) begin
    if (go && !finished) begin
      if (t == ncyc[0]) begin
        finished = 1'b1; active = 1'b0; cur = 0;
        $writememh("res.hex", res);
      end else begin
        cur = stim[t]; cidx = t; active = 1'b1; t = t + 1;
      end
    end
  end
  // what crosses the decoder at this edge (values just before it)
  always @(posedge clk) begin
    if (active) begin
      res[cidx] <= {{take, give, out_sym, out_valid, in_ready, error, done}};
      if ({sl['wload']}) begin wptr <= {sl['wptr']}; lastp <= {sl['lastp']}; end
      else if (take) wptr <= wptr + 1'b1;
    end
  end
endmodule
"""


# ----------------------------------------------------------------------------- the plan
@dataclass
class _Phase:
    name: str
    case: str
    lo: int
    hi: int
    expected: np.ndarray
    expect_error: bool = False
    prefix_only: bool = False  # interrupted by a reset: the symbols given are a prefix
    full_rate: bool = False  # words offered and out_ready high every cycle


@dataclass
class _Plan:
    cols: dict[str, list[int]]
    words: list[int]
    phases: list[_Phase] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        return len(self.cols["rst"])


def _emit(plan: _Plan, repeat: int = 1, **vals: int) -> int:
    at = plan.cycles
    for k in plan.cols:
        plan.cols[k].extend([int(vals.get(k, 0))] * repeat)
    return at


def _load_table(plan: _Plan, table: CodeTable) -> None:
    for l in range(1, table.max_len + 1):
        _emit(plan, len_we=1, len_addr=l, len_first=int(table.first[l]), len_count=int(table.count[l]),
              len_index=int(table.index[l]) if table.count[l] else 0)
    for i, s in enumerate(table.symbols.tolist()):
        _emit(plan, sym_we=1, sym_addr=i, sym_data=int(s))


def _chunk_phase(plan: _Plan, case: HuffmanCase, c: int, base: int, last: int, rng: np.random.Generator,
                 expected: np.ndarray, name: str, *, stop_after: int | None = None,
                 expect_error: bool = False) -> None:
    st = case.stream
    off = int(st.offsets[c])
    n = min(st.chunk, st.n_symbols - c * st.chunk)
    _emit(plan, start=1, skip=off % 32, n=n, wload=1, wptr=base + off // 32, lastp=last)
    lo = plan.cycles
    if stop_after is not None:
        cycles = stop_after
    else:
        # enough cycles for the chunk at the offered rates (a code needs <= L bits: at worst one
        # symbol per word), then a tail where nothing may happen
        per = 1.0 / min(case.p_ready, case.p_word)
        cycles = int(n * per * 1.5) + 64
    valid = (rng.random(cycles) < case.p_word).astype(np.int64)
    ready = (rng.random(cycles) < case.p_ready).astype(np.int64)
    for t in range(cycles):
        _emit(plan, in_valid=int(valid[t]), out_ready=int(ready[t]))
    plan.phases.append(_Phase(name, case.name, lo, plan.cycles, expected, expect_error, stop_after is not None,
                              case.p_word == 1.0 and case.p_ready == 1.0))


def build_plan(spec: UnitSpec, cases: list[HuffmanCase], seed: int = 0) -> _Plan:
    names = [n for n, _ in _fields(spec)]
    plan = _Plan({k: [] for k in names}, [])
    rng = np.random.default_rng(seed + 1)
    _emit(plan, 2, rst=1)
    for case in cases:
        st = case.stream
        base = len(plan.words)
        plan.words.extend(int(w) for w in st.words.tolist())
        last = base + (case.last_word if case.last_word is not None else st.words.size - 1)
        _load_table(plan, case.table)
        got, status, _ = decode_prefix(st, case.table)
        if case.mode in ("corrupt", "truncated"):
            want = {"corrupt": "corrupt", "truncated": "truncated"}[case.mode]
            if status != want or st.n_chunks != 1:
                raise MacforgeError(f"case {case.name}: golden decode says {status}, not {want} (one chunk)")
            _chunk_phase(plan, case, 0, base, last, rng, got, f"{case.name}: symbols until the error",
                         expect_error=True)
            continue
        if status != "ok":
            raise MacforgeError(f"case {case.name}: golden decode failed ({status})")
        if case.mode == "reset":
            # stop mid-chunk: a reset, then the whole stream again with the table kept
            _chunk_phase(plan, case, 0, base, last, rng, got[: st.chunk], f"{case.name}: before the reset",
                         stop_after=case.reset_after)
            _emit(plan, rst=1)
        for c in range(st.n_chunks):
            _chunk_phase(plan, case, c, base, last, rng, got[c * st.chunk:(c + 1) * st.chunk],
                         f"{case.name}: chunk {c}")
    _emit(plan, 2)
    return plan


# ----------------------------------------------------------------------------- run & check
@dataclass
class _Shim:  # what testbench._harness.build_harness reads of a harness
    unit: str
    digest: str
    sources: tuple[Path, ...]


def _throughput(plan: _Plan, res: dict[str, np.ndarray]) -> str | None:
    """Symbols per cycle over the full-rate phases: from the cycle after ``start`` to the edge
    that moves the chunk's last symbol."""
    n = cyc = 0
    for ph in plan.phases:
        if ph.full_rate and ph.expected.size:
            gives = np.flatnonzero(res["give"][ph.lo:ph.hi])
            if gives.size:
                n += int(gives.size)
                cyc += int(gives[-1]) + 1
    return f"full rate (a word offered and out_ready high every cycle): {n} symbols in {cyc} cycles " \
           f"({n / cyc:.3f} symbols/cycle, start-up included)" if cyc else None


def _check(plan: _Plan, res: dict[str, np.ndarray]) -> tuple[int, list[dict[str, Any]], int]:
    """(mismatches, first failures, symbols compared)."""
    fails: list[dict[str, Any]] = []
    bad = 0
    compared = 0
    for ph in plan.phases:
        sl = slice(ph.lo, ph.hi)
        give = res["give"][sl].astype(bool)
        got = res["out_sym"][sl][give]
        exp = ph.expected
        compared += int(exp.size)
        problems = []
        if ph.prefix_only:
            if got.size > exp.size or not np.array_equal(got, exp[: got.size]):
                problems.append("symbols before the reset are not a prefix of golden")
        else:
            if got.size != exp.size or not np.array_equal(got, exp):
                k = int(np.argmax(got[: min(got.size, exp.size)] != exp[: min(got.size, exp.size)])) \
                    if got.size and exp.size and not np.array_equal(got[: min(got.size, exp.size)],
                                                                    exp[: min(got.size, exp.size)]) else min(got.size, exp.size)
                problems.append(f"{got.size} symbols given, {exp.size} expected; first difference at symbol {k}"
                                + (f" (expected {int(exp[k])}, got {int(got[k])})" if k < min(got.size, exp.size) else ""))
            end_err = bool(res["error"][ph.hi - 1])
            if ph.expect_error and not end_err:
                problems.append("error not flagged")
            if not ph.expect_error:
                if res["error"][sl].any():
                    problems.append(f"error flagged at cycle {ph.lo + int(np.argmax(res['error'][sl]))}")
                if not res["done"][ph.hi - 1]:
                    problems.append("done not reached")
        # back-pressure: a symbol offered and not taken is held unchanged at the next edge
        ov, osym = res["out_valid"][sl], res["out_sym"][sl]
        held = (ov[:-1] == 1) & (give[:-1] == 0)
        broke = held & ((ov[1:] != 1) | (osym[1:] != osym[:-1]))
        if broke.any():
            problems.append(f"an offered symbol changed before it was taken (cycle {ph.lo + int(np.argmax(broke))})")
        if problems:
            bad += len(problems)
            if len(fails) < 8:
                fails.append({"cycle": ph.lo, "instance": "unit", "onset": True, "section": ph.name,
                              "input_cycle": ph.lo, "inputs": {"cycles": f"{ph.lo}..{ph.hi - 1}"},
                              "expected": "golden decode_prefix", "got": "; ".join(problems)})
    return bad, fails, compared


def run_huffman(unit: UnitSpec | str, *, simulator: str = "icarus", seed: int = 0, symbols: int = 6000,
                real_data: bool = True, mutant: str | None = None, cases: list[HuffmanCase] | None = None,
                build_root: Path | str | None = None, keep: bool = False) -> Any:
    """Simulate a huffman unit on its plan (``huffman_cases``) and check it against the golden
    codec. Returns a ``testbench.SimResult`` (vectors = cycles, checked = symbols compared,
    mismatches = failed checks)."""
    import rtl
    from rtl._huffman import huffman_decoder

    from ._harness import _write_if_changed, build_harness
    from ._run import SimResult, default_build_root
    from ._sims import check_simulator, make_runner

    t0 = time.perf_counter()
    spec = as_spec(unit)
    if spec.kind != "huffman":
        raise MacforgeError(f"unit {spec.name} is a {spec.kind}, not a huffman decoder")
    check_simulator(simulator)
    notes: list[str] = []
    cs = cases if cases is not None else huffman_cases(spec, seed=seed, symbols=symbols, real=real_data,
                                                       notes=notes)
    plan = build_plan(spec, cs, seed)
    depth = 1 << max(4, (plan.cycles - 1).bit_length())
    wdepth = 1 << max(4, (max(1, len(plan.words)) - 1).bit_length())
    if wdepth > 1 << WORD_ADDR_BITS:
        raise MacforgeError(f"plan holds {len(plan.words)} words, above the harness's 2^{WORD_ADDR_BITS}")
    dut_v = (rtl.verilog(spec) if mutant is None else
             rtl.verilog(huffman_decoder(spec, mutant=mutant), name=spec.name))
    top = _harness_verilog(spec, depth, wdepth)
    h = hashlib.sha256((dut_v + "\0" + top).encode()).hexdigest()[:16]
    root = Path(build_root) if build_root is not None else default_build_root()
    src = root / "src" / f"{spec.name}-{h}"
    src.mkdir(parents=True, exist_ok=True)
    paths = (_write_if_changed(src / f"{spec.name}.v", dut_v), _write_if_changed(src / f"{HUFFMAN_TOP}.v", top))
    bdir, build_s = build_harness(_Shim(spec.name, h, paths), simulator, root)  # type: ignore[arg-type]
    run_dir = root / "runs" / f"{simulator}-{spec.name}-huffman-{os.getpid()}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    fields = _fields(spec)
    sdig = -(-sum(w for _, w in fields) // 4)
    packed = _pack(fields, {k: np.array(v) for k, v in plan.cols.items()})
    (run_dir / "stim.hex").write_text("\n".join(format(x, f"0{sdig}x") for x in packed) + "\n")
    (run_dir / "words.hex").write_text("\n".join(format(x, "08x") for x in plan.words) + "\n")
    (run_dir / "n.hex").write_text(format(plan.cycles, "08x") + "\n")
    log = run_dir / "sim.log"
    try:
        make_runner(simulator).test(test_module="testbench._huffman_cocotb", hdl_toplevel=HUFFMAN_TOP,
                                    hdl_toplevel_lang="verilog", build_dir=bdir, test_dir=run_dir,
                                    results_xml=str(run_dir / "results.xml"), log_file=log)
    except (SystemExit, RuntimeError) as e:
        tail = log.read_text(errors="replace").strip().splitlines()[-20:] if log.exists() else []
        raise RuntimeError(f"{simulator} run of {spec.name} failed ({e!r}); log: {log}\n" + "\n".join(tail)) from None
    timing_file = run_dir / "mf_timing.json"
    if not timing_file.exists():
        raise RuntimeError(f"{simulator} run of {spec.name} did not finish; log: {log}")
    sim_s = float(json.loads(timing_file.read_text())["sim_seconds"])
    lines = [ln.strip() for ln in (run_dir / "res.hex").read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("//")][: plan.cycles]
    hexd = set("0123456789abcdefABCDEF")
    # x/z is allowed only before the first edge of the initial reset (memory read data, no table yet)
    xs = [i for i, ln in enumerate(lines) if not set(ln) <= hexd]
    lines = [ln if set(ln) <= hexd else "0" * len(ln) for ln in lines]
    if len(lines) != plan.cycles or any(i >= 1 for i in xs):
        mism, compared = 1, 0
        fails = [{"cycle": 0, "instance": "unit", "onset": True, "section": "all", "input_cycle": 0, "inputs": {},
                  "expected": f"{plan.cycles} result words", "got": "results missing or containing x/z"}]
    else:
        res = _unpack(_res_fields(spec), [int(ln, 16) for ln in lines])
        mism, fails, compared = _check(plan, res)
        tp = _throughput(plan, res)
        if tp:
            notes.append(tp)
    if not keep and not mism:
        shutil.rmtree(run_dir, ignore_errors=True)
    notes.append(f"{len(cs)} cases ({', '.join(c.name for c in cs)}); {len(plan.phases)} chunk phases; "
                 f"{compared} symbols compared with models.golden decode_prefix")
    return SimResult(unit=spec.name, simulator=simulator, vectors=plan.cycles, mismatches=mism,
                     seconds=time.perf_counter() - t0, method="batched", failures=fails, checked=compared,
                     instances=["unit" if mutant is None else f"unit+mutant:{mutant}"], exhaustive=False,
                     build_seconds=build_s, sim_seconds=sim_s, notes=notes,
                     run_dir=str(run_dir) if (keep or mism) else None)
