# Two entry points (see README): `make demo` and `make test`. Each creates the virtual
# environment it needs, so a fresh machine with only Python 3.11 is enough.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= var/demo

.PHONY: demo test lint venv clean

$(BIN)/recommender: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(BIN)/recommender

venv: $(BIN)/recommender

demo: venv
	$(BIN)/recommender demo --out $(DEMO)

test: venv
	bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest -q --durations=10 $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var artifacts
