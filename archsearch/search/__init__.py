"""Searching: the run configuration, the gate, the driver loop and its executors.

* :mod:`~archsearch.search.settings`: :class:`RunSettings`, the options of a run (what
  ``archsearch run``, sweep files and the service take), validated, and
  :meth:`RunSettings.to_search`;
* :mod:`~archsearch.search.config`: :class:`Search`, built by :func:`configure` from
  library-level options or by :func:`from_run` (:func:`resume_search`) from a stored run;
  scores and objectives;
* :mod:`~archsearch.search.gate`: the cheap feasibility test before evaluation;
* :mod:`~archsearch.search.driver`: :func:`optimize`, the loop ask -> gate -> evaluate ->
  store -> tell, with resume;
* :mod:`~archsearch.search.executors`: where candidates are evaluated (:class:`InProcess`;
  Ray's executors are in :mod:`archsearch.distributed`).
"""

from __future__ import annotations

from archsearch.cost.metrics import DEFAULT_OBJECTIVE, DEFAULT_SCORE
from archsearch.search.config import (
    Search,
    check_run_numbers,
    configure,
    create_evaluators,
    from_run,
    instance_metrics,
    parse_objectives,
    resolve_init,
    resume_search,
    score_metric,
    split_score,
    within_target,
)
from archsearch.search.driver import (
    Outcome,
    Progress,
    RunInProgress,
    optimize,
    prepare,
)
from archsearch.search.executors import (
    CHUNK_SECONDS,
    FLUSH_SECONDS,
    Beat,
    Executor,
    InProcess,
    devices_of,
    run_evaluators,
)
from archsearch.search.gate import MAX_SCORED_UNTIL_FEASIBLE, Gate, Hopeless

__all__ = [
    "CHUNK_SECONDS",
    "DEFAULT_OBJECTIVE",
    "DEFAULT_SCORE",
    "FLUSH_SECONDS",
    "MAX_SCORED_UNTIL_FEASIBLE",
    "Beat",
    "Executor",
    "Gate",
    "Hopeless",
    "InProcess",
    "Outcome",
    "Progress",
    "RunInProgress",
    "Search",
    "check_run_numbers",
    "configure",
    "create_evaluators",
    "devices_of",
    "from_run",
    "instance_metrics",
    "optimize",
    "parse_objectives",
    "prepare",
    "resolve_init",
    "resume_search",
    "run_evaluators",
    "score_metric",
    "split_score",
    "within_target",
]
