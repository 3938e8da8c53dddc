"""Connecting to a Ray cluster, and checking that its workers can reach the run's database."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from archsearch.db import display_url, resolve_url
from archsearch.errors import UserError, first_line


@dataclass(frozen=True)
class Cluster:
    """The Ray cluster a driver is connected to."""

    address: str | None
    """What the user gave (None: a local Ray started by this process)."""
    nodes: int
    cpus: float
    gpus: float


def connect(address: str | None = None, *, num_cpus: int | None = None) -> Cluster:
    """Connects to the Ray cluster at ``address`` (``auto``: the one ``ray start`` started on
    this machine; ``host:port``: a head node), or starts a local one with ``num_cpus`` CPUs.

    Raises:
        UserError: nothing answers at ``address``; Ray is not installed.
    """
    try:
        import ray
    except ImportError as e:  # ray is a dependency, but a trimmed install may lack it
        raise UserError(f"workers ray: Ray is not installed ({e}); pip install 'ray[tune]'") from e
    if not ray.is_initialized():
        if address not in (None, "auto", "local") and not address.startswith("ray://"):
            _check_reachable(address)
        try:
            ray.init(
                address=address,
                num_cpus=num_cpus if address in (None, "local") else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=True,
            )
        except ConnectionError as e:
            raise UserError(
                f"address {address}: no Ray cluster answers ({first_line(e)}); start one with "
                "`ray start --head`, or give no address to start a local one"
            ) from None
    resources: dict[str, Any] = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return Cluster(
        address=address,
        nodes=len(nodes),
        cpus=float(resources.get("CPU", 0)),
        gpus=float(resources.get("GPU", 0)),
    )


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP connect fails in seconds."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(
            f"address: {address!r} is not host:port; write e.g. 10.0.0.5:6379, or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UserError(
            f"address {address}: cannot reach a Ray head there ({e}); check the address "
            "(`ray status` on the head prints it) or start one with `ray start --head`"
        ) from None


def worker_url(url: str | None, cluster: Cluster) -> str:
    """The database URL as workers must use it.

    A SQLite file is made absolute (workers do not share the driver's working directory) and
    refused when the cluster spans several machines, whose workers cannot write to one file.

    Raises:
        UserError: SQLite with a multi-machine cluster.
    """
    resolved = resolve_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() != "sqlite":
        return resolved
    if cluster.nodes > 1:
        raise UserError(
            f"db {display_url(resolved)}: a SQLite file lives on one machine, but the Ray "
            f"cluster has {cluster.nodes} nodes whose workers all write to the database; use "
            "PostgreSQL, e.g. postgresql://user@dbhost:5432/archsearch"
        )
    db = parsed.database
    if not db or db == ":memory:":
        raise UserError(
            "db: an in-memory SQLite database cannot be shared with Ray workers; give a file "
            "(sqlite:///archsearch.db) or PostgreSQL"
        )
    return parsed.set(database=str(Path(db).resolve())).render_as_string(hide_password=False)
