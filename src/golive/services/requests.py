"""Asking for a deployment: every check before the engine runs, in one transaction.

``request_deployment`` takes, in this order: the stage (the order's next, or the
one asked for); an interrupted deployment to resume there; for a release, the
release windows (refused, or queued with ``when_open``) and the staleness guard;
the lane (held from now on); the deployment locks of every service on that
stage and lane; the order's transition to ``<stage>:deploying``. Any refusal
leaves everything as it was. A runner (``worker/``) then carries out the
deployment record by its id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from golive.domain import messages
from golive.domain.permissions import Permission, needed_roles
from golive.domain.workflow import Action
from golive.errors import Busy, InputError, RefusedError
from golive.services import agents, gates, lanes, locks, notify
from golive.services.history import note
from golive.services.liveness import this_runner
from golive.services.orders import check_transition, get_order, require_deployer, transition
from golive.services.sqlops import check_review, check_settled
from golive.services.users import require
from golive.settings import get_settings
from golive.store.models import Deployment, Order, User, utcnow


@dataclass(frozen=True)
class Ask:
    """What the person asked for, besides order and stage."""

    kind: str = "iterative"
    lane: str = ""
    action: str = Action.DEPLOY.value
    only_hosts: tuple[str, ...] = ()
    pause_after_batch: bool = False
    prune_jobs: bool = False
    full_transfer: bool = False
    """Send every host the whole archive, never a delta (``--full-transfer``)."""
    take_over: bool = False
    lock_wait: float = 0.0
    resume: bool = True
    accept_unverified: bool = False
    when_open: bool = False
    policy: str = ""
    """auto_promote / auto_release: the project setting acting after a pass."""
    now: datetime | None = None
    home: Path | None = field(default=None, repr=False)
    """GOLIVE_HOME, for the git mirrors of the staleness guard (default: the settings')."""


def natural_stage(order: Order) -> str:
    """The stage a deploy of ``order`` goes to by default (the rules check it)."""
    stages = tuple(order.project.stages)
    current, _, phase = order.state.partition(":")
    if order.state == "done":
        return stages[-1]
    if current not in stages:
        return stages[0]
    index = stages.index(current)
    if phase == "passed" and index + 1 < len(stages):
        return stages[index + 1]
    return current


def interrupted_on(session: Session, order_id: int, stage: str) -> Deployment | None:
    """The order's latest deployment on ``stage`` when it was interrupted (resumable)."""
    latest = session.scalar(select(Deployment).where(
        Deployment.order_id == order_id, Deployment.stage == stage,
        Deployment.kind.in_(("iterative", "full")), Deployment.status != "queued",
    ).order_by(Deployment.id.desc()).limit(1))
    if latest is None or latest.status != "interrupted" or latest.only_hosts:
        return None
    return latest


POLICY_REASONS = {"auto_promote": "after {by}'s pass", "auto_release": "after {by}'s pass",
                  "redeploy_on_push": "a push to the order's branch"}
"""Why an automatic policy moved the order, for its history."""


def request_deployment(session: Session, order_id: int, by: User, *, stage: str | None = None,
                       ask: Ask | None = None, **options: Any) -> Deployment:
    """Check everything and write the deployment record (the caller commits).

    ``options`` are the fields of ``Ask`` (a shorthand for callers and tests). A canary
    (``only_hosts``) is checked like the deploy it previews but leaves the order's state
    alone and records no commit ledger. A release outside the windows with ``when_open``
    returns a ``queued`` deployment the scheduler starts later. When another request
    took a lock first (a race past the wait), the whole request is tried again until
    ``lock_wait`` runs out: the session is rolled back in between, so call it in a
    session of its own.
    """
    ask = ask or Ask(**options)
    deadline = time.monotonic() + ask.lock_wait
    while True:
        try:
            return _request(session, order_id, by, stage, ask)
        except Busy:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            session.rollback()
            time.sleep(min(locks.POLL_EVERY, left))
            ask = replace(ask, lock_wait=max(0.0, deadline - time.monotonic()))


def _request(session: Session, order_id: int, by: User, stage: str | None,
             ask: Ask) -> Deployment:
    if ask.kind not in ("iterative", "full"):
        raise InputError(f"unknown deploy kind {ask.kind!r}: iterative or full")
    order = get_order(session, order_id)
    target = stage or natural_stage(order)
    interrupted = None if ask.only_hosts else interrupted_on(session, order.id, target)
    resumed = interrupted if ask.resume else None
    action = resumed.action if resumed is not None else ask.action
    unverified: dict[str, list[str]] = {}
    if resumed is None and _is_release(order, target, ask):
        check_transition(session, order_id, action, by, stage=target, policy=ask.policy)
        queued, unverified = _release_gates(session, order, target, by, ask)
        if queued is not None:
            return queued
    deployment = resumed or Deployment(
        order_id=order.id, stage=target, kind=ask.kind, action=action, requested_by=by.name,
        only_hosts=list(ask.only_hosts), pause_after_batch=ask.pause_after_batch,
        prune_jobs=ask.prune_jobs, full_transfer=ask.full_transfer, policy=ask.policy,
        accept_unverified_by=by.name if unverified else "")
    started = _start(session, order, deployment, by,
                     lane=resumed.lane if resumed else ask.lane, take_over=ask.take_over,
                     lock_wait=ask.lock_wait, resumed=resumed is not None)
    # written after the locks were waited for: SQLite has one writer at a time
    if interrupted is not None and resumed is None:
        interrupted.status = "abandoned"
        note(session, order, by.name, "deployment",
             f"deployment {interrupted.id} abandoned for a new one (--no-resume)")
    if unverified:
        _note_unverified(session, order, by, unverified)
    return started


def _is_release(order: Order, target: str, ask: Ask) -> bool:
    return not ask.only_hosts and target == order.project.stages[-1]


def _start(session: Session, order: Order, deployment: Deployment, by: User, *, lane: str,
           take_over: bool, lock_wait: float, resumed: bool = False) -> Deployment:
    """Lane, locks, transition: the deployment becomes ``pending`` for a runner."""
    target = deployment.stage
    canary, policy = bool(deployment.only_hosts), deployment.policy
    also: tuple[str, ...] = ()
    if take_over:  # whoever may take a lane over may deploy onto it
        require(session, by, order.project, Permission.TAKE_OVER_LANE,
                f"taking over a lane of {target}")
        also = needed_roles(Permission.TAKE_OVER_LANE)
    check_transition(session, order.id, deployment.action, by, stage=target, policy=policy,
                     also=also)
    _check_sql(session, order, target, by)
    preview = lanes.preview_lane(session, order, target, lane)
    locks.wait_until_free(engine_of(session), lock_keys(order, target, preview), lock_wait)
    if canary:
        _check_canary_hosts(order, target, preview, tuple(deployment.only_hosts))
    else:
        reason = POLICY_REASONS.get(policy, "").format(by=by.name)
        order = transition(session, order.id, deployment.action, by, stage=target,
                           reason=reason, policy=policy, also=also)
    chosen = lanes.take_lane(session, order, target, by, requested=lane, take_over=take_over)
    deployment.lane, deployment.status, deployment.runner = chosen, "pending", this_runner()
    deployment.zone = agents.zone_for(session, order, target, chosen)  # the agents' queue
    if resumed:
        deployment.resumes += 1
        deployment.error, deployment.finished_at = "", None
    session.add(deployment)
    session.flush()
    locks.acquire(session, lock_keys(order, target, chosen), deployment)
    what = "resumed" if resumed else f"{deployment.kind}{' canary' if canary else ''}"
    note(session, order, policy or by.name, "deployment",
         f"deployment {deployment.id} {what} on {target}" + (f" lane {chosen}" if chosen else ""))
    return deployment


def _check_sql(session: Session, order: Order, target: str, by: User) -> None:
    """Refuse (before anything is written) SQL the review rules refuse unapproved, or a
    statement left unknown; the people who may settle it are told at once — in a
    transaction of its own, since the refusal rolls the caller's back."""
    try:
        check_review(session, order, target)
    except RefusedError as exc:
        _tell(session, order.id, messages.SQL_WAITING_APPROVAL, target, by.name, exc.message)
        raise
    check_settled(session, order, target)


def _tell(session: Session, order_id: int, event: str, stage: str, actor: str,
          reason: str) -> None:
    with Session(engine_of(session)) as own:
        notify.emit(own, get_order(own, order_id), event, actor=actor, stage=stage,
                    reason=reason)
        own.commit()


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def lock_keys(order: Order, stage: str, lane: str) -> list[locks.LockKey]:
    """One lock per service of the order on ``stage`` (its lane, when it has lanes)."""
    keys = []
    for item in order.items:
        setting = next((s for s in item.service.stages if s.stage == stage), None)
        has_lanes = bool(lanes.service_lanes(setting))
        keys.append(locks.LockKey(item.service_id, stage, lane if has_lanes else "",
                                  item.service.name))
    return keys


def _release_gates(session: Session, order: Order, target: str, by: User,
                   ask: Ask) -> tuple[Deployment | None, dict[str, list[str]]]:
    """The release windows and the staleness guard: a queued deployment when the window is
    closed and the release may wait for it; the unverified commits accepted."""
    now = ask.now or utcnow()
    opens = gates.window_opens(order.project, now)
    if opens is not None and not ask.when_open:
        raise gates.outside_window(order.project, opens)
    commits = gates.unverified_commits(ask.home or get_settings().home, session, order)
    if commits:
        if not ask.accept_unverified:
            raise gates.unverified_error(order, commits)
        require(session, by, order.project, Permission.ACCEPT_UNVERIFIED,
                f"order {order.id}: releasing commits {list(order.project.stages)[-2]} did "
                "not verify")
    if opens is None:
        return None, commits
    deployment = Deployment(order_id=order.id, stage=target, kind=ask.kind,
                            action=Action.RELEASE.value, status="queued", requested_by=by.name,
                            not_before=opens, pause_after_batch=ask.pause_after_batch,
                            prune_jobs=ask.prune_jobs, full_transfer=ask.full_transfer,
                            policy=ask.policy,
                            accept_unverified_by=by.name if commits else "")
    session.add(deployment)
    session.flush()
    when = f"{opens:%Y-%m-%d %H:%M %Z}"
    note(session, order, ask.policy or by.name, "release_queued",
         f"deployment {deployment.id} queued for the release window opening {when}")
    notify.emit(session, order, messages.RELEASE_QUEUED, actor=ask.policy or by.name,
                stage=target, reason=f"starts when the window opens: {when}")
    if commits:
        _note_unverified(session, order, by, commits)
    return deployment, {}


def _note_unverified(session: Session, order: Order, by: User,
                     commits: dict[str, list[str]]) -> None:
    listed = "; ".join(f"{svc}: {', '.join(c.split()[0] for c in lines)}"
                       for svc, lines in commits.items())
    note(session, order, by.name, "accept_unverified",
         f"released without verifying on {list(order.project.stages)[-2]}: {listed}")


def start_queued(session: Session, deployment: Deployment, now: datetime | None = None
                 ) -> Deployment:
    """The scheduler starts a queued release inside its window, as the person who queued
    it: their permission, the staleness guard and the locks are checked again now."""
    order = get_order(session, deployment.order_id)
    by = session.scalar(select(User).where(User.name == deployment.requested_by))
    if by is None:
        raise InputError(f"user {deployment.requested_by} who queued deployment "
                         f"{deployment.id} no longer exists")
    opens = gates.window_opens(order.project, now or utcnow())
    if opens is not None:
        deployment.not_before = opens
        raise gates.outside_window(order.project, opens)
    check_transition(session, order.id, deployment.action, by, stage=deployment.stage,
                     policy=deployment.policy)
    commits = gates.unverified_commits(get_settings().home, session, order)
    if commits and not deployment.accept_unverified_by:
        raise gates.unverified_error(order, commits)
    return _start(session, order, deployment, by, lane="", take_over=False, lock_wait=0)


def _check_canary_hosts(order: Order, stage: str, lane: str, only: tuple[str, ...]) -> None:
    known = {sh.host.name for item in order.items for setting in item.service.stages
             if setting.stage == stage for sh in setting.hosts
             if sh.kind == "deploy" and (not lane or not sh.lane or sh.lane == lane)}
    unknown = sorted(set(only) - known)
    if unknown:
        raise InputError(f"--hosts names {', '.join(unknown)}, not a host of this order on "
                         f"{stage}: {', '.join(sorted(known))}")


def resume_batches(session: Session, order_id: int, by: User) -> Deployment:
    """Let a deployment paused between batches go on by one batch."""
    order = get_order(session, order_id)
    deployment = session.scalar(select(Deployment).where(
        Deployment.order_id == order_id, Deployment.status == "paused"
    ).order_by(Deployment.id.desc()))
    if deployment is None:
        raise InputError(f"order {order_id} has no deployment paused between batches")
    require_deployer(session, order, deployment.stage, by)
    deployment.batches_released += 1
    session.flush()
    return deployment
