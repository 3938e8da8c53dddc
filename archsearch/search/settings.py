"""The options of a run, in one place: :class:`RunSettings`.

``archsearch run`` builds one from its command-line options, a sweep file from each of its
points, and the service from a request's body; :meth:`RunSettings.to_search` validates them
and configures the :class:`~archsearch.search.Search`. Errors name the parameters as they are
named here (``trials: 0 is out of range``); the CLI renders them as its flags (``--trials``)
in one place (:mod:`archsearch.cli.common`), a sweep file names its keys.

Values keep the form they were written in (a budget as ``"1GFLOP"`` or a list of them, an
option as ``name=value`` strings or a mapping), so that a sweep's points keep the identity
they are stored under; :meth:`RunSettings.to_search` normalises them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from archsearch.cost import Budget
from archsearch.cost.devices import DEVICES
from archsearch.cost.latency import parse_latency
from archsearch.cost.metrics import DEFAULT_OBJECTIVE
from archsearch.errors import UserError
from archsearch.evaluators import COST_METRICS, EVALUATORS, evaluator_for
from archsearch.expr import parse_expr
from archsearch.search.config import Search, configure, split_score
from archsearch.solvers import strategy_class
from archsearch.spaces import load_space

DEFAULTS: dict[str, Any] = {
    "strategy": "evolution",
    "trials": 1000,
    "seed": 0,
    "batch_size": 32,
}
"""What a run takes when an option is not given (``--help`` shows them)."""

MAY_CHANGE_ON_RESUME = ("trials", "time_limit", "device")
"""Settings a resumed run may be given anew; the others are the stored run's."""

SCORE_OPTION_NAMES = {
    "data": "data",
    "epochs": "epochs",
    "steps": "steps",
    "proxy_input": "input",
    "proxy_batch": "batch",
    "table": "path",
    "supernet": "supernet",
}
"""Settings that are options of the scores: the setting -> the evaluators' keyword."""


class RunSettings(BaseModel):
    """One run's settings: the options of ``archsearch run`` (underscores for dashes), a sweep
    point's keys, the service's run request.

    Lists may be given as one string (``budget: 1GFLOP``) or a list; ``option``,
    ``score_option`` and ``device_option`` as ``name=value`` strings or a mapping.
    """

    model_config = ConfigDict(extra="forbid")

    space: str | None = None
    strategy: str | None = None
    budget: str | list[str] | None = None
    objectives: str | None = None
    score: str | list[str] | None = None
    data: str | None = None
    epochs: float | None = None
    steps: int | None = None
    proxy_input: str | None = None
    proxy_batch: int | None = None
    table: str | None = None
    score_option: str | list[str] | dict[str, Any] | None = None
    supernet: str | None = None  # a checkpoint path
    constraint: str | list[str] | None = None
    rho: float | None = None
    trials: int | None = None
    time_limit: float | None = None
    seed: int | None = None
    batch_size: int | None = None
    option: str | list[str] | dict[str, Any] | None = None
    init: str | list[str] | None = None
    latency: str | None = None
    latency_column: str | None = None
    device: str | None = None
    device_option: str | list[str] | dict[str, Any] | None = None

    def given(self) -> dict[str, Any]:
        """The settings given (not None), in the form they were written."""
        return self.model_dump(exclude_none=True)

    def to_search(self) -> Search:
        """The configured search.

        Raises:
            UserError: a setting is invalid; the message names it (``space``, ``trials``).
        """
        if self.space is None:
            raise UserError("space is required: a built-in space (e.g. hybrid) or a YAML file")
        device = self.device or "cpu"
        DEVICES.get(device)  # an unknown device is named as such, with the list
        constraints = _strings(self.constraint)
        if self.rho is not None:
            if not self.rho > 0:
                raise UserError(f"rho: {self.rho} must be a positive number, e.g. 0.3")
            constraints.append(f"rho <= {self.rho!r}")
        if self.latency_column is not None and self.latency is None:
            raise UserError(
                f"latency_column {self.latency_column}: give the bound too, e.g. latency 25ms"
            )
        if self.latency is not None:
            column = self.latency_column or f"latency@{device}"
            constraints.append(f"{column} <= {parse_latency(self.latency)!r}")
        scores = split_names(_strings(self.score))
        if self.table is not None and all(split_score(n)[0] != "table" for n in scores):
            scores.append("table")  # its columns are stored, and usable as metrics
        if self.supernet is not None and "supernet" not in scores:
            scores.append("supernet")
        strategy = self.strategy or DEFAULTS["strategy"]
        options = score_options(
            _option_takers(scores, self.objectives, constraints, strategy),
            {k: getattr(self, k) for k in SCORE_OPTION_NAMES},
            extra=_options(self.score_option),
        )
        options[f"latency@{device}"] = parse_options(
            _options(self.device_option), what="device_option"
        )
        return configure(
            space=load_space(self.space),
            strategy=strategy,
            strategy_options=parse_options(_options(self.option)),
            objectives=self.objectives,
            scores=scores,
            budget=Budget.parse(_strings(self.budget)),
            constraints=constraints,
            n_trials=self.trials if self.trials is not None else DEFAULTS["trials"],
            time_limit=self.time_limit,
            batch_size=self.batch_size if self.batch_size is not None else DEFAULTS["batch_size"],
            seed=self.seed if self.seed is not None else DEFAULTS["seed"],
            init=_strings(self.init),
            evaluator_options=options,
        )

    def not_on_resume(self) -> list[str]:
        """The settings given that a resumed run cannot take (its stored settings stand; only
        :data:`MAY_CHANGE_ON_RESUME` may change)."""
        return [k for k, v in self.given().items() if v and k not in MAY_CHANGE_ON_RESUME]


def _strings(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _options(value: str | list[str] | dict[str, Any] | None) -> list[str]:
    """``name=value`` strings from a string, a list of them or a mapping."""
    if isinstance(value, dict):
        return [f"{k}={json.dumps(v)}" for k, v in value.items()]
    return _strings(value)


def split_names(items: list[str] | None) -> list[str]:
    """``["naswot,zen", "train"]`` -> ``["naswot", "zen", "train"]`` (order kept, no repeats)."""
    out = [n.strip() for item in items or [] for n in item.split(",") if n.strip()]
    return list(dict.fromkeys(out))


def parse_options(items: list[str], *, what: str = "option") -> dict[str, Any]:
    """``["population=64", "crossover_prob=0.5"]`` -> typed values (YAML scalars, read with
    the safe loader).

    Raises:
        UserError: an item is not ``name=value`` or its value is not YAML; named ``what``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{what}: {item[:60]!r} must look like name=value, e.g. population=64")
        if not value.strip():
            raise UserError(
                f"{what}: {item[:60]!r} has no value; write {key.strip()[:40]}=<value> or leave "
                "the option out for its default"
            )
        try:
            out[key.strip()] = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError) as e:
            problem = getattr(e, "problem", None) or type(e).__name__
            raise UserError(
                f"{what}: the value of {key.strip()[:40]!r} is not a YAML value ({problem}); "
                "write a number, a word, true/false or a [list]"
            ) from None
    return out


def score_options(
    names: list[str], given: dict[str, Any], *, extra: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Options per score from a run's settings (``given``: setting -> value, see
    :data:`SCORE_OPTION_NAMES`) and ``name=value`` score options; an option that no score in
    ``names`` takes is refused, naming the setting.

    Keys are evaluator names: ``table:cifar10_test`` counts as ``table`` (its ``metric``
    option is set where the evaluator is created, :func:`archsearch.search.create_evaluators`).
    """
    keyword = {SCORE_OPTION_NAMES[k]: (k, v) for k, v in given.items() if v is not None}
    values = {kw: v for kw, (_, v) in keyword.items()}
    setting = {kw: k for kw, (k, _) in keyword.items()}
    for kw, v in parse_options(extra or [], what="score_option").items():
        values[kw] = v
        setting[kw] = f"score_option {kw}"
    costs = {m.name for m in COST_METRICS}
    classes = {n: EVALUATORS.get(n) for n, _ in map(split_score, names) if n not in costs}
    out: dict[str, dict[str, Any]] = {n: {} for n in classes}
    for kw, value in values.items():
        takers = [n for n, cls in classes.items() if kw in cls.option_names()]
        if not takers:
            able = sorted(n for n in EVALUATORS.names() if kw in EVALUATORS.get(n).option_names())
            raise UserError(
                f"{setting[kw]}: no chosen score takes {kw!r} (scores: "
                f"{', '.join(names) or 'none'}); it applies to {', '.join(able) or 'no score'}"
            )
        for n in takers:
            out[n][kw] = value
    return out


def _option_takers(
    scores: list[str], objectives: str | None, constraints: list[str], strategy: str
) -> list[str]:
    """The scores a run computes, whether named by ``score`` or implied: by the objectives
    (the default one, naswot:max, included) and constraints; score options go to these."""
    implied = objectives
    if implied is None and not scores:
        implied = strategy_class(strategy).objective or DEFAULT_OBJECTIVE
    names = [p.split(":")[0].strip() for p in (implied or "").split(",")]
    for c in constraints:
        with contextlib.suppress(UserError):  # reported where the run parses it
            names += sorted(parse_expr(c, what="constraint").names)
    out = list(scores)
    for metric in names:
        try:
            ev = evaluator_for(metric)
        except UserError:  # a table's column, latency@device, or a typo reported later
            continue
        if ev is not None and ev not in out:
            out.append(ev)
    return out
