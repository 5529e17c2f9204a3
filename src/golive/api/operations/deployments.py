"""Deployments: deploy, release, roll back and resume an order; its plan, its deployments
and their logs.

The operations only write the deployment record (every check is in
``services/requests.py`` and ``services/rollback.py``) and ask for it to be started
with ``work.start``: the server's runner carries it out after the commit, while the
local CLI runs it in its own process and follows it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.api.registry import Work, operation
from golive.api.schemas.deployments import (
    BatchesResumed,
    DeploymentDetail,
    DeploymentLog,
    DeploymentView,
    DeployRequest,
    PlanView,
    ReleaseRequest,
    RollbackRequest,
)
from golive.domain.workflow import Action
from golive.errors import NotFound
from golive.services import deploy as deploy_service
from golive.services import lanes, progress, requests
from golive.services.orders import get_order, readable_order
from golive.services.rollback import request_rollback
from golive.store.models import Deployment, LogLine, User

STARTED = 202
"""A deployment is carried out after the answer: accepted, not done."""


def view(session: Session, deployment: Deployment) -> dict[str, Any]:
    """The deployment as `deploy --json` prints it, with its order's state now."""
    return {
        "id": deployment.id, "order": deployment.order_id, "stage": deployment.stage,
        "lane": deployment.lane, "kind": deployment.kind, "status": deployment.status,
        "requested_by": deployment.requested_by, "created_at": deployment.created_at,
        "started_at": deployment.started_at, "finished_at": deployment.finished_at,
        "error": deployment.error, "action": deployment.action,
        "release_id": deployment.release_id, "resumes": deployment.resumes,
        "not_before": deployment.not_before, "policy": deployment.policy,
        "order_state": get_order(session, deployment.order_id).state,
        "zone": deployment.zone, "agent": deployment.agent,
    }


def steps(session: Session, deployment_id: int) -> list[dict[str, Any]]:
    """The deployment's steps in the order they started, with service and host names."""
    return [{"service": service, "host": host, "step": step.name, "status": step.status,
             "message": step.message, "started_at": step.started_at,
             "finished_at": step.finished_at}
            for step, service, host in progress.steps_of(session, deployment_id)]


def detail(session: Session, deployment: Deployment) -> dict[str, Any]:
    """The view, the canary's hosts, the batches let through and every step."""
    return {**view(session, deployment), "only_hosts": list(deployment.only_hosts or ()),
            "pause_after_batch": deployment.pause_after_batch,
            "batches_released": deployment.batches_released,
            "steps": steps(session, deployment.id)}


def readable_deployment(session: Session, deployment_id: int, by: User) -> Deployment:
    """The deployment, for ``by`` to read: who may read its order."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound("deployment", deployment_id)
    readable_order(session, deployment.order_id, by)
    return deployment


def _started(work: Work, deployment: Deployment) -> dict[str, Any]:
    if deployment.status != "queued":  # the scheduler starts a queued release
        work.start(deployment.id)
    return view(work.session, deployment)


@operation("order.deploy", "POST", "/orders/{number}/deploy", DeploymentView, status=STARTED)
def deploy(work: Work, number: int, body: DeployRequest) -> dict[str, Any]:
    """Deploy the order on a stage (its next by default; iterative unless ``full``). An
    interrupted deployment on that stage is resumed unless ``resume`` is false."""
    ask = requests.Ask(kind="full" if body.full else "iterative", lane=body.lane,
                       action=Action.DEPLOY.value, only_hosts=tuple(body.hosts),
                       pause_after_batch=body.pause_after_batch, prune_jobs=body.prune_jobs,
                       take_over=body.take_over, lock_wait=body.wait, resume=body.resume,
                       full_transfer=body.full_transfer)
    deployment = requests.request_deployment(work.session, number, work.user,
                                             stage=body.stage or None, ask=ask)
    return _started(work, deployment)


@operation("order.release", "POST", "/orders/{number}/release", DeploymentView,
           status=STARTED)
def release(work: Work, number: int, body: ReleaseRequest) -> dict[str, Any]:
    """Deploy the order on the last stage (releaser); outside the release windows it is
    refused, or queued with ``when_open`` (``status: queued``)."""
    ask = requests.Ask(kind="full" if body.full else "iterative", action=Action.RELEASE.value,
                       only_hosts=tuple(body.hosts), pause_after_batch=body.pause_after_batch,
                       prune_jobs=body.prune_jobs, lock_wait=body.wait,
                       accept_unverified=body.accept_unverified, when_open=body.when_open,
                       full_transfer=body.full_transfer)
    deployment = requests.request_deployment(work.session, number, work.user, ask=ask)
    return _started(work, deployment)


@operation("order.rollback", "POST", "/orders/{number}/rollback", DeploymentView,
           status=STARTED)
def rollback(work: Work, number: int, body: RollbackRequest) -> dict[str, Any]:
    """Switch the order's services back to the previous (or a kept) release. SQL is not
    undone."""
    deployment = request_rollback(work.session, number, work.user, stage=body.stage or None,
                                  to_release=body.to, lock_wait=body.wait)
    return _started(work, deployment)


@operation("order.resume", "POST", "/orders/{number}/resume", BatchesResumed)
def resume(work: Work, number: int) -> dict[str, Any]:
    """Let the order's deployment paused between batches switch its next batch."""
    deployment = requests.resume_batches(work.session, number, work.user)
    return {"order": number, "deployment": deployment.id,
            "batches_released": deployment.batches_released}


@operation("order.plan", "GET", "/orders/{number}/plan", PlanView)
def plan(work: Work, number: int, stage: str = "", full: bool = False,
         lane: str = "") -> dict[str, Any]:
    """What a deploy would do: per service old → new commit, statements to run or skip,
    jobs, hosts in batches. Fetches the git mirrors; touches no host and no database."""
    order = readable_order(work.session, number, work.user)
    target = stage or requests.natural_stage(order)
    resuming = deploy_service.resuming(work.session, order, target)
    lane = lane or lanes.preview_lane(work.session, order, target)
    result = deploy_service.build_plan(work.runtime, work.session, order, target,
                                       "full" if full else "iterative", lane,
                                       resume=resuming, estimate_transfer=True)
    # the plan's words: the user's language; a user who left it to their browser gets English
    return {**result.to_dict(), "language": work.user.language or "en"}


@operation("order.logs", "GET", "/orders/{number}/logs", DeploymentLog)
def logs(work: Work, number: int, deployment: int = 0) -> dict[str, Any]:
    """The log of the order's latest deployment (or of ``deployment``)."""
    readable_order(work.session, number, work.user)
    query = select(Deployment.id).where(Deployment.order_id == number)
    if deployment:
        query = query.where(Deployment.id == deployment)
    chosen = work.session.scalars(query.order_by(Deployment.id.desc())).first()
    if chosen is None:
        raise NotFound("deployment of order", number)
    lines = work.session.scalars(select(LogLine).where(LogLine.deployment_id == chosen)
                                 .order_by(LogLine.id))
    return {"deployment": chosen, "lines": [
        {"at": ln.at, "level": ln.level, "service": ln.service, "host": ln.host,
         "text": ln.text} for ln in lines]}


@operation("deployment.show", "GET", "/deployments/{deployment_id}", DeploymentDetail)
def show(work: Work, deployment_id: int) -> dict[str, Any]:
    """One deployment: its status, error, release and the progress of every step."""
    return detail(work.session, readable_deployment(work.session, deployment_id, work.user))


@operation("deployment.list", "GET", "/orders/{number}/deployments", list[DeploymentView])
def list_(work: Work, number: int) -> list[dict[str, Any]]:
    """The order's deployments, oldest first."""
    readable_order(work.session, number, work.user)
    found = work.session.scalars(select(Deployment).where(Deployment.order_id == number)
                                 .order_by(Deployment.id))
    return [view(work.session, d) for d in found]
