"""Stimulus plans for a unit: per-cycle input columns, built in named sections.

Every value here is an *input* (codes, activations, zero points, control bits, LUT contents,
coefficients). Which inputs are extreme (largest / smallest product) is asked of
``models.golden.products``; no arithmetic of the unit is re-implemented here.

Sections of a MAC / dot plan (in stream order):

``reset``            two reset cycles with random operands (reset wins over everything)
``exhaustive``       every (w, a[, z]) of the unit (every lane sees every pair), en = 1, clr 1 in 4
``overflow``         runs of the largest then the smallest product without clr: the narrow
                     variants wrap / saturate many times, the full accumulator reaches ~2^24
``wrap_full``        (exhaustive=True) largest products until the full-width accumulator wraps
``lut_program`` …    programmable LUT: 16 writes (extremes included, some during MACs), then the
                     exhaustive pass again with the programmed table
``random``           seeded random operands, en 3 in 4, clr 1 in 10, LUT writes, a few resets
``reset_midstream``  resets in the middle of accumulations, with en/clr/LUT writes asserted
``real_data``        a real activation / weight-code stream, if given
``tail``             bubbles (en = 0) so the last results leave the pipeline

decoupleQ (dq_group) plans have the same sections built from groups: ``last`` on each
group's final element with its ``s``/``zc``; groups are full (group_size) or shorter, with idle
cycles (en = 0, garbage on the other ports) in between and inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.errors import MacforgeError
from models.units import UnitSpec

__all__ = [
    "EXHAUSTIVE_DEFAULT_LIMIT",
    "EXHAUSTIVE_LIMIT",
    "Stimulus",
    "build_stimulus",
    "pair_space",
    "real_data_columns",
]

# Pair spaces up to this size are enumerated in every run; larger ones up to EXHAUSTIVE_LIMIT
# only with exhaustive=True (every built-in unit's space is <= 2^16: int8 x int8 = 65536).
EXHAUSTIVE_DEFAULT_LIMIT = 1 << 16
EXHAUSTIVE_LIMIT = 1 << 20
# A full-width wrap run longer than this is skipped (int4 x int8 into 32 bits needs 2^21).
WRAP_FULL_MAX_CYCLES = 1 << 22


@dataclass
class Stimulus:
    """Per-cycle input columns of one run; ``cols[port]`` is (T,) or (T, lanes) int64."""

    spec: UnitSpec
    lanes: dict[str, int]
    cols: dict[str, np.ndarray]
    sections: list[tuple[str, int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exhaustive: bool = False

    @property
    def cycles(self) -> int:
        return int(self.cols["rst"].shape[0])

    def section_at(self, t: int) -> str:
        for name, lo, hi in self.sections:
            if lo <= t < hi:
                return name
        return "?"

    def inputs_at(self, t: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in self.cols.items():
            x = v[t]
            out[k] = [int(e) for e in x] if np.ndim(x) else int(x)
        return out


class _Builder:
    def __init__(self, spec: UnitSpec, lanes: dict[str, int]) -> None:
        self.spec, self.lanes = spec, lanes
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in lanes}
        self.sections: list[tuple[str, int, int]] = []
        self.n = 0

    def add(self, section: str, n: int, **cols: np.ndarray | int) -> None:
        if n <= 0:
            return
        for k in cols:
            if k not in self.lanes:
                raise MacforgeError(f"unit {self.spec.name} has no input port {k!r}")
        for k, ln in self.lanes.items():
            v = cols.get(k, 0)
            arr = np.broadcast_to(np.asarray(v, dtype=np.int64), (n, ln) if ln > 1 else (n,))
            self.parts[k].append(np.array(arr))
        if self.sections and self.sections[-1][0] == section and self.sections[-1][2] == self.n:
            self.sections[-1] = (section, self.sections[-1][1], self.n + n)
        else:
            self.sections.append((section, self.n, self.n + n))
        self.n += n

    def build(self, notes: list[str], exhaustive: bool) -> Stimulus:
        cols = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in self.parts.items()}
        return Stimulus(self.spec, dict(self.lanes), cols, self.sections, notes, exhaustive)


def _lanes_of(ports: list[dict[str, object]]) -> dict[str, int]:
    return {
        str(p["name"]): int(p.get("lanes", 1))  # type: ignore[call-overload]
        for p in ports
        if p["direction"] == "in" and p["name"] != "clk"
    }


def pair_space(spec: UnitSpec) -> int:
    """Number of distinct (w, a[, z]) operand combinations of one lane."""
    lo, hi = spec.act_range
    n = (1 << spec.decode.bits) * (hi - lo + 1)
    if spec.decode.zp_mask is not None:
        n *= spec.decode.zp_max + 1
    return n


class _Gen:
    """Random inputs of one unit, from one seeded generator."""

    def __init__(self, spec: UnitSpec, lanes: dict[str, int], rng: np.random.Generator) -> None:
        self.spec, self.lanes, self.rng = spec, lanes, rng
        self.nl = lanes.get("a", 1)
        self.wcodes = 1 << spec.decode.bits
        self.alo, self.ahi = spec.act_range
        self.has_z = "z" in lanes
        self.zmax = spec.decode.zp_max if spec.decode.zp_mask is not None else 0
        self.lut = "lut_we" in lanes

    def shape(self, n: int) -> tuple[int, ...]:
        return (n, self.nl) if self.nl > 1 else (n,)

    def w(self, n: int) -> np.ndarray:
        return self.rng.integers(0, self.wcodes, self.shape(n))

    def a(self, n: int) -> np.ndarray:
        return self.rng.integers(self.alo, self.ahi + 1, self.shape(n))

    def z(self, n: int) -> np.ndarray:
        return self.rng.integers(0, self.zmax + 1, n)

    def bits(self, n: int, p: float) -> np.ndarray:
        return (self.rng.random(n) < p).astype(np.int64)

    def coef(self, n: int) -> np.ndarray:
        c = self.spec.coef_bits
        return self.rng.integers(-(1 << (c - 1)), 1 << (c - 1), n)

    def lut_value(self, n: int) -> np.ndarray:
        b = self.spec.lut_bits
        return self.rng.integers(-(1 << (b - 1)), 1 << (b - 1), n)


def _extreme_operands(
    spec: UnitSpec, lut: np.ndarray | None
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(w, a, z) of the largest and of the smallest product, found by asking the golden model."""
    from models import golden

    lo, hi = spec.act_range
    zs = (
        np.arange(spec.decode.zp_max + 1)
        if spec.decode.zp_mask is not None
        else np.zeros(1, np.int64)
    )
    grid = np.meshgrid(np.arange(1 << spec.decode.bits), np.arange(lo, hi + 1), zs, indexing="ij")
    ww, aa, zz = (x.reshape(-1) for x in grid)
    z_arg = zz if spec.decode.zp_mask is not None else None
    p = golden.products(spec, ww, aa, z=z_arg, lut=lut if spec.lut == "programmable" else None)
    i, j = int(np.argmax(p)), int(np.argmin(p))
    return (int(ww[i]), int(aa[i]), int(zz[i])), (int(ww[j]), int(aa[j]), int(zz[j]))


def _exhaustive_cols(g: _Gen, limit: int) -> tuple[dict[str, np.ndarray], int, bool]:
    """Every (w, a) (per z) in a shuffled order; each lane walks the same list from a different
    offset, so every lane sees every pair. Sampled if the space exceeds ``limit``."""
    spec, rng = g.spec, g.rng
    na = g.ahi - g.alo + 1
    pa = g.wcodes * na
    nz = g.zmax + 1 if g.has_z else 1
    if pa * nz > limit:
        n = limit
        cols = {"w": g.w(n), "a": g.a(n)}
        if g.has_z:
            cols["z"] = g.z(n)
        return cols, n, False
    ws, as_, zs = [], [], []
    for z in rng.permutation(nz):
        perm = rng.permutation(pa)
        if g.nl > 1:
            idx = np.stack([np.roll(perm, -(lane * pa // g.nl)) for lane in range(g.nl)], axis=1)
        else:
            idx = perm
        ws.append(idx // na)
        as_.append(idx % na + g.alo)
        zs.append(np.full(pa, z))
    cols = {"w": np.concatenate(ws), "a": np.concatenate(as_)}
    if g.has_z:
        cols["z"] = np.concatenate(zs)
    del spec
    return cols, pa * nz, True


def _lut_program(b: _Builder, g: _Gen, table: np.ndarray) -> np.ndarray:
    """16 LUT writes (one per entry, shuffled), extremes and zero among the values; half of
    them during MACs (the MAC reads the old entry). Returns the new table."""
    n = len(table)
    bits = g.spec.lut_bits
    values = g.lut_value(n)
    values[:3] = [-(1 << (bits - 1)), (1 << (bits - 1)) - 1, 0]
    values = g.rng.permutation(values)
    addr = g.rng.permutation(n)
    en = g.bits(n, 0.5)
    b.add(
        "lut_program",
        n,
        en=en,
        clr=g.bits(n, 0.2),
        w=g.w(n),
        a=g.a(n),
        **({"z": g.z(n)} if g.has_z else {}),
        lut_we=1,
        lut_waddr=addr,
        lut_wdata=values,
    )
    new = table.copy()
    new[addr] = values
    return new


def _mac_plan(
    b: _Builder,
    g: _Gen,
    vectors: int,
    exhaustive: bool,
    real: dict[str, np.ndarray] | None,
    notes: list[str],
) -> bool:
    spec, rng = g.spec, g.rng
    zcol = (lambda n: {"z": g.z(n)}) if g.has_z else (lambda n: {})
    # reset, with garbage on the operands
    b.add("reset", 2, rst=1, en=1, clr=g.bits(2, 0.5), w=g.w(2), a=g.a(2), **zcol(2))
    limit = EXHAUSTIVE_LIMIT if exhaustive else EXHAUSTIVE_DEFAULT_LIMIT
    ex, n_ex, full = _exhaustive_cols(g, limit)
    if not full:
        notes.append(f"pair space {pair_space(spec)} > {limit}: {n_ex} random pairs instead of all")
    b.add("exhaustive", n_ex, en=1, clr=g.bits(n_ex, 0.25), **ex)
    # overflow: the largest, then the smallest product, without clr
    table = np.array(spec.decode.table, dtype=np.int64)
    (wp, ap, zp), (wn, an, zn) = _extreme_operands(spec, table if g.lut else None)
    k = 1024
    for sign, (w_, a_, z_), n in (
        (+1, (wp, ap, zp), k),
        (-1, (wn, an, zn), 2 * k),
        (+1, (wp, ap, zp), k),
    ):
        b.add("overflow", n, en=1, w=w_, a=a_, **({"z": z_} if g.has_z else {}))
        b.add("overflow", 8, en=g.bits(8, 0.5), w=g.w(8), a=g.a(8), **zcol(8))
    if exhaustive:
        from models import golden

        zarg = np.array([zp]) if g.has_z else None
        pmax = (
            int(
                golden.products(
                    spec, np.array([wp]), np.array([ap]), z=zarg, lut=table if g.lut else None
                )[0]
            )
            * g.nl
        )
        need = -(-(1 << (spec.acc_bits - 1)) // max(pmax, 1)) + 64
        if need <= WRAP_FULL_MAX_CYCLES:
            b.add("wrap_full", 1, en=1, clr=1, w=wp, a=ap, **({"z": zp} if g.has_z else {}))
            b.add("wrap_full", need, en=1, w=wp, a=ap, **({"z": zp} if g.has_z else {}))
        else:
            notes.append(
                f"wrap_full skipped: {need} cycles to wrap {spec.acc_bits} bits "
                f"> {WRAP_FULL_MAX_CYCLES}"
            )
    if g.lut:
        table = _lut_program(b, g, table)
        ex2, n_ex2, _ = _exhaustive_cols(g, limit)
        b.add("exhaustive_lut", n_ex2, en=1, clr=g.bits(n_ex2, 0.25), **ex2)
        if exhaustive:  # a second programmed table
            _lut_program(b, g, table)
            ex3, n_ex3, _ = _exhaustive_cols(g, limit)
            b.add("exhaustive_lut", n_ex3, en=1, clr=g.bits(n_ex3, 0.25), **ex3)
    # random: interleaved en / clr, LUT writes, a few resets; clr density varies by block so
    # some accumulations run long
    n = vectors
    if n > 0:
        clr_p = np.repeat(rng.choice([0.0, 0.02, 0.1, 0.5], size=-(-n // 256)), 256)[:n]
        cols: dict[str, np.ndarray] = {
            "en": g.bits(n, 0.75),
            "clr": (rng.random(n) < clr_p).astype(np.int64),
            "w": g.w(n),
            "a": g.a(n),
            **zcol(n),
        }
        cols["rst"] = g.bits(n, 1 / 2000)
        if g.lut:
            cols["lut_we"] = g.bits(n, 0.01)
            cols["lut_waddr"] = rng.integers(0, len(table), n)
            cols["lut_wdata"] = g.lut_value(n)
        b.add("random", n, **cols)
    # resets in the middle of accumulations
    for _ in range(3):
        b.add("reset_midstream", 40, en=1, w=g.w(40), a=g.a(40), **zcol(40))
        extra = (
            {"lut_we": 1, "lut_waddr": int(rng.integers(16)), "lut_wdata": int(g.lut_value(1)[0])}
            if g.lut
            else {}
        )
        b.add("reset_midstream", 1, rst=1, en=1, clr=0, w=g.w(1), a=g.a(1), **zcol(1), **extra)
    b.add(
        "reset_midstream",
        3,
        rst=1,
        en=g.bits(3, 0.5),
        clr=g.bits(3, 0.5),
        w=g.w(3),
        a=g.a(3),
        **zcol(3),
    )
    b.add("reset_midstream", 40, en=1, w=g.w(40), a=g.a(40), **zcol(40))
    if real is not None:
        b.add("real_data", len(real["a"]), **real)
    b.add("tail", spec.latency + 1, w=g.w(spec.latency + 1), a=g.a(spec.latency + 1))
    return full


def _dq_groups(
    b: _Builder,
    g: _Gen,
    section: str,
    q: np.ndarray,
    a: np.ndarray,
    sizes: list[int],
    s: np.ndarray,
    zc: np.ndarray,
    idle_p: float,
    clr_first: np.ndarray | None = None,
) -> None:
    """Groups of ``sizes`` elements taken in order from q/a, idle cycles interleaved with
    probability ``idle_p`` (garbage on every port but en, which is 0)."""
    rng = g.rng
    start = 0
    for gi, size in enumerate(sizes):
        qq, aa = q[start : start + size], a[start : start + size]
        start += size
        last = np.zeros(size, np.int64)
        last[-1] = 1
        ss = g.coef(size)
        zz = g.coef(size)
        ss[-1], zz[-1] = s[gi], zc[gi]
        clr = np.zeros(size, np.int64)
        if clr_first is not None and clr_first[gi]:
            clr[0] = 1
        idle = rng.random(size) < idle_p  # idle[i]: an idle cycle just before element i
        tot = size + int(idle.sum())
        pos = np.arange(size) + np.cumsum(idle)
        cols = {
            "en": np.zeros(tot, np.int64),
            "clr": np.zeros(tot, np.int64),
            "q": g.w(tot),
            "a": g.a(tot),
            "last": g.bits(tot, 0.5),
            "s": g.coef(tot),
            "zc": g.coef(tot),
        }
        for k, v in (
            ("en", 1),
            ("clr", clr),
            ("q", qq),
            ("a", aa),
            ("last", last),
            ("s", ss),
            ("zc", zz),
        ):
            cols[k][pos] = v
        b.add(section, tot, **cols)


def _dq_plan(
    b: _Builder,
    g: _Gen,
    vectors: int,
    exhaustive: bool,
    real: dict[str, np.ndarray] | None,
    notes: list[str],
) -> bool:
    spec, rng = g.spec, g.rng
    gs = spec.group_size
    b.add("reset", 2, rst=1, en=1, q=g.w(2), a=g.a(2), last=1, s=g.coef(2), zc=g.coef(2))
    # exhaustive: every (q, a) once, in full groups (the space is padded up to whole groups)
    na = g.ahi - g.alo + 1
    pa = g.wcodes * na
    perm = rng.permutation(pa)
    n_groups = -(-pa // gs)
    pad = rng.integers(0, pa, n_groups * gs - pa)
    idx = np.concatenate([perm, pad])
    q, a = idx // na, idx % na + g.alo
    _dq_groups(
        b,
        g,
        "exhaustive",
        q,
        a,
        [gs] * n_groups,
        g.coef(n_groups),
        g.coef(n_groups),
        0.0,
        clr_first=(rng.random(n_groups) < 0.25).astype(np.int64),
    )
    # overflow: largest |group term|: largest products with the largest / smallest coefficient
    (qp, ap, _), (qn, an, _) = _extreme_operands(spec, None)
    cmax, cmin = (1 << (spec.coef_bits - 1)) - 1, -(1 << (spec.coef_bits - 1))
    for coef, k in ((cmax, 16), (cmin, 32), (cmax, 16)):
        _dq_groups(
            b,
            g,
            "overflow",
            np.full(k * gs, qp),
            np.full(k * gs, ap),
            [gs] * k,
            np.full(k, coef),
            np.full(k, coef),
            0.0,
        )
    _dq_groups(
        b,
        g,
        "overflow",
        np.full(8 * gs, qn),
        np.full(8 * gs, an),
        [gs] * 8,
        np.full(8, cmax),
        np.full(8, cmin),
        0.0,
    )
    # random: mostly full groups, some shorter, idle cycles, clr and rst anywhere
    if vectors > 0:
        sizes: list[int] = []
        while sum(sizes) < vectors:
            sizes.append(gs if rng.random() < 0.8 else int(rng.integers(1, gs + 1)))
        n = sum(sizes)
        start = b.n
        _dq_groups(
            b,
            g,
            "random",
            g.w(n),
            g.a(n),
            sizes,
            g.coef(len(sizes)),
            g.coef(len(sizes)),
            0.1,
            clr_first=(rng.random(len(sizes)) < 0.1).astype(np.int64),
        )
        # sprinkle clr / rst on random cycles of the section (mid-group included)
        for col, p in (("clr", 1 / 500), ("rst", 1 / 2000)):
            arr = b.parts[col]
            hits = np.flatnonzero(rng.random(b.n - start) < p) + start
            flat = np.concatenate(arr)
            flat[hits] = 1
            b.parts[col] = [flat]
    # reset in the middle of a group and right after a group's last element
    _dq_groups(b, g, "reset_midstream", g.w(gs), g.a(gs), [gs], g.coef(1), g.coef(1), 0.0)
    b.add("reset_midstream", 10, en=1, q=g.w(10), a=g.a(10))
    b.add("reset_midstream", 1, rst=1, en=1, q=g.w(1), a=g.a(1), last=1, s=g.coef(1), zc=g.coef(1))
    _dq_groups(
        b, g, "reset_midstream", g.w(2 * gs), g.a(2 * gs), [gs, gs], g.coef(2), g.coef(2), 0.0
    )
    b.add("reset_midstream", 1, rst=1)
    _dq_groups(b, g, "reset_midstream", g.w(gs), g.a(gs), [gs], g.coef(1), g.coef(1), 0.0)
    if real is not None:
        n = len(real["a"]) // gs * gs
        if n:
            k = n // gs
            _dq_groups(
                b, g, "real_data", real["q"][:n], real["a"][:n], [gs] * k, g.coef(k), g.coef(k), 0.0
            )
    b.add("tail", spec.latency + 1, q=g.w(spec.latency + 1), a=g.a(spec.latency + 1))
    return True


def real_data_columns(
    spec: UnitSpec,
    lanes: dict[str, int],
    activations: np.ndarray,
    weight_codes: np.ndarray,
    zero_points: np.ndarray | None = None,
    dot_length: int = 576,
) -> dict[str, np.ndarray]:
    """Input columns that stream real activations against real weight codes.

    Consecutive elements go to consecutive lanes (a dot unit consumes ``lanes`` elements per
    cycle), ``clr`` starts a new output every ``dot_length`` elements (one row of a linear
    layer; SmolLM2's d_model = 576). A zero-point unit takes the first lane's zero point of each
    cycle. decoupleQ units get ``q``/``a`` only (their groups are formed by the plan)."""
    acts = np.asarray(activations).reshape(-1)
    codes = np.asarray(weight_codes).reshape(-1)
    if acts.dtype.kind not in "iu" or codes.dtype.kind not in "iu":
        raise MacforgeError("real-data activations and weight codes must be integer arrays")
    lo, hi = spec.act_range
    if acts.size and (acts.min() < lo or acts.max() > hi):
        raise MacforgeError(f"real-data activations out of range [{lo}, {hi}]")
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << spec.decode.bits):
        raise MacforgeError(
            f"real-data weight codes out of range [0, {(1 << spec.decode.bits) - 1}]"
        )
    if spec.kind == "dq_group":
        n = min(acts.size, codes.size)
        return {"q": codes[:n].astype(np.int64), "a": acts[:n].astype(np.int64)}
    nl = lanes.get("a", 1)
    n = min(acts.size, codes.size) // nl
    if n == 0:
        raise MacforgeError(f"real-data stream has fewer than {nl} elements")
    shape = (n, nl) if nl > 1 else (n,)
    cols = {
        "w": codes[: n * nl].astype(np.int64).reshape(shape),
        "a": acts[: n * nl].astype(np.int64).reshape(shape),
        "en": np.ones(n, np.int64),
    }
    clr = np.zeros(n, np.int64)
    clr[:: max(1, dot_length // nl)] = 1
    cols["clr"] = clr
    if "z" in lanes:
        if zero_points is None:
            raise MacforgeError(f"unit {spec.name} needs real-data zero points")
        zp = (
            np.asarray(zero_points).reshape(-1)[: n * nl].reshape(n, nl)[:, 0]
            if nl > 1
            else np.asarray(zero_points).reshape(-1)[:n]
        )
        if zp.min() < 0 or zp.max() > spec.decode.zp_max:
            raise MacforgeError(f"real-data zero points out of range [0, {spec.decode.zp_max}]")
        cols["z"] = zp.astype(np.int64)
    return cols


def _real_plan(b: _Builder, g: _Gen, real: dict[str, np.ndarray]) -> None:
    spec = g.spec
    tail = spec.latency + 1
    if spec.kind == "dq_group":
        gs = spec.group_size
        b.add("reset", 2, rst=1)
        k = len(real["a"]) // gs
        if k:
            _dq_groups(
                b,
                g,
                "real_data",
                real["q"][: k * gs],
                real["a"][: k * gs],
                [gs] * k,
                g.coef(k),
                g.coef(k),
                0.0,
            )
        b.add("tail", tail)
        return
    b.add("reset", 2, rst=1)
    b.add("real_data", len(real["a"]), **real)
    b.add("tail", tail)


def build_stimulus(
    spec: UnitSpec,
    ports: list[dict[str, object]],
    *,
    vectors: int,
    seed: int,
    exhaustive: bool = False,
    real: dict[str, np.ndarray] | None = None,
    notes: list[str] | None = None,
    real_only: bool = False,
) -> Stimulus:
    """The full plan of one run (see the module docstring); ``real_only``: just reset, the
    real-data stream and the tail."""
    lanes = _lanes_of(ports)
    b = _Builder(spec, lanes)
    rng = np.random.default_rng(seed)
    g = _Gen(spec, lanes, rng)
    notes = list(notes or [])
    if real_only:
        if real is None:
            raise MacforgeError("real_only needs a real-data stream")
        _real_plan(b, g, real)
        return b.build(notes, False)
    plan = _dq_plan if spec.kind == "dq_group" else _mac_plan
    full = plan(b, g, vectors, exhaustive, real, notes)
    return b.build(notes, full)
