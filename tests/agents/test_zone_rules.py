"""The zone rules as tables (``domain/zones.py``): pure, no store, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from golive.domain.zones import (
    ServiceZones,
    agent_state,
    deployment_zone,
    queue_name,
    service_zone,
    zone_problem,
)
from golive.errors import InputError

SERVICE_ZONES = [
    # stage zone, host zones, expected zone of the service
    ("", {"h1": "", "h2": ""}, ""),
    ("", {"h1": "dc2", "h2": ""}, "dc2"),
    ("", {"h1": "dc2", "h2": "dc2"}, "dc2"),
    ("dc3", {"h1": "", "h2": ""}, "dc3"),
    ("dc3", {"h1": "dc3", "h2": ""}, "dc3"),
]


@pytest.mark.parametrize(("stage_zone", "hosts", "expected"), SERVICE_ZONES)
def test_a_service_deploys_from_its_stage_s_zone_or_its_hosts(
        stage_zone: str, hosts: dict[str, str], expected: str) -> None:
    assert service_zone(ServiceZones("web", stage_zone, hosts)) == expected


SERVICE_CONFLICTS = [
    ("", {"h1": "dc1", "h2": "dc2"}, "service web: its hosts are in different zones: h1 (dc1), "
                                     "h2 (dc2)"),
    ("dc3", {"h1": "dc3", "h2": "dc1"}, "service web: the stage is in zone dc3 but host(s) h2 "
                                        "name another zone"),
]


@pytest.mark.parametrize(("stage_zone", "hosts", "message"), SERVICE_CONFLICTS)
def test_a_service_in_two_zones_is_refused_with_the_hosts_named(
        stage_zone: str, hosts: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as refused:
        service_zone(ServiceZones("web", stage_zone, hosts))
    assert message in refused.value.message


DEPLOYMENTS = [
    ([], ""),
    ([("web", "", {"h1": ""})], ""),
    ([("web", "", {"h1": ""}), ("api", "dc2", {})], "dc2"),
    ([("web", "", {"h1": "dc2"}), ("api", "dc2", {})], "dc2"),
]


@pytest.mark.parametrize(("services", "expected"), DEPLOYMENTS)
def test_a_deployment_runs_in_the_one_zone_its_services_name(
        services: list[tuple[str, str, dict[str, str]]], expected: str) -> None:
    assert deployment_zone(ServiceZones(*s) for s in services) == expected


def test_services_in_two_zones_cannot_be_deployed_together() -> None:
    with pytest.raises(InputError) as refused:
        deployment_zone([ServiceZones("web", "dc1", {}), ServiceZones("api", "", {"h": "dc2"}),
                         ServiceZones("cron", "dc1", {})])
    assert refused.value.message == (
        "the order's services are in different zones (zone dc1: web, cron; zone dc2: api); a "
        "deployment runs in one zone: file one order per zone")


@pytest.mark.parametrize(("zone", "queue"), [("", "golive.default"), ("default", "golive.default"),
                                             ("dc-2", "golive.dc-2")])
def test_queue_names(zone: str, queue: str) -> None:
    assert queue_name("golive", zone) == queue


@pytest.mark.parametrize(("zone", "ok"), [("", True), ("dc2", True), ("eu-west.1", True),
                                          ("dc 2", False), ("-x", False), ("a/b", False)])
def test_zone_names_become_queue_names_so_they_are_checked(zone: str, ok: bool) -> None:
    assert (zone_problem(zone) is None) is ok


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STATES = [
    # seconds since the last heartbeat, period, stopped, state
    (0, 10, False, "alive"),
    (30, 10, False, "alive"),
    (31, 10, False, "lost"),
    (4, 1, False, "lost"),
    (500, 10, True, "stopped"),
    (0, 10, True, "stopped"),
]


@pytest.mark.parametrize(("ago", "every", "stopped", "state"), STATES)
def test_an_agent_silent_for_three_periods_is_lost(ago: float, every: float, stopped: bool,
                                                    state: str) -> None:
    assert agent_state(NOW - timedelta(seconds=ago), every, stopped, NOW) == state
