"""Evolutionary search: regularized (aging) evolution for one objective, NSGA-II for several.

* One objective: Real et al., "Regularized Evolution for Image Classifier Architecture
  Search", AAAI 2019. A population of the ``population`` most recent results; each child is a
  mutation of the best of ``sample_size`` members drawn at random (tournament); the oldest
  member dies when a child joins.

  Two additions, measured on NAS-Bench-201 under a latency bound (README, "Search quality"):
  *constraint-aware mutation*: where the problem has bounds (budget, constraints), each child
  is the one of ``candidates`` feasible mutations (and each random member of the initial
  population the one of ``init_candidates`` samples) that lies closest to its binding bound,
  since the best networks under a bound tend to use most of it; and, after ``restart_after``
  evaluations without a better result, a *polish* of the best so far: the members within two
  changes of it, closest to the bound first, ``polish`` at a time, until one improves on it
  (evolution goes on from there) or none is left, when the population *restarts* with new
  random members (the best found stays in the run's results, not in the population).
* Several objectives: Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm:
  NSGA-II", IEEE TEC 2002. Parents are chosen by binary tournament on (front rank, crowding
  distance); a child is a crossover (probability ``crossover_prob``) and/or a mutation
  (probability ``mutation_prob``, always when the crossover reproduced a parent); after each
  ``population`` children the union of parents and children is cut back to ``population`` by
  non-dominated sorting and crowding distance.

  One addition, the counterpart of the polish above, a *Pareto local search* (Paquete,
  Chiarandini and Stuetzle, 2004): after ``front_after`` evaluations that added nothing to the
  non-dominated set of everything told, up to ``polish`` unseen feasible members one change
  away from its points are evaluated, the points that bound the front first (largest
  crowding distance: the best value of each objective), then the rest; they join the
  population as children. The front's ends are what NSGA-II's variation reaches last.

Failed evaluations and NaN/inf scores never become parents: for one objective they do not
join the population; for several they sort behind every finite result.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from archsearch.errors import UserError
from archsearch.pareto import crowding_distance, non_dominated_ranks
from archsearch.solvers.base import Problem, Result, Strategy
from archsearch.spec import Architecture

MAX_POLISH_POOL = 20_000
"""Members within two changes of the best that a polish round considers (a large space's
two-change neighbourhood is cut here)."""

MAX_FRONT_POINTS = 64
"""Points of the non-dominated set whose neighbours a round of the Pareto local search
considers (the least crowded first)."""


class Evolution(Strategy):
    """Regularized evolution (one objective) or NSGA-II (several), chosen by the problem.

    Args:
        seed: Random seed.
        population: Population size (the first ``population`` candidates are random).
        sample_size: Tournament size of regularized evolution.
        crossover_prob: Probability that an NSGA-II child is a crossover of two parents.
        mutation_prob: Probability that an NSGA-II child is mutated.
        candidates: One objective, bounded problem: mutations drawn per child, the one closest
            to the binding bound kept (1: plain mutation).
        init_candidates: Likewise, random samples per member of the initial population.
        restart_after: One objective: evaluations without improvement before the best so far
            is polished, then the population restarts (0: never).
        front_after: Several objectives: evaluations adding nothing to the non-dominated set
            of everything told before the members one change away from it are evaluated
            (0: never).
        polish: Candidates near the best so far (near the non-dominated set) evaluated per
            polish round (0: restart without polishing; several objectives: no polish).
        max_tries: Proposals tried per candidate before a batch comes back short.
        init: Candidates asked first; they count towards the initial population.
    """

    name = "evolution"
    restorable = True

    def __init__(
        self,
        *,
        seed: int = 0,
        population: int = 50,
        sample_size: int = 10,
        crossover_prob: float = 0.9,
        mutation_prob: float = 1.0,
        candidates: int = 8,
        init_candidates: int = 3,
        restart_after: int = 40,
        front_after: int = 10,
        polish: int = 40,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
    ) -> None:
        super().__init__(seed=seed, max_tries=max_tries, init=init)
        if population < 2:
            raise UserError(f"evolution: population={population} must be at least 2")
        if not 1 <= sample_size <= population:
            raise UserError(
                f"evolution: sample_size={sample_size} must be between 1 and population "
                f"({population})"
            )
        for name, p in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob)):
            if not 0.0 <= p <= 1.0:
                raise UserError(f"evolution: {name}={p} must be between 0 and 1")
        for name, v, least in (
            ("candidates", candidates, 1),
            ("init_candidates", init_candidates, 1),
            ("restart_after", restart_after, 0),
            ("front_after", front_after, 0),
            ("polish", polish, 0),
        ):
            if not least <= v <= 10_000:
                raise UserError(f"evolution: {name}={v} must be between {least} and 10000")
        self.candidates = candidates
        self.init_candidates = init_candidates
        self.restart_after = restart_after
        self.front_after = front_after
        self.polish = polish
        self.population = population
        self.sample_size = sample_size
        self.crossover_prob = crossover_prob
        self.mutation_prob = mutation_prob
        # one objective: (value to minimise, arch), oldest first
        self._aging: deque[tuple[float, Architecture]] = deque(maxlen=population)
        self._sampling_missed = False
        self._best = math.inf  # the best value told (minimised), for restarts
        self._stalled = 0  # evaluations since it improved
        self._epoch_start = 0  # n_asked when the current population began (0, or a restart)
        self._incumbent: Architecture | None = None  # the best told
        self._polishing: list[Architecture] = []  # the polish round's candidates still to ask
        # several objectives: parents and the children told since the last survival
        self._parents: list[tuple[np.ndarray, Architecture]] = []
        self._children: list[tuple[np.ndarray, Architecture]] = []
        self._rank = np.zeros(0, dtype=np.int64)
        self._crowd = np.zeros(0)
        self._archive: list[tuple[np.ndarray, Architecture]] = []  # non-dominated, all told

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        self._multi = len(problem.objectives) > 1

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "population": self.population,
            "sample_size": self.sample_size,
            "crossover_prob": self.crossover_prob,
            "mutation_prob": self.mutation_prob,
            "candidates": self.candidates,
            "init_candidates": self.init_candidates,
            "restart_after": self.restart_after,
            "front_after": self.front_after,
            "polish": self.polish,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {
            "aging": [[_enc(v), a.to_json()] for v, a in self._aging],
            "sampling_missed": self._sampling_missed,
            "best": _enc(self._best),
            "stalled": self._stalled,
            "epoch_start": self._epoch_start,
            "incumbent": self._incumbent.to_json() if self._incumbent is not None else None,
            "polishing": [a.to_json() for a in self._polishing],
            "parents": [[[_enc(x) for x in v], a.to_json()] for v, a in self._parents],
            "children": [[[_enc(x) for x in v], a.to_json()] for v, a in self._children],
            "rank": [int(r) for r in self._rank],
            "crowd": [_enc(c) for c in self._crowd],
            "archive": [[[_enc(x) for x in v], a.to_json()] for v, a in self._archive],
        }

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._aging = deque(
            ((_dec(v), Architecture.from_json(a)) for v, a in state["aging"]),
            maxlen=self.population,
        )
        self._sampling_missed = bool(state["sampling_missed"])
        self._best = _dec(state.get("best", math.inf))
        self._stalled = int(state.get("stalled", 0))
        self._epoch_start = int(state.get("epoch_start", 0))
        inc = state.get("incumbent")
        self._incumbent = Architecture.from_json(inc) if inc else None
        self._polishing = [Architecture.from_json(a) for a in state.get("polishing", [])]
        self._parents = [
            (np.array([_dec(x) for x in v]), Architecture.from_json(a))
            for v, a in state["parents"]
        ]
        self._children = [
            (np.array([_dec(x) for x in v]), Architecture.from_json(a))
            for v, a in state["children"]
        ]
        self._rank = np.array(state["rank"], dtype=np.int64)
        self._crowd = np.array([_dec(c) for c in state["crowd"]], dtype=np.float64)
        self._archive = [
            (np.array([_dec(x) for x in v]), Architecture.from_json(a))
            for v, a in state.get("archive", [])
        ]

    # -- ask ---------------------------------------------------------------------------

    def propose(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        after = self.front_after if self._multi else self.restart_after
        stalled = after and self._stalled >= after and not self._sampling_missed
        if stalled and not self._polishing:
            self._polishing = self._front_round() if self._multi else self._polish_round()
            if self._polishing:  # the stall count restarts when the round has been asked
                self._stalled = after - len(self._polishing)
            elif self._multi:
                self._stalled = 0  # the front's neighbourhood is spent: NSGA-II goes on
            else:
                self._aging.clear()  # restart: a new random population
                self._stalled = 0
                self._epoch_start = self.n_asked
        while self._polishing and len(out) < n:
            near = self._polishing.pop(0)
            if near.digest not in self._seen and self.problem.feasible(near):
                self._seen.add(near.digest)
                out.append(near)
        while (
            len(out) < n
            and self.n_asked - self._epoch_start + len(out) < self.population
            and not self._sampling_missed
        ):
            arch = self._propose(self._random_member)
            if arch is None:
                # Random members miss the budget (a small budget in a large space): grow the
                # population by mutating the members found so far (e.g. ``init``) instead.
                self._sampling_missed = True
                break
            out.append(arch)
        if self._sampling_missed and not self._has_parents():
            return out  # nothing to mutate yet: the next ask, after a tell, will have parents
        if len(out) < n:
            if not self._has_parents():
                # Every result so far failed or was NaN: keep exploring at random.
                make = lambda: self.space.sample(self.rng)  # noqa: E731
            else:
                make = self._nsga_child if self._multi else self._aging_child
            out.extend(self._fill(n - len(out), make))
        return out

    def _has_parents(self) -> bool:
        return bool(self._parents) if self._multi else bool(self._aging)

    def _polish_round(self) -> list[Architecture]:
        """The next ``polish`` unseen feasible members within two changes of the best so far,
        closest to the bound first (nearest by one change first without a bound)."""
        if not self.polish or self._incumbent is None:
            return []
        inc = self._incumbent
        near = self.space.neighbours(inc, self.rng, limit=MAX_POLISH_POOL)
        pool = {a.digest: a for a in near}
        for a in near:
            if len(pool) >= MAX_POLISH_POOL:
                break
            for b in self.space.neighbours(a, self.rng, limit=MAX_POLISH_POOL - len(pool)):
                pool.setdefault(b.digest, b)
        pool.pop(inc.digest, None)
        fresh = [a for a in pool.values() if a.digest not in self._seen]
        fresh = [a for a in fresh if self.problem.feasible(a)]
        if self._bounded():
            fresh.sort(key=self._slack)
        return fresh[: self.polish]

    def _front_round(self) -> list[Architecture]:
        """The next ``polish`` unseen feasible members one change away from the non-dominated
        set of everything told, neighbours of its bounding points (largest crowding
        distance) first, of its ``MAX_FRONT_POINTS`` least crowded points at most."""
        if not self.polish or not self._archive:
            return []
        crowd = crowding_distance(np.array([v for v, _ in self._archive]))
        order = sorted(range(len(self._archive)), key=lambda i: -crowd[i])[:MAX_FRONT_POINTS]
        out: dict[str, Architecture] = {}
        for i in order:
            for a in self.space.neighbours(self._archive[i][1], self.rng):
                if a.digest not in self._seen and a.digest not in out and self.problem.feasible(a):
                    out[a.digest] = a
                    if len(out) >= self.polish:
                        return list(out.values())
        return list(out.values())

    def _bounded(self) -> bool:
        p = self.problem
        bounds = p.budget.macs is not None or p.budget.params is not None or p.constraints
        return not self._multi and p.violations is not None and bool(bounds)

    def _slack(self, arch: Architecture) -> float:
        """How far ``arch`` lies inside its binding bound (relative; smaller is closer)."""
        assert self.problem.violations is not None
        return -max(self.problem.violations(arch).values(), default=0.0)

    def _closest(self, make: Callable[[], Architecture], k: int) -> Architecture:
        """Of ``k`` results of ``make``, a new feasible one closest to the binding bound (the
        first of the ``k`` when none is new and feasible: ``_propose`` then rejects it)."""
        if k <= 1 or not self._bounded():
            return make()
        drawn = [make() for _ in range(k)]
        ok = [a for a in drawn if a.digest not in self._seen and self.problem.feasible(a)]
        return min(ok, key=self._slack) if ok else drawn[0]

    def _random_member(self) -> Architecture:
        return self._closest(lambda: self.space.sample(self.rng), self.init_candidates)

    def _mutant(self) -> Architecture:
        k = min(self.sample_size, len(self._aging))
        contenders = self.rng.sample(range(len(self._aging)), k)
        best = min(contenders, key=lambda i: self._aging[i][0])
        return self.space.mutate(self._aging[best][1], self.rng)

    def _aging_child(self) -> Architecture:
        return self._closest(self._mutant, self.candidates)

    def _tournament(self) -> Architecture:
        i, j = self.rng.randrange(len(self._parents)), self.rng.randrange(len(self._parents))
        better = (self._rank[i], -self._crowd[i]) <= (self._rank[j], -self._crowd[j])
        return self._parents[i if better else j][1]

    def _nsga_child(self) -> Architecture:
        a = self._tournament()
        child = a
        if self.rng.random() < self.crossover_prob:
            child = self.space.crossover(a, self._tournament(), self.rng)
        if child.digest == a.digest or self.rng.random() < self.mutation_prob:
            child = self.space.mutate(child, self.rng)
        return child

    # -- tell --------------------------------------------------------------------------

    def tell(self, results: Sequence[Result]) -> None:
        objectives = self.problem.objectives
        for r in results:
            v = np.array(r.vector(objectives), dtype=np.float64)
            if not self._multi:
                if r.state == "complete" and np.isfinite(v[0]):
                    self._aging.append((float(v[0]), r.arch))
                if r.state == "complete" and v[0] < self._best:
                    self._best, self._stalled = float(v[0]), 0
                    self._incumbent = r.arch
                else:
                    self._stalled += 1
                continue
            v[~np.isfinite(v)] = np.inf
            if self._joins_archive(v, r.arch):
                self._stalled = 0
            else:
                self._stalled += 1
            if len(self._parents) < self.population and not self._children:
                self._parents.append((v, r.arch))
                if len(self._parents) == self.population:
                    self._rank_parents()
            else:
                self._children.append((v, r.arch))
                if len(self._children) >= self.population:
                    self._survive()
        if self._multi and self._parents and len(self._rank) != len(self._parents):
            self._rank_parents()

    def _joins_archive(self, v: np.ndarray, arch: Architecture) -> bool:
        """Adds ``v`` to the non-dominated set of everything told unless a point there is at
        least as good in every objective; drops the points it dominates."""
        if not np.all(np.isfinite(v)):
            return False
        if any(np.all(a <= v) for a, _ in self._archive):
            return False
        self._archive = [(a, x) for a, x in self._archive if not np.all(v <= a)]
        self._archive.append((v, arch))
        return True

    def _rank_parents(self) -> None:
        values = np.array([v for v, _ in self._parents])
        self._rank = non_dominated_ranks(values)
        self._crowd = np.zeros(len(values))
        for r in np.unique(self._rank):
            members = np.flatnonzero(self._rank == r)
            self._crowd[members] = crowding_distance(values[members])

    def _survive(self) -> None:
        pool = self._parents + self._children
        self._children = []
        values = np.array([v for v, _ in pool])
        ranks = non_dominated_ranks(values)
        crowd = np.zeros(len(pool))
        for r in np.unique(ranks):
            members = np.flatnonzero(ranks == r)
            crowd[members] = crowding_distance(values[members])
        order = np.lexsort((-crowd, ranks))[: self.population]
        self._parents = [pool[i] for i in order]
        self._rank_parents()


def _enc(x: float) -> float | str:
    """A float for JSON (which PostgreSQL's JSON type holds without inf/NaN): those as text."""
    x = float(x)
    return x if math.isfinite(x) else repr(x)


def _dec(x: float | str) -> float:
    return float(x)
