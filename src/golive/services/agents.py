"""Agents (``golive agent``): who they are, whether they live, what they run.

An agent writes a row of ``agents`` when it starts and its heartbeat every few seconds;
an agent whose heartbeat is older than three of its periods is *lost*
(``domain.zones.agent_state``), and the deployments and statements it ran are dead for
``recovery`` — on any machine, since the judge reads the store, not the process table.

A deployment is taken by exactly one agent: ``claim`` moves it from ``pending`` to
``running`` in one conditional UPDATE, so a task the broker delivers twice (late
acknowledgement after an agent died, a visibility timeout) runs once at most.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from golive import __version__
from golive.domain import zones
from golive.errors import InputError
from golive.services.liveness import is_agent_runner, is_dead
from golive.store.models import Agent, Deployment, Order, ServiceStage, utcnow

LIVE = ("pending", "running", "paused")


def register(session: Session, *, name: str, zone: str, runner: str, concurrency: int,
             every: float, now: datetime | None = None) -> Agent:
    """Write (or take over) the agent's row as it starts. Refused while another live
    agent holds the name: two agents by one name would judge each other dead."""
    moment = now or utcnow()
    row = session.scalar(select(Agent).where(Agent.name == name).with_for_update())
    if row is not None and row.runner != runner and state_of(row, moment) == "alive":
        raise InputError(f"agent name {name} is in use by a live agent on {row.host}: give this "
                         "one another name (--name or GOLIVE_AGENT_NAME)")
    if row is None:
        row = Agent(name=name)
        session.add(row)
    row.zone, row.version, row.host = zone, __version__, socket.gethostname()
    row.runner, row.concurrency, row.heartbeat_every = runner, concurrency, every
    row.started_at = row.heartbeat_at = moment
    row.stopped_at = None
    session.flush()
    return row


def beat(session: Session, runner: str) -> bool:
    """The agent's heartbeat; False when its row was taken over by another agent."""
    done = session.execute(update(Agent).where(Agent.runner == runner)
                           .values(heartbeat_at=utcnow()))
    return bool(getattr(done, "rowcount", 0))


def stop(session: Session, runner: str) -> None:
    """The agent ends cleanly: it is ``stopped``, not lost."""
    session.execute(update(Agent).where(Agent.runner == runner).values(stopped_at=utcnow()))


def state_of(row: Agent, now: datetime) -> str:
    return zones.agent_state(row.heartbeat_at, row.heartbeat_every, row.stopped_at is not None,
                             now)


def live_runners(session: Session, now: datetime | None = None) -> set[str]:
    moment = now or utcnow()
    return {row.runner for row in session.scalars(select(Agent))
            if state_of(row, moment) == "alive"}


def dead_judge(session: Session) -> Callable[[str], bool]:
    """Whether a runner is dead: a local process that is gone (``liveness``), or an agent
    that is not alive (lost, stopped, or replaced by a newer agent of its name)."""
    live = live_runners(session)
    return lambda runner: is_dead(runner) or (is_agent_runner(runner) and runner not in live)


def agent_name_of(runner: str) -> str:
    """The agent's name in an agent runner (``agent:<name>@host:pid:start``)."""
    return runner.removeprefix("agent:").split("@", 1)[0] if is_agent_runner(runner) else ""


def claim(session: Session, deployment_id: int, runner: str, agent: str) -> bool:
    """Take a pending deployment for this agent; False when it is not pending (it ran, it
    runs elsewhere, it was interrupted or cancelled): the task then does nothing."""
    done = session.execute(update(Deployment).where(
        Deployment.id == deployment_id, Deployment.status == "pending",
    ).values(status="running", runner=runner, agent=agent))
    return getattr(done, "rowcount", 0) == 1


def zone_for(session: Session, order: Order, stage: str, lane: str) -> str:
    """The zone a deployment of ``order`` on ``stage`` (``lane``) runs in ("" = default);
    InputError when its services name different zones."""
    found = []
    for item in order.items:
        setting = session.scalar(select(ServiceStage).where(
            ServiceStage.service_id == item.service_id, ServiceStage.stage == stage))
        if setting is None:
            continue  # the deployment itself says so (services.work.load_items)
        hosts = {target.host.name: target.host.zone for target in setting.hosts
                 if target.kind == "job" or target.lane == lane or not lane}
        found.append(zones.ServiceZones(item.service.name, setting.zone, hosts))
    return zones.deployment_zone(found)


def list_agents(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every agent with its state and the deployments it runs now, by zone and name."""
    moment = now or utcnow()
    running = session.scalars(select(Deployment).where(Deployment.status.in_(LIVE),
                                                       Deployment.agent != ""))
    work: dict[str, list[dict[str, Any]]] = {}
    for deployment in running:
        work.setdefault(deployment.runner, []).append({
            "deployment": deployment.id, "order": deployment.order_id,
            "stage": deployment.stage, "status": deployment.status})
    rows = session.scalars(select(Agent).order_by(Agent.zone, Agent.name))
    return [{"name": row.name, "zone": row.zone or zones.DEFAULT_ZONE, "version": row.version,
             "host": row.host, "state": state_of(row, moment), "concurrency": row.concurrency,
             "started_at": row.started_at, "heartbeat_at": row.heartbeat_at,
             "stopped_at": row.stopped_at, "work": work.get(row.runner, [])}
            for row in rows]
