"""SQL ledger benchmark: 1,000 small statements in one order on MariaDB.

    .venv/bin/python bench/sql_ledger.py [--statements 1000] [--repeat 3] [--profile]
                                         [--json FILE]

Needs the MariaDB server of ``make services`` on 127.0.0.1:3306 (root, no password;
``GOLIVE_TEST_MARIADB_URL`` overrides it). Each run gets a fresh scratch database (made
and dropped by ``golive.testing.databases.scratch_database``) and a fresh temporary
GOLIVE_HOME with the default SQLite store, and times:

* **golive, first run** — ``request_deployment`` + ``run_deployment`` in this process of
  an order whose item has N statements (``CREATE TABLE`` then N-1 single-row
  ``INSERT``\\ s), one local host, artifact mode. Timed twice: the ``sql`` step alone
  (its ``DeploymentStep.started_at`` → ``finished_at``: connect, locks, and per
  statement the ledger's ``running`` row, the statement, the ``success`` row and a
  log line) and the whole deployment (plan, build, pack, unpack, SQL, switch);
* **golive, rerun** — the same order deployed again (iterative: the code did not
  change, so only the ledger check runs): every statement skipped;
* **bare** — PyMySQL, one connection, autocommit, the same N statements in a loop
  (connecting included), on its own fresh database.

Every run is checked: the table holds N-1 rows after the first run and still N-1
after the rerun, and the ledger says N ran, then N skipped. Prints the medians, the
per-run figures, golive's overhead per statement over the bare loop (goal: < 2 ms)
and the rerun time (goal: < 1 s). ``--profile`` adds a cProfile of one first run;
``--sqlite-journal DELETE --sqlite-sync NORMAL`` (say) times other store settings.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pymysql
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from golive.services import deploy as engine
from golive.services import requests, users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime, open_runtime
from golive.services.sqlrun import SqlJob, SqlRun
from golive.settings import get_settings
from golive.store import db as storedb
from golive.store.models import DeploymentStep
from golive.testing.databases import scratch_database
from golive.testing.world import apply_config, file_order, local_hosts, make_repo, rows

GOAL_OVERHEAD_MS = 2.0
GOAL_RERUN_S = 1.0


def statements(n: int) -> list[str]:
    """``CREATE TABLE`` and n-1 small INSERTs."""
    return ["CREATE TABLE bench (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)"] + [
        f"INSERT INTO bench (id, v) VALUES ({i}, 'value {i}')" for i in range(1, n)]


def count_rows(url: str) -> int:
    parsed = make_url(url)
    conn = pymysql.connect(host=parsed.host, port=parsed.port or 3306, user=parsed.username,
                           password=parsed.password or "", database=parsed.database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM bench")
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


# -- the bare loop ----------------------------------------------------------------------


def bare_loop(url: str, stmts: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds to connect and run ``stmts`` one by one, autocommit, one
    connection."""
    parsed = make_url(url)
    started, cpu = time.perf_counter(), time.process_time()
    conn = pymysql.connect(host=parsed.host, port=parsed.port or 3306, user=parsed.username,
                           password=parsed.password or "", database=parsed.database,
                           charset="utf8mb4", autocommit=True)
    try:
        with conn.cursor() as cursor:
            for stmt in stmts:
                cursor.execute(stmt)
    finally:
        conn.close()
    return time.perf_counter() - started, time.process_time() - cpu


# -- golive ---------------------------------------------------------------------------


@dataclass
class GoliveRun:
    order_s: float
    """Filing the order: splitting the script, checksums, storing N statements."""
    first_sql_s: float
    """The ``sql`` step, from its DeploymentStep record."""
    first_run_s: float
    """``run_statements`` alone, wall clock (the step without its own bookkeeping)."""
    first_run_cpu_s: float
    """``run_statements`` alone, CPU time of this process (independent of the load)."""
    first_deploy_s: float
    rerun_sql_s: float
    rerun_deploy_s: float


@dataclass
class Timed:
    wall: float = 0.0
    cpu: float = 0.0


def timing_sql_runs(into: Timed) -> Callable[[], None]:
    """Time every ``run_statements`` the engine calls (wall and CPU) into ``into``;
    returns the function that puts the engine back."""
    original = engine.run_statements

    def timed(job: SqlJob) -> SqlRun:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return original(job)
        finally:
            into.wall += time.perf_counter() - wall
            into.cpu += time.process_time() - cpu

    engine.run_statements = timed

    def undo() -> None:
        engine.run_statements = original

    return undo


def step_seconds(runtime: Runtime, deployment_id: int) -> float:
    (step,) = rows(runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id,
                   DeploymentStep.name == "sql")
    assert step.started_at is not None and step.finished_at is not None
    return (step.finished_at - step.started_at).total_seconds()


def timed_deploy(runtime: Runtime, order_id: int,
                 wrap: Callable[[Callable[[], bool]], bool] | None = None
                 ) -> tuple[int, float, str]:
    """(deployment id, seconds for request + run, the sql step's message)."""
    started = time.perf_counter()
    with runtime.store.session() as session:
        deployment = requests.request_deployment(session, order_id,
                                               users.acting_user(session, "alice"))
        session.commit()
        deployment_id = deployment.id

    def run() -> bool:
        return engine.run_deployment(runtime, deployment_id)

    ok = wrap(run) if wrap else run()
    took = time.perf_counter() - started
    (step,) = rows(runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id,
                   DeploymentStep.name == "sql")
    if not ok:
        raise SystemExit(f"deployment {deployment_id} failed: {step.message}")
    return deployment_id, took, step.message


def golive_run(root: Path, url: str, stmts: list[str],
               wrap: Callable[[Callable[[], bool]], bool] | None = None) -> GoliveRun:
    home = root / "golive-home"
    os.environ["GOLIVE_HOME"] = str(home)
    for name in ("GOLIVE_DATABASE_URL", "GOLIVE_SECRET_KEY", "GOLIVE_URL", "GOLIVE_TOKEN"):
        os.environ.pop(name, None)
    runtime = open_runtime(get_settings())
    try:
        repo = make_repo(root, "shop", {"app/main.py": "v = 1\n"},
                         branches={"feature/x": {"app/feature.py": "f = 1\n"}})
        apply_config(runtime, root / "golive.yaml", {
            "hosts": local_hosts(root, ["h1"]),
            "databases": [{"name": "shop-test", "url": url}],
            "projects": [{"name": "shop", "stages": ["test", "prod"],
                          "members": [{"user": "alice", "roles": ["developer"]}],
                          "services": [{"name": "orders", "repo": repo.url, "pack": ["app"],
                                        "stages": {stage: {"mode": "artifact",
                                                           "path": "srv/orders",
                                                           "hosts": ["h1"],
                                                           "database": "shop-test"}
                                                   for stage in ("test", "prod")}}]}]})
        script = "".join(f"{s};\n" for s in stmts)
        started = time.perf_counter()
        order_id = file_order(runtime, "alice", "shop",
                              [ItemRequest("orders", "feature/x", script)])
        order_s = time.perf_counter() - started

        n = len(stmts)
        sql_run = Timed()
        undo = timing_sql_runs(sql_run)
        try:
            first_id, first_s, first_msg = timed_deploy(runtime, order_id, wrap)
        finally:
            undo()
        assert first_msg == f"{n} ran, 0 already ran", first_msg
        assert count_rows(url) == n - 1
        rerun_id, rerun_s, rerun_msg = timed_deploy(runtime, order_id)
        assert rerun_msg == f"0 ran, {n} already ran", rerun_msg
        assert count_rows(url) == n - 1
        return GoliveRun(order_s, step_seconds(runtime, first_id), sql_run.wall, sql_run.cpu,
                         first_s, step_seconds(runtime, rerun_id), rerun_s)
    finally:
        runtime.close()


# -- the report -----------------------------------------------------------------------


def server_version() -> str:
    with scratch_database("mariadb", Path(tempfile.gettempdir())) as url:
        parsed = make_url(url)
        conn = pymysql.connect(host=parsed.host, port=parsed.port or 3306,
                               user=parsed.username, password=parsed.password or "")
        try:
            return str(conn.get_server_info()).removeprefix("5.5.5-")
        finally:
            conn.close()


def override_sqlite(journal: str, sync: str) -> None:
    """Make every store connection use this journal mode and synchronous setting
    (after golive's own pragmas), to compare them."""
    own = storedb._enable_sqlite_foreign_keys

    def patched(engine: Engine) -> None:
        own(engine)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            if journal:
                cursor.execute(f"PRAGMA journal_mode={journal}")
            if sync:
                cursor.execute(f"PRAGMA synchronous={sync}")
            cursor.close()

    storedb._enable_sqlite_foreign_keys = patched


def sqlite_mode() -> str:
    """The store's journal mode and synchronous setting, as a connection gets them."""
    with tempfile.TemporaryDirectory(prefix="golive-bench-") as tmp:
        engine = storedb.make_engine(f"sqlite:///{tmp}/probe.db")
        try:
            with engine.connect() as conn:
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        finally:
            engine.dispose()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={mode}, synchronous={names.get(int(sync or 0), sync)}"


def profile_first_run(n: int) -> str:
    profiler = cProfile.Profile()

    def wrap(run: Callable[[], bool]) -> bool:
        profiler.enable()
        try:
            return run()
        finally:
            profiler.disable()

    with tempfile.TemporaryDirectory(prefix="golive-bench-") as tmp, \
            scratch_database("mariadb", Path(tmp)) as url:
        golive_run(Path(tmp), url, statements(n), wrap)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats("golive", 25)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="also profile one first run (cProfile) and print where time goes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--sqlite-journal", default="", metavar="MODE",
                        help="override the store's journal mode (e.g. DELETE, WAL)")
    parser.add_argument("--sqlite-sync", default="", metavar="LEVEL",
                        help="override the store's synchronous setting (FULL, NORMAL, OFF)")
    args = parser.parse_args(argv)
    if args.sqlite_journal or args.sqlite_sync:
        override_sqlite(args.sqlite_journal, args.sqlite_sync)
    n = args.statements
    stmts = statements(n)

    bare: list[float] = []
    bare_cpu: list[float] = []
    runs: list[GoliveRun] = []
    for index in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="golive-bench-") as tmp:
            root = Path(tmp)
            with scratch_database("mariadb", root) as url:
                wall, cpu = bare_loop(url, stmts)
                bare.append(wall)
                bare_cpu.append(cpu)
                assert count_rows(url) == n - 1
            with scratch_database("mariadb", root) as url:
                runs.append(golive_run(root / "golive", url, stmts))
        print(f"run {index + 1}/{args.repeat}: bare {bare[-1]:.3f} s, golive sql step "
              f"{runs[-1].first_sql_s:.3f} s, rerun {runs[-1].rerun_deploy_s:.3f} s",
              file=sys.stderr)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    bare_s = med(bare)
    first_sql = med([r.first_sql_s for r in runs])
    first_deploy = med([r.first_deploy_s for r in runs])
    rerun_sql = med([r.rerun_sql_s for r in runs])
    rerun_deploy = med([r.rerun_deploy_s for r in runs])
    order_s = med([r.order_s for r in runs])
    first_run = med([r.first_run_s for r in runs])
    first_cpu = med([r.first_run_cpu_s for r in runs])
    bare_cpu_s = med(bare_cpu)
    overhead_ms = (first_sql - bare_s) / n * 1000
    overhead_cpu_ms = (first_cpu - bare_cpu_s) / n * 1000
    overhead_deploy_ms = (first_deploy - bare_s) / n * 1000

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        f"SQL ledger benchmark: {n} statements in one order, MariaDB {server_version()}, "
        f"SQLite store ({sqlite_mode()}); median of {args.repeat} run(s); "
        f"{os.cpu_count()} CPUs, load average {load} at the end",
        "",
        f"{'measure':<40}{'median':>10}   runs",
        f"{'bare PyMySQL loop (autocommit)':<40}{bare_s:>9.3f}s   "
        + " ".join(f"{v:.3f}" for v in bare),
        f"{'golive first run: sql step':<40}{first_sql:>9.3f}s   "
        + " ".join(f"{r.first_sql_s:.3f}" for r in runs),
        f"{'golive first run: run_statements':<40}{first_run:>9.3f}s   "
        + " ".join(f"{r.first_run_s:.3f}" for r in runs),
        f"{'bare loop, CPU time':<40}{bare_cpu_s:>9.3f}s   "
        + " ".join(f"{v:.3f}" for v in bare_cpu),
        f"{'golive run_statements, CPU time':<40}{first_cpu:>9.3f}s   "
        + " ".join(f"{r.first_run_cpu_s:.3f}" for r in runs),
        f"{'golive first run: whole deployment':<40}{first_deploy:>9.3f}s   "
        + " ".join(f"{r.first_deploy_s:.3f}" for r in runs),
        f"{'golive rerun (all skipped): sql step':<40}{rerun_sql:>9.3f}s   "
        + " ".join(f"{r.rerun_sql_s:.3f}" for r in runs),
        f"{'golive rerun: whole deployment':<40}{rerun_deploy:>9.3f}s   "
        + " ".join(f"{r.rerun_deploy_s:.3f}" for r in runs),
        f"{'filing the order (split, checksums)':<40}{order_s:>9.3f}s   "
        + " ".join(f"{r.order_s:.3f}" for r in runs),
        "",
        f"golive overhead per statement (sql step - bare) / {n}: {overhead_ms:.3f} ms "
        f"(goal < {GOAL_OVERHEAD_MS:g} ms: {verdict(overhead_ms < GOAL_OVERHEAD_MS)}); "
        f"whole deployment: {overhead_deploy_ms:.3f} ms; CPU time: {overhead_cpu_ms:.3f} ms",
        f"rerun, every statement skipped: {rerun_deploy:.3f} s whole deployment "
        f"(goal < {GOAL_RERUN_S:g} s: {verdict(rerun_deploy < GOAL_RERUN_S)})",
    ]
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({
            "statements": n, "bare_s": bare, "runs": [asdict(r) for r in runs],
            "bare_cpu_s": bare_cpu, "overhead_ms_per_statement": overhead_ms,
            "overhead_cpu_ms_per_statement": overhead_cpu_ms, "rerun_deploy_s": rerun_deploy,
        }, indent=2), encoding="utf-8")
    if args.profile:
        print("\n" + profile_first_run(n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
