"""API load benchmark: concurrent clients reading orders while a deployment streams its log.

    .venv/bin/python bench/api_load.py [--seconds 30] [--clients 50] [--orders 200]
                                       [--stores sqlite,postgresql] [--warmup 5]
                                       [--pause 0] [--profile] [--what-if CHANGES]
                                       [--json FILE]

For each store (a SQLite file in a temporary GOLIVE_HOME; a scratch database on the
PostgreSQL server of ``make services``, 127.0.0.1:5432, ``GOLIVE_TEST_POSTGRES_URL``
overrides it) the benchmark

* builds a world with ``golive.testing.world``: three real git repositories, two local
  hosts, one project ``shop`` with three services (``web``, ``api`` with a SQL target,
  ``worker``), stages test and prod;
* files ``--orders`` orders through ``golive.services.orders.create_order`` (one to three
  services each, SQL statements on some, most submitted, some cancelled), so the list
  and the details have realistic sizes;
* starts the real server in a subprocess (``golive server --port P``, its own
  interpreter: the load generator's GIL stays out of it) and a Bearer token for alice,
  a developer of the project;
* deploys one order on test through the API (``POST /orders/{n}/deploy``: it runs in
  the server) whose build prints a line every 10 ms until the measuring ends (every
  line is a committed log row in the store), and keeps one client reading its live
  events (``GET /api/v1/deployments/{id}/events``, server-sent events);
* runs ``--clients`` asyncio clients (one keep-alive ``httpx.AsyncClient`` each) that
  alternate ``GET /api/v1/orders`` (the whole list) and ``GET /api/v1/orders/{n}`` (a
  random order), with no pause unless ``--pause``. After ``--warmup`` seconds, every
  request sent in the next ``--seconds`` is recorded and awaited.

Prints, per store: requests sent in the window, requests/s (those answered in it), p50,
p90, p99 and max latency, errors (any answer but 200, or no answer), the same split by
endpoint, the CPU used by the server process (also per request) and by this one, what
the deployment wrote and what the events client read, exceptions in the server's log;
then PostgreSQL / SQLite ratios and whether p99 is under the goal (100 ms).
``--profile`` runs the server under per-thread cProfile with timing of every request
(waiting for a pooled connection, authentication, the operation, serialization, SQL time
and query count) and prints where its time goes; profiled figures are slower than real
ones, read them as shares. ``--what-if`` patches changes into the server process to
measure them before anyone makes them (``WHAT_IF``). Exits 1 when a store answered with
errors or not at all. Nothing but 127.0.0.1 is contacted; every loop stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from golive.services import orders as order_service
from golive.services import users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime, open_runtime
from golive.settings import get_settings
from golive.store.models import Deployment, LogLine
from golive.testing.databases import admin_url, scratch_database
from golive.testing.server import api_token, bearer, free_port
from golive.testing.world import apply_config, file_order, local_hosts, make_repo

GOAL_P99_MS = 100.0
API = "/api/v1"
SERVICES = ("web", "api", "worker")
BRANCHES = ("feature/x", "feature/login", "feature/cart", "fix/typo", "feature/search")
LIST_LIMIT = 100  # GET /orders answers the newest 100 unless ?limit=
STORE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
LINE_EVERY_S = 0.01
SEED = 20261126
WHAT_IF = {
    # eager loading of the order list and a 20 + 20 connection pool, measured here first,
    # are now golive's own code
    "threads-8": "requests run on at most 8 threads (golive's default: 16)",
}


# -- the world -------------------------------------------------------------------------


def build_loop(seconds: float, stop_file: Path) -> str:
    """A build command printing one line every 10 ms until ``stop_file`` exists, for
    ``seconds`` at most (it ends by itself)."""
    lines = int(seconds / LINE_EVERY_S)
    return (f"i=0; while [ $i -lt {lines} ] && [ ! -e '{stop_file}' ]; do "
            f'echo "build line $i"; i=$((i+1)); sleep {LINE_EVERY_S}; done')


def make_world(root: Path, runtime: Runtime, build_seconds: float, stop_file: Path) -> None:
    """Repositories, hosts and the project ``shop``; ``web`` builds with the log loop."""
    repos = {name: make_repo(root, name, {"app/main.py": f"# {name}\nv = 1\n"},
                             branches={b: {"app/feature.py": f"# {b}\n"} for b in BRANCHES})
             for name in SERVICES}

    def stages(path: str, database: str = "") -> dict[str, Any]:
        extra = {"database": database} if database else {}
        return {"test": {"mode": "artifact", "path": path, "hosts": ["h1"], **extra},
                "prod": {"mode": "artifact", "path": path, "hosts": ["h1", "h2"], **extra}}

    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h1", "h2"]),
        "databases": [{"name": "shop-db", "url": f"sqlite:///{root / 'shop-target.db'}"}],
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]},
                        {"user": "bob", "roles": ["tester"]}],
            "services": [
                {"name": "web", "repo": repos["web"].url, "pack": ["app"],
                 "build": build_loop(build_seconds, stop_file), "build_timeout": 3600,
                 "stages": stages("srv/web")},
                {"name": "api", "repo": repos["api"].url, "pack": ["app"],
                 "stages": stages("srv/api", "shop-db")},
                {"name": "worker", "repo": repos["worker"].url, "pack": ["app"],
                 "stages": stages("srv/worker")},
            ]}]})


def seed_orders(runtime: Runtime, count: int) -> list[int]:
    """``count`` orders of alice's: 1-3 services, SQL on some; 70% submitted, 10% of
    those cancelled again, the rest drafts. Their ids."""
    rng = random.Random(SEED)
    ids: list[int] = []
    with runtime.store.session() as session:
        alice = users.acting_user(session, "alice")
        for n in range(count):
            services = sorted(rng.sample(SERVICES, rng.randint(1, 3)))
            items = []
            for service in services:
                sql = ""
                if service == "api" and rng.random() < 0.6:
                    sql = "".join(f"ALTER TABLE t{n} ADD COLUMN c{k} INTEGER NOT NULL "
                                  f"DEFAULT {k};\n" for k in range(rng.randint(1, 6)))
                items.append(ItemRequest(service, rng.choice(BRANCHES), sql))
            order = order_service.create_order(session, alice, "shop", items,
                                               f"order {n}: {len(items)} service(s)")
            ids.append(order.id)
            roll = rng.random()
            if roll < 0.7:
                order_service.transition(session, order.id, "submit", alice)
            if roll < 0.07:
                order_service.transition(session, order.id, "cancel", alice,
                                         reason="superseded")
            if n % 50 == 49:
                session.commit()
        session.commit()
    return ids


# -- the server ------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    profile: Path | None

    def cpu_seconds(self) -> float:
        """user + system CPU of the server process so far (all its threads)."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_env(home: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_")}
    env.update(GOLIVE_HOME=str(home), GOLIVE_DATABASE_URL=url, GOLIVE_TASKS="inline")
    return env


@contextmanager
def running_server(home: Path, url: str, work: Path, profile: bool,
                   what_if: list[str]) -> Iterator[Server]:
    """``golive server`` on a free port until the block ends (through ``serve`` below
    when it is profiled or patched); stopped with SIGTERM (its deployment ends first),
    then SIGKILL."""
    port = free_port()
    args = ["server", "--host", "127.0.0.1", "--port", str(port)]
    profile_path = work / "server-profile.json" if profile else None
    if profile or what_if:
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve",
                str(profile_path or ""), "--what-if", ",".join(what_if), "--", *args]
    else:
        golive = Path(sys.executable).with_name("golive")
        argv = [str(golive), *args] if golive.exists() else [
            sys.executable, "-c", "from golive.cli.main import run; run()", *args]
    log = work / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=server_env(home, url), stdout=out, stderr=out,
                                   stdin=subprocess.DEVNULL)
    server = Server(process, f"http://127.0.0.1:{port}", log, profile_path)
    try:
        wait_healthy(server)
        yield server
    finally:
        stop(process)


def server_errors(log: Path, top: int = 3) -> list[str]:
    """The exceptions the server logged, most frequent first (``N x Error: message``)."""
    found: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout)): (.*)", line)
        if match:
            key = f"{match[1]}: {match[2][:200]}"
            found[key] = found.get(key, 0) + 1
    return [f"{n} x {text}" for text, n in sorted(found.items(), key=lambda kv: -kv[1])[:top]]


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"the server exited with {server.process.returncode}:\n"
                             + server.log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer /healthz in {timeout:g} s")


def stop(process: subprocess.Popen[bytes], grace: float = 60.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the deployment --------------------------------------------------------------------


def start_deployment(server: Server, token: str, order_id: int) -> int:
    """Deploy the order on test through the API (``order.deploy``): it runs on the
    server's inline runner, in the server process, as with ``golive server`` for a team.
    The deployment's id."""
    answer = httpx.post(f"{server.url}{API}/orders/{order_id}/deploy", json={},
                        headers=bearer(token), timeout=30)
    if answer.status_code >= 300:
        raise SystemExit(f"POST /orders/{order_id}/deploy answered {answer.status_code}: "
                         f"{answer.text[:500]}")
    return int(answer.json()["id"])


def log_lines(runtime: Runtime, deployment_id: int) -> int:
    with runtime.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(LogLine)
                                  .where(LogLine.deployment_id == deployment_id)) or 0)


def deployment_end(runtime: Runtime, deployment_id: int, timeout: float = 120.0) -> str:
    """The deployment's status once it has ended (or whatever it is after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        with runtime.store.session() as session:
            status = session.get_one(Deployment, deployment_id).status
        if status not in ("pending", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def wait_for_build(runtime: Runtime, deployment_id: int, timeout: float = 60.0) -> None:
    """Until the build prints (the deployment planned, merged and began to build)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runtime.store.session() as session:
            if session.scalar(select(LogLine.id).where(
                    LogLine.deployment_id == deployment_id,
                    LogLine.text.like("%build line%")).limit(1)) is not None:
                return
            status = session.get_one(Deployment, deployment_id).status
        if status in ("failed", "done", "interrupted", "cancelled"):
            raise SystemExit(f"deployment {deployment_id} ended ({status}) before building")
        time.sleep(0.1)
    raise SystemExit(f"deployment {deployment_id} printed no build line in {timeout:g} s")


# -- the load --------------------------------------------------------------------------


@dataclass
class Sample:
    endpoint: str
    seconds: float
    status: int
    in_window: bool
    """Answered before the measured time ended (counts for requests/s)."""


@dataclass
class EventsRead:
    status: int = 0
    events: int = 0
    data_bytes: int = 0
    error: str = ""


async def client(index: int, url: str, token: str, order_ids: list[int],
                 measure_from: float, until: float, pause: float,
                 samples: list[Sample]) -> None:
    """One client: list, a random order, list, ... until ``until``; every request sent
    from ``measure_from`` on is recorded (and awaited, even when it ends late)."""
    rng = random.Random(SEED + index)
    turn = index % 2
    async with httpx.AsyncClient(base_url=url, headers=bearer(token), timeout=60) as http:
        while (now := time.perf_counter()) < until:
            endpoint = "list" if turn % 2 == 0 else "detail"
            path = f"{API}/orders"
            if endpoint == "detail":
                path += f"/{rng.choice(order_ids)}"
            turn += 1
            try:
                answer = await http.get(path)
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            if now >= measure_from:
                end = time.perf_counter()
                samples.append(Sample(endpoint, end - now, status, end <= until))
            if pause:
                await asyncio.sleep(pause)


async def read_events(url: str, token: str, deployment_id: int, read: EventsRead) -> None:
    """Read the deployment's live events until cancelled."""
    async with httpx.AsyncClient(base_url=url, headers=bearer(token),
                                 timeout=httpx.Timeout(60, read=None)) as http:
        try:
            async with http.stream("GET", f"{API}/deployments/{deployment_id}/events",
                                   headers={"Accept": "text/event-stream"}) as answer:
                read.status = answer.status_code
                if answer.status_code != 200:
                    return
                async for line in answer.aiter_lines():
                    if line.startswith("data:"):
                        read.data_bytes += len(line)
                    elif not line:
                        read.events += 1
        except httpx.HTTPError as exc:
            read.error = f"{type(exc).__name__}: {exc}"


async def load(url: str, token: str, order_ids: list[int], deployment_id: int, clients: int,
               warmup: float, seconds: float, pause: float, server: Server,
               count_lines: Callable[[], int]) -> Measured:
    """Run the clients and the events reader; the figures of the measured window."""
    samples: list[Sample] = []
    read = EventsRead()
    events = asyncio.create_task(read_events(url, token, deployment_id, read))
    start = time.perf_counter()
    measure_from, until = start + warmup, start + warmup + seconds
    tasks = [asyncio.create_task(client(i, url, token, order_ids, measure_from, until, pause,
                                        samples)) for i in range(clients)]
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu0, server0 = process_cpu(), server.cpu_seconds()
    lines0 = await asyncio.to_thread(count_lines)
    await asyncio.sleep(max(0.0, until - time.perf_counter()))
    cpu1, server1 = process_cpu(), server.cpu_seconds()
    lines = await asyncio.to_thread(count_lines) - lines0
    await asyncio.gather(*tasks)
    drain = time.perf_counter() - until
    events.cancel()
    try:
        await events
    except asyncio.CancelledError:
        pass
    return Measured(samples, seconds, drain, server1 - server0, cpu1 - cpu0, lines, read)


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- figures ---------------------------------------------------------------------------


@dataclass
class Measured:
    samples: list[Sample]
    window_s: float
    drain_s: float
    """From the end of the window to the last answer of a request sent in it."""
    server_cpu_s: float
    client_cpu_s: float
    log_lines: int
    """Log lines the deployment wrote in the window."""
    events: EventsRead


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


@dataclass
class Figures:
    requests: int
    per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    @classmethod
    def of(cls, samples: list[Sample], window: float) -> Figures:
        """Latencies of every request sent in the window; requests/s of those answered
        in it."""
        ms = sorted(s.seconds * 1000 for s in samples)
        answered = sum(1 for s in samples if s.in_window)
        return cls(len(samples), answered / window if window else 0.0,
                   percentile(ms, 50), percentile(ms, 90), percentile(ms, 99),
                   ms[-1] if ms else 0.0, sum(1 for s in samples if s.status != 200))


@dataclass
class StoreResult:
    store: str
    version: str
    all: Figures
    by_endpoint: dict[str, Figures]
    window_s: float
    drain_s: float
    server_cpu_s: float
    client_cpu_s: float
    load_average: str
    """The machine's 1-minute load average before and after the run (it is shared)."""
    log_lines_in_window: int
    deployment_status_after: str
    events: EventsRead
    error_statuses: dict[str, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    """The exceptions in the server's log, most frequent first."""
    profile: dict[str, Any] | None = None


# -- one store -------------------------------------------------------------------------


def store_version(backend: str) -> str:
    if backend == "sqlite":
        import sqlite3
        return f"SQLite {sqlite3.sqlite_version}"
    from sqlalchemy import create_engine, text
    engine = create_engine(admin_url(backend))
    try:
        with engine.connect() as conn:
            return "PostgreSQL " + str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def check_answers(url: str, token: str, order_ids: list[int]) -> None:
    """The list holds every order and a detail has its items: a broken API fails here
    instead of being timed."""
    listed = httpx.get(f"{url}{API}/orders", headers=bearer(token), timeout=30)
    if listed.status_code != 200:
        raise SystemExit(f"GET /orders answered {listed.status_code}: {listed.text[:500]}")
    if len(listed.json()) < min(len(order_ids), LIST_LIMIT):
        raise SystemExit(f"GET /orders listed {len(listed.json())} orders, "
                         f"not {len(order_ids)}")
    shown = httpx.get(f"{url}{API}/orders/{order_ids[-1]}", headers=bearer(token), timeout=30)
    if shown.status_code != 200 or not shown.json().get("items"):
        raise SystemExit(f"GET /orders/{order_ids[-1]} answered {shown.status_code}: "
                         f"{shown.text[:500]}")


def run_store(backend: str, args: argparse.Namespace) -> StoreResult:
    with tempfile.TemporaryDirectory(prefix="golive-bench-") as tmp, \
            scratch_database(backend, Path(tmp)) as url:
        root = Path(tmp)
        home = root / "golive-home"
        for name in ("GOLIVE_URL", "GOLIVE_TOKEN", "GOLIVE_SECRET_KEY", "GOLIVE_USER"):
            os.environ.pop(name, None)
        os.environ.update(GOLIVE_HOME=str(home), GOLIVE_DATABASE_URL=url)
        runtime = open_runtime(get_settings())
        try:
            started = time.perf_counter()
            stop_file = root / "stop-the-build"
            make_world(root / "world", runtime, args.warmup + args.seconds + 120, stop_file)
            order_ids = seed_orders(runtime, args.orders)
            deploy_order = file_order(runtime, "alice", "shop",
                                      [ItemRequest("web", "feature/x")], "the deploying order")
            order_ids.append(deploy_order)
            token = api_token(runtime, "alice")
            print(f"{backend}: world and {len(order_ids)} orders in "
                  f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
            with running_server(home, url, root, args.profile, args.what_if) as server:
                check_answers(server.url, token, order_ids)
                deployment_id = start_deployment(server, token, deploy_order)
                wait_for_build(runtime, deployment_id)
                load_before = os.getloadavg()[0]
                measured = asyncio.run(load(
                    server.url, token, order_ids, deployment_id, args.clients, args.warmup,
                    args.seconds, args.pause, server,
                    lambda: log_lines(runtime, deployment_id)))
                stop_file.touch()
                status = deployment_end(runtime, deployment_id)
            profile = (json.loads(server.profile.read_text())
                       if server.profile is not None and server.profile.exists() else None)
            logged = server_errors(server.log)
        finally:
            runtime.close()
    errors: dict[str, int] = {}
    for sample in measured.samples:
        if sample.status != 200:
            errors[str(sample.status)] = errors.get(str(sample.status), 0) + 1
    by_endpoint = {name: Figures.of([s for s in measured.samples if s.endpoint == name],
                                    measured.window_s) for name in ("list", "detail")}
    return StoreResult(backend, store_version(backend),
                       Figures.of(measured.samples, measured.window_s), by_endpoint,
                       measured.window_s, measured.drain_s, measured.server_cpu_s,
                       measured.client_cpu_s, f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
                       measured.log_lines, status, measured.events, errors, logged, profile)


# -- the report ------------------------------------------------------------------------


def table(results: list[StoreResult], clients: int) -> list[str]:
    head = (f"{'store':<12}{'endpoint':<9}{'requests':>9}{'req/s':>9}{'p50 ms':>9}"
            f"{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}")
    lines = [head, "-" * len(head)]
    for result in results:
        name = STORE_NAMES.get(result.store, result.store)
        for label, figures in (("all", result.all), *result.by_endpoint.items()):
            lines.append(f"{name:<12}{label:<9}{figures.requests:>9}{figures.per_s:>9.1f}"
                         f"{figures.p50_ms:>9.1f}{figures.p90_ms:>9.1f}{figures.p99_ms:>9.1f}"
                         f"{figures.max_ms:>9.1f}{figures.errors:>8}")
    lines.append("")
    for result in results:
        name = STORE_NAMES.get(result.store, result.store)
        window = result.window_s or 1.0
        answered = result.all.per_s * window
        per_request = f"{result.server_cpu_s / answered * 1000:.0f}" if answered else "-"
        events = result.events
        seen = (f"HTTP {events.status}, {events.events} events, {events.data_bytes} bytes of "
                f"data" if events.status else f"no answer ({events.error or 'not started'})")
        lines += [
            f"{name} ({result.version}): {result.window_s:g} s measured, {clients} clients, "
            f"the last answer {result.drain_s:.1f} s after the end; load average "
            f"{result.load_average}",
            f"  CPU in the window: server {result.server_cpu_s:.1f} s "
            f"({result.server_cpu_s / window:.0%} of one core; {per_request} ms per request "
            f"answered), load generator {result.client_cpu_s:.1f} s "
            f"({result.client_cpu_s / window:.0%})",
            f"  deployment (in the server): {result.log_lines_in_window} log lines "
            f"written in the window ({result.log_lines_in_window / window:.0f}/s), "
            f"then it ended {result.deployment_status_after}; events client: {seen}",
        ]
        if result.error_statuses:
            lines.append("  errors by status (0 = no answer): " + ", ".join(
                f"{k}: {v}" for k, v in sorted(result.error_statuses.items())))
        lines += [f"  server log: {logged}" for logged in result.server_errors]
    by_store = {r.store: r for r in results}
    if "sqlite" in by_store and "postgresql" in by_store:
        lite, pg = by_store["sqlite"].all, by_store["postgresql"].all

        def ratio(a: float, b: float) -> str:
            return f"{a / b:.2f}x" if b else "-"

        lines += ["", f"PostgreSQL / SQLite: req/s {ratio(pg.per_s, lite.per_s)}, "
                  f"p50 {ratio(pg.p50_ms, lite.p50_ms)}, p99 {ratio(pg.p99_ms, lite.p99_ms)}"]
    lines.append("")
    for result in results:
        met = result.all.p99_ms < GOAL_P99_MS and result.all.errors == 0
        lines.append(f"goal p99 < {GOAL_P99_MS:g} ms, {STORE_NAMES.get(result.store)}: "
                     f"p99 {result.all.p99_ms:.1f} ms: {'met' if met else 'MISSED'}")
    return lines


def profile_report(result: StoreResult, top: int = 30) -> list[str]:
    data = result.profile or {}
    lines = [f"--- profile of the server, {STORE_NAMES.get(result.store)} "
             "(cProfile on; times are inflated, read them as shares) ---"]
    for name, row in sorted(data.get("operations", {}).items()):
        n = row["count"] or 1

        def ms(key: str, row: dict[str, float] = row, n: float = n) -> str:
            return f"{row[key] / n * 1000:.1f}"

        lines.append(
            f"{name}: {row['count']:.0f} requests, each in the route {ms('total')} ms = "
            f"authentication {ms('auth')} (of it waiting for a pooled connection "
            f"{ms('pool')}) + operation {ms('run')} + serialization {ms('to_json')} + "
            f"commit and response {ms('rest')}; {row['queries'] / n:.1f} SQL queries, "
            f"{ms('sql')} ms in the driver")
    lines.append(f"threads that ran requests: {data.get('threads', 0)}")
    for title in ("workers", "loop"):
        lines += ["", f"[{title}: {data.get(title + '_note', '')}]", data.get(title, "")]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per store")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of load before measuring (not counted)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--orders", type=int, default=200, help="orders filed before the run")
    parser.add_argument("--stores", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--profile", action="store_true",
                        help="run the server under cProfile with request timing; prints where "
                             "its time goes (the figures are then slower)")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds each client waits after an answer (0: none)")
    parser.add_argument("--what-if", type=lambda text: [w for w in text.split(",") if w],
                        default=[], metavar=",".join(WHAT_IF),
                        help="run the server with these changes patched in, to measure them "
                             "before anyone writes them: " + "; ".join(
                                 f"{k}: {v}" for k, v in WHAT_IF.items()))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve", type=str, help=argparse.SUPPRESS)
    parser.add_argument("server_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [w for w in args.what_if if w not in WHAT_IF]
    if unknown:
        parser.error(f"--what-if takes {', '.join(WHAT_IF)}, not {', '.join(unknown)}")
    if args.serve is not None:
        return serve(Path(args.serve) if args.serve else None, args.what_if, args.server_args)
    if args.server_args:
        parser.error(f"unexpected arguments: {' '.join(args.server_args)}")
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORE_NAMES]
    if unknown or not stores:
        parser.error(f"--stores takes sqlite and/or postgresql, not {', '.join(unknown)}")
    if (args.clients < 1 or args.seconds <= 0 or args.warmup < 0 or args.orders < 1
            or args.pause < 0):
        parser.error("--clients and --orders must be at least 1, --seconds above 0, "
                     "--warmup and --pause not negative")

    try:
        results = [run_store(store, args) for store in stores]
    except OperationalError as exc:
        print(f"cannot reach the database server: {exc.orig}\nstart it with `make services`, "
              "set GOLIVE_TEST_POSTGRES_URL, or pass --stores sqlite", file=sys.stderr)
        return 2
    load_avg = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"API load: {args.clients} clients, each alternating GET /orders ({args.orders + 1} "
          f"orders) and GET /orders/N, "
          f"{f'{args.pause:g} s pause after each answer' if args.pause else 'no pause'}, "
          f"{args.seconds:g} s measured after "
          f"{args.warmup:g} s of warm-up, one deployment printing a line every "
          f"{LINE_EVERY_S * 1000:g} ms with one events client; {os.cpu_count()} CPUs, "
          f"load average {load_avg} at the end"
          + (f"; server patched: {', '.join(args.what_if)}" if args.what_if else "") + "\n")
    print("\n".join(table(results, args.clients)))
    if args.profile:
        for result in results:
            print("\n" + "\n".join(profile_report(result)))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2),
                             encoding="utf-8")
    broken = [r.store for r in results if r.all.errors or not r.all.requests]
    if broken:
        print(f"errors or no answers on: {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


# -- helper processes ------------------------------------------------------------------


def serve(out: Path | None, what_if: list[str], server_args: list[str]) -> int:
    """``golive server`` with the ``what_if`` changes patched in and, with ``out``,
    instrumented (see ``instrument``)."""
    from golive.cli.main import run

    if "threads-8" in what_if:
        _patch_threads(8)
    write = instrument(out) if out is not None else None

    def _stopped(signum: int, _frame: Any) -> None:
        raise SystemExit(0)  # uvicorn raises the signal again once it has shut down

    signal.signal(signal.SIGTERM, _stopped)
    code = 0
    try:
        sys.argv = ["golive", *server_args]
        run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        if write is not None:
            write()
    return code


def _patch_threads(count: int) -> None:
    """The application's thread limiter (sync routes and the events poller) set to
    ``count`` when it starts."""
    from contextlib import asynccontextmanager

    import anyio.to_thread

    from golive.api import app as application
    original = application.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        made = original(*args, **kwargs)
        inner = made.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: Any) -> Any:
            anyio.to_thread.current_default_thread_limiter().total_tokens = count
            async with inner(app) as state:
                yield state

        made.router.lifespan_context = lifespan
        return made

    application.create_app = create_app


def instrument(out: Path) -> Callable[[], None]:
    """Profile and time the server in this process: each request's work on the thread
    pool runs under that thread's cProfile (enabled only inside the route, so idle threads
    add nothing) and is timed (authentication, the operation, serialization, SQL time and
    count); the event loop thread has a cProfile of its own. Returns the function that
    writes it all to ``out`` as JSON (call it when the server has stopped)."""
    import cProfile
    import threading

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    from golive.api import routes
    from golive.api.registry import OPERATIONS

    local = threading.local()
    lock = threading.Lock()
    workers: list[cProfile.Profile] = []
    totals: dict[str, dict[str, float]] = {}

    def timer(name: str) -> float:
        return float(getattr(local, name, 0.0))

    def add(name: str, seconds: float) -> None:
        setattr(local, name, timer(name) + seconds)

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(*_args: Any) -> None:
        local.sql_started = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(*_args: Any) -> None:
        if getattr(local, "active", False):
            add("sql", time.perf_counter() - local.sql_started)
            add("queries", 1)

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                add(name, time.perf_counter() - started)
        wrapper.__doc__, wrapper.__wrapped__ = function.__doc__, function  # type: ignore[attr-defined]
        return wrapper

    for op in OPERATIONS.values():
        _ = op.params, op.path_params, op.body_param  # cached before run is wrapped
        object.__setattr__(op, "run", timed("run", op.run))
    Pool.connect = timed("pool", Pool.connect)  # type: ignore[method-assign]
    routes.authenticate = timed("auth", routes.authenticate)
    routes.to_json = timed("to_json", routes.to_json)
    original_execute = routes.execute

    def execute(request: Any, op: Any, params: dict[str, Any]) -> Any:
        profiler = getattr(local, "profiler", None)
        if profiler is None:
            profiler = local.profiler = cProfile.Profile()
            with lock:
                workers.append(profiler)
        for name in ("sql", "queries", "pool", "auth", "run", "to_json"):
            setattr(local, name, 0.0)
        local.active = True
        started = time.perf_counter()
        profiler.enable()
        try:
            return original_execute(request, op, params)
        finally:
            profiler.disable()
            total = time.perf_counter() - started
            local.active = False
            with lock:
                row = totals.setdefault(op.name, dict.fromkeys(
                    ("count", "total", "pool", "auth", "run", "to_json", "rest", "sql",
                     "queries"), 0.0))
                row["count"] += 1
                row["total"] += total
                for name in ("pool", "auth", "run", "to_json", "sql", "queries"):
                    row[name] += timer(name)
                row["rest"] += total - timer("auth") - timer("run") - timer("to_json")

    routes.execute = execute
    loop = cProfile.Profile()
    loop.enable()

    def write() -> None:
        loop.disable()
        with lock:
            out.write_text(json.dumps({
                "operations": totals,
                "threads": len(workers),
                "workers_note": "the thread pool, inside the routes, all requests merged; "
                                "wall time per function (GIL waits included)",
                "workers": _stats_text(workers),
                "loop_note": "the event loop thread (HTTP parsing, FastAPI, sending)",
                "loop": _stats_text([loop]),
            }), encoding="utf-8")

    return write


def _stats_text(profiles: list[Any], top: int = 35) -> str:
    """The top functions by own time and by cumulative time (golive's only), with the
    interpreter's and the virtual environment's prefixes cut off the paths."""
    import io
    import pstats
    if not profiles:
        return "(nothing profiled)"
    text = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=text)
    for other in profiles[1:]:
        stats.add(other)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats("golive", top)
    result = text.getvalue()
    for prefix in sorted({sys.prefix, sys.base_prefix, str(Path.cwd())}, key=len, reverse=True):
        result = result.replace(prefix + "/", "")
    return result


if __name__ == "__main__":
    sys.exit(main())
