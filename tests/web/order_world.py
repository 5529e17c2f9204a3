"""The world of the order page and dashboard tests (TestClient): project ``shop`` (test,
staging, prod), service ``api`` from a real git repository in artifact mode on one local
host per stage, a SQLite target database and a job host on test; dev (developer), tess (tester), rel
(releaser), olga (owner), nobody (no role).

Orders are put in a state through the services (``transition``, the engine's moves as
the system), or deployed for real with ``deploy`` from golive.testing.world.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from golive.api.auth import SESSION_COOKIE
from golive.domain.jobs import JobSpec
from golive.services import accounts, orders, users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import User
from golive.testing.world import (
    apply_config,
    leave_unknown,
    local_hosts,
    make_repo,
    move_to,
)

BRANCH = "feature/cart"
PATH = "srv/api"
PEOPLE = {"dev": "developer", "tess": "tester", "rel": "releaser", "olga": "owner"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
ACTION = re.compile(r'data-action="([a-z_.]+)"')

@dataclass
class World:
    root: Path
    runtime: Runtime
    client: TestClient
    cookies: dict[str, str] = field(default_factory=dict)

    def as_user(self, name: str) -> TestClient:
        """The client, logged in as ``name`` from now on (a login session opened as the
        login form opens it; the form itself is tested in test_web_basics.py, and hashing
        a password per user would make these tests slow)."""
        if name not in self.cookies:
            with self.runtime.store.session() as session:
                user = session.scalars(select(User).where(User.name == name)).one()
                self.cookies[name] = accounts.open_session(session, user, "testclient").cookie
                session.commit()
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, self.cookies[name])
        return self.client

    def order_in(self, state: str, *, by: str = "dev", sql: str = "", title: str = "",
                 jobs: tuple[JobSpec, ...] = ()) -> int:
        """A new order of ``api`` moved to ``state`` through the services."""
        with self.runtime.store.session() as session:
            author = users.acting_user(session, by)
            order_id = orders.create_order(session, author, "shop",
                                           [ItemRequest("api", BRANCH, sql=sql, jobs=jobs)],
                                           title).id
            session.commit()
        move_to(self.runtime, order_id, state)
        return order_id

    def leave_unknown(self, order_id: int) -> None:
        """The order's first statement as a dead run left it on the test database."""
        leave_unknown(self.runtime, order_id, "shop-test", "test", "dev")


def make_world(root: Path, runtime: Runtime, client: TestClient) -> World:
    repo = make_repo(root, "api", {"src/index.html": "v1\n"},
                     branches={BRANCH: {"src/index.html": "v2\n"}})
    stages = {stage: {"mode": "artifact", "path": PATH, "hosts": [f"h-{stage}"]}
              for stage in ("test", "staging", "prod")}
    stages["test"].update(database="shop-test", job_hosts=["h-test"])
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h-test", "h-staging", "h-prod"]),
        "databases": [{"name": "shop-test", "url": f"sqlite:///{root}/shop-test.db"}],
        "projects": [{
            "name": "shop", "stages": ["test", "staging", "prod"],
            "members": [{"user": name, "roles": [role]} for name, role in PEOPLE.items()],
            "services": [{"name": "api", "repo": repo.url, "build": "cp -r src dist",
                          "pack": ["dist"], "stages": stages}],
        }]})
    with runtime.store.session() as session:
        session.add(User(name="nobody", display_name="nobody"))
        session.commit()
    return World(root, runtime, client)


def actions_of(html: str) -> set[str]:
    """The operations the page's buttons and links call (their data-action)."""
    return set(ACTION.findall(html))
