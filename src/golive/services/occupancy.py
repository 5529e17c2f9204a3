"""Occupancy: which order's branch each service serves now, per stage and lane — the
board a shared test stage needs — and "main moved" for open orders.

The engine records a service's occupant when a deployment (not a canary) switched
it, and a rollback records what it went back to. A release on the last stage that
pushes to a service's main branch records a main move: every other open order with
that service whose last deployment of it is older is flagged "main moved".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from golive.domain.permissions import Permission
from golive.domain.workflow import CANCELLED, DONE
from golive.services.lanes import list_holds, service_lanes
from golive.services.users import get_project, project_roles, require
from golive.store.models import (
    CommitLedger,
    MainMove,
    Occupancy,
    Order,
    Project,
    Service,
    User,
    utcnow,
)

CLOSED = (DONE, CANCELLED)


def record(session: Session, *, service_id: int, stage: str, lane: str, order_id: int,
           branch: str, commit: str, deployment_id: int, note: str = "") -> None:
    row = session.scalar(select(Occupancy).where(
        Occupancy.service_id == service_id, Occupancy.stage == stage, Occupancy.lane == lane))
    if row is None:
        row = Occupancy(service_id=service_id, stage=stage, lane=lane)
        session.add(row)
    row.order_id, row.branch, row.commit = order_id, branch, commit
    row.deployment_id, row.since, row.note = deployment_id, utcnow(), note
    session.flush()


def record_main_move(session: Session, service_id: int, commit: str, order_id: int) -> None:
    session.add(MainMove(service_id=service_id, commit=commit, order_id=order_id))
    session.flush()


@dataclass
class Slot:
    """One (stage, lane, service) of a project and who is on it."""

    stage: str
    lane: str
    service: str
    order_id: int | None = None
    title: str = ""
    branch: str = ""
    commit: str = ""
    since: datetime | None = None
    note: str = ""
    held_by_order: int | None = None


@dataclass
class OpenOrder:
    order_id: int
    title: str
    state: str
    services: list[str]
    main_moved: list[str] = field(default_factory=list)
    """"service: main moved by order N" for each service whose main moved since."""


@dataclass
class Board:
    project: str
    stages: list[str]
    slots: list[Slot]
    open_orders: list[OpenOrder]


def _slots(session: Session, project: Project) -> list[Slot]:
    holds = {(h.stage, h.lane): h.order_id for h in list_holds(session, project.id)}
    occupied = {(o.service_id, o.stage, o.lane): o for o in session.scalars(
        select(Occupancy).join(Service).where(Service.project_id == project.id))}
    slots = []
    for stage in project.stages:
        for service in project.services:
            setting = next((s for s in service.stages if s.stage == stage), None)
            if setting is None:
                continue
            for lane in service_lanes(setting) or [""]:
                slot = Slot(stage, lane, service.name, held_by_order=holds.get((stage, lane)))
                row = occupied.get((service.id, stage, lane))
                if row is not None:
                    order = session.get_one(Order, row.order_id)
                    slot.order_id, slot.title, slot.branch = row.order_id, order.title, row.branch
                    slot.commit, slot.since, slot.note = row.commit, row.since, row.note
                slots.append(slot)
    return slots


def _main_moved(session: Session, order: Order) -> list[str]:
    flags = []
    for item in order.items:
        last_deploy = session.scalar(select(func.max(CommitLedger.recorded_at)).where(
            CommitLedger.order_id == order.id, CommitLedger.service_id == item.service_id))
        since = last_deploy or order.created_at
        move = session.scalar(select(MainMove).where(
            MainMove.service_id == item.service_id, MainMove.order_id != order.id,
            MainMove.at > since).order_by(MainMove.at.desc()).limit(1))
        if move is not None:
            flags.append(f"{item.service.name}: main moved by order {move.order_id} "
                         f"({move.commit[:10]})")
    return flags


def _open_orders(session: Session, project: Project) -> list[OpenOrder]:
    orders = session.scalars(select(Order).where(Order.project_id == project.id,
                                                 Order.state.not_in(CLOSED)).order_by(Order.id))
    return [OpenOrder(o.id, o.title, o.state, [i.service.name for i in o.items],
                      _main_moved(session, o)) for o in orders]


def board(session: Session, by: User, project_name: str = "") -> list[Board]:
    """The board of one project, or of every project ``by`` may read."""
    if project_name:
        projects = [get_project(session, project_name)]
        require(session, by, projects[0], Permission.VIEW, f"reading the board of "
                                                            f"{project_name}")
    else:
        projects = [p for p in session.scalars(select(Project).order_by(Project.name))
                    if by.is_admin or project_roles(session, by, p)]
    return [Board(p.name, list(p.stages), _slots(session, p), _open_orders(session, p))
            for p in projects]

