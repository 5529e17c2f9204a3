"""Network zones: which agent queue a deployment goes to, and whether an agent lives.

A host, or a service's stage, may name the zone it sits in (a network the server may
not reach). A deployment runs in one process, so all of its services must agree:

* a service's zone on a stage is the stage's ``zone`` when set, else the zone its hosts
  name (hosts that name none go anywhere); hosts that name another zone than the stage,
  or two different zones, are a config error;
* a deployment's zone is the one zone its services name, or the default zone when none
  does; services in two zones cannot be deployed together.

The default zone's queue is consumed by agents started without ``--queue``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from golive.domain.names import name_problem
from golive.errors import InputError

DEFAULT_ZONE = "default"
LOST_AFTER_BEATS = 3
"""An agent whose last heartbeat is older than this many of its periods is lost."""


def zone_problem(zone: str) -> str | None:
    """Why ``zone`` cannot name a zone (it becomes part of a queue name), or None."""
    if not zone:
        return None
    problem = name_problem(zone)
    return problem.replace("name", "zone name", 1) if problem else None


def queue_name(prefix: str, zone: str) -> str:
    """The broker queue of ``zone`` (the default zone's when empty)."""
    return f"{prefix}.{zone or DEFAULT_ZONE}"


@dataclass(frozen=True)
class ServiceZones:
    """What a service names on the stage deployed: the stage's zone and its hosts' zones."""

    service: str
    stage_zone: str
    host_zones: Mapping[str, str]
    """host name → the zone it names ("" for none)."""


def service_zone(found: ServiceZones) -> str:
    """The zone the service deploys from on this stage ("" when it names none)."""
    named = sorted({zone for zone in found.host_zones.values() if zone})
    if found.stage_zone:
        elsewhere = sorted(host for host, zone in found.host_zones.items()
                           if zone and zone != found.stage_zone)
        if elsewhere:
            raise InputError(f"service {found.service}: the stage is in zone "
                             f"{found.stage_zone} but host(s) {', '.join(elsewhere)} name "
                             "another zone: make them agree in golive.yaml")
        return found.stage_zone
    if len(named) > 1:
        hosts = ", ".join(f"{host} ({zone})" for host, zone in sorted(found.host_zones.items())
                          if zone)
        raise InputError(f"service {found.service}: its hosts are in different zones: {hosts}; "
                         "a deployment runs in one zone: set the stage's `zone` or put the "
                         "hosts in one zone")
    return named[0] if named else ""


def deployment_zone(services: Iterable[ServiceZones]) -> str:
    """The zone every service of the deployment agrees on ("" when none names one)."""
    by_zone: dict[str, list[str]] = {}
    for found in services:
        zone = service_zone(found)
        if zone:
            by_zone.setdefault(zone, []).append(found.service)
    if len(by_zone) > 1:
        listed = "; ".join(f"zone {zone}: {', '.join(names)}"
                           for zone, names in sorted(by_zone.items()))
        raise InputError(f"the order's services are in different zones ({listed}); a "
                         "deployment runs in one zone: file one order per zone")
    return next(iter(by_zone), "")


def agent_state(heartbeat_at: datetime, every: float, stopped: bool, now: datetime) -> str:
    """``alive``, ``stopped`` (it said goodbye) or ``lost`` (silent for too long)."""
    if stopped:
        return "stopped"
    if now - heartbeat_at > timedelta(seconds=every * LOST_AFTER_BEATS):
        return "lost"
    return "alive"
