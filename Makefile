# golive: `make demo` shows it working, `make test` checks everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint system-packages node-packages services install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-packages:
	scripts/system-packages.sh

node-packages: system-packages
	scripts/node-packages.sh

services:
	scripts/start-services.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

demo: system-packages $(STAMP)
	$(BIN)/golive demo

# pytest exits 5 when it collected no test: that must fail the run, not pass it.
test: system-packages node-packages $(STAMP) services lint
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The fan-out benchmark (bench/README.md): needs root, like the SSH tests; several minutes.
# BENCH_ARGS="--quick" for a smoke run.
.PHONY: bench
BENCH_ARGS ?=
bench: system-packages $(STAMP)
	$(BIN)/python bench/fanout.py $(BENCH_ARGS)
