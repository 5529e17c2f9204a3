"""Agents in the store (``services/agents.py``, ``recovery``), on SQLite, PostgreSQL and
MariaDB: the heartbeat decides life, a lost agent's deployment is interrupted wherever it
ran, a deployment is claimed once, and zones are checked when a deployment is asked for.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from golive.errors import ConfigError, InputError
from golive.services import agents, configuration, requests, users
from golive.services.locks import LIVE
from golive.services.orders import ItemRequest
from golive.services.recovery import recover
from golive.services.runtime import Runtime
from golive.store.models import Agent, DeployLock, Deployment, Order, utcnow
from golive.testing.world import apply_config, file_order, local_hosts, make_repo, rows

FAR = "agent:far@elsewhere:4242:777"
"""A runner on another machine: only its heartbeat can tell whether it lives."""


def shop(tmp_path: Path, runtime: Runtime, zones: dict[str, str] | None = None) -> None:
    """Services web and api on stage prod, on hosts h-web and h-api (their zones)."""
    hosts = local_hosts(tmp_path, ["h-web", "h-api"])
    for host in hosts:
        host["zone"] = (zones or {}).get(host["name"], "")
    services = []
    for name in ("web", "api"):
        repo = make_repo(tmp_path, name, {"src/a.txt": "1\n"}, branches={"f": {"src/a.txt": "2"}})
        services.append({"name": name, "repo": repo.url, "pack": ["src"],
                         "stages": {"prod": {"path": "srv", "hosts": [f"h-{name}"]}}})
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": hosts, "projects": [{"name": "shop", "stages": ["prod"],
                                      "services": services}]})


def ask(runtime: Runtime, order_id: int) -> int:
    with runtime.store.session() as session:
        deployment = requests.request_deployment(session, order_id,
                                                 users.acting_user(session, None))
        session.commit()
        return deployment.id


def register(runtime: Runtime, name: str, runner: str, ago: float = 0.0) -> None:
    with runtime.store.session() as session:
        agents.register(session, name=name, zone="dc2", runner=runner, concurrency=2,
                        every=1.0, now=utcnow() - timedelta(seconds=ago))
        session.commit()


def test_a_lost_agent_s_deployment_is_interrupted_and_its_locks_freed(
        tmp_path: Path, runtime: Runtime) -> None:
    shop(tmp_path, runtime)
    order = file_order(runtime, "admin", "shop", [ItemRequest("web", "f")])
    deployment_id = ask(runtime, order)
    register(runtime, "far", FAR)
    with runtime.store.session() as session:
        assert agents.claim(session, deployment_id, FAR, "far")
        assert not agents.claim(session, deployment_id, FAR, "far")  # taken once only
        session.commit()
        # alive: recovery leaves its deployment alone, the list shows its work
        assert recover(session) == 0
        (listed,) = agents.list_agents(session)
        assert (listed["name"], listed["zone"], listed["state"], listed["work"]) == (
            "far", "dc2", "alive", [{"deployment": deployment_id, "order": order,
                                     "stage": "prod", "status": "running"}])
        session.execute(update(Agent).values(heartbeat_at=utcnow() - timedelta(seconds=4)))
        session.commit()
        assert agents.list_agents(session)[0]["state"] == "lost"
        assert recover(session) == 1
        session.commit()
    (deployment,) = rows(runtime, Deployment)
    assert (deployment.status, deployment.error) == (
        "interrupted", "interrupted: agent far running this deployment stopped answering")
    assert [lock.deployment_id for lock in rows(runtime, DeployLock)] == [None]
    assert rows(runtime, Order)[0].state == "prod:failed"
    # resumable: asking again makes the same deployment pending for the next agent
    assert ask(runtime, order) == deployment_id
    assert rows(runtime, Deployment)[0].status in LIVE


def test_an_agent_name_is_taken_over_only_from_an_agent_that_is_not_alive(
        sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    register(runtime, "edge", FAR)
    with pytest.raises(InputError) as refused:
        register(runtime, "edge", "agent:edge@other:1:1")
    assert "agent name edge is in use by a live agent" in refused.value.message
    with runtime.store.session() as session:
        agents.stop(session, FAR)
        session.commit()
    register(runtime, "edge", "agent:edge@other:1:1")
    (row,) = rows(runtime, Agent)
    assert (row.runner, row.stopped_at) == ("agent:edge@other:1:1", None)
    with runtime.store.session() as session:
        assert not agents.beat(session, FAR)  # the old runner's heartbeat lands nowhere
        assert agents.beat(session, row.runner)


def test_services_in_two_zones_are_refused_before_anything_is_written(
        tmp_path: Path, runtime: Runtime) -> None:
    shop(tmp_path, runtime, {"h-web": "dc1", "h-api": "dc2"})
    both = file_order(runtime, "admin", "shop", [ItemRequest("web", "f"),
                                                 ItemRequest("api", "f")])
    with pytest.raises(InputError) as refused:
        ask(runtime, both)
    assert "the order's services are in different zones (zone dc1: web; zone dc2: api)" in \
        refused.value.message
    assert rows(runtime, Deployment) == []
    assert rows(runtime, Order)[0].state == "submitted"
    one = file_order(runtime, "admin", "shop", [ItemRequest("api", "f")])
    ask(runtime, one)
    assert [d.zone for d in rows(runtime, Deployment)] == ["dc2"]


def test_a_stage_s_zone_is_applied_exported_and_checked(tmp_path: Path,
                                                        sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    shop(tmp_path, runtime)
    config = yaml.safe_load((tmp_path / "golive.yaml").read_text())
    config["projects"][0]["services"][0]["stages"]["prod"]["zone"] = "dc3"
    apply_config(runtime, tmp_path / "golive.yaml", config)
    with runtime.store.session() as session:
        exported = yaml.safe_load(configuration.export_text(
            session, runtime.box, users.acting_user(session, None), with_secrets=False))
    assert exported["projects"][0]["services"][0]["stages"]["prod"]["zone"] == "dc3"
    config["hosts"][0]["zone"] = "dc 3"
    with pytest.raises(ConfigError) as refused:
        apply_config(runtime, tmp_path / "golive.yaml", config)
    assert "hosts[0].zone" in refused.value.message
    assert "'dc 3' is not a valid zone name" in refused.value.message
