"""Orders: filing one, and every change of an order's state.

``transition`` is the one function that changes ``Order.state``: it locks the
row, asks ``domain.workflow.decide``, writes the new state with a version check
(so two writers cannot both move the same order from the same state), and
writes the history. Nothing else assigns ``Order.state``, not even tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from golive.domain import messages
from golive.domain import sql as sqlrules
from golive.domain.jobs import JobSpec
from golive.domain.names import branch_problem
from golive.domain.permissions import Permission
from golive.domain.workflow import SYSTEM_ACTOR, Action, Actor, decide, deployer_roles
from golive.errors import InputError, NotFound, PermissionDenied, TransitionRefused
from golive.services import notify
from golive.services.lanes import follow_state
from golive.services.users import actor_for, get_project, require
from golive.store.models import (
    Deployment,
    Member,
    Order,
    OrderHistory,
    OrderItem,
    OrderJob,
    Project,
    Service,
    SqlStatement,
    User,
    utcnow,
)

AUTOMATIC_SETTINGS = ("auto_promote", "auto_release", "redeploy_on_push")
"""The project settings that may deploy or release on their own: after a pass, or (with
redeploy_on_push) after a push to the branch of an order being tested."""


@dataclass(frozen=True)
class ItemRequest:
    service: str
    branch: str
    sql: str = ""
    transactional: bool | None = None
    """Run the SQL in one transaction (None: yes on PostgreSQL, no elsewhere)."""
    jobs: tuple[JobSpec, ...] = ()


def get_order(session: Session, order_id: int, *, lock: bool = False) -> Order:
    query = select(Order).where(Order.id == order_id)
    if lock:
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        raise NotFound("order", order_id)
    return order


def readable_order(session: Session, order_id: int, by: User) -> Order:
    """The order, for ``by`` to read: a member of its project or a site admin."""
    order = get_order(session, order_id)
    require(session, by, order.project, Permission.VIEW, f"reading order {order.id}")
    return order


@dataclass(frozen=True)
class OrderRow:
    """An order as lists show it: read with two plain queries, no ORM objects (a list of
    hundreds of orders is asked for often, by every member's page)."""

    id: int
    project: str
    title: str
    state: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    services: list[str]


def list_orders(
    session: Session, *, project: str | None = None, state: str | None = None,
    by: User | None = None, limit: int = 100,
) -> list[OrderRow]:
    """The newest ``limit`` orders, oldest first; with ``by``, only those of projects
    ``by`` may read."""
    query = (select(Order.id, Project.name, Order.title, Order.state, User.name,
                    Order.created_at, Order.updated_at)
             .join(Project, Project.id == Order.project_id)
             .join(User, User.id == Order.created_by_id)
             .order_by(Order.id.desc()).limit(limit))
    if by is not None and not by.is_admin:
        query = query.where(Order.project_id.in_(
            select(Member.project_id).where(Member.user_id == by.id)))
    if project:
        query = query.where(Order.project_id == get_project(session, project).id)
    if state:
        query = query.where(Order.state == state)
    found = list(session.execute(query))
    services: dict[int, list[str]] = {row[0]: [] for row in found}
    if services:
        items = session.execute(
            select(OrderItem.order_id, Service.name, OrderItem.branch)
            .join(Service, Service.id == OrderItem.service_id)
            .where(OrderItem.order_id.in_(list(services)))
            .order_by(OrderItem.order_id, OrderItem.position))
        for order_id, service, branch in items:
            services[order_id].append(f"{service}@{branch}")
    return [OrderRow(*row[:7], services=services[row[0]]) for row in reversed(found)]


def _check_items(session: Session, project_id: int, items: list[ItemRequest]) -> list[Service]:
    if not items:
        raise InputError("an order needs at least one service: -s SERVICE=BRANCH")
    services = []
    seen: set[str] = set()
    for item in items:
        if item.service in seen:
            raise InputError(f"service {item.service} is listed twice in the order")
        seen.add(item.service)
        _check_job_names(item.service, item.jobs)
        problem = branch_problem(item.branch)
        if problem:
            raise InputError(problem)
        service = session.scalar(
            select(Service).where(Service.project_id == project_id, Service.name == item.service))
        if service is None:
            raise NotFound("service", item.service)
        services.append(service)
    return services


def _check_job_names(service: str, jobs: Sequence[JobSpec]) -> None:
    names = [job.name for job in jobs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"service {service}: job {', '.join(twice)} is given twice")


def service_dialect(service: Service) -> str:
    """How to split a service's SQL: the dialect of the databases its stages use."""
    dialects = {sqlrules.dialect_of(s.database.url_masked) for s in service.stages
                if s.database is not None}
    for dialect in (sqlrules.MYSQL, sqlrules.POSTGRESQL, sqlrules.SQLITE):
        if dialect in dialects:
            return dialect
    return sqlrules.GENERIC


def service_dialect_by_id(session: Session, service_id: int) -> str:
    return service_dialect(session.get_one(Service, service_id))


def create_order(
    session: Session, by: User, project_name: str, items: list[ItemRequest], title: str = ""
) -> Order:
    """File a draft order; the user must be a developer (or owner) of the project."""
    project = get_project(session, project_name)
    require(session, by, project, Permission.CREATE_ORDER,
            f"creating an order in {project.name}")
    services = _check_items(session, project.id, items)
    order = Order(project=project, title=title or _default_title(items), created_by=by,
                  state="draft")
    for position, (item, service) in enumerate(zip(items, services, strict=True)):
        row = OrderItem(service=service, branch=item.branch, position=position,
                        transactional=item.transactional)
        for index, job in enumerate(item.jobs):
            row.jobs.append(OrderJob(name=job.name, kind=job.kind, spec=dict(job.fields),
                                     position=index))
        dialect = service_dialect(service)
        for index, text in enumerate(sqlrules.split_statements(item.sql, dialect)):
            row.statements.append(SqlStatement(position=index, text=text,
                                               checksum=sqlrules.checksum(text, dialect)))
        order.items.append(row)
    session.add(order)
    session.flush()
    session.add(OrderHistory(order=order, actor=by.name, action="create", from_state="",
                             to_state="draft", reason=""))
    session.flush()
    return order


def _default_title(items: list[ItemRequest]) -> str:
    return ", ".join(f"{i.service}@{i.branch}" for i in items)


def _decided(session: Session, order: Order, action: str, by: User | None,
             stage: str | None, reason: str, policy: str = "",
             also: tuple[str, ...] = ()) -> tuple[Actor, str]:
    """(actor, target state), or the refusal raised as TransitionRefused/PermissionDenied.
    ``policy`` names the project setting acting (one of AUTOMATIC_SETTINGS)."""
    stages = tuple(order.project.stages)
    actor: Actor = SYSTEM_ACTOR if by is None else actor_for(session, by, order.project)
    if policy:
        if policy not in AUTOMATIC_SETTINGS or not getattr(order.project, policy):
            raise PermissionDenied(f"order {order.id}: {policy} is not a setting of project "
                                   f"{order.project.name} that is on")
        actor = Actor(policy, automatic=True)
    decision = decide(order.state, action, actor, stages, stage=stage, reason=reason, also=also)
    if not decision.allowed:
        message = f"order {order.id}: cannot {action}: {decision.reason}"
        if order.state not in decision.reason:
            message += f" (the order is {order.state})"
        if decision.permission_refused:
            raise PermissionDenied(message, needed_roles=decision.needed_roles)
        raise TransitionRefused(message, state=order.state, action=action)
    return actor, decision.target


def require_deployer(session: Session, order: Order, stage: str, by: User) -> None:
    """Refuse ``by`` unless they may deploy the order on ``stage`` (its deployer role)."""
    require(session, by, order.project, Permission.RESUME_BATCHES,
            f"order {order.id}: letting a paused deployment on {stage} go on",
            deployer_roles(stage, tuple(order.project.stages)))


def check_transition(session: Session, order_id: int, action: Action | str, by: User | None,
                     *, stage: str | None = None, reason: str = "", policy: str = "",
                     also: tuple[str, ...] = ()) -> str:
    """The state ``action`` would lead to; raises the refusal. Changes nothing."""
    order = get_order(session, order_id)
    return _decided(session, order, str(Action(action).value if action in set(Action)
                                        else action), by, stage, reason, policy, also)[1]


def editable_item(session: Session, order_id: int, service: str, by: User,
                  what: str) -> OrderItem:
    """The order's item for ``service``, to change its ``what`` (SQL, jobs): only before
    the order is done or cancelled, by a developer or owner of the project."""
    order = get_order(session, order_id)
    require(session, by, order.project, Permission.EDIT_ORDER,
            f"order {order.id}: changing {what}")
    if order.state in ("done", "cancelled"):
        raise InputError(f"order {order.id} is {order.state}: its {what} cannot change")
    item = next((i for i in order.items if i.service.name == service), None)
    if item is None:
        raise InputError(f"service {service} is not in order {order.id}")
    return item


def set_jobs(session: Session, order_id: int, service: str, jobs: list[JobSpec],
             by: User) -> OrderItem:
    """Add or update (by name) jobs of a service in the order, before it is done."""
    item = editable_item(session, order_id, service, by, "jobs")
    _check_job_names(service, jobs)
    existing = {j.name: j for j in item.jobs}
    for job in jobs:
        row = existing.get(job.name)
        if row is None:
            item.jobs.append(OrderJob(name=job.name, kind=job.kind, spec=dict(job.fields),
                                      position=len(item.jobs)))
        else:
            row.kind, row.spec = job.kind, dict(job.fields)
    session.flush()
    return item


def remove_job(session: Session, order_id: int, service: str, name: str, by: User) -> None:
    """Take a job out of the order (before done). Where it already runs it stays until a
    deploy with ``--prune-jobs``; the plan reports it as not in this order."""
    item = editable_item(session, order_id, service, by, "jobs")
    job = next((j for j in item.jobs if j.name == name), None)
    if job is None:
        raise InputError(f"order {order_id} has no job {name} for {service}")
    item.jobs.remove(job)
    session.flush()


def _announce(session: Session, order: Order, action: str, target: str, actor: str,
              reason: str) -> None:
    """Queue the notifications the move is (in this transaction: an outbox)."""
    stage = target.partition(":")[0] if ":" in target else (
        order.project.stages[-1] if target == "done" else "")
    for event in messages.events_of(action, target):
        notify.emit(session, order, event, actor=actor, stage=stage,
                    reason="" if action == "fail" else reason,
                    error=reason if action == "fail" else "")


def transition(
    session: Session, order_id: int, action: Action | str, by: User | None, *,
    stage: str | None = None, reason: str = "", policy: str = "", also: tuple[str, ...] = (),
) -> Order:
    """Move an order by ``action``, taken by ``by`` (None: the deploy engine).

    Raises TransitionRefused or PermissionDenied with one line saying why not.
    Flushes; the caller commits.
    """
    order = get_order(session, order_id, lock=True)
    action_name = Action(action).value if action in set(Action) else str(action)
    actor, target = _decided(session, order, action_name, by, stage, reason, policy, also)
    moved = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.version == order.version, Order.state == order.state)
        .values(state=target, version=order.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise TransitionRefused(f"order {order.id} changed while {action_name} was being "
                                "decided; look at it again", state=order.state, action=action_name)
    session.add(OrderHistory(order_id=order.id, actor=actor.name, action=action_name,
                             from_state=order.state, to_state=target, reason=reason))
    follow_state(session, order.id, target)
    _announce(session, order, action_name, target, actor.name, reason)
    if target == "cancelled":  # a release queued for a window goes with the order
        session.execute(update(Deployment).where(Deployment.order_id == order.id,
                                                 Deployment.status == "queued")
                        .values(status="cancelled", finished_at=utcnow())
                        .execution_options(synchronize_session=False))
    session.flush()
    session.refresh(order)
    return order
