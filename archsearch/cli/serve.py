"""``archsearch serve``: the HTTP API and the dashboard over a database, in one process."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from archsearch.cli.common import DbOption, err_console, handle_errors
from archsearch.errors import UserError

TOKEN_VAR = "ARCHSEARCH_TOKEN"
MAX_WORKERS = 64


@handle_errors
def serve(
    db: DbOption = None,
    host: Annotated[
        str,
        typer.Option(help="The address to bind; anything but loopback needs --token."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            help=f"The token every write (and, off loopback, every read) needs; or ${TOKEN_VAR}.",
            show_default=False,
        ),
    ] = None,
    public_read: Annotated[
        bool, typer.Option("--public-read", help="Off loopback, serve reads without the token.")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=0, max=MAX_WORKERS, help="Processes that execute submitted runs (0: none)."
        ),
    ] = 1,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Execute submitted runs on Ray instead: auto, HOST:PORT, or local (--workers "
            "runs at once)."
        ),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            help="Submitted runs may name files (data, tables, checkpoints) under this folder "
            "only; without it, none."
        ),
    ] = None,
) -> None:
    """Serve the JSON API (/api/v1, docs at /docs) and the dashboard (/) over a database.

    Reads are open on loopback; every write (submit, cancel, resume, delete a run) needs the
    token, sent as `Authorization: Bearer <token>`. GFLOPs count 1 multiply-accumulate as 1
    FLOP.
    """
    import uvicorn

    from archsearch.db import display_url
    from archsearch.service import ServiceSettings, create_app
    from archsearch.service.runs import RayWorkers, Workers

    token = token if token is not None else os.environ.get(TOKEN_VAR) or None
    if token is not None and len(token) < 8:
        raise UserError("--token: give at least 8 characters (a long random string is best)")
    if data_root is not None and not data_root.is_dir():
        raise UserError(f"--data-root {data_root}: not a folder")
    settings = ServiceSettings(
        db=db,
        host=host,
        token=token,
        public_read=public_read,
        workers=workers,
        data_root=str(data_root) if data_root is not None else None,
    )
    if not settings.loopback and token is None and not public_read:
        raise UserError(
            f"--host {host}: the service would be reachable from other machines without a "
            f"token; give --token (or ${TOKEN_VAR}), and --public-read to serve reads without it"
        )
    sock = _bind(host, port)
    app = create_app(settings)
    url = app.state.store.url
    pool = Workers(url, workers) if ray_address is None else RayWorkers(url, workers, ray_address)
    pool.start()
    bound = sock.getsockname()[1]
    err_console.print(
        f"archsearch serve: http://{host}:{bound}/ (API /api/v1, docs /docs), database "
        f"{display_url(url)}, "
        + (f"{workers} worker(s)" if ray_address is None else f"Ray at {ray_address}")
        + ", writes "
        + ("need the token" if token else "disabled (no --token)"),
        soft_wrap=True,
    )
    try:
        config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=5)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        pool.close()


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is one line, not a traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UserError(f"--host {host}: not an address of this machine") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UserError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror})") from None
    sock.listen(128)
    return sock
