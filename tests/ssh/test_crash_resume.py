"""Crash test: golive SIGKILLed at a random moment of a release, then resumed.

One project (stages: just ``prod``, so the first deploy is a release and success means
``done``) with two services, ``api`` and ``web``, in artifact mode on the same three
SSH hosts (different paths, ``batch: 1``), both with SQL on one MariaDB target database
(a scratch database).

A calibration release measures the wall time T of one uninterrupted ``golive order
release`` and when its steps ran. Then, RUNS times: a new commit on each service's
branch (``VERSION`` = the run number), an order with two INSERTs per service, ``golive
order release N`` as a real process, SIGKILLed (its whole process group) after a random
delay (a seeded ``random.Random``; the seed is printed, ``CRASH_SEED`` changes it): on
odd runs uniform in [0, T] after the process started; on even runs in the receive, SQL
or switch step (one drawn at random, then a moment in it) of the calibration run's
timeline, counted from the moment the deployment started (most of T is the CLI's cold
start). The phase the kill hit is read
from the store; then ``golive order deploy N`` (``release`` when no deployment was
recorded yet) runs until it exits 0 — a statement left ``unknown`` is resolved as
reality says (the rows it inserted: 1 → executed, 0 → retry).

After each run: the order is ``done``, with one deployment (the interrupted one,
resumed once); the steps finished before the kill were kept, not redone; every host
serves a complete release of this run and nothing half made is left; each statement
inserted exactly one row; the SQL ledger has one success per statement and nothing
unknown or running; the commit ledger names the release the hosts serve; main is the
order's merge, tagged.

The tally of kill points per phase is printed (``-s``), recorded with
``record_property`` and written to ``crash-tally.json`` under the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from ssh_world import ssh_host

from golive.domain.release import MARKER
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import (
    CommitLedger,
    Deployment,
    DeploymentStep,
    LogLine,
    Service,
    SqlExecution,
    TargetDatabase,
)
from golive.testing.databases import scratch_database
from golive.testing.sshd import SshServer
from golive.testing.world import Repo, apply_config, commit, file_order, git, make_repo, rows

RUNS = 30
SEED = int(os.environ.get("CRASH_SEED", "20261126"))
MAX_RESTARTS = 4
CLI_TIMEOUT = 120.0

GOLIVE = Path(sys.executable).parent / "golive"
SERVICES = ("api", "web")
STATEMENTS = 2  # per service and order
SQL_SECONDS = 0.05
"""How long each statement runs on the server: a kill mid-statement (``unknown``) is
likelier than with a bare INSERT ... VALUES."""
HOSTS = ("h1", "h2", "h3")
BRANCH = "feature/x"
BUILD = "mkdir -p dist && cp -r src/. dist/"
DATABASE = "shop-db"
# prod is the only stage: a release, by a releaser; rita also settles SQL
MEMBERS = [{"user": "alice", "roles": ["developer"]},
           {"user": "rita", "roles": ["releaser"]}]
RELEASER = "rita"
RESOLVER = "rita"
PHASES = ("before start", "plan", "build", "receive", "sql", "switch", "jobs", "after end")
RESOLVE = re.compile(r"golive sql resolve (\d+) ([a-z]+:\d+) --as executed\|retry")
KEPT = {  # what a resumed run says of a step an interrupted run finished
    "build": "reused",
    "receive": "received before the interruption and still complete: kept",
    "switch": "before the interruption: kept",
    "sql": f"0 ran, {STATEMENTS} already ran",
}

StepKey = tuple[str, int | None, int | None]


@dataclass
class Outcome:
    """What one golive process did."""

    args: list[str]
    returncode: int
    output: str
    seconds: float

    def __str__(self) -> str:
        return (f"$ golive {' '.join(self.args)} → {self.returncode} in {self.seconds:.2f}s\n"
                f"{self.output}")


@dataclass
class Kill:
    """Where a SIGKILL landed (read from the store before anything recovered it)."""

    phase: str
    deployment_id: int | None
    done_steps: set[StepKey]
    last_step_id: int
    finished_services: set[int]
    """Services whose commit ledger the killed run recorded (a resume leaves them be)."""


@dataclass
class CrashWorld:
    root: Path
    runtime: Runtime
    server: SshServer
    target: Engine
    """The MariaDB target database (autocommit)."""
    repos: dict[str, Repo] = field(default_factory=dict)

    # -- set up -------------------------------------------------------------------------

    def configure(self, target_url: str) -> None:
        for svc in SERVICES:
            self.repos[svc] = make_repo(
                self.root, svc, {"src/index.html": f"<h1>{svc}</h1>\n", "src/VERSION": "-\n"},
                branches={BRANCH: {"src/feature.txt": f"{svc} feature\n"}})
        apply_config(self.runtime, self.root / "golive.yaml", {
            "hosts": [ssh_host(self.server, i) for i in range(len(HOSTS))],
            "databases": [{"name": DATABASE, "url": target_url}],
            "projects": [{
                "name": "shop", "stages": ["prod"], "members": MEMBERS,
                "services": [{
                    "name": svc, "repo": self.repos[svc].url, "main_branch": "main",
                    "build": BUILD, "pack": ["dist"],
                    "stages": {"prod": {"mode": "artifact", "path": f"srv/{svc}",
                                        "hosts": list(HOSTS), "batch": 1,
                                        "database": DATABASE}}} for svc in SERVICES],
            }]})
        with self.target.connect() as conn:
            conn.execute(text("CREATE TABLE marks (id INT AUTO_INCREMENT PRIMARY KEY, "
                              "run INT NOT NULL, service VARCHAR(20) NOT NULL, "
                              "n INT NOT NULL)"))

    def new_order(self, run: int) -> int:
        """A change on each service's branch naming the run, and a submitted order with
        ``STATEMENTS`` INSERTs per service."""
        for svc in SERVICES:
            commit(self.repos[svc], BRANCH, {"src/VERSION": f"{run}\n"}, f"{svc}: run {run}")
        items = [ItemRequest(svc, BRANCH, "\n".join(
            f"INSERT INTO marks (run, service, n) SELECT {run}, '{svc}', {n} FROM DUAL "
            f"WHERE SLEEP({SQL_SECONDS}) = 0;" for n in range(1, STATEMENTS + 1)))
            for svc in SERVICES]
        return file_order(self.runtime, "alice", "shop", items, f"crash run {run}")

    # -- golive as a process ------------------------------------------------------------

    def start(self, args: list[str], user: str, log: Path) -> subprocess.Popen[bytes]:
        """``golive ARGS`` in a process group of its own (its children die with it)."""
        settings = self.runtime.settings
        env = {**os.environ, "GOLIVE_HOME": str(settings.home),
               "GOLIVE_DATABASE_URL": settings.store_url, "GOLIVE_USER": user}
        with open(log, "wb") as out:
            return subprocess.Popen([str(GOLIVE), *args], env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)  # the group: git, the build, ...
            process.wait()  # reaped: a zombie would look alive to the recovery

    def golive(self, args: list[str], user: str = RELEASER) -> Outcome:
        """``golive ARGS`` to its end."""
        log = self.root / "cli.out"
        started = time.monotonic()
        process = self.start(args, user, log)
        try:
            process.wait(timeout=CLI_TIMEOUT)
        finally:
            self.kill(process)
        return Outcome(args, process.returncode, log.read_text(errors="replace"),
                       time.monotonic() - started)

    def release_killed(self, order_id: int, delay: float, *, from_deployment: bool
                       ) -> Outcome:
        """``golive order release N`` SIGKILLed ``delay`` seconds after it started (or
        after its deployment started, with ``from_deployment``) unless it ended before
        (returncode -9 when killed)."""
        log = self.root / "release.out"
        args = ["order", "release", str(order_id), "--json"]
        started = time.monotonic()
        process = self.start(args, RELEASER, log)
        try:
            if from_deployment:
                anchor = self.wait_started(order_id, process)
                if anchor is not None:
                    delay -= time.time() - anchor
            try:
                process.wait(timeout=max(0.0, delay))
            except subprocess.TimeoutExpired:
                pass
        finally:
            self.kill(process)
        return Outcome(args, process.returncode, log.read_text(errors="replace"),
                       time.monotonic() - started)

    def wait_started(self, order_id: int, process: subprocess.Popen[bytes]) -> float | None:
        """When (time.time()) the order's deployment started running, as soon as the
        store says it did; None if the process ended first."""
        deadline = time.monotonic() + CLI_TIMEOUT
        while process.poll() is None:
            found = self.deployments(order_id)
            if found and found[-1].started_at is not None:
                return found[-1].started_at.timestamp()
            assert time.monotonic() < deadline, f"order {order_id}: no deployment started"
            time.sleep(0.005)
        return None

    # -- the store ----------------------------------------------------------------------

    def state(self, order_id: int) -> str:
        with self.runtime.store.session() as session:
            return get_order(session, order_id).state

    def deployments(self, order_id: int) -> list[Deployment]:
        return rows(self.runtime, Deployment, Deployment.order_id == order_id)

    def steps(self, deployment_id: int) -> list[DeploymentStep]:
        return rows(self.runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id)

    def log_text(self, deployment_id: int) -> str:
        return "\n".join(f"[{ln.level} {ln.service} {ln.host}] {ln.text}" for ln in rows(
            self.runtime, LogLine, LogLine.deployment_id == deployment_id))

    def kill_point(self, order_id: int) -> Kill:
        """Where the kill landed: the latest step running then (when none ran, the last
        one done); "before start" when no deployment was running yet, "plan" when it ran
        but no step had begun (fetching, planning), "after end" when the order was done."""
        found = self.deployments(order_id)
        if not found:
            return Kill("before start", None, set(), 0, set())
        steps = self.steps(found[-1].id)
        done = [s for s in steps if s.status == "done"]
        running = [s for s in steps if s.status == "running"]
        if self.state(order_id) == "done":
            phase = "after end"
        elif running:
            phase = running[-1].name
        elif done:
            phase = done[-1].name
        else:
            phase = "plan" if found[-1].status == "running" else "before start"
        ledger = rows(self.runtime, CommitLedger, CommitLedger.order_id == order_id)
        return Kill(phase, found[-1].id, {(s.name, s.service_id, s.host_id) for s in done},
                    max((s.id for s in steps), default=0), {e.service_id for e in ledger})

    def timeline(self, order_id: int) -> dict[str, tuple[float, float]]:
        """step name → (first start, last end) in the order's deployment, in seconds after
        the deployment started."""
        (deployment,) = self.deployments(order_id)
        assert deployment.started_at is not None
        began = deployment.started_at.timestamp()
        spans: dict[str, tuple[float, float]] = {}
        for s in self.steps(deployment.id):
            assert s.started_at is not None and s.finished_at is not None
            start, end = s.started_at.timestamp() - began, s.finished_at.timestamp() - began
            first, last = spans.get(s.name, (start, end))
            spans[s.name] = (min(first, start), max(last, end))
        return spans

    def statements(self, order_id: int) -> dict[int, tuple[str, int]]:
        """statement id → (service, number) of the order's statements."""
        with self.runtime.store.session() as session:
            order = get_order(session, order_id)
            return {s.id: (item.service.name, s.position + 1)
                    for item in order.items for s in item.statements}

    # -- reality ------------------------------------------------------------------------

    def wait_quiet(self) -> None:
        """Until no session runs a statement on the target database (a killed client's
        statement runs on to its end on the server): only then is a count the truth."""
        deadline = time.monotonic() + 60
        with self.target.connect() as conn:
            while conn.execute(text(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                    "AND ID <> CONNECTION_ID() AND COMMAND <> 'Sleep'")).scalar_one():
                assert time.monotonic() < deadline, "a statement still runs on the database"
                time.sleep(0.02)

    def inserted(self, run: int) -> Counter[tuple[str, int]]:
        """(service, n) → rows inserted for ``run`` in the target database."""
        with self.target.connect() as conn:
            found = conn.execute(text("SELECT service, n, COUNT(*) FROM marks WHERE run = :r "
                                      "GROUP BY service, n"), {"r": run})
            return Counter({(str(svc), int(n)): int(count) for svc, n, count in found})

    def base(self, host: str, svc: str) -> Path:
        return self.server.users[HOSTS.index(host)].home / "srv" / svc

    def current(self, host: str, svc: str) -> str | None:
        link = self.base(host, svc) / "current"
        if not link.is_symlink():
            return None
        target = os.readlink(link)
        assert target.startswith("releases/"), (host, svc, target)
        return target.removeprefix("releases/")


def restart_until_done(world: CrashWorld, order_id: int, run: int) -> list[str]:
    """Resume (or start) the order's release until it is done, settling an ``unknown``
    statement as the target database says; the resolutions made."""
    resolutions: list[str] = []
    attempts: list[Outcome] = []
    while world.state(order_id) != "done":
        if len(attempts) >= MAX_RESTARTS:
            raise AssertionError(f"run {run}: order {order_id} not done after "
                                 f"{MAX_RESTARTS} restarts:\n" + "\n".join(map(str, attempts)))
        verb = "deploy" if world.deployments(order_id) else "release"
        outcome = world.golive(["order", verb, str(order_id), "--json"])
        attempts.append(outcome)
        if outcome.returncode == 0:
            continue
        refusal = RESOLVE.search(" ".join(outcome.output.split()))
        assert outcome.returncode == 1 and refusal, \
            f"run {run}: an unexpected failure:\n" + "\n".join(map(str, attempts))
        assert int(refusal.group(1)) == order_id
        ref = refusal.group(2)
        svc, number = ref.split(":")
        world.wait_quiet()
        count = world.inserted(run)[(svc, int(number))]
        assert count in (0, 1), f"run {run}: statement {ref} inserted {count} rows"
        how = "executed" if count == 1 else "retry"
        settled = world.golive(["sql", "resolve", str(order_id), ref, "--as", how], RESOLVER)
        assert settled.returncode == 0, str(settled)
        assert f"resolved as {how}" in settled.output, str(settled)
        resolutions.append(f"{ref} {how}")
    return resolutions


def check_hosts(world: CrashWorld, run: int, rid: str, context: str) -> None:
    """Every host serves release ``rid`` of this run, complete, and keeps nothing half
    made (an unpacked folder without its marker, an upload, a temporary link)."""
    for svc in SERVICES:
        for host in HOSTS:
            where = (context, svc, host)
            assert world.current(host, svc) == rid, (*where, world.current(host, svc))
            release = world.base(host, svc) / "releases" / rid
            assert (release / MARKER).read_text().split()[0] == rid, where
            assert (release / "dist" / "VERSION").read_text() == f"{run}\n", where
            assert (release / "dist" / "index.html").is_file(), where
            assert (release / "dist" / "feature.txt").is_file(), where
            kept = list((world.base(host, svc) / "releases").iterdir())
            assert [p.name for p in kept if not (p / MARKER).is_file()] == [], where
            assert [p.name for p in world.base(host, svc).iterdir()
                    if p.name.startswith(".")] == [], where


def check_sql(world: CrashWorld, order_id: int, run: int, context: str) -> None:
    """Each statement inserted one row, and the SQL ledger says so: one success per
    statement on the database, nothing left unknown or running."""
    expected = Counter({(svc, n): 1 for svc in SERVICES for n in range(1, STATEMENTS + 1)})
    world.wait_quiet()
    assert world.inserted(run) == expected, (context, world.inserted(run))
    statements = world.statements(order_id)
    assert sorted(statements.values()) == sorted(expected)
    (database,) = rows(world.runtime, TargetDatabase, TargetDatabase.name == DATABASE)
    executions = rows(world.runtime, SqlExecution, SqlExecution.order_id == order_id)
    assert [e for e in executions if e.status in ("unknown", "running")] == [], context
    successes = Counter(statements[e.statement_id] for e in executions
                        if e.status == "success")
    assert successes == expected, (context, successes)
    assert {(e.database_id, e.stage) for e in executions} == {(database.id, "prod")}, context


def check_ledger(world: CrashWorld, order_id: int, deployment: Deployment,
                 context: str) -> None:
    """The commit ledger names the release every host serves; main is the merge,
    tagged ``golive/<order>``."""
    names = {s.id: s.name for s in rows(world.runtime, Service)}
    ledger = rows(world.runtime, CommitLedger, CommitLedger.order_id == order_id)
    assert sorted(names[e.service_id] for e in ledger) == sorted(SERVICES), context
    for entry in ledger:
        svc = names[entry.service_id]
        assert (entry.stage, entry.deployment_id) == ("prod", deployment.id), context
        assert entry.release_id == deployment.release_id, (context, svc, entry.release_id)
        for host in HOSTS:
            assert world.current(host, svc) == entry.release_id, (context, svc, host)
        repo = world.repos[svc]
        assert repo.head("main") == entry.deployed_commit, (context, svc)
        assert git(repo.origin, "rev-parse", f"golive/{order_id}^{{commit}}") == \
            entry.deployed_commit, (context, svc)
        assert entry.branch_commit == repo.head(BRANCH), (context, svc)


def check_resumed(world: CrashWorld, deployment: Deployment, kill: Kill,
                  context: str) -> None:
    """A deployment killed before its end was resumed once, and every step its killed
    run finished was checked, not done again."""
    killed_mid_run = kill.deployment_id is not None and kill.phase != "after end"
    assert deployment.resumes == (1 if killed_mid_run else 0), (context, deployment.resumes)
    if not killed_mid_run or not kill.done_steps:
        return
    log = world.log_text(deployment.id)
    assert "resuming: " in log and "not done again" in log, (context, log)
    latest: dict[StepKey, DeploymentStep] = {}
    for s in world.steps(deployment.id):
        if s.id > kill.last_step_id:
            latest[(s.name, s.service_id, s.host_id)] = s
    for key in sorted(kill.done_steps, key=str):
        again = latest.get(key)
        if again is None:  # a service finished before the kill is unchanged: skipped
            assert key[1] in kill.finished_services, (context, key)
            continue
        assert again.status == "done", (context, key, again.status, again.message)
        assert KEPT[key[0]] in again.message, (context, key, again.message)


def check_run(world: CrashWorld, order_id: int, run: int, kill: Kill | None) -> None:
    """Everything true after a run, killed or not, once it is done."""
    found = world.deployments(order_id)
    assert len(found) == 1, (f"run {run}, order {order_id}: deployments "
                             f"{[(d.id, d.status) for d in found]}, not one resumed")
    deployment = found[0]
    context = f"run {run}, order {order_id}, deployment {deployment.id}"
    state = world.state(order_id)
    assert state == "done", f"{context}: {state}\n{world.log_text(deployment.id)}"
    assert deployment.status == "succeeded", context
    rid = deployment.release_id
    assert rid.endswith(f"-d{deployment.id}"), (context, rid)
    check_hosts(world, run, rid, context)
    check_sql(world, order_id, run, context)
    check_ledger(world, order_id, deployment, context)
    if kill is not None:
        if kill.deployment_id is not None:
            assert deployment.id == kill.deployment_id, context  # resumed, not replaced
        check_resumed(world, deployment, kill, context)


@pytest.fixture
def target_url(tmp_path: Path) -> Iterator[str]:
    """A scratch MariaDB database: the stage's target database."""
    with scratch_database("mariadb", tmp_path) as url:
        yield url


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_resume(
        tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer, target_url: str,
        record_property: Any) -> None:
    began = time.monotonic()
    assert GOLIVE.is_file(), f"the golive console script is not at {GOLIVE}"
    target = create_engine(target_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    world = CrashWorld(tmp_path, sqlite_runtime, sshd, target)
    try:
        world.configure(target_url)

        # calibration: one release, uninterrupted: T and when its steps ran
        order_id = world.new_order(0)
        calibration = world.golive(["order", "release", str(order_id), "--json"])
        assert calibration.returncode == 0, str(calibration)
        check_run(world, order_id, 0, None)
        span = calibration.seconds
        timeline = world.timeline(order_id)
        # half the kills anywhere in [0, T] after the process started; the other half in
        # the receive, SQL or switch step (one drawn, then a moment in it) of the
        # calibration run's timeline, counted from when the deployment started
        hot = ("receive", "sql", "switch")
        rng = random.Random(SEED)
        print(f"\ncrash test: seed {SEED}, calibration release {span:.2f}s; steps after the "
              "deployment started: "
              + ", ".join(f"{name} {a:.2f}-{b:.2f}s" for name, (a, b) in timeline.items()))

        tally: Counter[str] = Counter()
        resolved: list[str] = []
        for run in range(1, RUNS + 1):
            order_id = world.new_order(run)
            anchored = run % 2 == 0
            delay = rng.uniform(*timeline[rng.choice(hot)]) if anchored else \
                rng.uniform(0, span)
            killed = world.release_killed(order_id, delay, from_deployment=anchored)
            if killed.returncode != -signal.SIGKILL:  # it ended first
                assert killed.returncode == 0, f"run {run}: {killed}"
            kill = world.kill_point(order_id)
            tally[kill.phase] += 1
            print(f"run {run:2}: kill {delay:4.2f}s after the "
                  f"{'deployment' if anchored else 'process'} started → {kill.phase:12} ",
                  end="", flush=True)
            resolutions = restart_until_done(world, order_id, run)
            resolved += [f"run {run}: {r}" for r in resolutions]
            print("; ".join(resolutions))
            check_run(world, order_id, run, kill)

        # nothing anywhere ran twice
        with target.connect() as conn:
            twice = list(conn.execute(text(
                "SELECT run, service, n, COUNT(*) FROM marks GROUP BY run, service, n "
                "HAVING COUNT(*) <> 1")))
            total = conn.execute(text("SELECT COUNT(*) FROM marks")).scalar_one()
        assert twice == [] and total == (RUNS + 1) * len(SERVICES) * STATEMENTS

        phases = {p: tally.get(p, 0) for p in PHASES} | dict(tally)
        report = {"seed": SEED, "runs": RUNS, "calibration_seconds": round(span, 2),
                  "phases": phases, "resolved": resolved,
                  "seconds": round(time.monotonic() - began, 1)}
        path = tmp_path / "crash-tally.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        record_property("kill_phases", json.dumps(phases))
        print(f"kill points per phase: {phases}")
        print(f"unknown statements resolved: {resolved or 'none'}")
        print(f"tally written to {path}; {report['seconds']}s in all")
        assert sum(tally.values()) == RUNS
        assert len([p for p in tally if tally[p]]) >= 4, phases
    finally:
        target.dispose()
