"""The world of the end-to-end tests (tests/web/test_e2e_*.py) and what they look at.

Project ``shop`` with stages test, staging and prod; service ``web`` from a real git
repository, built and packed by the server (artifact mode) and sent over SSH to one host
per stage (``test-1``, ``stg-1``, ``prod-1``: three users of the test OpenSSH server); each
stage has its own target database (a SQLite file) for the orders' SQL. Members: dev
(developer), tess (tester), rita (releaser), olga (owner); admin is the site admin, whose
password is the one the server prints at its first start.

It is set up as a user would: ``golive apply -f golive.yaml`` on the server's
GOLIVE_HOME, passwords set, then ``golive server`` started on 127.0.0.1.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from playwright.sync_api import Page, ViewportSize

from golive.api.schemas.deployments import ENDED
from golive.services.runtime import open_runtime
from golive.settings import Settings
from golive.testing.browser import GoliveServer, golive_command, golive_server
from golive.testing.server import api_token, bearer
from golive.testing.sshd import SshServer
from golive.testing.web import give_password
from golive.testing.world import Repo, commit, make_repo

BRANCH = "feature/coupons"
PATH = "app"
BUILD = "mkdir -p dist && cp -r src/. dist/"
POST_DEPLOY_LINE = "the coupons page is live"
POST_DEPLOY = f'echo {POST_DEPLOY_LINE}; test ! -e "$HOME/slow-deploy" || sleep 3'
"""Run on each host after the switch: it says so in the log, and while the host has the
file ``slow-deploy`` it takes 3 s more, so that a test can watch a deployment running."""
STAGES = {"test": "test-1", "staging": "stg-1", "prod": "prod-1"}
PEOPLE = {"dev": "developer", "tess": "tester", "rita": "releaser", "olga": "owner"}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
"""Where the tests leave the screenshots README.md shows (written on every run)."""
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
ACCEPT_LANGUAGE = {"en": "en-US", "zh_CN": "zh-CN"}
OpenPage = Callable[..., Page]
"""The ``open_page`` fixture: ``open_page(world, user="", language="en", viewport=DESKTOP)``."""
SCHEMA = "CREATE TABLE coupons (id INTEGER PRIMARY KEY, code TEXT NOT NULL)"
"""Each target database has this table before any order runs (the orders add rows)."""
SQL = ("INSERT INTO coupons (code) VALUES ('WELCOME');\n"
       "INSERT INTO coupons (code) VALUES ('SPRING');\n")
"""An order's SQL that the review rules find nothing in."""


@dataclass
class E2E:
    """The world a browser test works in, and the server serving it."""

    root: Path
    home: Path
    repo: Repo
    sshd: SshServer
    server: GoliveServer
    passwords: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    order: int = 0
    """The order a shared world's tests look at (0: none yet)."""

    @property
    def url(self) -> str:
        return self.server.url

    # -- the target databases and hosts -----------------------------------------------------

    def database(self, stage: str) -> Path:
        return self.root / "databases" / f"{stage}.db"

    def rows(self, stage: str, sql: str) -> list[tuple[Any, ...]]:
        """The rows ``sql`` reads from ``stage``'s target database."""
        connection = sqlite3.connect(self.database(stage))
        try:
            return list(connection.execute(sql))
        finally:
            connection.close()

    def host_home(self, stage: str) -> Path:
        return self.sshd.users[list(STAGES).index(stage)].home

    def current_release(self, stage: str) -> str:
        """The release id the stage's host serves now."""
        link = self.host_home(stage) / PATH / "current"
        return os.readlink(link).removeprefix("releases/")

    def serving(self, stage: str, name: str) -> str:
        """A file of the release the stage's host serves now ("" when there is none)."""
        target = self.host_home(stage) / PATH / "current" / "dist" / name
        return target.read_text() if target.is_file() else ""

    def slow_deploys(self, stage: str, slow: bool = True) -> None:
        """Deployments on the stage's host take 3 s more (or no longer do)."""
        marker = self.host_home(stage) / "slow-deploy"
        if slow:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    # -- the repository ---------------------------------------------------------------------

    def change_branch(self, files: dict[str, str]) -> str:
        """A new commit on the order's branch, pushed; the new head."""
        return commit(self.repo, BRANCH, dict(files), "a fix on the branch")

    # -- the API (to set a scene quickly; the flows themselves click) -------------------------

    def api(self, user: str, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(method, f"{self.url}/api/v1{path}", timeout=30,
                               headers=bearer(self.tokens[user]), **kwargs)
        assert answer.status_code < 300, f"{method} {path}: {answer.text}"
        return answer.json()

    def file_order(self, sql: str = SQL, title: str = "Coupons") -> int:
        """A submitted order of dev's for the branch, with ``sql``; its number."""
        created = self.api("dev", "POST", "/orders", json={
            "project": "shop", "title": title,
            "items": [{"service": "web", "branch": BRANCH, "sql": sql}]})
        number = int(created["id"])
        self.api("dev", "POST", f"/orders/{number}/submit")
        return number

    def deploy(self, number: int, user: str = "dev", timeout: float = 90.0) -> None:
        """Deploy the order on its next stage through the API and wait for the end."""
        started = self.api(user, "POST", f"/orders/{number}/deploy", json={})
        deadline = time.monotonic() + timeout
        while True:
            view = self.api(user, "GET", f"/deployments/{started['id']}")
            if view["status"] in ENDED:
                assert view["status"] == "succeeded", f"{view}\n{self.fail_message()}"
                return
            assert time.monotonic() < deadline, f"deployment still {view['status']}"
            time.sleep(0.2)

    def state(self, number: int) -> str:
        return str(self.api("olga", "GET", f"/orders/{number}")["state"])

    def fail_message(self) -> str:
        return f"--- golive server log ---\n{self.server.log_tail()}"


def golive_yaml(root: Path, repo: Repo, sshd: SshServer) -> dict[str, Any]:
    hosts = [{"name": name, "address": "127.0.0.1", "port": sshd.port,
              "user": sshd.users[index].name, "key": str(sshd.client_key)}
             for index, name in enumerate(STAGES.values())]
    databases = [{"name": f"shop-{stage}",
                  "url": f"sqlite:///{root / 'databases' / f'{stage}.db'}"} for stage in STAGES]
    stages = {stage: {"mode": "artifact", "path": PATH, "hosts": [host],
                      "database": f"shop-{stage}"} for stage, host in STAGES.items()}
    return {
        "hosts": hosts, "databases": databases,
        "projects": [{
            "name": "shop", "stages": list(STAGES),
            "members": [{"user": name, "roles": [role]} for name, role in PEOPLE.items()],
            "services": [{"name": "web", "repo": repo.url, "main_branch": "main",
                          "build": BUILD, "pack": ["dist"], "post_deploy": [POST_DEPLOY],
                          "stages": stages}],
        }]}


@contextmanager
def e2e_world(root: Path, sshd: SshServer) -> Iterator[E2E]:
    """The world under ``root``, applied with the CLI and served by a ``golive server``
    process (stopped when the block ends, even if it raised)."""
    home = root / "golive-home"
    repo = make_repo(root, "web", {"src/index.html": "<h1>shop</h1>\n"},
                     branches={BRANCH: {"src/coupons.html": "<p>coupons v1</p>\n"}})
    (root / "databases").mkdir()
    for stage in STAGES:
        connection = sqlite3.connect(root / "databases" / f"{stage}.db")
        connection.execute(SCHEMA)
        connection.commit()
        connection.close()
    config = root / "golive.yaml"
    config.write_text(yaml.safe_dump(golive_yaml(root, repo, sshd), sort_keys=False))
    golive_command(home, "apply", "-f", str(config))
    # the same store the server serves; explicit settings, whatever the caller's GOLIVE_*
    runtime = open_runtime(Settings(home=home, database_url="", secret_key=""))
    try:
        passwords = {name: give_password(runtime, name) for name in PEOPLE}
        tokens = {name: api_token(runtime, name) for name in [*PEOPLE, "admin"]}
    finally:
        runtime.close()
    with golive_server(home) as server:
        assert server.admin_password, server.log_tail()
        passwords["admin"] = server.admin_password
        yield E2E(root, home, repo, sshd, server, passwords, tokens)
