"""The ``deepmad`` strategy: starts, solves, rounds, repairs and polishes designs (see
:mod:`archsearch.solvers.deepmad`)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.cost import count, format_si
from archsearch.errors import BudgetError, UserError
from archsearch.evaluators.entropy import deepmad_entropy
from archsearch.solvers.base import Problem, Result, Strategy
from archsearch.solvers.deepmad.encoding import MODELLED, Depths, Design, Encoding, nearest
from archsearch.solvers.deepmad.program import (
    SOLVER,
    Bounds,
    Model,
    Program,
    SolverFailure,
    build_model,
)
from archsearch.spec import Architecture

if TYPE_CHECKING:
    pass


@dataclass
class Binding:
    """A bound of the program at the final design: its value, slack and sensitivity."""

    metric: str
    value: float
    bound: float
    binding: bool
    """The design itself reaches the bound (within 2%): no room left for a larger network."""
    sensitivity: float | None  # d(score)/d(log bound) of the continuous program, if modelled
    program_binding: bool = False
    """The bound is active in the continuous program at the design (its dual is positive),
    although the integer design may keep some slack."""


@dataclass
class Solution:
    """What :class:`DeepMAD` found: the designs proposed and how the best one binds."""

    archs: list[Architecture]
    scores: list[float]
    bindings: list[Binding]
    solve_seconds: float
    programs_solved: int
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.archs[0].digest if self.archs else None,
            "score": self.scores[0] if self.scores else None,
            "solve_seconds": self.solve_seconds,
            "programs_solved": self.programs_solved,
            "constraints": [b.__dict__ for b in self.bindings],
            "notes": self.notes,
        }


class DeepMAD(Strategy):
    """Solves DeepMAD's program with cvxpy (see the module docstring) and proposes the result.

    Args:
        starts: Starting points solved (the first is the space's smallest widths); the best
            designs, distinct, are proposed best first.
        rounds: Trust-region iterations of the joint width/depth step per start.
        penalty: Weight ``w`` of DeepMAD's depth penalty ``w * exp(std(depths))``; 0 disables.
        penalty_stages: Number of last stages the penalty looks at; 0 for all (the official
            code uses the last three for the ResNet space, all five for MBConv).
        alpha: Entropy stage weights (default 1, ..., 1, 8).
        polish: Exact evaluations allowed to the discrete local search per design.
        option_rounds: Rounds in which promising option changes are solved again.
        seed, max_tries, init: See :class:`~archsearch.solvers.base.Strategy`.
    """

    name = "deepmad"
    samples = False
    objective = "entropy:max"

    def __init__(
        self,
        *,
        starts: int = 4,
        rounds: int = 60,
        penalty: float = 10.0,
        penalty_stages: int = 0,
        alpha: Sequence[float] | None = None,
        polish: int = 1500,
        option_rounds: int = 1,
        seed: int = 0,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
    ) -> None:
        super().__init__(seed=seed, max_tries=max_tries, init=init)
        for what, v, low in (("starts", starts, 1), ("rounds", rounds, 1), ("polish", polish, 0)):
            if v < low:
                raise UserError(f"--option {what}={v}: must be at least {low}")
        if penalty < 0:
            raise UserError(f"--option penalty={penalty}: must be >= 0 (0 disables it)")
        self.starts = starts
        self.rounds = rounds
        self.penalty = penalty
        self.penalty_stages = penalty_stages
        self.alpha = tuple(alpha) if alpha is not None else None
        self.polish_budget = polish
        self.option_rounds = option_rounds
        self.solution: Solution | None = None
        self._pending: list[Architecture] | None = None
        self._cache: dict[tuple[Any, ...], tuple[Architecture | None, dict[str, float]]] = {}
        self._programs = 0

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "starts": self.starts,
            "rounds": self.rounds,
            "penalty": self.penalty,
            "penalty_stages": self.penalty_stages,
            "alpha": list(self.alpha) if self.alpha else None,
            "polish": self.polish_budget,
            "option_rounds": self.option_rounds,
        }

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        names = [o.name for o in problem.objectives]
        if names != ["entropy"] or problem.objectives[0].direction != "max":
            raise UserError(
                f"--objectives: the deepmad strategy maximises DeepMAD's entropy; got "
                f"{', '.join(map(str, problem.objectives))}; use --objectives entropy:max"
            )

    # -- ask/tell --------------------------------------------------------------------

    def propose(self, n: int) -> list[Architecture]:
        if self._pending is None:
            self.solution = self.solve()
            self._pending = [a for a in self.solution.archs if a.digest not in self._seen]
        out: list[Architecture] = []
        while self._pending and len(out) < n:
            arch = self._pending.pop(0)
            self._seen.add(arch.digest)
            out.append(arch)
        return out

    def tell(self, results: Sequence[Result]) -> None:
        """The program is solved once; scores told back are the entropy it already knows."""

    # -- exact evaluation ------------------------------------------------------------

    def _bounds(self) -> tuple[Bounds, dict[str, float]]:
        p = self.problem
        values: dict[str, float] = {}
        if p.budget.macs is not None:
            values["macs"] = float(p.budget.macs)
        if p.budget.params is not None:
            values["params"] = float(p.budget.params)
        other: dict[str, float] = {}
        for c in p.constraints:
            ub = c.upper_bounds()
            if ub is None:
                continue
            for k, v in ub.items():
                target = values if k in MODELLED else other
                target[k] = min(v, target.get(k, math.inf))
        return Bounds(values), other

    def _exact(
        self, enc: Encoding, design: Design
    ) -> tuple[Architecture | None, dict[str, float]]:
        key = design.key()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        arch = enc.decode(design)
        metrics: dict[str, float] = {}
        if arch is not None:
            cost = count(arch)
            stats = deepmad_entropy(arch, self.alpha)
            metrics = {
                "macs": float(cost.macs),
                "params": float(cost.params),
                "activations": float(cost.activations),
                "rho": stats.rho,
                "entropy": stats.score,
            }
        self._cache[key] = (arch, metrics)
        return arch, metrics

    def _violation(self, metrics: Mapping[str, float], bounds: Bounds) -> float:
        return sum(
            max(0.0, metrics[k] / b - 1.0) for k, b in bounds.values.items() if k in metrics
        )

    def _score(self, prog: Program, design: Design, metrics: Mapping[str, float]) -> float:
        return metrics["entropy"] - prog.penalty_value(design.depths)

    # -- the solve -------------------------------------------------------------------

    def solve(self) -> Solution:
        """Solves the program from every start; deterministic under the seed."""
        start_time = time.perf_counter()
        space = self.space
        enc = Encoding(space)
        bounds, other = self._bounds()
        notes: list[str] = []
        for k in other:
            if not k.startswith("latency@"):
                notes.append(f"constraint on {k} is not modelled; the exact check enforces it")
        rng = random.Random(self.seed)
        designs = self._starts(enc, rng)
        results: list[tuple[float, Design, Architecture, Program]] = []
        first_failure: str | None = None
        failures: list[str] = []
        work = Bounds(dict(bounds.values))
        for _ in range(6):
            results = []
            for design in designs:
                try:
                    out = self._solve_from(enc, design, work)
                except SolverFailure as e:
                    failures.append(str(e))
                    continue
                if isinstance(out, str):
                    first_failure = first_failure or out
                    continue
                results.append(out)
            latency = {k: v for k, v in other.items() if k.startswith("latency@")}
            if not latency or not results:
                break
            results.sort(key=lambda r: -r[0])
            if self.problem.feasible(results[0][2]):
                break
            # Latency is not modelled: tighten an internal MACs bound and solve again.
            macs = self._exact(enc, results[0][1])[1]["macs"]
            work.values["macs"] = 0.85 * min(macs, work.values.get("macs", math.inf))
            notes.append(
                f"latency bound not met at {format_si(int(macs))}FLOPs; solving again with "
                f"MACs <= {format_si(int(work.values['macs']))}FLOP"
            )
        if not results and failures and first_failure is None:
            raise SolverFailure(f"{failures[0]} (from every one of {self.starts} starts)")
        if not results:
            raise self._infeasible(enc, bounds, first_failure)
        results.sort(key=lambda r: -r[0])
        archs, scores, seen = [], [], set()
        for score, _design, arch, _prog in results:
            if arch.digest in seen or not self.problem.feasible(arch):
                continue
            seen.add(arch.digest)
            archs.append(arch)
            scores.append(score)
        if not archs:
            raise BudgetError(
                "budget/constraint: the designed networks meet the modelled bounds but not "
                f"{', '.join(sorted(other))}; relax it"
            )
        best_design, best_prog = results[0][1], results[0][3]
        bindings = self._bindings(enc, best_design, best_prog, bounds, work)
        return Solution(
            archs,
            scores,
            bindings,
            time.perf_counter() - start_time,
            self._programs,
            notes,
        )

    def _starts(self, enc: Encoding, rng: random.Random) -> list[Design]:
        """The first start: every first option at the smallest widths; the others random."""
        out = []
        for i in range(self.starts):
            options = {
                k: (lk.options[0] if i == 0 else rng.choice(lk.options))
                for k, lk in enc.layer_keys.items()
            }
            values = [0 if i == 0 else rng.randrange(len(s.grid)) for s in enc.slots]
            depths = [min(c) for c in enc.depth_choices]
            out.append(Design(options, depths, values))
        return out

    def _program(self, model: Model, bounds: Bounds) -> Program:
        return Program(model, bounds, penalty=self.penalty, penalty_stages=self.penalty_stages)

    def _continuous(
        self, prog: Program, z: np.ndarray, depths: Depths
    ) -> tuple[np.ndarray, list[int]] | None:
        """Widths at the start's depths, then widths and depths jointly, then integer depths."""
        ws = prog.width_step(depths, z)
        self._programs += 1
        if ws is None:
            return None
        js = prog.joint_step(ws.z, depths, iters=self.rounds)
        self._programs += 1
        z, d = (js.z, js.depths) if js is not None else (ws.z, np.array(depths, dtype=float))
        choices = prog.m.enc.depth_choices
        di = [nearest(c, float(x)) for c, x in zip(choices, d, strict=True)]
        ws = prog.width_step(di, z)
        self._programs += 1
        if ws is None:  # rounding up broke a bound: round down instead
            di = [
                max([v for v in c if v <= x + 1e-9] or [min(c)])
                for c, x in zip(choices, d, strict=True)
            ]
            ws = prog.width_step(di, z)
            self._programs += 1
            if ws is None:
                return None
        return ws.z, di

    def _solve_from(
        self, enc: Encoding, design: Design, bounds: Bounds
    ) -> tuple[float, Design, Architecture, Program] | str:
        prog = self._program(build_model(enc, design, self.alpha), bounds)
        cont = self._continuous(prog, enc.log_values(design), design.depths)
        if cont is None:
            return "the program is infeasible at the smallest depths"
        best = self._round(enc, prog, design, cont[0], cont[1], bounds)
        if best is None:
            return "rounding found no design within the bounds"
        score, best = self._polish(enc, prog, best, bounds)
        for _ in range(self.option_rounds):
            improved = False
            for alt in self._promising(enc, prog, best, bounds):
                alt_prog = self._program(build_model(enc, alt, self.alpha), bounds)
                try:
                    c = self._continuous(alt_prog, enc.log_values(alt), alt.depths)
                except SolverFailure:
                    continue  # an alternative the solver cannot handle is not taken
                if c is None:
                    continue
                cand = self._round(enc, alt_prog, alt, c[0], c[1], bounds)
                if cand is None:
                    continue
                s2, cand = self._polish(enc, alt_prog, cand, bounds)
                if s2 > score + 1e-9:
                    score, best, prog, improved = s2, cand, alt_prog, True
            if not improved:
                break
        arch = self._exact(enc, best)[0]
        assert arch is not None
        return score, best, arch, prog

    def _round(
        self,
        enc: Encoding,
        prog: Program,
        design: Design,
        z: np.ndarray,
        depths: list[int],
        bounds: Bounds,
    ) -> Design | None:
        """Nearest legal values, then exact repair: cheapest-loss steps down until feasible."""
        d = Design(
            dict(design.options),
            list(depths),
            [s.nearest(math.exp(v)) for s, v in zip(enc.slots, z, strict=True)],
        )
        for _ in range(2000):
            arch, metrics = self._exact(enc, d)
            if arch is not None and self._violation(metrics, bounds) == 0:
                return d
            best: tuple[float, Design] | None = None
            for cand in self._moves(enc, d, down_only=True):
                a2, m2 = self._exact(enc, cand)
                if a2 is None:
                    continue
                viol = self._violation(m2, bounds)
                key = viol * 1e6 - self._score(prog, cand, m2)
                if best is None or key < best[0]:
                    best = (key, cand)
            if best is None:
                return None
            d = best[1]
        return None

    def _moves(self, enc: Encoding, d: Design, *, down_only: bool = False) -> list[Design]:
        out = []
        for i, s in enumerate(enc.slots):
            for step in (-1,) if down_only else (-1, 1):
                v = d.values[i] + step
                if 0 <= v < len(s.grid):
                    c = d.copy()
                    c.values[i] = v
                    out.append(c)
        for i, choices in enumerate(enc.depth_choices):
            k = choices.index(d.depths[i]) if d.depths[i] in choices else 0
            for step in (-1,) if down_only else (-1, 1):
                if 0 <= k + step < len(choices):
                    c = d.copy()
                    c.depths[i] = choices[k + step]
                    out.append(c)
        return out

    def _polish(
        self, enc: Encoding, prog: Program, d: Design, bounds: Bounds
    ) -> tuple[float, Design]:
        """Best-improvement local search on the exact model (feasible moves only)."""
        score = self._score(prog, d, self._exact(enc, d)[1])
        evals = 0
        while evals < self.polish_budget:
            best: tuple[float, Design] | None = None

            def consider(cand: Design, base: float = score) -> None:
                nonlocal best, evals
                evals += 1
                arch, metrics = self._exact(enc, cand)
                if arch is None or self._violation(metrics, bounds):
                    return
                s2 = self._score(prog, cand, metrics)
                if s2 > base + 1e-9 and (best is None or s2 > best[0]):
                    best = (s2, cand)

            moves = self._moves(enc, d)
            for cand in moves:
                consider(cand)
            if best is None:
                # Pairs: one step up and one down, to move along a binding budget.
                ups = [
                    m
                    for m in moves
                    if self._exact(enc, m)[0] is not None
                    and (m.values > d.values or m.depths > d.depths)
                ]
                for up in ups:
                    for down in self._moves(enc, up, down_only=True):
                        if down.key() != d.key():
                            consider(down)
                    if evals >= self.polish_budget:
                        break
            if best is None:
                break
            score, d = best
        return score, d

    def _promising(
        self, enc: Encoding, prog: Program, d: Design, bounds: Bounds, top: int = 3
    ) -> list[Design]:
        """Single option changes, ranked by their exact score after a quick repair."""
        ranked: list[tuple[float, int, Design]] = []
        for key, lk in enc.layer_keys.items():
            for opt in lk.options:
                if opt == d.options[key]:
                    continue
                cand = d.copy()
                cand.options[key] = opt
                arch, metrics = self._exact(enc, cand)
                if arch is None:
                    continue
                fixed = cand
                for _ in range(20):
                    if not self._violation(metrics, bounds):
                        break
                    scored = []
                    for mv in self._moves(enc, fixed, down_only=True):
                        a2, m2 = self._exact(enc, mv)
                        if a2 is not None:
                            scored.append((self._violation(m2, bounds), -m2["entropy"], mv))
                    if not scored:
                        break
                    scored.sort(key=lambda r: (r[0], r[1]))
                    fixed = scored[0][2]
                    metrics = self._exact(enc, fixed)[1]
                if self._violation(metrics, bounds):
                    continue
                ranked.append((-self._score(prog, fixed, metrics), len(ranked), cand))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [c for _, _, c in ranked[:top]]

    # -- reporting -------------------------------------------------------------------

    def _bindings(
        self, enc: Encoding, design: Design, prog: Program, bounds: Bounds, work: Bounds
    ) -> list[Binding]:
        _, metrics = self._exact(enc, design)
        step = self._program(prog.m, work).width_step(design.depths, enc.log_values(design))
        self._programs += 1
        duals = step.duals if step is not None else {}
        out = []
        for k, b in bounds.values.items():
            v = metrics[k]
            sens = duals.get(k)
            active = sens is not None and sens > 1e-6
            out.append(Binding(k, v, b, v >= 0.98 * b, sens, active))
        return out

    def _infeasible(self, enc: Encoding, bounds: Bounds, reason: str | None) -> BudgetError:
        """Names the bound that no member can meet, with the least value the space allows."""
        import cvxpy as cp

        design = self._starts(enc, random.Random(0))[0]
        model = build_model(enc, design, self.alpha)
        depths = [min(c) for c in enc.depth_choices]
        z = cp.Variable(model.n)
        lo = np.array([s.lo for s in enc.slots])
        hi = np.array([s.hi for s in enc.slots])
        parts = []
        for metric in ("macs", "params", "activations"):
            b = bounds.get(metric)
            if b is None:
                continue
            logc, A = model.cost_terms(metric, depths)
            prob = cp.Problem(cp.Minimize(cp.log_sum_exp(logc + A @ z)), [z >= lo, z <= hi])
            prob.solve(solver=SOLVER)
            least = math.exp(float(prob.value))
            if least > b:
                unit = "FLOPs" if metric == "macs" else f" {metric}"
                parts.append(
                    f"{metric} <= {format_si(int(b))}: the smallest member of space "
                    f"{self.space.name!r} needs about {format_si(int(least))}{unit}"
                )
        if not parts:
            parts.append(
                f"no design meets {', '.join(f'{k} <= {v:.4g}' for k, v in bounds.values.items())}"
                f" together ({reason})"
            )
        return BudgetError(f"budget/constraint: infeasible: {'; '.join(parts)}; relax it")
