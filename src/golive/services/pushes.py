"""Push webhooks: a push to the branch of an order being tested redeploys it there.

``handle_push`` checks the request against the project's push secret (the provider's
token or signature, ``domain/pushes.py``), reads the push and, when the project's
``redeploy_on_push`` is on, asks an iterative deployment of every open order of the
project with an item on the pushed branch whose state is ``<stage>:deployed``,
``failed`` or ``rejected`` on a stage before the last: the setting acts (the history
names ``redeploy_on_push``) on behalf of the order's creator, as ``auto_promote`` does
after a pass. The last stage is never redeployed by a push: that is a release. An order
whose commit ledger already has the pushed commit there (a delivery sent again) is left
alone.

Each order's request runs in a savepoint of its own: a refusal (a lock, a lane, the SQL
review) undoes only that order's request, is written in its history and does not stop
the others. The caller records the request, commits, then starts the deployments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain.pushes import Push, check_provider, event_of, parse_push, verify
from golive.domain.workflow import Action, Phase
from golive.errors import GoliveError, InputError, PermissionDenied
from golive.services.history import note
from golive.services.orders import get_order
from golive.services.requests import request_deployment
from golive.services.users import get_project
from golive.store.models import CommitLedger, Order, OrderItem, Project, User
from golive.store.secrets import SecretBox

REDEPLOY_ON_PUSH = "redeploy_on_push"
REDEPLOYABLE = (Phase.DEPLOYED.value, Phase.FAILED.value, Phase.REJECTED.value)


@dataclass
class PushOutcome:
    deployments: list[int] = field(default_factory=list)
    """The deployments asked for (``pending``): the caller commits, then starts them."""
    ignored: str = ""
    """Why the request started nothing, when nothing was even tried ("" otherwise)."""
    refused: dict[int, str] = field(default_factory=dict)
    """Order id → why its redeploy was refused (also written in its history)."""
    push: Push | None = None


@dataclass(frozen=True)
class _Candidate:
    order_id: int
    stage: str
    creator_id: int


def handle_push(session: Session, box: SecretBox, provider: str, project_name: str,
                headers: Mapping[str, str], body: bytes, now: float | None = None
                ) -> PushOutcome:
    """Verify a push webhook for ``project_name`` and redeploy the orders it concerns.

    ``headers`` with lower-case names, ``body`` the raw bytes (signatures cover them).
    NotFound for an unknown provider or project, PermissionDenied without a push secret
    or with a bad token or signature, InputError for a body that is not JSON."""
    check_provider(provider)
    project = get_project(session, project_name)
    if not project.push_secret_enc:
        raise PermissionDenied(f"project {project.name} takes no push webhooks: it has no "
                               "push_secret (set it in golive.yaml)")
    problem = verify(provider, headers, body, box.open(project.push_secret_enc),
                     time.time() if now is None else now)
    if problem:
        raise PermissionDenied(f"push webhook for project {project.name} refused: {problem}")
    push = parse_push(provider, headers, _json(body))
    if push is None:
        event = event_of(provider, headers) or "no event header"
        return PushOutcome(ignored=f"not a push to a branch ({provider} event: {event})")
    if push.deleted:
        return PushOutcome(ignored=f"branch {push.branch} was deleted", push=push)
    if not project.redeploy_on_push:
        return PushOutcome(ignored=f"redeploy_on_push is off for project {project.name}",
                           push=push)
    candidates, current = _being_tested(session, project, push)
    if not candidates and current:  # a delivery sent again, or a push of nothing new
        listed = ", ".join(str(order_id) for order_id in current)
        return PushOutcome(ignored=f"{push.branch} at {push.after[:12]} is already deployed "
                                   f"for order {listed}", push=push)
    if not candidates:
        return PushOutcome(ignored=f"no order of project {project.name} is being tested on "
                                   f"branch {push.branch}", push=push)
    outcome = PushOutcome(push=push)
    for candidate in candidates:
        try:
            outcome.deployments.append(_redeploy(session, candidate, push, provider))
        except GoliveError as exc:
            outcome.refused[candidate.order_id] = exc.message
    # written after every request: on SQLite a write here would hold the one writer that
    # the next request's lock rows and notifications (their own transactions) wait for
    for order_id, message in outcome.refused.items():
        note(session, get_order(session, order_id), REDEPLOY_ON_PUSH, "auto_refused",
             f"a push of {push.after[:12]} to {push.branch} redeployed nothing: "
             f"{message}"[:2000])
    return outcome


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the webhook body is not JSON: set the webhook's content type to "
                         "application/json") from None


def _being_tested(session: Session, project: Project, push: Push
                  ) -> tuple[list[_Candidate], list[int]]:
    """Open orders of ``project`` with an item on the pushed branch, deployed (or failed,
    or rejected) on a stage before the last, oldest first: (those to redeploy, the ids of
    those whose every item on the branch is deployed there at the pushed commit)."""
    stages = list(project.stages)
    orders = session.scalars(
        select(Order).where(Order.project_id == project.id, Order.id.in_(
            select(OrderItem.order_id).where(OrderItem.branch == push.branch)))
        .order_by(Order.id))
    found, current = [], []
    for order in orders:
        stage, _, phase = order.state.partition(":")
        if phase not in REDEPLOYABLE or stage not in stages[:-1]:
            continue
        if _deployed_at(session, order, stage, push):
            current.append(order.id)
        else:
            found.append(_Candidate(order.id, stage, order.created_by_id))
    return found, current


def _deployed_at(session: Session, order: Order, stage: str, push: Push) -> bool:
    """Whether the commit ledger has the pushed commit for each of the order's services on
    the pushed branch, on ``stage``."""
    services = {item.service_id for item in order.items if item.branch == push.branch}
    commits = session.scalars(select(CommitLedger.branch_commit).where(
        CommitLedger.order_id == order.id, CommitLedger.stage == stage,
        CommitLedger.service_id.in_(services))).all()
    return len(commits) == len(services) and all(c.lower() == push.after for c in commits)


def _redeploy(session: Session, candidate: _Candidate, push: Push, provider: str) -> int:
    """Ask the iterative redeploy in a savepoint (undone alone when refused); its id.

    On SQLite the driver opens no transaction before the savepoint, so releasing it
    commits this order's request at once — each request is still all or nothing."""
    with session.begin_nested():
        creator = session.get_one(User, candidate.creator_id)
        deployment = request_deployment(
            session, candidate.order_id, creator, stage=candidate.stage, kind="iterative",
            action=Action.DEPLOY.value, policy=REDEPLOY_ON_PUSH)
        by = f" by {push.pusher}" if push.pusher else ""
        note(session, get_order(session, candidate.order_id), REDEPLOY_ON_PUSH, "push",
             f"{provider}: {push.after[:12]} pushed to {push.branch}{by}; deployment "
             f"{deployment.id} redeploys {candidate.stage} for {creator.name}")
        return deployment.id
