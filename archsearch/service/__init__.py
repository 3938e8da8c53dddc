"""The design-space service: an HTTP API (FastAPI, ``/api/v1``, OpenAPI at ``/docs``) and a
web dashboard over the store, served by ``archsearch serve`` (uvicorn, one process).

Layout: :mod:`~archsearch.service.app` (the application, security, errors),
:mod:`~archsearch.service.api` (read endpoints), :mod:`~archsearch.service.runs` (submitting,
cancelling and resuming runs; the worker processes), :mod:`~archsearch.service.dashboard`
(the pages and their static assets, shipped in the package).
"""

from __future__ import annotations

from archsearch.service.app import create_app
from archsearch.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
