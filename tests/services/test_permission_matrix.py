"""Who may do what, through the real service functions on a real (SQLite) store.

One table: each service action that takes a user × each kind of user → done, or
``PermissionDenied`` naming the roles needed. The store is built once per module
(project shop, stages test/staging/prod, service api with lanes t1 and t2 on test,
orders in every state the actions start from) and copied into each test's
GOLIVE_HOME before ``sqlite_runtime`` opens it, so every row starts from the same
store, runs in its own session and rolls back.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain.jobs import JobSpec
from golive.errors import InputError, PermissionDenied, Unverified
from golive.services import configuration, hosts, lanes, orders, requests, sqlops, users
from golive.services.liveness import this_runner
from golive.services.runtime import Runtime, open_runtime
from golive.settings import Settings
from golive.store import models
from golive.store.models import User
from golive.testing.world import (
    ItemRequest,
    apply_config,
    commit,
    file_order,
    local_hosts,
    make_repo,
)

BRANCH = "feature/x"
NIGHTLY = JobSpec("nightly", "cron", {"schedule": "@daily", "command": "true"})
USERS = {"developer": "dev", "tester": "tess", "releaser": "rel", "owner": "olga",
         "admin": "admin", "no-role": "nobody", "other-project": "outsider"}


@dataclass(frozen=True)
class World:
    runtime: Runtime
    ids: dict[str, int]  # orders by what they are for: draft, submitted, paused_test, ...
    tmp: Path


def _move(runtime: Runtime, order_id: int, *steps: tuple[str, str | None]) -> None:
    for action, by in steps:
        with runtime.store.session() as session:
            user = None if by is None else users.acting_user(session, by)
            orders.transition(session, order_id, action, user)
            session.commit()


def _build(root: Path, runtime: Runtime) -> dict[str, int]:
    repo = make_repo(root, "api", {"app.txt": "v1\n"}, branches={BRANCH: {"app.txt": "v2\n"}})
    path = {"mode": "checkout", "path": "srv/api"}
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h1", "h2"]),
        "databases": [{"name": "shop-test", "url": f"sqlite:///{root}/shop-test.db"},
                      {"name": "vault", "url": "postgresql://app:s3cret@127.0.0.1:9/vault"}],
        "projects": [
            {"name": "shop", "stages": ["test", "staging", "prod"],
             "members": [{"user": USERS[r], "roles": [r]}
                         for r in ("developer", "tester", "releaser", "owner")],
             "services": [{"name": "api", "repo": repo.url, "stages": {
                 "test": {**path, "database": "shop-test",
                          "lanes": {"t1": {"hosts": ["h1"]}, "t2": {"hosts": ["h2"]}}},
                 "staging": {**path, "hosts": ["h1"]}, "prod": {**path, "hosts": ["h2"]}}}]},
            {"name": "other", "members": [{"user": "outsider", "roles": [
                "owner", "developer", "tester", "releaser"]}]},
        ]})
    item = ItemRequest("api", BRANCH)
    ids = {name: file_order(runtime, "dev", "shop", [item]) for name in (
        "submitted", "paused_test", "deployed", "passed", "paused_staging", "staging_passed",
        "stale")}
    test_ok: list[tuple[str, str | None]] = [("deploy", "dev"), ("succeed", None)]
    staging_ok = [*test_ok, ("pass", "tess"), ("deploy", "rel"), ("succeed", None)]
    _move(runtime, ids["paused_test"], ("deploy", "dev"))
    _move(runtime, ids["deployed"], *test_ok)
    _move(runtime, ids["passed"], *test_ok, ("pass", "tess"))
    _move(runtime, ids["paused_staging"], *test_ok, ("pass", "tess"), ("deploy", "rel"))
    _move(runtime, ids["staging_passed"], *staging_ok, ("pass", "tess"))
    _move(runtime, ids["stale"], *staging_ok, ("pass", "tess"))
    with runtime.store.session() as session:
        dev = users.acting_user(session, "dev")
        draft = orders.create_order(session, dev, "shop", [ItemRequest(
            "api", BRANCH, sql="CREATE TABLE t (a INT);", jobs=(NIGHTLY,))])
        ids["draft"] = draft.id
        stmt = draft.items[0].statements[0]
        database = session.scalars(select(models.TargetDatabase)).first()
        assert database is not None and database.name == "shop-test"
        session.add(models.SqlExecution(
            database_id=database.id, order_id=draft.id, stage="test", statement_id=stmt.id,
            checksum=stmt.checksum, status="unknown", executed_by="dev"))
        # paused_test deploys on lane t1 (so holds it) and waits between batches
        held = orders.get_order(session, ids["paused_test"])
        assert lanes.take_lane(session, held, "test", dev) == "t1"
        for key, stage, by in (("paused_test", "test", "dev"),
                               ("paused_staging", "staging", "rel")):
            session.add(models.Deployment(
                order_id=ids[key], stage=stage, lane="t1" if stage == "test" else "",
                status="paused", pause_after_batch=True, runner=this_runner(), requested_by=by))
        # stale: staging verified the branch head; main moves on below
        service_id = held.items[0].service_id
        session.add(models.CommitLedger(
            order_id=ids["stale"], service_id=service_id, stage="staging",
            branch_commit=repo.head(BRANCH), deployed_commit=repo.head(BRANCH)))
        users.add_user(session, users.ensure_admin(session), "nobody")
        session.commit()
    commit(repo, "main", {"hotfix.txt": "moved\n"}, "main moves after staging")
    return ids


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("permission-world")
    home = root / "home"
    runtime = open_runtime(Settings(home=home, database_url="", secret_key=""))
    try:
        ids = _build(root, runtime)
    finally:
        runtime.close()
    return home, ids


@pytest.fixture
def world(template: tuple[Path, dict[str, int]], golive_home: Path, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[World]:
    home, ids = template
    golive_home.mkdir(parents=True, exist_ok=True)
    for stored in home.iterdir():
        if stored.is_file():
            shutil.copy2(stored, golive_home / stored.name)
    runtime: Runtime = request.getfixturevalue("sqlite_runtime")
    yield World(runtime, dict(ids), tmp_path)


# -- the actions; each asserts what it did when it is allowed ------------------------------

Act = Callable[[World, Session, User], None]


def create_order(w: World, s: Session, by: User) -> None:
    order = orders.create_order(s, by, "shop", [ItemRequest("api", "feature/y")])
    assert (order.state, order.created_by.name) == ("draft", by.name)


def set_jobs(w: World, s: Session, by: User) -> None:
    sweep = JobSpec("sweep", "cron", {"schedule": "@hourly", "command": "true"})
    item = orders.set_jobs(s, w.ids["draft"], "api", [sweep], by)
    assert [j.name for j in item.jobs] == ["nightly", "sweep"]


def remove_job(w: World, s: Session, by: User) -> None:
    orders.remove_job(s, w.ids["draft"], "api", "nightly", by)
    assert orders.get_order(s, w.ids["draft"]).items[0].jobs == []


def replace_sql(w: World, s: Session, by: User) -> None:
    script = "CREATE TABLE t (a INT);\nCREATE TABLE u (b INT);"
    assert sqlops.replace_sql(s, w.ids["draft"], "api", script, by) == 2


def approve_sql(w: World, s: Session, by: User) -> None:
    assert sqlops.approve_sql(s, w.ids["draft"], by).sql_approved_by == by.name


def resolve_sql(w: World, s: Session, by: User) -> None:
    done = sqlops.resolve(s, w.ids["draft"], "api:1", "executed", by)
    assert (done.statement, done.databases) == ("api:1", ["shop-test"])


def resume(key: str) -> Act:
    def act(w: World, s: Session, by: User) -> None:
        assert requests.resume_batches(s, w.ids[key], by).batches_released == 1
    return act


def release_lane(w: World, s: Session, by: User) -> None:
    assert lanes.release_lane(s, "shop", "test", "t1", by) == w.ids["paused_test"]
    assert lanes.hold_of(s, w.ids["paused_test"], "test") is None


def take_over_lane(w: World, s: Session, by: User) -> None:
    order = orders.get_order(s, w.ids["submitted"])
    assert lanes.take_lane(s, order, "test", by, requested="t1", take_over=True) == "t1"
    assert lanes.hold_of(s, w.ids["paused_test"], "test") is None


def accept_unverified(w: World, s: Session, by: User) -> None:
    with pytest.raises(Unverified, match="main moved since staging"):  # the flag is needed
        requests.request_deployment(s, w.ids["stale"], by, stage="prod", action="release")
    done = requests.request_deployment(s, w.ids["stale"], by, stage="prod", action="release",
                                       accept_unverified=True)
    assert (done.status, done.accept_unverified_by) == ("pending", by.name)


def add_member(w: World, s: Session, by: User) -> None:
    assert users.add_member(s, by, "shop", "nobody", "tester").user.name == "nobody"


def add_user(w: World, s: Session, by: User) -> None:
    assert users.add_user(s, by, "newcomer").name == "newcomer"


def apply_file(w: World, s: Session, by: User) -> None:
    path = w.tmp / "more.yaml"
    path.write_text(yaml.safe_dump({"hosts": local_hosts(w.tmp, ["h9"])}), encoding="utf-8")
    configuration.apply_file(s, w.runtime.box, by, path)
    assert hosts.get_host(s, "h9").transport == "local"


def export_config(w: World, s: Session, by: User) -> None:
    assert "s3cret" not in configuration.export_text(s, w.runtime.box, by, with_secrets=False)


def view(w: World, s: Session, by: User) -> None:
    assert orders.readable_order(s, w.ids["submitted"], by).id == w.ids["submitted"]
    assert w.ids["submitted"] in [o.id for o in orders.list_orders(s, by=by)]


def take_over_deploy(w: World, s: Session, by: User) -> None:
    done = requests.request_deployment(s, w.ids["submitted"], by, stage="test", lane="t1",
                                       take_over=True)
    assert (done.status, done.lane) == ("pending", "t1")
    assert lanes.hold_of(s, w.ids["paused_test"], "test") is None


def export_secrets(w: World, s: Session, by: User) -> None:
    assert "s3cret" in configuration.export_text(s, w.runtime.box, by, with_secrets=True)


def trust_host_key(w: World, s: Session, by: User) -> None:
    with pytest.raises(InputError, match="host h1 is a local host: it has no host key"):
        hosts.trust_host(w.runtime, s, by, "h1")


def move(key: str, action: str, target: str, reason: str = "") -> Act:
    def act(w: World, s: Session, by: User) -> None:
        order = orders.transition(s, w.ids[key], action, by, reason=reason)
        assert (order.state, order.history[-1].actor) == (target, by.name)
    return act


def deploy(key: str, stage: str, action: str, lane: str = "") -> Act:
    def act(w: World, s: Session, by: User) -> None:
        done = requests.request_deployment(s, w.ids[key], by, stage=stage, action=action)
        assert (done.status, done.lane, done.requested_by) == ("pending", lane, by.name)
        assert orders.get_order(s, w.ids[key]).state == f"{stage}:deploying"
    return act


# -- the table --------------------------------------------------------------------------------

ACTS: dict[str, Act] = {
    "create_order": create_order, "set_jobs": set_jobs, "remove_job": remove_job,
    "replace_sql": replace_sql, "approve_sql": approve_sql, "resolve_sql": resolve_sql,
    "resume_batches@test": resume("paused_test"),
    "resume_batches@staging": resume("paused_staging"),
    "release_lane": release_lane, "take_over_lane": take_over_lane,
    "accept_unverified": accept_unverified, "add_member": add_member, "add_user": add_user,
    "apply_file": apply_file, "export_secrets": export_secrets, "trust_host": trust_host_key,
    "export_config": export_config, "view": view, "take_over_deploy": take_over_deploy,
    "submit": move("draft", "submit", "submitted"),
    "cancel": move("submitted", "cancel", "cancelled"),
    "pass": move("deployed", "pass", "test:passed"),
    "reject": move("deployed", "reject", "test:rejected", reason="totals are wrong"),
    "rollback": move("deployed", "rollback", "test:rolled_back"),
    "deploy@test": deploy("submitted", "test", "deploy", lane="t2"),
    "deploy@staging": deploy("passed", "staging", "deploy"),
    "release@prod": deploy("staging_passed", "prod", "release"),
}

DEV, TESTER, RELEASER, OWNER, ADMIN = "developer", "tester", "releaser", "owner", "admin"
BY_DEV, BY_TESTER, BY_RELEASER = (DEV, OWNER), (TESTER, OWNER), (RELEASER, OWNER)
COLUMNS = tuple(USERS)

# action → (allowed (Y) or PermissionDenied (-) per column, the roles a refusal names)
TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    #                          dev tst rel own adm none other
    "create_order":           ("Y   -   -   Y   Y   -    -", BY_DEV),
    "set_jobs":               ("Y   -   -   Y   Y   -    -", BY_DEV),
    "remove_job":             ("Y   -   -   Y   Y   -    -", BY_DEV),
    "replace_sql":            ("Y   -   -   Y   Y   -    -", BY_DEV),
    "approve_sql":            ("-   -   Y   Y   Y   -    -", BY_RELEASER),
    "resolve_sql":            ("-   -   Y   Y   Y   -    -", BY_RELEASER),
    "resume_batches@test":    ("Y   -   -   Y   Y   -    -", BY_DEV),
    "resume_batches@staging": ("-   -   Y   Y   Y   -    -", BY_RELEASER),
    "release_lane":           ("-   Y   -   Y   Y   -    -", BY_TESTER),
    "take_over_lane":         ("-   Y   -   Y   Y   -    -", BY_TESTER),
    "accept_unverified":      ("-   -   Y   Y   Y   -    -", BY_RELEASER),
    "add_member":             ("-   -   -   Y   Y   -    -", (OWNER,)),
    "add_user":               ("-   -   -   -   Y   -    -", (ADMIN,)),
    "apply_file":             ("-   -   -   -   Y   -    -", (ADMIN,)),
    "export_secrets":         ("-   -   -   -   Y   -    -", (ADMIN,)),
    "export_config":          ("-   -   -   -   Y   -    -", (ADMIN,)),
    "view":                   ("Y   Y   Y   Y   Y   -    -", (DEV, TESTER, RELEASER, OWNER)),
    # a tester deploys onto a lane taken over; a developer may deploy but not take over
    "take_over_deploy":       ("-   Y   -   Y   Y   -    -", BY_TESTER),
    "trust_host":             ("-   -   -   -   Y   -    -", (ADMIN,)),
    # transitions, each from a state where it is possible
    "submit":                 ("Y   -   -   Y   Y   -    -", BY_DEV),
    "cancel":                 ("Y   -   Y   Y   Y   -    -", (DEV, RELEASER, OWNER)),
    "pass":                   ("-   Y   -   Y   Y   -    -", BY_TESTER),
    "reject":                 ("-   Y   -   Y   Y   -    -", BY_TESTER),
    "rollback":               ("-   -   Y   Y   Y   -    -", BY_RELEASER),
    "deploy@test":            ("Y   -   -   Y   Y   -    -", BY_DEV),
    "deploy@staging":         ("-   -   Y   Y   Y   -    -", BY_RELEASER),
    "release@prod":           ("-   -   Y   Y   Y   -    -", BY_RELEASER),
}
assert TABLE.keys() == ACTS.keys()

CASES = []
for name, (grid, needed) in TABLE.items():
    marks = grid.split()
    assert len(marks) == len(COLUMNS) and set(marks) <= {"Y", "-"}, (name, grid)
    CASES += [pytest.param(ACTS[name], column, mark == "Y", needed, id=f"{name}-{column}")
              for column, mark in zip(COLUMNS, marks, strict=True)]


@pytest.mark.parametrize("act,column,allowed,needed", CASES)
def test_who_may_take_each_service_action(world: World, act: Act, column: str, allowed: bool,
                                          needed: tuple[str, ...]) -> None:
    with world.runtime.store.session() as session:
        by = users.acting_user(session, USERS[column])
        try:
            if allowed:
                act(world, session, by)
                return
            with pytest.raises(PermissionDenied) as caught:
                act(world, session, by)
        finally:
            session.rollback()
    message, name = str(caught.value), USERS[column]
    assert caught.value.needed_roles == needed, message
    if needed == (ADMIN,):
        assert f"needs a site admin; {name} is not one" in message
    else:
        assert f"needs the role {' or '.join(needed)}; {name} has " in message

