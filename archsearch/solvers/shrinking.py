"""Walking down from a large network: the one-step contractions of a member and the path
strategy that slimming (EfficientFormer) and contraction (TinyViT) share.

A *move* changes one thing of a member, over the space's flat view (:meth:`Space.labels`), so
that every move lands on a member of the same space (user spaces included):

* ``drop``: a block position removed: set to ``identity`` where the space offers it
  (EfficientFormer's MetaPath), else the stage one block shorter with the later blocks moved
  up (where the stage's depth choices allow it);
* ``to_conv``: the first attention block of the network (a 3D block) turned into each
  convolutional type its position allows (4D);
* ``width``, ``depth``: a stage's width, or its depth (its last blocks), some steps down its
  choices;
* ``ratio`` / ``window`` / ``heads`` / ``head_dim``: an expansion or MLP ratio, a window size,
  a number of heads or a head (key) dimension some steps down, for one block (``block_moves``)
  or every block of a stage at once (``stage_moves``).

:class:`PathSearch` asks the start network (the space's :meth:`~Space.largest` member, or the
first ``init``), then at every step all the moves of the current network; once they are told,
it moves to the best one by its criterion and stops as soon as the network meets the run's
budget and constraints. Every network on the way is a trial, so the path can be queried.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from archsearch.blocks import get_block
from archsearch.cost import count
from archsearch.errors import NotInSpaceError, UserError
from archsearch.solvers.base import Objective, Problem, Result, Strategy
from archsearch.spaces import Space
from archsearch.spec import Architecture

FACTORS: dict[str, tuple[str, ...]] = {
    "ratio": ("mlp_ratio", "expand", "btn_ratio"),
    "window": ("window",),
    "heads": ("heads",),
    "head_dim": ("head_dim", "key_dim"),
}
"""The block parameters each factor shrinks (as the space names its choices)."""

Criterion = Literal["per_cost", "score"]


@dataclass(frozen=True)
class Move:
    """One step down: what changed (``action`` at ``where``) and the network it gives."""

    action: str
    where: str
    arch: Architecture


class Moves:
    """The one-step contractions of members of ``space``."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.labels = space.labels()
        self.stages = {so.name: so for so in space.stages}

    def assignment(self, arch: Architecture) -> dict[str, Any]:
        """Every label of ``arch``: its own values where active, the largest elsewhere."""
        a = dict(self.space.encode(arch))
        for label, values in self.labels.items():
            a.setdefault(label, values[-1])
        return a

    def _decode(self, a: Mapping[str, Any]) -> Architecture | None:
        try:
            return self.space.decode(a)
        except (NotInSpaceError, UserError):
            return None

    def _down(self, label: str, value: Any, steps: int) -> Any:
        """The value ``steps`` below ``value`` among the label's numeric choices (the
        smallest when fewer remain), or None when nothing is below."""
        values = sorted(
            v for v in self.labels[label] if isinstance(v, int | float) and not isinstance(v, bool)
        )
        below = [v for v in values if v < value]
        if not below:
            return None
        return below[-min(steps, len(below))]

    def _blocks(self, a: Mapping[str, Any]) -> Iterator[tuple[str, int, str]]:
        """``(stage, position, prefix)`` of every active block, in network order."""
        for so in self.space.stages:
            for j in range(a[f"{so.name}.depth"]):
                yield so.name, j, so.prefix(j)

    def _move(self, a: Mapping[str, Any], action: str, where: str, **changes: Any) -> Move | None:
        arch = self._decode({**a, **changes})
        return None if arch is None else Move(action, where, arch)

    # -- the moves -------------------------------------------------------------------

    def drop(self, a: Mapping[str, Any]) -> list[Move]:
        """Each block position removed (set to identity, or the stage made shorter)."""
        out = []
        for stage, j, prefix in self._blocks(a):
            so = self.stages[stage]
            if "identity" in self.labels[f"{prefix}.type"]:
                if a[f"{prefix}.type"] != "identity":
                    m = self._move(a, "drop", prefix, **{f"{prefix}.type": "identity"})
                    out.append(m)
                continue
            depth = a[f"{stage}.depth"]
            if depth - 1 not in self.labels[f"{stage}.depth"]:
                continue
            if so.shared or so.group is not None:
                if j == depth - 1:  # shared choices: only the last block can go
                    out.append(self._move(a, "drop", prefix, **{f"{stage}.depth": depth - 1}))
                continue
            changes: dict[str, Any] = {f"{stage}.depth": depth - 1}
            for k in range(j, depth - 1):  # the later blocks move up one position
                src, dst = so.prefix(k + 1), so.prefix(k)
                for label in self.labels:
                    if label.startswith(src + "."):
                        changes[dst + label[len(src) :]] = a[label]
            out.append(self._move(a, "drop", prefix, **changes))
        return [m for m in out if m is not None]

    def to_conv(self, a: Mapping[str, Any]) -> list[Move]:
        """The first attention block turned into each convolutional type its position
        allows (EfficientFormer's 3D -> 4D)."""
        for _stage, _j, prefix in self._blocks(a):
            if not get_block(a[f"{prefix}.type"]).attention:
                continue
            out = []
            for t in self.labels[f"{prefix}.type"]:
                family = get_block(t)
                if t == "identity" or family.attention:
                    continue
                m = self._move(a, "to_conv", prefix, **{f"{prefix}.type": t})
                if m is not None:
                    out.append(m)
            return out
        return []

    def width(self, a: Mapping[str, Any], steps: int = 1) -> list[Move]:
        """Each stage's width ``steps`` choices down."""
        out = []
        for stage in self.stages:
            label = f"{stage}.width"
            v = self._down(label, a[label], steps)
            if v is not None:
                out.append(self._move(a, "width", stage, **{label: v}))
        return [m for m in out if m is not None]

    def depth(self, a: Mapping[str, Any], steps: int = 1) -> list[Move]:
        """Each stage ``steps`` depth choices shorter (its last blocks removed); in a stage
        of fixed depth whose positions may be the identity, its last ``steps`` blocks set to
        identity."""
        out = []
        for stage, so in self.stages.items():
            label = f"{stage}.depth"
            v = self._down(label, a[label], steps)
            if v is not None:
                out.append(self._move(a, "depth", stage, **{label: v}))
                continue
            prefixes = [so.prefix(j) for j in range(a[label])]
            real = [
                p
                for p in prefixes
                if a[f"{p}.type"] != "identity" and "identity" in self.labels[f"{p}.type"]
            ]
            if real:
                changes = {f"{p}.type": "identity" for p in real[-steps:]}
                out.append(self._move(a, "depth", stage, **changes))
        return [m for m in out if m is not None]

    def _factor_labels(self, a: Mapping[str, Any], prefix: str, factor: str) -> list[str]:
        t = a[f"{prefix}.type"]
        return [f"{prefix}.{t}.{p}" for p in FACTORS[factor] if f"{prefix}.{t}.{p}" in self.labels]

    def block_moves(self, a: Mapping[str, Any], factor: str, steps: int = 1) -> list[Move]:
        """One block's ``factor`` (e.g. its expansion ratio) ``steps`` choices down."""
        out = []
        seen = set()
        for _stage, _j, prefix in self._blocks(a):
            if prefix in seen:  # shared choices: one move for the shared block
                continue
            seen.add(prefix)
            for label in self._factor_labels(a, prefix, factor):
                v = self._down(label, a[label], steps)
                if v is not None:
                    out.append(self._move(a, factor, prefix, **{label: v}))
        return [m for m in out if m is not None]

    def stage_moves(self, a: Mapping[str, Any], factor: str, steps: int = 1) -> list[Move]:
        """Every block of one stage: ``factor`` ``steps`` choices down at once (TinyViT's
        contraction factors)."""
        out = []
        for stage in self.stages:
            changes = {}
            for s, _j, prefix in self._blocks(a):
                if s != stage:
                    continue
                for label in self._factor_labels(a, prefix, factor):
                    v = self._down(label, a[label], steps)
                    if v is not None:
                        changes[label] = v
            if changes:
                out.append(self._move(a, factor, stage, **changes))
        return [m for m in out if m is not None]


def check_steps(steps: Mapping[str, int]) -> None:
    """Refuses a step option outside 1-100 (choices a move goes down)."""
    for option, v in steps.items():
        if not 1 <= v <= 100:
            raise UserError(f"option {option}: {v} must be between 1 and 100")


class PathSearch(Strategy):
    """Walks from a large network down to the run's budget and constraints, one move at a
    time (see the module docstring). Subclasses say which moves a step considers
    (:meth:`moves`) and set :attr:`criterion`.

    Args:
        objective: The metric whose loss a move is judged by (default: the first objective
            that is not the cost).
        cost: The metric a move must lower (default: the first constraint's bounded metric,
            e.g. ``latency@cpu``, else ``macs`` or ``params`` of the budget).
        criterion: ``per_cost``: the move that loses the least ``objective`` per unit of cost
            saved (EfficientFormer); ``score``: the move with the best ``objective`` among
            those that save cost (TinyViT).
        lazy: 0: evaluate every move at every step. ``k > 0``: after the first step, evaluate
            only the moves never evaluated and the ``k`` whose last evaluation (at an earlier
            step, as action and place) ranked best; the rest of the step is evaluated only when
            none of those lowers the cost. Lazy greedy: a move's merit changes little from one
            step to the next, so a walk costs about ``k`` evaluations per step instead of one
            per move (EfficientFormer ranks positions by learned importance for the same
            reason).
    """

    samples: ClassVar[bool] = False
    walks: ClassVar[bool] = True
    default_criterion: ClassVar[Criterion] = "per_cost"

    def __init__(
        self,
        *,
        seed: int = 0,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
        objective: str | None = None,
        cost: str | None = None,
        criterion: str | None = None,
        lazy: int = 0,
    ) -> None:
        super().__init__(seed=seed, max_tries=max_tries, init=init)
        if not 0 <= lazy <= 10_000:
            raise UserError(f"option lazy: {lazy} must be between 0 and 10000")
        self.lazy = lazy
        self._merit: dict[tuple[str, str], float] = {}
        """The key of each move (action, place) at its last evaluation."""
        self._rest: list[Move] = []
        """This step's moves left out by ``lazy``, evaluated only if the others do not help."""
        self.objective_name = objective
        self.cost_name = cost
        crit = self.default_criterion if criterion is None else criterion
        if crit not in ("per_cost", "score"):
            raise UserError(f"option criterion: {crit!r} must be per_cost or score")
        self.criterion: Criterion = crit  # type: ignore[assignment]
        self.current: Result | None = None
        self.path: list[Architecture] = []
        """The networks walked through, from the start."""
        self._pending: list[Architecture] = []
        self._step: list[Move] = []
        self._told: dict[str, Result] = {}
        self._done = False
        self._moves: Moves | None = None
        self._score: Objective | None = None
        self._cost = ""

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "objective": self.objective_name,
            "cost": self.cost_name,
            "criterion": self.criterion,
            "lazy": self.lazy,
        }

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        self._moves = Moves(problem.space)
        self._cost = self.cost_name or _target_metric(problem, self.name)
        objs = problem.objectives
        if self.objective_name is not None:
            found = [o for o in objs if o.name == self.objective_name]
            if not found:
                raise UserError(
                    f"option objective: {self.objective_name!r} is not an objective of the "
                    f"run ({', '.join(str(o) for o in objs)})"
                )
            self._score = found[0]
        else:
            others = [o for o in objs if o.name != self._cost and o.name not in _COSTS]
            self._score = (others or list(objs))[0]

    # -- ask/tell ------------------------------------------------------------------

    def ask(self, n: int) -> list[Architecture]:
        out = self.propose(n)
        self.n_asked += len(out)
        return out

    def propose(self, n: int) -> list[Architecture]:
        if self.current is None and not self._pending and not self._step:
            if self._done:
                return []
            start = self.init[0] if self.init else self.space.largest()
            self._step = [Move("start", "", start)]
            self._pending = [start]
            self._seen.add(start.digest)
        while not self._pending and not self._done and self._step_complete():
            self._advance()
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def tell(self, results: Sequence[Result]) -> None:
        for r in results:
            self._told[r.arch.digest] = r

    def _step_complete(self) -> bool:
        return all(m.arch.digest in self._told for m in self._step)

    def _advance(self) -> None:
        """All of this step's moves are told: move to the best, then queue the next step's."""
        if self.current is None:
            start = self._told[self._step[0].arch.digest]
            self.current = start
        else:
            best = self._best(self._step)
            if best is None and self._rest:  # the lazy choice did not help: the rest too
                self._queue_step(self._rest)
                self._rest = []
                return
            if best is None:
                self._done = True  # no move lowers the cost: the walk ends here
                return
            self.current = best
        self.path.append(self.current.arch)
        if self._meets(self.current.arch):
            self._done = True
            return
        assert self._moves is not None
        a = self._moves.assignment(self.current.arch)
        moves: list[Move] = []
        for m in self.moves(self._moves, a):
            if m.arch.digest not in {x.arch.digest for x in moves}:
                moves.append(m)
        if not moves:
            self._done = True
            return
        self._step, self._rest = [], []
        if self.lazy and self._merit:
            known = [m for m in moves if (m.action, m.where) in self._merit]
            known.sort(key=lambda m: (self._merit[m.action, m.where], m.action, m.where))
            chosen = {id(m) for m in known[: self.lazy]}
            chosen |= {id(m) for m in moves if (m.action, m.where) not in self._merit}
            chosen |= {id(m) for m in moves if m.arch.digest in self._told}  # free
            self._rest = [m for m in moves if id(m) not in chosen]
            moves = [m for m in moves if id(m) in chosen]
        self._queue_step(moves)

    def _queue_step(self, moves: Sequence[Move]) -> None:
        """Makes ``moves`` this step's, asking those not evaluated yet."""
        self._step = list(moves)
        for m in moves:
            if m.arch.digest not in self._seen:
                self._seen.add(m.arch.digest)
                self._pending.append(m.arch)

    def moves(self, moves: Moves, a: Mapping[str, Any]) -> list[Move]:
        """The moves a step considers from the network of assignment ``a``."""
        raise NotImplementedError

    # -- judging -------------------------------------------------------------------

    def _meets(self, arch: Architecture) -> bool:
        problem = self.problem
        if problem.violations is not None:
            return all(v <= 0 for v in problem.violations(arch).values())
        return problem.feasible(arch)

    def _value(self, r: Result, name: str) -> float:
        if name in r.values:
            return float(r.values[name])
        costs = count(r.arch).as_dict()
        return float(costs[name]) if name in costs else math.nan

    def _best(self, step: Sequence[Move]) -> Result | None:
        """The result of the step's best move by the criterion (None when no move lowers the
        cost); records every move's key for ``lazy``."""
        assert self.current is not None and self._score is not None
        score = self._score
        sign = 1.0 if score.direction == "max" else -1.0
        here = (
            self._value(self.current, score.name) if self.current.state == "complete" else math.nan
        )
        here_cost = self._value(self.current, self._cost)
        ranked = []
        for m in step:
            r = self._told[m.arch.digest]
            saved = here_cost - self._value(r, self._cost)
            if not saved > 0:  # NaN too
                self._merit[m.action, m.where] = math.inf
                continue
            value = self._value(r, score.name) if r.state == "complete" else math.nan
            loss = sign * (here - value) if math.isfinite(value) else math.inf
            if not math.isfinite(here):
                loss = 0.0 if math.isfinite(value) else math.inf
            key = loss / saved if self.criterion == "per_cost" else loss
            self._merit[m.action, m.where] = key
            ranked.append((key, -saved, r.arch.digest, r))
        if not ranked:
            return None
        return min(ranked, key=lambda x: x[:3])[3]


_COSTS = frozenset({"macs", "params", "activations", "memory"})


def _target_metric(problem: Problem, strategy: str) -> str:
    """The metric a path strategy lowers: the first constraint's bounded metric, else the
    budget's MACs, else its parameters."""
    for c in problem.constraints:
        bounds = c.upper_bounds()
        if bounds:
            return next(iter(bounds))
    if problem.budget.macs is not None:
        return "macs"
    if problem.budget.params is not None:
        return "params"
    raise UserError(
        f"latency/budget is required by strategy {strategy}: it walks down to it, e.g. a "
        "latency of 40ms on device cpu, or a budget of 200MFLOP"
    )
