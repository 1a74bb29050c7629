"""An output-stationary systolic array of single-lane MAC PEs (one weight format): the RTL of
``models.units`` kind ``systolic`` (``build_unit`` of a systolic spec).

Schedule (cycle-exact; cycle 0 is the cycle in which k = 0 is presented; "in cycle t" means
presented before / visible after the clock edge that ends cycle t-1)::

    inputs   cycle k = 0..K-1: valid = 1, a[i] = A[i, k], w[j] = W[j, k] (z[j] its zero point),
             first = 1 at k = 0 (clears the accumulators), last = 1 at k = K-1. ``first`` and
             ``last`` are sampled only together with ``valid`` (ignored while valid = 0).
    skew     row i's activation (with valid/first) passes i skew registers, column j's weight
             code j; then one register per PE hop (activations east, weights south).
    compute  PE(i, j) does MAC k in cycle k + i + j; its last MAC is in cycle K-1 + i + j.
    drain    D = K + R + C - 2 (the cycle after PE(R-1, C-1)'s last MAC). In cycles D + s,
             s = 0..R-1: out_valid = 1, out_row = R-1-s, c[j] = C[R-1-s, j]; the accumulators
             shift one row south per drain cycle (row 0 takes 0), so after the drain every
             accumulator is 0.
    total    systolic_schedule(R, C, K) = K + 2R + C - 2 cycles from the first input cycle
             through the last output cycle; the next tile may start (its k = 0) in that cycle.
    reset    ``rst`` (synchronous) clears every register: operands presented up to and in the
             reset cycle never reach an accumulator, a pending or running drain is dropped, and
             inputs from the next cycle on start from zero accumulators.

The count equals SCALE-Sim's output-stationary fold (2·S_R + S_C + T - 2 with S_R = R rows,
S_C = C columns, T = K). Gaps in ``valid`` are allowed (the PE idles); the drain is timed from
the cycle ``last`` is presented: it starts R + C - 1 cycles later. The next tile's ``first``
may come R + C - 1 + R cycles after the previous ``last`` at the earliest (the drain uses every
accumulator; with no gaps that is the ``systolic_schedule`` period).
"""

from __future__ import annotations

from dataclasses import replace

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models.errors import MacforgeError
from models.units import UnitSpec

from ._datapath import accumulate, check_fault, lane_product, product_bits
from ._decode import DecodePlan, WeightDecoder, decode_plan
from ._fault import Fault
from ._units import UnitLayout, as_spec, refused

__all__ = ["SystolicArray", "pe_spec", "systolic_layout", "systolic_pe", "systolic_schedule"]


def systolic_schedule(rows: int, cols: int, k: int) -> int:
    """Cycles for one R×C×K tile on ``SystolicArray``: K + 2R + C - 2 (see the module docstring).

    From the cycle k = 0 is presented through the cycle the last result row is on ``c``
    inclusive; also the tile-to-tile period (the next tile may present its k = 0 in cycle
    ``systolic_schedule(R, C, K)``).
    """
    for name, v in (("rows", rows), ("cols", cols), ("k", k)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise MacforgeError(f"{name} must be a positive integer, not {v!r}")
    return k + 2 * rows + cols - 2


def pe_spec(spec: UnitSpec | str) -> UnitSpec:
    """The single-lane MAC of every PE of a ``systolic`` unit: the same weight / activation
    format, accumulator, overflow rule and decode (LUT kind and width), kind ``mac``, latency 1.
    Named ``<unit>_pe``."""
    s = as_spec(spec)
    if s.kind != "systolic":
        raise MacforgeError(f"unit {s.name} is a {s.kind}, not a systolic array")
    return replace(s, name=f"{s.name}_pe", kind="mac", rows=0, cols=0, latency=1, lanes=1,
                   description=f"PE of {s.name}")


def _row_bits(rows: int) -> int:
    return max(1, (rows - 1).bit_length())  # a 1-row array still has a (constant 0) out_row port


def _members(rows: int, cols: int, spec: UnitSpec, plan: DecodePlan) -> dict[str, wiring.Member]:
    sig: dict[str, wiring.Member] = {
        "valid": In(1), "first": In(1), "last": In(1),
        "a": In(data.ArrayLayout(signed(spec.act_bits), rows)),
        "w": In(data.ArrayLayout(unsigned(plan.bits), cols)),
    }
    if plan.has_zp:
        sig["z"] = In(data.ArrayLayout(unsigned(plan.zp_bits), cols))
    sig.update(out_valid=Out(1), out_row=Out(unsigned(_row_bits(rows))),
               c=Out(data.ArrayLayout(signed(spec.acc_bits), cols)))
    return sig


def _check_pe(rows: int, cols: int, pe: UnitSpec, fault: Fault | None) -> tuple[DecodePlan, int]:
    systolic_schedule(rows, cols, 1)  # validates rows, cols
    if pe.kind != "mac":
        raise MacforgeError(f"systolic array PEs are single-lane MACs; {pe.name} is a {pe.kind}")
    if pe.latency != 1:
        raise MacforgeError(f"systolic array PEs need latency 1, {pe.name} has latency {pe.latency}")
    if pe.lut == "programmable":
        raise MacforgeError(f"systolic array needs a constant decode; {pe.name} has a programmable "
                            f"LUT (use a mac_lut4c_<format>xint8 unit)")
    if fault is not None and not isinstance(fault, Fault):
        raise MacforgeError(f"fault must be a rtl.Fault or None, not {type(fault).__name__}")
    plan = decode_plan(pe)
    pbits = product_bits(plan, pe)
    if pbits > pe.acc_bits:
        raise MacforgeError(f"unit {pe.name}: acc_bits={pe.acc_bits} cannot hold one product "
                            f"({pbits} bits over every port value)")
    if fault is not None:
        if fault.lane >= rows * cols:
            raise MacforgeError(f"fault {fault.kind}: PE {fault.lane} is outside the {rows}×{cols} array "
                                f"(lane = PE index i·cols + j < {rows * cols})")
        check_fault(pe, replace(fault, lane=0), pbits, 1)
        decode_plan(pe, fault)  # refuses a dint_special fault on a unit without the special code
    return plan, pbits


def systolic_layout(spec: UnitSpec, fault: Fault | None = None) -> UnitLayout:
    """Ports and widths of a ``systolic`` unit (``rtl.unit_layout`` of kind systolic)."""
    plan, pbits = _check_pe(spec.rows, spec.cols, pe_spec(spec), fault)
    return UnitLayout(plan, pbits, pbits, _members(spec.rows, spec.cols, spec, plan))


class _SystolicPE(wiring.Component):
    """One PE: MAC of the west activation and north weight code, passing both on (1 cycle);
    in a drain cycle the accumulator loads ``acc_north`` instead."""

    def __init__(self, spec: UnitSpec, plan: DecodePlan, pbits: int, fault: Fault | None = None) -> None:
        self.spec, self.plan, self.pbits, self.fault = spec, plan, pbits, fault
        wb = unsigned(plan.bits)
        sig: dict[str, object] = {
            "a_in": In(signed(spec.act_bits)), "en_in": In(1), "clr_in": In(1), "w_in": In(wb),
            "drain": In(1), "acc_north": In(signed(spec.acc_bits)),
            "a_out": Out(signed(spec.act_bits)), "en_out": Out(1), "clr_out": Out(1),
            "w_out": Out(wb), "acc": Out(signed(spec.acc_bits)),
        }
        if plan.has_zp:
            sig.update(z_in=In(unsigned(plan.zp_bits)), z_out=Out(unsigned(plan.zp_bits)))
        super().__init__(sig)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        plan = self.plan if self.fault is None else decode_plan(self.spec, self.fault)
        dec = m.submodules.decode = WeightDecoder(plan)
        m.d.comb += dec.w.eq(self.w_in)
        if self.plan.has_zp:
            m.d.comb += dec.z.eq(self.z_in)
            m.d.sync += self.z_out.eq(self.z_in)
        flip = self.fault.bit if self.fault is not None and self.fault.kind == "product_bit" else None
        p = lane_product(m, plan, dec, self.a_in, self.pbits, "product", flip)
        m.d.sync += [self.a_out.eq(self.a_in), self.en_out.eq(self.en_in),
                     self.clr_out.eq(self.clr_in), self.w_out.eq(self.w_in)]
        accumulate(m, self.spec, p, self.en_in, self.clr_in, self.acc, self.fault,
                   load=self.drain, load_value=self.acc_north)
        return m


class SystolicArray(wiring.Component):
    """Output-stationary R×C array computing C (R×C) = A (R×K) · W (C×K)^T for one tile.

    Parameters
    ----------
    rows, cols
        R (rows of A / of the result) and C (rows of W / columns of the result).
    unit
        A single-lane ``mac`` unit (name or spec) giving the weight format, activation format,
        acc_bits and overflow rule of every PE. Latency must be 1; programmable-LUT units are
        refused (use a constant-LUT unit: each PE would carry its own register file).
        ``rtl.build_unit`` of a ``systolic`` unit passes ``pe_spec(unit)``.
    fault
        An ``rtl.Fault`` built into one PE only: PE(i, j) with ``fault.lane == i·cols + j``
        (mutation testing).

    Ports: ``valid``, ``first``, ``last`` (1 bit), ``a`` (R × act_bits, signed lanes),
    ``w`` (C × decode.bits codes), ``z`` (C × zp_bits, zero-point formats), outputs
    ``out_valid``, ``out_row`` (row index of ``c``, max(1, ⌈log2 R⌉) bits), ``c`` (C × acc_bits,
    signed lanes). Packed lane i sits at bits [i·width, (i+1)·width). Schedule: see the module
    docstring and ``systolic_schedule``; every PE accumulates in k order with the unit's
    overflow rule, so ``c`` equals ``models.golden.gemm`` bit for bit.
    """

    def __init__(self, rows: int, cols: int, unit: UnitSpec | str = "mac_int8xint8", *,
                 fault: Fault | None = None) -> None:
        try:
            spec = as_spec(unit)
            self.plan, self.product_bits = _check_pe(rows, cols, spec, fault)
        except MacforgeError:
            refused(self)
            raise
        self.rows, self.cols, self.spec, self.fault = rows, cols, spec, fault
        super().__init__(_members(rows, cols, spec, self.plan))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        R, C = self.rows, self.cols
        has_zp = self.plan.has_zp

        def delay(sig: Value, n: int, name: str) -> Value:
            for d in range(n):
                r = Signal(Value.cast(sig).shape(), name=f"{name}_d{d}")
                m.d.sync += r.eq(sig)
                sig = r
            return sig

        first = Signal()
        last = Signal()
        m.d.comb += [first.eq(self.first & self.valid), last.eq(self.last & self.valid)]
        # drain control: starts R + C - 1 cycles after `last`, lasts R cycles
        last_d = delay(last, R + C - 1, "last")
        step = Signal(range(R + 1))
        draining = Signal()
        m.d.comb += [draining.eq(last_d | (step != 0)),
                     self.out_valid.eq(draining),
                     self.out_row.eq(Mux(last_d, R - 1, R - 1 - step))]
        with m.If(last_d):
            m.d.sync += step.eq(1 if R > 1 else 0)
        with m.Elif(step != 0):
            m.d.sync += step.eq(Mux(step == R - 1, 0, step + 1))

        pes = [[_SystolicPE(self.spec, self.plan, self.product_bits,
                            self.fault if self.fault is not None and self.fault.lane == i * C + j else None)
                for j in range(C)] for i in range(R)]
        for i in range(R):
            for j in range(C):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                if j == 0:
                    m.d.comb += [pe.a_in.eq(delay(self.a[i], i, f"a{i}_skew")),
                                 pe.en_in.eq(delay(self.valid, i, f"valid{i}_skew")),
                                 pe.clr_in.eq(delay(first, i, f"first{i}_skew"))]
                else:
                    west = pes[i][j - 1]
                    m.d.comb += [pe.a_in.eq(west.a_out), pe.en_in.eq(west.en_out), pe.clr_in.eq(west.clr_out)]
                if i == 0:
                    m.d.comb += pe.w_in.eq(delay(self.w[j], j, f"w{j}_skew"))
                    if has_zp:
                        m.d.comb += pe.z_in.eq(delay(self.z[j], j, f"z{j}_skew"))
                    m.d.comb += pe.acc_north.eq(0)
                else:
                    north = pes[i - 1][j]
                    m.d.comb += [pe.w_in.eq(north.w_out), pe.acc_north.eq(north.acc)]
                    if has_zp:
                        m.d.comb += pe.z_in.eq(north.z_out)
                m.d.comb += pe.drain.eq(draining)
        for j in range(C):
            m.d.comb += self.c[j].eq(pes[R - 1][j].acc)
        return m


def systolic_pe(spec: UnitSpec | str) -> wiring.Component:
    """One interior PE of a ``systolic`` unit on its own (every pass-through port kept), as
    the array instantiates it: for its area apart from the array's skew and drain logic."""
    pe = pe_spec(spec)
    plan, pbits = _check_pe(1, 1, pe, None)
    return _SystolicPE(pe, plan, pbits)
