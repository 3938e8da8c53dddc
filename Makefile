# archsearch: the two set-up commands of the README, and a few helpers.
#   make run    create .venv, install archsearch pinned by constraints.txt, run the main job
#   make test   the same install, then lint, type check and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint pytest bench bench-latency bench-deepmad bench-proxy clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/archsearch run --space hybrid --budget 1GFLOP

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check archsearch tests benchmarks
	$(BIN)/ruff format --check archsearch tests benchmarks
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -n auto

bench: $(STAMP)
	$(BIN)/python benchmarks/cost_model.py

bench-latency: $(STAMP)
	$(BIN)/python benchmarks/latency_lut.py

bench-deepmad: $(STAMP)
	$(BIN)/python benchmarks/deepmad.py

FASHION_MNIST ?= ../shared/data/fashion-mnist
bench-proxy: $(STAMP)
	$(BIN)/python benchmarks/proxy_ranking.py --data $(FASHION_MNIST)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
