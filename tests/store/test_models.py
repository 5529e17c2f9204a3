"""Every entity of the store is written and read back, with its relationships and
constraints, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from golive.services.runtime import Runtime
from golive.store.models import (
    Channel,
    CommitLedger,
    Deployment,
    DeploymentStep,
    Host,
    JobLedger,
    LogLine,
    Member,
    Order,
    OrderHistory,
    OrderItem,
    OrderJob,
    Project,
    Service,
    ServiceStage,
    SqlExecution,
    SqlStatement,
    StageHost,
    TargetDatabase,
    User,
    utcnow,
)

TITLE = "优惠券上线"
STAGES = ["test", "staging", "prod"]
LABELS = {"role": "web", "机房": "杭州", "weight": 3, "tags": ["a", "b"]}


@dataclass
class Ids:
    user: int
    project: int
    host_a: int
    host_b: int
    job_host: int
    database: int
    service: int
    order: int
    item: int
    statement: int
    deployment: int


def build_graph(session: Session) -> Ids:
    """One of everything, linked the way the deploy engine links them; committed."""
    alice = User(name="alice", display_name="爱丽丝", email="alice@example.com",
                 mobile="13800000000", wecom_id="wc-alice", language="zh_CN")
    bob = User(name="bob")
    project = Project(name="shop", stages=STAGES, auto_promote=True,
                      release_windows=[{"days": ["mon", "tue"], "from": "10:00", "to": "16:00"}])
    project.members.append(Member(user=alice, role="developer"))
    project.members.append(Member(user=alice, role="tester"))
    project.members.append(Member(user=bob, role="owner"))
    host_a = Host(name="web-1", address="10.0.0.1", user="deploy", labels=LABELS)
    host_b = Host(name="web-2", address="10.0.0.2", port=2222, transport="local",
                  root="/srv/golive")
    job_host = Host(name="jobs-1", address="10.0.0.9")
    database = TargetDatabase(name="shopdb", url_masked="mysql+pymysql://app:***@db/shop",
                              url_enc="sealed-url")
    service = Service(name="api", repo="git@example.com:shop/api.git", position=0,
                      build="make", pack=["dist", "bin"], exclude=["*.log"],
                      shared=["storage/"], post_deploy=["pm2 reload api"],
                      health_check={"url": "http://127.0.0.1:8080/health", "timeout": 5})
    test_stage = ServiceStage(stage="test", position=0, mode="checkout", path="/srv/api")
    test_stage.hosts.append(StageHost(host=host_a, lane="t1", position=0))
    test_stage.hosts.append(StageHost(host=host_b, lane="t2", position=1))
    prod_stage = ServiceStage(stage="prod", position=2, mode="artifact", path="/srv/api",
                              database=database, batch="1", keep_releases=3)
    prod_stage.hosts.append(StageHost(host=host_a, position=0))
    prod_stage.hosts.append(StageHost(host=host_b, position=1))
    prod_stage.hosts.append(StageHost(host=job_host, kind="job", position=2))
    service.stages.extend([test_stage, prod_stage])
    project.services.append(service)
    project.channels.append(Channel(name="team", type="wecom", position=0,
                                    events=["submitted", "passed"],
                                    settings={"mentions": ["alice"]}, secrets_enc="sealed",
                                    secret_templates={"key": "${WECOM_KEY}"}))
    project.channels.append(Channel(name="mail", type="email", position=1))
    session.add_all([project, host_a, host_b, job_host, database])
    session.flush()

    order = Order(project=project, title=TITLE, created_by=alice)
    item = OrderItem(service=service, branch="feature/优惠券", position=0)
    first = SqlStatement(position=0, text="ALTER TABLE coupon ADD note VARCHAR(20)",
                         checksum="a" * 64)
    second = SqlStatement(position=1, text="INSERT INTO coupon (note) VALUES ('满100减20')",
                          checksum="b" * 64)
    item.statements.extend([first, second])
    item.jobs.append(OrderJob(name="worker", kind="pm2", position=0,
                              spec={"script": "worker.js", "args": ["--queue", "coupon"]}))
    order.items.append(item)
    order.history.append(OrderHistory(actor="alice", action="create", from_state="",
                                      to_state="draft"))
    order.history.append(OrderHistory(actor="alice", action="submit", from_state="draft",
                                      to_state="submitted", reason="准备测试"))
    session.add(order)
    session.flush()

    started = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    deployment = Deployment(order_id=order.id, stage="prod", lane="", kind="full",
                            status="success", requested_by="bob", started_at=started,
                            finished_at=started + timedelta(minutes=3))
    deployment.steps.append(DeploymentStep(service_id=service.id, host_id=host_a.id,
                                           name="switch", status="success", message="ok"))
    deployment.steps.append(DeploymentStep(name="build", status="success"))
    session.add(deployment)
    session.flush()
    session.add_all([
        LogLine(deployment_id=deployment.id, service="api", host="web-1",
                text="构建完成 build done"),
        LogLine(deployment_id=deployment.id, level="error", text="second line"),
        CommitLedger(order_id=order.id, service_id=service.id, stage="prod",
                     branch_commit="1" * 40, main_commit="2" * 40, deployed_commit="3" * 40,
                     release_id="20260501120000-abc", deployment_id=deployment.id),
        SqlExecution(database_id=database.id, order_id=order.id, statement_id=first.id,
                     checksum=first.checksum, stage="prod", status="success",
                     executed_by="bob", finished_at=started, duration_ms=12,
                     rows_affected=0),
        JobLedger(service_id=service.id, stage="prod", host_id=job_host.id,
                  job_name="worker", definition_checksum="c" * 64,
                  created_by_order_id=order.id),
    ])
    session.commit()
    return Ids(user=alice.id, project=project.id, host_a=host_a.id, host_b=host_b.id,
               job_host=job_host.id, database=database.id, service=service.id,
               order=order.id, item=item.id, statement=first.id, deployment=deployment.id)


def count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_every_entity_round_trips_with_its_relationships(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        ids = build_graph(session)

    with runtime.store.session() as session:  # a fresh session: everything comes from the DB
        alice = session.get(User, ids.user)
        assert alice is not None
        assert (alice.name, alice.display_name, alice.language) == ("alice", "爱丽丝", "zh_CN")
        assert alice.is_admin is False and alice.password_hash is None
        assert alice.created_at is not None

        project = session.scalars(select(Project).where(Project.name == "shop")).one()
        assert project.stages == STAGES
        assert project.auto_promote is True and project.auto_release is False
        assert project.release_windows == [
            {"days": ["mon", "tue"], "from": "10:00", "to": "16:00"}]
        assert sorted((m.user.name, m.role) for m in project.members) == [
            ("alice", "developer"), ("alice", "tester"), ("bob", "owner")]
        assert [c.name for c in project.channels] == ["team", "mail"]
        team = project.channels[0]
        assert (team.type, team.events, team.settings) == (
            "wecom", ["submitted", "passed"], {"mentions": ["alice"]})
        assert (team.secrets_enc, team.secret_templates) == ("sealed", {"key": "${WECOM_KEY}"})
        assert project.channels[1].events == [] and project.channels[1].settings == {}

        web1 = session.scalars(select(Host).where(Host.name == "web-1")).one()
        assert web1.labels == LABELS
        assert (web1.transport, web1.port, web1.address) == ("ssh", 22, "10.0.0.1")
        web2 = session.get(Host, ids.host_b)
        assert web2 is not None
        assert (web2.transport, web2.port, web2.root, web2.labels) == (
            "local", 2222, "/srv/golive", {})

        [service] = project.services
        assert service.project.name == "shop"
        assert (service.pack, service.exclude, service.shared) == (["dist", "bin"], ["*.log"],
                                                                  ["storage/"])
        assert service.post_deploy == ["pm2 reload api"] and service.rollback_hooks == []
        assert service.health_check == {"url": "http://127.0.0.1:8080/health", "timeout": 5}
        assert (service.main_branch, service.build_timeout) == ("main", 600)
        assert [s.stage for s in service.stages] == ["test", "prod"]
        test_stage, prod_stage = service.stages
        assert (test_stage.mode, test_stage.database, test_stage.keep_releases) == (
            "checkout", None, 5)
        assert [(h.kind, h.lane, h.host.name) for h in test_stage.hosts] == [
            ("deploy", "t1", "web-1"), ("deploy", "t2", "web-2")]
        assert prod_stage.database is not None and prod_stage.database.name == "shopdb"
        assert prod_stage.database.url_masked == "mysql+pymysql://app:***@db/shop"
        assert (prod_stage.batch, prod_stage.keep_releases) == ("1", 3)
        assert [(h.kind, h.lane, h.host.name) for h in prod_stage.hosts] == [
            ("deploy", "", "web-1"), ("deploy", "", "web-2"), ("job", "", "jobs-1")]
        assert all(h.service_stage is prod_stage for h in prod_stage.hosts)

        order = session.get(Order, ids.order)
        assert order is not None
        assert (order.title, order.state, order.version) == (TITLE, "draft", 1)
        assert order.project.name == "shop" and order.created_by.name == "alice"
        [item] = order.items
        assert (item.service.name, item.branch, item.order is order) == (
            "api", "feature/优惠券", True)
        assert [(s.position, s.text, s.checksum) for s in item.statements] == [
            (0, "ALTER TABLE coupon ADD note VARCHAR(20)", "a" * 64),
            (1, "INSERT INTO coupon (note) VALUES ('满100减20')", "b" * 64)]
        [job] = item.jobs
        assert (job.name, job.kind, job.spec) == (
            "worker", "pm2", {"script": "worker.js", "args": ["--queue", "coupon"]})
        assert [(h.actor, h.action, h.from_state, h.to_state, h.reason)
                for h in order.history] == [
            ("alice", "create", "", "draft", ""),
            ("alice", "submit", "draft", "submitted", "准备测试")]

        deployment = session.get(Deployment, ids.deployment)
        assert deployment is not None
        assert (deployment.order_id, deployment.stage, deployment.kind, deployment.status) == (
            ids.order, "prod", "full", "success")
        assert deployment.started_at is not None and deployment.finished_at is not None
        assert deployment.finished_at - deployment.started_at == timedelta(minutes=3)
        assert [(s.name, s.service_id, s.host_id) for s in deployment.steps] == [
            ("switch", ids.service, ids.host_a), ("build", None, None)]
        lines = session.scalars(
            select(LogLine).where(LogLine.deployment_id == ids.deployment).order_by(LogLine.id)
        ).all()
        assert [(x.level, x.service, x.host, x.text) for x in lines] == [
            ("info", "api", "web-1", "构建完成 build done"), ("error", "", "", "second line")]

        ledger = session.scalars(select(CommitLedger)).one()
        assert (ledger.order_id, ledger.service_id, ledger.stage, ledger.deployment_id) == (
            ids.order, ids.service, "prod", ids.deployment)
        assert (ledger.branch_commit, ledger.main_commit, ledger.deployed_commit) == (
            "1" * 40, "2" * 40, "3" * 40)
        assert ledger.release_id == "20260501120000-abc"

        execution = session.scalars(select(SqlExecution)).one()
        assert (execution.database_id, execution.order_id, execution.statement_id) == (
            ids.database, ids.order, ids.statement)
        assert (execution.status, execution.checksum, execution.duration_ms,
                execution.rows_affected) == ("success", "a" * 64, 12, 0)

        job_ledger = session.scalars(select(JobLedger)).one()
        assert (job_ledger.service_id, job_ledger.stage, job_ledger.host_id,
                job_ledger.job_name, job_ledger.created_by_order_id) == (
            ids.service, "prod", ids.job_host, "worker", ids.order)
        assert job_ledger.reloaded_at is None


def test_chinese_text_round_trips_in_queries(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        build_graph(session)
    with runtime.store.session() as session:
        found = session.scalars(select(Order).where(Order.title == TITLE)).one()
        assert found.title == TITLE
        like = session.scalars(select(Order.title).where(Order.title.like("%优惠%"))).all()
        assert like == [TITLE]
        assert session.scalar(select(User.id).where(User.display_name == "爱丽丝")) is not None


def test_duplicate_user_name_is_refused(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        session.add(User(name="alice"))
        session.commit()
        session.add(User(name="alice", email="other@example.com"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        assert count(session, User) == 1


@pytest.mark.parametrize("which", ["commit", "job"])
def test_ledger_keys_are_unique(runtime: Runtime, which: str) -> None:
    with runtime.store.session() as session:
        ids = build_graph(session)
        if which == "commit":
            # the same (order, service, stage) again, even with other commits
            session.add(CommitLedger(order_id=ids.order, service_id=ids.service, stage="prod",
                                     branch_commit="4" * 40, deployed_commit="5" * 40))
            model: type = CommitLedger
        else:
            # the same (service, stage, host, job) again, even from another definition
            session.add(JobLedger(service_id=ids.service, stage="prod", host_id=ids.job_host,
                                  job_name="worker", definition_checksum="d" * 64))
            model = JobLedger
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        assert count(session, model) == 1

        # another stage is another key
        if which == "commit":
            session.add(CommitLedger(order_id=ids.order, service_id=ids.service, stage="test",
                                     branch_commit="4" * 40, deployed_commit="4" * 40))
        else:
            session.add(JobLedger(service_id=ids.service, stage="test", host_id=ids.job_host,
                                  job_name="worker", definition_checksum="d" * 64))
        session.commit()
        assert count(session, model) == 2


def test_deleting_an_order_cascades_to_its_children(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        ids = build_graph(session)
    with runtime.store.session() as session:
        order = session.get(Order, ids.order)
        session.delete(order)
        session.commit()
    with runtime.store.session() as session:
        assert count(session, Order) == 0
        for model in (OrderItem, SqlStatement, OrderJob, OrderHistory, Deployment,
                      DeploymentStep, LogLine, CommitLedger, SqlExecution):
            assert count(session, model) == 0, model.__name__
        # the job stays in the ledger (it exists on the host); only the link is cleared
        job_ledger = session.scalars(select(JobLedger)).one()
        assert job_ledger.created_by_order_id is None
        # the project, its service and hosts are untouched
        assert count(session, Project) == 1 and count(session, Service) == 1
        assert count(session, Host) == 3


def test_the_database_itself_cascades_an_order_delete(runtime: Runtime) -> None:
    """A DELETE that bypasses the ORM (a bulk delete) still removes the children."""
    with runtime.store.session() as session:
        ids = build_graph(session)
    with runtime.store.session() as session:
        session.execute(delete(Order).where(Order.id == ids.order))
        session.commit()
        for model in (OrderItem, SqlStatement, OrderJob, OrderHistory, Deployment,
                      DeploymentStep, LogLine, CommitLedger, SqlExecution):
            assert count(session, model) == 0, model.__name__


def test_a_host_used_by_a_stage_cannot_be_deleted(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        ids = build_graph(session)
    with runtime.store.session() as session:
        host = session.get(Host, ids.host_b)
        session.delete(host)
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        assert session.get(Host, ids.host_b) is not None
        assert count(session, StageHost, StageHost.host_id == ids.host_b) == 2

    with runtime.store.session() as session:
        # once no stage uses it, the host can go
        session.execute(delete(StageHost).where(StageHost.host_id == ids.host_b))
        session.execute(delete(Host).where(Host.id == ids.host_b))
        session.commit()
        assert session.get(Host, ids.host_b) is None


def test_a_database_used_by_a_stage_cannot_be_deleted(runtime: Runtime) -> None:
    with runtime.store.session() as session:
        ids = build_graph(session)
    with runtime.store.session() as session:
        with pytest.raises(IntegrityError):
            session.execute(delete(TargetDatabase).where(TargetDatabase.id == ids.database))
            session.flush()
        session.rollback()
        assert session.get(TargetDatabase, ids.database) is not None


def test_times_read_back_as_aware_utc(runtime: Runtime) -> None:
    """Every backend returns the instant that was written, as an aware UTC datetime."""
    beijing = timezone(timedelta(hours=8))
    with runtime.store.session() as session:
        ids = build_graph(session)
        deployment = session.get(Deployment, ids.deployment)
        assert deployment is not None
        # 20:00 in Beijing is 12:00 UTC
        deployment.started_at = datetime(2026, 5, 1, 20, 0, 0, tzinfo=beijing)
        session.commit()
    with runtime.store.session() as session:
        deployment = session.get(Deployment, ids.deployment)
        assert deployment is not None and deployment.started_at is not None
        assert deployment.started_at == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
        assert deployment.started_at.utcoffset() == timedelta(0)
        assert deployment.finished_at == datetime(2026, 5, 1, 12, 3, 0, tzinfo=UTC)
        user = session.get(User, ids.user)
        assert user is not None and user.created_at.utcoffset() == timedelta(0)
        assert utcnow() - user.created_at < timedelta(minutes=5)
        # comparisons in queries use the same instant, whatever zone the bound value has
        before = datetime(2026, 5, 1, 20, 30, 0, tzinfo=beijing)  # 12:30 UTC
        found = session.scalars(select(Deployment.id).where(Deployment.started_at < before))
        assert list(found) == [ids.deployment]
        later = session.scalars(
            select(Deployment.id).where(Deployment.finished_at > before)).all()
        assert later == []
