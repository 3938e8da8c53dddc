"""The ``supernet`` strategy: ViT-ResNAS's evolutionary search on inherited-weight accuracy.

Liao et al., "Searching for Efficient Multi-Stage Vision Transformers" (2021), after the
HAT evolver (Wang et al., ACL 2020). Generation 0 is ``population`` random members; every
later generation sorts all members evaluated so far by the objective, takes the best
``parents``, and proposes ``mutations`` children (a random parent with each choice resampled
with probability ``mutation_prob``) and ``crossovers`` children (two distinct random parents,
each choice taken from either: uniform crossover). Every candidate, random or child, is
resampled until its MACs fall in ``[lower * C, C]`` for the run's MAC budget ``C`` (and it
passes the run's other bounds) and it was never proposed before. The search ends after
``generations`` generations.

Defaults follow the released ViT-ResNAS search scripts (``init-popu-size 500``,
``parent-size 75``, ``mutate-size 75`` and as many crossovers, 20 iterations, budget window
0.975 C to C) and its evolver's example (mutation probability 0.3); for CPU runs on the small
space use e.g. ``-O population=100 -O parents=20 -O mutations=50 -O crossovers=50``. The
objective is the ``supernet`` evaluator's ``supernet_accuracy`` unless the run names others;
with several, parents are ranked by non-dominated sorting, ties by the first objective.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from archsearch.cost import count
from archsearch.errors import check_ranges
from archsearch.solvers.base import Problem, Result, Strategy
from archsearch.spec import Architecture


class SupernetEvolution(Strategy):
    """ViT-ResNAS's evolutionary search (see the module docstring).

    Args:
        seed: Random seed.
        population: Random members of generation 0.
        parents: The best members so far that breed each later generation.
        mutations: Mutated children per generation.
        crossovers: Crossover children per generation.
        mutation_prob: Probability that each choice of a mutated child is resampled.
        generations: Generations, the random one included.
        lower: Candidates need MACs >= ``lower`` x the MAC budget (1 FLOP = 1 MAC).
        max_tries: Proposals tried per candidate before a batch comes back short.
        init: Candidates asked first; they count towards generation 0.
    """

    name = "supernet"
    objective = "supernet_accuracy:max"
    restorable = True

    def __init__(
        self,
        *,
        seed: int = 0,
        population: int = 500,
        parents: int = 75,
        mutations: int = 75,
        crossovers: int = 75,
        mutation_prob: float = 0.3,
        generations: int = 20,
        lower: float = 0.975,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
    ) -> None:
        super().__init__(seed=seed, max_tries=max_tries, init=init)
        checks = [
            ("population", population, population >= 2, "at least 2"),
            ("parents", parents, 2 <= parents <= population, f"in [2, population={population}]"),
            ("mutations", mutations, mutations >= 0, "0 or more"),
            ("crossovers", crossovers, crossovers >= 0, "0 or more"),
            (
                "mutations + crossovers",
                mutations + crossovers,
                mutations + crossovers >= 1,
                "at least 1",
            ),
            ("mutation_prob", mutation_prob, 0 < mutation_prob <= 1, "in (0, 1]"),
            ("generations", generations, generations >= 1, "at least 1"),
            ("lower", lower, 0 <= lower <= 1, "in [0, 1]"),
        ]
        check_ranges(checks, prefix="supernet: ")
        self.population = population
        self.parents = parents
        self.mutations = mutations
        self.crossovers = crossovers
        self.mutation_prob = mutation_prob
        self.generations = generations
        self.lower = lower
        self._history: list[tuple[list[float], Architecture]] = []  # (minimisation vector, arch)
        self._pool: list[Architecture] = []
        self._pool_at = -1
        self._generation = 0
        self._in_generation = 0  # children proposed in the current generation (>= 1)
        self._told = 0

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        self._floor = (
            math.ceil(self.lower * problem.budget.macs) if problem.budget.macs is not None else 0
        )

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "population": self.population,
            "parents": self.parents,
            "mutations": self.mutations,
            "crossovers": self.crossovers,
            "mutation_prob": self.mutation_prob,
            "generations": self.generations,
            "lower": self.lower,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {
            "history": [
                [[x if math.isfinite(x) else repr(x) for x in v], a.to_json()]
                for v, a in self._history
            ],
            "generation": self._generation,
            "in_generation": self._in_generation,
            "told": self._told,
        }

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._history = [
            ([float(x) for x in v], Architecture.from_json(a)) for v, a in state["history"]
        ]
        self._generation = int(state["generation"])
        self._in_generation = int(state["in_generation"])
        self._told = int(state["told"])

    # -- ask ---------------------------------------------------------------------------

    def _make(self, kind: str) -> Architecture:
        space = self.space
        if kind == "random" or len(self._history) < 2:
            return space.sample(self.rng)
        pool = self._parents()
        if kind == "mutation":
            return space.mutate(self.rng.choice(pool), self.rng, prob=self.mutation_prob)
        a, b = self.rng.sample(pool, 2)
        return space.crossover(a, b, self.rng, uniform=True)

    def _parents(self) -> list[Architecture]:
        """The best ``parents`` members told so far: by non-dominated rank (one objective: by
        value), ties by the first objective; NaN/inf and failures last."""
        if self._pool_at != len(self._history):
            import numpy as np

            from archsearch.pareto import non_dominated_ranks

            values = np.array([v for v, _ in self._history], dtype=np.float64)
            values[~np.isfinite(values)] = np.inf
            ranks = non_dominated_ranks(values)
            order = sorted(range(len(values)), key=lambda i: (ranks[i], values[i][0], i))
            self._pool = [self._history[i][1] for i in order[: self.parents]]
            self._pool_at = len(self._history)
        return self._pool

    def propose(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            arch = None
            if self._generation == 0:
                if self.n_asked + len(out) < self.population:
                    arch = self._window("random")
                    if arch is None and not self._history:
                        break  # no member in the window: nothing to breed from either
            elif self._in_generation < self.mutations + self.crossovers:
                kind = "mutation" if self._in_generation < self.mutations else "crossover"
                arch = self._window(kind)
                if arch is None:  # the parents' neighbourhood is used up: end the generation
                    self._in_generation = self.mutations + self.crossovers
                    continue
                self._in_generation += 1
            if arch is not None:
                out.append(arch)
                continue
            # The current generation is fully proposed; the next breeds from told results.
            if self._generation + 1 >= self.generations or out or self._told < self.n_asked:
                break
            self._generation += 1
            self._in_generation = 0
        return out

    def _window(self, kind: str) -> Architecture | None:
        """A new feasible candidate with MACs in the budget window, or None after max_tries."""
        feasible = self.problem.feasible
        for _ in range(self.max_tries):
            arch = self._make(kind)
            if arch.digest in self._seen or not feasible(arch):
                continue
            if count(arch).macs < self._floor:
                continue
            self._seen.add(arch.digest)
            return arch
        return None

    # -- tell --------------------------------------------------------------------------

    def tell(self, results: Sequence[Result]) -> None:
        objectives = self.problem.objectives
        for r in results:
            v = [x if math.isfinite(x) else math.inf for x in r.vector(objectives)]
            self._history.append((v, r.arch))
        self._told += len(results)
