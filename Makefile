# Two commands a newcomer needs (see README):
#   make run    install, then run the main job on the embedded default model
#   make test   install with test dependencies, then run the full test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of PyTorch; a GPU machine can pass e.g. TORCH_SPEC=torch to take a CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install install-test run test test-fast lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[all]"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"

run: install
	$(BIN)/teams-rl pipeline --preset quick

test: install-test
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install-test
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint:
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

format:
	$(BIN)/python -m ruff format .
	$(BIN)/python -m ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
