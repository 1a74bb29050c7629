"""The generated Verilog harness around one or more instances of a unit, and its cached build.

The harness (toplevel ``mf_tb``) holds ``lanes`` copies of the unit's instance set (the unit
itself and its overflow variants, all instances of one lane fed the same inputs) and runs in one
of two modes:

* batched (``ext`` = 0): the harness clocks itself. Each toggle of ``go`` runs one chunk: it
  reads ``n_cycles`` stimulus records from ``stim.bin`` (``$fread``: one big-endian record per
  cycle holding every lane's word) and, unless ``dump_all``, the expected result words from
  ``exp.bin``; then it drives word k into each lane, makes clock edge k from its own ``#1``
  delays (Verilator ``--timing``), compares every lane's outputs after edge k with the expected
  word (4-state ``!==``, only the first ``lane_len[p]`` cycles of lane p, from ``lanes.hex``),
  counts the lane-cycles that differ in ``n_bad``, and increments ``n_done``. The outputs of every
  cycle (every output port lane of every instance: ``acc`` of a MAC unit; out_valid, out_row, c
  of a systolic array) are written to ``res.hex`` (``$writememh``) only when something differed
  or ``dump_all`` is set, for the parent to analyse. Python is involved once per chunk; no clock
  edge happens between chunks, so a stream continues across them unchanged.
* naive (``ext`` = 1): lane 0 takes ``ext_stim`` and cocotb's clock on ``clk``; cocotb writes the
  word and reads ``res_now`` once per cycle.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from models.errors import MacforgeError
from models.units import UnitSpec

from ._layout import ResultLayout, StimLayout, result_layout, stim_layout
from ._sims import make_runner, simulator_version

__all__ = ["CHUNK_DEPTH", "HARNESS_TOP", "MAX_LANES", "Harness", "Instance", "build_harness",
           "c_record_bytes", "make_harness", "result_fields"]

HARNESS_TOP = "mf_tb"
# Bump when the way a harness is built changes (flags, runner fixes): old builds are redone.
BUILD_FLOW = 3
# Result/stimulus memory depth: cycles per $readmemh chunk. 2^17 holds an exhaustive
# int8 × int8 pass (65536 pairs) plus its directed sections in one chunk.
CHUNK_DEPTH = 1 << 17
# Most parallel lanes a harness holds (each a copy of the unit's instances on its own part of
# the stream): the simulator's per-time-step cost is paid once for all of them.
MAX_LANES = 8

# Verilator on Amaranth's Verilog: width warnings are by design (implicit extension), and the
# harness's memories are wider than Verilator likes to inline.
VERILATOR_ARGS = (
    "-Wno-fatal",
    "-Wno-WIDTH",
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    "-Wno-UNOPTFLAT",
    "-Wno-CASEINCOMPLETE",
    "-Wno-PROCASSINIT",
    "-O3",
    # the batched harness makes its own clock edges from #1 delays (no cocotb clock callback
    # per edge); cocotb's Verilator main loop runs --timing designs (eventsPending/nextTimeSlot)
    "--timing",
)


@dataclass(frozen=True)
class Instance:
    """One unit instance in the harness: its spec, injected fault and Verilog module name."""

    label: str
    spec: UnitSpec
    module: str
    fault: object | None = None


@dataclass(frozen=True)
class Harness:
    unit: str
    instances: tuple[Instance, ...]
    stim: StimLayout
    result: ResultLayout
    depth: int
    sources: tuple[Path, ...]
    digest: str
    # (instance index, output port, lane) of each result field (result.widths[i] bits)
    fields: tuple[tuple[int, str, int], ...] = ()
    # parallel copies of the instances; each lane has its own stimulus and result word
    lanes: int = 1

    @property
    def stim_bytes(self) -> int:
        """Bytes of one lane's stimulus word in a ``stim.bin`` record."""
        return -(-self.stim.bits // 8)


def _ports(spec: UnitSpec) -> list[dict[str, object]]:
    import rtl

    return rtl.ports(spec)


def _unit_verilog(inst: Instance) -> str:
    import rtl

    spec = dataclasses.replace(inst.spec, name=inst.module)  # the top module is named spec.name
    return rtl.verilog(spec, fault=inst.fault)  # type: ignore[arg-type]


def result_fields(
    insts: tuple[Instance, ...] | list[Instance],
) -> tuple[list[tuple[int, str, int]], list[int], list[bool]]:
    """The result word's fields: (instance index, output port, lane) with width and signedness,
    every output port lane of every instance in port order (for a MAC unit: each ``acc``)."""
    fields, widths, signs = [], [], []
    for k, inst in enumerate(insts):
        for p in _ports(inst.spec):
            if p["direction"] != "out":
                continue
            lanes = int(p.get("lanes", 1))  # type: ignore[call-overload]
            lw = int(p["width"]) // lanes  # type: ignore[call-overload]
            for lane in range(lanes):
                fields.append((k, str(p["name"]), lane))
                widths.append(lw)
                signs.append(bool(p["signed"]))
    return fields, widths, signs


def _load(mem: str, path: str, ind: str) -> list[str]:
    """Verilog that reads ``n_cycles`` binary records of ``path`` into memory ``mem``. Verilator's
    ``$fread`` takes one ``fgetc`` per byte (then half the run time): there the records are the
    memory's own C++ layout (``c_record_bytes``), read by one ``fread``."""
    c = (
        f'$c("{{ std::FILE* f = std::fopen(\\"{path}\\", \\"rb\\"); if (f) {{ '
        f'if (std::fread(&(", {mem}, "[0]), sizeof(", {mem}, "[0]), ", n_cycles, ", f)) {{}} '
        f'std::fclose(f); }} }}");'
    )
    return [
        "`ifdef VERILATOR",
        ind + c,
        "`else",
        f'{ind}fd = $fopen("{path}", "rb");',
        f"{ind}nread = $fread({mem}, fd, 0, n_cycles);",
        f"{ind}$fclose(fd);",
        "`endif",
    ]


def c_record_bytes(width: int) -> int:
    """Bytes of one element of a Verilator memory ``width`` bits wide (C type, then 32-bit words)."""
    for size in (1, 2, 4, 8):
        if width <= 8 * size:
            return size
    return 4 * -(-width // 32)


def _harness_verilog(
    h_unit: str,
    insts: tuple[Instance, ...],
    stim: StimLayout,
    res: ResultLayout,
    fields: list[tuple[int, str, int]],
    depth: int,
    lanes: int,
) -> str:
    sw, rw = stim.bits, res.bits
    sb = 8 * -(-sw // 8)  # byte-aligned lane stimulus words in the binary records
    eb = 8 * -(-(lanes * rw) // 8)  # expected record: the lanes' result words, packed
    outs = [[p for p in _ports(i.spec) if p["direction"] == "out"] for i in insts]
    if not all(outs):
        raise MacforgeError(f"unit {h_unit} has no output port")

    def lane_name(k: int, port: str, lane: int) -> str:
        p = next(q for q in outs[k] if q["name"] == port)
        return port if int(p.get("lanes", 1)) == 1 else f"{port}[{lane}]"  # type: ignore[call-overload]

    lines = [
        f"// Testbench harness for {h_unit}: generated by macforge testbench; do not edit.",
        f"// {lanes} lane(s); lane stimulus word ({sw} bits, LSB first): "
        + ", ".join(f"{f.name}[{f.offset}+:{f.width}]" for f in stim.fields),
        f"// Lane result word ({rw} bits): "
        + ", ".join(f"{insts[k].label}.{lane_name(k, p, ln)}[{o}+:{w}]"
                    for (k, p, ln), o, w in zip(fields, res.offsets, res.widths)),
        f"module {HARNESS_TOP} (",
        "  input  wire clk,",
        "  input  wire go,",
        "  input  wire [31:0] n_cycles,",
        "  input  wire ext,",
        "  input  wire dump_all,",
        f"  input  wire [{sw - 1}:0] ext_stim,",
        f"  output wire [{rw - 1}:0] res_now,",
        "  output reg  [31:0] n_done,",
        "  output reg  [31:0] n_bad",
        ");",
        f"  localparam DEPTH = {depth};",
        f"  localparam LANES = {lanes};",
        f"  reg [{lanes * sb - 1}:0] stim [0:DEPTH-1] /*verilator public_flat_rw*/;",
        f"  reg [{eb - 1}:0] expw [0:DEPTH-1] /*verilator public_flat_rw*/;",
        f"  reg [{lanes * rw - 1}:0] res [0:DEPTH-1];",
        "  reg [31:0] lane_len [0:LANES-1];",
        f"  reg [{lanes * sb - 1}:0] s_int;",
        f"  wire [{lanes * rw - 1}:0] r_all;",
        "  reg clk_int;",
        "  integer i, p, fd, nread;",
        "  initial begin",
        "    clk_int = 1'b0; s_int = 0; n_done = 0; n_bad = 0;",
        "  end",
        "  // naive: cocotb's clock; batched: the harness's own",
        "  wire clk_u = ext ? clk : clk_int;",
    ]
    for ln in range(lanes):
        src = f"s_int[{ln * sb + sw - 1}:{ln * sb}]"
        drive = f"ext ? ext_stim : {src}" if ln == 0 else f"ext ? {sw}'b0 : {src}"
        lines.append(f"  wire [{sw - 1}:0] s_l{ln} = {drive};")
        for f in stim.fields:
            lines.append(
                f"  wire [{f.width - 1}:0] in_{f.name}_l{ln} = "
                f"s_l{ln}[{f.offset + f.width - 1}:{f.offset}];"
            )
        for k, inst in enumerate(insts):
            for p in outs[k]:
                lines.append(f"  wire [{int(p['width']) - 1}:0] {p['name']}_{k}_l{ln};")  # type: ignore[call-overload]
            conns = (
                [".clk(clk_u)"]
                + [f".{f.name}(in_{f.name}_l{ln})" for f in stim.fields]
                + [f".{p['name']}({p['name']}_{k}_l{ln})" for p in outs[k]]
            )
            lines.append(f"  {inst.module} u{k}_l{ln} ({', '.join(conns)});  // {inst.label}, lane {ln}")
        parts = []
        for i in reversed(range(len(fields))):
            k, port, lane = fields[i]
            nxt = res.offsets[i + 1] if i + 1 < len(fields) else res.bits
            pad = nxt - res.offsets[i] - res.widths[i]
            if pad:
                parts.append(f"{pad}'b0")
            p = next(q for q in outs[k] if q["name"] == port)
            if int(p.get("lanes", 1)) == 1:  # type: ignore[call-overload]
                parts.append(f"{port}_{k}_l{ln}")
            else:
                w = res.widths[i]
                parts.append(f"{port}_{k}_l{ln}[{(lane + 1) * w - 1}:{lane * w}]")
        lines.append(f"  assign r_all[{(ln + 1) * rw - 1}:{ln * rw}] = {{{', '.join(parts)}}};")
    lines += [
        f"  assign res_now = r_all[{rw - 1}:0];",
        "  // one chunk per toggle of go: word i drives edge i; the outputs after edge i are",
        "  // compared with expected word i (lane p: its first lane_len[p] cycles)",
        "  // (the first change of go, z/x -> 0 at time 0 with no chunk asked, runs nothing)",
        "  always @(go) if (n_cycles != 0) begin : run_chunk",
        *_load("stim", "stim.bin", "    "),
        "    if (!dump_all) begin",
        *_load("expw", "exp.bin", "      "),
        '      $readmemh("lanes.hex", lane_len);',
        "    end",
        "    n_bad = 0;",
        "    for (i = 0; i < n_cycles; i = i + 1) begin",
        "      s_int = stim[i];",
        "      #1 clk_int = 1'b1;",
        "      #1 clk_int = 1'b0;",
        "      res[i] = r_all;",
        "      // one wide compare; lane by lane only where it differs (or a lane is done)",
        f"      if (!dump_all && r_all !== expw[i][{lanes * rw - 1}:0])",
        "        for (p = 0; p < LANES; p = p + 1)",
        f"          if (i < lane_len[p] && r_all[p * {rw} +: {rw}] !== expw[i][p * {rw} +: {rw}])",
        "            n_bad = n_bad + 1;",
        "    end",
        "    s_int = 0;",
        '    if (dump_all || n_bad != 0) $writememh("res.hex", res, 0, n_cycles - 1);',
        "    n_done = n_done + 1;",
        "  end",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def make_harness(
    unit: str, instances: list[Instance], root: Path, depth: int = CHUNK_DEPTH, lanes: int = 1
) -> Harness:
    """Write the instances' Verilog and the harness (``lanes`` copies of the instances) under
    ``root/src/<unit>-<digest>/``."""
    if not instances:
        raise MacforgeError("a harness needs at least one unit instance")
    if not 1 <= lanes <= MAX_LANES:
        raise MacforgeError(f"a harness holds 1..{MAX_LANES} lanes, not {lanes}")
    ports = _ports(instances[0].spec)
    stim = stim_layout(ports)
    for inst in instances[1:]:
        if stim_layout(_ports(inst.spec)) != stim:
            raise MacforgeError(f"instance {inst.label} of {unit} has different input ports")
    insts = tuple(instances)
    fields, widths, signs = result_fields(insts)
    # MAC units: every field (acc) is signed, the layout of before fields had signs
    res = result_layout(widths, None if all(signs) else signs)
    texts = [_unit_verilog(i) for i in insts]
    top = _harness_verilog(unit, insts, stim, res, fields, depth, lanes)
    h = hashlib.sha256()
    for t in [*texts, top]:
        h.update(t.encode())
        h.update(b"\0")
    digest = h.hexdigest()[:16]
    src = root / "src" / f"{unit}-{digest}"
    src.mkdir(parents=True, exist_ok=True)
    paths = []
    for inst, text in zip(insts, texts):
        paths.append(_write_if_changed(src / f"{inst.module}.v", text))
    paths.append(_write_if_changed(src / f"{HARNESS_TOP}.v", top))
    return Harness(unit, insts, stim, res, depth, tuple(paths), digest, tuple(fields), lanes)


def _write_if_changed(path: Path, text: str) -> Path:
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path`` (pytest-xdist workers may build the same harness)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_harness(h: Harness, simulator: str, root: Path) -> tuple[Path, float]:
    """Build (or reuse) the simulator model of ``h`` under ``root/<simulator>/<unit>-<digest>``.
    Returns (build dir, seconds spent building; 0 when reused)."""
    bdir = root / simulator / f"{h.unit}-{h.digest}"
    stamp = bdir / "macforge-build.json"
    want = {
        "flow": BUILD_FLOW,
        "digest": h.digest,
        "simulator": simulator,
        "version": simulator_version(simulator),
        "args": list(VERILATOR_ARGS) if simulator == "verilator" else [],
    }
    with _locked(root / simulator / f".{h.unit}-{h.digest}.lock"):
        if stamp.exists():
            try:
                if json.loads(stamp.read_text()) == want:
                    return bdir, 0.0
            except ValueError:
                pass
        t0 = time.perf_counter()
        bdir.mkdir(parents=True, exist_ok=True)
        runner = make_runner(simulator)
        log = bdir / "build.log"
        try:
            runner.build(
                sources=list(h.sources),
                hdl_toplevel=HARNESS_TOP,
                build_dir=bdir,
                always=True,
                build_args=list(VERILATOR_ARGS) if simulator == "verilator" else [],
                log_file=log,
            )
        except (RuntimeError, SystemExit) as e:
            tail = (
                log.read_text(errors="replace").strip().splitlines()[-15:] if log.exists() else []
            )
            raise RuntimeError(
                f"{simulator} build of the {h.unit} harness failed ({e}); log: {log}\n"
                + "\n".join(tail)
            ) from None
        stamp.write_text(json.dumps(want))
        return bdir, time.perf_counter() - t0
