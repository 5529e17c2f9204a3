"""What a person may do with an order, what waits for them, and the releases a rollback
can go back to — read from the store, decided by ``domain/offers.py``.

``facts_of`` gathers what the rules need beyond the order's state (SQL awaiting
approval, statements left unknown, a paused deployment), so the order page offers
exactly the buttons the services would accept, and the dashboard lists the orders whose
next step is one of the viewer's roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain import offers as rules
from golive.domain.release import release_order
from golive.domain.workflow import CANCELLED, DONE, Actor
from golive.services.ledger import RUNNING, UNKNOWN
from golive.services.requests import natural_stage
from golive.services.sqlops import review_refusals
from golive.services.users import actor_for
from golive.store.models import (
    Deployment,
    DeploymentStep,
    Member,
    Order,
    Project,
    SqlExecution,
    SqlStatement,
    User,
)

CLOSED = (DONE, CANCELLED)
RECENT = 15
"""Deployments the dashboard shows."""
MINE = 20
"""Open orders of the viewer's the dashboard shows."""


def facts_of(session: Session, order: Order, by: User) -> rules.Facts:
    stages = tuple(order.project.stages)
    unknown = _unknown_statements(session, order)
    blocked = ""
    if order.state not in CLOSED:
        target = natural_stage(order)
        if review_refusals(session, order, target):
            blocked = rules.SQL_APPROVAL
        elif any(stage == target for _ref, stage in unknown):
            blocked = rules.SQL_UNKNOWN
    awaiting = order.state not in CLOSED and any(
        review_refusals(session, order, stage) for stage in _stages_to_come(order, stages))
    paused = session.scalar(select(Deployment.stage).where(
        Deployment.order_id == order.id, Deployment.status == "paused"))
    return rules.Facts(filed_by_me=order.created_by_id == by.id,
                       sql_awaiting_approval=awaiting, blocked=blocked,
                       unknown_statements=tuple(dict.fromkeys(ref for ref, _ in unknown)),
                       paused_stage=paused or "")


def _stages_to_come(order: Order, stages: tuple[str, ...]) -> tuple[str, ...]:
    first = natural_stage(order)
    return stages[stages.index(first):] if first in stages else stages


def _unknown_statements(session: Session, order: Order) -> list[tuple[str, str]]:
    """(``SERVICE:N``, stage) of each statement a dead run left unknown (or running)."""
    found = session.execute(
        select(SqlStatement, SqlExecution.stage)
        .join(SqlExecution, SqlExecution.statement_id == SqlStatement.id)
        .where(SqlExecution.order_id == order.id,
               SqlExecution.status.in_((UNKNOWN, RUNNING)))
        .order_by(SqlStatement.item_id, SqlStatement.position)).all()
    services = {item.id: item.service.name for item in order.items}
    return [(f"{services[stmt.item_id]}:{stmt.position + 1}", stage) for stmt, stage in found]


def offers_for(session: Session, order: Order, by: User) -> list[rules.Offer]:
    """The actions ``by`` may take on ``order`` now."""
    return rules.offers(order.state, actor_for(session, by, order.project),
                        tuple(order.project.stages), facts_of(session, order, by))


# -- the dashboard -------------------------------------------------------------------------

@dataclass(frozen=True)
class Waiting:
    order: Order
    duties: list[str]


def readable_projects(session: Session, by: User) -> list[Project]:
    query = select(Project).order_by(Project.name)
    if not by.is_admin:
        query = query.where(Project.id.in_(select(Member.project_id)
                                           .where(Member.user_id == by.id)))
    return list(session.scalars(query))


def waiting_for(session: Session, by: User) -> list[Waiting]:
    """Open orders of projects where ``by`` has a role and the next step is theirs."""
    found = []
    for project in readable_projects(session, by):
        actor: Actor = actor_for(session, by, project)
        if not actor.roles:
            continue
        stages = tuple(project.stages)
        for order in session.scalars(select(Order).where(
                Order.project_id == project.id, Order.state.not_in(CLOSED))
                .order_by(Order.id)):
            duties = rules.waiting(order.state, actor, stages, facts_of(session, order, by))
            if duties:
                found.append(Waiting(order, duties))
    return found


def my_orders(session: Session, by: User) -> list[Order]:
    """The viewer's newest orders (open ones first)."""
    found = list(session.scalars(select(Order).where(Order.created_by_id == by.id)
                                 .order_by(Order.id.desc()).limit(MINE)))
    return sorted(found, key=lambda o: o.state in CLOSED)


def recent_deployments(session: Session, by: User) -> list[tuple[Deployment, Order]]:
    """The newest deployments of projects ``by`` may read."""
    projects = [p.id for p in readable_projects(session, by)]
    rows = session.execute(
        select(Deployment, Order).join(Order, Order.id == Deployment.order_id)
        .where(Order.project_id.in_(projects)).order_by(Deployment.id.desc())
        .limit(RECENT)).all()
    return [(deployment, order) for deployment, order in rows]


# -- kept releases -------------------------------------------------------------------------

@dataclass(frozen=True)
class KeptRelease:
    release_id: str
    deployment: int
    order: int
    finished_at: datetime | None


def kept_releases(session: Session, order: Order, stage: str) -> list[KeptRelease]:
    """The releases the store says the stage's hosts keep for every artifact service of
    the order, newest first: releases its deployments switched every host to, the newest
    ``keep_releases`` of each service. The engine checks each host before switching;
    this is what a person picks from."""
    per_service: list[dict[str, KeptRelease]] = []
    for item in order.items:
        setting = next((s for s in item.service.stages if s.stage == stage), None)
        if setting is None or setting.mode != "artifact":
            continue
        rows = session.execute(
            select(Deployment).join(DeploymentStep, DeploymentStep.deployment_id ==
                                    Deployment.id)
            .where(Deployment.stage == stage, Deployment.release_id != "",
                   Deployment.kind.in_(("iterative", "full")),
                   DeploymentStep.service_id == item.service_id,
                   DeploymentStep.name == "switch", DeploymentStep.status == "done")
            .distinct()).scalars().all()
        newest = sorted(rows, key=lambda d: release_order(d.release_id),
                        reverse=True)[:max(setting.keep_releases, 1)]
        per_service.append({d.release_id: KeptRelease(d.release_id, d.id, d.order_id,
                                                      d.finished_at) for d in newest})
    if not per_service:
        return []
    common = set.intersection(*(set(found) for found in per_service))
    return sorted((per_service[0][rid] for rid in common),
                  key=lambda k: release_order(k.release_id), reverse=True)
