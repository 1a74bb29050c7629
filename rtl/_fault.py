"""Injected faults for the testbench's mutation test (issue 3 item 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.errors import MacforgeError

__all__ = ["FAULT_KINDS", "Fault", "FaultKind"]

FaultKind = Literal["product_bit", "dint_special", "acc_carry"]
FAULT_KINDS: tuple[str, ...] = ("product_bit", "dint_special", "acc_carry")


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
    bit
        Bit index for ``product_bit`` (< product width) and ``acc_carry`` (< acc_bits - 1).
    lane
        Lane of a dot-product PE for ``product_bit`` (0 for single-lane units).
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
