"""`golive order deploy|plan|logs` against a golive server (GOLIVE_URL, GOLIVE_TOKEN): the
server runs the deployment, the CLI prints its live log from the event stream, and every
command prints and exits as the same command does on the server's own machine."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from golive.cli.deploy import QUEUED_FIELDS, RESULT_FIELDS
from golive.cli.main import main
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.testing.server import LiveServer, api_token
from golive.testing.world import (
    Repo,
    act,
    apply_config,
    commit,
    deploy,
    file_order,
    local_hosts,
    make_repo,
)

BRANCH = "feature/x"
TODAY = datetime.now(UTC).date()
Result = tuple[int, str, str]


@pytest.fixture
def repo(tmp_path: Path, sqlite_runtime: Runtime) -> Repo:
    """Project shop (test, prod): service shop in artifact mode on local hosts h1 and h2;
    alice develops, tom tests, rita releases, mallory is no member. Releases are frozen
    today and tomorrow (UTC)."""
    made = make_repo(tmp_path, "shop", {"src/index.html": "v1\n"},
                     branches={BRANCH: {"src/index.html": "v2\n"}})
    stage = {"mode": "artifact", "path": "srv/shop", "hosts": ["h1", "h2"]}
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "h2"]),
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]},
                        {"user": "tom", "roles": ["tester"]},
                        {"user": "rita", "roles": ["releaser"]}],
            "release_windows": ["daily 00:00-23:59"],
            "freeze": [f"{TODAY}..{TODAY + timedelta(days=1)}"],
            "services": [{"name": "shop", "repo": made.url, "build": "cp -r src dist",
                          "pack": ["dist"], "stages": {"test": stage, "prod": stage}}],
        }]})
    return made


@pytest.fixture
def order(repo: Repo, sqlite_runtime: Runtime) -> int:
    return file_order(sqlite_runtime, "alice", "shop", [ItemRequest("shop", BRANCH)])


class Cli:
    """Runs `golive` here (as --as USER) or remotely (GOLIVE_URL, USER's token); alice, rita
    and mallory have tokens."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                 runtime: Runtime, url: str) -> None:
        self.capsys, self.monkeypatch, self.url = capsys, monkeypatch, url
        self.tokens = {user: api_token(runtime, user) for user in ("alice", "rita", "mallory")}

    def _run(self, args: tuple[str, ...]) -> Result:
        code = main(list(args))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def here(self, user: str, *args: str) -> Result:
        self.monkeypatch.delenv("GOLIVE_URL", raising=False)
        self.monkeypatch.delenv("GOLIVE_TOKEN", raising=False)
        return self._run(("--as", user, *args))

    def remote(self, user: str, *args: str, url: str = "") -> Result:
        self.monkeypatch.setenv("GOLIVE_URL", url or self.url)
        self.monkeypatch.setenv("GOLIVE_TOKEN", self.tokens[user])
        try:
            return self._run(args)
        finally:
            self.monkeypatch.delenv("GOLIVE_URL")
            self.monkeypatch.delenv("GOLIVE_TOKEN")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        sqlite_runtime: Runtime, live: LiveServer) -> Cli:
    """The server (``live``) runs on the store the local CLI uses too."""
    return Cli(capsys, monkeypatch, sqlite_runtime, live.url)


def test_deploy_runs_on_the_server_and_prints_its_live_log(cli: Cli, order: int) -> None:
    number = str(order)
    plan_here = cli.here("alice", "order", "plan", number, "--json")
    assert plan_here[0] == 0, plan_here[2]
    assert cli.remote("alice", "order", "plan", number, "--json") == plan_here
    assert json.loads(plan_here[1])["services"][0]["action"] == "deploy"
    assert cli.remote("alice", "order", "plan", number) == cli.here("alice", "order", "plan",
                                                                     number)

    code, out, err = cli.remote("alice", "order", "deploy", number)
    assert code == 0, err
    logs_here = cli.here("alice", "order", "logs", number)
    assert logs_here[0] == 0
    log_lines = logs_here[1].splitlines()
    assert log_lines[0].endswith(f"iterative deployment of order {order} on test started by "
                                 "alice")
    printed = out.splitlines()
    assert printed[:len(log_lines)] == log_lines  # the whole log, live, in order
    assert "progress" in printed[len(log_lines)]  # then the steps, as the local CLI does
    deployment = json.loads(cli.here("alice", "order", "logs", number, "--json")[1])["deployment"]
    assert printed[-1] == f"deployment {deployment} succeeded; order {order} is test:deployed"

    assert cli.remote("alice", "order", "logs", number) == logs_here
    assert cli.remote("alice", "order", "logs", number, "--json") == cli.here(
        "alice", "order", "logs", number, "--json")
    follow_here = cli.here("alice", "order", "logs", number, "--follow")
    assert follow_here[0] == 0 and follow_here[1].startswith(logs_here[1])
    assert cli.remote("alice", "order", "logs", number, "--follow") == follow_here

    code, out, err = cli.remote("alice", "order", "deploy", number, "--full", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert tuple(result) == RESULT_FIELDS
    assert (result["kind"], result["status"], result["order_state"]) == (
        "full", "succeeded", "test:deployed")


def test_refusals_print_the_same_line_and_exit_code_as_here(cli: Cli, order: int) -> None:
    number = str(order)
    for user, args in (
            ("alice", ("order", "deploy", number, "--stage", "prod")),
            ("alice", ("order", "release", number)),
            ("alice", ("order", "deploy", number, "--hosts", "h9")),
            ("alice", ("order", "deploy", "77")),
            ("alice", ("order", "logs", number)),
            ("alice", ("order", "resume", number)),
            ("mallory", ("order", "deploy", number)),
            ("mallory", ("order", "plan", number))):
        here = cli.here(user, *args)
        assert here[0] in (1, 2) and here[2].startswith("error: "), (args, here)
        assert cli.remote(user, *args) == here, args
    code, _, err = cli.here("alice", "order", "deploy", number, "--stage", "prod")
    assert code == 1 and "it can be deployed on test, not on prod" in err


def test_a_failed_deploy_exits_1_with_its_error_as_here(
        cli: Cli, order: int, repo: Repo) -> None:
    number = str(order)
    commit(repo, BRANCH, {"src/index.html": None})  # nothing left for `cp -r src dist`
    code, out, err = cli.remote("alice", "order", "deploy", number)
    assert code == 1
    shown = json.loads(cli.here("alice", "order", "logs", number, "--json")[1])
    error = shown["lines"][-1]["text"]
    assert "service shop" in error and "src" in error
    assert err.strip() == f"error: {error}"
    assert out.splitlines()[-1] == (f"deployment {shown['deployment']} failed; order {order} "
                                    "is test:failed")
    again = cli.here("alice", "order", "deploy", number)  # the same deploy, run here
    assert (again[0], again[2]) == (code, err)


def test_a_release_outside_the_windows_is_queued_as_here(
        cli: Cli, order: int, sqlite_runtime: Runtime) -> None:
    number = str(order)
    assert deploy(sqlite_runtime, order, "alice")[1]
    assert act(sqlite_runtime, order, "pass", "tom") == "test:passed"
    refused = cli.here("rita", "order", "release", number)
    assert refused[0] == 1 and "queue the release for it with --when-open" in refused[2]
    assert cli.remote("rita", "order", "release", number) == refused

    code, out, err = cli.remote("rita", "order", "release", number, "--when-open")
    assert code == 0, err
    opens = TODAY + timedelta(days=2)
    queued = json.loads(cli.here("rita", "order", "logs", number, "--json")[1])["deployment"]
    assert " ".join(out.split()) == (  # Rich wraps it at the terminal's width
        f"order {order}: release queued as deployment {queued}; it starts when the release "
        f"window opens at {opens} 00:00 UTC (`golive scheduler` starts it)")
    code, out, err = cli.remote("rita", "order", "release", number, "--when-open", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert tuple(shown) == QUEUED_FIELDS and shown["id"] == queued + 1
    assert (shown["status"], shown["action"], shown["stage"]) == ("queued", "release", "prod")
    assert shown["not_before"].startswith(f"{opens}T00:00:00")
    code, out, err = cli.here("rita", "order", "release", number, "--when-open", "--json")
    assert code == 0, err
    assert json.loads(out)["id"] == queued + 2


class DroppingProxy:
    """A TCP proxy to the server that cuts its first event stream right after the first
    log event, as a flaky network would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.streams: list[bytes] = []
        """The request heads of the event streams asked for."""
        self.cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.port)) as upstream:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            upstream.sendall(head)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            cut = b"/events" in head.split(b"\r\n")[0] and not self.cut
            if b"/events" in head.split(b"\r\n")[0]:
                self.streams.append(head)
            self.cut = self.cut or cut
            self._relay(upstream, client, cut)

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass

    @staticmethod
    def _relay(upstream: socket.socket, client: socket.socket, cut: bool) -> None:
        sent = b""
        try:
            while chunk := upstream.recv(65536):
                if cut:
                    sent += chunk
                    start = sent.find(b"event: log")
                    end = sent.find(b"\n\n", start) if start >= 0 else -1
                    if end >= 0:
                        client.sendall(sent[:end + 2])
                        for side in (client, upstream):  # the stream breaks mid-body
                            side.shutdown(socket.SHUT_RDWR)
                        return
                    continue
                client.sendall(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


@contextmanager
def dropping_proxy(port: int) -> Iterator[DroppingProxy]:
    proxy = DroppingProxy(port)
    try:
        yield proxy
    finally:
        proxy.close()


def test_a_broken_stream_is_resumed_after_the_last_line_printed(
        cli: Cli, order: int, live: LiveServer) -> None:
    number = str(order)
    code, _, err = cli.remote("alice", "order", "deploy", number, "--json")
    assert code == 0, err
    here = cli.here("alice", "order", "logs", number, "--follow")
    with dropping_proxy(live.port) as proxy:
        assert cli.remote("alice", "order", "logs", number, "--follow", url=proxy.url) == here
    first, second = proxy.streams
    assert b"last-event-id" not in first.lower()
    assert b"last-event-id: " in second.lower()  # no line printed twice, none missing
