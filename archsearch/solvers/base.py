"""The strategy interface: ``ask(n)`` proposes candidates, ``tell(results)`` returns scores.

Follows Optuna's ``BaseSampler`` and ``Study.ask/tell``. One driver loop
(:func:`archsearch.search.optimize`) owns looping, budgets, errors, timeouts and storage;
strategies never do I/O. The driver calls, in this order:

1. :meth:`Strategy.setup` once, with the :class:`Problem` (space, objectives, and the cheap
   feasibility test that encodes the budget);
2. :meth:`Strategy.ask` for a batch (the initial candidates given with ``init`` first, then
   what :meth:`Strategy.propose` proposes); an empty list means the strategy is exhausted;
3. :meth:`Strategy.tell` with one :class:`Result` per asked candidate, in the asked order;

and repeats 2-3. A strategy is deterministic given its ``seed`` and the results it is told, so
a run can be resumed by replaying its stored results into a fresh strategy. Strategies that are
:attr:`Strategy.restorable` also give their state (population, random state, ...) as plain
JSON-able data (:meth:`Strategy.state_dict`); the driver stores it after every batch and
restores it on resume, without replaying.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from archsearch.cost.units import Budget
from archsearch.evaluators import Direction
from archsearch.expr import Expr
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.spaces import Space


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction."""

    name: str
    direction: Direction

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


def always_feasible(arch: Architecture) -> bool:
    return True


@dataclass(frozen=True)
class Problem:
    """What a strategy optimises.

    Attributes:
        space: The search space; candidates must be its members.
        objectives: The metrics and directions, in order.
        feasible: A cheap, pure test (the budget) every proposed candidate must pass.
        budget: The bounds on MACs and parameters that ``feasible`` applies, for strategies
            that model them (DeepMAD's program); ``feasible`` stays the final word.
        constraints: The run's constraint expressions, likewise.
        violations: How far an architecture is from feasible, per bound (``<= 0`` where it
            holds; the same keys for every architecture), for samplers that model constraints;
            None when the problem has only ``feasible``.
    """

    space: Space
    objectives: tuple[Objective, ...]
    feasible: Callable[[Architecture], bool] = field(default=always_feasible)
    budget: Budget = field(default_factory=Budget)
    constraints: tuple[Expr, ...] = ()
    violations: Callable[[Architecture], Mapping[str, float]] | None = None


@dataclass(frozen=True)
class Result:
    """The outcome of one candidate, told back to the strategy.

    Attributes:
        arch: The candidate, as asked.
        values: Objective values by name; NaN or infinite when not computable.
        state: ``complete``, or ``failed`` when the evaluation raised.
    """

    arch: Architecture
    values: Mapping[str, float]
    state: Literal["complete", "failed"] = "complete"

    def vector(self, objectives: Sequence[Objective]) -> list[float]:
        """Objective values as a minimisation vector (max objectives negated, NaN for failed)."""
        if self.state != "complete":
            return [float("nan")] * len(objectives)
        return [
            -float(self.values[o.name]) if o.direction == "max" else float(self.values[o.name])
            for o in objectives
        ]


class Strategy(ABC):
    """A search strategy behind ask/tell.

    Subclasses implement :meth:`propose` and :meth:`tell`, take their options as keyword-only
    constructor arguments (the registry rejects unknown ones), keep all randomness in
    ``self.rng``, and never do I/O.

    Args:
        seed: Seed of the strategy's random generator.
        max_tries: Proposals tried per candidate before a batch comes back short.
        init: Candidates to ask first, before any proposal (architectures or their canonical
            JSON), e.g. seed networks from the zoo; like Optuna's ``enqueue_trial``.
    """

    name: ClassVar[str]
    samples: ClassVar[bool] = True
    """True for strategies that keep proposing members for as long as they are asked; False
    for solvers that design a few networks from the problem's budget and then stop (DeepMAD)."""
    variant_option: ClassVar[str | None] = None
    """The option a ``name:variant`` strategy name sets (``optuna:tpe`` -> ``sampler``)."""
    objective: ClassVar[str | None] = None
    """The objective a strategy optimises by construction (DeepMAD: ``entropy:max``); a run
    with this strategy and no objectives or scores uses it instead of the general default."""
    walks: ClassVar[bool] = False
    """True for strategies that walk from a large network down to the budget and constraints
    (slimming, contraction): they ask networks outside them on the way, and stop once they
    hold; the conformance suite checks the walk instead of feasibility."""
    restorable: ClassVar[bool] = False
    """True when :meth:`state_dict` captures all of the strategy's state (a subclass that
    keeps state of its own extends :meth:`_extra_state` and :meth:`_load_extra_state`); False:
    a resumed run replays the stored results instead."""

    def __init__(
        self,
        *,
        seed: int = 0,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
    ) -> None:
        self.seed = seed
        self.max_tries = max_tries
        self.rng = random.Random(seed)
        self.init = tuple(
            a if isinstance(a, Architecture) else Architecture.from_json(a) for a in init
        )
        self._queue = list(self.init)
        self.dropped_init: list[Architecture] = []
        """Initial candidates that broke the problem's constraints and were not asked."""
        self.n_asked = 0
        self._seen: set[str] = set()
        self._problem: Problem | None = None

    @property
    def problem(self) -> Problem:
        if self._problem is None:
            raise RuntimeError(f"strategy {self.name!r}: setup() was not called")
        return self._problem

    @property
    def space(self) -> Space:
        return self.problem.space

    def setup(self, problem: Problem) -> None:
        """Receives the problem; called once by the driver before the first :meth:`ask`."""
        self._problem = problem

    def ask(self, n: int) -> list[Architecture]:
        """Up to ``n`` new candidates: the ``init`` ones first, then :meth:`propose`'s.

        Called by the driver; fewer than ``n`` (or none) means the strategy found no more.
        """
        out: list[Architecture] = []
        while self._queue and len(out) < n:
            arch = self._queue.pop(0)
            if arch.digest in self._seen:
                continue
            self._seen.add(arch.digest)
            if self.problem.feasible(arch):
                out.append(arch)
            else:
                self.dropped_init.append(arch)
        self.n_asked += len(out)
        if len(out) < n:
            proposed = self.propose(n - len(out))
            self.n_asked += len(proposed)
            out += proposed
        return out

    @abstractmethod
    def propose(self, n: int) -> list[Architecture]:
        """Up to ``n`` new candidates: feasible, members of the space, never proposed before.

        Called by :meth:`ask` after the queued ``init`` candidates; ``self.n_asked`` counts the
        candidates asked before this call.
        """

    @abstractmethod
    def tell(self, results: Sequence[Result]) -> None:
        """The results of the last :meth:`ask`, one per candidate, in the asked order."""

    @classmethod
    def option_names(cls, variant: str | None = None) -> frozenset[str]:
        """The keyword options the strategy (of ``variant``, for ``name:variant``) takes."""
        import inspect

        params = inspect.signature(cls.__init__).parameters.values()
        return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def config(self) -> dict[str, Any]:
        """The options of this strategy, stored with the run (enough to rebuild it)."""
        return {
            "seed": self.seed,
            "max_tries": self.max_tries,
            "init": [a.to_json() for a in self.init],
        }

    def state_dict(self) -> dict[str, Any] | None:
        """The strategy's state after the last :meth:`tell`, as JSON-able data (None when not
        :attr:`restorable`). Called by the driver after every batch; stored with the run."""
        if not self.restorable:
            return None
        version, internal, gauss = self.rng.getstate()
        return {
            "strategy": self.name,
            "rng": [version, list(internal), gauss],
            "n_asked": self.n_asked,
            "seen": sorted(self._seen),
            "queue": [a.to_json() for a in self._queue],
            "dropped_init": [a.to_json() for a in self.dropped_init],
            **self._extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict`'s output; called by the driver after :meth:`setup` when
        it resumes a run.

        Raises:
            ValueError: the state is another strategy's.
        """
        if state.get("strategy") != self.name:
            raise ValueError(
                f"stored strategy state is {state.get('strategy')!r}'s, not {self.name!r}'s"
            )
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.n_asked = int(state["n_asked"])
        self._seen = set(state["seen"])
        self._queue = [Architecture.from_json(a) for a in state["queue"]]
        self.dropped_init = [Architecture.from_json(a) for a in state["dropped_init"]]
        self._load_extra_state(state)

    def _extra_state(self) -> dict[str, Any]:
        """A subclass's own state for :meth:`state_dict` (keys other than the base's)."""
        return {}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`_extra_state` gave."""
        return None

    def _propose(self, make: Callable[[], Architecture]) -> Architecture | None:
        """Calls ``make`` until it returns a new feasible candidate, or None after max_tries."""
        feasible = self.problem.feasible
        for _ in range(self.max_tries):
            arch = make()
            if arch.digest in self._seen:
                continue
            if feasible(arch):
                self._seen.add(arch.digest)
                return arch
        return None

    def _fill(self, n: int, make: Callable[[], Architecture]) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            arch = self._propose(make)
            if arch is None:
                break
            out.append(arch)
        return out
