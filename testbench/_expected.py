"""Expected ``acc`` after every clock edge of a stimulus, from ``models.golden`` only.

The golden functions give the accumulator of an uninterrupted stream (``mac``/``dot``: one value
per cycle; ``dq_group_mac``: one per complete group). The stream is cut where the golden call
cannot continue and each piece is handed to golden with the accumulator it starts from:

* ``rst`` at cycle t: everything is reset (synchronous): the operands of cycles t-L+1 … t
  never reach the accumulator (the pipeline registers reset too), acc is 0 from edge t until
  the first operand after the reset arrives at edge t+1+L-1; a programmable LUT returns to its
  reset content (the spec's table).
* a LUT write at cycle t: the MAC of cycle t still reads the old entry; the next piece uses the
  new table (``golden.mac(..., lut=table)``).
* decoupleQ: a group is the run of enabled elements up to an enabled ``last``; ``clr`` drops the
  elements of the open group before it and restarts the accumulator; a group shorter than
  group_size is padded with activation-0 elements (which add nothing to Σq·a or Σa) so that
  golden sees whole groups.

Output domain: value ``k`` of the golden stream is the accumulator register's input at cycle
k; the harness observes it after edge k+L-1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.units import UnitSpec

from ._stimulus import Stimulus

__all__ = ["expected_trace"]


def _mac_stream(spec: UnitSpec, stim: Stimulus) -> np.ndarray:
    from models import golden

    c = stim.cols
    n = stim.cycles
    lat = spec.latency
    rst = c["rst"].astype(bool)
    lut_we = c["lut_we"].astype(bool) if "lut_we" in c else np.zeros(n, bool)
    reset_table = np.array(spec.decode.table, dtype=np.int64)
    table = reset_table.copy()
    fn = golden.dot if spec.kind == "dot" else golden.mac
    has_z = "z" in c
    programmable = spec.lut == "programmable"
    # A reset cycle is handed to golden as clr with en = 0 (acc = 0 from it on, its operands
    # dropped): golden then needs no new call per reset, only per LUT table, which a LUT write
    # changes (from the next cycle) and a reset restores.
    en = np.where(rst, 0, c["en"])
    clr = np.where(rst, 1, c["clr"])
    out = np.zeros(n, dtype=np.int64)
    cuts = set((np.flatnonzero(lut_we & ~rst) + 1).tolist())
    if programmable:
        cuts |= set(np.flatnonzero(rst).tolist())
    start, acc = 0, 0
    for cut in sorted(cuts) + [n]:
        if cut <= start:
            continue
        if programmable and rst[start]:
            table = reset_table.copy()
        seg = slice(start, cut)
        kw: dict[str, Any] = {"en": en[seg], "clr": clr[seg], "acc0": acc}
        if has_z:
            kw["z"] = c["z"][seg]
        if programmable:
            kw["lut"] = table
        vals = fn(spec, c["w"][seg], c["a"][seg], **kw)
        out[seg] = vals
        acc = int(vals[-1])
        last = cut - 1
        if lut_we[last] and not rst[last]:
            table = table.copy()
            table[int(c["lut_waddr"][last])] = int(c["lut_wdata"][last])
        start = cut
    # the pipeline resets too: the operands of the L-1 cycles before a reset never arrive
    at = np.flatnonzero(rst)
    for d in range(lat):
        out[np.maximum(at - d, 0)] = 0
    return out


def _dq_stream(spec: UnitSpec, stim: Stimulus) -> np.ndarray:
    from models import golden

    c = stim.cols
    n = stim.cycles
    gs = spec.group_size
    rst, en, clr, last = (c[k].astype(bool) for k in ("rst", "en", "clr", "last"))
    # walk the cycles: segments (acc restarts at 0) of groups (element cycles, end cycle)
    segments: list[list[tuple[list[int], int]]] = [[]]
    seg_start = [0]
    open_group: list[int] = []
    reset_cycles = []
    for t in range(n):
        if rst[t]:
            open_group = []
            reset_cycles.append(t)
            segments.append([])
            seg_start.append(t + 1)
            continue
        if clr[t]:
            open_group = []
            segments.append([])
            seg_start.append(t)
        if en[t]:
            open_group.append(t)
            if last[t]:
                segments[-1].append((open_group, t))
                open_group = []
    out = np.zeros(n, dtype=np.int64)
    for si, groups in enumerate(segments):
        lo = seg_start[si]
        hi = seg_start[si + 1] if si + 1 < len(seg_start) else n
        if not groups:
            continue
        q = np.zeros(len(groups) * gs, dtype=np.int64)
        a = np.zeros(len(groups) * gs, dtype=np.int64)
        for gi, (elems, _) in enumerate(groups):
            if len(elems) > gs:
                raise ValueError(f"stimulus has a decoupleQ group of {len(elems)} > {gs} elements")
            q[gi * gs : gi * gs + len(elems)] = c["q"][elems]
            a[gi * gs : gi * gs + len(elems)] = c["a"][elems]
        ends = np.array([e for _, e in groups])
        vals = golden.dq_group_mac(spec, q, a, c["s"][ends], c["zc"][ends])
        # forward fill: acc holds between group ends
        marks = np.zeros(hi - lo, dtype=np.int64)
        marks[ends - lo] = np.arange(1, len(groups) + 1)
        idx = np.maximum.accumulate(marks)
        seg_vals = np.concatenate([[0], vals])[idx]
        out[lo:hi] = seg_vals
    lat = spec.latency
    for t in reset_cycles:
        out[max(0, t - lat + 1) : t + 1] = 0
    return out


def expected_trace(spec: UnitSpec, stim: Stimulus) -> np.ndarray:
    """acc after each clock edge 0 … T-1 (the stream starts with a reset)."""
    stream = _dq_stream(spec, stim) if spec.kind == "dq_group" else _mac_stream(spec, stim)
    lat = spec.latency
    out = np.zeros_like(stream)
    out[lat - 1 :] = stream[: stream.size - (lat - 1)]
    return out
