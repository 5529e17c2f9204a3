"""Twenty orders deployed at once by two agents (Redis broker), each ending ``done``.

Twenty services, one order each, each with one SQL statement on a shared PostgreSQL
database; the server enqueues the twenty deployments in a burst and two agents (two
threads each) take them. Every order ends done, the two agents both worked, and the
ledgers are exact: one commit ledger entry per order, one successful execution per
statement, and the statements' rows in the database once each.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_site import agent_site
from sqlalchemy import create_engine, text

from golive.services.orders import ItemRequest
from golive.store.models import CommitLedger, SqlExecution
from golive.testing.databases import scratch_database
from golive.testing.world import apply_config, file_order, local_hosts, make_repo, rows

BRANCH = "feature/x"
ORDERS = 20


def test_twenty_orders_deployed_concurrently_by_two_agents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with agent_site(tmp_path, "redis", monkeypatch) as site, \
            scratch_database("postgresql", tmp_path) as target:
        engine = create_engine(target)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE hits (n INTEGER NOT NULL)"))
        names = [f"svc{i:02d}" for i in range(ORDERS)]
        services = []
        for name in names:
            repo = make_repo(tmp_path, name, {"src/index.html": "v1\n"},
                             branches={BRANCH: {"src/index.html": f"{name} v2\n"}})
            services.append({"name": name, "repo": repo.url, "build": "cp -r src dist",
                             "pack": ["dist"], "stages": {"prod": {
                                 "path": f"srv/{name}", "hosts": ["h1"], "database": "hits"}}})
        apply_config(site.runtime, tmp_path / "golive.yaml", {
            "hosts": local_hosts(tmp_path, ["h1"]),
            "databases": [{"name": "hits", "url": target}],
            "projects": [{"name": "shop", "stages": ["prod"], "services": services}]})
        orders = [file_order(site.runtime, "admin", "shop", [ItemRequest(
            name, BRANCH, f"INSERT INTO hits (n) VALUES ({i});")]) for i, name in
            enumerate(names)]
        site.start_agent("left")
        site.start_agent("right")

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=ORDERS) as pool:
            deployment_ids = list(pool.map(site.deploy, orders))
        ended = [site.wait_ended(d, timeout=120) for d in deployment_ids]
        took = time.monotonic() - started

        assert [(d.status, d.error) for d in ended] == [("succeeded", "")] * ORDERS
        assert {site.api("GET", f"/orders/{o}")["state"] for o in orders} == {"done"}
        assert {d.agent for d in ended} == {"left", "right"}, took
        ledger = rows(site.runtime, CommitLedger)
        assert sorted(e.order_id for e in ledger) == sorted(orders)
        assert all(e.stage == "prod" and e.deployed_commit for e in ledger)
        executions = rows(site.runtime, SqlExecution)
        assert sorted((e.order_id, e.status) for e in executions) == [
            (o, "success") for o in sorted(orders)]
        with engine.connect() as conn:
            assert sorted(conn.execute(text("SELECT n FROM hits")).scalars()) == list(
                range(ORDERS))
        engine.dispose()
