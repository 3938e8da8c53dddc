"""Runs started from the service: submitted, queued, executed by worker processes, cancelled,
resumed, deleted. Every endpoint here needs the service's token.

A submitted run is an ordinary run: its settings are :class:`~archsearch.search.RunSettings`
(the options of ``archsearch run``, validated the same way and answered with the same
messages), stored ``queued`` with the queue's name as owner. The service's worker processes
(``archsearch serve --workers N``) take queued runs one at a time
(:meth:`~archsearch.db.Store.take_queued`) and drive them as ``archsearch run --resume``
would, so the CLI sees them and ``--resume`` works on them. Cancelling hands the run to no
one (``interrupted``): its worker sees the new owner at its next heartbeat and stops, keeping
every trial it stored; resuming queues it again.

A request may name only built-in spaces, and files (data, tables, checkpoints, init specs)
only under ``--data-root``: the service never reads a path of the server a client chose.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from archsearch.errors import UserError
from archsearch.service.settings import ServiceError, ServiceSettings

log = logging.getLogger("archsearch.service")

QUEUE = "queue:archsearch-serve"
"""The owner of a run queued for the service's workers."""
POLL_SECONDS = 1.0
"""How often an idle worker looks for a queued run."""
_FILE_SETTINGS = ("data", "table", "supernet", "init")


def register(writes: APIRouter) -> None:
    writes.add_api_route("/runs", submit, methods=["POST"], status_code=201)
    writes.add_api_route("/runs/{run_id}/cancel", cancel, methods=["POST"])
    writes.add_api_route("/runs/{run_id}/resume", resume, methods=["POST"])
    writes.add_api_route("/runs/{run_id}", delete, methods=["DELETE"])


def _check_files(settings: Any, service: ServiceSettings) -> None:
    """Refuses a space that is not built in, and files outside the data root; a file under it
    is made absolute (``npz:x.npz`` -> ``npz:/root/x.npz``). Zoo networks (``init zoo:NAME``)
    and stored supernets (``supernet 3``) name no file."""
    from archsearch.search.settings import _strings
    from archsearch.spaces import list_spaces

    if settings.space is not None and settings.space not in list_spaces():
        raise UserError(
            f"space {settings.space!r}: the service runs built-in spaces only: "
            f"{', '.join(list_spaces())}"
        )
    root = Path(service.data_root).resolve() if service.data_root else None

    def under_root(name: str, value: str) -> str:
        kind, sep, rest = value.partition(":") if name == "data" else ("", "", value)
        if name == "data" and not sep:
            kind, rest = "", value
        if root is None:
            raise UserError(
                f"{name} {value!r}: this service reads no files (start it with --data-root "
                "to allow files under a folder)"
            )
        path = (root / rest).resolve()
        if not path.is_relative_to(root):
            raise UserError(f"{name} {value!r}: give a path under the service's data root")
        return f"{kind}:{path}" if kind else str(path)

    for name in _FILE_SETTINGS:
        values = _strings(getattr(settings, name))
        if name == "init":  # init zoo:a,spec.yaml names several
            values = [p.strip() for v in values for p in v.split(",") if p.strip()]
        if not values:
            continue
        fixed = [
            v
            if (name == "init" and v.startswith("zoo:")) or (name == "supernet" and v.isdigit())
            else under_root(name, v)
            for v in values
        ]
        single = isinstance(getattr(settings, name), str) and name != "init"
        setattr(settings, name, fixed[0] if single else fixed)


def submit(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Queues a run: ``body`` holds ``archsearch run``'s options (``space``, ``budget``,
    ``score``, ``trials``, ...), underscores for dashes. Answers the stored run."""
    from archsearch.search.settings import RunSettings

    service: ServiceSettings = request.app.state.settings
    try:
        settings = RunSettings.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise UserError(f"{where}: {err['msg']} (got {err.get('input')!r})") from None
    _check_files(settings, service)
    config = settings.to_search().run_config()
    store = request.app.state.store
    run_id = store.create_run(config, status="queued", owner=QUEUE)
    if service.workers == 0:
        log.warning("run %d queued, but this service has no workers (--workers)", run_id)
    from archsearch.service.api import run

    return run(request, run_id)


def cancel(request: Request, run_id: int) -> dict[str, Any]:
    """Stops a queued or running run; the trials it stored stay."""
    store = request.app.state.store
    info = store.get_run(run_id)
    if info.status not in ("queued", "running"):
        raise ServiceError(
            409, f"run {run_id} is {info.status}: only a queued or running run stops"
        )
    store.stop_run(run_id, status="interrupted", owner=None)
    from archsearch.service.api import run

    return run(request, run_id)


def resume(request: Request, run_id: int) -> dict[str, Any]:
    """Queues an interrupted, failed or stale run again; its stored trials are kept."""
    from archsearch.db import is_stale
    from archsearch.db.heartbeat import STALE_AFTER

    store = request.app.state.store
    info = store.get_run(run_id)
    if info.status == "finished":
        raise ServiceError(409, f"run {run_id} is finished; submit a new run to search more")
    if info.status == "queued" or (info.status == "running" and not is_stale(info, STALE_AFTER)):
        raise ServiceError(409, f"run {run_id} is {info.status} already")
    store.stop_run(run_id, status="queued", owner=QUEUE)
    from archsearch.service.api import run

    return run(request, run_id)


def delete(request: Request, run_id: int) -> dict[str, Any]:
    """Deletes a run that nothing drives, with its trials (architectures stay)."""
    from archsearch.db import is_stale
    from archsearch.db.heartbeat import STALE_AFTER

    store = request.app.state.store
    info = store.get_run(run_id)
    if info.status == "running" and not is_stale(info, STALE_AFTER):
        raise ServiceError(409, f"run {run_id} is running: cancel it first")
    done = store.delete_run(run_id)
    return {
        "deleted": run_id,
        "trials": done.trials,
        "scores": done.scores,
        "architectures_kept": done.architectures_kept,
    }


def worker_loop(url: str, stop: Any) -> None:
    """A worker process: takes queued runs one at a time and drives each to its end."""
    import os
    import signal

    from archsearch.db import Store, worker_id
    from archsearch.distributed.sweep import execute_run

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service stops its workers itself
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    store = Store(url)
    while not stop.is_set():
        run_id = store.take_queued(QUEUE, worker_id())
        if run_id is None:
            stop.wait(POLL_SECONDS)
            continue
        log.info("worker %s drives run %d", worker_id(), run_id)
        execute_run(url, run_id)


class RayWorkers:
    """Submitted runs executed on a Ray cluster instead: a thread of the service takes queued
    runs and runs each as a Ray task (``n`` at once), as ``archsearch sweep`` does.

    ``address``: ``auto`` (the cluster ``ray start`` started here), ``host:port``, or
    ``local`` (a Ray started inside the service, with ``n`` CPUs).
    """

    def __init__(self, url: str, n: int, address: str) -> None:
        import threading

        self.url, self.n, self.address = url, max(n, 1), address
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="archsearch-ray", daemon=True)

    def start(self) -> None:
        """Connects to the cluster (raising a one-line UserError when nothing answers)."""
        from archsearch.distributed import connect, worker_url

        self.cluster = connect(self.address, num_cpus=self.n)
        self.worker_url = worker_url(self.url, self.cluster)
        self.thread.start()

    def _loop(self) -> None:
        import ray

        from archsearch.db import Store, worker_id
        from archsearch.distributed.sweep import execute_run

        remote = ray.remote(execute_run).options(num_cpus=1, max_retries=2)
        store = Store(self.url)
        pending: dict[Any, int] = {}
        while not self.stop.is_set():
            while len(pending) < self.n:
                run_id = store.take_queued(QUEUE, f"ray:{worker_id()}")
                if run_id is None:
                    break
                pending[remote.remote(self.worker_url, run_id)] = run_id
            if not pending:
                self.stop.wait(POLL_SECONDS)
                continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                run_id = pending.pop(ref)
                try:
                    ray.get(ref)
                except Exception as e:  # the task's worker died after every retry
                    store.set_run_status(run_id, "failed", error=f"{type(e).__name__}: {e}")

    def close(self, grace: float = 5.0) -> None:
        import ray

        self.stop.set()
        self.thread.join(grace)
        ray.shutdown()


class Workers:
    """The service's worker processes (spawned, so that no thread or connection is shared)."""

    def __init__(self, url: str, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.processes = [
            ctx.Process(target=worker_loop, args=(url, self.stop), name=f"archsearch-worker-{i}")
            for i in range(n)
        ]

    def start(self) -> None:
        for p in self.processes:
            p.start()

    def close(self, grace: float = 5.0) -> None:
        """Stops the workers: idle ones at once, busy ones are terminated after ``grace``
        seconds (their run goes stale, and ``resume`` queues it again)."""
        self.stop.set()
        deadline = time.monotonic() + grace
        for p in self.processes:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.processes:
            if p.is_alive():
                p.terminate()
                p.join(5)
