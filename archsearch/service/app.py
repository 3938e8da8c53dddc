"""The service's application: the JSON API (``/api/v1``), its security and its errors.

Every answer comes from the same code as the CLI's (:mod:`archsearch.search.queries`, the
store), so a request gets the CLI's messages: an error is ``{"error": "<one line>"}`` with
400 (bad input), 401/403 (token), 404 (no such record), 413 (body too large) or 503 (the
database); an unexpected error is a 500 that names the exception's type, never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from archsearch._version import __version__
from archsearch.errors import NotFoundError, StoreError, UserError
from archsearch.service.settings import (
    MAX_BODY_BYTES,
    ServiceError,
    ServiceSettings,
    finite,
)

log = logging.getLogger("archsearch.service")


class SafeJSONResponse(JSONResponse):
    """JSON with NaN and infinity as null (the store keeps NaN for a missing score)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            finite(content), ensure_ascii=False, allow_nan=False, default=str
        ).encode("utf-8")


def _error(status: int, message: str) -> SafeJSONResponse:
    return SafeJSONResponse({"error": message}, status_code=status)


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _token_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def require_read(request: Request) -> None:
    """Reads are open on loopback (or with ``--public-read``); else they need the token."""
    settings: ServiceSettings = request.app.state.settings
    if settings.reads_open:
        return
    assert settings.token is not None  # serve refuses a non-loopback host without one
    if not _token_matches(_token_of(request), settings.token):
        raise ServiceError(
            401, "this service needs its token to read: send Authorization: Bearer <token>"
        )


def require_write(request: Request) -> None:
    """Every write needs the token (compared in constant time); without one, writes are off."""
    settings: ServiceSettings = request.app.state.settings
    if settings.token is None:
        raise ServiceError(
            403,
            "writes are disabled: start archsearch serve with --token or $ARCHSEARCH_TOKEN",
        )
    if not _token_matches(_token_of(request), settings.token):
        raise ServiceError(401, "a write needs the service's token: Authorization: Bearer <token>")


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service over ``settings.db`` (opened, and its schema checked, here).

    Raises:
        StoreError: the database cannot be used.
    """
    from archsearch.db import Store
    from archsearch.service import api, runs

    store = Store(settings.db)
    app = FastAPI(
        title="archsearch",
        version=__version__,
        description="Neural architecture search over hybrid conv/attention backbones: "
        "spaces, runs, trials, Pareto fronts, architectures, latency tables. "
        "1 FLOP = 1 multiply-accumulate (MAC), as the seed papers report.",
        docs_url=None,  # served below with local assets
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        default_response_class=SafeJSONResponse,
    )
    app.state.settings = settings
    app.state.store = store

    @app.middleware("http")
    async def bounded_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _error(413, f"the request body is over {MAX_BODY_BYTES:,} bytes")
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return _error(413, f"the request body is over {MAX_BODY_BYTES:,} bytes")
            request._body = body  # starlette reads it from here
        return await call_next(request)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, e: ServiceError) -> Response:
        return _error(e.status, str(e))

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, e: NotFoundError) -> Response:
        return _error(404, _line(e))

    @app.exception_handler(StoreError)
    async def store_error(request: Request, e: StoreError) -> Response:
        return _error(503 if "database" in str(e) else 400, _line(e))

    @app.exception_handler(UserError)
    async def user_error(request: Request, e: UserError) -> Response:
        return _error(400, _line(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {}
        if first.get("type") == "json_invalid":
            return _error(400, "body: not valid JSON; send a JSON document")
        where = ".".join(
            str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")
        )
        return _error(400, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}); see the service's log")

    reads = APIRouter(prefix="/api/v1", dependencies=[Depends(require_read)])
    writes = APIRouter(prefix="/api/v1", dependencies=[Depends(require_write)])
    api.register(reads)
    runs.register(writes)
    app.include_router(reads)
    app.include_router(writes)
    from archsearch.service import dashboard

    dashboard.mount(app)
    return app


def _line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
