"""The accelerator specification: typed dataclasses read from (and written to) TOML.

An accelerator is ``count`` systolic arrays of ``rows × cols`` PEs (each PE one ``models.units``
unit: a MAC or an L-lane dot product), three on-chip buffers (weights, inputs, outputs), a vector
unit for non-GEMM work and a DRAM interface. Every field is documented on its dataclass; a TOML
file holds the same names (see ``examples/arch/``). Unknown keys, wrong types and malformed TOML
raise ``MacforgeError`` naming the file, the key and its line.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Union

from models.errors import MacforgeError
from models.formats._userdef import read_toml

__all__ = ["PESpec", "ArraySpec", "BufferSpec", "BuffersSpec", "VectorSpec", "DramSpec", "FormatsSpec", "DecoderSpec",
           "AcceleratorSpec", "load_arch", "arch_from_dict", "arch_to_toml", "DATAFLOWS", "SCHEDULES"]

DATAFLOWS = ("os", "ws", "is")
SCHEDULES = ("macforge", "scalesim")


@dataclass(frozen=True)
class PESpec:
    """One processing element.

    unit
        The PE's datapath: a registered unit name (``macforge units``), an inline spec string
        (``'kind=dot,weights=int5,acts=int6,lanes=6'``) or a TOML table; resolved by
        ``models.units.as_spec``. A unit with L lanes consumes L consecutive reduction elements
        per cycle.
    cost
        Where the PE's area and energy per MAC come from when not given explicitly: ``model``
        (the fitted cost model, ``models.cost`` via ``sim.costfit``; the first call runs the
        fitting sweep, then it is cached) or ``synth`` (this unit synthesized by ``macforge synth``
        and its energy measured by ``macforge energy`` on random data).
    energy_per_mac_pj, area_um2
        Explicit figures (pJ per MAC, µm² per PE) overriding ``cost``; state their source in
        ``source``.
    attention_unit
        Optional second datapath in every PE for the attention matmuls (e.g. an INT8×INT8 mode
        beside a W4A8 datapath): its area is added to each PE's (an upper bound: no sharing) and
        attention MACs are priced with its energy. Without it, attention matmuls whose formats the
        PE cannot consume run on the vector unit.
    attention_energy_per_mac_pj, attention_area_um2
        Explicit figures for ``attention_unit`` (else ``cost`` applies to it too).
    source
        Free text: where explicit figures came from.
    """

    unit: Union[str, dict[str, Any]] = "dot8_int8xint8"
    cost: Literal["model", "synth"] = "model"
    energy_per_mac_pj: float | None = None
    area_um2: float | None = None
    attention_unit: Union[str, dict[str, Any], None] = None
    attention_energy_per_mac_pj: float | None = None
    attention_area_um2: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.cost not in ("model", "synth"):
            raise MacforgeError(f"pe.cost must be 'model' or 'synth', not {self.cost!r}")
        for k in ("energy_per_mac_pj", "area_um2", "attention_energy_per_mac_pj", "attention_area_um2"):
            v = getattr(self, k)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise MacforgeError(f"pe.{k} must be a positive number, not {v!r}")


@dataclass(frozen=True)
class ArraySpec:
    """The PE array(s) and their dataflow.

    rows, cols
        PEs per array (R × C).
    count
        Number of identical arrays; a GEMM's folds are spread over them; the buffers (their
        banks) and DRAM are shared.
    dataflow
        ``os`` (output stationary: R ← M, C ← N, K streams), ``ws`` (weight stationary:
        R ← K, C ← N, M streams) or ``is`` (input stationary: R ← K, C ← M, N streams).
    schedule
        Fill/drain convention of the cycle count (``sim.accel.fold_cycles``): ``macforge`` (the
        RTL's: an OS fold drains its R result rows through the south edge, K + 2R + C - 2) or
        ``scalesim`` (SCALE-Sim 3.0.0's: OS fold K + R + C - 2, one cycle less per GEMM).
    """

    rows: int = 32
    cols: int = 32
    count: int = 1
    dataflow: Literal["os", "ws", "is"] = "ws"
    schedule: Literal["macforge", "scalesim"] = "macforge"

    def __post_init__(self) -> None:
        for k in ("rows", "cols", "count"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise MacforgeError(f"array.{k} must be a positive integer, not {v!r}")
        if self.dataflow not in DATAFLOWS:
            raise MacforgeError(f"array.dataflow must be one of {', '.join(DATAFLOWS)}, not {self.dataflow!r}")
        if self.schedule not in SCHEDULES:
            raise MacforgeError(f"array.schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")


@dataclass(frozen=True)
class BufferSpec:
    """One on-chip SRAM buffer (double-buffered: half holds the tile in use, half the next).

    size_kib
        Capacity in KiB (1024 bytes).
    banks
        Independent banks; each delivers one ``word_bits`` word per cycle, so the buffer's
        bandwidth is banks × word_bits bits per cycle. Per-access energy is that of one bank's
        size.
    word_bits
        Width of one access.
    read_pj_per_64b, write_pj_per_64b
        Energy per 64 bits read / written. Default: ``models.cost.sram_read_pj_per_64b`` of the
        bank size (Horowitz ISSCC 2014, 45 nm), writes priced as reads.
    area_mm2
        Area of the buffer. Default: bits × the 45 nm 6T bit cell (``sim.accel.SRAM_SOURCES``)
        / ``array_efficiency``.
    array_efficiency
        Fraction of the macro that is bit cells (periphery, sense amps, decoders are the rest).
    """

    size_kib: float = 256.0
    banks: int = 8
    word_bits: int = 64
    read_pj_per_64b: float | None = None
    write_pj_per_64b: float | None = None
    area_mm2: float | None = None
    array_efficiency: float = 0.7

    def __post_init__(self) -> None:
        if not (self.size_kib > 0 and math.isfinite(self.size_kib)):
            raise MacforgeError(f"buffer size_kib must be a positive number, not {self.size_kib!r}")
        for k in ("banks", "word_bits"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise MacforgeError(f"buffer {k} must be a positive integer, not {v!r}")
        for k in ("read_pj_per_64b", "write_pj_per_64b", "area_mm2"):
            v = getattr(self, k)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise MacforgeError(f"buffer {k} must be a non-negative number, not {v!r}")
        if not 0 < self.array_efficiency <= 1:
            raise MacforgeError(f"buffer array_efficiency must be in (0, 1], not {self.array_efficiency!r}")

    @property
    def size_bytes(self) -> float:
        return self.size_kib * 1024.0

    @property
    def bits_per_cycle(self) -> int:
        return self.banks * self.word_bits


@dataclass(frozen=True)
class BuffersSpec:
    """The three buffers: ``weights`` (the stationary/reused GEMM operand W), ``inputs``
    (activations A), ``outputs`` (accumulators of the output tile, acc_bits wide each)."""

    weights: BufferSpec = field(default_factory=BufferSpec)
    inputs: BufferSpec = field(default_factory=BufferSpec)
    outputs: BufferSpec = field(default_factory=BufferSpec)


@dataclass(frozen=True)
class VectorSpec:
    """The vector unit: softmax, norms, activation functions, RoPE, residual adds, dequant /
    scale application and activation quantization. Ops per element are modelling parameters
    (counts of multiply/add/compare/exp-step operations), not measurements.

    ops_per_cycle
        Element operations per cycle (lanes).
    pj_per_op
        Energy per op. Default: one FP16 multiply + one FP16 add (Horowitz ISSCC 2014, 45 nm:
        ``models.cost.HOROWITZ_45NM_PJ``), i.e. one FP16 FMA-equivalent.
    area_mm2
        Area. Default: ops_per_cycle × (FP16 multiplier + 32-bit adder area, Horowitz 45 nm:
        ``sim.accel.HOROWITZ_45NM_AREA_UM2``).
    overlap
        True: the vector unit runs concurrently with the array (a layer takes the longer of the
        two); False: its work is serialized after the GEMMs.
    softmax_ops, norm_ops, act_fn_ops, rope_ops, residual_ops, quant_ops, scale_ops
        Ops per element: softmax per score, RMS/LayerNorm per element, SiLU/ReLU (with the gate
        product) per FFN element, RoPE per q/k element, residual add per element, activation
        quantization per quantized element (scale, round, clamp), scale application per
        output partial sum and per scale group (dequant of group-scaled weights).

        The defaults are operation counts of the textbook algorithms, one op = one FP16
        multiply, add, compare or exp/reciprocal step (an exp or a reciprocal is one LUT +
        interpolation step here; a polynomial evaluation would cost several — the sensitivity
        variants of the ``w4a8_dint_vs_int8`` study scale every count by 0.5 and 2):
        softmax 5 = running max compare + subtract + exp + sum add + multiply by 1/sum;
        RMSNorm 4 = square + accumulate + multiply by 1/rms + multiply by gamma;
        SiLU-gate 5 = exp(-x) + add 1 + reciprocal + multiply by x + multiply by the gate;
        RoPE 3 = x·cos + (−y)·sin as two multiplies and one add per element;
        residual 1 add; activation quantization 3 = multiply by 1/scale + round + clamp;
        scale application 1 multiply(-add) per partial sum.
    """

    ops_per_cycle: int = 64
    pj_per_op: float | None = None
    area_mm2: float | None = None
    overlap: bool = False
    softmax_ops: float = 5.0
    norm_ops: float = 4.0
    act_fn_ops: float = 5.0
    rope_ops: float = 3.0
    residual_ops: float = 1.0
    quant_ops: float = 3.0
    scale_ops: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.ops_per_cycle, int) or isinstance(self.ops_per_cycle, bool) or self.ops_per_cycle < 1:
            raise MacforgeError(f"vector.ops_per_cycle must be a positive integer, not {self.ops_per_cycle!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_ops") and not (v >= 0 and math.isfinite(v)):
                raise MacforgeError(f"vector.{f.name} must be a non-negative number, not {v!r}")


@dataclass(frozen=True)
class DramSpec:
    """Off-chip memory.

    bandwidth_gb_s
        Sustained bandwidth in GB/s (10^9 bytes per second).
    kind
        Energy preset for ``models.cost.dram_pj_per_64b``: ``lpddr4`` (Accelergy, 512 pJ / 64 b)
        or ``ddr`` (Horowitz ISSCC 2014 midpoint, 1.95 nJ / 64 b).
    pj_per_bit
        Explicit energy per bit moved, overriding ``kind``.
    """

    bandwidth_gb_s: float = 64.0
    kind: str = "lpddr4"
    pj_per_bit: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.bandwidth_gb_s, (int, float)) and self.bandwidth_gb_s > 0
                and math.isfinite(self.bandwidth_gb_s)):
            raise MacforgeError(f"dram.bandwidth_gb_s must be a positive number, not {self.bandwidth_gb_s!r}")
        if self.pj_per_bit is not None and not (self.pj_per_bit >= 0 and math.isfinite(self.pj_per_bit)):
            raise MacforgeError(f"dram.pj_per_bit must be a non-negative number, not {self.pj_per_bit!r}")


@dataclass(frozen=True)
class FormatsSpec:
    """Default number format per tensor class (``models.formats`` names; CLI flags override).

    weights, acts
        Linear-layer weights and activations (inputs and outputs of the linears). ``None`` or
        ``"auto"``: the PE unit's weight / activation format.
    kv
        The KV cache (K and V as stored, read in decode); ``"auto"``: the PE's weight format.
    attn
        The other operand of the attention matmuls (Q, and the softmax probabilities P);
        ``"auto"``: the PE's activation format.
    """

    weights: str | None = None
    acts: str | None = None
    kv: str = "int8"
    attn: str = "int8"


@dataclass(frozen=True)
class DecoderSpec:
    """Weight decoders for entropy-coded (variable-length) weight formats (``models.formats``
    family ``entropy``, e.g. ``egrid4_L16``). Such weights are stored in DRAM and in the weight
    buffer at their coded size (code table, step and chunk offsets included) and decoded between
    the weight buffer and the array; a GEMM whose weights are not entropy-coded ignores them.

    unit
        The decoder: a ``huffman`` unit of ``models.units`` (name, inline spec or table);
        ``"auto"``: the weight format's own decoder (``kind=huffman,weights=<format>``).
    count
        Decoders per array; 0: as many as the array takes weight elements per cycle at full rate
        (os and ws: cols × lanes, the top edge; is: rows × lanes).
    symbols_per_cycle
        Symbols per decoder per cycle: the RTL emits up to one (its testbench measured 0.991 at
        full rate, chunk starts included). Decoding caps the weight port at
        count × arrays × symbols_per_cycle symbols per cycle (a ``decode`` roof).
    cost
        Where the decoder's area and energy per decoded symbol come from when not given:
        ``synth`` (the unit synthesized and simulated at gate level) or ``model`` (the fitted
        cost model).
    energy_per_symbol_pj, area_um2
        Explicit figures (pJ per decoded symbol, µm² per decoder) overriding ``cost``.
    """

    unit: Union[str, dict[str, Any]] = "auto"
    count: int = 0
    symbols_per_cycle: float = 1.0
    cost: Literal["model", "synth"] = "synth"
    energy_per_symbol_pj: float | None = None
    area_um2: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 0:
            raise MacforgeError(f"decoder.count must be a non-negative integer (0: auto), not {self.count!r}")
        if not (isinstance(self.symbols_per_cycle, (int, float)) and 0 < self.symbols_per_cycle <= 1e6
                and math.isfinite(self.symbols_per_cycle)):
            raise MacforgeError(f"decoder.symbols_per_cycle must be a positive number, not {self.symbols_per_cycle!r}")
        if self.cost not in ("model", "synth"):
            raise MacforgeError(f"decoder.cost must be 'model' or 'synth', not {self.cost!r}")
        for k in ("energy_per_symbol_pj", "area_um2"):
            v = getattr(self, k)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise MacforgeError(f"decoder.{k} must be a non-negative number, not {v!r}")


@dataclass(frozen=True)
class AcceleratorSpec:
    """A whole accelerator.

    name, description
        Identification (the name defaults to the TOML file's stem).
    clock_mhz
        Clock frequency, given. An FPGA Fmax from ``macforge synth --target ice40|ecp5`` may be
        quoted in ``clock_note``, but it is not an ASIC clock.
    clock_note
        Where the clock comes from.
    """

    name: str = "accelerator"
    description: str = ""
    clock_mhz: float = 1000.0
    clock_note: str = "given"
    pe: PESpec = field(default_factory=PESpec)
    array: ArraySpec = field(default_factory=ArraySpec)
    buffers: BuffersSpec = field(default_factory=BuffersSpec)
    vector: VectorSpec = field(default_factory=VectorSpec)
    dram: DramSpec = field(default_factory=DramSpec)
    formats: FormatsSpec = field(default_factory=FormatsSpec)
    decoder: DecoderSpec = field(default_factory=DecoderSpec)

    def __post_init__(self) -> None:
        if not (isinstance(self.clock_mhz, (int, float)) and self.clock_mhz > 0 and math.isfinite(self.clock_mhz)):
            raise MacforgeError(f"clock_mhz must be a positive number, not {self.clock_mhz!r}")

    def replace(self, **changes: Any) -> "AcceleratorSpec":
        """A copy with dotted-path changes, e.g. ``replace(**{"array.rows": 16})``."""
        return _replace_path(self, changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- TOML reading
def _line_of(text: str, table: tuple[str, ...], key: str) -> int | None:
    """Line (1-based) of ``key = ...`` inside ``[table]`` in a TOML text (best effort: the
    first match after the table's header; top level when ``table`` is empty)."""
    header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
    keyre = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    dotted = re.compile(r"^\s*" + re.escape(".".join((*table, key))) + r"\s*=")
    current: tuple[str, ...] = ()
    for i, line in enumerate(text.splitlines(), 1):
        m = header.match(line)
        if m:
            current = tuple(p.strip().strip('"') for p in m.group(1).split("."))
            if current == (*table, key):  # an unknown table
                return i
            continue
        if (current == table and keyre.match(line)) or (current == () and dotted.match(line)):
            return i
    return None


def _where(path: str, text: str, table: tuple[str, ...], key: str) -> str:
    line = _line_of(text, table, key)
    full = ".".join((*table, key))
    return f"{path}: key {full!r}" + (f" (line {line})" if line else "")


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if origin is Literal:
        return value in typing.get_args(tp)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is dict or tp is dict:
        return "table"
    return getattr(tp, "__name__", str(tp))


def _build(cls: type, table: dict[str, Any], path: str, text: str, where: tuple[str, ...]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kw: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            known = ", ".join(sorted(names))
            raise MacforgeError(f"{_where(path, text, where, key)}: unknown key; known here: {known}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise MacforgeError(f"{_where(path, text, where, key)}: must be a table")
            kw[key] = _build(tp, value, path, text, (*where, key))  # type: ignore[arg-type]
            continue
        if not _type_ok(value, tp):
            raise MacforgeError(f"{_where(path, text, where, key)}: must be {_type_name(tp)}, not {value!r}")
        if tp is float or (typing.get_origin(tp) in (Union, types.UnionType) and float in typing.get_args(tp)):
            value = float(value) if isinstance(value, int) else value
        kw[key] = value
    try:
        return cls(**kw)
    except MacforgeError as e:
        raise MacforgeError(f"{path}: [{'.'.join(where) or 'top level'}] {e}") from None


def arch_from_dict(data: dict[str, Any], path: str = "<dict>", text: str = "") -> AcceleratorSpec:
    """An ``AcceleratorSpec`` from a parsed TOML document (same rules as ``load_arch``)."""
    return _build(AcceleratorSpec, data, path, text, ())  # type: ignore[no-any-return]


def load_arch(path: str | Path) -> AcceleratorSpec:
    """Read an accelerator TOML file; ``name`` defaults to the file's stem."""
    p = Path(path)
    data, text = read_toml(p, "accelerator spec")
    data.setdefault("name", p.stem)
    return arch_from_dict(data, str(p), text)


# --------------------------------------------------------------------------- TOML writing
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise MacforgeError(f"cannot write {v!r} to TOML")


def _toml_lines(obj: Any, prefix: tuple[str, ...]) -> list[str]:
    scalars, tables = [], []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            tables.append((f.name, v))
        elif v is not None:
            scalars.append(f"{f.name} = {_toml_value(v)}")
    out = ([f"[{'.'.join(prefix)}]"] if prefix and scalars else []) + scalars
    for name, v in tables:
        sub = _toml_lines(v, (*prefix, name))
        if sub:
            out += [""] + sub
    return out


def arch_to_toml(spec: AcceleratorSpec) -> str:
    """TOML text that ``load_arch`` reads back to an equal spec (``None`` fields omitted)."""
    return "\n".join(_toml_lines(spec, ())) + "\n"


@lru_cache(maxsize=64)
def _init_fields(cls: type) -> tuple[frozenset[str], tuple[str, ...]]:
    """A spec dataclass's field names and its ``__init__`` fields (sweeps replace specs by the
    thousand: ``dataclasses.fields`` once per class, not per replace)."""
    fs = dataclasses.fields(cls)
    return frozenset(f.name for f in fs), tuple(f.name for f in fs if f.init)


@lru_cache(maxsize=1024)
def _replace_memo(obj: Any, changes: tuple[tuple[str, type, Any], ...]) -> Any:
    return _replace_path(obj, {k: v for k, _, v in changes})


def _replace_path(obj: Any, changes: dict[str, Any]) -> Any:
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    names, init = _init_fields(type(obj))
    for k, v in changes.items():
        head, _, rest = k.partition(".")
        if head not in names:
            raise MacforgeError(f"unknown accelerator field {k!r} in {type(obj).__name__}")
        if rest:
            nested.setdefault(head, {})[rest] = v
        else:
            direct[head] = v
    for head, sub in nested.items():
        child = getattr(obj, head)
        try:  # a sweep sets the same few values of a sub-table over and over: build each once
            # keyed with each value's type: 1, 1.0 and True are equal keys but not equal input
            direct[head] = _replace_memo(child, tuple((k, type(v), v) for k, v in sorted(sub.items())))
        except TypeError:  # an unhashable value (a list, a table)
            direct[head] = _replace_path(child, sub)
    # what dataclasses.replace does: every init field not changed is carried over
    for name in init:
        if name not in direct:
            direct[name] = getattr(obj, name)
    return type(obj)(**direct)
