"""``/healthz`` and ``/metrics``: public (no login), left out of the OpenAPI schema.

Both read the store of ``request.app.state.runtime``. They are plain ``def`` routes, so
FastAPI runs them on its thread pool and a slow store never blocks the event loop.
A store that cannot be reached answers 503: a load balancer takes the process out, and
Prometheus records the scrape as failed. The reason shown is the driver error's class
only; its message (host, port, user) goes to the log, not to an unauthenticated caller.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from golive import __version__
from golive.errors import StoreError
from golive.services.metrics import render_metrics
from golive.store.db import Store

log = logging.getLogger(__name__)

router = APIRouter()


def _store(request: Request) -> Store:
    store: Store = request.app.state.runtime.store
    return store


@router.get("/healthz", include_in_schema=False)
def healthz(request: Request) -> JSONResponse:
    try:
        with _store(request).session() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        cause = type(getattr(exc, "orig", None) or exc).__name__
        log.warning("healthz: the store is unreachable: %s", exc)
        return JSONResponse({"status": "error", "store": f"unreachable ({cause})"},
                            status_code=503)
    return JSONResponse({"status": "ok", "store": "ok", "version": __version__})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    try:
        body, content_type = render_metrics(_store(request))
    except StoreError as exc:
        log.warning("metrics: %s", exc)
        return Response("the store is unreachable\n", status_code=503,
                        media_type="text/plain; charset=utf-8")
    return Response(body, media_type=content_type)
