"""An agent SIGKILLed mid-deployment (RabbitMQ broker): found lost by its silent heartbeat,
the deployment ``interrupted``, and resumed by the other agent of the zone.

The deployment blocks in h2's post-deploy hook (h1, batch 1, is switched; the SQL ran),
then the agent running it is killed with its hook. RabbitMQ at once hands the
unacknowledged task to the other agent, which finds it already taken and runs nothing
(no duplicate execution). The server marks the deployment interrupted within seconds;
asking for the deploy again resumes it on the surviving agent: the SQL is not run again,
h1's hook not again, the job created once, both hosts on the same release, and the merge
commit the survivor builds is the one the killed agent built.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from shlex import quote

import pytest
from agent_site import agent_site, wait_for

from golive.domain.jobs import JobSpec
from golive.services.agents import agent_name_of
from golive.services.orders import ItemRequest
from golive.store.models import CommitLedger, DeploymentStep, SqlExecution
from golive.testing.world import (
    apply_config,
    current_target,
    file_order,
    local_hosts,
    make_repo,
    release_ids,
    rows,
)

BRANCH = "feature/x"
PATH = "srv/web"
SQL = "CREATE TABLE coupons (code VARCHAR(20));\nINSERT INTO coupons VALUES ('SPRING');\n"


def hook(root: Path) -> str:
    """Each host appends its name to hooks.log; h2's hook then waits for the file GO."""
    log, go = quote(str(root / "hooks.log")), quote(str(root / "GO"))
    return (f'echo "$GOLIVE_HOST" >> {log}; [ "$GOLIVE_HOST" != h2 ] || '
            f"while [ ! -f {go} ]; do sleep 0.05; done")


def hooks_run(root: Path) -> list[str]:
    log = root / "hooks.log"
    return log.read_text().split() if log.exists() else []


def test_a_killed_agent_s_deployment_is_resumed_by_another_agent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with agent_site(tmp_path, "rabbitmq", monkeypatch) as site:
        repo = make_repo(tmp_path, "web", {"src/index.html": "v1\n"},
                         branches={BRANCH: {"src/index.html": "v2\n"}})
        hosts = local_hosts(tmp_path, ["h1", "h2", "j1"])
        for host in hosts:
            host["zone"] = "dc2"
        apply_config(site.runtime, tmp_path / "golive.yaml", {
            "hosts": hosts,
            "databases": [{"name": "shop-db", "url": f"sqlite:///{tmp_path / 'shop.db'}"}],
            "projects": [{"name": "shop", "stages": ["prod"], "services": [{
                "name": "web", "repo": repo.url, "build": "cp -r src dist", "pack": ["dist"],
                "post_deploy": [hook(tmp_path)],
                "stages": {"prod": {"path": PATH, "batch": 1, "hosts": ["h1", "h2"],
                                    "job_hosts": ["j1"], "database": "shop-db"}}}]}]})
        jobs = quote(str(tmp_path / "jobs.log"))
        job = JobSpec("mail", "command", {"create": f"echo created >> {jobs}",
                                          "reload": f"echo reloaded >> {jobs}"})
        order = file_order(site.runtime, "admin", "shop",
                           [ItemRequest("web", BRANCH, SQL, jobs=(job,))])
        site.start_agent("one", "dc2")
        site.start_agent("two", "dc2")

        deployment_id = site.deploy(order)
        wait_for("h2's post-deploy hook", lambda: "h2" in hooks_run(tmp_path))
        victim = site.deployment(deployment_id).agent
        # the agent's progress reaches the server's live stream while it runs
        started = f"iterative deployment of order {order} on prod started by admin"
        live = site.events(deployment_id, lambda found: any(
            name == "log" and data["text"] == started for name, data in found))
        assert ("status", {"id": deployment_id, "status": "running"}) in live
        survivor = ({"one", "two"} - {victim}).pop()
        killed_at = time.monotonic()
        site.kill(victim)

        interrupted = site.wait_ended(deployment_id)
        found_after = time.monotonic() - killed_at
        assert interrupted.status == "interrupted"
        assert found_after < 60, found_after
        assert f"agent {victim} running this deployment stopped answering" in interrupted.error
        assert site.agent_state(victim) == "lost"
        # the broker gave the unacknowledged task to the survivor, which ran nothing
        wait_for("the redelivery", lambda: f"deployment {deployment_id} is not pending"
                 in site.agents[survivor].output(), timeout=30)
        assert site.api("GET", f"/orders/{order}")["state"] == "prod:failed"
        rid = interrupted.release_id
        assert current_target(tmp_path, "h1", PATH) == f"releases/{rid}"

        (tmp_path / "GO").touch()
        assert site.deploy(order) == deployment_id  # the same deployment, resumed
        resumed = site.wait_ended(deployment_id)
        assert (resumed.status, resumed.agent, resumed.resumes) == (
            "succeeded", survivor, 1), resumed.error
        assert site.api("GET", f"/orders/{order}")["state"] == "done"
        # h1 was switched before the kill: its hook does not run again (j1, the job host,
        # is the third batch)
        assert hooks_run(tmp_path) == ["h1", "h2", "h2", "j1"]
        for host in ("h1", "h2", "j1"):
            assert current_target(tmp_path, host, PATH) == f"releases/{rid}"
            assert release_ids(tmp_path, host, PATH) == [rid]
        executions = rows(site.runtime, SqlExecution)
        # each statement ran once, by the killed agent, before the switch
        assert [(e.status, agent_name_of(e.runner)) for e in executions] == [
            ("success", victim)] * 2
        with sqlite3.connect(tmp_path / "shop.db") as db:
            assert db.execute("SELECT code FROM coupons").fetchall() == [("SPRING",)]
        assert (tmp_path / "jobs.log").read_text().split() == ["created"]
        builds = [s for s in rows(site.runtime, DeploymentStep, DeploymentStep.name == "build")
                  if s.status == "done"]
        assert len(builds) == 2  # the survivor had no artifact: it built again
        (ledger,) = rows(site.runtime, CommitLedger)
        assert {b.data["merge_commit"] for b in builds} == {ledger.deployed_commit}
