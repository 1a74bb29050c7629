"""Systolic schedules and the per-GEMM tiling, traffic and timing model.

Cycle schedule of one *fold* (an R × C array mapping of part of a GEMM; ``fold_cycles``)
------------------------------------------------------------------------------------------
With K_L = ceil(K / lanes) (an L-lane PE consumes L consecutive reduction elements per cycle):

========  ===========  =========  ===========  ==============================  =====================
dataflow  array rows   array cols  streamed T  ``macforge`` (the RTL)          ``scalesim`` (3.0.0)
========  ===========  =========  ===========  ==============================  =====================
os        M            N          K_L          T + 2R + C - 2                  T + R + C - 2
ws        K_L          N          M            R + (T + R + C - 2)             same
is        K_L          M          N            R + (T + R + C - 2)             same
========  ===========  =========  ===========  ==============================  =====================

``macforge`` OS is ``rtl._systolic``'s schedule: skewed operands reach PE(i, j) at cycle
k + i + j, the last MAC is at K_L - 1 + R - 1 + C - 1, then R drain cycles shift the result rows
out of the south edge. WS/IS first preload R rows of the stationary operand (R cycles), then
stream T skewed vectors; the last partial sum leaves the array T + R + C - 2 cycles later.
Folds run back to back with no overlap of one fold's drain with the next's fill (as in the RTL
and in SCALE-Sim). SCALE-Sim 3.0.0 does not charge the OS drain (its output demand matrix
overlaps the write-out with the skew) and reports one cycle less per layer; ``scalesim``
reproduces its "Total Cycles" exactly (tests/test_accel_scalesim.py).

Buffers, DRAM and overlap
-------------------------
The GEMM is split into outer tiles of Mt × Nt outputs, each accumulated on chip over the whole
K (partial sums never leave the output buffer). Loop order m-outer (A panel Mt × K loaded once
per m-tile; W re-read per m-tile unless all of W fits) or n-outer (the mirror image), whichever
moves fewer DRAM bits; a panel is reused only if it fits in half its buffer (double buffering:
the other half receives the next tile). The Mt, Nt candidates are the full extent and
array-aligned powers of two below it; the one with the fewest cycles (then least energy, then the largest tile) wins.

Timing: the array's cycles are max(compute, each buffer's SRAM-port cycles: array-side reads
and partial-sum traffic / (banks × word bits), one set of buffers shared by all arrays; DRAM
fills go to the other half of the double buffer and do not compete) ("effective compute"),
DRAM cycles = DRAM bits / bits per cycle. Double buffering overlaps the DRAM transfer
of step i+1 with the compute of step i over n = (sequential fold steps) equal steps:
cycles = d + c + (n - 1)·max(c, d) with c, d the per-step compute and DRAM cycles, so the first
load and the last compute are exposed. The roof with the most cycles is the GEMM's ``bound``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from models.errors import MacforgeError

__all__ = ["fold_cycles", "gemm_compute_cycles", "GemmMachine", "evaluate_gemm", "evaluate_gemm_reference",
           "GemmResult"]


def fold_cycles(dataflow: str, rows: int, cols: int, m: int, k: int, n: int, lanes: int = 1,
                schedule: str = "macforge") -> tuple[int, int]:
    """(number of folds, cycles per fold) of an M × K × N GEMM on an R × C array (see the module
    docstring; ``k`` is the reduction length in elements, divided into lanes here)."""
    for name, v in (("rows", rows), ("cols", cols), ("m", m), ("k", k), ("n", n), ("lanes", lanes)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise MacforgeError(f"{name} must be a positive integer, not {v!r}")
    kl = -(-k // lanes)
    if dataflow == "os":
        folds = -(-m // rows) * -(-n // cols)
        per = kl + (2 * rows if schedule == "macforge" else rows) + cols - 2
    elif dataflow == "ws":
        folds = -(-kl // rows) * -(-n // cols)
        per = m + 2 * rows + cols - 2
    elif dataflow == "is":
        folds = -(-kl // rows) * -(-m // cols)
        per = n + 2 * rows + cols - 2
    else:
        raise MacforgeError(f"dataflow must be os, ws or is, not {dataflow!r}")
    if schedule not in ("macforge", "scalesim"):
        raise MacforgeError(f"schedule must be 'macforge' or 'scalesim', not {schedule!r}")
    return int(folds), int(per)


def gemm_compute_cycles(dataflow: str, rows: int, cols: int, m: int, k: int, n: int, lanes: int = 1,
                        schedule: str = "macforge") -> int:
    """Compute cycles (no memory stalls) of one GEMM mapped whole onto one array: folds × per-fold
    cycles (``scalesim``: minus the one cycle SCALE-Sim 3.0.0 does not count per layer)."""
    folds, per = fold_cycles(dataflow, rows, cols, m, k, n, lanes, schedule)
    return folds * per - (1 if schedule == "scalesim" else 0)


@dataclass(frozen=True)
class GemmMachine:
    """What the GEMM model needs to know about the accelerator (plain numbers, picklable)."""

    rows: int
    cols: int
    lanes: int
    arrays: int
    dataflow: str
    schedule: str
    acc_bits: int
    w_buf_bits: float
    a_buf_bits: float
    o_buf_bits: float
    w_port_bits: int
    a_port_bits: int
    o_port_bits: int
    dram_bits_per_cycle: float
    mac_pj: float
    w_rd_pj: float
    w_wr_pj: float
    a_rd_pj: float
    a_wr_pj: float
    o_rd_pj: float
    o_wr_pj: float
    dram_pj_bit: float

    # Hashed once: a sweep looks the same machine up in ``gemm_raw``'s cache for every GEMM of
    # every workload (the generated hash rebuilds a 22-field tuple each time). Not pickled: a
    # string's hash differs between processes.
    def __hash__(self) -> int:
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, f) for f in _MACHINE_FIELDS))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def params(self) -> np.ndarray:
        """``_kernel.PARAMS`` with this machine's entries filled (the GEMM's own entries 7-16 are
        zero), built once per machine."""
        p = self.__dict__.get("_params")
        if p is None:
            p = np.array([_DF[self.dataflow], 0 if self.schedule == "macforge" else 1, self.rows, self.cols,
                          self.lanes, self.arrays, self.acc_bits, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, self.w_buf_bits,
                          self.a_buf_bits, self.o_buf_bits, self.w_port_bits, self.a_port_bits, self.o_port_bits,
                          self.dram_bits_per_cycle, self.mac_pj, self.w_rd_pj, self.w_wr_pj, self.a_rd_pj,
                          self.a_wr_pj, self.o_rd_pj, self.o_wr_pj, self.dram_pj_bit], dtype=np.float64)
            p.setflags(write=False)
            object.__setattr__(self, "_params", p)
        return p


_MACHINE_FIELDS = tuple(f.name for f in dataclasses.fields(GemmMachine))


@dataclass(frozen=True)
class GemmResult:
    cycles: float
    cycles_compute: int
    cycles_sram: float
    cycles_dram: float
    bound: str
    tile_m: int
    tile_n: int
    order: str
    dram_bits: dict[str, float]
    sram_bits: dict[str, float]
    energy_pj: dict[str, float]
    folds: int

    def as_row(self) -> dict[str, Any]:
        """A fresh dict of the result's fields (``dram_bytes_*``, ``sram_bytes_*``, ``energy_pj_*``)."""
        cached = self.__dict__.get("_row")
        if cached is None:
            cached = self._row_uncached()
            object.__setattr__(self, "_row", cached)
        return dict(cached)

    def _row_uncached(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "cycles": self.cycles, "cycles_compute": self.cycles_compute, "cycles_sram": self.cycles_sram,
            "cycles_dram": self.cycles_dram, "bound": self.bound, "tile_m": self.tile_m, "tile_n": self.tile_n,
            "loop_order": self.order, "folds": self.folds,
        }
        row.update({f"dram_bytes_{k}": v / 8 for k, v in self.dram_bits.items()})
        row.update({f"sram_bytes_{k}": v / 8 for k, v in self.sram_bits.items()})
        row.update({f"energy_pj_{k}": v for k, v in self.energy_pj.items()})
        return row


@lru_cache(maxsize=4096)
def _candidates(extent: int, align: int) -> np.ndarray:
    c = {extent}
    t = align
    while t < extent:
        c.add(t)
        t *= 2
    out = np.array(sorted(c), dtype=np.int64)
    out.setflags(write=False)
    return out


def _ceil(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return -(-np.asarray(a) // np.asarray(b))


def _folds_per(df: str, r: int, c: int, m: np.ndarray, kl: int, n: np.ndarray, sched: str) -> tuple[np.ndarray, np.ndarray]:
    if df == "os":
        return _ceil(m, r) * _ceil(n, c), np.full(np.broadcast(m, n).shape, kl + (2 * r if sched == "macforge" else r) + c - 2)
    if df == "ws":
        return np.broadcast_to(_ceil(kl, r) * _ceil(n, c), np.broadcast(m, n).shape), m + 2 * r + c - 2 + 0 * n
    return np.broadcast_to(_ceil(kl, r) * _ceil(m, c), np.broadcast(m, n).shape), n + 2 * r + c - 2 + 0 * m


def _check_fits(mc: GemmMachine, m: int, k: int, n: int, a_bits: float, w_bits: float) -> None:
    """A tile that fits no buffer is an error: the minimal working set of one fold (the R × C
    accumulators for OS, one streamed row for WS/IS) and the stationary fold operand."""
    r, c, L, df = mc.rows, mc.cols, mc.lanes, mc.dataflow
    kl = -(-k // L)
    acc = mc.acc_bits
    min_out = {"os": (min(m, r), min(n, c)), "ws": (1, min(n, c)), "is": (min(m, c), 1)}[df]
    need_o = min_out[0] * min_out[1] * acc
    if need_o > mc.o_buf_bits / 2:
        raise MacforgeError(f"a {min_out[0]}×{min_out[1]} tile of {acc}-bit accumulators "
                            f"({need_o / 8 / 1024:.3g} KiB) fits no half of the output buffer "
                            f"({mc.o_buf_bits / 16 / 1024:.3g} KiB)")
    if df == "ws" and min(kl, r) * L * min(n, c) * w_bits > mc.w_buf_bits / 2:
        raise MacforgeError("one fold of stationary weights fits no half of the weight buffer")
    if df == "is" and min(kl, r) * L * min(m, c) * a_bits > mc.a_buf_bits / 2:
        raise MacforgeError("one fold of stationary inputs fits no half of the input buffer")


def _tile_candidates(mc: GemmMachine, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    df, r, c = mc.dataflow, mc.rows, mc.cols
    return (_candidates(m, r if df == "os" else c if df == "is" else max(r, 8)),
            _candidates(n, c if df in ("os", "ws") else max(c, 8)))


_DF = {"os": 0, "ws": 1, "is": 2}


BOUNDS = ("compute", "sram_weights", "sram_inputs", "sram_outputs", "dram")


@lru_cache(maxsize=1 << 16)  # sweeps and decoder layers repeat GEMMs on the same machine
def gemm_raw(mc: GemmMachine, m: int, k: int, n: int, count: int, a_bits: float, w_bits: float, y_bits: float,
             a_dram: bool = True, w_dram: bool = True, y_dram: bool = True) -> tuple[float, ...]:
    """``_kernel.search_tiles``'s result tuple (``_kernel.OUT_FIELDS``) for one GEMM; raises
    ``MacforgeError`` when no tile fits."""
    _check_fits(mc, m, k, n, a_bits, w_bits)
    mts, nts = _tile_candidates(mc, m, n)
    p = mc.params().copy()
    p[7:17] = (m, k, n, count, a_bits, w_bits, y_bits, a_dram, w_dram, y_dram)
    return tuple(_search_tiles()(p, mts, nts).tolist())


@lru_cache(maxsize=1)
def _search_tiles() -> Any:
    from ._kernel import search_tiles  # numba: imported on first use, not with the package

    return search_tiles


def bound_of(o: tuple[float, ...]) -> str:
    """The roof with the most cycles (first of ``BOUNDS`` on a tie) of a ``gemm_raw`` tuple."""
    roofs = (o[1], o[2], o[3], o[4], o[5])
    return BOUNDS[roofs.index(max(roofs))]


def evaluate_gemm(mc: GemmMachine, m: int, k: int, n: int, count: int, a_bits: float, w_bits: float,
                  y_bits: float, a_dram: bool = True, w_dram: bool = True, y_dram: bool = True,
                  name: str = "gemm") -> GemmResult:
    """Cycles, traffic and energy of ``count`` independent M × K × N GEMMs (module docstring);
    the tile search runs in ``_kernel.search_tiles`` (numba)."""
    try:
        o = gemm_raw(mc, m, k, n, count, a_bits, w_bits, y_bits, a_dram, w_dram, y_dram)
    except MacforgeError as e:
        raise MacforgeError(f"{name}: {e}") from None
    (cycles, compute, sw, sa, so, dcyc, tm, tn, use_nm, a_d, w_d, y_d, w_s, a_s, o_s, e_mac, e_sram, e_dram,
     folds) = o
    return GemmResult(
        cycles=float(cycles), cycles_compute=int(compute), cycles_sram=float(max(sw, sa, so)),
        cycles_dram=float(dcyc), bound=bound_of(o), tile_m=int(tm), tile_n=int(tn),
        order="n-outer" if use_nm else "m-outer",
        dram_bits={"weights": float(w_d), "inputs": float(a_d), "outputs": float(y_d)},
        sram_bits={"weights": float(w_s), "inputs": float(a_s), "outputs": float(o_s)},
        energy_pj={"mac": float(e_mac), "sram": float(e_sram), "dram": float(e_dram)}, folds=int(folds))


def evaluate_gemm_reference(mc: GemmMachine, m: int, k: int, n: int, count: int, a_bits: float, w_bits: float,
                            y_bits: float, a_dram: bool = True, w_dram: bool = True, y_dram: bool = True,
                            name: str = "gemm") -> GemmResult:
    """``evaluate_gemm`` in plain numpy over all tile candidates at once (the readable reference)."""
    try:
        _check_fits(mc, m, k, n, a_bits, w_bits)
    except MacforgeError as e:
        raise MacforgeError(f"{name}: {e}") from None
    r, c, L, df = mc.rows, mc.cols, mc.lanes, mc.dataflow
    kl = -(-k // L)
    acc = mc.acc_bits
    mts, nts = _tile_candidates(mc, m, n)
    mt, nt = np.meshgrid(mts, nts, indexing="ij")
    mt, nt = mt.ravel(), nt.ravel()
    ok = mt * nt * acc <= mc.o_buf_bits / 2
    if not ok.any():
        ok = (mt == mts[0]) & (nt == nts[0])  # unreachable after the check above; keeps shapes
    mt, nt = mt[ok], nt[ok]
    n_m, n_n = _ceil(m, mt), _ceil(n, nt)
    # compute: four tile shapes (full / remainder along m and n)
    m_full, m_rem = m // mt, m % mt
    n_full, n_rem = n // nt, n % nt
    folds_total = np.zeros(mt.shape, dtype=np.int64)
    compute = np.zeros(mt.shape, dtype=np.int64)
    for ms, mmul in ((mt, m_full), (np.maximum(m_rem, 1), (m_rem > 0).astype(np.int64))):
        for ns, nmul in ((nt, n_full), (np.maximum(n_rem, 1), (n_rem > 0).astype(np.int64))):
            f, per = _folds_per(df, r, c, ms, kl, ns, mc.schedule)
            nf = f * mmul * nmul * count
            folds_total += nf
            compute += _ceil(nf, mc.arrays) * per
    if mc.schedule == "scalesim":
        compute -= -(-count // mc.arrays)
    # DRAM traffic (bits) for both loop orders
    a_tot, w_tot, y_tot = m * k * a_bits, k * n * w_bits, m * n * y_bits
    a_panel_fits = mt * k * a_bits <= mc.a_buf_bits / 2
    w_panel_fits = k * nt * w_bits <= mc.w_buf_bits / 2
    a_all_fits = a_tot <= mc.a_buf_bits / 2
    w_all_fits = w_tot <= mc.w_buf_bits / 2
    a_mn = np.where(a_panel_fits, a_tot, a_tot * n_n)
    w_mn = np.where(w_all_fits, w_tot, w_tot * n_m)
    w_nm = np.where(w_panel_fits, w_tot, w_tot * n_m)
    a_nm = np.where(a_all_fits, a_tot, a_tot * n_n)
    a_mn, w_mn, a_nm, w_nm = (x * (1.0 if f else 0.0) for x, f in
                              ((a_mn, a_dram), (w_mn, w_dram), (a_nm, a_dram), (w_nm, w_dram)))
    use_nm = (a_nm + w_nm) < (a_mn + w_mn)
    a_d = np.where(use_nm, a_nm, a_mn) * count
    w_d = np.where(use_nm, w_nm, w_mn) * count
    y_d = np.full(mt.shape, y_tot * count if y_dram else 0.0)
    dram = a_d + w_d + y_d
    # SRAM traffic (bits), array side, per dataflow; plus DRAM fills / write-back
    kfolds = -(-kl // r)
    col_folds = n_full * _ceil(nt, c) + (n_rem > 0) * _ceil(np.maximum(n_rem, 1), c)  # over the N extent
    row_folds_r = m_full * _ceil(mt, r) + (m_rem > 0) * _ceil(np.maximum(m_rem, 1), r)  # M on rows (os)
    row_folds_c = m_full * _ceil(mt, c) + (m_rem > 0) * _ceil(np.maximum(m_rem, 1), c)  # M on cols (is)
    ones = np.ones(mt.shape)
    if df == "os":  # A rows re-read for every column fold, W columns for every row fold
        a_rd, w_rd = m * k * col_folds, k * n * row_folds_r
        o_wr = o_rd = ones * (m * n)
    elif df == "ws":  # weights read once into the array; partial sums revisit the output buffer
        a_rd, w_rd = m * k * col_folds, ones * (k * n)
        o_wr = o_rd = ones * (m * n * kfolds)  # kfolds writes; kfolds - 1 partial reads + 1 final read
    else:  # is: inputs read once into the array
        a_rd, w_rd = ones * (m * k), k * n * row_folds_c
        o_wr = o_rd = ones * (m * n * kfolds)
    a_sram = a_rd * a_bits * count
    w_sram = w_rd * w_bits * count
    o_sram_rd = o_rd * acc * count
    o_sram_wr = o_wr * acc * count
    # buffer fills: from DRAM, or written on chip by the producer (fused attention)
    a_fill = a_d if a_dram else ones * (a_tot * count)
    w_fill = w_d if w_dram else ones * (w_tot * count)
    # fills land in the half of the double buffer the array is not reading: only array-side
    # traffic competes for the ports
    sram_w_cyc = w_sram / mc.w_port_bits  # the buffers (and their banks) are shared by all arrays
    sram_a_cyc = a_sram / mc.a_port_bits
    sram_o_cyc = (o_sram_rd + o_sram_wr) / mc.o_port_bits
    eff = np.maximum.reduce([compute.astype(np.float64), sram_w_cyc, sram_a_cyc, sram_o_cyc])
    dram_cyc = dram / mc.dram_bits_per_cycle
    steps = np.maximum(_ceil(folds_total, mc.arrays), 1)
    cs, ds = eff / steps, dram_cyc / steps
    cycles = ds + cs + (steps - 1) * np.maximum(cs, ds)
    e_mac = m * k * n * count * mc.mac_pj
    e_w = w_sram * mc.w_rd_pj + w_fill * mc.w_wr_pj
    e_a = a_sram * mc.a_rd_pj + a_fill * mc.a_wr_pj
    e_o = o_sram_rd * mc.o_rd_pj + o_sram_wr * mc.o_wr_pj
    e_d = dram * mc.dram_pj_bit
    energy = e_mac + e_w + e_a + e_o + e_d
    best = np.lexsort((-(mt * nt), energy, cycles))[0]  # fewest cycles, least energy, largest tile
    roofs = {"compute": float(compute[best]), "sram_weights": float(sram_w_cyc[best]),
             "sram_inputs": float(sram_a_cyc[best]), "sram_outputs": float(sram_o_cyc[best]),
             "dram": float(dram_cyc[best])}
    bound = max(roofs, key=roofs.get)  # type: ignore[arg-type]
    return GemmResult(
        cycles=float(cycles[best]), cycles_compute=int(compute[best]),
        cycles_sram=float(max(sram_w_cyc[best], sram_a_cyc[best], sram_o_cyc[best])),
        cycles_dram=float(dram_cyc[best]), bound=bound, tile_m=int(mt[best]), tile_n=int(nt[best]),
        order="n-outer" if use_nm[best] else "m-outer",
        dram_bits={"weights": float(w_d[best]), "inputs": float(a_d[best]), "outputs": float(y_d[best])},
        sram_bits={"weights": float(w_sram[best] + w_fill[best]), "inputs": float(a_sram[best] + a_fill[best]),
                   "outputs": float(o_sram_rd[best] + o_sram_wr[best])},
        energy_pj={"mac": float(e_mac), "sram": float(e_w[best] + e_a[best] + e_o[best]), "dram": float(e_d[best])},
        folds=int(folds_total[best]),
    )
