"""DeepMAD's program solved with cvxpy: the paper reproductions, bounds, errors, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archsearch import count, load_space
from archsearch.cost import Budget
from archsearch.errors import BudgetError, UserError
from archsearch.evaluators import EVALUATORS
from archsearch.evaluators.entropy import deepmad_entropy
from archsearch.expr import parse_expr
from archsearch.search import Gate, parse_objectives
from archsearch.solvers import Problem, create_strategy
from archsearch.solvers.deepmad import DeepMAD, Encoding, SolverFailure, build_model
from archsearch.spec import Architecture

FIXTURES = Path(__file__).parents[1] / "fixtures"


def solve(space: str, macs: float, params: float | None, rho: float | None, **options):
    sp = load_space(space)
    budget = Budget(macs=int(macs), params=int(params) if params else None)
    cons = (parse_expr(f"rho <= {rho}", what="--constraint"),) if rho else ()
    gate = Gate(budget, cons, [EVALUATORS.create("entropy")])
    strategy = create_strategy("deepmad", **options)
    assert isinstance(strategy, DeepMAD)
    strategy.setup(
        Problem(sp, parse_objectives("entropy:max"), gate, budget=budget, constraints=cons)
    )
    return sp, budget, strategy, strategy.ask(10)


def check_design(sp, budget, arch: Architecture, rho: float) -> float:
    cost = count(arch)
    stats = deepmad_entropy(arch)
    assert sp.contains(arch)
    assert budget.admits(cost), (cost.macs, cost.params)
    assert stats.rho <= rho
    return stats.score


@pytest.mark.slow
def test_r50_budget_beats_released_deepmad_r50() -> None:
    # DeepMAD-R50: 4.13 GFLOPs, 25.55M params, rho <= 0.3; released score 48919.3.
    sp, budget, strategy, archs = solve(
        "convnet", 4.13e9, 25.55e6, 0.3, starts=2, penalty_stages=3
    )
    assert archs
    best = check_design(sp, budget, archs[0], 0.3)
    assert best >= 48919.3
    for arch in archs:  # every proposed design meets every bound, as counted exactly
        check_design(sp, budget, arch, 0.3)
    solution = strategy.solution
    assert solution is not None
    binding = {b.metric for b in solution.bindings if b.binding}
    assert "macs" in binding  # the budget binds: a bigger one would buy entropy
    assert all(b.sensitivity is None or b.sensitivity >= -1e-6 for b in solution.bindings)


@pytest.mark.slow
def test_29m_budget_beats_released_deepmad_29m() -> None:
    # DeepMAD-29M: 4.5 GFLOPs, 29M params, rho <= 0.5; released score 19135.9.
    sp, budget, _, archs = solve("mbconv", 4.5e9, 29e6, 0.5, starts=2)
    assert check_design(sp, budget, archs[0], 0.5) >= 19135.9


def test_program_costs_equal_the_exact_count_at_the_released_network() -> None:
    sp = load_space("convnet")
    enc = Encoding(sp)
    arch = Architecture.load(FIXTURES / "deepmad_r50.yaml")
    design = enc.from_arch(arch)
    model = build_model(enc, design, None)
    z = np.log([s.grid[v] for s, v in zip(enc.slots, design.values, strict=True)])
    cost = count(arch)
    for metric, exact in (("macs", cost.macs), ("params", cost.params)):
        logc, A = model.cost_terms(metric, design.depths)
        assert np.exp(logc + A @ z).sum() == pytest.approx(exact, rel=1e-9)
    Ea, L = model.entropy_affine(design.depths)
    chan = model.channel_affine()
    E = Ea[:, 0] + Ea[:, 1:] @ z
    u = chan[:, 0] + chan[:, 1:] @ z
    score = float(np.dot(model.alphas, u * E))
    assert score == pytest.approx(deepmad_entropy(arch).score, rel=1e-9)
    rho = max(L / np.exp(2 * E / L))
    assert rho == pytest.approx(deepmad_entropy(arch).rho, rel=1e-9)


@pytest.mark.slow
def test_deterministic_under_seed() -> None:
    runs = [
        [a.digest for a in solve("convnet", 1e9, None, 0.3, starts=2, seed=s, polish=300)[3]]
        for s in (4, 4)
    ]
    assert runs[0] == runs[1] and runs[0]


@pytest.mark.slow
def test_hybrid_designs_meet_the_budget() -> None:
    sp, budget, _, archs = solve("hybrid", 1e9, None, None, starts=1, polish=300)
    assert archs and all(sp.contains(a) and budget.admits(count(a)) for a in archs)
    assert len({a.digest for a in archs}) == len(archs)


def test_infeasible_budget_names_the_binding_bound() -> None:
    with pytest.raises(BudgetError, match=r"infeasible: macs <= 1M: the smallest member"):
        solve("convnet", 1e6, None, 0.3, starts=1)


def test_solver_failure_names_solver_and_status(monkeypatch: pytest.MonkeyPatch) -> None:
    import cvxpy as cp

    def broken(self, *args, **kwargs):
        self._status = "unbounded"  # what a confused solver reports

    monkeypatch.setattr(cp.Problem, "solve", broken)
    monkeypatch.setattr(cp.Problem, "status", property(lambda self: self._status))
    with pytest.raises(SolverFailure, match=r"solver CLARABEL returned status 'unbounded'"):
        solve("convnet", 4.13e9, 25.55e6, 0.3, starts=1)


def test_objectives_other_than_entropy_are_refused() -> None:
    strategy = create_strategy("deepmad")
    with pytest.raises(UserError, match="--objectives: the deepmad strategy maximises"):
        strategy.setup(Problem(load_space("convnet"), parse_objectives("macs:min,entropy:max")))


def test_bad_options() -> None:
    with pytest.raises(UserError, match="starts=0: must be at least 1"):
        create_strategy("deepmad", starts=0)
    with pytest.raises(UserError, match="penalty=-1"):
        create_strategy("deepmad", penalty=-1)
