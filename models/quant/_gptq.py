"""GPTQ / OPTQ (Frantar et al., ICLR 2023) on one weight matrix, for any ``models.formats``
format and scaling.

Columns are quantized one at a time in input order (or by descending Hessian diagonal with
``act_order``); the error of each column is spread onto the columns not yet quantized through
the upper Cholesky factor of the damped inverse Hessian, with lazy batch updates of
``block_size`` columns. Scales come from the format's own scaling rule
(``Format.quantize`` of the current weights of a group, one row per output channel): per group
they are computed when the group's first column is reached (the weights updated so far), as in
the reference code; with ``act_order`` the groups are fixed from the original weights first
("static groups"), so the stored codes keep one scale per contiguous input group.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular

from ..errors import MacforgeError
from ..formats import Format, QuantizedTensor, Scaling

#: columns per inner lazy-update sub-block (module docstring of gptq_quantize's loop)
_SUB_BLOCK = 16

__all__ = ["gptq_quantize", "gptq_quantize_shared", "split_rows", "GptqResult", "hessian"]


def hessian(x: np.ndarray) -> np.ndarray:
    """``2 XᵀX / n`` (float64) of (tokens, in) inputs: the Hessian of the layer's squared error."""
    xa = np.asarray(x, dtype=np.float64)
    return 2.0 * (xa.T @ xa) / max(xa.shape[0], 1)


class GptqResult(NamedTuple):
    quantized: QuantizedTensor
    """codes and scales in the format's own container (dequantize() gives the weight)"""
    weight: np.ndarray
    """the dequantized weight, float32 (== quantized.dequantize())"""
    loss: float
    """GPTQ's proxy loss Σ (w - q)² / [U]_jj² over all elements (U: upper Cholesky of H⁻¹)"""
    row_loss: np.ndarray
    """that loss per output row"""


class _Params(NamedTuple):
    scale: np.ndarray       # (N,) combined scale (group scale × tensor scale)
    zero: np.ndarray | None  # (N,) integer zero points
    offset: np.ndarray | None  # (N,) affine offsets


def _params(fmt: Format, sc: Scaling, block: np.ndarray) -> tuple[_Params, QuantizedTensor]:
    """Scale, zero point and offset per row of ``block`` by the format's own rule."""
    gran = "tensor" if sc.granularity == "tensor" else "channel"
    q = fmt.quantize(block, replace(sc, granularity=gran))
    n = block.shape[0]
    scale = np.broadcast_to(q.scales.reshape(-1) * q.tensor_scale, (n,)).astype(np.float64)
    zero = None if q.zero_points is None else np.broadcast_to(q.zero_points.reshape(-1), (n,))
    off = None if q.offsets is None else np.broadcast_to(q.offsets.reshape(-1), (n,))
    return _Params(scale, zero, off), q


def _quant_col(fmt: Format, p: _Params, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = col if p.offset is None else col - p.offset
    codes = fmt.encode(x / p.scale, p.zero)
    v = fmt.decode(codes, p.zero) * p.scale
    if p.offset is not None:
        v = v + p.offset
    return codes, v


def _fixed_params(fixed: QuantizedTensor, n_groups: int) -> tuple[list[_Params], list[QuantizedTensor]]:
    """Per-group parameters taken from an existing QuantizedTensor (codes are recomputed)."""
    n = fixed.shape[0]
    sc = fixed.scales.reshape(n, -1) if fixed.scaling.granularity != "tensor" else \
        np.broadcast_to(fixed.scales.reshape(1, 1), (n, 1))
    if sc.shape[1] != n_groups:
        raise MacforgeError(f"fixed parameters have {sc.shape[1]} groups, expected {n_groups}")
    ps, qs = [], []
    for g in range(n_groups):
        zp = None if fixed.zero_points is None else fixed.zero_points.reshape(n, -1)[:, g]
        off = None if fixed.offsets is None else fixed.offsets.reshape(n, -1)[:, g]
        ps.append(_Params(sc[:, g] * fixed.tensor_scale, zp, off))
        qs.append(QuantizedTensor(fixed.format, fixed.scaling, (n, 1), np.zeros((n, 1), np.uint8),
                                  sc[:, g:g + 1].copy(), None if zp is None else zp[:, None].copy(),
                                  None if off is None else off[:, None].copy(), fixed.tensor_scale))
    return ps, qs


def gptq_quantize(w: np.ndarray, h: np.ndarray, fmt: Format, scaling: Scaling, *,
                  damp: float = 0.01, block_size: int = 128, act_order: bool = False,
                  fixed: QuantizedTensor | None = None) -> GptqResult:
    """Quantize ``w`` (out, in) with GPTQ given the input Hessian ``h`` (in, in).

    Parameters
    ----------
    damp
        Fraction of the mean Hessian diagonal added to the diagonal (the reference's
        ``percdamp`` = 0.01).
    block_size
        Columns per lazy batch update (reference: 128).
    act_order
        Quantize columns by descending Hessian diagonal (static groups, module docstring).
    fixed
        Keep these scales / zero points / offsets (same format and scaling) and only choose
        the integers (decoupleQ's integer step).
    """
    wa = np.array(w, dtype=np.float64)
    if wa.ndim != 2:
        raise MacforgeError(f"w must be a 2-D (out, in) matrix, got shape {wa.shape}")
    n, k = wa.shape
    ha = np.array(h, dtype=np.float64)
    if ha.shape != (k, k):
        raise MacforgeError(f"Hessian must be ({k}, {k}) for a weight with {k} inputs, got {ha.shape}")
    if scaling is None:
        raise MacforgeError(f"gptq needs a scaled format; {fmt.name} is used unscaled")
    if scaling.method == "nv" or scaling.outlier_fraction or scaling.double_quant_block:
        raise MacforgeError("gptq supports one-level scales only (not NVFP4's two-level scaling, "
                            "double-quantized scales or sparse outliers)")
    if not 0.0 <= damp < 1.0:
        raise MacforgeError(f"damp must be in [0, 1), not {damp!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise MacforgeError(f"block_size must be a positive integer, not {block_size!r}")
    gsize = scaling.group_size if scaling.granularity == "group" else None
    if gsize is not None and k % gsize:
        raise MacforgeError(f"group_size {gsize} does not divide the input ({k})")

    dead = np.diag(ha) == 0
    ha[dead, dead] = 1.0
    wa[:, dead] = 0.0
    perm = np.argsort(-np.diag(ha), kind="stable") if act_order else np.arange(k)
    inv_perm = np.argsort(perm)
    W = wa[:, perm]
    H = ha[np.ix_(perm, perm)]
    H[np.diag_indices(k)] += damp * float(np.mean(np.diag(H)))
    try:
        L = np.linalg.cholesky(H)
        Linv = solve_triangular(L, np.eye(k), lower=True)
        U = np.linalg.cholesky(Linv.T @ Linv).T  # H⁻¹ = L⁻ᵀ L⁻¹ = Uᵀ U, U upper
    except np.linalg.LinAlgError:
        raise MacforgeError("Hessian is not positive definite even after damping; "
                            "raise damp or use more calibration data") from None

    n_groups = 1 if gsize is None else k // gsize
    group_p: list[_Params | None] = [None] * n_groups
    group_q: list[QuantizedTensor | None] = [None] * n_groups
    if fixed is not None:
        group_p, group_q = _fixed_params(fixed, n_groups)  # type: ignore[assignment]
    elif gsize is None:  # one set of parameters from the original weights (reference)
        group_p[0], group_q[0] = _params(fmt, scaling, wa)
    elif act_order:  # static groups over the original (unpermuted) input order
        for g in range(n_groups):
            group_p[g], group_q[g] = _params(fmt, scaling, wa[:, g * gsize:(g + 1) * gsize])

    codes = np.zeros((n, k), dtype=fmt.code_dtype)
    # transposed (in, out) layout: a column of W is a contiguous row, so the per-column error
    # feedback touches contiguous memory
    WT = np.ascontiguousarray(W.T)
    QT = np.zeros((k, n))
    row_loss = np.zeros(n)
    for b0 in range(0, k, block_size):
        b1 = min(b0 + block_size, k)
        bw = b1 - b0
        W1 = WT[b0:b1].copy()
        E1 = np.zeros_like(W1)
        U1 = U[b0:b1, b0:b1]
        # two-level lazy updates: column i's error goes at once only to the columns of its
        # sub-block [s0, s1); the rest of the block gets the sub-block's errors as one product
        # when it ends (the same sums, reassociated)
        s0, s1 = 0, min(_SUB_BLOCK, bw)
        for i in range(bw):
            if i == s1 or (i > s0 and group_p[0 if gsize is None else perm[b0 + i] // gsize] is None):
                W1[s1:] -= U1[s0:i, s1:].T @ E1[s0:i]  # flush: columns >= i now up to date
                s0, s1 = i, min(i + _SUB_BLOCK, bw)
            j = perm[b0 + i]  # original column index
            g = 0 if gsize is None else j // gsize
            if group_p[g] is None:  # first column of a group (input order): fit it now
                cur = np.concatenate([W1[i:], WT[b1:]], axis=0)[:gsize].T
                group_p[g], group_q[g] = _params(fmt, scaling, cur)
            p = group_p[g]
            assert p is not None
            c, q = _quant_col(fmt, p, W1[i])
            codes[:, j] = c
            QT[b0 + i] = q
            d = U1[i, i]
            r = W1[i] - q
            row_loss += r * r / (d * d)
            err = r / d
            W1[i + 1:s1] -= np.outer(U1[i, i + 1:s1], err)
            E1[i] = err
        WT[b1:] -= U[b0:b1, b1:].T @ E1

    qt = _assemble(fmt, scaling, (n, k), codes, group_q)
    weight = QT[inv_perm].T.astype(np.float32)
    return GptqResult(qt, weight, float(row_loss.sum()), row_loss)


def _assemble(fmt: Format, sc: Scaling, shape: tuple[int, int], codes: np.ndarray,
              group_q: list[QuantizedTensor | None]) -> QuantizedTensor:
    """One QuantizedTensor holding every group's scales / zero points / offsets."""
    qs = [q for q in group_q if q is not None]
    assert len(qs) == len(group_q)
    if sc.granularity == "tensor":
        q0 = qs[0]
        return QuantizedTensor(fmt, sc, shape, codes, q0.scales, q0.zero_points, q0.offsets,
                               q0.tensor_scale)
    scales = np.concatenate([q.scales.reshape(shape[0], 1) for q in qs], axis=1)
    zps = None if qs[0].zero_points is None else np.concatenate(
        [q.zero_points.reshape(shape[0], 1) for q in qs], axis=1)
    offs = None if qs[0].offsets is None else np.concatenate(
        [q.offsets.reshape(shape[0], 1) for q in qs], axis=1)
    return QuantizedTensor(fmt, sc, shape, codes, scales, zps, offs, 1.0)


def gptq_quantize_shared(weights: list[np.ndarray], h: np.ndarray, fmt: Format, scaling: Scaling,
                         **kw: object) -> list[GptqResult]:
    """GPTQ of several weights that consume one input (e.g. q/k/v after one norm).

    With group or channel scaling every row is quantized on its own given the Hessian and the
    column order, so the rows are stacked and solved in one pass (one Cholesky, one column
    loop), which is exactly the separate results; per-tensor scaling is solved one by one.
    """
    if scaling is None or scaling.granularity == "tensor" or len(weights) == 1:
        return [gptq_quantize(w, h, fmt, scaling, **kw) for w in weights]  # type: ignore[arg-type]
    sizes = [w.shape[0] for w in weights]
    res = gptq_quantize(np.concatenate(weights, axis=0), h, fmt, scaling, **kw)  # type: ignore[arg-type]
    rows = np.cumsum([0] + sizes)
    return [GptqResult(part, res.weight[r0:r1], float(res.row_loss[r0:r1].sum()), res.row_loss[r0:r1])
            for part, r0, r1 in zip(split_rows(res.quantized, sizes), rows[:-1], rows[1:])]


def split_rows(q: QuantizedTensor, sizes: list[int]) -> list[QuantizedTensor]:
    """Split a row-stacked (channel / group scaled) QuantizedTensor back into its parts."""
    if q.scaling.granularity == "tensor":
        raise MacforgeError("a per-tensor scaled matrix cannot be split by rows")
    if sum(sizes) != q.shape[0]:
        raise MacforgeError(f"row sizes {sizes} do not add up to {q.shape[0]}")
    rows = np.cumsum([0] + list(sizes))
    return [QuantizedTensor(q.format, q.scaling, (int(r1 - r0), q.shape[1]), q.codes[r0:r1],
                            q.scales[r0:r1],
                            None if q.zero_points is None else q.zero_points[r0:r1],
                            None if q.offsets is None else q.offsets[r0:r1], q.tensor_scale)
            for r0, r1 in zip(rows[:-1], rows[1:])]
