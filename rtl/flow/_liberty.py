"""Cell libraries for the gate-level flow: the shipped generic library or a user's Liberty file.

A ``CellLibrary`` is what synthesis, energy and timing need from a library, and nothing more:
for every usable cell its area, the Boolean function of its output, the capacitance of each input
pin, the internal energy per output toggle, the clock-pin energy per cycle (flip-flops) and a
linear delay model per input pin (``intrinsic + slope × load``). The same object writes the
Liberty text Yosys/ABC map with and the Verilog models the gate-level simulation runs, so area,
activity, energy and timing are all counted on one netlist with one set of numbers.

Energy of one toggle of a net = the driving cell's internal energy per output toggle + ``½ V²``
times the capacitance of the input pins the net drives (its fanout, read from the netlist).
Flip-flops add their clock-pin energy every cycle. Energies are reported in NAND2-toggle units:
one output toggle of the library's smallest 2-input NAND driving one input of the same cell.

``load_liberty`` reads a user's Liberty file (NLDM tables, the usual ``library/cell/pin/timing/
internal_power`` groups). Internal energies, pin capacitances and delays are read at one stated
operating point (``LibertyPoint``: the middle input slew of the library's tables and, for the
internal energy, the load of one reference NAND2 input); where a cell has no ``internal_power``
only its load energy counts, and where it has no timing its delay is 0 (both are reported).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import MacforgeError

__all__ = ["LibCell", "CellLibrary", "LibertyGroup", "parse_liberty", "load_liberty", "function_to_verilog",
           "function_truth_table", "library_verilog"]


# ----------------------------------------------------------------------------- data model
@dataclass(frozen=True)
class LibCell:
    """One usable cell: a single-output combinational cell or a positive-edge D flip-flop."""

    name: str
    area: float  # library area unit (µm² for the generic library and NanGate-like Liberty files)
    inputs: tuple[str, ...]
    output: str
    function: str | None  # Liberty syntax; None for a flip-flop
    pin_cap: dict[str, float]  # input pin -> capacitance (library capacitance unit)
    toggle_energy: float  # internal energy per output toggle, library energy unit, load excluded
    delay: dict[str, tuple[float, float]]  # input pin -> (intrinsic, per unit of load capacitance), ns
    clock_energy: float = 0.0  # per clock cycle (flip-flops only), library energy unit
    clock: str | None = None  # flip-flop clock pin
    data: str | None = None  # flip-flop data pin
    setup: float = 0.0  # flip-flop setup time, ns
    notes: tuple[str, ...] = ()  # what the library did not state (no internal_power, no timing)

    @property
    def is_ff(self) -> bool:
        return self.clock is not None


@dataclass(frozen=True)
class CellLibrary:
    """A cell library as the flow uses it (see the module doc)."""

    name: str
    source: str  # a citation (generic library) or the Liberty file's path
    cells: dict[str, LibCell]
    energy_per_cap: float  # ½ V²: energy per toggle per unit of load capacitance (library units)
    pj_per_energy_unit: float | None  # pJ per library energy unit (None: relative units only)
    corner: str  # how the numbers were taken (corner, slew, load)
    area_unit: str = "µm²"
    nand2: str = "NAND2"  # the reference 2-input NAND
    dff: str = "DFF"  # the D flip-flop dfflibmap uses
    buf: str = "BUF"
    path: str | None = None  # the Liberty file (None: generated text)
    text: str = field(default="", repr=False)  # the Liberty text handed to Yosys

    @property
    def nand2_area(self) -> float:
        return self.cells[self.nand2].area

    def load_energy(self, cap: float) -> float:
        return self.energy_per_cap * cap

    @property
    def nand2_toggle_energy(self) -> float:
        """Energy of the reference NAND2's output toggle driving one NAND2 input (library unit)."""
        c = self.cells[self.nand2]
        return c.toggle_energy + self.load_energy(sum(c.pin_cap.values()) / len(c.pin_cap))

    def cell_table(self) -> list[dict[str, Any]]:
        """Every cell's numbers relative to the reference NAND2 (area, energies, delay at FO1)."""
        ref_e = self.nand2_toggle_energy
        ref_c = sum(self.cells[self.nand2].pin_cap.values()) / 2
        out = []
        for c in self.cells.values():
            d = [i + s * ref_c for i, s in c.delay.values()] or [0.0]
            out.append({"cell": c.name, "area": c.area, "nand2_eq": c.area / self.nand2_area,
                        "inputs": ",".join(c.inputs),
                        "input_cap_rel": {p: v / ref_c for p, v in c.pin_cap.items()},
                        "toggle_energy_rel": c.toggle_energy / ref_e, "clock_energy_rel": c.clock_energy / ref_e,
                        "delay_fo1_ns": max(d), "notes": "; ".join(c.notes)})
        return out


# ----------------------------------------------------------------------------- parser
@dataclass
class LibertyGroup:
    kind: str
    args: list[str]
    line: int
    attrs: dict[str, list[str]] = field(default_factory=dict)  # simple and complex attributes
    groups: list[LibertyGroup] = field(default_factory=list)

    def sub(self, kind: str) -> list[LibertyGroup]:
        return [g for g in self.groups if g.kind == kind]

    def attr(self, name: str, default: str | None = None) -> str | None:
        v = self.attrs.get(name)
        return v[0] if v else default


_TOKEN = re.compile(r'\s+|/\*.*?\*/|//[^\n]*|\\\n|"(?:[^"\\]|\\.)*"|[(){}:;,]|[^\s(){}:;,"]+', re.S)


def _tokens(text: str, src: str) -> list[tuple[str, int]]:
    out = []
    line = 1
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise MacforgeError(f"{src}:{line}: liberty parse error: unexpected character {text[pos]!r}")
        tok = m.group(0)
        if not (tok[0].isspace() or tok.startswith("/*") or tok.startswith("//") or tok == "\\\n"):
            out.append((tok, line))
        elif tok.startswith("/*") and not tok.endswith("*/"):
            raise MacforgeError(f"{src}:{line}: liberty parse error: unterminated comment")
        line += tok.count("\n")
        pos = m.end()
    return out


def parse_liberty(text: str, src: str = "<liberty>") -> LibertyGroup:
    """Parse Liberty text into nested groups; errors name the file and line."""
    toks = _tokens(text, src)
    i = 0

    def err(msg: str) -> MacforgeError:
        line = toks[min(i, len(toks) - 1)][1] if toks else 1
        found = toks[i][0] if i < len(toks) else "end of file"
        return MacforgeError(f"{src}:{line}: liberty parse error: {msg}, found {found!r}")

    def value(tok: str) -> str:
        return tok[1:-1] if tok.startswith('"') else tok

    def statements(parent: LibertyGroup, top: bool) -> None:
        nonlocal i
        while i < len(toks):
            tok, line = toks[i]
            if tok == "}":
                if top:
                    raise err("unmatched '}'")
                return
            if tok in "(){}:;,":
                raise err("expected an attribute or group name")
            i += 1
            if i >= len(toks):
                raise err("unexpected end of file")
            nxt = toks[i][0]
            if nxt == ":":
                i += 1
                if i >= len(toks) or toks[i][0] in "(){}:;,":
                    raise err(f"expected a value for {tok!r}")
                parent.attrs.setdefault(tok, []).append(value(toks[i][0]))
                i += 1
                if i < len(toks) and toks[i][0] == ";":
                    i += 1
            elif nxt == "(":
                i += 1
                args: list[str] = []
                while i < len(toks) and toks[i][0] != ")":
                    if toks[i][0] not in ",":
                        if toks[i][0] in "(){}:;":
                            raise err(f"expected ')' closing the arguments of {tok!r}")
                        args.append(value(toks[i][0]))
                    i += 1
                if i >= len(toks):
                    raise err(f"unterminated arguments of {tok!r}")
                i += 1
                if i < len(toks) and toks[i][0] == "{":
                    i += 1
                    g = LibertyGroup(tok, args, line)
                    statements(g, False)
                    if i >= len(toks):
                        raise err(f"group {tok}({', '.join(args)}) opened on line {line} is not closed")
                    i += 1  # the closing brace
                    parent.groups.append(g)
                else:
                    parent.attrs.setdefault(tok, []).append(",".join(args))
                    if i < len(toks) and toks[i][0] == ";":
                        i += 1
            else:
                raise err(f"expected ':' or '(' after {tok!r}")

    root = LibertyGroup("<root>", [], 1)
    statements(root, True)
    libs = root.sub("library")
    if len(libs) != 1:
        raise MacforgeError(f"{src}:1: liberty parse error: expected one library(...) group, found {len(libs)}")
    return libs[0]


# ----------------------------------------------------------------------------- Boolean functions
_FN_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_\[\]]*|[01]|[!'()&*|+^])")


def _fn_parse(fn: str) -> Any:
    """Liberty function -> nested tuples: ('not', x), ('and'|'or'|'xor', a, b), pin name, '0'/'1'."""
    toks = []
    pos = 0
    s = fn.strip()
    while pos < len(s):
        m = _FN_TOKEN.match(s, pos)
        if m is None:
            raise MacforgeError(f"cannot parse Liberty function {fn!r}")
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    i = 0

    def primary() -> Any:
        nonlocal i
        if i >= len(toks):
            raise MacforgeError(f"cannot parse Liberty function {fn!r}")
        t = toks[i]
        i += 1
        if t == "!":
            x: Any = ("not", primary())
        elif t == "(":
            x = expr()
            if i >= len(toks) or toks[i] != ")":
                raise MacforgeError(f"cannot parse Liberty function {fn!r}: missing ')'")
            i += 1
        elif t in ")&*|+^'":
            raise MacforgeError(f"cannot parse Liberty function {fn!r}")
        else:
            x = t
        while i < len(toks) and toks[i] == "'":
            i += 1
            x = ("not", x)
        return x

    def xor_term() -> Any:
        nonlocal i
        x = primary()
        while i < len(toks) and toks[i] == "^":
            i += 1
            x = ("xor", x, primary())
        return x

    def and_term() -> Any:
        nonlocal i
        x = xor_term()
        while i < len(toks) and (toks[i] in "&*" or toks[i] not in ")|+^'"):
            if toks[i] in "&*":
                i += 1
            x = ("and", x, xor_term())  # juxtaposition is AND in Liberty
        return x

    def expr() -> Any:
        nonlocal i
        x = and_term()
        while i < len(toks) and toks[i] in "|+":
            i += 1
            x = ("or", x, and_term())
        return x

    tree = expr()
    if i != len(toks):
        raise MacforgeError(f"cannot parse Liberty function {fn!r}")
    return tree


def function_to_verilog(fn: str) -> str:
    """A Liberty function as a Verilog expression."""

    def v(t: Any) -> str:
        if isinstance(t, str):
            return "1'b1" if t == "1" else "1'b0" if t == "0" else t
        if t[0] == "not":
            return f"~({v(t[1])})"
        op = {"and": "&", "or": "|", "xor": "^"}[t[0]]
        return f"({v(t[1])} {op} {v(t[2])})"

    return v(_fn_parse(fn))


def function_truth_table(fn: str, inputs: tuple[str, ...]) -> tuple[int, ...]:
    """Output for every input combination (input 0 = least significant bit of the index)."""
    tree = _fn_parse(fn)

    def ev(t: Any, env: dict[str, int]) -> int:
        if isinstance(t, str):
            if t in ("0", "1"):
                return int(t)
            if t not in env:
                raise MacforgeError(f"Liberty function {fn!r} uses {t!r}, which is not an input pin")
            return env[t]
        if t[0] == "not":
            return 1 - ev(t[1], env)
        a, b = ev(t[1], env), ev(t[2], env)
        return a & b if t[0] == "and" else a | b if t[0] == "or" else a ^ b

    return tuple(ev(tree, {p: (k >> j) & 1 for j, p in enumerate(inputs)}) for k in range(1 << len(inputs)))


# ----------------------------------------------------------------------------- tables
def _floats(s: str) -> list[float]:
    return [float(x) for x in re.split(r"[,\s]+", s.strip()) if x]


def _interp(xs: list[float], ys: list[float], x: float) -> float:
    if len(xs) == 1:
        return ys[0]
    j = max(1, min(len(xs) - 1, next((k for k, v in enumerate(xs) if v >= x), len(xs) - 1)))
    x0, x1 = xs[j - 1], xs[j]
    t = 0.0 if x1 == x0 else (x - x0) / (x1 - x0)
    return ys[j - 1] + t * (ys[j] - ys[j - 1])


class _Tables:
    """Lookup of NLDM tables by the template's variable names (slew and load axes)."""

    def __init__(self, lib: LibertyGroup, src: str) -> None:
        self.src = src
        self.templates: dict[str, dict[str, Any]] = {}
        for kind in ("lu_table_template", "power_lut_template"):
            for g in lib.sub(kind):
                if g.args:
                    self.templates[g.args[0]] = {"vars": [g.attr(f"variable_{k}") for k in (1, 2, 3)],
                                                 "index": [g.attr(f"index_{k}") for k in (1, 2, 3)]}

    def lookup(self, t: LibertyGroup, slew: float, load: float) -> float:
        vals = t.attrs.get("values")
        if not vals:
            raise MacforgeError(f"{self.src}:{t.line}: table {t.kind} has no values")
        flat = _floats(vals[0])  # values("a, b", "c, d") arrives as one comma-joined list
        tmpl = self.templates.get(t.args[0] if t.args else "", {"vars": [None] * 3, "index": [None] * 3})
        idx = [t.attr(f"index_{k}") or tmpl["index"][k - 1] for k in (1, 2)]
        vars_ = tmpl["vars"]
        axes = [_floats(i) if i else None for i in idx]
        if t.args and t.args[0] == "scalar" or axes[0] is None:
            return flat[0]

        def point(var: str | None) -> float:
            return load if var and "capacitance" in var else slew

        if axes[1] is None:
            return _interp(axes[0], flat[: len(axes[0])], point(vars_[0]))
        n1, n2 = len(axes[0]), len(axes[1])
        if len(flat) != n1 * n2:
            raise MacforgeError(f"{self.src}:{t.line}: table {t.kind} has {len(flat)} values, "
                                f"its indices need {n1}×{n2}")
        grid = [flat[k * n2:(k + 1) * n2] for k in range(n1)]
        p1, p2 = point(vars_[0]), point(vars_[1])
        col = [_interp(axes[1], row, p2) for row in grid]
        return _interp(axes[0], col, p1)

    def mid_slew(self) -> float:
        for t in self.templates.values():
            for var, idx in zip(t["vars"], t["index"]):
                if var and "transition" in var and idx:
                    xs = _floats(idx)
                    return xs[len(xs) // 2]
        return 0.0


# ----------------------------------------------------------------------------- loading
_UNIT = {"1ns": 1.0, "100ps": 0.1, "10ps": 0.01, "1ps": 0.001}
_CAP = {"ff": 1e-3, "pf": 1.0}  # in pF


def _cap_unit_pf(lib: LibertyGroup) -> float:
    v = lib.attrs.get("capacitive_load_unit")
    if not v:
        return 1.0  # Liberty default: pF
    parts = [p.strip() for p in v[0].split(",")]
    try:
        return float(parts[0]) * _CAP[parts[1].lower()]
    except (IndexError, KeyError, ValueError):
        raise MacforgeError(f"{lib.attr('name', '')} capacitive_load_unit {v[0]!r} is not understood") from None


def _direction(p: LibertyGroup) -> str:
    return (p.attr("direction") or "").strip().lower()


def _pins(cell: LibertyGroup) -> list[LibertyGroup]:
    out = []
    for p in cell.sub("pin"):
        for name in p.args:  # pin(A, B) declares several pins with one body
            out.append(LibertyGroup(p.kind, [name], p.line, p.attrs, p.groups))
    return out


def load_liberty(path: str | Path) -> CellLibrary:
    """Read a user's Liberty file into a ``CellLibrary``.

    Raises ``MacforgeError`` naming the line of a syntax error, or the cell the flow needs and
    the file lacks (a 2-input NAND as the NAND2-equivalent reference, a buffer, and a
    positive-edge D flip-flop without set/reset for ``dfflibmap``).
    """
    p = Path(path)
    try:
        text = p.read_text(errors="replace")
    except OSError as e:
        raise MacforgeError(f"cannot read Liberty file {path}: {e.strerror or e}") from None
    lib = parse_liberty(text, str(path))
    tables = _Tables(lib, str(path))
    tu = lib.attr("time_unit", "1ns") or "1ns"
    if tu not in _UNIT:
        raise MacforgeError(f"{path}: time_unit {tu!r} is not understood (1ns, 100ps, 10ps, 1ps)")
    ns = _UNIT[tu]
    cap_pf = _cap_unit_pf(lib)
    volt = float(lib.attr("nom_voltage", "0") or 0)
    if volt <= 0:
        ops = lib.sub("operating_conditions")
        volt = float(ops[0].attr("voltage", "0") or 0) if ops else 0.0
    if volt <= 0:
        raise MacforgeError(f"{path}: no nom_voltage (needed for the ½CV² load energy)")
    default_cap = float(lib.attr("default_input_pin_cap", "0") or 0)
    slew = tables.mid_slew()

    raw: dict[str, dict[str, Any]] = {}
    for cell in lib.sub("cell"):
        name = cell.args[0] if cell.args else ""
        if not name or (cell.attr("dont_use", "false") or "").lower() == "true":
            continue
        pins = _pins(cell)
        ins = [q for q in pins if _direction(q) == "input"]
        outs = [q for q in pins if _direction(q) == "output"]
        ffs = cell.sub("ff")
        if len(outs) != 1 or cell.sub("latch") or cell.sub("statetable"):
            continue  # multi-output, latches, tristates: not used by this flow
        caps = {}
        for q in ins:
            c = q.attr("capacitance")
            if c is None:
                rc, fc = q.attr("rise_capacitance"), q.attr("fall_capacitance")
                c = str((float(rc) + float(fc)) / 2) if rc and fc else None
            caps[q.args[0]] = float(c) if c is not None else default_cap
        raw[name] = {"group": cell, "ins": ins, "out": outs[0], "ff": ffs[0] if ffs else None, "caps": caps,
                     "area": float(cell.attr("area", "0") or 0)}

    def is_nand2(r: dict[str, Any]) -> bool:
        fn = r["out"].attr("function")
        ins = tuple(q.args[0] for q in r["ins"])
        return r["ff"] is None and fn is not None and len(ins) == 2 and function_truth_table(fn, ins) == (1, 1, 1, 0)

    def is_buf(r: dict[str, Any]) -> bool:
        fn = r["out"].attr("function")
        ins = tuple(q.args[0] for q in r["ins"])
        return r["ff"] is None and fn is not None and len(ins) == 1 and function_truth_table(fn, ins) == (0, 1)

    def plain_dff(r: dict[str, Any]) -> bool:
        ff = r["ff"]
        if ff is None or ff.attr("clear") or ff.attr("preset"):
            return False
        clk = (ff.attr("clocked_on") or "").strip()
        nxt = (ff.attr("next_state") or "").strip()
        ins = [q.args[0] for q in r["ins"]]
        fn = (r["out"].attr("function") or "").strip()
        return clk in ins and nxt in ins and len(ins) == 2 and bool(ff.args) and fn == ff.args[0]

    def smallest(pred: Any, what: str) -> str:
        names = [n for n, r in raw.items() if pred(r)]
        if not names:
            raise MacforgeError(f"Liberty file {path} has no {what} cell, which the flow needs")
        return min(names, key=lambda n: (raw[n]["area"], n))

    nand2 = smallest(is_nand2, "2-input NAND (the NAND2-equivalent reference)")
    buf = smallest(is_buf, "buffer (ABC needs one)")
    dff = smallest(plain_dff, "positive-edge D flip-flop without set/reset (dfflibmap needs one)")
    ref_load = sum(raw[nand2]["caps"].values()) / 2

    cells: dict[str, LibCell] = {}
    for name, r in raw.items():
        g, out = r["group"], r["out"]
        notes = []
        ins = tuple(q.args[0] for q in r["ins"])
        # internal energy per output toggle: mean over the output's internal_power arcs of
        # (rise + fall) / 2 at the reference slew and one NAND2 input of load
        e = []
        for ip in out.sub("internal_power"):
            vals = [tables.lookup(t, slew, ref_load) for k in ("rise_power", "fall_power") for t in ip.sub(k)]
            if vals:
                e.append(sum(vals) / len(vals))
        if not e:
            notes.append("no internal_power: load energy only")
        toggle = sum(e) / len(e) if e else 0.0
        delay: dict[str, tuple[float, float]] = {}
        for tg in out.sub("timing"):
            rel = (tg.attr("related_pin") or "").split()
            ttype = (tg.attr("timing_type") or "combinational").lower()
            if ttype not in ("combinational", "rising_edge"):
                continue
            arcs = [t for k in ("cell_rise", "cell_fall") for t in tg.sub(k)]
            if not arcs:
                continue
            d0 = sum(tables.lookup(t, slew, ref_load) for t in arcs) / len(arcs) * ns
            d1 = sum(tables.lookup(t, slew, 2 * ref_load) for t in arcs) / len(arcs) * ns
            slope = (d1 - d0) / ref_load if ref_load else 0.0
            for pin in rel:
                old = delay.get(pin)
                cand = (d0 - slope * ref_load, slope)
                delay[pin] = cand if old is None else max(old, cand)  # worst of the `when` arcs
        if not delay:
            notes.append("no timing: delay 0")
        clock_e = 0.0
        setup = 0.0
        clock = data = None
        fn: str | None = out.attr("function")
        if r["ff"] is not None:
            if name != dff:
                continue
            ff = r["ff"]
            clock, data = (ff.attr("clocked_on") or "").strip(), (ff.attr("next_state") or "").strip()
            fn = None
            ck = next(q for q in r["ins"] if q.args[0] == clock)
            ck_e = []
            for ip in ck.sub("internal_power"):  # clock pin energy with the output not switching
                vals = [tables.lookup(t, slew, ref_load) for k in ("rise_power", "fall_power") for t in ip.sub(k)]
                if vals:
                    ck_e.append(sum(vals))  # both edges occur every cycle
            # the clock pin's own capacitance charged and discharged once per cycle, plus its internal energy
            clock_e = (sum(ck_e) / len(ck_e) if ck_e else 0.0) + 2 * r["caps"][clock] * volt * volt / 2
            dpin = next(q for q in r["ins"] if q.args[0] == data)
            setups = [tables.lookup(t, slew, slew) * ns for tg in dpin.sub("timing")
                      if (tg.attr("timing_type") or "").lower() == "setup_rising"
                      for k in ("rise_constraint", "fall_constraint") for t in tg.sub(k)]
            setup = max(setups) if setups else 0.0
            if not ck_e:
                notes.append("no clock-pin internal_power: clock pin capacitance only")
        elif fn is None:
            continue
        else:
            try:
                function_truth_table(fn, ins)
            except MacforgeError as exc:
                raise MacforgeError(f"{path}:{g.line}: cell {name}: {exc}") from None
        cells[name] = LibCell(name=name, area=r["area"], inputs=ins, output=out.args[0], function=fn,
                              pin_cap=r["caps"], toggle_energy=toggle, delay=delay, clock_energy=clock_e,
                              clock=clock, data=data, setup=setup, notes=tuple(notes))
    # energies: Liberty's internal_power unit is capacitance unit × voltage², so pJ follow from the units
    pj_per_unit = cap_pf * 1.0  # (pF × V²) = pJ
    return CellLibrary(name=lib.args[0] if lib.args else p.stem, source=str(path), cells=cells,
                       energy_per_cap=volt * volt / 2, pj_per_energy_unit=pj_per_unit,
                       corner=(f"{path.name if isinstance(path, Path) else p.name}: nom_voltage {volt} V, input slew "
                               f"{slew * ns:.4g} ns, internal energy at a load of one {nand2} input "
                               f"({ref_load:g} × {cap_pf * 1000:g} fF)"),
                       area_unit="library area unit", nand2=nand2, dff=dff, buf=buf, path=str(p.resolve()), text=text)


def library_verilog(lib: CellLibrary, delay: str = "zero") -> str:
    """Behavioural Verilog of every cell of ``lib`` for simulating its mapped netlists (Icarus);
    ``delay="unit"`` gives every combinational output a 1-unit inertial delay (glitches)."""
    d = "#1 " if delay == "unit" else ""
    out = [f"// cell models of {lib.name} (generated by macforge rtl/flow/_liberty.py)", "`timescale 1ns/1ps"]
    for c in lib.cells.values():
        if c.is_ff:
            ports = ", ".join(f"input {p}" for p in c.inputs)
            out.append(f"module {c.name}({ports}, output reg {c.output}); "
                       f"always @(posedge {c.clock}) {c.output} <= {c.data}; endmodule")
        else:
            assert c.function is not None
            ports = ", ".join(f"input {p}" for p in c.inputs)
            out.append(f"module {c.name}({ports}, output {c.output}); "
                       f"assign {d}{c.output} = {function_to_verilog(c.function)}; endmodule")
    return "\n".join(out) + "\n"
