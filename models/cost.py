"""The analytical cost model: area and energy of a unit per component, as functions of its
spec's widths, with coefficients fitted to synthesis (``fit``) and validated out of sample
(leave-one-out and held-out families, ``cross_validate``); and memory costs from cited
published figures.

Features (read off the UnitSpec, never typed in), grouped by the component they belong to
(``COMPONENTS``; the same split as ``rtl.flow.component_areas`` measures for a MAC):
- decode: ``decode_dint`` (dINT sign-magnitude / half-unit decode), ``decode_fp`` (minifloat
  field split), ``decode_lut_const`` (constant table), ``decode_lut_prog`` (programmable LUT
  read port, lut_bits per lane), ``decode_zp`` (zero-point subtraction); one per lane;
- multiplier: ``multiplier`` (partial-product bits, weight-integer bits × activation bits per
  lane), ``multiplier_adders`` (the array's adder cells, (weight bits - 1) × (activation bits
  - 1) per lane: a 2-bit weight needs almost none), ``product`` (the final carry-propagate adder,
  product bits per lane), ``shifter`` (a minifloat's exponent barrel shifter, product bits ×
  log2(positions) per lane);
- tree: ``tree``, the lane adder tree, (lanes - 1) adders of about product bits + log2(lanes),
  and ``tree_partial_products``, (lanes - 1) × the partial-product bits of a lane: Yosys merges
  the lanes' products and the tree into one compressor tree, whose size follows the partial
  products rather than the lanes' finished products;
- accumulator: ``accumulator`` (adder + overflow rule, acc_bits), ``pipeline_logic`` (reset
  gating of the pipeline registers, one per pipeline bit), ``lut_write`` (write port and reset
  of a programmable LUT, one per stored bit), ``const`` (en/clr control);
- registers: ``registers``, every flip-flop the RTL builds (``register_bits``).
The fit is a non-negative least-squares solve on the units' totals and, where measured, their
per-component areas, so each coefficient reads as "NAND2-eq per feature unit" (area) or
"NAND2 toggles per MAC per feature unit" (energy), and the model's split follows the measured one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import MacforgeError
from .formats import Format, get_format
from .units import UnitSpec, pipeline_cuts, signed_bits, unit_from_spec

__all__ = [
    "FEATURES",
    "COMPONENTS",
    "MEASURED_COMPONENTS",
    "MIN_SUPPORT",
    "HOLDOUT_GROUPS",
    "features",
    "family",
    "CostModel",
    "fit",
    "cross_validate",
    "sram_read_pj_per_64b",
    "dram_pj_per_64b",
    "MEMORY_SOURCES",
    "HOROWITZ_45NM_PJ",
    "sweep_specs",
    "coverage_specs",
    "register_bits",
    "pipeline_bits",
    "term_bits",
    "HUFFMAN_FEATURES",
    "HUFFMAN_SWEEP",
    "huffman_features",
    "huffman_sweep_specs",
    "fit_decoder",
]

COMPONENTS: dict[str, tuple[str, ...]] = {
    "decode": ("decode_dint", "decode_fp", "decode_lut_const", "decode_lut_prog", "decode_zp"),
    "multiplier": ("multiplier", "multiplier_adders", "product", "shifter"),
    "tree": ("tree", "tree_partial_products"),
    "accumulator": ("accumulator", "pipeline_logic", "lut_write", "const"),
    "registers": ("registers",),
}
FEATURES = tuple(f for fs in COMPONENTS.values() for f in fs)
COMPONENT_OF = {f: c for c, fs in COMPONENTS.items() for f in fs}
# the parts rtl.flow.component_areas measures (a MAC has no tree; a dot PE's registers are measured)
MEASURED_COMPONENTS = ("decode", "multiplier", "accumulator", "registers")
MIN_SUPPORT = 5  # a feature non-zero in fewer fitted units than this is flagged


def _weight_format(spec: UnitSpec) -> Format:
    """The spec's weight Format (a registered name or the Format object itself)."""
    wf = spec.weight_format
    return wf if isinstance(wf, Format) else get_format(wf)


def _multiplier_bits(spec: UnitSpec) -> int:
    """Width of the weight operand of the multiplier array, by decode style: a minifloat
    multiplies its signed significand (sign + 1.m), dINT Variant B a sign + 3-bit magnitude,
    dINT Variant A the signed (q - z), everything else the signed decoded integer."""
    fmt = _weight_format(spec)
    if spec.lut == "none" and fmt.kind == "fp" and "mbits" in fmt.params:
        return int(fmt.params["mbits"]) + 2  # type: ignore[call-overload]
    if spec.lut == "none" and fmt.kind == "dint":
        if fmt.zp_codes is None:
            return fmt.bits  # sign + (bits - 1)-bit magnitude code
        return signed_bits(-fmt.zero_point_max, fmt.zero_point_max)
    lo, hi = spec.weight_int_range
    return signed_bits(lo, hi)


def _shift_positions(spec: UnitSpec) -> int:
    """Positions of the minifloat exponent's barrel shifter (0 for non-FP decodes)."""
    fmt = _weight_format(spec)
    if spec.lut == "none" and fmt.kind == "fp" and "ebits" in fmt.params:
        return (1 << int(fmt.params["ebits"])) - 1  # type: ignore[call-overload]
    return 0


def term_bits(spec: UnitSpec) -> int:
    """Width of the value that reaches the accumulator (and that each pipeline stage registers):
    one lane's product over every *port* value (a zero-point port of zp_bits can exceed the
    format's largest zero point), less the bits product rounding drops (the RTL keeps one guard
    bit: width - shift + 1), plus one bit per level of the exact adder tree of a dot PE."""
    dec = spec.decode
    lo, hi = spec.weight_int_range
    if dec.zp_mask is not None and any(dec.zp_mask):
        zmax = (1 << dec.zp_bits) - 1
        if spec.lut == "programmable":
            lo = min(lo, -(1 << (spec.lut_bits - 1)) - dec.zp_scale * zmax)
        else:
            lo = min(lo, min(v - dec.zp_scale * zmax for v, m in zip(dec.table, dec.zp_mask) if m))
    al, ah = spec.act_range
    ends = (lo * al, lo * ah, hi * al, hi * ah)
    bits = max(signed_bits(*spec.exact_product_range), signed_bits(min(ends), max(ends)))
    if spec.product_shift:
        bits = bits - spec.product_shift + 1
    return bits + (spec.lanes - 1).bit_length()


def _lane_register_bits(spec: UnitSpec) -> tuple[int, int, int]:
    """(multiplicand bits m, bits that bypass the multiplier, decoded field bits) of one lane:
    a dINT-B lane multiplies its magnitude and carries its sign and the half-unit term (1 + act
    bits), decoded as sign + magnitude + half flag; a minifloat lane multiplies its significand
    and carries sign + exponent; the others multiply (and decode to) the signed integer."""
    fmt = _weight_format(spec)
    m = _multiplier_bits(spec)
    if spec.lut == "none" and fmt.kind == "fp" and "ebits" in fmt.params:
        e = int(fmt.params["ebits"])  # type: ignore[call-overload]
        return m - 1, 1 + e, 1 + e + (m - 1)
    if spec.lut == "none" and fmt.kind == "dint" and fmt.zp_codes is None:
        return m - 1, 1 + spec.act_bits, 1 + (m - 1) + 1
    return m, 0, m


def pipeline_bits(spec: UnitSpec) -> int:
    """Flip-flops of the latency - 1 pipeline levels (``models.units.pipeline_cuts``, where the
    RTL places them), each with its en and clr: ``term`` registers the accumulator's input (a
    dot PE's adder-tree output, not its lanes' products); ``split`` each lane's two partial products (multiplicand × the activation's low
    and high halves: 2·m + act bits) and the fields that bypass the multiplier; ``operands``
    each lane's decoded fields and activation. Checked against the synthesized netlists'
    flip-flops for INT, dINT-B, FP8 and dot units at latency 2-4 (tests/test_cost_synth.py)."""
    m, side, fields = _lane_register_bits(spec)
    per = {"term": term_bits(spec),
           "split": spec.lanes * (2 * m + spec.act_bits + side) if spec.act_bits >= 2 else 0,
           "operands": spec.lanes * (fields + spec.act_bits)}
    return sum(per[c] + 2 for c in pipeline_cuts(spec))


def _lut_storage_bits(spec: UnitSpec) -> int:
    """A programmable LUT holds one lut_bits register per code of the weight format."""
    return (1 << _weight_format(spec).bits) * spec.lut_bits if spec.lut == "programmable" else 0


def register_bits(spec: UnitSpec) -> int:
    """Flip-flops the RTL builds (rtl/_datapath.py ``accumulate``, rtl/_units.py): the
    accumulator, the pipeline stages (``pipeline_bits``) and the programmable LUT's storage."""
    return spec.acc_bits + pipeline_bits(spec) + _lut_storage_bits(spec)


def features(spec: UnitSpec) -> dict[str, float]:
    """Feature vector of a unit (see module docstring), in ``FEATURES`` order."""
    if spec.kind not in ("mac", "dot"):
        raise MacforgeError(f"the cost model covers mac and dot units, not {spec.kind}")
    lanes = spec.lanes
    wb, ab = _multiplier_bits(spec), spec.act_bits
    pb = spec.product_bits
    fmt = _weight_format(spec)
    dint = spec.lut == "none" and fmt.kind == "dint"  # a LUT unit decodes by table
    shifts = _shift_positions(spec)
    f = {
        "decode_dint": float(lanes if dint else 0),
        "decode_fp": float(lanes if shifts else 0),
        "decode_lut_const": float(lanes if spec.lut == "constant" else 0),
        "decode_lut_prog": float(lanes * spec.lut_bits if spec.lut == "programmable" else 0),
        "decode_zp": float(lanes if spec.decode.zp_mask is not None else 0),
        "multiplier": float(lanes * wb * ab),
        "multiplier_adders": float(lanes * (wb - 1) * (ab - 1)),
        "product": float(lanes * pb),
        "shifter": float(lanes * pb * math.log2(shifts + 1)) if shifts else 0.0,
        "tree": float((lanes - 1) * (pb + math.log2(lanes))) if lanes > 1 else 0.0,
        "tree_partial_products": float((lanes - 1) * wb * ab),
        "accumulator": float(spec.acc_bits),
        "pipeline_logic": float(pipeline_bits(spec)),
        "lut_write": float(_lut_storage_bits(spec)),
        "const": 1.0,
        "registers": float(register_bits(spec)),
    }
    return {k: f[k] for k in FEATURES}


def family(spec: UnitSpec) -> str:
    """The unit's weight-decode family: ``lut`` (constant or programmable table), ``fp``
    (minifloat), ``dint``, ``int_zp`` (integer with a zero point) or ``int``."""
    fmt = _weight_format(spec)
    if spec.lut != "none":
        return "lut"
    if fmt.kind == "fp":
        return "fp"
    if fmt.kind == "dint":
        return "dint"
    return "int_zp" if spec.decode.zp_mask is not None else "int"


HOLDOUT_GROUPS: dict[str, Callable[[UnitSpec], bool]] = {
    "dot": lambda s: s.lanes > 1,  # fit on single-lane MACs, predict the dot-product PEs
    "dint": lambda s: family(s) == "dint",
    "lut": lambda s: family(s) == "lut",
    "fp": lambda s: family(s) == "fp",
    "int_zp": lambda s: family(s) == "int_zp",
    "pipelined": lambda s: s.latency > 1,
}


def _split(coefficients: Mapping[str, float], f: Mapping[str, float]) -> dict[str, float]:
    return {c: float(sum(coefficients.get(k, 0.0) * f[k] for k in fs)) for c, fs in COMPONENTS.items()}


@dataclass
class CostModel:
    """Fitted coefficients for one quantity (``nand2_eq`` area or ``energy`` per MAC).

    ``mean_abs_rel_error`` / ``max_abs_rel_error`` / ``r2`` / ``residuals`` are in-sample (the
    units the coefficients were fitted to); ``validation`` holds the out-of-sample errors
    (``cross_validate``); ``support`` the number of fitted units each feature is non-zero in,
    ``flagged`` the features resting on fewer than ``MIN_SUPPORT``; ``component_errors`` the
    model's split against the measured one, per component (in-sample)."""

    quantity: str
    coefficients: dict[str, float]
    n_points: int
    mean_abs_rel_error: float
    max_abs_rel_error: float
    r2: float
    note: str = ""
    residuals: dict[str, float] = field(default_factory=dict)
    per_mac: bool = False
    support: dict[str, int] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    component_errors: dict[str, dict[str, float]] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    covers: str = "mac_dot"
    """``mac_dot`` (``FEATURES``) or ``huffman`` (a decoder model on ``HUFFMAN_FEATURES``)"""
    decoder: "CostModel | None" = None
    """the huffman decoder model fitted beside a mac/dot model (``sim.costfit.fit_area``)"""

    def _route(self, spec: UnitSpec) -> "tuple[CostModel, dict[str, float]]":
        """(the model that covers ``spec``, its features); a unit outside every fit -> error."""
        if spec.kind == "huffman":
            if self.covers == "huffman":
                return self, huffman_features(spec)
            if self.decoder is not None:
                return self.decoder, huffman_features(spec)
            raise MacforgeError(f"unit {spec.name} is a huffman decoder: outside this model's fit (mac and dot "
                                "units); fit one with models.cost.fit_decoder")
        if self.covers == "huffman":
            raise MacforgeError(f"this model covers huffman decoders only, not {spec.kind} ({spec.name})")
        return self, features(spec)

    def predict(self, spec: UnitSpec) -> float:
        """The unit's estimate (energy models: per cycle, i.e. per-MAC features × lanes)."""
        m, f = self._route(spec)
        return float(sum(m.coefficients.get(k, 0.0) * v for k, v in f.items()))

    def breakdown(self, spec: UnitSpec) -> dict[str, float]:
        """The estimate by feature (non-zero terms only)."""
        m, f = self._route(spec)
        return {k: m.coefficients.get(k, 0.0) * v for k, v in f.items() if m.coefficients.get(k, 0.0) * v}

    def components(self, spec: UnitSpec) -> dict[str, float]:
        """The estimate by component (``COMPONENTS``); the values sum to ``predict``."""
        m, f = self._route(spec)
        if m.covers == "huffman":
            return {c: float(sum(m.coefficients.get(k, 0.0) * v for k, v in f.items()
                                 if HUFFMAN_COMPONENT_OF[k] == c)) for c in COMPONENTS}
        return _split(m.coefficients, f)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- fitting
def _check(specs: Sequence[UnitSpec], measured: Sequence[float],
           components: Sequence[Mapping[str, float] | None] | None) -> np.ndarray:
    if len(specs) != len(measured):
        raise MacforgeError(f"fit needs one measurement per spec, got {len(specs)} specs and {len(measured)} values")
    if components is not None and len(components) != len(specs):
        raise MacforgeError(f"fit needs one component record (or None) per spec, got {len(components)} "
                            f"for {len(specs)} specs")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise MacforgeError(f"fit got unit {dup} twice")
    y = np.asarray(measured, dtype=np.float64)
    if not np.isfinite(y).all():
        raise MacforgeError("measured values contain NaN or Inf")
    if (y <= 0).any():
        raise MacforgeError(f"measured values must be positive (relative errors), "
                            f"unit {names[int(np.argmax(y <= 0))]} has {float(y[y <= 0][0])!r}")
    for comp in components or []:
        for c, v in (comp or {}).items():
            if c not in COMPONENTS:
                raise MacforgeError(f"unknown component {c!r}; known: {', '.join(COMPONENTS)}")
            if not math.isfinite(v):
                raise MacforgeError(f"measured component {c} is NaN or Inf")
    return y


_MASKS = {c: np.array([COMPONENT_OF[k] == c for k in FEATURES], dtype=np.float64) for c in COMPONENTS}


def _solve(x: np.ndarray, y: np.ndarray, comps: Sequence[Mapping[str, float] | None], rows: np.ndarray) -> np.ndarray:
    """NNLS on the units ``rows``: one row per unit total, one per measured component of it
    (its features outside that component masked out); every row weighted by 1 / the unit's
    total, so totals are fitted in relative error and components as shares of their unit."""
    from scipy.optimize import nnls

    a_rows, b_rows = [], []
    for i in rows:
        w = 1.0 / y[i]
        a_rows.append(x[i] * w)
        b_rows.append(y[i] * w)
        for c, v in (comps[i] or {}).items():
            a_rows.append(x[i] * _MASKS[c] * w)
            b_rows.append(v * w)
    a, b = np.array(a_rows), np.array(b_rows)
    col = np.maximum(np.abs(a).max(axis=0), 1e-12)  # column scaling: NNLS well conditioned
    coef, _ = nnls(a / col, b, maxiter=50 * a.shape[1])
    return coef / col  # type: ignore[no-any-return]


def _component_errors(x: np.ndarray, y: np.ndarray, comps: Sequence[Mapping[str, float] | None],
                      coef: np.ndarray, rows: Sequence[int]) -> dict[str, dict[str, float]]:
    """Per component: model - measured over the units that measured it, absolute and as a
    share of the unit's measured total."""
    errs: dict[str, list[tuple[float, float]]] = {}
    for i in rows:
        for c, v in (comps[i] or {}).items():
            d = float(x[i] @ (coef * _MASKS[c])) - v
            errs.setdefault(c, []).append((d, d / y[i]))
    out = {}
    for c in COMPONENTS:
        if c in errs:
            e = np.array(errs[c])
            out[c] = {"n": int(len(e)), "mean_abs_error": float(np.mean(np.abs(e[:, 0]))),
                      "max_abs_error": float(np.max(np.abs(e[:, 0]))),
                      "mean_abs_share_of_total": float(np.mean(np.abs(e[:, 1]))),
                      "max_abs_share_of_total": float(np.max(np.abs(e[:, 1])))}
    return out


def _design(specs: Sequence[UnitSpec], per_mac: bool) -> np.ndarray:
    return np.array([[v / (s.lanes if per_mac else 1) for v in features(s).values()] for s in specs])


def _summary(rel: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    worst = int(np.argmax(np.abs(rel)))
    return {"n": int(len(rel)), "mean_abs_rel_error": float(np.mean(np.abs(rel))),
            "max_abs_rel_error": float(np.max(np.abs(rel))), "worst_unit": names[worst]}


def fit(specs: Sequence[UnitSpec], measured: Sequence[float], quantity: str, per_mac: bool = False,
        components: Sequence[Mapping[str, float] | None] | None = None, validate: bool = True) -> CostModel:
    """Non-negative least-squares fit of ``measured`` (one positive value per spec) on
    ``features``, and of ``components`` where given (per spec: measured part -> value, parts
    among ``COMPONENTS``, e.g. ``rtl.flow.component_areas`` of a MAC), in one solve.

    ``per_mac``: the measured value is per MAC (energy), so each unit's features are divided by
    its lanes before fitting. ``validate``: also run ``cross_validate`` (leave-one-out and
    held-out groups) into ``CostModel.validation``."""
    y = _check(specs, measured, components)
    x = _design(specs, per_mac)
    support = {k: int(np.count_nonzero(x[:, j])) for j, k in enumerate(FEATURES)}
    used = sum(1 for v in support.values() if v)
    if len(specs) < max(used, 2):
        raise MacforgeError(f"fit needs at least as many units as features they exercise ({used}), got {len(specs)}")
    comps = list(components) if components is not None else [None] * len(specs)
    coef = _solve(x, y, comps, np.arange(len(specs)))
    pred = x @ coef
    rel = pred / y - 1
    ss_res = float(np.sum((pred - y) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    model = CostModel(
        quantity=quantity,
        coefficients={k: float(c) for k, c in zip(FEATURES, coef)},
        n_points=len(y),
        mean_abs_rel_error=float(np.mean(np.abs(rel))),
        max_abs_rel_error=float(np.max(np.abs(rel))),
        r2=1.0 - ss_res / ss_tot,
        residuals={s.name: float(r) for s, r in zip(specs, rel)},
        per_mac=per_mac,
        support=support,
        flagged=[k for k, v in support.items() if 0 < v < MIN_SUPPORT],
        component_errors=_component_errors(x, y, comps, coef, range(len(specs))),
    )
    if validate:
        model.validation = cross_validate(specs, measured, per_mac, components)
    return model


def cross_validate(specs: Sequence[UnitSpec], measured: Sequence[float], per_mac: bool = False,
                   components: Sequence[Mapping[str, float] | None] | None = None,
                   groups: Mapping[str, Callable[[UnitSpec], bool]] | None = None) -> dict[str, Any]:
    """Out-of-sample errors of the ``fit`` on these units (relative errors of the total, model
    / measured - 1):

    - ``in_sample``: fitted on every unit, errors on the same units;
    - ``leave_one_out``: each unit predicted by a fit on all the others (its measured
      components too: ``components`` gives the left-out units' split errors);
    - ``held_out``: per group of ``groups`` (default ``HOLDOUT_GROUPS``: dot PEs, each decode
      family, pipelined units), the group predicted by a fit on the rest; ``unseen_features``
      are features the rest never exercises (their coefficient is then 0: that part of the
      group's cost cannot be predicted)."""
    y = _check(specs, measured, components)
    x = _design(specs, per_mac)
    names = [s.name for s in specs]
    comps = list(components) if components is not None else [None] * len(specs)
    n = len(specs)
    everything = np.arange(n)
    coef = _solve(x, y, comps, everything)
    out: dict[str, Any] = {"in_sample": _summary(x @ coef / y - 1, names)}
    loo = np.empty(n)
    loo_comp_rows: list[int] = []
    loo_coefs = np.empty((n, len(FEATURES)))
    for i in range(n):
        c = _solve(x, y, comps, np.delete(everything, i))
        loo_coefs[i] = c
        loo[i] = float(x[i] @ c) / y[i] - 1
        if comps[i]:
            loo_comp_rows.append(i)
    out["leave_one_out"] = {**_summary(loo, names), "errors": dict(zip(names, loo.tolist()))}
    # each left-out unit's split, from the fit that did not see it
    errs: dict[str, list[float]] = {}
    for i in loo_comp_rows:
        for cname, v in (comps[i] or {}).items():
            errs.setdefault(cname, []).append((float(x[i] @ (loo_coefs[i] * _MASKS[cname])) - v) / y[i])
    out["leave_one_out"]["components"] = {
        cname: {"n": len(e), "mean_abs_share_of_total": float(np.mean(np.abs(e))),
                "max_abs_share_of_total": float(np.max(np.abs(e)))} for cname, e in errs.items()}
    held: dict[str, Any] = {}
    for gname, member in (HOLDOUT_GROUPS if groups is None else groups).items():
        mask = np.array([bool(member(s)) for s in specs])
        if not mask.any() or mask.all():
            continue  # nothing to hold out, or nothing left to fit on
        train, test = everything[~mask], everything[mask]
        c = _solve(x, y, comps, train)
        rel = x[test] @ c / y[test] - 1
        seen = (x[train] != 0).any(axis=0)
        unseen = [k for j, k in enumerate(FEATURES) if not seen[j] and (x[test][:, j] != 0).any()]
        held[gname] = {**_summary(rel, [names[i] for i in test]), "n_fit": int(len(train)),
                       "unseen_features": unseen, "errors": {names[i]: float(r) for i, r in zip(test, rel)}}
    out["held_out"] = held
    return out
# --------------------------------------------------------------------------- memory, published
HOROWITZ_45NM_PJ = {  # Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm (PAPERS.md §6)
    "int8_add": 0.03, "int32_add": 0.1, "int8_mult": 0.2, "int32_mult": 3.1,
    "fp16_add": 0.4, "fp16_mult": 1.1, "fp32_add": 0.9, "fp32_mult": 3.7,
}
_SRAM_POINTS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))  # bytes, pJ / 64-bit read
MEMORY_SOURCES = {
    "sram": "Horowitz ISSCC 2014 (45 nm): 64-bit SRAM read 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB); "
            "log-log interpolation between, extrapolation beyond",
    "dram": "Horowitz ISSCC 2014: DRAM 1.3-2.6 nJ per 64 bits (midpoint 1.95 nJ); "
            "Accelergy LPDDR4 reference: 512 pJ per 64 bits",
}


def sram_read_pj_per_64b(size_bytes: float) -> float:
    """Energy of a 64-bit SRAM read at 45 nm by array size (log-log interpolation)."""
    if not (isinstance(size_bytes, (int, float)) and size_bytes > 0 and math.isfinite(size_bytes)):
        raise MacforgeError(f"SRAM size must be a positive number of bytes, not {size_bytes!r}")
    xs = np.log([p[0] for p in _SRAM_POINTS])
    ys = np.log([p[1] for p in _SRAM_POINTS])
    lx = math.log(size_bytes)
    if lx <= xs[0]:
        slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        return float(math.exp(ys[0] + slope * (lx - xs[0])))
    if lx >= xs[-1]:
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return float(math.exp(ys[-1] + slope * (lx - xs[-1])))
    return float(math.exp(np.interp(lx, xs, ys)))


def dram_pj_per_64b(kind: str = "ddr") -> float:
    """DRAM access energy per 64 bits: 'ddr' (Horowitz midpoint) or 'lpddr4' (Accelergy)."""
    table = {"ddr": 1950.0, "lpddr4": 512.0}
    if kind not in table:
        raise MacforgeError(f"unknown DRAM kind {kind!r}; known: {', '.join(table)}")
    return table[kind]


# --------------------------------------------------------------------------- the fitting sweep
SWEEP_WEIGHT_BITS = (2, 3, 4, 6, 8)
SWEEP_ACT_BITS = (4, 6, 8)
SWEEP_ACC_BITS = (16, 24, 32)
SWEEP_LANES = (1, 4, 16)


def sweep_specs(weight_bits: Sequence[int] = SWEEP_WEIGHT_BITS, act_bits: Sequence[int] = SWEEP_ACT_BITS,
                acc_bits: Sequence[int] = SWEEP_ACC_BITS, lanes: Sequence[int] = SWEEP_LANES) -> list[UnitSpec]:
    """INT×INT units over the sweep grid (combinations whose accumulator cannot hold one
    result are skipped)."""
    out = []
    for wb in weight_bits:
        for ab in act_bits:
            for acc in acc_bits:
                for ln in lanes:
                    kind = "mac" if ln == 1 else "dot"
                    name = f"sweep_{kind}{ln}_int{wb}xint{ab}_acc{acc}"
                    try:
                        out.append(UnitSpec(name=name, kind=kind, weight_format=f"int{wb}",  # type: ignore[arg-type]
                                            act_format=f"int{ab}", lanes=ln, acc_bits=acc))
                    except MacforgeError:
                        continue
    return out


# units that give the features the INT sweep and the named units leave thin (minifloat, zero
# point, constant / programmable LUT, pipeline stages) at least MIN_SUPPORT units each
COVERAGE_UNITS = (
    "kind=mac,weights=fp6_e2m3", "kind=mac,weights=fp6_e3m2", "kind=mac,weights=fp4_e2m1",
    "kind=dot,lanes=4,weights=fp8_e4m3", "kind=dot,lanes=4,weights=fp4_e2m1",
    "kind=mac,weights=int4_asym", "kind=mac,weights=int8_asym", "kind=dot,lanes=4,weights=int4_asym",
    "kind=dot,lanes=4,weights=nf4,lut=constant", "kind=dot,lanes=4,weights=fp4_e2m1,lut=constant",
    "kind=mac,weights=nf4,lut=programmable,lut_bits=6", "kind=dot,lanes=4,weights=nf4,lut=programmable,lut_bits=6",
    "kind=mac,weights=int8,latency=2", "kind=mac,weights=int8,latency=3", "kind=mac,weights=dint4_sym,latency=2",
    "kind=dot,lanes=4,weights=int8,latency=2", "kind=dot,lanes=16,weights=int8,latency=2",
)


def coverage_specs() -> list[UnitSpec]:
    """``COVERAGE_UNITS`` as UnitSpecs (canonical names)."""
    return [unit_from_spec(u) for u in COVERAGE_UNITS]


# --------------------------------------------------------------------------- huffman decoders
# The canonical-Huffman decoder (rtl/_huffman.py) has none of a MAC's parts; its area model has
# its own features, read off the entropy format it decodes (L = max code length, S = symbol bits,
# C = chunk count bits, W = 32 + 2L buffer bits):
# - symbol_memory: 2^S × S stored bits (flip-flops, write decode and the read multiplexer);
# - length_table: L × (L + 2S + 1) bits of first / count / index registers;
# - matcher: Σ_l (l + 2S + 1) = L(L+1)/2 + L(2S+1), the L parallel range checks and the
#   priority selection of the matched length's offset and index;
# - shifter: 2·W·log2 W, the buffer's consume shift and the word-placement shift;
# - stream_state: W + C + S + log2 W, the buffer, the symbol count, the output and fill level.
HUFFMAN_FEATURES = ("symbol_memory", "length_table", "matcher", "shifter", "stream_state")
HUFFMAN_COMPONENT_OF = {"symbol_memory": "registers", "length_table": "registers", "stream_state": "registers",
                        "matcher": "decode", "shifter": "decode"}
HUFFMAN_SWEEP = dict(max_len=(8, 12, 16), symbol_bits=(4, 6, 8))


def huffman_features(spec: UnitSpec) -> dict[str, float]:
    """Feature vector of a huffman unit (``HUFFMAN_FEATURES`` order; see above)."""
    if spec.kind != "huffman":
        raise MacforgeError(f"huffman features are for huffman units, not {spec.kind} ({spec.name})")
    hp = spec.huffman_params
    L, S, C = hp["max_len"], hp["symbol_bits"], hp["count_bits"]
    W = 32 + 2 * L
    return {"symbol_memory": float((1 << S) * S), "length_table": float(L * (L + 2 * S + 1)),
            "matcher": float(L * (L + 1) / 2 + L * (2 * S + 1)), "shifter": float(2 * W * math.log2(W)),
            "stream_state": float(W + C + S + W.bit_length())}


def huffman_sweep_specs(budget: float = 4.0, chunk: int = 4096) -> list[UnitSpec]:
    """Huffman units over ``HUFFMAN_SWEEP`` (max_len × symbol_bits), each on its own entropy
    format ``hsweep_L<L>_s<S>`` (registered)."""
    from .formats import entropy_format

    out = []
    for L in HUFFMAN_SWEEP["max_len"]:
        for S in HUFFMAN_SWEEP["symbol_bits"]:
            fmt = entropy_format(f"hsweep_L{L}_s{S}", budget, L, chunk=chunk, symbol_bits=S)
            out.append(UnitSpec(name=f"huffman_hsweep_L{L}_s{S}", kind="huffman", weight_format=fmt))
    return out


def _nnls_rel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    w = 1.0 / y  # relative error, like the mac/dot fit
    return nnls(x * w[:, None], y * w)[0]


def fit_decoder(specs: Sequence[UnitSpec], measured: Sequence[float], quantity: str = "nand2_eq") -> CostModel:
    """NNLS fit of huffman decoders' measured area on ``HUFFMAN_FEATURES`` (relative error),
    with leave-one-out errors in ``validation``."""
    y = _check(specs, measured, None)
    if any(s.kind != "huffman" for s in specs):
        raise MacforgeError("fit_decoder takes huffman units only")
    x = np.array([list(huffman_features(s).values()) for s in specs])
    if len(specs) < len(HUFFMAN_FEATURES) + 1:
        raise MacforgeError(f"fit_decoder needs more units than features ({len(HUFFMAN_FEATURES)}), got {len(specs)}")
    coef = _nnls_rel(x, y)
    rel = x @ coef / y - 1
    loo = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        loo[i] = float(x[i] @ _nnls_rel(x[keep], y[keep])) / y[i] - 1
    names = [s.name for s in specs]
    pred = x @ coef
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    return CostModel(
        quantity=quantity, coefficients={k: float(c) for k, c in zip(HUFFMAN_FEATURES, coef)}, n_points=len(y),
        mean_abs_rel_error=float(np.mean(np.abs(rel))), max_abs_rel_error=float(np.max(np.abs(rel))),
        r2=1.0 - float(np.sum((pred - y) ** 2)) / ss_tot, residuals=dict(zip(names, map(float, rel))),
        support={k: int(np.count_nonzero(x[:, j])) for j, k in enumerate(HUFFMAN_FEATURES)},
        validation={"in_sample": _summary(rel, names),
                    "leave_one_out": {**_summary(loo, names), "errors": dict(zip(names, map(float, loo)))}},
        covers="huffman",
        note=f"NNLS fit of huffman decoders' generic-cell area over {len(y)} units (max_len × symbol_bits)")
