"""After a pass: the project's ``auto_promote`` deploys the order on the next stage, and
``auto_release`` releases it when the next stage is the last (outside the release
windows it is queued for the next one). A refusal (a lock, a lane, the staleness
guard) does not undo the pass: it is written in the order's history, and a person
deploys by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from golive.domain.workflow import Action
from golive.errors import GoliveError
from golive.services.history import note
from golive.services.orders import get_order
from golive.services.requests import natural_stage, request_deployment
from golive.store.models import Deployment, User

AUTO_PROMOTE, AUTO_RELEASE = "auto_promote", "auto_release"


@dataclass(frozen=True)
class Promotion:
    deployment: Deployment | None
    message: str


def after_pass(session: Session, order_id: int, by: User, now: datetime | None = None
               ) -> Promotion:
    """Start what the project's settings start after ``by`` passed the order's stage.

    Call it in a session of its own after the pass was committed: a refusal rolls the
    session back and writes only the refusal in the history. The caller commits, then
    runs the deployment unless it is queued."""
    order = get_order(session, order_id)
    project = order.project
    stage, _, phase = order.state.partition(":")
    following = natural_stage(order)
    if phase != "passed" or not project.auto_promote or following == stage:
        return Promotion(None, "")
    last = following == project.stages[-1]
    if last and not project.auto_release:
        return Promotion(None, f"{following} is released by a releaser (auto_release is off)")
    policy = AUTO_RELEASE if last else AUTO_PROMOTE
    action = Action.RELEASE.value if last else Action.DEPLOY.value
    try:
        deployment = request_deployment(session, order_id, by, stage=following, action=action,
                                        policy=policy, when_open=last, now=now)
    except GoliveError as exc:
        session.rollback()
        note(session, get_order(session, order_id), policy, "auto_refused", exc.message[:2000])
        return Promotion(None, f"{policy} did not start: {exc.message}")
    verb = "queued" if deployment.status == "queued" else "started"
    return Promotion(deployment, f"{policy}: deployment {deployment.id} on {following} {verb}")
