"""Helpers for the SQL tests on the MariaDB and PostgreSQL servers of this machine.

A ``SqlWorld`` is project ``shop`` (stages test, staging, prod; alice developer, tom
tester, rita releaser) with services deployed in artifact mode to local hosts, and
target databases that are scratch databases on the real servers (made and dropped by
``golive.testing.databases.scratch_database``, see ``conftest.py``)::

    world.configure()                              # service orders, all stages on shop-test
    order_id = world.order("CREATE TABLE t (n INT);\\nINSERT INTO t VALUES (1);")
    deployment, ok = world.deploy(order_id)
    world.ledger(order_id)                         # [(1, "success", "test", "shop-test"), ...]
    query(world.url, "SELECT n FROM t")            # the target database itself

Also: a database user with a password (``db_user``), killing the server session that
runs a statement (``kill_session`` — a lost connection), and waiting (``wait_for``).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from golive.services import deploy as engine
from golive.services import requests, users
from golive.services.orders import ItemRequest, get_order, transition
from golive.services.runtime import Runtime
from golive.store.models import (
    Deployment,
    DeploymentStep,
    LogLine,
    SqlExecution,
    SqlStatement,
    TargetDatabase,
)
from golive.testing.databases import admin_url
from golive.testing.world import Repo, apply_config, file_order, local_hosts, make_repo, rows

BACKENDS = ("mariadb", "postgresql")
BRANCH = "feature/x"
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tom", "roles": ["tester"]},
           {"user": "rita", "roles": ["releaser"]}]
STAGES = ("test", "staging", "prod")

T = TypeVar("T")


def sleep_sql(backend: str, seconds: float) -> str:
    """A statement that runs ``seconds`` on ``backend``."""
    return f"SELECT SLEEP({seconds:g})" if backend == "mariadb" else \
        f"SELECT pg_sleep({seconds:g})"


def timeout_message(backend: str) -> str:
    """What the server says when a statement runs past its time limit."""
    return "max_statement_time exceeded" if backend == "mariadb" else \
        "canceling statement due to statement timeout"


def syntax_message(backend: str) -> str:
    return "You have an error in your SQL syntax" if backend == "mariadb" else \
        'syntax error at or near "INSRT"'


# -- the target database -------------------------------------------------------------------


def database_of(url: str) -> str:
    return str(make_url(url).database)


def url_with(url: str, **parts: Any) -> str:
    """``url`` with some of its parts (username, password, port, database) replaced."""
    return make_url(url).set(**parts).render_as_string(hide_password=False)


def closed_port() -> socket.socket:
    """A socket bound to a 127.0.0.1 port and not listening: connecting to the port is
    refused, and no one else can take it while the socket is open."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def query(url: str, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Run ``sql`` on ``url`` (a fresh connection, autocommit); the rows it returns."""
    eng = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            result = conn.execute(text(sql), dict(params or {}))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        eng.dispose()


def table_exists(url: str, table: str) -> bool:
    found = query(url, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = :t "
                       "AND table_schema = " + ("DATABASE()" if url.startswith("mysql")
                                                else "'public'"), {"t": table})
    return bool(found[0][0])


def admin_on(backend: str, url: str) -> str:
    """The admin URL of ``backend``, connected to the scratch database of ``url``."""
    return url_with(admin_url(backend), database=database_of(url))


@contextmanager
def db_user(backend: str, url: str) -> Iterator[tuple[str, str]]:
    """A database user with a password and every right on the scratch database of
    ``url``; (name, password). Dropped afterwards.

    The password has characters that a URL must quote (``@ : /``), so that both its
    plain and its quoted spelling can be looked for.
    """
    name = f"golive_u_{uuid.uuid4().hex[:10]}"
    password = f"Pw@{uuid.uuid4().hex[:8]}:s/x"
    db = database_of(url)
    admin = admin_url(backend)
    if backend == "mariadb":
        query(admin, f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}'")
        query(admin, f"GRANT ALL PRIVILEGES ON `{db}`.* TO '{name}'@'127.0.0.1'")
    else:
        query(admin, f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        query(admin, f"ALTER DATABASE {db} OWNER TO {name}")
    try:
        yield name, password
    finally:
        if backend == "mariadb":
            for (pid,) in query(admin, "SELECT ID FROM information_schema.PROCESSLIST "
                                       "WHERE USER = :u", {"u": name}):
                query(admin, f"KILL {int(pid)}")
            query(admin, f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")
        else:
            query(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = :u", {"u": name})
            on_db = admin_on(backend, url)
            query(on_db, f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            query(on_db, f"DROP OWNED BY {name}")
            query(admin, f"DROP ROLE IF EXISTS {name}")


def sessions_running(backend: str, url: str, statement: str) -> list[int]:
    """The server sessions on the scratch database of ``url`` running ``statement`` now."""
    db = database_of(url)
    if backend == "mariadb":
        found = query(admin_url(backend),
                      "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :db "
                      "AND INFO = :stmt AND ID <> CONNECTION_ID()",
                      {"db": db, "stmt": statement})
    else:
        found = query(admin_url(backend),
                      "SELECT pid FROM pg_stat_activity WHERE datname = :db AND query = :stmt "
                      "AND state = 'active' AND pid <> pg_backend_pid()",
                      {"db": db, "stmt": statement})
    return [int(r[0]) for r in found]


def sessions_on(backend: str, url: str) -> list[int]:
    """Every server session on the scratch database of ``url`` but the one asking."""
    db = database_of(url)
    if backend == "mariadb":
        found = query(admin_url(backend), "SELECT ID FROM information_schema.PROCESSLIST "
                                          "WHERE DB = :db AND ID <> CONNECTION_ID()", {"db": db})
    else:
        found = query(admin_url(backend), "SELECT pid FROM pg_stat_activity WHERE datname = :db "
                                          "AND pid <> pg_backend_pid()", {"db": db})
    return [int(r[0]) for r in found]


def end_sessions(backend: str, ids: Sequence[int]) -> None:
    """Close these server sessions from the server side (the client sees a lost
    connection)."""
    for pid in ids:
        if backend == "mariadb":
            query(admin_url(backend), f"KILL CONNECTION {int(pid)}")
        else:
            query(admin_url(backend), "SELECT pg_terminate_backend(:pid)", {"pid": pid})


@dataclass
class SessionKiller:
    """A thread that waits for a session running ``statement`` and ends it."""

    backend: str
    url: str
    statement: str
    timeout: float = 30.0
    killed: list[int] = field(default_factory=list)
    problem: str = ""
    _thread: threading.Thread | None = None

    def start(self) -> SessionKiller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                found = sessions_running(self.backend, self.url, self.statement)
                if found:
                    time.sleep(0.2)  # it runs: let it be well under way
                    end_sessions(self.backend, found)
                    self.killed = found
                    return
                time.sleep(0.05)
            self.problem = f"no session ran {self.statement!r} within {self.timeout}s"
        except Exception as exc:  # reported by join(), never lost in the thread
            self.problem = f"{type(exc).__name__}: {exc}"

    def join(self) -> list[int]:
        assert self._thread is not None
        self._thread.join(self.timeout + 5)
        assert not self.problem, self.problem
        return self.killed


def kill_session(backend: str, url: str, statement: str) -> SessionKiller:
    """Start ending the server session that will run ``statement`` on ``url``'s database."""
    return SessionKiller(backend, url, statement).start()


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``probe`` until it gives something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# -- golive ----------------------------------------------------------------------------


@dataclass
class SqlWorld:
    root: Path
    runtime: Runtime
    backend: str
    url: str
    """The scratch database behind ``shop-test``."""
    repo: Repo = field(init=False)

    def __post_init__(self) -> None:
        self.repo = make_repo(self.root, "shop", {"app/main.py": "v = 1\n"},
                              branches={BRANCH: {"app/feature.py": "f = 1\n"}})

    def configure(self, *, databases: Mapping[str, str] | None = None,
                  stage_databases: Mapping[str, str] | None = None,
                  services: Sequence[str] = ("orders",), statement_timeout: int = 0,
                  stages: Sequence[str] = STAGES,
                  notify: Sequence[Mapping[str, Any]] = ()) -> None:
        """Apply a golive.yaml: each service on its own local host per stage, each stage
        on a database (default: every stage on ``shop-test`` = ``self.url``)."""
        databases = dict(databases or {"shop-test": self.url})
        stage_databases = dict(stage_databases or {s: "shop-test" for s in stages})
        hosts = [f"{svc}-{stage}" for svc in services for stage in stages]
        apply_config(self.runtime, self.root / "golive.yaml", {
            "hosts": local_hosts(self.root, hosts),
            "databases": [{"name": name, "url": url, "statement_timeout": statement_timeout}
                          for name, url in databases.items()],
            "projects": [{
                "name": "shop", "stages": list(stages), "members": MEMBERS,
                "notify": [dict(channel) for channel in notify],
                "services": [{"name": svc, "repo": self.repo.url, "pack": ["app"], "stages": {
                    stage: {"mode": "artifact", "path": f"srv/{svc}",
                            "hosts": [f"{svc}-{stage}"], "database": stage_databases[stage]}
                    for stage in stages}} for svc in services],
            }]})

    def order(self, sql: str, *, service: str = "orders", transactional: bool | None = None,
              by: str = "alice") -> int:
        """A submitted order of one service with ``sql``."""
        return file_order(self.runtime, by, "shop",
                          [ItemRequest(service, BRANCH, sql, transactional)])

    def request(self, order_id: int, by: str = "alice", **options: Any) -> int:
        with self.runtime.store.session() as session:
            deployment = requests.request_deployment(session, order_id,
                                                   users.acting_user(session, by), **options)
            session.commit()
            return deployment.id

    def deploy(self, order_id: int, by: str = "alice", **options: Any
               ) -> tuple[Deployment, bool]:
        """Request a deployment (``stage=``, ``kind=``, ``action=``) and run it here."""
        deployment_id = self.request(order_id, by, **options)
        ok = engine.run_deployment(self.runtime, deployment_id)
        return self.deployment(deployment_id), ok

    def deploy_ok(self, order_id: int, by: str = "alice", **options: Any) -> Deployment:
        deployment, ok = self.deploy(order_id, by, **options)
        assert ok, f"{deployment.error}\n" + "\n".join(self.log(deployment.id))
        assert deployment.status == "succeeded"
        return deployment

    def act(self, order_id: int, action: str, by: str) -> str:
        with self.runtime.store.session() as session:
            order = transition(session, order_id, action, users.acting_user(session, by))
            session.commit()
            return order.state

    # -- the store -------------------------------------------------------------------------

    def deployment(self, deployment_id: int) -> Deployment:
        (row,) = rows(self.runtime, Deployment, Deployment.id == deployment_id)
        return row

    def state(self, order_id: int) -> str:
        with self.runtime.store.session() as session:
            return get_order(session, order_id).state

    def log(self, deployment_id: int) -> list[str]:
        return [ln.text for ln in rows(self.runtime, LogLine,
                                       LogLine.deployment_id == deployment_id)]

    def sql_step(self, deployment_id: int) -> DeploymentStep:
        """The deployment's latest sql step (a resumed deployment has one per run)."""
        return rows(self.runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id,
                    DeploymentStep.name == "sql")[-1]

    def statements(self, order_id: int) -> list[SqlStatement]:
        found = [s for s in rows(self.runtime, SqlStatement)
                 if s.item_id in self._item_ids(order_id)]
        return sorted(found, key=lambda s: (s.item_id, s.position))

    def _item_ids(self, order_id: int) -> set[int]:
        with self.runtime.store.session() as session:
            return {i.id for i in get_order(session, order_id).items}

    def executions(self, order_id: int) -> list[SqlExecution]:
        return rows(self.runtime, SqlExecution, SqlExecution.order_id == order_id)

    def ledger(self, order_id: int) -> list[tuple[int, str, str, str]]:
        """(statement number, status, stage, database) of each execution, in order."""
        numbers = {s.id: s.position + 1 for s in self.statements(order_id)}
        names = {d.id: d.name for d in rows(self.runtime, TargetDatabase)}
        return [(numbers[e.statement_id], e.status, e.stage, names[e.database_id])
                for e in self.executions(order_id)]

    def execution(self, order_id: int, number: int) -> SqlExecution:
        """The one execution of statement ``number``."""
        ids = {s.id for s in self.statements(order_id) if s.position + 1 == number}
        (row,) = [e for e in self.executions(order_id) if e.statement_id in ids]
        return row


def one_line(message: str) -> str:
    assert "\n" not in message and "Traceback" not in message, message
    return message
