# macforge: every target sets itself up first (make setup is idempotent and quick when done).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.macforge-setup
MACFORGE := $(VENV)/bin/macforge
PYTEST_WORKERS ?= 2

.PHONY: setup sim test test-all verilog report bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh $(wildcard requirements-nodeps.txt)
	bash scripts/setup.sh
	touch $(STAMP)

## make sim: build every unit's RTL and verify it against the golden models (cocotb), on every
## simulator (SIMULATORS=icarus for one)
SIMULATORS ?= icarus verilator
sim: setup
	@for s in $(SIMULATORS); do $(MACFORGE) sim --simulator $$s || exit $$?; done

## make test: the CI suite (everything not marked slow)
test: setup
	$(PY) -m pytest -q -m "not slow" -n $(PYTEST_WORKERS)

## make test-all: everything, slow exhaustive and synthesis tiers included
test-all: setup
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

verilog: setup
	$(MACFORGE) verilog --out build/verilog

report: setup
	$(PY) -m sim.report

bench: setup
	$(PY) bench/bench_golden.py
	$(PY) bench/bench_sim.py
	$(PY) bench/bench_whatif.py
	$(PY) bench/bench_quant.py

clean:
	rm -rf build .pytest_cache
