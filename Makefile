# make run  : create .venv with pinned dependencies, then run the pipeline on the shipped sources
# make test : create .venv the same way, then lint, type-check and run the whole test suite
# make bench: the benchmarks at 10k and 100k rows (about a minute); make bench-1m: issue 9's targets at 1M rows
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint typecheck generate bench bench-1m bench-deps clean venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

run: venv
	$(BIN)/curate run

lint: venv
	$(BIN)/ruff check .

# the suite's test files shared by this many worker processes, each with its own Prefect test server (0: none)
TEST_WORKERS ?= 2

test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

typecheck: venv
	$(BIN)/mypy

generate: venv
	$(BIN)/python -m schemas.generate
	$(BIN)/python -m schemas.curator_aids

bench-deps: venv
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'

bench: bench-deps
	$(BIN)/python -m benchmarks.validate_speed 10000 100000
	$(BIN)/python -m benchmarks.release_speed 10000 50000
	$(BIN)/python -m benchmarks.er_bench 10000
	$(BIN)/python -m benchmarks.links_bench --rounds 3
	$(BIN)/python -m benchmarks.run_bench 10000
	$(BIN)/python -m benchmarks.frictionless_compare 100000

# issue 9's targets at 1M rows (8 min 14 s on 2 cores, 4 December): the whole run, its reruns, Prefect's share and peak
# memory against the DuckDB floor; the check against `frictionless validate`; entity resolution against Splink
bench-1m: bench-deps
	$(BIN)/python -m benchmarks.run_bench 1000000
	$(BIN)/python -m benchmarks.frictionless_compare 1000000
	$(BIN)/python -m benchmarks.er_bench 1000000

clean:
	rm -rf $(VENV) warehouse/*.duckdb* exports/releases exports/current exports/.built-by.json sources/reports
