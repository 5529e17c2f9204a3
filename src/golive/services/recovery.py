"""On start: what a golive process that died left behind, made true again.

* a statement it left ``running`` becomes ``unknown`` — never re-run
  automatically; a person resolves it (``golive sql resolve``);
* a deployment it left pending, running or paused becomes ``interrupted`` (the
  steps it had begun too), its deployment locks are freed and its order moves to
  ``<stage>:failed``; ``golive order deploy N`` resumes it: the steps it finished
  are checked on the hosts, not done again (``services/deploy.py``);
* a lock it held on a target database is released.

A golive process on this machine is dead when its pid is gone (``liveness``); an agent,
on any machine, when its heartbeat stopped (``agents``): the server checks both every
few seconds while agents run (``api/app.py``), so a killed agent's deployment is
``interrupted`` within a minute.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from golive.domain import messages
from golive.domain.workflow import Action
from golive.errors import RefusedError
from golive.services import locks, notify
from golive.services.agents import agent_name_of, dead_judge
from golive.services.orders import get_order, transition
from golive.store.models import Deployment, LogLine, SqlExecution, SqlLock, utcnow

UNKNOWN_MESSAGE = ("interrupted: golive stopped while the statement ran; it may or may not "
                   "have taken effect: resolve it with `golive sql resolve`")


def recover(session: Session) -> int:
    """Repair what dead local runners left; the number of rows changed. Caller commits."""
    changed = 0
    is_dead = dead_judge(session)
    for execution in session.scalars(select(SqlExecution).where(SqlExecution.status == "running")):
        if is_dead(execution.runner):
            execution.status, execution.message = "unknown", UNKNOWN_MESSAGE
            execution.finished_at = utcnow()
            notify.emit(session, get_order(session, execution.order_id),
                        messages.STATEMENT_UNKNOWN, actor="golive", stage=execution.stage,
                        reason=UNKNOWN_MESSAGE)
            changed += 1
    for lock in session.scalars(select(SqlLock)):
        if is_dead(lock.runner):
            session.execute(delete(SqlLock).where(SqlLock.database_id == lock.database_id))
            changed += 1
    live = ("pending", "running", "paused")
    for deployment in session.scalars(select(Deployment).where(Deployment.status.in_(live))):
        if is_dead(deployment.runner):
            _interrupt(session, deployment)
            changed += 1
    session.flush()
    return changed


def _interrupt(session: Session, deployment: Deployment) -> None:
    agent = agent_name_of(deployment.runner)
    interrupt(session, deployment,
              f"interrupted: agent {agent} running this deployment stopped answering"
              if agent else "interrupted: the golive process running this deployment stopped")


def interrupt(session: Session, deployment: Deployment, why: str) -> None:
    """Mark ``deployment`` interrupted for ``why`` (resumable), free its locks, fail its
    order's stage. The caller commits."""
    deployment.status, deployment.error, deployment.finished_at = "interrupted", why, utcnow()
    session.add(LogLine(deployment_id=deployment.id, level="error",
                        text=f"{why}; `golive order deploy {deployment.order_id}` resumes it"))
    for step in deployment.steps:
        if step.status == "running":
            step.status, step.finished_at, step.message = "interrupted", utcnow(), why
    locks.release(session, deployment.id)
    if deployment.kind == "rollback" or deployment.only_hosts:
        return  # these did not move the order
    try:
        transition(session, deployment.order_id, Action.FAIL, None, reason=why)
    except RefusedError:
        pass  # the order already moved on (e.g. cancelled by hand)
