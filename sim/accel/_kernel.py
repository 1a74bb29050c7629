"""The tile search of ``_dataflow.evaluate_gemm`` as one numba loop (sweeps evaluate millions of
candidates). ``_dataflow.evaluate_gemm_reference`` is the readable numpy version of the same
arithmetic; tests/test_accel.py checks they agree.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["search_tiles", "warm", "OUT_FIELDS", "PARAMS"]

OUT_FIELDS = ("cycles", "compute", "sram_w_cyc", "sram_a_cyc", "sram_o_cyc", "dram_cyc", "tile_m", "tile_n",
              "use_nm", "a_d", "w_d", "y_d", "w_sram", "a_sram", "o_sram", "e_mac", "e_sram", "e_dram", "folds")


@numba.njit(cache=True, inline="always")
def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@numba.njit(cache=True)
def _folds_per(df: int, sched: int, r: int, c: int, m: int, kl: int, n: int) -> tuple[int, int]:
    if df == 0:  # os
        return _cdiv(m, r) * _cdiv(n, c), kl + (2 * r if sched == 0 else r) + c - 2
    if df == 1:  # ws
        return _cdiv(kl, r) * _cdiv(n, c), m + 2 * r + c - 2
    return _cdiv(kl, r) * _cdiv(m, c), n + 2 * r + c - 2  # is


PARAMS = ("df", "sched", "r", "c", "lanes", "arrays", "acc", "m", "k", "n", "count", "a_bits", "w_bits", "y_bits",
          "a_dram", "w_dram", "y_dram", "w_buf", "a_buf", "o_buf", "w_port", "a_port", "o_port", "dram_bpc",
          "mac_pj", "w_rd", "w_wr", "a_rd", "a_wr", "o_rd", "o_wr", "dram_pj")


@numba.njit(cache=True)
def search_tiles(p: np.ndarray, mts: np.ndarray, nts: np.ndarray) -> np.ndarray:
    """Best tile for one GEMM. ``p``: float64 parameters in ``PARAMS`` order (one array: numba's
    per-argument dispatch cost would dominate a 35-scalar call); returns ``OUT_FIELDS``."""
    df, sched, r, c, lanes, arrays, acc = (int(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]),
                                          int(p[6]))
    m, k, n, count = int(p[7]), int(p[8]), int(p[9]), int(p[10])
    a_bits, w_bits, y_bits = p[11], p[12], p[13]
    a_dram, w_dram, y_dram = p[14] != 0.0, p[15] != 0.0, p[16] != 0.0
    w_buf, a_buf, o_buf, w_port, a_port, o_port, dram_bpc = p[17], p[18], p[19], p[20], p[21], p[22], p[23]
    mac_pj, w_rd, w_wr, a_rd, a_wr, o_rd, o_wr, dram_pj = p[24], p[25], p[26], p[27], p[28], p[29], p[30], p[31]
    kl = _cdiv(k, lanes)
    kfolds = _cdiv(kl, r)
    a_tot, w_tot, y_tot = m * k * a_bits, k * n * w_bits, m * n * y_bits
    best = np.full(len(OUT_FIELDS), np.inf)
    best_key2 = np.inf
    best_key3 = 0.0
    any_ok = False
    for pass_ in range(2):  # second pass only if no tile fits (then the smallest is used)
        for mt in mts:
            for nt in nts:
                if pass_ == 0 and mt * nt * acc > o_buf / 2:
                    continue
                if pass_ == 1 and not (mt == mts[0] and nt == nts[0]):
                    continue
                any_ok = True
                n_m, n_n = _cdiv(m, mt), _cdiv(n, nt)
                m_full, m_rem = m // mt, m % mt
                n_full, n_rem = n // nt, n % nt
                folds_total = 0
                compute = 0
                for mi in range(2):
                    ms = mt if mi == 0 else max(m_rem, 1)
                    mmul = m_full if mi == 0 else (1 if m_rem > 0 else 0)
                    for ni in range(2):
                        ns = nt if ni == 0 else max(n_rem, 1)
                        nmul = n_full if ni == 0 else (1 if n_rem > 0 else 0)
                        f, per = _folds_per(df, sched, r, c, ms, kl, ns)
                        nf = f * mmul * nmul * count
                        folds_total += nf
                        compute += _cdiv(nf, arrays) * per
                if sched == 1:
                    compute -= _cdiv(count, arrays)
                a_mn = a_tot if mt * k * a_bits <= a_buf / 2 else a_tot * n_n
                w_mn = w_tot if w_tot <= w_buf / 2 else w_tot * n_m
                w_nm = w_tot if k * nt * w_bits <= w_buf / 2 else w_tot * n_m
                a_nm = a_tot if a_tot <= a_buf / 2 else a_tot * n_n
                if not a_dram:
                    a_mn = 0.0
                    a_nm = 0.0
                if not w_dram:
                    w_mn = 0.0
                    w_nm = 0.0
                use_nm = (a_nm + w_nm) < (a_mn + w_mn)
                a_d = (a_nm if use_nm else a_mn) * count
                w_d = (w_nm if use_nm else w_mn) * count
                y_d = y_tot * count if y_dram else 0.0
                dram = a_d + w_d + y_d
                col_folds = n_full * _cdiv(nt, c) + (_cdiv(n_rem, c) if n_rem > 0 else 0)
                if df == 0:
                    row_folds = m_full * _cdiv(mt, r) + (_cdiv(m_rem, r) if m_rem > 0 else 0)
                    a_rd_el, w_rd_el, o_el = m * k * col_folds, k * n * row_folds, m * n
                elif df == 1:
                    a_rd_el, w_rd_el, o_el = m * k * col_folds, k * n, m * n * kfolds
                else:
                    row_folds = m_full * _cdiv(mt, c) + (_cdiv(m_rem, c) if m_rem > 0 else 0)
                    a_rd_el, w_rd_el, o_el = m * k, k * n * row_folds, m * n * kfolds
                a_sram = a_rd_el * a_bits * count
                w_sram = w_rd_el * w_bits * count
                o_sram = o_el * acc * count  # reads and writes each
                a_fill = a_d if a_dram else a_tot * count
                w_fill = w_d if w_dram else w_tot * count
                sw = w_sram / w_port  # the buffers (and their banks) are shared by all arrays
                sa = a_sram / a_port
                so = 2.0 * o_sram / o_port
                eff = max(float(compute), sw, sa, so)
                dcyc = dram / dram_bpc
                steps = max(_cdiv(folds_total, arrays), 1)
                cs, ds = eff / steps, dcyc / steps
                cycles = ds + cs + (steps - 1) * max(cs, ds)
                e_mac = m * k * n * count * mac_pj
                e_sram = (w_sram * w_rd + w_fill * w_wr + a_sram * a_rd + a_fill * a_wr + o_sram * (o_rd + o_wr))
                e_dram = dram * dram_pj
                energy = e_mac + e_sram + e_dram
                key3 = -float(mt * nt)
                if (cycles < best[0] or (cycles == best[0] and (energy < best_key2 or
                                                                (energy == best_key2 and key3 < best_key3)))):
                    best_key2, best_key3 = energy, key3
                    out = (cycles, float(compute), sw, sa, so, dcyc, float(mt), float(nt), 1.0 if use_nm else 0.0,
                           a_d, w_d, y_d, w_sram + w_fill, a_sram + a_fill, 2.0 * o_sram, e_mac, e_sram, e_dram,
                           float(folds_total))
                    for i in range(len(out)):
                        best[i] = out[i]
        if any_ok:
            break
    return best


def warm() -> None:
    """Load the compiled kernel (numba's on-disk cache) into this process: a parent that forks
    sweep workers does it once instead of every worker (about a second each)."""
    p = np.ones(len(PARAMS))
    p[0] = p[1] = 0.0  # os, macforge schedule
    p[17:20] = 1e9  # buffers large enough for the 1x1x1 GEMM
    cand = np.ones(1, dtype=np.int64)
    cand.setflags(write=False)  # as the real candidate arrays (_candidates): the same specialisation
    search_tiles(p, cand, cand)
