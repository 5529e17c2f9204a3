"""SQLAlchemy models of every entity in DESIGN §1 and the ledgers.

Portable across SQLite, PostgreSQL and MariaDB: every string has a length
(MariaDB needs one for indexed columns), JSON columns hold lists and small maps,
times are stored as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL keeps the zone; SQLite and MariaDB store a naive value and return it
    naive. Values are written as UTC and always read back aware, in UTC (a naive
    value is taken to be UTC).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # MariaDB/MySQL keep whole seconds unless asked for microseconds.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Name = String(100)
Created = UTCDateTime()


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    mobile: Mapped[str] = mapped_column(String(50), default="")
    wecom_id: Mapped[str] = mapped_column(String(100), default="")
    dingtalk_id: Mapped[str] = mapped_column(String(100), default="")
    feishu_id: Mapped[str] = mapped_column(String(100), default="")
    language: Mapped[str] = mapped_column(String(10), default="")  # "": the browser's
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    stages: Mapped[list[Any]] = mapped_column(JSON)
    auto_promote: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_release: Mapped[bool] = mapped_column(Boolean, default=False)
    release_windows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    release_timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    freeze_dates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Days (``2026-12-24``) or ranges (``2026-12-24..2027-01-02``) without releases."""
    delete_branch_after_release: Mapped[bool] = mapped_column(Boolean, default=False)
    redeploy_on_push: Mapped[bool] = mapped_column(Boolean, default=False)
    """A git push to the branch of an order being tested redeploys it (webhooks)."""
    push_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The push webhooks' token or HMAC secret, encrypted with the secret box."""
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)

    services: Mapped[list[Service]] = relationship(
        back_populates="project", order_by="Service.position", cascade="all, delete-orphan"
    )
    members: Mapped[list[Member]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )
    channels: Mapped[list[Channel]] = relationship(
        back_populates="project", order_by="Channel.position", cascade="all, delete-orphan"
    )


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))

    project: Mapped[Project] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    transport: Mapped[str] = mapped_column(String(20), default="ssh")
    address: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int] = mapped_column(Integer, default=22)
    user: Mapped[str] = mapped_column(String(100), default="")
    key_path: Mapped[str] = mapped_column(String(500), default="")
    password_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    password_template: Mapped[str | None] = mapped_column(String(500), nullable=True)
    private_key_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    private_key_template: Mapped[str | None] = mapped_column(String(500), nullable=True)
    root: Mapped[str] = mapped_column(String(500), default="")
    proxy_jump: Mapped[str] = mapped_column(String(255), default="")
    zone: Mapped[str] = mapped_column(String(100), default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    host_key: Mapped[str | None] = mapped_column(Text, nullable=True)


class TargetDatabase(Base):
    """A database that order SQL runs on; its URL is stored encrypted."""

    __tablename__ = "target_databases"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    url_masked: Mapped[str] = mapped_column(String(1000))
    url_enc: Mapped[str] = mapped_column(Text)
    url_template: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    statement_timeout: Mapped[int] = mapped_column(Integer, default=0)
    """Seconds a statement may run before the database stops it (0: no limit)."""


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name)
    position: Mapped[int] = mapped_column(Integer, default=0)
    repo: Mapped[str] = mapped_column(String(1000))
    main_branch: Mapped[str] = mapped_column(String(255), default="main")
    build: Mapped[str] = mapped_column(Text, default="")
    build_timeout: Mapped[int] = mapped_column(Integer, default=600)
    pack: Mapped[list[Any]] = mapped_column(JSON, default=list)
    exclude: Mapped[list[Any]] = mapped_column(JSON, default=list)
    shared: Mapped[list[Any]] = mapped_column(JSON, default=list)
    post_deploy: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rollback_hooks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    health_check: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    project: Mapped[Project] = relationship(back_populates="services")
    stages: Mapped[list[ServiceStage]] = relationship(
        back_populates="service", order_by="ServiceStage.position", cascade="all, delete-orphan"
    )


class ServiceStage(Base):
    """How and where one service is deployed on one stage."""

    __tablename__ = "service_stages"
    __table_args__ = (UniqueConstraint("service_id", "stage"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(Name)
    position: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str] = mapped_column(String(20), default="artifact")
    path: Mapped[str] = mapped_column(String(500))
    database_id: Mapped[int | None] = mapped_column(
        ForeignKey("target_databases.id", ondelete="RESTRICT"), nullable=True
    )
    batch: Mapped[str] = mapped_column(String(10), default="0")
    """Hosts switched at a time: a number ("0": all at once) or a percentage ("25%")."""
    parallel: Mapped[int] = mapped_column(Integer, default=20)
    keep_releases: Mapped[int] = mapped_column(Integer, default=5)
    zone: Mapped[str] = mapped_column(String(100), default="", server_default="")
    """The network zone whose agents deploy it ("": the zone its hosts name, if any)."""

    service: Mapped[Service] = relationship(back_populates="stages")
    database: Mapped[TargetDatabase | None] = relationship()
    hosts: Mapped[list[StageHost]] = relationship(
        back_populates="service_stage", order_by="StageHost.position", cascade="all, delete-orphan"
    )


class StageHost(Base):
    """A host of a service's stage: deploy target (in a lane or not) or job host."""

    __tablename__ = "stage_hosts"
    __table_args__ = (UniqueConstraint("service_stage_id", "kind", "lane", "host_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_stage_id: Mapped[int] = mapped_column(
        ForeignKey("service_stages.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(10), default="deploy")  # deploy | job
    lane: Mapped[str] = mapped_column(String(100), default="")
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer, default=0)

    service_stage: Mapped[ServiceStage] = relationship(back_populates="hosts")
    host: Mapped[Host] = relationship()


class Channel(Base):
    """A notification channel of a project; its secret fields are stored encrypted."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name)
    position: Mapped[int] = mapped_column(Integer, default=0)
    type: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10), default="en")
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_templates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    project: Mapped[Project] = relationship(back_populates="channels")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[str] = mapped_column(String(120), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    sql_approved_by: Mapped[str] = mapped_column(Name, default="")
    sql_approved_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    sql_approved_checksums: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The statements an owner or releaser approved (their review findings allowed)."""

    project: Mapped[Project] = relationship()
    created_by: Mapped[User] = relationship()
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.position", cascade="all, delete-orphan"
    )
    history: Mapped[list[OrderHistory]] = relationship(
        back_populates="order", order_by="OrderHistory.id", cascade="all, delete-orphan"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (UniqueConstraint("order_id", "service_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    branch: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)
    transactional: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    """Run the item's statements in one transaction (None: yes on PostgreSQL)."""

    order: Mapped[Order] = relationship(back_populates="items")
    service: Mapped[Service] = relationship()
    statements: Mapped[list[SqlStatement]] = relationship(
        back_populates="item", order_by="SqlStatement.position", cascade="all, delete-orphan"
    )
    jobs: Mapped[list[OrderJob]] = relationship(
        back_populates="item", order_by="OrderJob.position", cascade="all, delete-orphan"
    )


class SqlStatement(Base):
    __tablename__ = "sql_statements"
    __table_args__ = (UniqueConstraint("item_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)

    item: Mapped[OrderItem] = relationship(back_populates="statements")


class OrderJob(Base):
    __tablename__ = "order_jobs"
    __table_args__ = (UniqueConstraint("item_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Name)
    kind: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)

    item: Mapped[OrderItem] = relationship(back_populates="jobs")


class OrderHistory(Base):
    """One transition of an order: who, when, from, to, why."""

    __tablename__ = "order_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    actor: Mapped[str] = mapped_column(Name)
    action: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str] = mapped_column(String(120))
    to_state: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship(back_populates="history")


class Deployment(Base):
    """One run of an order on one stage."""

    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(Name)
    lane: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(20), default="iterative")
    target_release: Mapped[str] = mapped_column(String(100), default="")
    only_hosts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """A canary: deploy to these hosts only (empty: all)."""
    pause_after_batch: Mapped[bool] = mapped_column(Boolean, default=False)
    prune_jobs: Mapped[bool] = mapped_column(Boolean, default=False)
    """Remove jobs the ledger has on the stage's job hosts that this order no longer lists."""
    full_transfer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Send every host the whole archive, never a delta from its current release."""
    batches_released: Mapped[int] = mapped_column(Integer, default=0)
    """With pause_after_batch: how many batches `golive order resume` let through."""
    status: Mapped[str] = mapped_column(String(20), default="pending")
    """queued (for a release window) | pending | running | paused | succeeded | failed |
    interrupted (its process died: resumable) | abandoned (replaced by a fresh one)."""
    action: Mapped[str] = mapped_column(String(20), default="deploy")
    release_id: Mapped[str] = mapped_column(String(100), default="")
    """Fixed when it first runs, so that a resumed deployment finishes the same release."""
    pinned: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """service → {branch_head, main_head} planned by the first run; a resume keeps them."""
    resumes: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    """A queued release starts in the first release window from this time on."""
    accept_unverified_by: Mapped[str] = mapped_column(String(100), default="")
    policy: Mapped[str] = mapped_column(String(20), default="")
    """The project setting that asked for it (auto_promote, auto_release), after a pass by
    ``requested_by``; empty when a person asked."""
    runner: Mapped[str] = mapped_column(String(200), default="")
    """host:pid:start-time of the process running it, to tell a live run from a dead one."""
    zone: Mapped[str] = mapped_column(String(100), default="", server_default="")
    """The zone whose agents run it (with GOLIVE_TASKS=celery; "" for the default zone)."""
    agent: Mapped[str] = mapped_column(String(100), default="", server_default="")
    """The agent that ran it last ("" when run by the server or the CLI)."""
    requested_by: Mapped[str] = mapped_column(Name)
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")

    steps: Mapped[list[DeploymentStep]] = relationship(
        back_populates="deployment", order_by="DeploymentStep.id", cascade="all, delete-orphan"
    )


class DeploymentStep(Base):
    """Progress of one step of a deployment, per service and (optionally) host."""

    __tablename__ = "deployment_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), nullable=True
    )
    host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id", ondelete="SET NULL"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    started_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What a resumed deployment needs from a finished step (e.g. the previous release)."""

    deployment: Mapped[Deployment] = relationship(back_populates="steps")


class LogLine(Base):
    __tablename__ = "log_lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    level: Mapped[str] = mapped_column(String(10), default="info")
    service: Mapped[str] = mapped_column(String(100), default="")
    host: Mapped[str] = mapped_column(String(100), default="")
    text: Mapped[str] = mapped_column(Text)


class CommitLedger(Base):
    """The commit deployed for each (order, service, stage)."""

    __tablename__ = "commit_ledger"
    __table_args__ = (UniqueConstraint("order_id", "service_id", "stage"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(Name)
    branch_commit: Mapped[str] = mapped_column(String(64))
    main_commit: Mapped[str] = mapped_column(String(64), default="")
    deployed_commit: Mapped[str] = mapped_column(String(64))
    release_id: Mapped[str] = mapped_column(String(100), default="")
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True
    )
    recorded_at: Mapped[datetime] = mapped_column(Created, default=utcnow)


class SqlExecution(Base):
    """One execution of an order's statement on one target database."""

    __tablename__ = "sql_ledger"
    id: Mapped[int] = mapped_column(primary_key=True)
    database_id: Mapped[int] = mapped_column(
        ForeignKey("target_databases.id", ondelete="RESTRICT"), index=True
    )
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    statement_id: Mapped[int] = mapped_column(
        ForeignKey("sql_statements.id", ondelete="CASCADE")
    )
    checksum: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(Name)
    status: Mapped[str] = mapped_column(String(20))  # running | success | failed | unknown
    runner: Mapped[str] = mapped_column(String(200), default="")
    executed_by: Mapped[str] = mapped_column(Name)
    started_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows_affected: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")


class SqlLock(Base):
    """Who runs statements on a target database now: one runner per database."""

    __tablename__ = "sql_locks"
    database_id: Mapped[int] = mapped_column(
        ForeignKey("target_databases.id", ondelete="CASCADE"), primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer)
    deployment_id: Mapped[int] = mapped_column(Integer, default=0)
    runner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(Created, default=utcnow)


class JobLedger(Base):
    """A job created on a host for a stage: created once, reloaded after."""

    __tablename__ = "job_ledger"
    __table_args__ = (UniqueConstraint("service_id", "stage", "host_id", "job_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(Name)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    job_name: Mapped[str] = mapped_column(Name)
    kind: Mapped[str] = mapped_column(String(20), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The definition it last ran with (cron lines are rendered from it)."""
    definition_checksum: Mapped[str] = mapped_column(String(64))
    created_by_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    reloaded_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)


class DeployLock(Base):
    """One deployment at a time per (service, stage, lane): who holds it, and a heartbeat.

    Rows stay once made; a free lock has no deployment. Taking one is a compare-and-set
    on the row (after ``SELECT ... FOR UPDATE`` on PostgreSQL and MariaDB)."""

    __tablename__ = "deploy_locks"
    __table_args__ = (UniqueConstraint("service_id", "stage", "lane"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(Name)
    lane: Mapped[str] = mapped_column(String(100), default="")
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True)
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    runner: Mapped[str] = mapped_column(String(200), default="")
    acquired_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)


class LaneHold(Base):
    """An order holding a lane of a stage until it moves on, is cancelled or is released."""

    __tablename__ = "lane_holds"
    __table_args__ = (UniqueConstraint("project_id", "stage", "lane"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(Name)
    lane: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    held_by: Mapped[str] = mapped_column(Name)
    held_since: Mapped[datetime] = mapped_column(Created, default=utcnow)


class Occupancy(Base):
    """Which order's branch a service serves now on a stage (and lane)."""

    __tablename__ = "occupancy"
    __table_args__ = (UniqueConstraint("service_id", "stage", "lane"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(Name)
    lane: Mapped[str] = mapped_column(String(100), default="")
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    branch: Mapped[str] = mapped_column(String(255))
    commit: Mapped[str] = mapped_column(String(64))
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True)
    since: Mapped[datetime] = mapped_column(Created, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")


class MainMove(Base):
    """A release moved a service's main branch: open orders on it are "main moved"."""

    __tablename__ = "main_moves"
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    commit: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(Created, default=utcnow)


class Notification(Base):
    """A message for one channel, queued in the transaction of the event it tells of
    (an outbox): a sender delivers it later, retrying with backoff."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"),
                                            index=True)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), nullable=True)
    event: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The rendered message: markdown, text, html, link, mentions, data."""
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(Created, default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")


class NotificationAttempt(Base):
    """One try to deliver a notification: what the vendor answered."""

    __tablename__ = "notification_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(Base):
    """A bearer token for the API: shown once, stored as its SHA-256 only."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The token's first characters, to tell tokens apart in lists."""
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A login: the cookie holds a random id, the store its SHA-256 and the CSRF token."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Created)

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """A failed login, counted per user name and per address to slow password guessing."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[datetime] = mapped_column(Created, default=utcnow, index=True)


class AuditEntry(Base):
    """One write through the API: who, when, what, from where, and how it ended."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(Created, default=utcnow, index=True)
    user_name: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500), default="")
    project: Mapped[str] = mapped_column(String(100), default="", index=True)
    status: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The request's parameters, secrets masked."""


class Agent(Base):
    """A Celery agent (``golive agent``): its zone, version and heartbeat."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name, unique=True)
    zone: Mapped[str] = mapped_column(String(100), default="")
    version: Mapped[str] = mapped_column(String(50), default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    runner: Mapped[str] = mapped_column(String(200), default="")
    """The runner its deployments record (``agent:<name>@host:pid:start``)."""
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    heartbeat_every: Mapped[float] = mapped_column(Float, default=10.0)
    started_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(Created, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(Created, nullable=True)
