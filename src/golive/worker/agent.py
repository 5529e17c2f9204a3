"""``golive agent``: a Celery worker for one zone, sharing the server's store.

An agent consumes its zone's queue with ``concurrency`` threads, heartbeats into the
store (``services/agents.py``: the server tells a lost agent from a live one by it),
and keeps its git mirrors, build workspaces and artifacts in its own GOLIVE_HOME: two
agents never share one (a lock file says so), and an artifact another agent built is
built again here rather than assumed present.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from golive.domain.names import name_problem
from golive.domain.zones import DEFAULT_ZONE, queue_name, zone_problem
from golive.errors import InputError
from golive.services import agents
from golive.services.liveness import act_as_agent, this_runner
from golive.services.runtime import Runtime, open_runtime
from golive.services.ticker import Ticker
from golive.settings import Settings
from golive.worker.celery_app import AgentContext, bind_agent, check_broker, make_app


@dataclass(frozen=True)
class AgentOptions:
    zone: str = DEFAULT_ZONE
    concurrency: int = 2
    name: str = ""


def agent_name(settings: Settings, options: AgentOptions) -> str:
    """The agent's name: --name, GOLIVE_AGENT_NAME, or ``<host>-<zone>``."""
    name = options.name or settings.agent_name or f"{socket.gethostname()}-{options.zone}"
    problem = name_problem(name)
    if problem:
        raise InputError(f"agent name: {problem} (set --name or GOLIVE_AGENT_NAME)")
    return name


def check(settings: Settings, options: AgentOptions) -> None:
    """Refuse what would make a broken agent, before anything starts."""
    check_broker(settings)
    problem = zone_problem(options.zone) if options.zone else "the zone is empty"
    if problem:
        raise InputError(f"--queue: {problem}")
    if not 1 <= options.concurrency <= 64:
        raise InputError("--concurrency is the number of deployments run at once: 1 to 64")
    if urlsplit(settings.store_url).scheme.split("+")[0] not in ("postgresql", "mysql",
                                                               "mariadb"):
        raise InputError("an agent shares the server's store: set GOLIVE_DATABASE_URL to its "
                         "PostgreSQL or MySQL database (postgresql+psycopg://... or "
                         "mysql+pymysql://...)")
    if not settings.secret_key and not settings.secret_key_file.exists():
        raise InputError("an agent needs the server's secret key to read host and database "
                         "credentials: set GOLIVE_SECRET_KEY to the server's")


@contextmanager
def own_home(settings: Settings) -> Iterator[None]:
    """Hold GOLIVE_HOME for this agent alone while it runs."""
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "agent.lock"
    with open(path, "a+", encoding="ascii") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another golive agent uses GOLIVE_HOME {settings.home}: give "
                             "each agent its own (mirrors and builds are per agent)") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def run_agent(settings: Settings, options: AgentOptions) -> None:
    """Run the agent until it is stopped (SIGTERM or Ctrl-C: running deployments end first)."""
    check(settings, options)
    name = agent_name(settings, options)
    with own_home(settings):
        act_as_agent(name)  # before anything records this process as a runner
        runtime = open_runtime(settings)
        try:
            _serve(runtime, name, options)
        finally:
            runtime.close()


def _serve(runtime: Runtime, name: str, options: AgentOptions) -> None:
    settings, runner = runtime.settings, this_runner()
    with runtime.store.session() as session:
        agents.register(session, name=name, zone=options.zone, runner=runner,
                        concurrency=options.concurrency, every=settings.agent_heartbeat)
        session.commit()
    bind_agent(AgentContext(runtime, name))
    app = make_app(settings)
    queue = queue_name(settings.queue_prefix, options.zone)
    argv = ["worker", "--queues", queue, "--concurrency", str(options.concurrency),
            "--pool", "threads", "--hostname", f"{name}@%h", "--loglevel", "INFO",
            "--without-mingle", "--without-gossip", "--without-heartbeat"]
    try:
        with Ticker(lambda: _beat(runtime, runner), settings.agent_heartbeat, "golive-heartbeat"):
            app.worker_main(argv)
    finally:
        with runtime.store.session() as session:
            agents.stop(session, runner)
            session.commit()


def _beat(runtime: Runtime, runner: str) -> None:
    with runtime.store.session() as session:
        agents.beat(session, runner)
        session.commit()
