"""/healthz and /metrics on SQLite, PostgreSQL and MariaDB: the metrics are read from the
store at scrape time, after real deploys (one succeeded, one failed, one pending, one
release queued) and real deliveries (a retried one sent, one refused for good)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from golive import __version__
from golive.api.monitoring import router
from golive.errors import StoreError
from golive.services import notify, requests, users
from golive.services.metrics import BUCKETS, render_metrics
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.db import Store, make_engine
from golive.store.models import Deployment, Notification, NotificationAttempt, utcnow
from golive.testing.receivers import Robot, robot
from golive.testing.world import apply_config, deploy, file_order, local_hosts, make_repo, rows

BRANCH = "feature/x"
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "rita", "roles": ["releaser"]}]
Labels = tuple[tuple[str, str], ...]


def samples(text: str, name: str) -> dict[Labels, float]:
    """The values of the samples called ``name``, by their sorted labels."""
    found: dict[Labels, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def scrape(runtime: Runtime) -> str:
    body, content_type = render_metrics(runtime.store)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return body.decode()


def service(name: str, repo_url: str, build: str, stages: list[str]) -> dict[str, Any]:
    stage = {"mode": "artifact", "path": f"srv/{name}", "hosts": ["h1"]}
    return {"name": name, "repo": repo_url, "build": build, "pack": ["dist"],
            "stages": {s: stage for s in stages}}


def project(name: str, stages: list[str], build: str, root: Path,
            notify_to: list[dict[str, Any]]) -> dict[str, Any]:
    repo = make_repo(root, name, {"src/index.html": "v1\n"},
                     branches={BRANCH: {"src/index.html": "v2\n"}})
    return {"name": name, "stages": stages, "members": MEMBERS, "notify": notify_to,
            "services": [service(name, repo.url, build, stages)]}


@dataclass
class World:
    succeeded: int
    failed: int
    pending: int
    queued: int
    wecom: Robot
    hook: Robot


@pytest.fixture
def world(tmp_path: Path, runtime: Runtime) -> Iterator[World]:
    """shop deployed to test (succeeded), blog to staging (its build exits 1), docs asked
    for a deploy to test that no runner took yet (pending) and a release queued for a
    window; shop's wecom robot answers 500 once then takes the message, blog's webhook
    refuses every message (its channel signs with the wrong secret)."""
    with robot("wecom") as wecom, robot("webhook", "the-right-secret") as hook:
        apply_config(runtime, tmp_path / "golive.yaml", {
            "hosts": local_hosts(tmp_path, ["h1"]),
            "projects": [
                project("shop", ["test", "prod"], "cp -r src dist", tmp_path,
                        [{"type": "wecom", "name": "chat", "webhook": wecom.url,
                          "events": ["deploy_succeeded"]}]),
                project("blog", ["staging", "prod"], "echo broken >&2; exit 1", tmp_path,
                        [{"type": "webhook", "name": "hook", "webhook": hook.url,
                          "secret": "a-wrong-secret", "events": ["deploy_failed"]}]),
                project("docs", ["test", "prod"], "cp -r src dist", tmp_path, []),
            ]})
        shop = file_order(runtime, "alice", "shop", [ItemRequest("shop", BRANCH)])
        succeeded, ok = deploy(runtime, shop, "alice")
        assert ok, rows(runtime, Deployment)[-1].error
        blog = file_order(runtime, "alice", "blog", [ItemRequest("blog", BRANCH)])
        failed, ok = deploy(runtime, blog, "alice")
        assert not ok
        docs = file_order(runtime, "alice", "docs", [ItemRequest("docs", BRANCH)])
        with runtime.store.session() as session:
            pending = requests.request_deployment(
                session, docs, users.acting_user(session, "alice")).id
            release = Deployment(order_id=docs, stage="prod", kind="iterative",
                                 action="release", status="queued", requested_by="rita",
                                 not_before=utcnow() + timedelta(days=1))
            session.add(release)
            session.commit()
            queued = release.id
        yield World(succeeded, failed, pending, queued, wecom, hook)


def test_metrics_count_deployments_and_notifications_from_the_store(
        world: World, runtime: Runtime) -> None:
    finished = rows(runtime, Deployment, Deployment.id.in_((world.succeeded, world.failed)))
    assert [d.status for d in finished] == ["succeeded", "failed"]
    assert all(d.started_at and d.finished_at for d in finished)

    world.wecom.fail_next(1, "http_500")
    assert notify.deliver_due(runtime) == 2
    text = scrape(runtime)
    assert samples(text, "golive_notifications_total") == {
        (("channel_type", "webhook"), ("status", "failed")): 1,
        (("channel_type", "wecom"), ("status", "queued")): 1}
    assert notify.deliver_due(runtime, now=utcnow() + timedelta(minutes=10)) == 1
    (retried,) = rows(runtime, Notification, Notification.status == "sent")
    assert retried.attempts == 2
    text = scrape(runtime)

    assert samples(text, "golive_deployments_total") == {
        (("kind", "iterative"), ("project", "blog"), ("result", "failed"),
         ("stage", "staging")): 1,
        (("kind", "iterative"), ("project", "shop"), ("result", "succeeded"),
         ("stage", "test")): 1}
    assert samples(text, "golive_deployments_active") == {
        (("stage", "test"), ("status", "pending")): 1}
    assert samples(text, "golive_deployment_queue_length") == {(): 2}

    counts = samples(text, "golive_deployment_duration_seconds_count")
    assert counts == {(("stage", "staging"),): 1, (("stage", "test"),): 1}
    assert sum(counts.values()) == len(finished)
    sums = samples(text, "golive_deployment_duration_seconds_sum")
    buckets = samples(text, "golive_deployment_duration_seconds_bucket")
    for deployment in finished:
        assert deployment.started_at is not None and deployment.finished_at is not None
        took = (deployment.finished_at - deployment.started_at).total_seconds()
        stage = (("stage", deployment.stage),)
        assert sums[stage] == pytest.approx(took, abs=0.002)
        for bound in (*BUCKETS, float("inf")):
            le = "+Inf" if bound == float("inf") else str(bound)
            assert buckets[(("le", le), *stage)] == (1 if took <= bound else 0)

    assert samples(text, "golive_notifications_total") == {
        (("channel_type", "webhook"), ("status", "failed")): 1,
        (("channel_type", "wecom"), ("status", "sent")): 1}
    assert samples(text, "golive_notification_failures_total") == {
        (("channel_type", "webhook"),): 1, (("channel_type", "wecom"),): 0}
    assert len(rows(runtime, NotificationAttempt)) == 3  # 500, then sent; and the refusal
    assert samples(text, "golive_notification_attempts_failed_total") == {
        (("channel_type", "webhook"),): 1, (("channel_type", "wecom"),): 1}
    assert samples(text, "golive_info") == {(("version", __version__),): 1}


def test_duration_buckets_are_computed_in_the_store(world: World, runtime: Runtime) -> None:
    """Exact bucket edges, sub-second times, a clock running backwards, and deployments
    that never started (no run time) on every backend."""
    (docs,) = rows(runtime, Deployment, Deployment.id == world.pending)
    start = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
    timed = {"succeeded": [0.25, 5.0, 59.999, 7200.0], "failed": [5.001, 600.0, -3.0]}
    with runtime.store.session() as session:
        for status, seconds in timed.items():
            session.add_all(
                Deployment(order_id=docs.order_id, stage="prod", status=status,
                           requested_by="alice", started_at=start,
                           finished_at=start + timedelta(seconds=s)) for s in seconds)
        session.add(Deployment(order_id=docs.order_id, stage="prod", status="cancelled",
                               requested_by="alice", finished_at=start))
        session.commit()

    text = scrape(runtime)
    prod = (("stage", "prod"),)
    buckets = {le: value for ((_, le), *stage), value in
               samples(text, "golive_deployment_duration_seconds_bucket").items()
               if tuple(stage) == prod}
    assert buckets == {"5.0": 3, "15.0": 4, "30.0": 4, "60.0": 5, "120.0": 5, "300.0": 5,
                       "600.0": 6, "1800.0": 6, "+Inf": 7}
    assert samples(text, "golive_deployment_duration_seconds_count")[prod] == 7
    assert samples(text, "golive_deployment_duration_seconds_sum")[prod] == pytest.approx(
        0.25 + 5.0 + 59.999 + 7200.0 + 5.001 + 600.0, abs=1e-6)
    by_result = samples(text, "golive_deployments_total")
    assert by_result[(("kind", "iterative"), ("project", "docs"), ("result", "cancelled"),
                      ("stage", "prod"))] == 1
    assert by_result[(("kind", "iterative"), ("project", "docs"), ("result", "succeeded"),
                      ("stage", "prod"))] == 4


def test_a_scrape_is_a_few_aggregate_queries(world: World, runtime: Runtime) -> None:
    """However many deployments there are, a scrape runs the same few queries, each an
    aggregate (a row per group, never one per deployment)."""
    (docs,) = rows(runtime, Deployment, Deployment.id == world.pending)
    with runtime.store.session() as session:
        session.add_all(Deployment(order_id=docs.order_id, stage="prod", status="succeeded",
                                   requested_by="alice", started_at=utcnow(),
                                   finished_at=utcnow()) for _ in range(300))
        session.commit()
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(runtime.store.engine, "before_cursor_execute", seen)
    try:
        text = scrape(runtime)
    finally:
        event.remove(runtime.store.engine, "before_cursor_execute", seen)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 6
    assert all("GROUP BY" in s or "DISTINCT" in s for s in selects)
    assert samples(text, "golive_deployment_duration_seconds_count")[(("stage", "prod"),)] == 300


def app_on(runtime: Any) -> FastAPI:
    app = FastAPI()
    app.state.runtime = runtime
    app.include_router(router)
    return app


def test_healthz_and_metrics_routes(runtime: Runtime) -> None:
    app = app_on(runtime)
    with TestClient(app) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "store": "ok", "version": __version__}
        scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert samples(scraped.text, "golive_deployment_queue_length") == {(): 0}
    assert samples(scraped.text, "golive_info") == {(("version", __version__),): 1}
    paths = app.openapi()["paths"]
    assert "/healthz" not in paths and "/metrics" not in paths


UNREACHABLE = ["postgresql+psycopg://postgres@127.0.0.1:1/postgres",
               "mysql+pymysql://root@127.0.0.1:1/test"]


@pytest.mark.parametrize("url", UNREACHABLE, ids=["postgresql", "mariadb"])
def test_an_unreachable_store_answers_503(url: str) -> None:
    engine = make_engine(url)
    store = Store(engine, sessionmaker(engine, expire_on_commit=False))
    try:
        with TestClient(app_on(SimpleNamespace(store=store))) as client:
            health = client.get("/healthz")
            scraped = client.get("/metrics")
        with pytest.raises(StoreError, match="cannot read the metrics"):
            render_metrics(store)
    finally:
        store.close()
    assert health.status_code == 503
    assert health.json() == {"status": "error", "store": "unreachable (OperationalError)"}
    assert "127.0.0.1" not in health.text
    assert scraped.status_code == 503
    assert "golive_" not in scraped.text


def test_metrics_use_a_registry_of_their_own(runtime: Runtime) -> None:
    from prometheus_client import REGISTRY, generate_latest

    before = generate_latest(REGISTRY)
    scrape(runtime)
    assert b"golive_" not in before and b"golive_" not in generate_latest(REGISTRY)
