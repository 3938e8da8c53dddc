"""Sweeps: many runs from one YAML file, executed at once on Ray, all in one database.

A sweep file::

    name: budgets-x-strategies        # optional; default: the file's name without .yaml
    base:                             # settings every run shares: `archsearch run`'s options
      space: nb201
      table: ../shared/bench/nb201_cifar_latency.csv
      score: table:cifar10_test
      trials: 100
    grid:                             # every combination of these values ...
      strategy: [random, evolution, optuna:tpe]
      budget: [50MFLOP, 100MFLOP, 200MFLOP]
      seed: [0, 1, 2, 3, 4]
    runs:                             # ... for each of these (optional; default: one, empty)
      - {objectives: "cifar10_test:max"}

Each point (``base``, then the ``runs`` entry, then the ``grid`` combination) becomes one run,
stored with the sweep's name and the point. Running the same sweep again skips its finished
runs and resumes the others from the database, so a sweep survives the loss of its driver.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archsearch.db import RunConfig, Store
from archsearch.errors import UserError, first_line
from archsearch.files import is_file, read_text, short
from archsearch.limits import MAX_NAME, MAX_SWEEP_POINTS
from archsearch.search.settings import RunSettings
from archsearch.spaces.schema import data_path, format_path, load_yaml


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    base: RunSettings = RunSettings()
    grid: dict[str, list[Any]] = {}
    runs: list[RunSettings] = []


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its settings (as ``archsearch run`` options), where they came
    from in the file, and the run they configure (built, so checked, when the file is read)."""

    settings: dict[str, Any]
    where: str
    config: RunConfig

    @property
    def key(self) -> dict[str, Any]:
        """The settings as stored with the run (their identity within the sweep)."""
        out: dict[str, Any] = json.loads(json.dumps(self.settings, sort_keys=True))
        return out


@dataclass(frozen=True)
class Sweep:
    name: str
    points: list[Point]


def load_sweep(path: str | Path, *, on_point: Callable[[int, int], None] | None = None) -> Sweep:
    """Reads and validates a sweep file, and checks every point's settings (at most
    :data:`~archsearch.limits.MAX_SWEEP_POINTS`; ``on_point(checked, total)`` after each).

    Raises:
        UserError: the file is missing, not YAML, breaks the schema, or a point's settings are
            invalid; as ``file:line: message``.
    """
    path = Path(path)
    if not is_file(path):
        raise UserError(
            f"sweep file {short(str(path))!r} does not exist; give the path of a .yaml file"
        )
    source = short(str(path))
    data, smap = load_yaml(read_text(path, what="sweep file"), source, error=UserError)
    if not isinstance(data, dict):
        raise UserError(f"{source}: a sweep file is a mapping with base, grid and/or runs")
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc, _ = data_path(data, err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg, shown = f"unknown key {err['loc'][-1]!r}; see `archsearch run --help`", ""
        raise UserError(f"{smap.where(loc)}: {format_path(loc)}: {msg}{shown}") from None
    for key, values in sweep.grid.items():
        if key not in RunSettings.model_fields:
            raise UserError(
                f"{smap.where(('grid', key))}: grid.{key}: unknown setting {key!r}; grid keys are "
                "`archsearch run` options, e.g. strategy, budget, seed"
            )
        if not values:
            raise UserError(f"{smap.where(('grid', key))}: grid.{key}: give at least one value")
    base = sweep.base.model_dump(exclude_none=True)
    entries: list[tuple[int | None, RunSettings]] = list(enumerate(sweep.runs)) or [
        (None, RunSettings())
    ]
    names = list(sweep.grid)
    total = len(entries) * math.prod(len(v) for v in sweep.grid.values())
    if total > MAX_SWEEP_POINTS:
        sizes = " x ".join(f"{len(sweep.grid[k])} {k}" for k in names)
        raise UserError(
            f"{source}: the sweep defines {total:,} runs ({len(entries)} run entr"
            f"{'y' if len(entries) == 1 else 'ies'} x {sizes or 'no grid'}); at most "
            f"{MAX_SWEEP_POINTS:,}: split it into several sweep files"
        )
    points: list[Point] = []
    for i, entry in entries:
        for combo in itertools.product(*(sweep.grid[k] for k in names)):
            settings = {
                **base,
                **entry.model_dump(exclude_none=True),
                **dict(zip(names, combo, strict=True)),
            }
            where = smap.where(("runs", i)) if i is not None else smap.where(("grid",))
            label = "" if i is None else f"runs[{i}]"
            label += "".join(f" {k}={v}" for k, v in zip(names, combo, strict=True))
            try:
                run = RunSettings.model_validate(settings)
                settings = run.given()
                config = run.to_search().run_config()
            except ValidationError as e:
                err = e.errors()[0]
                raise UserError(
                    f"{where}: {label.strip()}: {err['loc'][0]}: {err['msg']} (got "
                    f"{err.get('input')!r})"
                ) from None
            except UserError as e:
                raise UserError(f"{where}: {label.strip() or 'base'}: {e}") from None
            points.append(Point(settings, where, config))
            if on_point is not None:
                on_point(len(points), total)
    keys = [json.dumps(p.key, sort_keys=True) for p in points]
    if len(set(keys)) < len(keys):
        raise UserError(f"{source}: two points of the sweep have the same settings; vary them")
    return Sweep(sweep.name or path.stem, points)


@dataclass
class RunResult:
    """What became of one run of a sweep."""

    run_id: int
    point: dict[str, Any]
    status: str
    trials: int
    error: str | None


def prepare(store: Store, sweep: Sweep) -> list[int]:
    """The run of every point: found in the database (a sweep run again) or created
    ``queued``. Returns run ids in the points' order."""
    existing = {
        json.dumps(r.sweep_point, sort_keys=True): r.id for r in store.sweep_runs(sweep.name)
    }
    ids = []
    for p in sweep.points:
        found = existing.get(json.dumps(p.key, sort_keys=True))
        if found is None:
            found = store.create_run(
                p.config, status="queued", sweep=sweep.name, sweep_point=p.key
            )
        ids.append(found)
    return ids


def execute_run(url: str, run_id: int) -> None:
    """Runs on a worker: drives one stored run to its end (resuming what is stored). A
    failure is recorded with the run, not raised."""
    from archsearch.db import RunTakenOver
    from archsearch.search import from_run, optimize

    store = Store(url)
    try:
        optimize(store, from_run(store.get_run(run_id).config), run_id=run_id, takeover=True)
    except RunTakenOver:
        return  # cancelled or taken over: the run's status is its new owner's to set
    except Exception as e:  # optimize records its own failures; this catches from_run's too
        store.set_run_status(run_id, "failed", error=f"{type(e).__name__}: {e}")


def run_sweep(
    store: Store,
    url: str,
    sweep: Sweep,
    run_ids: Sequence[int],
    *,
    max_concurrent: int | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    retries: int = 2,
    on_update: Callable[[int, int], None] | None = None,
) -> list[RunResult]:
    """Executes the sweep's unfinished runs as Ray tasks (``max_concurrent`` at once, each
    with ``cpus``/``gpus``, retried ``retries`` times if its worker dies); a failed run does
    not stop the others. ``on_update(runs done, trials stored)`` is called as they progress."""
    import ray

    remote = ray.remote(execute_run).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries)
    status = {r.id: r.status for r in store.sweep_runs(sweep.name)}
    queue = [rid for rid in run_ids if status[rid] != "finished"]
    done_count = len(run_ids) - len(queue)
    pending: dict[Any, int] = {}
    limit = max_concurrent or len(queue) or 1
    while queue or pending:
        while queue and len(pending) < limit:
            rid = queue.pop(0)
            pending[remote.remote(url, rid)] = rid
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
        for ref in ready:
            rid = pending.pop(ref)
            done_count += 1
            try:
                ray.get(ref)
            except Exception as e:  # the worker died after every retry
                store.set_run_status(rid, "failed", error=f"{type(e).__name__}: {first_line(e)}")
        if on_update is not None:
            trials = sum(r.n_finished for r in store.sweep_runs(sweep.name))
            on_update(done_count, trials)
    out = []
    by_id = {r.id: r for r in store.sweep_runs(sweep.name)}
    for rid, p in zip(run_ids, sweep.points, strict=True):
        info = by_id[rid]
        out.append(RunResult(rid, p.key, info.status, info.n_finished, info.error))
    return out
