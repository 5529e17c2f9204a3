"""The server: ``create_app()`` builds the FastAPI application.

``/api/v1`` holds the operations (``api/routes.py``), login and logout, the push
webhooks and the live deployment events; ``/healthz`` and ``/metrics`` sit at the root;
the OpenAPI schema is at ``/api/v1/openapi.json`` and its pages at ``/docs``.

While the application runs (its lifespan) it holds the runtime, and with
``GOLIVE_TASKS=inline`` (the default) it is also the worker: deployments run on a
thread pool in this process, the notification outbox is sent continuously, and
releases queued for a window are started when it opens — so one ``golive server``
serves a whole team on SQLite. With ``GOLIVE_TASKS=celery`` agents run the deployments
(``worker/celery_app.py``): the server enqueues each on its zone's queue, and besides
sending and scheduling it finds lost agents every heartbeat period.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager

import anyio
from fastapi import FastAPI

from golive import __version__
from golive.api import auth, errors, events, hooks, monitoring
from golive.api.routes import build_router
from golive.services import accounts, scheduler
from golive.services.recovery import recover
from golive.services.runtime import Runtime, open_runtime
from golive.services.ticker import Ticker
from golive.settings import Settings, get_settings
from golive.web import app as web
from golive.worker.celery_app import CeleryDispatcher
from golive.worker.inline import InlineRunner
from golive.worker.notifier import sender

API = "/api/v1"
REQUEST_THREADS = 16
SCHEDULER_EVERY = 30.0


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               announce: Callable[[str], None] = print) -> FastAPI:
    """The application. ``runtime``: use this one (tests) instead of opening the store the
    settings name; ``announce`` prints the first admin's generated password, once."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # fewer request threads than anyio's 40: they share one GIL, and each query of a
        # request waits behind every other busy thread (bench/api_load.py)
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        with ExitStack() as stack:
            live = runtime or open_runtime(settings or get_settings())
            if runtime is None:
                stack.callback(live.close)
            _first_start(live, announce)
            app.state.runtime = live
            runner = _task_backend(live)
            stack.callback(runner.shutdown)
            app.state.tasks = runner
            if live.settings.tasks == "inline" or live.settings.broker_url:
                stack.enter_context(sender(live))
                stack.enter_context(Ticker(lambda: _start_due(live, runner), SCHEDULER_EVERY,
                                           "golive-scheduler", at_start=True))
            if live.settings.tasks == "celery" and live.settings.broker_url:
                stack.enter_context(Ticker(lambda: _watch_agents(live),
                                           live.settings.agent_heartbeat, "golive-agents"))
            yield

    app = FastAPI(title="golive", version=__version__, lifespan=lifespan,
                  openapi_url=f"{API}/openapi.json", docs_url="/docs", redoc_url=None,
                  description="Deploy orders through test, staging and prod.")
    errors.install(app)
    app.include_router(build_router(), prefix=API)
    app.include_router(auth.router, prefix=API)
    app.include_router(events.router, prefix=API)
    app.include_router(hooks.router, prefix=API)
    app.include_router(monitoring.router)
    web.install(app)  # last: the pages' paths never shadow the API's
    return app


def _first_start(runtime: Runtime, announce: Callable[[str], None]) -> None:
    with runtime.store.session() as session:
        password = accounts.first_admin_password(session)
        session.commit()
    if password:
        announce(f"golive: first start: log in as admin with the password {password} "
                 "(shown only now; change it with `golive user password admin`)")


def _task_backend(runtime: Runtime) -> InlineRunner | CeleryDispatcher:
    """Celery (agents run deployments) or a thread pool here; a server with
    GOLIVE_TASKS=celery and no broker runs nothing in the background (tests use that)."""
    if runtime.settings.tasks == "celery":
        return CeleryDispatcher(runtime)
    return InlineRunner(runtime, workers=8)


def _watch_agents(runtime: Runtime) -> None:
    """With agents: a lost agent's deployments become ``interrupted`` (resumable)."""
    with runtime.store.session() as session:
        if recover(session):
            session.commit()


def _start_due(runtime: Runtime, runner: InlineRunner | CeleryDispatcher) -> None:
    for started in scheduler.start_due(runtime):
        if started.outcome == "started":
            runner.submit(started.deployment_id)
