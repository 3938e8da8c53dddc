# archsearch: the two set-up commands of the README, and a few helpers.
#   make run    create .venv, install archsearch pinned by constraints.txt, run the main job
#   make test   the same install, then lint, type check and the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint pytest fuzz bench bench-startup bench-latency bench-deepmad bench-proxy bench-search bench-ray bench-accel bench-supernet bench-zoo bench-frontier bench-service plots screenshots clean

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
	$(BIN)/python -m pytest -n auto --dist loadgroup

# The developers' fast lane (under a minute on 2 cores): tests not marked slow, 15 examples
# per property test. `make test` runs everything.
test-fast: $(STAMP)
	HYPOTHESIS_PROFILE=fast $(BIN)/python -m pytest -n auto --dist loadgroup -m "not slow" -q

# The fuzz suite's long run: 300 hostile inputs per parser (tests/fuzz), about 7 minutes.
fuzz: $(STAMP)
	$(BIN)/python -m pytest tests/fuzz -n auto --hypothesis-profile fuzz -o timeout=0 -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/cost_model.py

bench-startup: $(STAMP)
	$(BIN)/python benchmarks/startup.py

bench-latency: $(STAMP)
	$(BIN)/python benchmarks/latency_lut.py

bench-deepmad: $(STAMP)
	$(BIN)/python benchmarks/deepmad.py

FASHION_MNIST ?= ../shared/data/fashion-mnist
bench-proxy: $(STAMP)
	$(BIN)/python benchmarks/proxy_ranking.py --data $(FASHION_MNIST)

NB201 ?= ../shared/bench/nb201_cifar_latency.csv
bench-search: $(STAMP)
	$(BIN)/archsearch bench search --space nb201 --table $(NB201) \
		--latency-column lat_ms_raspi4 --latency 25.68ms --trials 100,300 --seeds 20
	$(BIN)/archsearch bench search --space nb201 --table $(NB201) \
		--objectives cifar10_test:max,lat_ms_pixel3:min --trials 100,500 --seeds 20 \
		--strategies random,evolution,optuna:nsga2

bench-accel: $(STAMP)
	$(BIN)/python benchmarks/accelerators.py --data $(FASHION_MNIST) --latency --out accelerators.json

bench-supernet: $(STAMP)
	$(BIN)/python benchmarks/supernet_ranking.py --data $(FASHION_MNIST) --out supernet_ranking.json

# Searches against the hand-designed networks at equal latency (hybrid-small, Fashion-MNIST);
# BENCH_ZOO_ARGS=--quick for the smoke test.
bench-zoo: $(STAMP)
	$(BIN)/python benchmarks/beat_the_zoo.py --data $(FASHION_MNIST) --out beat_the_zoo.json $(BENCH_ZOO_ARGS)

# The README's pictures (docs/img/), regenerated from scratch: two searches on `hybrid`, a
# latency table of the small test space checked on 20 networks (about 4 minutes).
PLOTS_DB := sqlite:///.plots.db
plots: $(STAMP)
	rm -f .plots.db
	$(BIN)/archsearch run --space hybrid --budget 1GFLOP --trials 300 --seed 0 --db $(PLOTS_DB) > /dev/null
	$(BIN)/archsearch run --space hybrid --budget 1GFLOP --trials 300 --seed 0 --strategy random --db $(PLOTS_DB) > /dev/null
	$(BIN)/archsearch plot pareto --run 1 --with-zoo --out docs/img/pareto.png --db $(PLOTS_DB)
	$(BIN)/archsearch plot history --run 1 --out docs/img/history.png --db $(PLOTS_DB)
	$(BIN)/archsearch plot compare --run 1 --run 2 --out docs/img/compare.png --db $(PLOTS_DB)
	$(BIN)/archsearch latency profile --space tests/fixtures/tiny_space.yaml --calibrate 5 --db $(PLOTS_DB) > /dev/null
	$(BIN)/archsearch latency check --space tests/fixtures/tiny_space.yaml --n 20 --db $(PLOTS_DB) > /dev/null
	$(BIN)/archsearch plot latency --out docs/img/latency.png --db $(PLOTS_DB)
	rm -f .plots.db

bench-ray: $(STAMP)
	$(BIN)/python benchmarks/ray_overhead.py --trials 100 --tune-trials 20

# Pareto fronts of 10k, 100k and 1M synthetic trials on SQLite and PostgreSQL (127.0.0.1:5432;
# a fresh database, dropped after), about 15 minutes.
bench-frontier: $(STAMP)
	$(BIN)/python benchmarks/frontier.py --repeats 3

# The service under 32 concurrent clients while a run writes (SQLite and PostgreSQL), 5 minutes.
bench-service: $(STAMP)
	$(BIN)/python benchmarks/service_load.py --clients 32 --requests 30 --writing 45

# The README's dashboard pictures (docs/img/dashboard-*.png), in headless Chromium (3 minutes).
screenshots: $(STAMP)
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
