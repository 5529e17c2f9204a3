"""The ledger, pipeline and notification commands against a golive server (GOLIVE_URL and
GOLIVE_TOKEN) print what they print on the local data directory: the same stdout, stderr
and exit code for `sql list`, `order job list`, `board`, `lane list`, `notify log` and a
refused `sql resolve`. The server is the real application served by uvicorn on
127.0.0.1, on the SQLite store the local runs open, after a real deployment (SQL on a
SQLite target, a job on a job host, a lane held) told to a real DingTalk robot."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from golive.api.app import create_app
from golive.cli.main import main
from golive.domain.jobs import JobSpec
from golive.services import notify
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import Notification
from golive.testing.receivers import Robot, robot
from golive.testing.server import LiveServer, api_token, serve
from golive.testing.world import apply_config, deploy, file_order, local_hosts, make_repo, rows

SECRET = "SEC-Rl61-signing"
SQL = ("CREATE TABLE coupons (code TEXT PRIMARY KEY, pct INTEGER NOT NULL);\n"
       "INSERT INTO coupons (code, pct) VALUES ('WELCOME', 10);\n")
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tess", "roles": ["tester"]}]
Result = tuple[int, str, str]


@pytest.fixture
def ding() -> Iterator[Robot]:
    with robot("dingtalk", SECRET) as found:
        yield found


@pytest.fixture
def live(sqlite_runtime: Runtime) -> Iterator[LiveServer]:
    """The application served over HTTP on 127.0.0.1 (as tests/api/conftest.py's), without
    its background sender, so the notification log only changes when a test sends."""
    settings = sqlite_runtime.settings.model_copy(update={"tasks": "celery"})
    quiet = dataclasses.replace(sqlite_runtime, settings=settings)
    with serve(create_app(runtime=quiet, announce=lambda _: None)) as server:
        yield server


def shop(root: Path, runtime: Runtime, ding: Robot) -> int:
    """Order 1: service web on lane t1 of test with two statements run on shop-test and
    job ``mail`` created on j1; every notification of it delivered."""
    repo = make_repo(root, "web", {"src/index.html": "v1\n"},
                     branches={"feature/x": {"src/index.html": "v2\n"}})
    stage = {"path": "srv/web", "job_hosts": ["j1"], "database": "shop-test",
             "lanes": {"t1": {"hosts": ["h1"]}, "t2": {"hosts": ["h2"]}}}
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h1", "h2", "j1"]),
        "databases": [{"name": "shop-test", "url": f"sqlite:///{root / 'shop-test.db'}"}],
        "projects": [{
            "name": "shop", "stages": ["test", "prod"], "members": MEMBERS,
            "notify": [{"type": "dingtalk", "name": "ding", "webhook": ding.url,
                        "secret": SECRET}],
            "services": [{"name": "web", "repo": repo.url,
                          "build": "mkdir -p dist && cp -r src/. dist/", "pack": ["dist"],
                          "stages": {"test": stage}}]}]})
    job = JobSpec("mail", "command", {"create": "echo created >> ~/jobs.log",
                                      "reload": "echo reloaded >> ~/jobs.log"})
    order = file_order(runtime, "alice", "shop",
                       [ItemRequest("web", "feature/x", SQL, jobs=(job,))], "Coupons")
    assert deploy(runtime, order, "alice")[1]
    while notify.deliver_due(runtime):
        pass
    assert {n.status for n in rows(runtime, Notification)} == {"sent"}
    return order


@dataclass
class Cli:
    """Runs ``golive`` in this process as one user, here or against the server."""

    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    server: LiveServer
    token: str

    def run(self, args: tuple[str, ...], remote: bool) -> Result:
        if remote:
            self.monkeypatch.setenv("GOLIVE_URL", self.server.url)
            self.monkeypatch.setenv("GOLIVE_TOKEN", self.token)
        else:
            self.monkeypatch.delenv("GOLIVE_URL", raising=False)
            self.monkeypatch.delenv("GOLIVE_TOKEN", raising=False)
        code = main(list(args))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def both(self, *args: str) -> Result:
        """The remote run's result, after checking it equals the local run's."""
        here = self.run(args, remote=False)
        there = self.run(args, remote=True)
        assert there == here, args
        return there


@pytest.fixture
def cli(live: LiveServer, sqlite_runtime: Runtime, tmp_path: Path, ding: Robot,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """As tess (a tester of shop): GOLIVE_USER here, her token there."""
    shop(tmp_path, sqlite_runtime, ding)
    monkeypatch.setenv("GOLIVE_USER", "tess")
    return Cli(capsys, monkeypatch, live, api_token(sqlite_runtime, "tess"))


def test_sql_and_job_ledgers_print_alike(cli: Cli) -> None:
    code, out, err = cli.both("sql", "list", "1", "--json")
    assert code == 0, err
    assert [(e["statement"], [x["status"] for x in e["executions"]])
            for e in json.loads(out)] == [("web:1", ["success"]), ("web:2", ["success"])]
    code, out, _ = cli.both("sql", "list", "1")
    assert code == 0 and "shop-test success" in out

    code, out, err = cli.both("order", "job", "list", "1", "--json")
    assert code == 0, err
    ((job, where),) = [(j["name"], [(h["stage"], h["host"]) for h in j["hosts"]])
                       for j in json.loads(out)]
    assert (job, where) == ("mail", [("test", "j1")])
    code, out, _ = cli.both("order", "job", "list", "1")
    assert code == 0 and "test/j1" in out


def test_board_and_lanes_print_alike(cli: Cli) -> None:
    code, out, err = cli.both("board", "--json")
    assert code == 0, err
    (board,) = json.loads(out)
    assert [(s["lane"], s["order_id"], s["held_by_order"]) for s in board["slots"]] == [
        ("t1", 1, 1), ("t2", None, None)]
    code, out, _ = cli.both("board")
    assert code == 0 and "#1" in out and "feature/x" in out

    code, out, err = cli.both("lane", "list", "-p", "shop", "--json")
    assert code == 0, err
    assert [(h["stage"], h["lane"], h["order"]) for h in json.loads(out)] == [("test", "t1", 1)]
    code, out, _ = cli.both("lane", "list", "-p", "shop")
    assert code == 0 and "t1" in out and "alice" in out
    # the remote runs went to the server: a token it does not know is refused there
    stranger = dataclasses.replace(cli, token="glv_unknown")
    code, _, err = stranger.run(("lane", "list", "-p", "shop"), remote=True)
    assert code == 1 and "the API token is unknown, revoked or expired" in err


def test_notify_log_prints_alike_without_secrets(cli: Cli, ding: Robot) -> None:
    code, out, err = cli.both("notify", "log", "-p", "shop", "--json")
    assert code == 0, err
    log = json.loads(out)
    assert log and all(e["channel"] == "ding" and e["ok"] for e in log)
    assert SECRET not in out and ding.token not in out
    code, out, _ = cli.both("notify", "log", "-p", "shop", "--order", "1", "--limit", "2")
    assert code == 0 and "ding" in out


def test_a_refused_resolve_fails_alike(cli: Cli) -> None:
    code, out, err = cli.both("sql", "resolve", "1", "web:1", "--as", "executed")
    assert (code, out) == (1, "")
    assert "resolving a statement needs the role releaser or owner; tess has tester" in \
        " ".join(err.split())
    code, _, err = cli.both("sql", "resolve", "1", "web:1", "--as", "maybe")
    assert code == 2 and "executed" in err
