"""Every endpoint × every kind of caller → the expected HTTP status, from one table.

``TABLE`` names, for each registered operation, how to build a valid request (a fresh
subject in the state the action needs, so cases never depend on each other) and the
roles that may take it. From it each (operation, role) case follows: an allowed role
gets the operation's success status, an anonymous caller 401, anyone else the row's
refusal (403, naming the roles needed). A new operation without a row fails the suite.

One world per module: real git repositories, local hosts, project ``shop`` (test,
staging, prod; service ``api`` with a SQLite database on test, service ``web`` with a
lane on test, a webhook channel to a closed port) with a user per role, ``outsider``
owning another project, the site admin, an SSH server that presents a host key (for
``host.trust``), and an order deployed on test for real (its deployment, log and events
are the subjects of the reads). Callers use API tokens: no password hashing on the way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from golive.api.app import create_app
from golive.api.registry import OPERATIONS
from golive.api.schemas.deployments import ENDED
from golive.domain.jobs import JobSpec
from golive.services import accounts, lanes, orders, users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime, open_runtime
from golive.settings import Settings
from golive.store.models import Deployment, LaneHold
from golive.testing.server import api_token, bearer
from golive.testing.world import (
    apply_config,
    deploy,
    file_order,
    leave_unknown,
    local_hosts,
    make_repo,
    move_to,
)

API = "/api/v1"
BRANCH = "feature/x"
PUSH_SECRET = "matrix-push-secret"
USERS = {"developer": "dev", "tester": "tess", "releaser": "rel", "owner": "olga",
         "admin": "admin", "outsider": "outsider"}
ROLES = ("anonymous", *USERS)
NIGHTLY = JobSpec("nightly", "cron", {"schedule": "@daily", "command": "true"})
BYSTANDER = "carol"
"""A user with no role anywhere: the subject of actions on someone else's account."""

ANY = frozenset(USERS)
MEMBERS = frozenset({"developer", "tester", "releaser", "owner", "admin"})
DEVELOPERS = frozenset({"developer", "owner", "admin"})
TESTERS = frozenset({"tester", "owner", "admin"})
RELEASERS = frozenset({"releaser", "owner", "admin"})
CANCELLERS = frozenset({"developer", "releaser", "owner", "admin"})
OWNERS = frozenset({"owner", "admin"})
ADMIN = frozenset({"admin"})



@dataclass
class World:
    root: Path
    runtime: Runtime
    client: TestClient
    tokens: dict[str, str]
    order: int
    """Deployed on test for real: read operations look at it."""
    deployment: int
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else bearer(self.tokens[role])

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.numbers)}"


@dataclass(frozen=True)
class Call:
    """A request for one operation: its path parameters, query and JSON body."""

    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None


Subject = Callable[[World], Call]


@dataclass(frozen=True)
class Row:
    who: frozenset[str]
    """The roles the operation succeeds for."""
    subject: Subject
    refused: int = 403
    """What the other roles get (anonymous callers always get 401)."""
    starts: bool = False
    """The answer started a deployment: it is waited for, so the next case finds the
    service's lock free."""


# -- subjects ------------------------------------------------------------------------------

def fixed(path: dict[str, Any] | None = None, query: dict[str, Any] | None = None,
          body: dict[str, Any] | None = None) -> Subject:
    return lambda _: Call(path or {}, query or {}, body)


def fresh_order(world: World, state: str, item: ItemRequest | None = None) -> int:
    """A new order of ``shop`` (``item``: default api on the branch) moved to ``state``
    through the services."""
    with world.runtime.store.session() as session:
        dev = users.acting_user(session, "dev")
        order_id = orders.create_order(session, dev, "shop",
                                       [item or ItemRequest("api", BRANCH)]).id
        session.commit()
    move_to(world.runtime, order_id, state)
    return order_id


def order_in(state: str, body: dict[str, Any] | None = None) -> Subject:
    return lambda world: Call({"number": fresh_order(world, state)}, {}, body)


def paused_order(world: World) -> Call:
    """An order whose deployment on test waits between batches (the developer's)."""
    order_id = fresh_order(world, "test:deployed")
    with world.runtime.store.session() as session:
        session.add(Deployment(order_id=order_id, stage="test", status="paused",
                               pause_after_batch=True, requested_by="dev"))
        session.commit()
    return Call({"number": order_id})


def sql_order(world: World) -> Call:
    """A draft with SQL whose statement a dead run left ``unknown`` on the test database."""
    order_id = fresh_order(world, "draft", ItemRequest("api", BRANCH,
                                                       sql="CREATE TABLE t (a INT);"))
    leave_unknown(world.runtime, order_id, "shop-test", "test", "dev")
    return Call({"number": order_id, "statement": "api:1"}, body={"as": "executed"})


def job_order(world: World) -> Call:
    order_id = fresh_order(world, "draft", ItemRequest("api", BRANCH, jobs=(NIGHTLY,)))
    return Call({"number": order_id, "service": "api", "job": "nightly"})


def held_lane(world: World) -> Call:
    """Lane l1 of test held by a new order of ``web`` (whoever held it before let go)."""
    order_id = fresh_order(world, "submitted", ItemRequest("web", BRANCH))
    with world.runtime.store.session() as session:
        session.execute(delete(LaneHold))
        order = orders.get_order(session, order_id)
        assert lanes.take_lane(session, order, "test", users.acting_user(session, "dev")) == "l1"
        session.commit()
    return Call({"project": "shop", "stage": "test", "lane": "l1"})


def the_order(query: dict[str, Any] | None = None) -> Subject:
    return lambda world: Call({"number": world.order}, query or {})


def the_deployment(world: World) -> Call:
    return Call({"deployment_id": world.deployment})


def bystander_token(world: World) -> Call:
    """A token of someone else: only a site admin may revoke it."""
    with world.runtime.store.session() as session:
        user = users.acting_user(session, BYSTANDER)
        made = accounts.create_token(session, user, world.unique("spare"), None)
        session.commit()
        return Call({"token_id": made.token.id})


def fresh_member(body: dict[str, Any] | None = None) -> Subject:
    """A new user made a tester of ``shop``: the subject of a change to their roles."""
    def make(world: World) -> Call:
        name = world.unique("member")
        with world.runtime.store.session() as session:
            admin = users.acting_user(session, USERS["admin"])
            users.add_user(session, admin, name)
            users.add_member(session, admin, "shop", name, "tester")
            session.commit()
        return Call({"project": "shop", "user": name}, body=body)
    return make


def shop_export(world: World) -> Call:
    """shop's golive.yaml as exported: applied again, it changes nothing."""
    text = world.client.get(f"{API}/projects/shop/config", headers=world.headers("admin"))
    return Call({"project": "shop"}, body={"text": text.json()["text"]})


def new_user(world: World) -> Call:
    return Call(body={"name": world.unique("newcomer")})


def new_token(world: World) -> Call:
    return Call(body={"name": world.unique("ci")})


def extra_host(world: World) -> Call:
    host = world.unique("extra")
    text = f"hosts:\n  - {{name: {host}, transport: local, root: {world.root / host}}}\n"
    return Call(body={"text": text})


NEW_ORDER = {"project": "shop", "title": "matrix", "items": [{"service": "api",
                                                               "branch": BRANCH}]}

TABLE: dict[str, Row] = {
    # orders
    "order.create": Row(DEVELOPERS, fixed(body=NEW_ORDER)),
    "order.list": Row(ANY, fixed(query={"project": "shop"})),
    "order.show": Row(MEMBERS, the_order()),
    "order.history": Row(MEMBERS, the_order()),
    "order.submit": Row(DEVELOPERS, order_in("draft")),
    "order.pass": Row(TESTERS, order_in("test:deployed")),
    "order.reject": Row(TESTERS, order_in("test:deployed", {"reason": "the cart is empty"})),
    "order.cancel": Row(CANCELLERS, order_in("submitted", {"reason": "not needed"})),
    # drafting an order
    "order.update": Row(DEVELOPERS, order_in("submitted", {"title": "renamed"})),
    "order.draft": Row(MEMBERS, the_order()),
    "service.branches": Row(MEMBERS, fixed({"project": "shop", "service": "api"})),
    "sql.review": Row(MEMBERS, fixed(body={"project": "shop", "service": "api",
                                           "sql": "DELETE FROM t;"})),
    # deployments
    "order.deploy": Row(DEVELOPERS, order_in("submitted", {}), starts=True),
    "order.release": Row(RELEASERS, order_in("staging:passed", {}), starts=True),
    "order.rollback": Row(RELEASERS, order_in("test:deployed", {}), starts=True),
    "order.resume": Row(DEVELOPERS, paused_order),
    "order.plan": Row(MEMBERS, the_order()),
    "order.logs": Row(MEMBERS, the_order()),
    "deployment.show": Row(MEMBERS, the_deployment),
    "deployment.list": Row(MEMBERS, the_order()),
    "order.actions": Row(MEMBERS, the_order()),
    "order.releases": Row(MEMBERS, the_order()),
    "dashboard.show": Row(ANY, fixed()),
    # SQL and jobs
    "sql.list": Row(MEMBERS, the_order()),
    "sql.resolve": Row(RELEASERS, sql_order),
    "order.approve_sql": Row(RELEASERS, sql_order),
    "order.set_sql": Row(DEVELOPERS, lambda w: Call(
        {"number": fresh_order(w, "draft"), "service": "api"},
        body={"sql": "CREATE TABLE u (b INT);"})),
    "job.list": Row(MEMBERS, the_order()),
    "job.add": Row(DEVELOPERS, lambda w: Call(
        {"number": fresh_order(w, "draft"), "service": "api"}, body={"jobs": [
            {"name": "sweep", "kind": "cron", "schedule": "@hourly", "command": "true"}]})),
    "job.remove": Row(DEVELOPERS, job_order),
    # hosts: they serve every project, so what reaches them is a site admin's
    "host.list": Row(ANY, fixed()),
    "host.check": Row(ADMIN, fixed({"host": "h-test"})),
    "host.trust": Row(ADMIN, fixed({"host": "edge"})),
    # notifications
    "notify.log": Row(MEMBERS, fixed(query={"project": "shop"})),
    "notify.test": Row(OWNERS, fixed({"project": "shop", "channel": "hook"})),
    "notify.send": Row(ANY, fixed()),
    # the pipeline
    "board.show": Row(ANY, fixed()),
    "lane.list": Row(MEMBERS, fixed({"project": "shop"})),
    "lane.release": Row(TESTERS, held_lane),
    "agent.list": Row(ANY, fixed()),
    # people
    "user.list": Row(ANY, fixed()),
    "user.me": Row(ANY, fixed()),
    "user.add": Row(ADMIN, new_user),
    "user.update": Row(ADMIN, fixed({"user": BYSTANDER}, body={"mobile": "13800000000"})),
    "user.password": Row(ADMIN, fixed({"user": BYSTANDER},
                                      body={"password": "a long enough password"})),
    "member.add": Row(OWNERS, fixed({"project": "shop"},
                                    body={"user": BYSTANDER, "roles": ["tester"]})),
    "member.list": Row(MEMBERS, fixed({"project": "shop"})),
    "member.set_roles": Row(OWNERS, fresh_member({"roles": ["developer"]})),
    "member.remove": Row(OWNERS, fresh_member()),
    "token.create": Row(ANY, new_token),
    "token.list": Row(ANY, fixed()),
    # someone else's token is not found for whoever may not revoke it (its id is not
    # confirmed to exist), rather than refused
    "token.revoke": Row(ADMIN, bystander_token, refused=404),
    "audit.list": Row(OWNERS, fixed(query={"project": "shop"})),
    # settings
    "project.list": Row(ANY, fixed()),
    "project.show": Row(MEMBERS, fixed({"project": "shop"})),
    "project.export": Row(MEMBERS, fixed({"project": "shop"})),
    "project.apply": Row(OWNERS, shop_export),
    "database.list": Row(ANY, fixed()),
    "config.apply": Row(ADMIN, extra_host),
    "config.export": Row(ADMIN, fixed()),
}


# -- the world -----------------------------------------------------------------------------

@contextmanager
def ssh_key_server() -> Iterator[int]:
    """A real SSH server (asyncssh) on 127.0.0.1 that presents a host key, which is all
    ``host.trust`` asks of a host; its port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="matrix-sshd", daemon=True)
    thread.start()

    async def listen() -> asyncssh.SSHAcceptor:
        key = asyncssh.generate_private_key("ssh-ed25519")
        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[key])

    acceptor = asyncio.run_coroutine_threadsafe(listen(), loop).result(10)
    try:
        yield acceptor.get_port()
    finally:
        acceptor.close()
        asyncio.run_coroutine_threadsafe(acceptor.wait_closed(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _configure(root: Path, runtime: Runtime, ssh_port: int) -> None:
    repo = make_repo(root, "api", {"app.txt": "v1\n"}, branches={BRANCH: {"app.txt": "v2\n"}})
    web = make_repo(root, "web", {"index.html": "v1\n"}, branches={BRANCH: {"index.html": "v2"}})
    checkout = {"mode": "checkout", "path": "srv/api"}
    later = {stage: {"hosts": [f"h-{stage}"]} for stage in ("staging", "prod")}
    apply_config(runtime, root / "golive.yaml", {
        "hosts": [*local_hosts(root, ["h-test", "h-staging", "h-prod"]),
                  {"name": "edge", "address": "127.0.0.1", "port": ssh_port, "user": "deploy"}],
        "databases": [{"name": "shop-test", "url": f"sqlite:///{root}/shop-test.db"}],
        "projects": [
            {"name": "shop", "stages": ["test", "staging", "prod"], "push_secret": PUSH_SECRET,
             "members": [{"user": USERS[role], "roles": [role]}
                         for role in ("developer", "tester", "releaser", "owner")],
             # only for notify.test: no event of these cases is sent through it
             "notify": [{"type": "webhook", "name": "hook", "events": ["release_queued"],
                         "webhook": "http://127.0.0.1:9/golive-matrix"}],
             "services": [
                 {"name": "api", "repo": repo.url, "stages": {
                     "test": {**checkout, "hosts": ["h-test"], "database": "shop-test"},
                     **{stage: {**checkout, **hosts} for stage, hosts in later.items()}}},
                 {"name": "web", "repo": web.url, "stages": {
                     "test": {"mode": "checkout", "path": "srv/web",
                              "lanes": {"l1": {"hosts": ["h-test"]}}},
                     **{stage: {"mode": "checkout", "path": "srv/web", **hosts}
                        for stage, hosts in later.items()}}}]},
            {"name": "other", "members": [{"user": "outsider", "roles": ["owner"]}]},
        ]})
    with runtime.store.session() as session:
        users.add_user(session, users.ensure_admin(session), BYSTANDER)
        session.commit()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ExitStack() as stack:
        yield from _world(tmp_path_factory, stack)


def _world(tmp_path_factory: pytest.TempPathFactory, stack: ExitStack) -> Iterator[World]:
    root = tmp_path_factory.mktemp("api-matrix")
    runtime = open_runtime(Settings(home=root / "home", database_url="", secret_key=""))
    try:
        ssh_port = stack.enter_context(ssh_key_server())
        _configure(root, runtime, ssh_port)
        order = file_order(runtime, "dev", "shop", [ItemRequest("api", BRANCH)], "seeded")
        deployment, ok = deploy(runtime, order, "dev")
        assert ok, "the seeded deployment failed"
        tokens = {role: api_token(runtime, name) for role, name in USERS.items()}
        with TestClient(create_app(runtime=runtime, announce=lambda _: None)) as client:
            yield World(root, runtime, client, tokens, order, deployment)
    finally:
        runtime.close()


@pytest.fixture(autouse=True)
def golive_home(world: World, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GOLIVE_HOME stays the world's home (its secret key, its git mirrors) in every
    test, instead of the usual private one per test."""
    home = world.runtime.settings.home
    monkeypatch.setenv("GOLIVE_HOME", str(home))
    return home


def wait_until_ended(world: World, deployment_id: int, timeout: float = 60.0) -> str:
    """The deployment's final status, once the server's runner has carried it out."""
    deadline = time.monotonic() + timeout
    while True:
        with world.runtime.store.session() as session:
            status = session.scalars(select(Deployment.status).where(
                Deployment.id == deployment_id)).one()
        if status in ENDED or status == "queued":
            return status
        assert time.monotonic() < deadline, f"deployment {deployment_id} is still {status}"
        time.sleep(0.05)


def expected_roles(who: frozenset[str]) -> set[str]:
    """What a refusal names: the project roles allowed (a site admin may anyway), or
    ``admin`` for what only a site admin may do."""
    return {"admin"} if who == ADMIN else set(who - {"admin"})


# -- the tests -----------------------------------------------------------------------------

def test_every_operation_has_a_row() -> None:
    assert sorted(set(OPERATIONS) - set(TABLE)) == [], "operations without a row in TABLE"
    assert sorted(set(TABLE) - set(OPERATIONS)) == [], "rows of operations that do not exist"


CASES = [pytest.param(name, role, id=f"{name}-{role}") for name in TABLE for role in ROLES]


@pytest.mark.parametrize(("name", "role"), CASES)
def test_operation_by_role(world: World, name: str, role: str) -> None:
    assert name in OPERATIONS, f"{name} is in TABLE but not registered"
    op, row = OPERATIONS[name], TABLE[name]
    call = row.subject(world)
    response = world.client.request(
        op.method, API + op.path.format(**call.path), params=call.query, json=call.body,
        headers=world.headers(role))
    answer = response.json()
    if role == "anonymous":
        assert response.status_code == 401, answer
        assert answer["error"]["kind"] == "NotAuthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    elif role in row.who:
        assert response.status_code == op.status, answer
        if row.starts:
            assert wait_until_ended(world, answer["id"]) in ENDED
    else:
        assert response.status_code == row.refused, answer
        if row.refused == 403:
            assert answer["error"]["kind"] == "PermissionDenied"
            assert set(answer["error"]["needed_roles"]) == expected_roles(row.who), answer
            for needed in answer["error"]["needed_roles"]:
                assert needed in answer["error"]["message"]


# -- the routes that are not operations ----------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_deployment_events_by_role(world: World, role: str) -> None:
    response = world.client.get(f"{API}/deployments/{world.deployment}/events",
                                headers=world.headers(role))
    expected = {"anonymous": 401, "outsider": 403}.get(role, 200)
    assert response.status_code == expected, response.text
    if expected == 200:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "event: end" in response.text
    else:
        assert response.json()["error"]["kind"] == (
            "NotAuthenticated" if role == "anonymous" else "PermissionDenied")


def test_login_is_open_to_anyone_with_the_password(world: World) -> None:
    with world.runtime.store.session() as session:
        accounts.set_password(session, users.ensure_admin(session), BYSTANDER,
                              "carol's long password")
        session.commit()
    refused = world.client.post(f"{API}/login", json={"user": BYSTANDER, "password": "nope"})
    assert refused.status_code == 401
    with TestClient(world.client.app) as browser:  # its own cookie jar
        opened = browser.post(f"{API}/login",
                              json={"user": BYSTANDER, "password": "carol's long password"})
        assert opened.status_code == 200, opened.text
        assert browser.get(f"{API}/me").json()["name"] == BYSTANDER


def test_logout_needs_a_session_and_its_csrf_token(world: World) -> None:
    assert world.client.post(f"{API}/logout").status_code == 401
    with world.runtime.store.session() as session:
        accounts.set_password(session, users.ensure_admin(session), BYSTANDER,
                              "carol's long password")
        session.commit()
    with TestClient(world.client.app) as browser:
        csrf = browser.post(f"{API}/login", json={
            "user": BYSTANDER, "password": "carol's long password"}).json()["csrf_token"]
        assert browser.post(f"{API}/logout").status_code == 403
        assert browser.post(f"{API}/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert browser.get(f"{API}/me").status_code == 401


def _push(world: World, secret: str | None, provider: str = "github",
          project: str = "shop") -> tuple[int, dict[str, Any]]:
    body = json.dumps({"ref": f"refs/heads/{BRANCH}", "before": "0" * 40, "after": "1" * 40,
                       "pusher": {"name": "dev"}}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    response = world.client.post(f"{API}/hooks/{provider}/{project}", content=body,
                                 headers=headers)
    return response.status_code, response.json()


def test_push_hooks_take_the_project_secret_not_a_login(world: World) -> None:
    status, answer = _push(world, PUSH_SECRET)
    assert status == 200, answer
    assert answer["deployments"] == [] and "redeploy_on_push is off" in answer["ignored"]
    assert _push(world, None)[0] == 403
    assert _push(world, "a guessed secret")[0] == 403
    assert _push(world, PUSH_SECRET, provider="bitbucket")[0] == 404
    assert _push(world, PUSH_SECRET, project="nowhere")[0] == 404
    assert _push(world, PUSH_SECRET, project="other")[0] == 403  # it has no push secret


@pytest.mark.parametrize("path", ["/healthz", "/metrics", f"{API}/openapi.json"])
def test_public_routes_need_no_login(world: World, path: str) -> None:
    response = world.client.get(path)
    assert response.status_code == 200, response.text
    if path == "/healthz":
        assert response.json()["status"] == "ok"
    if path.endswith("openapi.json"):
        operations = {o["operationId"] for methods in response.json()["paths"].values()
                      for o in methods.values()}
        assert set(OPERATIONS) <= operations
