"""The JSON API, version 1: what the CLI reads, as resources.

Reads (``require_read``): spaces, blocks, zoo, runs, trials, fronts, architectures, latency
tables, supernets, and ``POST /count`` (a computation, not a write). Writes
(``require_write``): submitting, cancelling, resuming and deleting runs
(:mod:`archsearch.service.runs`). Filters use the CLI's ``--where`` grammar (parsed with
Python's ``ast`` into comparisons, never pasted into SQL).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from archsearch.errors import UserError
from archsearch.expr import parse_expr
from archsearch.service.settings import MAX_PAGE, ServiceError


def _store(request: Request) -> Any:
    return request.app.state.store


def register(reads: APIRouter) -> None:
    """Adds the read endpoints to the router."""
    reads.add_api_route("/health", health, methods=["GET"])
    reads.add_api_route("/spaces", spaces, methods=["GET"])
    reads.add_api_route("/spaces/{name}", space, methods=["GET"])
    reads.add_api_route("/blocks", blocks, methods=["GET"])
    reads.add_api_route("/zoo", zoo, methods=["GET"])
    reads.add_api_route("/runs", runs, methods=["GET"])
    reads.add_api_route("/runs/{run_id}", run, methods=["GET"])
    reads.add_api_route("/runs/{run_id}/trials", trials, methods=["GET"])
    reads.add_api_route("/runs/{run_id}/history", history, methods=["GET"])
    reads.add_api_route("/runs/{run_id}/pareto", run_pareto, methods=["GET"])
    reads.add_api_route("/pareto", pareto, methods=["GET"])
    reads.add_api_route("/architectures/{digest}", architecture, methods=["GET"])
    reads.add_api_route("/architectures/{digest}/export", export, methods=["GET"])
    reads.add_api_route("/latency", latency_devices, methods=["GET"])
    reads.add_api_route("/latency/{device}", latency_table, methods=["GET"])
    reads.add_api_route("/supernets", supernets, methods=["GET"])
    reads.add_api_route("/count", count, methods=["POST"])


def health(request: Request) -> dict[str, Any]:
    from archsearch._version import __version__
    from archsearch.db import display_url

    store = _store(request)
    return {
        "status": "ok",
        "version": __version__,
        "database": display_url(store.url),
        "schema": store.current_revision(),
    }


def spaces() -> list[dict[str, Any]]:
    """The built-in spaces with their size."""
    return _space_rows()


@cache
def _space_rows() -> list[dict[str, Any]]:
    """Built-in spaces do not change while the service runs; estimating sizes takes seconds."""
    from archsearch.spaces import list_spaces, load_space

    out = []
    for name in list_spaces():
        s = load_space(name)
        size = s.size()
        out.append(
            {
                "name": name,
                "stages": len(s.stages),
                "input": list(s.input_shape),
                "choices": len(s.choices()),
                "log10_size": size.log10_estimate,
                "description": s.description,
            }
        )
    return out


def space(name: str) -> dict[str, Any]:
    """A built-in space: its description, YAML and size (files on the server are not read)."""
    from archsearch.spaces import list_spaces, load_space

    if name not in list_spaces():
        raise ServiceError(404, f"space {name!r}: choose one of {', '.join(list_spaces())}")
    s = load_space(name)
    size = s.size()
    return {
        "name": name,
        "description": s.describe(),
        "yaml": s.source,
        "size": {
            "unconstrained": size.total,
            "feasible_fraction": size.feasible_fraction,
            "log10_feasible": size.log10_estimate,
            "log10_is_upper_bound": size.upper_bound,
        },
    }


def blocks() -> list[dict[str, Any]]:
    """The block vocabulary: each type's roles, parameters and defaults, paper."""
    from archsearch.blocks import get_block, list_blocks

    out = []
    for name in list_blocks():
        family = get_block(name)
        out.append(
            {
                "type": name,
                "roles": sorted(family.roles),
                "params": {
                    p.name: None if callable(p.default) else p.default for p in family.params
                },
                "aliases": [a.name for a in family.aliases],
                "reference": family.reference,
            }
        )
    return out


def zoo() -> list[dict[str, Any]]:
    """The seed networks with their exact costs (1 FLOP = 1 MAC)."""
    from archsearch import zoo as zoo_
    from archsearch.cost import count as count_arch

    out = []
    for e in zoo_.entries():
        cost = count_arch(e.arch)
        out.append(
            {
                "name": e.name,
                "paper": e.paper,
                "params": cost.params,
                "macs": cost.macs,
                "gflops": round(cost.macs / 1e9, 4),
                "digest": e.arch.digest,
                "summary": e.arch.summary(),
            }
        )
    return out


def runs(request: Request, sweep: str | None = None) -> list[dict[str, Any]]:
    """Every run, newest first, with its progress (a run whose owner is gone: stale)."""
    from archsearch.db.heartbeat import STALE_AFTER
    from archsearch.search.queries import run_row

    store = _store(request)
    chosen = store.sweep_runs(sweep)[::-1] if sweep else store.list_runs()
    out = []
    for r in chosen:
        row = run_row(r, stale_after=STALE_AFTER)
        row["n_trials"] = r.config.n_trials
        row["progress"] = r.n_finished / r.config.n_trials if r.config.n_trials else None
        out.append(row)
    return out


def run(request: Request, run_id: int) -> dict[str, Any]:
    """A run: its row, its settings as stored and its metrics."""
    from dataclasses import asdict

    from archsearch.db.heartbeat import STALE_AFTER
    from archsearch.search.queries import run_row

    store = _store(request)
    info = store.get_run(run_id)
    settings = asdict(info.config)
    settings.pop("space_yaml", None)
    return {
        **run_row(info, stale_after=STALE_AFTER),
        "n_trials": info.config.n_trials,
        "finished_at": info.finished_at,
        "error": info.error,
        "version": info.version,
        "settings": settings,
        "metrics": store.metrics(run_id),
        "devices": store.run_devices(run_id),
    }


Where = Annotated[
    str | None, Query(max_length=2000, description='e.g. "params < 5M and naswot > 200"')
]


def trials(
    request: Request,
    run_id: int,
    where: Where = None,
    order: Annotated[str, Query(max_length=64)] = "trial",
    descending: bool = False,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """A page of the run's complete trials: filtered, sorted (NaN last), with every metric."""
    expr = parse_expr(where, what="where") if where else None
    total, rows = _store(request).trials_page(
        run_id, where=expr, order=order, descending=descending, offset=offset, limit=limit
    )
    return {"total": total, "offset": offset, "limit": limit, "trials": rows}


def history(
    request: Request,
    run_id: int,
    metric: Annotated[str | None, Query(max_length=80, description="e.g. naswot:max")] = None,
    points: Annotated[int, Query(ge=10, le=20_000)] = 2000,
) -> dict[str, Any]:
    """Each trial's value and the best so far, in trial order (at most ``points`` of them:
    evenly spaced, and every trial that improved the best)."""
    import numpy as np

    from archsearch.search import parse_objectives
    from archsearch.search.queries import run_objectives

    store = _store(request)
    info = store.get_run(run_id)
    if metric:
        objective = run_objectives(store, run_id, metric)[0]
    else:
        o = parse_objectives(info.config.objectives)[0]
        objective = (o.name, o.direction)
    name, direction = objective
    curve = store.history(run_id, name, direction)
    values, best = np.array(curve["value"]), np.array(curve["best"])
    n = len(values)
    improved = np.flatnonzero(np.diff(best, prepend=np.nan) != 0) if n else np.empty(0, int)
    shown = np.union1d(np.linspace(0, n - 1, min(n, points)).astype(int), improved[:points])
    return {
        "metric": name,
        "direction": direction,
        "n": n,
        "index": shown.tolist(),
        "value": values[shown].tolist(),
        "best": best[shown].tolist(),
    }


Objectives = Annotated[str | None, Query(max_length=500, description="e.g. macs:min,naswot:max")]


def run_pareto(
    request: Request,
    run_id: int,
    objectives: Objectives = None,
    where: Where = None,
    walk: bool = False,
    with_zoo: bool = False,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> dict[str, Any]:
    """The run's Pareto front (as ``archsearch pareto --run``); remembered until a trial of
    the run completes."""
    from archsearch.search import queries

    store = _store(request)
    store.require_run(run_id)
    key = (run_id, objectives, where, walk, with_zoo, limit, store.columns_version(run_id))
    found = _FRONTS.get_or_compute(
        key,
        lambda: _front(
            queries.front(
                store,
                run=run_id,
                objectives=objectives,
                where=where,
                walk=walk,
                with_zoo=with_zoo,
                limit=limit,
            )
        ),
    )
    return copy.deepcopy(found)


class _Remembered:
    """The last answers, by key: a small LRU shared by the server's threads, in which one
    thread computes a missing answer while the others asking for it wait."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.computing: dict[Any, threading.Lock] = {}
        self.lock = threading.Lock()

    def get_or_compute(self, key: Any, compute: Callable[[], Any]) -> Any:
        while True:
            with self.lock:
                if key in self.items:
                    self.items.move_to_end(key)
                    return self.items[key]
                busy = self.computing.get(key)
                if busy is None:
                    mine = self.computing[key] = threading.Lock()
                    mine.acquire()
                    break
            with busy:  # another thread computes it: wait, then look again
                pass
        try:
            value = compute()
            with self.lock:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return value
        finally:
            with self.lock:
                del self.computing[key]
            mine.release()


_FRONTS = _Remembered(64)


def pareto(
    request: Request,
    runs: Annotated[str | None, Query(max_length=2000, description="e.g. 1,3,5")] = None,
    sweep: Annotated[str | None, Query(max_length=255)] = None,
    space: Annotated[str | None, Query(max_length=255)] = None,
    all: bool = False,
    objectives: Objectives = None,
    where: Where = None,
    walk: bool = False,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> dict[str, Any]:
    """A front across runs: ``runs``, ``sweep``, ``space`` or ``all`` (as ``archsearch
    pareto --runs/--sweep/--space/--all``)."""
    from archsearch.search import queries

    answer = queries.front(
        _store(request),
        runs=runs,
        sweep=sweep,
        space=space,
        all_runs=all,
        objectives=objectives,
        where=where,
        walk=walk,
        limit=limit,
    )
    return _front(answer)


def _front(answer: Any) -> dict[str, Any]:
    from archsearch.cost import FLOP_CONVENTION

    return {
        "title": answer.title,
        "objectives": [{"name": n, "direction": d} for n, d in answer.objectives],
        "columns": answer.columns,
        "flop_convention": FLOP_CONVENTION,
        "front": answer.rows,
    }


def architecture(request: Request, digest: str) -> dict[str, Any]:
    """An architecture: spec, exact costs, per-block costs, every stored score (per run), its
    latency predicted on every device the store has a table of, and every whole-network
    latency measured for it."""
    from archsearch.cost.counting import block_cost
    from archsearch.search.queries import arch_document
    from archsearch.spec import Architecture

    store = _store(request)
    info = store.architecture(digest[:64])
    arch = Architecture.from_json(info.spec)
    blocks_ = [
        {
            "block": layer.path,
            "type": layer.block.type,
            "in_shape": list(layer.in_shape),
            "out_channels": layer.block.out_channels,
            **block_cost(
                layer.block.type, layer.in_shape, layer.block.out_channels, layer.block.params
            ).as_dict(),
        }
        for layer in arch.layers
    ]
    from archsearch.profiling import predictions

    return arch_document(
        arch,
        blocks=blocks_,
        trials=info.trials,
        latency=store.architecture_latencies(info.digest),
        latency_predictions=predictions(store, arch),
    )


_BUILDS = threading.Lock()
"""TorchScript and ONNX exports build and trace the network: one at a time per server."""
_FILES = {
    "py": ("text/x-python", "py"),
    "yaml": ("application/yaml", "yaml"),
    "json": ("application/json", "json"),
    "torchscript": ("application/octet-stream", "pt"),
    "onnx": ("application/octet-stream", "onnx"),
}


def export(
    request: Request,
    digest: str,
    format: Annotated[
        str, Query(max_length=16, description="py, torchscript, onnx, yaml or json")
    ] = "py",
    features_only: bool = False,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """The architecture as a file, as ``archsearch export`` writes it: ``py`` (PyTorch
    source that imports only torch), ``torchscript`` or ``onnx`` (the network built with
    seeded random weights, traced and checked against torch; one build at a time), ``yaml``
    or ``json`` (its spec)."""
    import tempfile
    from pathlib import Path

    from archsearch.spec import Architecture

    if format not in _FILES:
        raise UserError(f"format {format!r}: choose {', '.join(_FILES)}")
    info = _store(request).architecture(digest[:64])
    arch = Architecture.from_json(info.spec)
    media, suffix = _FILES[format]
    body: str | bytes
    if format == "py":
        from archsearch.export import to_source

        body = to_source(arch, features_only=features_only)
    elif format == "yaml":
        body = arch.to_yaml()
    elif format == "json":
        body = arch.to_json(indent=2)
    else:
        import torch

        from archsearch.build import build
        from archsearch.export import to_onnx, to_torchscript

        with _BUILDS, tempfile.TemporaryDirectory(prefix="archsearch-export-") as folder:
            path = Path(folder) / f"network.{suffix}"
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                net = build(arch).eval()
            if format == "torchscript":
                to_torchscript(net, arch, path, features_only=features_only)
            else:
                to_onnx(net, arch, path, features_only=features_only)
            body = path.read_bytes()
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{info.digest[:12]}.{suffix}"'},
    )


def latency_devices(request: Request) -> list[dict[str, Any]]:
    """The devices with latency tables: their identity, entries and newest correction."""
    return [dict(d) for d in _store(request).latency_devices()]


def latency_table(
    request: Request,
    device: Annotated[str, Path(max_length=64)],
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """A device's table (paginated), its newest correction and its whole-network checks."""
    store = _store(request)
    entries = store.latency_entries(device)
    if not entries and device not in {d["key"] for d in store.latency_devices()}:
        raise ServiceError(404, f"device {device!r}: no latency table; see /api/v1/latency")
    return {
        "device": device,
        "total": len(entries),
        "entries": entries[offset : offset + limit],
        "fit": store.latest_latency_fit(device),
        "networks": store.network_latencies(device),
    }


def supernets(request: Request) -> list[dict[str, Any]]:
    """The supernet trainings (the weights stay on the server's disk)."""
    return list(_store(request).list_supernets())


def count(
    spec: Annotated[
        dict[str, Any] | str,
        Body(description="An architecture spec: a JSON object, or its JSON/YAML text."),
    ],
) -> dict[str, Any]:
    """Exact params, MACs (1 MAC = 1 FLOP) and activations of a posted spec, per block and in
    total, with DeepMAD's entropy; the CLI's one-line message when the spec is invalid."""
    import json

    from archsearch.cost import FLOP_CONVENTION, count_layers
    from archsearch.cost import count as count_arch
    from archsearch.evaluators import deepmad_entropy
    from archsearch.files import parse_yaml
    from archsearch.spec import Architecture

    if isinstance(spec, str):
        data, _ = parse_yaml(spec, "spec")
        if not isinstance(data, dict):
            raise UserError("spec: give an architecture spec as a mapping (stem, stages, head)")
        spec = data
    arch = Architecture.from_json(json.dumps(spec))
    total = count_arch(arch)
    stats = deepmad_entropy(arch)
    return {
        "digest": arch.digest,
        "summary": arch.summary(),
        "total": {**total.as_dict(), "gflops": round(total.macs / 1e9, 4)},
        "blocks": [{"block": p, "type": t, **c.as_dict()} for p, t, c in count_layers(arch)],
        "entropy": stats.score,
        "rho": stats.rho,
        "flop_convention": FLOP_CONVENTION,
    }
