"""decoupleQ (ByteDance, arXiv 2404.12759; PAPERS.md §4), layer-wise step.

Per linear, minimise ``tr((W - Ŵ) H (W - Ŵ)ᵀ)`` with ``H = 2XᵀX/n`` + damping and
``Ŵ = q·s + z`` per output row and input group (integers q of the format, e.g. ``decoupleq_int2``
in [-2, 1]; float s, z rounded to the format's scale format). Starting from the format's own
H = I affine fit, alternate:

(a) integers with s, z fixed: GPTQ-style sequential rounding with error feedback through H⁻¹
    (``gptq_quantize(fixed=...)``; the paper runs projected gradient descent in the box before
    this rounding — omitted here [inferred simplification, documented]);
(b) s, z with the integers fixed: the closed-form least squares of every row over all of its
    groups at once (a 2·n_groups system per row, H-weighted).

Each row keeps a new solution only if its loss drops. The optional block-wise step (training
s, z and the norms against the block output) is not implemented.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import MacforgeError
from ..formats import Format, QuantizedTensor, Scaling, round_scale
from ._gptq import gptq_quantize

__all__ = ["decoupleq_quantize", "DecoupleqResult", "hessian_loss"]


class DecoupleqResult(NamedTuple):
    quantized: QuantizedTensor
    weight: np.ndarray
    """dequantized, float32"""
    loss: float
    """final tr((W-Ŵ) H (W-Ŵ)ᵀ)"""
    loss_init: float
    """the same loss of the H = I start"""
    history: list[float]


def hessian_loss(w: np.ndarray, wq: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per-row ``(w - wq) H (w - wq)ᵀ``."""
    d = np.asarray(w, dtype=np.float64) - np.asarray(wq, dtype=np.float64)
    return np.sum((d @ h) * d, axis=1)  # BLAS; a 3-operand einsum would loop in C


def _rounded_signed(v: np.ndarray, scale_format: str) -> np.ndarray:
    return np.sign(v) * round_scale(np.abs(v), scale_format)


def _ls_step(w: np.ndarray, h: np.ndarray, qvals: np.ndarray, g: int,
             scale_format: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row H-weighted least squares for (s, z) of every group given integer values."""
    n, k = w.shape
    ng = k // g
    Q = qvals.reshape(n, ng, g)
    Hb = h.reshape(ng, g, ng, g)
    hw = (w @ h).reshape(n, ng, g)  # H is symmetric
    m = np.zeros((n, 2 * ng, 2 * ng))
    for a in range(ng):
        # q_aᵀ H_a,b for every b at once, through BLAS: (n, g) @ (g, ng·g)
        qa_h = (Q[:, a] @ Hb[a].reshape(g, ng * g)).reshape(n, ng, g)
        m[:, a, :ng] = (qa_h * Q).sum(-1)  # q_aᵀ H_ab q_b
        m[:, a, ng:] = qa_h.sum(-1)  # q_aᵀ H_ab 1
    ones_h = Hb.sum(axis=1)  # 1ᵀ H_a,b : (ng, ng, g)
    m[:, ng:, :ng] = np.transpose(m[:, :ng, ng:], (0, 2, 1))
    m[:, ng:, ng:] = ones_h.sum(-1)[None]
    rhs = np.concatenate([(Q * hw).sum(-1), hw.sum(-1)], axis=1)
    m[:, np.arange(2 * ng), np.arange(2 * ng)] += 1e-9 * np.maximum(
        np.abs(m[:, np.arange(2 * ng), np.arange(2 * ng)]), 1e-12)
    theta = np.linalg.solve(m, rhs[..., None])[..., 0]
    s, z = theta[:, :ng], theta[:, ng:]
    return s, z


def decoupleq_quantize(w: np.ndarray, h: np.ndarray, fmt: Format, scaling: Scaling, *,
                       iters: int = 4, damp: float = 0.01, block_size: int = 128
                       ) -> DecoupleqResult:
    """decoupleQ's alternating layer-wise optimisation (module docstring).

    ``scaling`` must be the format's affine scaling (``method='affine'``), per group or per
    channel along the input.
    """
    if scaling is None or scaling.method != "affine":
        raise MacforgeError(f"decoupleq needs an affine (q·s + z) scaling, not "
                            f"{None if scaling is None else scaling.method!r}; use decoupleq_int2")
    if scaling.granularity == "tensor":
        raise MacforgeError("decoupleq fits s, z per row and group: use --group G or channel")
    if not isinstance(iters, int) or iters < 0:
        raise MacforgeError(f"iters must be a non-negative integer, not {iters!r}")
    wa = np.asarray(w, dtype=np.float64)
    n, k = wa.shape
    g = k if scaling.granularity == "channel" else scaling.group_size
    if k % g:
        raise MacforgeError(f"group_size {g} does not divide the input ({k})")
    hd = np.array(h, dtype=np.float64)
    hd[np.diag_indices(k)] += damp * float(np.mean(np.diag(hd)))  # 1% damping (paper code)
    best = fmt.quantize(wa, scaling)
    best_w = best.dequantize()
    best_loss = hessian_loss(wa, best_w, hd)
    history = [float(best_loss.sum())]
    loss_init = history[0]
    for _ in range(iters):
        # (a) integers with s, z fixed
        r = gptq_quantize(wa, h, fmt, scaling, damp=damp, block_size=block_size, fixed=best)
        qvals = fmt.decode(r.quantized.codes)
        # (b) s, z with the integers fixed
        s, z = _ls_step(wa, hd, qvals, g, scaling.scale_format)
        s_ok = np.where(s > 0, s, best.scales.reshape(n, -1))
        s_r = round_scale(s_ok, scaling.scale_format)
        z_r = _rounded_signed(z, scaling.scale_format)
        cand = QuantizedTensor(fmt, scaling, (n, k), r.quantized.codes, s_r.reshape(best.scales.shape),
                               None, z_r.reshape(best.scales.shape), 1.0)
        cand_w = cand.dequantize()
        cand_loss = hessian_loss(wa, cand_w, hd)
        # the integer step alone (old s, z) may already be better for some rows
        a_w = r.weight.astype(np.float64)
        a_loss = hessian_loss(wa, a_w, hd)
        use_b = cand_loss < np.minimum(best_loss, a_loss)
        use_a = ~use_b & (a_loss < best_loss)
        codes = np.where((use_a | use_b)[:, None], r.quantized.codes, best.codes)
        scales = np.where(use_b[:, None], cand.scales.reshape(n, -1), best.scales.reshape(n, -1))
        offs = np.where(use_b[:, None], cand.offsets.reshape(n, -1), best.offsets.reshape(n, -1))
        best = QuantizedTensor(fmt, scaling, (n, k), codes, scales.reshape(best.scales.shape),
                               None, offs.reshape(best.scales.shape), 1.0)
        best_w = best.dequantize()
        best_loss = hessian_loss(wa, best_w, hd)
        history.append(float(best_loss.sum()))
    return DecoupleqResult(best, best_w.astype(np.float32), history[-1], loss_init, history)
