"""Optuna's samplers behind archsearch's ask/tell: ``--strategy optuna:tpe``, ``optuna:nsga2``.

Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019.
Samplers: ``tpe`` (Bergstra et al., NeurIPS 2011; multi-objective: Ozaki et al., GECCO 2020),
``nsga2`` (Deb et al., IEEE TEC 2002), ``nsga3`` (Deb & Jain, IEEE TEC 2014), ``gp`` (Gaussian
process Bayesian optimisation) and ``random``.

Encoding. The space's flat view (:meth:`~archsearch.spaces.Space.choices`) is the search
space: one categorical parameter per label, the same labels for every trial, including labels
that a given member leaves inactive (blocks beyond its depth, parameters of types it did not
choose). Optuna therefore never meets a conditional parameter, and its samplers model every
parameter jointly instead of silently falling back to independent random sampling. (CMA-ES
and QMC sample categorical parameters independently at random, so they are refused.)

Constraints. Each Optuna trial that decodes to a non-member, or to a candidate the run's budget
or constraints reject, is told back at once, never evaluated: with its violation per bound set
through ``Trial.set_constraint`` (``space``, then the keys of
:attr:`~archsearch.solvers.Problem.violations`), and as objective values the worst ones seen
so far, so that samplers that model constraints (TPE, NSGA-II/III, GP) rank it behind every
feasible trial and learn where the feasible region is. A proposal that repeats an evaluated
candidate is told that candidate's result again; archsearch never asks the driver twice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from archsearch.errors import NotInSpaceError, UserError
from archsearch.registry import check_kwargs
from archsearch.solvers.base import Problem, Result, Strategy
from archsearch.spec import Architecture

if TYPE_CHECKING:
    import optuna

SAMPLERS: dict[str, str] = {
    "tpe": "TPESampler",
    "nsga2": "NSGAIISampler",
    "nsga3": "NSGAIIISampler",
    "gp": "GPSampler",
    "random": "RandomSampler",
}
"""Sampler names ``optuna:<name>`` accepts, and their Optuna classes."""
REFUSED = {
    "cmaes": "CMA-ES samples categorical parameters independently at random",
    "qmc": "QMC samples categorical parameters independently at random",
}
SPACE_KEY = "space"
"""The constraint key of proposals that are not members of the space."""


class _Told(NamedTuple):
    """What Optuna is told of a candidate: its objective values (None when it was not
    evaluated or failed), the bounds it breaks, and whether its evaluation failed."""

    values: list[float] | None
    broken: Mapping[str, float] = {}
    failed: bool = False


class OptunaSearch(Strategy):
    """Any Optuna sampler over the space's fixed-length encoding (see the module docstring).

    Args:
        sampler: ``tpe`` (default), ``nsga2``, ``nsga3``, ``gp`` or ``random``; written
            ``--strategy optuna:<sampler>``.
        seed: Seed of the sampler.
        max_tries: Optuna trials per candidate (non-members, infeasible proposals and repeats
            included) before a batch comes back short.
        init: Candidates asked first; they are added to the study when told.
        max_repeats: Proposals in a row that repeat a candidate told before, after which
            the candidate is a random unseen feasible member instead (added to the study when
            told, like ``init``): bounds the study to ``max_repeats + 1`` trials per query.
        **sampler_options: Keyword options of the Optuna sampler (``-O n_startup_trials=20``,
            ``-O population_size=20``, ``-O multivariate=true``); unknown ones are refused.
    """

    name = "optuna"
    variant_option: ClassVar[str | None] = "sampler"

    def __init__(
        self,
        *,
        sampler: str = "tpe",
        seed: int = 0,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
        max_repeats: int = 10,
        **sampler_options: Any,
    ) -> None:
        super().__init__(seed=seed, max_tries=max_tries, init=init)
        if not 1 <= max_repeats <= 100_000:
            raise UserError(
                f"optuna: max_repeats={max_repeats} must be between 1 and 100000, e.g. 10"
            )
        self.max_repeats = max_repeats
        if sampler in REFUSED:
            raise UserError(
                f"--strategy optuna:{sampler}: refused, {REFUSED[sampler]} (architecture "
                f"choices are categorical); use one of {', '.join(SAMPLERS)}"
            )
        if sampler not in SAMPLERS:
            raise UserError(
                f"--strategy optuna:{sampler}: unknown sampler; choose one of "
                f"{', '.join(SAMPLERS)}"
            )
        for reserved in ("seed", "constraints_func"):
            if reserved in sampler_options:
                raise UserError(
                    f"-O {reserved}: set by archsearch (--seed and the run's constraints)"
                )
        import optuna

        cls = getattr(optuna.samplers, SAMPLERS[sampler])
        check_kwargs(f"optuna sampler {sampler!r}", cls, sampler_options)
        self.sampler_name = sampler
        self.sampler_options = dict(sampler_options)
        self._sampler_cls = cls
        self._study: optuna.Study | None = None
        self._dists: dict[str, Any] = {}
        self._fixed: dict[str, Any] = {}
        self._keys: list[str] = []
        self._open: dict[str, optuna.Trial] = {}
        self._waiting: dict[str, list[optuna.Trial]] = {}
        self._told: dict[str, _Told] = {}
        self._worst: list[float] | None = None
        self.n_optuna_trials = 0
        """Trials the Optuna study holds: evaluated, infeasible and repeated proposals."""
        self.n_repeats = 0
        """Proposals that repeated a candidate told before (told its result again)."""
        self.n_random = 0
        """Candidates drawn at random after ``max_repeats`` repeats in a row."""

    @classmethod
    def option_names(cls, variant: str | None = None) -> frozenset[str]:
        import inspect

        import optuna

        own = super().option_names() - {"sampler_options"}
        sampler = getattr(optuna.samplers, SAMPLERS.get(variant or "tpe", "TPESampler"))
        takes = inspect.signature(sampler.__init__).parameters
        return own | (frozenset(takes) - {"self", "seed", "constraints_func"})

    def setup(self, problem: Problem) -> None:
        import optuna

        super().setup(problem)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._dists = {
            label: optuna.distributions.CategoricalDistribution(list(c.values))
            for label, c in problem.space.choices().items()
        }
        if not self._dists:
            raise UserError(
                f"--strategy optuna:{self.sampler_name}: space {problem.space.name!r} has no "
                "choices to search"
            )
        self._fixed = problem.space.fixed()
        self._keys = [SPACE_KEY]
        if problem.violations is not None:
            self._keys += list(problem.violations(problem.space.sample(seed=self.seed)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature notices of some samplers
            sampler = self._sampler_cls(seed=self.seed, **self.sampler_options)
            self._study = optuna.create_study(
                sampler=sampler,
                directions=[
                    "maximize" if o.direction == "max" else "minimize" for o in problem.objectives
                ],
            )

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            raise RuntimeError("strategy 'optuna': setup() was not called")
        return self._study

    def propose(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            arch = self._next()
            if arch is None:
                break
            out.append(arch)
        return out

    def _next(self) -> Architecture | None:
        problem = self.problem
        repeats = 0
        for _ in range(self.max_tries):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask(self._dists)
            self.n_optuna_trials += 1
            try:
                arch = problem.space.decode({**self._fixed, **trial.params})
            except NotInSpaceError:
                self._finish(trial, _Told(None, {SPACE_KEY: 1.0}))
                continue
            digest = arch.digest
            if digest in self._told:
                # A repeat is told its result again (told as failed, TPE leaves it out of its
                # model and proposes it again and again); past max_repeats in a row the
                # candidate is drawn at random instead, which bounds the study's growth
                # (unbounded, multi-objective TPE sorted thousands of copies per proposal:
                # minutes per query past ~450 queries on nb201).
                self.n_repeats += 1
                self._finish(trial, self._told[digest])
                repeats += 1
                if repeats >= self.max_repeats:
                    drawn = self._propose(lambda: problem.space.sample(self.rng))
                    if drawn is not None:
                        self.n_random += 1
                        return drawn  # no Optuna trial: added to the study when told
                continue
            if digest in self._open or digest in self._waiting:
                self._waiting.setdefault(digest, []).append(trial)
                continue
            if digest in self._seen:  # an initial candidate, not yet told
                self._waiting.setdefault(digest, []).append(trial)
                continue
            if not problem.feasible(arch):
                broken = dict(problem.violations(arch)) if problem.violations else {}
                # a rejected candidate must read as infeasible even if no bound says by how much
                if not any(v > 0 for v in broken.values()):
                    broken[SPACE_KEY] = 1.0
                self._told[digest] = _Told(None, broken)
                self._finish(trial, self._told[digest])
                continue
            self._seen.add(digest)
            self._open[digest] = trial
            return arch
        return None

    def tell(self, results: Sequence[Result]) -> None:
        import optuna

        objectives = self.problem.objectives
        for r in results:
            values: list[float] | None = None
            if r.state == "complete":
                values = [float(r.values.get(o.name, math.nan)) for o in objectives]
                if not all(math.isfinite(v) for v in values):
                    values = None
            if values is not None:
                self._note_worst(values)
            digest = r.arch.digest
            trial = self._open.pop(digest, None)
            if trial is None:  # an initial candidate: added to the study as a finished trial
                params = self._params_of(r.arch)
                frozen = optuna.trial.create_trial(
                    params=params,
                    distributions={k: self._dists[k] for k in params},
                    values=values,
                    state=optuna.trial.TrialState.COMPLETE
                    if values is not None
                    else optuna.trial.TrialState.FAIL,
                )
                if values is not None:
                    for key in self._keys:
                        frozen.set_constraint(key, 0.0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.study.add_trial(frozen)
                self.n_optuna_trials += 1
            else:
                self._finish(trial, _Told(values, failed=values is None))
            self._told[digest] = _Told(values, failed=values is None)
            for twin in self._waiting.pop(digest, []):
                self._finish(twin, self._told[digest])

    def _params_of(self, arch: Architecture) -> dict[str, Any]:
        """A full encoding of ``arch``: its active labels, and the first value elsewhere."""
        active = self.problem.space.encode(arch)
        return {k: active.get(k, d.choices[0]) for k, d in self._dists.items()}

    def _note_worst(self, values: list[float]) -> None:
        signs = [1.0 if o.direction == "max" else -1.0 for o in self.problem.objectives]
        if self._worst is None:
            self._worst = list(values)
        else:
            self._worst = [
                min(w * s, v * s) * s for w, v, s in zip(self._worst, values, signs, strict=True)
            ]

    def _finish(self, trial: optuna.Trial, told: _Told) -> None:
        """Tells Optuna one trial: its values, or the worst seen when it was not evaluated."""
        import optuna

        if told.failed:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        for key in self._keys:
            trial.set_constraint(key, float(told.broken.get(key, 0.0)))
        values = told.values or self._worst or [0.0] * len(self.problem.objectives)
        self.study.tell(trial, values)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "sampler": self.sampler_name,
            "max_repeats": self.max_repeats,
            **self.sampler_options,
        }
