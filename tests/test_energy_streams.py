"""macforge energy on exported streams: the operands a quantization method sends to the MAC
(``macforge quant --export-streams``) drive the gate-level energy run (issue #9 item 3)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from models.errors import MacforgeError
from models.formats import get_format
from models.units import as_spec
from rtl.flow import unit_energy
from rtl.flow._unitflow import unit_stimulus
from sim.cli import main


def _write(path: Path, acts: np.ndarray, weights: np.ndarray, wfmt: str = "int8", zp: np.ndarray | None = None) -> Path:
    arrays = {"act_codes": acts.astype(np.int16), "weight_codes": get_format(wfmt).encode(weights.astype(float)),
              "weight_format": np.array(wfmt), "act_format": np.array("int8"), "layer": np.array("blk.3.ffn_up"),
              "method": np.array("aqas")}
    if zp is not None:
        arrays["weight_zero_points"] = zp
    np.savez(path, **arrays)
    return path


def test_stimulus_walks_the_exported_dot_products(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    acts, w = rng.integers(-128, 128, (4, 32)), rng.integers(-128, 128, (5, 32))
    f = _write(tmp_path / "s.npz", acts, w)
    stim, macs, desc = unit_stimulus(as_spec("mac_int8xint8"), "real", 32 * 7, streams=str(f))
    a, code = np.asarray(stim["a"]), np.asarray(stim["w"])
    assert macs == 224 and "s.npz" in desc and "aqas" in desc and "clr every 32 MACs" in desc
    # token 0 × rows 0..4, then token 1 × rows 0, 1: each dot product restarts the accumulator
    assert (a[:32] == acts[0]).all() and (a[32 * 5:32 * 6] == acts[1]).all()
    assert (code[32:64] == get_format("int8").encode(w[1].astype(float))).all()
    assert (np.flatnonzero(np.asarray(stim["clr"])) == np.arange(0, 224, 32)).all()


def test_exported_streams_refused_when_they_do_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    f = _write(tmp_path / "s.npz", rng.integers(-128, 128, (2, 16)), rng.integers(-128, 128, (2, 16)))
    spec = as_spec("mac_int8xint8")
    with pytest.raises(MacforgeError, match="exported weights are int8, unit mac_dint4_sym_xint8 takes dint4_sym"):
        unit_stimulus(as_spec("mac_dint4_sym_xint8"), "real", 16, streams=str(f))
    with pytest.raises(MacforgeError, match="hold 64 products of length 16, fewer than the 100 asked"):
        unit_stimulus(spec, "real", 100, streams=str(f))
    with pytest.raises(MacforgeError, match="no such exported-streams file"):
        unit_stimulus(spec, "real", 16, streams=str(tmp_path / "none.npz"))
    bad = tmp_path / "bad.npz"
    np.savez(bad, act_codes=np.zeros((2, 4)))
    with pytest.raises(MacforgeError, match="not an exported-streams file"):
        unit_stimulus(spec, "real", 4, streams=str(bad))
    wide = _write(tmp_path / "w.npz", np.full((1, 8), 300), np.ones((1, 8)))
    with pytest.raises(MacforgeError, match="do not fit unit mac_int8xint8's int8 range -128..127"):
        unit_stimulus(spec, "real", 8, streams=str(wide))
    assert main(["energy", "mac_int8xint8", "--streams", str(f), "--data", "random"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--streams are real data" in err


def test_energy_follows_the_exported_operands(tmp_path: Path) -> None:
    """Same weights, activations that toggle vs all zero: the measured energy must tell them apart
    (the run's own netlist-vs-golden check passes on both)."""
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (8, 64))
    busy = unit_energy("mac_int8xint8", "real", n_macs=512, streams=str(_write(tmp_path / "b.npz",
                                                                             rng.integers(-128, 128, (8, 64)), w)))
    idle = unit_energy("mac_int8xint8", "real", n_macs=512, streams=str(_write(tmp_path / "i.npz",
                                                                             np.zeros((8, 64), int), w)))
    assert "b.npz" in busy["stimulus"] and "i.npz" in idle["stimulus"]
    assert idle["data_energy_per_mac_nand2"] < 0.5 * busy["data_energy_per_mac_nand2"]


def test_energy_of_an_exported_stream_does_not_depend_on_the_seed(tmp_path: Path, monkeypatch) -> None:
    """An exported stream ignores the seed, so its energy record is cached independently of it:
    one simulation for two seeds, the same record."""
    import rtl.flow._unitflow as UF

    calls = []
    real = UF.netlist_activity

    def counting(*a, **kw):  # type: ignore[no-untyped-def]
        calls.append(kw.get("workdir"))
        return real(*a, **kw)

    monkeypatch.setattr(UF, "netlist_activity", counting)
    rng = np.random.default_rng(zlib.crc32(str(tmp_path).encode()))  # operands no earlier run has cached
    f = str(_write(tmp_path / "s.npz", rng.integers(-128, 128, (8, 64)), rng.integers(-128, 128, (8, 64))))
    r0 = unit_energy("mac_int8xint8", "real", n_macs=256, streams=f, seed=0)
    r5 = unit_energy("mac_int8xint8", "real", n_macs=256, streams=f, seed=5)
    assert len(calls) == 1 and r0 == r5
