# Two entry points (see README): `make demo` and `make test`. Each creates the virtual
# environment it needs, so a fresh machine with only Python 3.11 is enough.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= var/demo

.PHONY: demo test lint venv clean

# pip shows what it downloads and installs (a first install takes a few minutes).
$(BIN)/recommender: pyproject.toml
	@echo "== 1/3 virtual environment in $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "== 2/3 upgrading pip"
	$(BIN)/python -m pip install --upgrade --progress-bar on pip
	@echo "== 3/3 installing the recommender and its dependencies (numpy, pandas, scikit-learn, FastAPI, ...)"
	$(BIN)/python -m pip install --progress-bar on -e ".[dev]"
	@echo "== 3b LightFM, the benchmark's comparison library (built from source: needs a C compiler)"
	$(BIN)/python -m pip install --progress-bar on -e ".[compare]" || { \
	  echo "== LightFM could not be built: the benchmark will leave it out and say so."; \
	  echo "   Install a C compiler and the Python headers, then: $(BIN)/python -m pip install --progress-bar on -e '.[compare]'"; \
	  test -z "$$CI"; }
	touch $(BIN)/recommender
	@echo "== installed: $(BIN)/recommender"

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
