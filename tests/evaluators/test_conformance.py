"""The score conformance suite (:mod:`archsearch.testing.evaluators`) over the built-in
scores that run without a store or a trained supernet: DeepMAD's entropy, every zero-cost
proxy, short training, a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.evaluators import EVALUATORS, PROXIES
from archsearch.spaces import load_space
from archsearch.testing.evaluators import check_evaluator
from tests.conftest import FIXTURES
from tests.evaluators.test_training import easy_task

TINY = str(FIXTURES / "tiny_space.yaml")


def test_entropy_conforms() -> None:
    space = load_space("hybrid")
    check_evaluator(EVALUATORS.create("entropy"), [space.sample(seed=s) for s in range(3)])


@pytest.mark.parametrize("name", [p.name for p in PROXIES])
def test_proxy_conforms(name: str) -> None:
    space = load_space(TINY)
    ev = EVALUATORS.create(name, input="3x16x16", batch=4)
    check_evaluator(ev, [space.sample(seed=s) for s in range(2)])


def test_train_conforms(tmp_path: Path) -> None:
    data = easy_task(tmp_path / "easy.npz", 200)
    space = load_space(str(FIXTURES / "tiny_resnas.yaml"))
    ev = EVALUATORS.create("train", data=data, steps=2, batch_size=16)
    check_evaluator(ev, [space.sample(seed=0)])


def test_table_conforms(nb201_table: Path) -> None:
    space = load_space("nb201")
    ev = EVALUATORS.create("table", path=str(nb201_table))
    check_evaluator(ev, [space.sample(seed=s) for s in range(3)])
