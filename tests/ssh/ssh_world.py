"""Helpers for the SSH tests: golive.yaml entries for the test OpenSSH server's users,
one web service deployed through them, and what to look at on the hosts afterwards.

A host ``hN`` is the server's user ``users[N-1]``; its deploy path ``app`` is relative,
so it lands in that user's home (on the server's tmpfs), which the tests (root) read
directly.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golive.domain.release import MARKER, release_order
from golive.services import deploy as engine
from golive.services import requests, users
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import CommitLedger, Deployment, DeploymentStep, Host, LogLine
from golive.testing.sshd import SshServer, SshUser
from golive.testing.world import Repo, apply_config, commit, file_order, make_repo, rows

BRANCH = "feature/x"
PATH = "app"
BUILD = "mkdir -p dist && cp -r src/. dist/"
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tom", "roles": ["tester"]},
           {"user": "rita", "roles": ["releaser"]}]


def ssh_host(server: SshServer, index: int, name: str = "", **extra: Any) -> dict[str, Any]:
    """The golive.yaml entry of the server's user ``index`` as host ``h<index+1>``."""
    return {"name": name or f"h{index + 1}", "address": "127.0.0.1", "port": server.port,
            "user": server.users[index].name, "key": str(server.client_key), **extra}


def closed_port() -> socket.socket:
    """A socket bound to a 127.0.0.1 port and not listening: connections to it are
    refused, and nobody else can take the port while the socket is open."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@dataclass
class World:
    """One service ``web`` of project ``shop`` (stages test, prod) on SSH hosts."""

    root: Path
    runtime: Runtime
    repo: Repo
    hosts: dict[str, SshUser]
    host_entries: list[dict[str, Any]]
    stage: dict[str, Any]
    service: dict[str, Any]
    order_id: int = 0
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config_path = self.root / "golive.yaml"

    # -- configuration and orders ---------------------------------------------------

    def apply(self) -> None:
        stage = {"mode": "artifact", "path": PATH, "hosts": list(self.hosts), **self.stage}
        service = {"name": "web", "repo": self.repo.url, "main_branch": "main",
                   "build": BUILD, "pack": ["dist"], **self.service,
                   "stages": {"test": stage}}
        apply_config(self.runtime, self.config_path, {
            "hosts": self.host_entries,
            "projects": [{"name": "shop", "stages": ["test", "prod"], "members": MEMBERS,
                          "services": [service]}]})

    def set_host(self, name: str, **changes: Any) -> None:
        """Change a host's golive.yaml entry and apply it again."""
        entry = next(e for e in self.host_entries if e["name"] == name)
        entry.update(changes)
        self.apply()

    def add_host(self, server: SshServer, index: int, name: str) -> None:
        """Also deploy to ``server``'s user ``index`` as host ``name`` (applied)."""
        self.host_entries.append(ssh_host(server, index, name))
        self.hosts[name] = server.users[index]
        self.apply()

    def file_order(self) -> int:
        self.order_id = file_order(self.runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
        return self.order_id

    def change(self, files: Mapping[str, str] | None = None) -> str:
        """A new commit on the order's branch (so that an iterative deploy moves)."""
        return commit(self.repo, BRANCH, dict(files or {"src/change.txt": str(time.time())}))

    def request(self, *, only_hosts: tuple[str, ...] = (), pause_after_batch: bool = False,
                kind: str = "iterative") -> int:
        with self.runtime.store.session() as session:
            deployment = requests.request_deployment(
                session, self.order_id, users.acting_user(session, "alice"), stage="test",
                kind=kind, only_hosts=only_hosts, pause_after_batch=pause_after_batch)
            session.commit()
            return deployment.id

    def deploy(self, **options: Any) -> Deployment:
        """Request a deployment on test and run it here; its record afterwards."""
        deployment_id = self.request(**options)
        ok = engine.run_deployment(self.runtime, deployment_id)
        row = self.deployment(deployment_id)
        assert ok == (row.status == "succeeded")
        return row

    def deploy_ok(self, **options: Any) -> Deployment:
        row = self.deploy(**options)
        assert row.status == "succeeded", f"{row.error}\n{self.log(row.id)}"
        return row

    # -- the store ------------------------------------------------------------------

    def deployment(self, deployment_id: int) -> Deployment:
        (row,) = rows(self.runtime, Deployment, Deployment.id == deployment_id)
        return row

    def state(self) -> str:
        with self.runtime.store.session() as session:
            return get_order(session, self.order_id).state

    def log_lines(self, deployment_id: int) -> list[LogLine]:
        return rows(self.runtime, LogLine, LogLine.deployment_id == deployment_id)

    def log(self, deployment_id: int) -> str:
        return "\n".join(f"[{ln.level} {ln.host}] {ln.text}"
                         for ln in self.log_lines(deployment_id))

    def steps(self, deployment_id: int, name: str = "") -> list[DeploymentStep]:
        found = rows(self.runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id)
        return [s for s in found if not name or s.name == name]

    def host_row(self, name: str) -> Host:
        (row,) = rows(self.runtime, Host, Host.name == name)
        return row

    def host_name(self, host_id: int | None) -> str:
        (row,) = rows(self.runtime, Host, Host.id == host_id)
        return row.name

    def ledger(self) -> list[CommitLedger]:
        return rows(self.runtime, CommitLedger, CommitLedger.order_id == self.order_id)

    # -- the hosts ------------------------------------------------------------------

    def home(self, name: str) -> Path:
        return self.hosts[name].home

    def base(self, name: str, path: str = PATH) -> Path:
        return self.home(name) / path

    def current(self, name: str, path: str = PATH) -> str | None:
        """The release id ``current`` points to on host ``name``, or None."""
        link = self.base(name, path) / "current"
        if not link.is_symlink():
            assert not link.exists(), f"{link} is not a symlink"
            return None
        target = os.readlink(link)
        assert target.startswith("releases/"), target
        return target.removeprefix("releases/")

    def releases(self, name: str, path: str = PATH) -> list[str]:
        folder = self.base(name, path) / "releases"
        if not folder.is_dir():
            return []
        return sorted((p.name for p in folder.iterdir() if p.is_dir()), key=release_order)

    def leftovers(self, name: str, path: str = PATH) -> list[str]:
        """Hidden files in ``releases/`` (uploads in flight, never left behind)."""
        folder = self.base(name, path) / "releases"
        return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) \
            if folder.is_dir() else []

    def assert_serving(self, expected: Mapping[str, str | None], path: str = PATH) -> None:
        """Each host's ``current`` is the expected release (None: no current), complete:
        its marker names it and its files are there."""
        for name, rid in expected.items():
            assert self.current(name, path) == rid, (name, self.current(name, path), rid)
            if rid is None:
                continue
            release = self.base(name, path) / "releases" / rid
            assert (release / MARKER).read_text().split()[0] == rid
            assert (release / "dist" / "index.html").is_file()


def make_world(root: Path, runtime: Runtime, server: SshServer, count: int | None = None, *,
               stage: Mapping[str, Any] | None = None,
               service: Mapping[str, Any] | None = None,
               host_extra: Mapping[str, Mapping[str, Any]] | None = None,
               repo: Repo | None = None, order: bool = True) -> World:
    """Hosts h1..hN on ``server`` (all its users by default), the web service applied and
    (unless ``order`` is False) an order of alice's for its branch filed."""
    count = len(server.users) if count is None else count
    repo = repo or make_repo(root, "web", {"src/index.html": "<h1>shop</h1>\n"},
                             branches={BRANCH: {"src/feature.html": "<p>new</p>\n"}})
    entries = [ssh_host(server, i, **(host_extra or {}).get(f"h{i + 1}", {}))
               for i in range(count)]
    world = World(root, runtime, repo, {e["name"]: server.users[i] for i, e in
                                        enumerate(entries)}, entries,
                  dict(stage or {}), dict(service or {}))
    world.apply()
    if order:
        world.file_order()
    return world


def shim(user: SshUser, program: str, script: str) -> Path:
    """Put ``$HOME/bin/<program>`` (a shell script) first on the host user's PATH.

    The login shell (bash) reads ``~/.bashrc`` for commands run over SSH, and golive's
    commands run from there with its PATH.
    """
    folder = user.home / "bin"
    folder.mkdir(exist_ok=True)
    rc = user.home / ".bashrc"  # useradd copied /etc/skel's: put the PATH first
    line = 'export PATH="$HOME/bin:$PATH"\n'
    text = rc.read_text() if rc.exists() else ""
    if not text.startswith(line):
        rc.write_text(line + text)
    target = folder / program
    target.write_text("#!/bin/sh\n" + script + "\n")
    target.chmod(0o755)
    for path in (folder, rc, target):
        os.chown(path, user.uid, user.gid)
    return target


def hide_program(user: SshUser, program: str) -> None:
    """A PATH for the host user on which ``program`` does not exist: a folder of links
    to everything in /usr/bin but it (``~/.bashrc`` sets it)."""
    folder = user.home / "usr-bin"
    folder.mkdir()
    for entry in os.scandir("/usr/bin"):
        if entry.name != program:
            (folder / entry.name).symlink_to(entry.path)
    rc = user.home / ".bashrc"
    rc.write_text(f'export PATH="{folder}"\n')
    os.chown(rc, user.uid, user.gid)


def wait_until(check: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


@dataclass
class HealthServer:
    """A tiny HTTP server on 127.0.0.1: /health answers 200 (then ``fail_after`` more
    times 200 at most, 503 after that); every request's path is recorded."""

    port: int
    requests: list[str]
    fail_after: int | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


@contextmanager
def health_server(fail_after: int | None = None) -> Iterator[HealthServer]:
    state = HealthServer(0, [], fail_after)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            with lock:
                state.requests.append(self.path)
                served = len(state.requests)
            healthy = self.path == "/health" and (
                state.fail_after is None or served <= state.fail_after)
            self.send_response(200 if healthy else 503)
            self.end_headers()
            self.wfile.write(b"ok\n" if healthy else b"unhealthy\n")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def world_readable_repo(parent: Path, name: str = "web",
                        files: Mapping[str, str] | None = None) -> Repo:
    """A repository the hosts' users can clone: under ``parent`` (e.g. the sshd's tmpfs),
    every folder and file readable by all."""
    repo = make_repo(parent, name, {"src/index.html": "<h1>shop</h1>\n", **(files or {})},
                     branches={BRANCH: {"src/feature.html": "<p>new</p>\n"}})
    make_readable(parent)
    return repo


def make_readable(folder: Path) -> None:
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)


def by_host(world: World, steps: Sequence[DeploymentStep]) -> dict[str, DeploymentStep]:
    return {world.host_name(s.host_id): s for s in steps}
