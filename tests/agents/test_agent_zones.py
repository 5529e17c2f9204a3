"""Deployments routed by zone to real `golive agent` processes (Redis broker).

Zone ``a`` is named by host h-a; zone ``b`` by the stage settings of web-b (its host names
none). A deployment asked for before its zone has an agent waits in the queue (a server
restart leaves it there). Each agent consumes only its zone's queue, runs what lands there
with its own git mirrors, and its log lines and the order's end reach the server's API.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from agent_site import GOLIVE, agent_site

from golive.services.orders import ItemRequest
from golive.services.recovery import recover
from golive.testing.world import apply_config, current_target, file_order, local_hosts, make_repo

BRANCH = "feature/x"


def test_each_zone_s_deployments_run_on_that_zone_s_agent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with agent_site(tmp_path, "redis", monkeypatch) as site:
        hosts = local_hosts(tmp_path, ["h-a", "h-b"])
        hosts[0]["zone"] = "a"
        services = []
        for name, stage in (("web-a", {"hosts": ["h-a"]}),
                            ("web-b", {"hosts": ["h-b"], "zone": "b"})):
            repo = make_repo(tmp_path, name, {"src/index.html": "v1\n"},
                             branches={BRANCH: {"src/index.html": f"{name} v2\n"}})
            services.append({"name": name, "repo": repo.url, "build": "cp -r src dist",
                             "pack": ["dist"],
                             "stages": {"prod": {"path": "srv/web", **stage}}})
        apply_config(site.runtime, tmp_path / "golive.yaml", {
            "hosts": hosts, "projects": [{"name": "shop", "stages": ["prod"],
                                          "services": services}]})
        order_a = file_order(site.runtime, "admin", "shop", [ItemRequest("web-a", BRANCH)])
        order_b = file_order(site.runtime, "admin", "shop", [ItemRequest("web-b", BRANCH)])
        # asked for before any agent runs: it waits in zone a's queue, also through a
        # server restart (what recovery does on start)
        waiting = site.deploy(order_a)
        with site.runtime.store.session() as session:
            assert recover(session) == 0
        queued = site.deployment(waiting)
        assert (queued.status, queued.runner) == ("pending", f"queue:{site.prefix}.a")

        agent_a = site.start_agent("agent-a", "a")
        site.start_agent("agent-b", "b")
        # one agent per home, one live agent per name: both refused in one line
        for args, home, refusal in (
                (["--name", "other"], agent_a.home, "another golive agent uses GOLIVE_HOME"),
                (["--name", "agent-a"], tmp_path / "spare",
                 "agent name agent-a is in use by a live agent")):
            refused = subprocess.run([str(GOLIVE), "agent", "--queue", "a", *args],
                                     env={**site.env, "GOLIVE_HOME": str(home)},
                                     capture_output=True, text=True, timeout=60)
            assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
            assert refusal in refused.stderr and "Traceback" not in refused.stderr

        ran = {"a": site.wait_ended(waiting), "b": site.wait_ended(site.deploy(order_b))}

        for zone, deployment in ran.items():
            assert (deployment.status, deployment.zone, deployment.agent) == (
                "succeeded", zone, f"agent-{zone}"), deployment.error
            assert current_target(tmp_path, f"h-{zone}", "srv/web") == \
                f"releases/{deployment.release_id}"
        for order in (order_a, order_b):
            assert site.api("GET", f"/orders/{order}")["state"] == "done"
        # the agent's log lines are the server's
        lines = [line["text"] for line in site.api("GET", f"/orders/{order_b}/logs")["lines"]]
        assert f"iterative deployment of order {order_b} on prod succeeded" in lines
        # git mirrors are per agent: each fetched only its zone's repository
        for zone in ("a", "b"):
            mirrors = [p.name for p in (site.agents[f"agent-{zone}"].home / "repos").iterdir()]
            assert len(mirrors) == 1 and f"web-{zone}" in mirrors[0], mirrors

        # `golive agent list` through the server: zone, state, version, no work now
        listed = subprocess.run(
            [str(GOLIVE), "agent", "list", "--json"], capture_output=True, text=True,
            env={**site.env, "GOLIVE_URL": site.server.url, "GOLIVE_TOKEN": site.token},
            timeout=60)
        assert listed.returncode == 0, listed.stderr
        agents = {row["name"]: row for row in json.loads(listed.stdout)}
        assert {(n, r["zone"], r["state"], r["work"] == []) for n, r in agents.items()} == {
            ("agent-a", "a", "alive", True), ("agent-b", "b", "alive", True)}

        site.stop_agents()
        assert {row.name: row.stopped_at is not None for row in site.agent_rows()} == {
            "agent-a": True, "agent-b": True}
        assert {r["name"]: r["state"] for r in site.api("GET", "/agents")} == {
            "agent-a": "stopped", "agent-b": "stopped"}
