"""A scratch world for engine tests: git repositories, local hosts, a golive.yaml.

Everything lives under one folder (a test's ``tmp_path``)::

    repo = make_repo(root, "web", {"src/index.html": "v1"},
                     branches={"feature/x": {"src/index.html": "v2"}})
    commit(repo, "feature/x", {"src/new.txt": "more"})      # the new branch head
    apply_config(runtime, root / "golive.yaml", {"hosts": local_hosts(root, ["h1"]), ...})

and, to drive an order through the engine in this process::

    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", "feature/x")])
    deployment_id, ok = deploy(runtime, order_id, "alice")
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import ColumnElement, inspect, select

from golive.domain.release import release_order
from golive.services import configuration, orders, requests, rollback, users
from golive.services import deploy as engine
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import Base, SqlExecution, TargetDatabase

M = TypeVar("M", bound=Base)

IDENTITY = {"GIT_AUTHOR_NAME": "tester", "GIT_AUTHOR_EMAIL": "tester@localhost",
            "GIT_COMMITTER_NAME": "tester", "GIT_COMMITTER_EMAIL": "tester@localhost"}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; its stdout (stripped). Raises with git's message on failure."""
    done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **IDENTITY},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass(frozen=True)
class Repo:
    origin: Path
    """The bare repository golive fetches from (its ``repo:`` URL)."""
    work: Path
    """A clone that tests commit in and push from."""

    @property
    def url(self) -> str:
        return str(self.origin)

    def head(self, branch: str) -> str:
        return git(self.origin, "rev-parse", f"refs/heads/{branch}")

    def parents(self, commit: str) -> list[str]:
        return git(self.origin, "rev-list", "--parents", "-n", "1", commit).split()[1:]


def _write(work: Path, files: Mapping[str, str | None]) -> None:
    for rel, text in files.items():
        target = work / rel
        if text is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def make_repo(root: Path, name: str, files: Mapping[str, str], *,
              branches: Mapping[str, Mapping[str, str | None]] | None = None,
              main: str = "main") -> Repo:
    """``<root>/repos/<name>.git``: ``main`` with ``files``, each branch one commit on it."""
    origin = root / "repos" / f"{name}.git"
    work = root / "clones" / name
    origin.mkdir(parents=True)
    work.mkdir(parents=True)
    git(origin, "init", "-q", "--bare", "-b", main)
    git(work, "init", "-q", "-b", main)
    git(work, "remote", "add", "origin", str(origin))
    _write(work, files)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"{name}: first version")
    git(work, "push", "-q", "origin", main)
    repo = Repo(origin, work)
    for branch, changes in (branches or {}).items():
        git(work, "checkout", "-q", "-B", branch, main)
        commit(repo, branch, changes, f"{name}: {branch}")
    git(work, "checkout", "-q", main)
    return repo


def commit(repo: Repo, branch: str, files: Mapping[str, str | None], message: str = "") -> str:
    """Commit ``files`` (None deletes one) on ``branch`` and push it; the new head."""
    git(repo.work, "checkout", "-q", branch)
    _write(repo.work, files)
    git(repo.work, "add", "-A")
    git(repo.work, "commit", "-q", "--allow-empty", "-m", message or f"change on {branch}")
    git(repo.work, "push", "-q", "origin", branch)
    return repo.head(branch)


def host_root(root: Path, name: str) -> Path:
    return root / "hosts" / name


def local_hosts(root: Path, names: Sequence[str]) -> list[dict[str, str]]:
    """``hosts:`` entries for local hosts, each a folder ``<root>/hosts/<name>``."""
    return [{"name": n, "transport": "local", "root": str(host_root(root, n))} for n in names]


def apply_config(runtime: Runtime, path: Path, config: Mapping[str, Any],
                 env: Mapping[str, str] | None = None) -> None:
    """Write ``config`` as a golive.yaml at ``path`` and apply it as the site admin."""
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        configuration.apply_file(session, runtime.box, admin, path, env=env)
        session.commit()


def file_order(runtime: Runtime, by: str, project: str, items: list[ItemRequest],
               title: str = "") -> int:
    """A submitted order; its id."""
    with runtime.store.session() as session:
        user = users.acting_user(session, by)
        order = orders.create_order(session, user, project, items, title)
        session.commit()
        orders.transition(session, order.id, "submit", user)
        session.commit()
        return order.id


def act(runtime: Runtime, order_id: int, action: str, by: str, reason: str = "") -> str:
    """Take a person's action (pass, reject, cancel, ...) on the order; its new state."""
    with runtime.store.session() as session:
        order = orders.transition(session, order_id, action, users.acting_user(session, by),
                                  reason=reason)
        session.commit()
        return order.state


def deploy(runtime: Runtime, order_id: int, by: str, *, stage: str | None = None,
           kind: str = "iterative", action: str = "deploy") -> tuple[int, bool]:
    """Request a deployment (or a release) and run it here; (deployment id, succeeded)."""
    with runtime.store.session() as session:
        deployment = requests.request_deployment(session, order_id, users.acting_user(session, by),
                                               stage=stage, kind=kind, action=action)
        session.commit()
        deployment_id = deployment.id
    return deployment_id, engine.run_deployment(runtime, deployment_id)


def roll_back(runtime: Runtime, order_id: int, by: str, *, stage: str | None = None,
              to_release: str = "") -> tuple[int, bool]:
    """Request a rollback and run it here; (deployment id, succeeded)."""
    with runtime.store.session() as session:
        deployment = rollback.request_rollback(session, order_id,
                                               users.acting_user(session, by), stage=stage,
                                               to_release=to_release)
        session.commit()
        deployment_id = deployment.id
    return deployment_id, engine.run_deployment(runtime, deployment_id)


def current_target(root: Path, host: str, path: str) -> str | None:
    """Where ``<path>/current`` on a local host points (``releases/<id>``), or None."""
    link = host_root(root, host) / path / "current"
    return os.readlink(link) if link.is_symlink() else None


def release_ids(root: Path, host: str, path: str) -> list[str]:
    """The release folders kept under ``<path>/releases`` on a local host, oldest first."""
    folder = host_root(root, host) / path / "releases"
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if p.is_dir()), key=release_order)


def rows(runtime: Runtime, model: type[M], *where: ColumnElement[bool]) -> list[M]:
    """The store's rows of ``model`` matching ``where``, in id order, detached."""
    with runtime.store.session() as session:
        found = list(session.scalars(select(model).where(*where)
                                     .order_by(*inspect(model).primary_key)))
        session.expunge_all()
    return found


def leave_unknown(runtime: Runtime, order_id: int, database: str, stage: str,
                  by: str) -> None:
    """The order's first statement as a run that died mid-statement left it on
    ``database``: ``unknown``, for a person to resolve."""
    with runtime.store.session() as session:
        statement = get_order(session, order_id).items[0].statements[0]
        target = session.scalars(select(TargetDatabase).where(
            TargetDatabase.name == database)).one()
        session.add(SqlExecution(database_id=target.id, order_id=order_id, stage=stage,
                                 statement_id=statement.id, checksum=statement.checksum,
                                 status="unknown", executed_by=by))
        session.commit()


Moves = list[tuple[str, str | None]]
_TO_TEST: Moves = [("submit", "dev"), ("deploy", "dev"), ("succeed", None)]
_TO_STAGING: Moves = [*_TO_TEST, ("pass", "tess"), ("deploy", "rel"), ("succeed", None)]
MOVES_TO: dict[str, Moves] = {
    "draft": [],
    "submitted": [("submit", "dev")],
    "test:deploying": [("submit", "dev"), ("deploy", "dev")],
    "test:deployed": _TO_TEST,
    "test:failed": [("submit", "dev"), ("deploy", "dev"), ("fail", None)],
    "test:rejected": [*_TO_TEST, ("reject", "tess")],
    "test:passed": [*_TO_TEST, ("pass", "tess")],
    "staging:deployed": _TO_STAGING,
    "staging:passed": [*_TO_STAGING, ("pass", "tess")],
    "done": [*_TO_STAGING, ("pass", "tess"), ("release", "rel"), ("succeed", None)],
    "cancelled": [("cancel", "dev")],
}
"""The moves (action, who; None: the deploy engine) that take a fresh order of a
test, staging, prod project to a state, by the people dev (developer), tess (tester)
and rel (releaser)."""


def move_to(runtime: Runtime, order_id: int, state: str) -> None:
    """Take a fresh order to ``state`` through the state machine, no deployment run."""
    with runtime.store.session() as session:
        for action, actor in MOVES_TO[state]:
            user = None if actor is None else users.acting_user(session, actor)
            reason = "the cart is empty" if action == "reject" else ""
            orders.transition(session, order_id, action, user, reason=reason)
            session.commit()
