"""A run on a Ray cluster: the options of where its trials go, and the one call that runs it.

Cheap scores (costs, proxies, tables) go as batched Ray tasks (:class:`RayTasks` under
:func:`archsearch.search.optimize`); a run with an expensive score (training, the supernet)
becomes Ray Tune trials (:func:`~archsearch.distributed.tune.tune_search`), which a scheduler
may stop early. The CLI's ``run --workers ray`` and the service both go through
:func:`optimize_on_ray`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsearch.distributed.cluster import connect, worker_url
from archsearch.errors import UserError

if TYPE_CHECKING:
    from archsearch.db import Claim, Store
    from archsearch.search import Outcome, Progress, Search


@dataclass(frozen=True)
class RayOptions:
    """Where a run's trials go on Ray and what each may use.

    Attributes:
        address: The cluster (``host:port`` or ``auto``); None starts a local one.
        max_concurrent: Trials evaluated at once (None: as many as the cluster holds).
        scheduler: ``asha`` to stop trainings early (runs with an expensive score only).
        cpus_per_trial: CPUs each task or trial reserves (positive).
        gpus_per_trial: GPUs each reserves (0 or more).
        retries: Evaluations retried when their worker dies (0 or more).

    Raises:
        UserError: a value out of range, naming the parameter (``max_concurrent: 0 must be at
            least 1``).
    """

    address: str | None = None
    max_concurrent: int | None = None
    scheduler: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    retries: int = 2

    def __post_init__(self) -> None:
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise UserError(f"max_concurrent: {self.max_concurrent} must be at least 1")
        cpus, gpus = self.cpus_per_trial, self.gpus_per_trial
        if not (cpus > 0 and gpus >= 0 and math.isfinite(cpus) and math.isfinite(gpus)):
            raise UserError(
                f"cpus_per_trial/gpus_per_trial {cpus}/{gpus}: CPUs must be positive and GPUs "
                "not negative"
            )
        if self.retries < 0:
            raise UserError(f"retries: {self.retries} must be 0 or more")

    def given(self) -> list[str]:
        """The options set away from their defaults (what ``--workers local`` refuses)."""
        default = RayOptions()
        return [k for k in self.__dataclass_fields__ if getattr(self, k) != getattr(default, k)]


def optimize_on_ray(
    store: Store,
    search: Search,
    options: RayOptions,
    *,
    db: str | None,
    run_id: int | None = None,
    takeover: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    on_claim: Callable[[Claim], None] | None = None,
) -> Outcome:
    """Runs (or, with ``run_id``, resumes) ``search`` with its evaluations on Ray: the same
    contract as :func:`archsearch.search.optimize`, every worker writing to database ``db``.

    Raises:
        UserError: a scheduler on a run of cheap scores; a cluster that cannot be reached; a
            database the workers cannot share (a SQLite file with a remote cluster).
    """
    from archsearch.distributed.tasks import RayTasks
    from archsearch.search import optimize

    cheap = all(e.cheap for e in search.evaluators)
    if options.scheduler is not None and cheap:
        raise UserError(
            f"scheduler {options.scheduler}: it stops trainings early; this run has only cheap "
            "scores, which are evaluated as batched Ray tasks"
        )
    cluster = connect(options.address)
    url = worker_url(db, cluster)
    if cheap:
        executor = RayTasks(
            url,
            max_concurrent=options.max_concurrent,
            cpus=options.cpus_per_trial,
            gpus=options.gpus_per_trial,
            retries=options.retries,
        )
        return optimize(
            store,
            search,
            run_id=run_id,
            on_progress=on_progress,
            executor=executor,
            takeover=takeover,
            on_claim=on_claim,
        )
    from archsearch.distributed.tune import tune_search

    return tune_search(
        store,
        search,
        url=url,
        run_id=run_id,
        max_concurrent=options.max_concurrent,
        scheduler=options.scheduler,
        cpus=options.cpus_per_trial,
        gpus=options.gpus_per_trial,
        retries=options.retries,
        takeover=takeover,
        on_progress=on_progress,
        on_claim=on_claim,
    )
