"""The w4a8 report's derive + render steps (sim/report_w4a8.py) on the measured frames of the
committed report (reports/w4a8_*.csv + w4a8_mac_meta.json), changed one figure at a time: the
rendered ratios and conclusions must follow the input, not the run that wrote the files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from models.errors import MacforgeError
from sim.report_w4a8 import (CSV_NAMES, META_NAME, PAPER_POWER, W4A8Data, derive_w4a8, load_w4a8, render_files,
                             render_w4a8)

REPORTS = Path(__file__).resolve().parents[1] / "reports"
BASE, D_SYM = "mac_int8xint8", "mac_dint4_sym_xint8"


@pytest.fixture()
def data() -> W4A8Data:
    return load_w4a8(REPORTS)


def _row(md: str, first: str, section: str = "## All W4A8 units") -> list[str]:
    """The cells of the markdown table row starting with ``first`` after heading ``section``."""
    part = md[md.index(section):]
    for line in part.splitlines():
        if line.startswith(f"| {first} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no row {first!r} under {section!r}")


def _bullet(md: str, label: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"- **{label}**"))


def test_area_ratio_in_text_and_table_follows_the_measured_area(data: W4A8Data):
    main = data.tables["main"].set_index("unit")
    md = render_w4a8(data)
    ratio = main.loc[BASE, "nand2_eq"] / main.loc[D_SYM, "nand2_eq"]
    assert _row(md, D_SYM)[2] == f"{ratio:.2f}"
    assert f"**{ratio:.2f}×** smaller" in _bullet(md, "Area")
    # halve dINT4-B's area: 2× its previous saving everywhere the single-MAC area ratio is shown
    t = dict(data.tables)
    t["main"] = data.tables["main"].copy()
    t["main"].loc[t["main"].unit == D_SYM, "nand2_eq"] = main.loc[D_SYM, "nand2_eq"] / 2
    md2 = render_w4a8(W4A8Data(t, data.meta))
    assert _row(md2, D_SYM)[2] == f"{2 * ratio:.2f}"
    assert f"**{2 * ratio:.2f}×** smaller" in _bullet(md2, "Area")
    assert f"**{ratio:.2f}×** smaller" not in md2
    # the clock-energy table's area column reads the same derived ratio
    assert _row(md2, "0.00", "## Energy ratio across the flip-flop")[-1] == f"{2 * ratio:.2f}"
    # other units' rows are untouched
    assert _row(md2, "mac_int4xint8")[2] == _row(md, "mac_int4xint8")[2]


def test_equal_frequency_ratio_follows_the_target_areas(data: W4A8Data):
    ef = data.tables["equal_frequency"].copy()
    first = ef.target.iloc[0]
    sel = (ef.target == first) & (ef.unit == BASE)
    ef.loc[sel, "nand2_eq"] = 3 * ef.loc[(ef.target == first) & (ef.unit == D_SYM), "nand2_eq"].iloc[0]
    md = render_w4a8(W4A8Data({**data.tables, "equal_frequency": ef}, data.meta))
    assert "the ratio is **3.00×**" in _bullet(md, "Area")
    assert _row(md, D_SYM, "## Area at equal frequency")[4] == "3.00"


def test_energy_conclusions_follow_the_cell_energy_and_clock_frames(data: W4A8Data):
    md = render_w4a8(data)
    b = _bullet(md, "Combinational cell energies")
    ce = derive_w4a8(data.tables)["cell_energy"]
    sym = ce[ce.unit == D_SYM]
    assert f"{sym[sym.data == 'random'].energy_ratio.min():.2f}–{sym[sym.data == 'random'].energy_ratio.max():.2f}×" in b
    # make dINT4-B cost exactly INT8's energy on real data under every weighing: no saving left
    t = dict(data.tables)
    c = data.tables["cell_energy"].copy()
    for (dt, cv), g in c[c.data == "real"].groupby(["data", "cell_energy"]):
        base = g[g.unit == BASE].energy_per_mac_nand2.iloc[0]
        c.loc[(c.data == dt) & (c.cell_energy == cv) & (c.unit == D_SYM), "energy_per_mac_nand2"] = base
    t["cell_energy"] = c
    b2 = _bullet(render_w4a8(W4A8Data(t, data.meta)), "Combinational cell energies")
    assert "on real data under none of the weighings" in b2 and "1.00–1.00× on real data" in b2
    # and a 3× saving on random data with the library's clock energy: the paper's power figure is reached
    ck = data.tables["clock"].copy()
    sel = ck.data == "random"
    for cke, g in ck[sel].groupby("clock_energy_nand2"):
        base = g[g.unit == BASE].pj_per_mac.iloc[0]
        ck.loc[sel & (ck.clock_energy_nand2 == cke) & (ck.unit == D_SYM), "pj_per_mac"] = base / 3
    b3 = _bullet(render_w4a8(W4A8Data({**data.tables, "clock": ck}, data.meta)), "Energy")
    assert "3.00–3.00× (random)" in b3 and f"the paper's {PAPER_POWER}× is reached" in b3


def test_pipeline_table_and_narrative_follow_the_latency_frames(data: W4A8Data):
    pp = data.tables["pipeline"].copy()
    lats = sorted(pp.latency.unique())
    assert lats == [1, 2, 3]
    sel = (pp.unit == D_SYM) & (pp.latency == 3)
    base3 = pp[(pp.unit == BASE) & (pp.latency == 3)].critical_path_ns.iloc[0]
    pp.loc[sel, "critical_path_ns"] = base3 / 2  # dINT4-B twice as fast as INT8 at L = 3
    pp.loc[sel, "nand2_eq"] = pp[(pp.unit == BASE) & (pp.latency == 3)].nand2_eq.iloc[0] / 4
    md = render_w4a8(W4A8Data({**data.tables, "pipeline": pp}, data.meta))
    assert _row(md, D_SYM, "### Pipelining")[1] == "1"  # rows run L = 1, 2, 3
    rows = [line for line in md[md.index("### Pipelining"):].splitlines() if line.startswith(f"| {D_SYM} | 3 |")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[9] == "4.00" and cells[11] == "0.50"  # area INT8/x, path x/INT8
    b = _bullet(md, "Pipelining")
    assert re.search(r"area saving is [\d.]+ / [\d.]+ / 4\.00×", b)
    assert re.search(r"dINT4-B/INT8 [\d.]+ / [\d.]+ / 0\.50×", b)


def test_csvs_hold_the_derived_ratios_and_round_trip(data: W4A8Data, tmp_path: Path):
    files = render_files(data)
    assert set(CSV_NAMES.values()) | {META_NAME, "w4a8_mac.md", "w4a8_mac.png", "w4a8_pipeline.png"} == set(files)
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    back = load_w4a8(tmp_path)
    main = back.tables["main"].set_index("unit")
    assert main.loc[D_SYM, "area_ratio"] == pytest.approx(main.loc[BASE, "nand2_eq"] / main.loc[D_SYM, "nand2_eq"])
    assert render_w4a8(back) == files["w4a8_mac.md"].decode()  # re-rendered from the files alone


def test_missing_tables_and_files_are_refused(data: W4A8Data, tmp_path: Path):
    t = {k: v for k, v in data.tables.items() if k != "pipeline"}
    with pytest.raises(MacforgeError, match="lacks the table.*pipeline"):
        derive_w4a8(t)
    shutil.copy(REPORTS / META_NAME, tmp_path / META_NAME)
    with pytest.raises(MacforgeError, match="has no w4a8 report file w4a8_mac.csv"):
        load_w4a8(tmp_path)


def test_cells_table_puts_the_clock_energy_on_the_one_clocked_cell_and_refuses_two():
    """The cells table gives the energy record's one clock-energy total to the flip-flop row (the
    only clocked cell of the shipped library); a library with two clocked cells is refused, as
    that total could not be split between them."""
    from rtl.flow import cell_library
    from sim.report_w4a8 import cells_table

    table = cell_library().cell_table()
    clocked = [c["cell"] for c in table if c["clock_energy_rel"]]
    assert len(clocked) == 1
    energy = {u: {"by_cell_type": {c["cell"]: float(i + 1) for i, c in enumerate(table)},
                  "clock_energy_per_mac_nand2": 10.0 * (j + 1)} for j, u in enumerate((BASE, D_SYM))}
    df = cells_table(table, energy).set_index("cell")
    assert list(df.index) == [c["cell"] for c in table]
    assert df.loc[clocked[0], "clock_energy_per_mac_nand2_int8"] == 10.0
    assert df.loc[clocked[0], "clock_energy_per_mac_nand2_dint4_sym"] == 20.0
    assert (df.drop(index=clocked[0])[["clock_energy_per_mac_nand2_int8", "clock_energy_per_mac_nand2_dint4_sym"]] == 0).all().all()
    assert df["energy_per_mac_nand2_int8"].tolist() == [float(i + 1) for i in range(len(table))]
    other = next(c for c in table if not c["clock_energy_rel"])
    two = [dict(c, clock_energy_rel=1.0) if c is other else c for c in table]
    with pytest.raises(MacforgeError, match=rf"the library has 2 clocked cells \(.*{other['cell']}"):
        cells_table(two, energy)
