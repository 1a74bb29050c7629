"""Injected faults for the testbench's mutation tests (issue 3 item 6, issue 10 item 4).

Each kind is one plausible design bug, built into a unit by ``build_unit(..., fault=Fault(...))``;
``tests/test_cocotb_mutation.py`` checks that the cocotb testbench reports every kind and that
the same unit without the fault passes. Datapath faults (``product_bit``, ``dint_special``,
``acc_carry``) corrupt arithmetic; control-path faults corrupt what the control inputs and the
pipeline do (``en_ignored``, ``clr_ignored``, ``reset_pipeline``, ``sat_clamp``, ``lut_waddr``,
``dq_last``) or a decoder field (``zp_sign``, ``fp_exponent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.errors import MacforgeError

__all__ = ["FAULT_KINDS", "Fault", "FaultKind", "fault_is"]

FaultKind = Literal["product_bit", "dint_special", "acc_carry", "en_ignored", "clr_ignored",
                    "reset_pipeline", "sat_clamp", "lut_waddr", "zp_sign", "dq_last", "fp_exponent"]
FAULT_KINDS: tuple[str, ...] = ("product_bit", "dint_special", "acc_carry", "en_ignored", "clr_ignored",
                                "reset_pipeline", "sat_clamp", "lut_waddr", "zp_sign", "dq_last",
                                "fp_exponent")


@dataclass(frozen=True)
class Fault:
    """One deliberate bug that ``build_unit(..., fault=Fault(...))`` builds into a unit.

    Parameters
    ----------
    kind
        ``product_bit``: bit ``bit`` of the product of lane ``lane`` is inverted (every cycle,
        before ``en`` gating). ``dint_special``: the positive half-unit special code (+0.5, the
        dINT denormal; integer value +1 in half-units) decodes as +1.0 (+2 half-units).
        ``acc_carry``: the accumulator adder drops the carry out of bit ``bit`` (into bit
        ``bit + 1``).
        ``en_ignored``: the accumulator adds the term whether ``en`` is high or not.
        ``clr_ignored``: ``clr`` does not restart the accumulator (it keeps adding to acc).
        ``reset_pipeline``: ``rst`` clears the accumulator but not the pipeline registers
        (operands, partial products, term, en, clr): what was in flight lands after the reset
        (latency >= 2 only).
        ``sat_clamp``: the saturating accumulator clamps one step inside its range, to
        2^(acc_bits-1) - 2 and -2^(acc_bits-1) + 1 (overflow ``saturate`` only).
        ``lut_waddr``: a programmable LUT write lands in entry ``lut_waddr XOR 2^bit``.
        ``zp_sign``: zero-point codes decode as table + zp_scale·z instead of table - zp_scale·z.
        ``dq_last``: a decoupleQ group MAC acts on ``last`` one cycle late (a register on it):
        the group ends, restarts and takes ``s``/``zc`` one element too late.
        ``fp_exponent``: the FP decoder's exponent of normal codes is one too large (bias off
        by one: exp = e instead of e - 1); subnormals are right.
    bit
        Bit index for ``product_bit`` (< product width), ``acc_carry`` (< acc_bits - 1) and
        ``lut_waddr`` (< weight code bits).
    lane
        Lane of a dot-product PE for ``product_bit`` (0 for single-lane units); the PE of a
        systolic array (row-major) for every kind.
    """

    kind: FaultKind
    bit: int = 0
    lane: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise MacforgeError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")
        if not isinstance(self.bit, int) or self.bit < 0:
            raise MacforgeError(f"fault bit must be a non-negative integer, not {self.bit!r}")
        if not isinstance(self.lane, int) or self.lane < 0:
            raise MacforgeError(f"fault lane must be a non-negative integer, not {self.lane!r}")


def fault_is(fault: Fault | None, kind: str) -> bool:
    """True when ``fault`` is of ``kind`` (None: no fault)."""
    return fault is not None and fault.kind == kind
