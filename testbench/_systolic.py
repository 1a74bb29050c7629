"""Systolic-array units (``models.units`` kind ``systolic``): the stimulus plan, the expected
outputs and their comparison with what the RTL marks valid.

The expected outputs are built in two steps, neither of which computes a product:

1. A protocol model (``rtl/_systolic.py``'s documented schedule) walks the stimulus cycle by
   cycle and cuts it into tiles: the valid cycles from a ``first`` (or from a reset / an
   empty array) through a ``last``. A reset drops the open tile and every output after it.
2. Each tile's result is ``models.golden.gemm(W, A, ...)`` with A (R, K) the tile's
   activations, W (C, K) its weight codes and, for zero-point formats, ``zero_points`` (C, K)
   with ``group_size=1`` (one zero point per column per k, as the RTL's ``z`` port takes it).

The tile whose ``last`` is presented in cycle L drains in cycles L + R + C - 1 + q, q = 0..R-1:
``out_valid = 1``, ``out_row = R-1-q``, ``c = C[R-1-q]``; the harness sees cycle t's outputs
in its sample t-1 (after the clock edge that ends cycle t-1). Every sample is checked:
``out_valid`` must be exactly the expected one (no output early, late, missing or extra), and
wherever it is expected high ``out_row`` and every ``c`` lane must equal golden.

Sections of a plan (stream order):

``reset``            two reset cycles with valid / first / last and operands asserted
``exhaustive``       every (w, a[, z]) through every PE: tiles (K = 64..1024) back to back at
                     the minimum period whose k's enumerate the pair space so that PE(i, j)
                     sees each (A[i, k], W[j, k][, Z[j, k]]) exactly once (row / column
                     offsets of a mixed-radix count; random value and k orders)
``overflow``         a tile of the largest, then the smallest, then the largest product
                     (K = 4096: narrow variants wrap / saturate many times), and tiles of
                     extreme operands mixed
``wrap_full``        (exhaustive=True) one tile of the largest product long enough that the
                     full-width accumulator wraps (or saturates)
``back_to_back``     short and K = 64 tiles at exactly the ``systolic_schedule`` period, K = 1
``bubbles``          tiles with valid = 0 gaps (garbage operands, first / last, during them)
``random``           random tiles (mostly K = 64..300, some 1..16 and up to 1000), random
                     bubbles and inter-tile gaps (often the minimum), random resets anywhere
``reset_midstream``  resets inside a tile (then the tile continues without ``first``, or
                     restarts), between ``last`` and the drain, inside the drain, and with
                     valid / first / last high in the reset cycle; a new tile right after
``real_data``        tiles of real activations × real weight codes, if given
``tail``             idle cycles so the last drain completes
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import MacforgeError
from models.units import UnitSpec

from ._stimulus import EXHAUSTIVE_DEFAULT_LIMIT, EXHAUSTIVE_LIMIT, WRAP_FULL_MAX_CYCLES, Stimulus, _Builder, _lanes_of

__all__ = [
    "SystolicExpected",
    "build_systolic_stimulus",
    "compare_systolic",
    "idle_chunks",
    "systolic_expected",
    "systolic_real_columns",
]

MAX_FAILURES = 8
REAL_TILE_K = 512  # real-data tiles: K (a slice of one token's features / one weight row)


def _min_gap(spec: UnitSpec) -> int:
    """Idle cycles between one tile's ``last`` and the next ``first`` at the minimum period:
    the next first may come 2R + C - 1 cycles after the last (``rtl/_systolic.py``)."""
    return 2 * spec.rows + spec.cols - 2


# ------------------------------------------------------------------------- protocol model
@dataclass
class SystolicExpected:
    """Expected outputs of one instance after every clock edge (sample t = cycle t + 1).

    ``valid`` (T,) bool: out_valid; where valid: ``row`` (T,) out_row and ``c`` (T, C) the
    result row from golden; ``tile`` (T,) index into ``tiles`` (-1 where not valid). ``tiles``:
    (first input cycle, last input cycle, K) of each completed tile; ``idle`` (T + 1,) bool:
    nothing is in flight before cycle t (no open tile, no pending drain), i.e. the stream may
    be cut there."""

    valid: np.ndarray
    row: np.ndarray
    c: np.ndarray
    tile: np.ndarray
    tiles: list[tuple[int, int, int]]
    idle: np.ndarray


def _golden_tile(spec: UnitSpec, w: np.ndarray, a: np.ndarray, z: np.ndarray | None) -> np.ndarray:
    """(R, C) accumulators of one tile from ``models.golden.gemm``: A (R, K), W (C, K),
    zero points (C, K) per column per k."""
    from models import golden

    return golden.gemm(
        w,
        a,
        spec.weight_format,
        spec.act_format,
        spec.acc_bits,
        spec.overflow,
        zero_points=z,
        group_size=1 if z is not None else None,
        lut_bits=spec.lut_bits if spec.lut != "none" else None,
        product_round=spec.product_round,
    )


def systolic_expected(spec: UnitSpec, stim: Stimulus) -> SystolicExpected:
    """The expected outputs of a systolic unit on ``stim`` (see the module docstring).

    Raises ``MacforgeError`` if the stimulus breaks the protocol the array documents (a valid
    input between a tile's ``last`` and the end of its drain)."""
    R, C = spec.rows, spec.cols
    cols = stim.cols
    n = stim.cycles
    rst = cols["rst"].astype(bool)
    valid = cols["valid"].astype(bool)
    first = cols["first"].astype(bool) & valid
    last = cols["last"].astype(bool) & valid
    a = cols["a"].reshape(n, R)
    w = cols["w"].reshape(n, C)
    z = cols["z"].reshape(n, C) if "z" in cols else None
    exp_valid = np.zeros(n, dtype=bool)
    exp_row = np.zeros(n, dtype=np.int64)
    exp_c = np.zeros((n, C), dtype=np.int64)
    exp_tile = np.full(n, -1, dtype=np.int64)
    idle = np.zeros(n + 1, dtype=bool)
    tiles: list[tuple[int, int, int]] = []
    spans: list[np.ndarray] = []
    open_cycles: list[int] | None = None
    busy_until = -1  # last drain cycle of the last closed tile
    # the walk touches only cycles with rst or valid; idle stretches are filled in bulk
    events = np.flatnonzero(rst | valid)
    prev = 0
    for t in events.tolist():
        quiet = open_cycles is None
        if quiet:  # cycles prev..t: idle once the last drain is over
            lo = max(prev, busy_until + 1)
            if lo <= t:
                idle[lo : t + 1] = True
        prev = t + 1
        if rst[t]:
            open_cycles = None
            busy_until = -1
            exp_valid[t:] = False  # the reset edge ends every drain (sample t is after it)
            exp_tile[t:] = -1
            idle[t + 1] = True
            continue
        if open_cycles is None:
            if t <= busy_until:
                raise MacforgeError(
                    f"systolic stimulus of {spec.name}: valid input in cycle {t} before the drain "
                    f"of the previous tile ends (cycle {busy_until})"
                )
            open_cycles = []
        if first[t]:
            open_cycles = []
        open_cycles.append(t)
        if last[t]:
            span = np.array(open_cycles, dtype=np.int64)
            res = _golden_tile(
                spec, w[span].T, a[span].T, None if z is None else z[span].T
            )
            idx = len(tiles)
            tiles.append((int(span[0]), t, int(span.size)))
            spans.append(span)
            for q in range(R):
                s = t + R + C - 2 + q
                if s < n:
                    exp_valid[s] = True
                    exp_row[s] = R - 1 - q
                    exp_c[s] = res[R - 1 - q]
                    exp_tile[s] = idx
            busy_until = t + 2 * R + C - 2
            open_cycles = None
    if open_cycles is None:
        lo = max(prev, busy_until + 1)
        if lo <= n:
            idle[lo:] = True
    return SystolicExpected(exp_valid, exp_row, exp_c, exp_tile, tiles, idle)


def idle_chunks(n: int, idle: np.ndarray, depth: int) -> list[int]:
    """Chunk sizes (each <= ``depth``) cutting the stream only at idle cycles: between chunks
    the harness idles for a few cycles, which the array must not notice."""
    sizes, start = [], 0
    ok = np.flatnonzero(idle)
    while n - start > depth:
        j = int(np.searchsorted(ok, start + depth, side="right")) - 1
        if j < 0 or ok[j] <= start:
            raise MacforgeError(
                f"systolic stimulus has no idle cycle within {depth} cycles of cycle {start}"
            )
        sizes.append(int(ok[j]) - start)
        start = int(ok[j])
    sizes.append(n - start)
    return sizes


def _fmt_out(valid: bool, row: int, c: np.ndarray) -> str:
    return f"out_valid=1 out_row={row} c={[int(v) for v in c]}" if valid else "out_valid=0"


def compare_systolic(
    stim: Stimulus,
    labels: list[str],
    exps: list[SystolicExpected],
    fields: tuple[tuple[int, str, int], ...],
    got: np.ndarray,
    ok: np.ndarray,
) -> tuple[int, int, list[dict[str, object]]]:
    """(mismatching samples over every instance, output rows compared, first failures).

    A sample mismatches when out_valid differs from the expected one (or has x/z bits), or
    when out_valid is expected and out_row or any c lane differs (or has x/z bits)."""
    total, rows_checked = 0, 0
    cand: list[tuple[int, int, int, np.ndarray]] = []
    for k, exp in enumerate(exps):
        col = {(p, ln): i for i, (kk, p, ln) in enumerate(fields) if kk == k}
        ci = [col[("c", j)] for j in range(exp.c.shape[1])]
        ov, ov_ok = got[:, col[("out_valid", 0)]], ok[:, col[("out_valid", 0)]]
        row, row_ok = got[:, col[("out_row", 0)]], ok[:, col[("out_row", 0)]]
        cc, cc_ok = got[:, ci], ok[:, ci]
        data_bad = (row != exp.row) | ~row_ok | np.any((cc != exp.c) | ~cc_ok, axis=1)
        bad = (ov != exp.valid) | ~ov_ok | (exp.valid & data_bad)
        rows_checked += int(exp.valid.sum())
        nbad = int(bad.sum())
        total += nbad
        if nbad:
            onset = bad & ~np.concatenate([[False], bad[:-1]])
            cand += [(0, int(t), k, bad) for t in np.flatnonzero(onset)[:MAX_FAILURES]]
            cand += [(1, int(t), k, bad) for t in np.flatnonzero(bad & ~onset)[:MAX_FAILURES]]
    cand.sort(key=lambda x: x[:3])
    out: list[dict[str, object]] = []
    for rank, t, k, _ in cand[:MAX_FAILURES]:
        exp = exps[k]
        col = {(p, ln): i for i, (kk, p, ln) in enumerate(fields) if kk == k}
        ci = [col[("c", j)] for j in range(exp.c.shape[1])]
        got_valid = bool(got[t, col[("out_valid", 0)]])
        tile_i = int(exp.tile[t])
        info: dict[str, object] = {}
        if tile_i >= 0:
            t0, t1, kk = exp.tiles[tile_i]
            info = {"tile_first_cycle": t0, "tile_last_cycle": t1, "K": kk}
            bad_cols = [j for j in range(exp.c.shape[1])
                        if not ok[t, ci[j]] or got[t, ci[j]] != exp.c[t, j]]
            info["bad_columns"] = bad_cols
        out.append(
            {
                "cycle": t + 1,  # the cycle in which the output is visible (sample t)
                "instance": labels[k],
                "onset": rank == 0,
                "section": stim.section_at(max(t, 0)),
                "input_cycle": t,
                "inputs": info,
                "expected": _fmt_out(bool(exp.valid[t]), int(exp.row[t]), exp.c[t]),
                "got": _fmt_out(got_valid, int(got[t, col[("out_row", 0)]]), got[t, ci])
                if all(ok[t, col[f]] for f in col) else "x",
            }
        )
    return total, rows_checked, out


# ------------------------------------------------------------------------------- stimulus
class _SysGen:
    """Random inputs of a systolic unit from one seeded generator."""

    def __init__(self, spec: UnitSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.R, self.C = spec.rows, spec.cols
        self.nw = 1 << spec.decode.bits
        self.alo, self.ahi = spec.act_range
        self.has_z = spec.decode.zp_mask is not None
        self.nz = spec.decode.zp_max + 1 if self.has_z else 1

    def a(self, n: int) -> np.ndarray:
        return self.rng.integers(self.alo, self.ahi + 1, (n, self.R))

    def w(self, n: int) -> np.ndarray:
        return self.rng.integers(0, self.nw, (n, self.C))

    def z(self, n: int) -> np.ndarray:
        return self.rng.integers(0, self.nz, (n, self.C))

    def bits(self, n: int, p: float) -> np.ndarray:
        return (self.rng.random(n) < p).astype(np.int64)

    def garbage(self, n: int) -> dict[str, np.ndarray]:
        """Idle cycles: valid = 0 with random operands and random first / last (ignored)."""
        cols = {"a": self.a(n), "w": self.w(n), "first": self.bits(n, 0.3), "last": self.bits(n, 0.3)}
        if self.has_z:
            cols["z"] = self.z(n)
        return cols


def _lanes_cols(g: _SysGen, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(n, 1) lane columns of a 1-row / 1-column array as (n,) (the builder's shape)."""
    return {k: (v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v) for k, v in cols.items()}


def _tile(
    b: _Builder,
    g: _SysGen,
    section: str,
    a: np.ndarray,
    w: np.ndarray,
    z: np.ndarray | None,
    *,
    bubble_p: float = 0.0,
    first: bool = True,
    last: bool = True,
    gap: int | None = None,
    reset_at: int | None = None,
    after_reset: str = "continue",
) -> None:
    """One tile of K = len(a) k's (a (K, R), w (K, C), z (K, C)), idle cycles with
    probability ``bubble_p`` before each k after the first, then ``gap`` idle cycles (default:
    the minimum before the next tile may start). ``first`` / ``last``: flag the first / last
    k (a tile may span several calls). ``reset_at``: a reset in place of the
    input cycle of that k, after which the tile ``continue``s without first or is ``drop``ped
    (``restart``: starts again with first)."""
    k_len = a.shape[0]
    idle = (g.rng.random(k_len) < bubble_p).astype(np.int64)
    idle[0] = 0
    extra = np.where(idle == 1, g.rng.integers(1, 4, k_len), 0)  # 1-3 idle cycles per bubble
    tot = k_len + int(extra.sum())
    pos = np.arange(k_len) + np.cumsum(extra)
    cols = g.garbage(tot)
    cols["valid"] = np.zeros(tot, np.int64)
    cols["rst"] = np.zeros(tot, np.int64)
    cols["valid"][pos] = 1
    cols["a"][pos] = a
    cols["w"][pos] = w
    if z is not None:
        cols["z"][pos] = z
    cols["first"][pos] = 0
    cols["last"][pos] = 0
    if first:
        cols["first"][pos[0]] = 1
    if last:
        cols["last"][pos[-1]] = 1
    if reset_at is not None:
        p = int(pos[reset_at])
        cols["rst"][p] = 1  # valid / first / last / operands stay asserted: reset wins
        if after_reset == "drop":
            cols["valid"][p + 1 :] = 0
        elif after_reset == "restart" and reset_at + 1 < k_len:
            cols["first"][pos[reset_at + 1]] = 1
    b.add(section, tot, **_lanes_cols(g, cols))
    n_gap = _min_gap(g.spec) if gap is None else gap
    if n_gap:
        b.add(section, n_gap, **_lanes_cols(g, g.garbage(n_gap)))


def _exhaustive_ks(
    g: _SysGen, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """k-columns (a (P, R), w (P, C), z (P, C)) in which every PE(i, j) sees every
    (w, a[, z]) exactly once: k = (zq·nw + q)·na + r gives row i the activation index
    (r + o_i) mod na and column j the weight index (q + o_j) mod nw and zero-point index
    (zq + o'_j) mod nz — a bijection of k for every (i, j). Value orders and the order of
    the k's are random. Sampled at random when the space exceeds ``limit``."""
    rng = g.rng
    na = g.ahi - g.alo + 1
    total = na * g.nw * g.nz
    if total > limit:
        return g.a(limit), g.w(limit), g.z(limit) if g.has_z else None, False
    k = np.arange(total)
    r, q, zq = k % na, (k // na) % g.nw, k // (na * g.nw)
    oa = rng.integers(0, na, g.R)
    ow = rng.integers(0, g.nw, g.C)
    oz = rng.integers(0, g.nz, g.C)
    perm_a, perm_w, perm_z = rng.permutation(na), rng.permutation(g.nw), rng.permutation(g.nz)
    order = rng.permutation(total)
    a = g.alo + perm_a[(r[:, None] + oa[None, :]) % na][order]
    w = perm_w[(q[:, None] + ow[None, :]) % g.nw][order]
    z = perm_z[(zq[:, None] + oz[None, :]) % g.nz][order] if g.has_z else None
    return a, w, z, True


def _split(n: int, rng: np.random.Generator, lo: int, hi: int) -> list[int]:
    """Tile lengths in [lo, hi] summing to n (the last one may be shorter)."""
    sizes = []
    while n > 0:
        s = min(n, int(rng.integers(lo, hi + 1)))
        sizes.append(s)
        n -= s
    return sizes


def _extremes(spec: UnitSpec) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(w, a, z) of the largest and the smallest product of the PE, asked of golden."""
    from rtl import pe_spec

    from ._stimulus import _extreme_operands

    return _extreme_operands(pe_spec(spec), None)


def _systolic_plan(
    b: _Builder,
    g: _SysGen,
    vectors: int,
    exhaustive: bool,
    real: dict[str, np.ndarray] | None,
    notes: list[str],
) -> bool:
    spec, rng = g.spec, g.rng
    R, C = g.R, g.C
    b.add("reset", 2, rst=1, valid=1, first=1, last=g.bits(2, 0.5), **_lanes_cols(g, {
        "a": g.a(2), "w": g.w(2), **({"z": g.z(2)} if g.has_z else {})}))
    # every (w, a[, z]) through every PE
    limit = EXHAUSTIVE_LIMIT if exhaustive else EXHAUSTIVE_DEFAULT_LIMIT
    ea, ew, ez, full = _exhaustive_ks(g, limit)
    if not full:
        space = (g.ahi - g.alo + 1) * g.nw * g.nz
        notes.append(f"pair space {space} > {limit}: {limit} random k's instead of every pair per PE")
    start = 0
    for size in _split(ea.shape[0], rng, 64, 1024):
        s = slice(start, start + size)
        _tile(b, g, "exhaustive", ea[s], ew[s], None if ez is None else ez[s])
        start += size
    # overflow: largest, smallest, largest product in one tile; then tiles of extreme operands
    (wp, ap, zp), (wn, an, zn) = _extremes(spec)
    seq = np.concatenate([np.zeros(1024, np.int64), np.ones(2048, np.int64), np.zeros(1024, np.int64)])
    oa = np.where(seq[:, None] == 0, ap, an) * np.ones((1, R), np.int64)
    ow = np.where(seq[:, None] == 0, wp, wn) * np.ones((1, C), np.int64)
    oz = (np.where(seq[:, None] == 0, zp, zn) * np.ones((1, C), np.int64)) if g.has_z else None
    _tile(b, g, "overflow", oa, ow, oz)
    for _ in range(3):
        kk = 512
        pick = rng.integers(0, 2, (kk, R))
        xa = np.where(pick == 0, ap, an)
        pw = rng.integers(0, 2, (kk, C))
        xw = np.where(pw == 0, wp, wn)
        xz = np.where(pw == 0, zp, zn) if g.has_z else None
        _tile(b, g, "overflow", xa, xw, xz)
    if exhaustive:
        from models import golden
        from rtl import pe_spec

        pmax = int(golden.products(pe_spec(spec), np.array([wp]), np.array([ap]),
                                   z=np.array([zp]) if g.has_z else None)[0])
        need = -(-(1 << (spec.acc_bits - 1)) // max(pmax, 1)) + 64
        if need <= WRAP_FULL_MAX_CYCLES:
            _tile(b, g, "wrap_full", np.full((need, R), ap), np.full((need, C), wp),
                  np.full((need, C), zp) if g.has_z else None)
        else:
            notes.append(f"wrap_full skipped: {need} cycles to wrap {spec.acc_bits} bits > {WRAP_FULL_MAX_CYCLES}")

    def rnd(kk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return g.a(kk), g.w(kk), g.z(kk) if g.has_z else None

    # back to back at exactly the schedule period; K = 1, 2, 3, R + C and 64
    for kk in (1, 1, 2, 3, R + C, 64, 64, 64, 1):
        _tile(b, g, "back_to_back", *rnd(kk))
    # bubbles: valid = 0 gaps inside tiles, one long gap
    for kk, p in ((64, 0.5), (100, 0.2), (70, 0.9)):
        _tile(b, g, "bubbles", *rnd(kk), bubble_p=p)
    la, lw, lz = rnd(80)
    # no last yet: the tile goes on after a long idle stretch
    _tile(b, g, "bubbles", la[:40], lw[:40], None if lz is None else lz[:40], last=False, gap=150)
    _tile(b, g, "bubbles", la[40:], lw[40:], None if lz is None else lz[40:], first=False)
    # random tiles, bubbles, gaps and resets
    if vectors > 0:
        begin = b.n
        while b.n - begin < vectors:
            u = rng.random()
            kk = int(rng.integers(64, 301) if u < 0.7 else rng.integers(1, 17) if u < 0.9
                     else rng.integers(301, 1001))
            gap = _min_gap(spec) + (0 if rng.random() < 0.6 else int(rng.integers(0, 31)))
            bubble = float(rng.choice([0.0, 0.0, 0.1, 0.4]))
            reset_at = int(rng.integers(0, kk)) if rng.random() < 0.05 else None
            after = str(rng.choice(["continue", "drop", "restart"]))
            gap_reset = rng.random() < 0.05  # a reset in the gap: pending or running drain
            if gap_reset:
                gap = int(rng.integers(0, _min_gap(spec) + 1))
            _tile(b, g, "random", *rnd(kk), bubble_p=bubble, gap=gap, reset_at=reset_at, after_reset=after)
            if gap_reset:
                b.add("random", 1, rst=1, **_lanes_cols(g, g.garbage(1)))
    # resets in the middle of things
    _tile(b, g, "reset_midstream", *rnd(100), reset_at=40, after_reset="continue")
    _tile(b, g, "reset_midstream", *rnd(64), reset_at=30, after_reset="restart")
    _tile(b, g, "reset_midstream", *rnd(64), reset_at=63, after_reset="drop")  # on the last k
    for delay in (2, R + C - 1 + R // 2, R + C - 1):  # pending drain, inside it, at its start
        _tile(b, g, "reset_midstream", *rnd(64), gap=delay)
        b.add("reset_midstream", 1, rst=1, **_lanes_cols(g, g.garbage(1)))
        _tile(b, g, "reset_midstream", *rnd(int(rng.integers(1, 70))), gap=0)  # right after the reset
        b.add("reset_midstream", _min_gap(spec), **_lanes_cols(g, g.garbage(_min_gap(spec))))
    b.add("reset_midstream", 3, rst=1, valid=1, first=1, last=1, **_lanes_cols(g, {
        "a": g.a(3), "w": g.w(3), **({"z": g.z(3)} if g.has_z else {})}))
    _tile(b, g, "reset_midstream", *rnd(64), first=False)  # after a reset: zero accumulators
    if real is not None:
        ra, rw, rz = real["a"], real["w"], real.get("z")
        for t in range(ra.shape[0]):
            _tile(b, g, "real_data", ra[t], rw[t], None if rz is None else rz[t])
    b.add("tail", 2 * R + C + 2, **_lanes_cols(g, g.garbage(2 * R + C + 2)))
    return full


def systolic_real_columns(
    spec: UnitSpec,
    activations: np.ndarray,
    weight_codes: np.ndarray,
    zero_points: np.ndarray | None = None,
    k: int = REAL_TILE_K,
) -> dict[str, np.ndarray]:
    """Real-data tiles: ``a`` (tiles, K, R), ``w`` (tiles, K, C), ``z`` (tiles, K, C).

    Row i of tile t takes the activation stream's slice (t·R + i)·K … +K (consecutive features
    of the stream), column j the weight-code slice (t·C + j)·K … with its per-element zero
    points; as many whole tiles as both streams fill."""
    R, C = spec.rows, spec.cols
    acts = np.asarray(activations).reshape(-1)
    codes = np.asarray(weight_codes).reshape(-1)
    if acts.dtype.kind not in "iu" or codes.dtype.kind not in "iu":
        raise MacforgeError("real-data activations and weight codes must be integer arrays")
    lo, hi = spec.act_range
    if acts.size and (acts.min() < lo or acts.max() > hi):
        raise MacforgeError(f"real-data activations out of range [{lo}, {hi}]")
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << spec.decode.bits):
        raise MacforgeError(f"real-data weight codes out of range [0, {(1 << spec.decode.bits) - 1}]")
    n_tiles = min(acts.size // (R * k), codes.size // (C * k))
    if n_tiles == 0:
        raise MacforgeError(f"real-data streams fill no {R}×{C}×{k} tile")
    out = {
        "a": acts[: n_tiles * R * k].astype(np.int64).reshape(n_tiles, R, k).transpose(0, 2, 1),
        "w": codes[: n_tiles * C * k].astype(np.int64).reshape(n_tiles, C, k).transpose(0, 2, 1),
    }
    if spec.decode.zp_mask is not None:
        if zero_points is None:
            raise MacforgeError(f"unit {spec.name} needs real-data zero points")
        zp = np.asarray(zero_points).reshape(-1)[: n_tiles * C * k].astype(np.int64)
        if zp.size < n_tiles * C * k or zp.min() < 0 or zp.max() > spec.decode.zp_max:
            raise MacforgeError(f"real-data zero points: one per weight code in [0, {spec.decode.zp_max}]")
        out["z"] = zp.reshape(n_tiles, C, k).transpose(0, 2, 1)
    return out


def build_systolic_stimulus(
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
    """The full plan of a systolic unit (see the module docstring); ``real_only``: reset, the
    real-data tiles and the tail."""
    if spec.kind != "systolic":
        raise MacforgeError(f"unit {spec.name} is a {spec.kind}, not a systolic array")
    lanes = _lanes_of(ports)
    b = _Builder(spec, lanes)
    g = _SysGen(spec, np.random.default_rng(seed))
    notes = list(notes or [])
    if real_only:
        if real is None:
            raise MacforgeError("real_only needs a real-data stream")
        b.add("reset", 2, rst=1)
        for t in range(real["a"].shape[0]):
            _tile(b, g, "real_data", real["a"][t], real["w"][t], real["z"][t] if "z" in real else None)
        b.add("tail", 2 * g.R + g.C + 2)
        return b.build(notes, False)
    full = _systolic_plan(b, g, vectors, exhaustive, real, notes)
    return b.build(notes, full)
