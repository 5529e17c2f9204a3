"""Prometheus metrics, read from the store at scrape time.

The server, its deployment runners and (later) Celery agents are separate processes
sharing one store, so in-process counters would each see a part of the picture: every
scrape instead asks the store, in one short read-only session of a few ``GROUP BY``
queries whose answers are a handful of rows however many deployments there are.

Families (``render_metrics`` exposes them through a private registry, never the global
one, so each scrape reads the store once and nothing leaks between stores)::

    golive_deployments_total{project,stage,kind,result}   finished deployments
    golive_deployments_active{stage,status}               pending, running, paused
    golive_deployment_queue_length                        pending + queued (waiting to run)
    golive_deployment_duration_seconds{stage}             run time of finished deployments
    golive_notifications_total{channel_type,status}       the outbox: queued, sent, failed
    golive_notification_failures_total{channel_type}      notifications given up on
    golive_notification_attempts_failed_total{channel_type}  failed delivery attempts
    golive_info{version}

Durations are bucketed in SQL (``SUM(CASE WHEN seconds <= le ...)`` per bucket), so the
store returns one row per stage instead of one per deployment. The three backends have
no common "seconds between two timestamps": ``_seconds_between`` writes each one's own
(SQLite ``julianday``, PostgreSQL ``date_part('epoch', ...)``, MariaDB
``TIMESTAMPDIFF(MICROSECOND ...)``); selecting the timestamps of every finished
deployment and subtracting in Python would move the whole table at each scrape.
A duration is ``finished_at - started_at``: a deployment that never started (cancelled
while queued for a window, or a queued release that could not start) has no run time,
and its wait is not counted as one; a resumed deployment counts from its first start.

Cost: each deployments query is one scan of the table (``status`` has no index), a few
hundred milliseconds at 100,000 deployments. The totals are counts of rows, so deleting
orders (their deployments go with them) can make them drop: Prometheus' ``rate`` takes
that for a counter reset.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from sqlalchemy import ColumnElement, case, func, literal_column, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from golive import __version__
from golive.errors import StoreError
from golive.store.db import Store
from golive.store.models import (
    Channel,
    Deployment,
    Notification,
    NotificationAttempt,
    Order,
    Project,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format: what ``generate_latest`` writes for golive's metric names,
understood by every Prometheus (the library's own constant changed with its versions)."""

BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Upper bounds (seconds) of the duration histogram's buckets; +Inf comes last."""

ACTIVE = ("pending", "running", "paused")
WAITING = ("pending", "queued")
UNFINISHED = ("queued", "pending", "running", "paused")
"""Every other status (succeeded, failed, interrupted, abandoned, cancelled) is final."""


def _seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """``end - start`` in seconds, in the dialect's own SQL."""
    if dialect == "sqlite":
        # julianday keeps whole milliseconds; the difference of two day numbers near
        # 2.46 million is off by some microseconds, so round back to the millisecond
        days = func.julianday(end) - func.julianday(start)
        return func.round(days * 86400.0, 3)
    if dialect == "postgresql":
        # date_part is a double precision; EXTRACT is a (slower) numeric since PostgreSQL 14
        return func.date_part("epoch", end - start)
    if dialect in ("mysql", "mariadb"):
        microseconds = func.timestampdiff(literal_column("MICROSECOND"), start, end)
        return microseconds / 1000000.0
    raise StoreError(f"metrics: durations are not supported on {dialect}")


class StoreCollector:
    """A custom collector: every ``collect`` reads the store afresh."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterable[Metric]:
        """Nothing: registering the collector must not query the store."""
        return ()

    def collect(self) -> Iterator[Metric]:
        with self.store.session() as session:
            families = [
                *_deployment_families(session),
                _duration_family(session),
                *_notification_families(session),
            ]
        yield from families
        info = InfoMetricFamily("golive", "golive's version.")
        info.add_metric([], {"version": __version__})
        yield info


def _deployment_families(session: Session) -> list[Metric]:
    finished = CounterMetricFamily(
        "golive_deployments", "Finished deployments, by their final status.",
        labels=["project", "stage", "kind", "result"])
    by_result = (select(Project.name, Deployment.stage, Deployment.kind, Deployment.status,
                        func.count())
                 .select_from(Deployment)
                 .join(Order, Order.id == Deployment.order_id)
                 .join(Project, Project.id == Order.project_id)
                 .where(Deployment.status.not_in(UNFINISHED))
                 .group_by(Project.name, Deployment.stage, Deployment.kind, Deployment.status)
                 .order_by(Project.name, Deployment.stage, Deployment.kind, Deployment.status))
    for project, stage, kind, status, count in session.execute(by_result):
        finished.add_metric([project, stage, kind, status], count)

    active = GaugeMetricFamily(
        "golive_deployments_active", "Deployments pending, running or paused now.",
        labels=["stage", "status"])
    waiting = 0
    unfinished = (select(Deployment.stage, Deployment.status, func.count())
                  .where(Deployment.status.in_(UNFINISHED))
                  .group_by(Deployment.stage, Deployment.status)
                  .order_by(Deployment.stage, Deployment.status))
    for stage, status, count in session.execute(unfinished):
        if status in ACTIVE:
            active.add_metric([stage, status], count)
        if status in WAITING:
            waiting += count
    queue = GaugeMetricFamily(
        "golive_deployment_queue_length",
        "Deployments waiting to run: pending, or queued for a release window.",
        value=waiting)
    return [finished, active, queue]


def _duration_family(session: Session) -> Metric:
    family = HistogramMetricFamily(
        "golive_deployment_duration_seconds",
        "Run time of finished deployments, from their start to their end.", labels=["stage"])
    dialect = session.get_bind().dialect.name
    raw = _seconds_between(dialect, Deployment.started_at, Deployment.finished_at)
    # clocks of different hosts may disagree by a little: never a negative duration
    seconds = case((raw < 0, 0.0), else_=raw)
    timed = (select(Deployment.stage.label("stage"), seconds.label("seconds"))
             .where(Deployment.status.not_in(UNFINISHED),
                    Deployment.started_at.is_not(None), Deployment.finished_at.is_not(None)))
    if dialect == "sqlite":
        # SQLite does not flatten a subquery with a LIMIT into an aggregate query: each
        # duration is then parsed and computed once, not once per bucket (2-3x faster)
        timed = timed.limit(-1)
    each = timed.subquery()
    buckets = [func.sum(case((each.c.seconds <= bound, 1), else_=0)) for bound in BUCKETS]
    by_stage = (select(each.c.stage, func.count(), func.sum(each.c.seconds), *buckets)
                .group_by(each.c.stage).order_by(each.c.stage))
    bounds = [floatToGoString(bound) for bound in BUCKETS]
    for stage, count, total, *cumulative in session.execute(by_stage):
        values = [int(n or 0) for n in cumulative]
        family.add_metric([stage], [*zip(bounds, values, strict=True), ("+Inf", count)],
                          sum_value=float(total or 0))
    return family


def _notification_families(session: Session) -> list[Metric]:
    types = list(session.scalars(select(Channel.type).distinct().order_by(Channel.type)))
    outbox = CounterMetricFamily(
        "golive_notifications", "Notifications in the outbox, by channel type and status.",
        labels=["channel_type", "status"])
    failed: dict[str, int] = defaultdict(int, dict.fromkeys(types, 0))
    by_status = (select(Channel.type, Notification.status, func.count())
                 .select_from(Notification)
                 .join(Channel, Channel.id == Notification.channel_id)
                 .group_by(Channel.type, Notification.status)
                 .order_by(Channel.type, Notification.status))
    for channel_type, status, count in session.execute(by_status):
        outbox.add_metric([channel_type, status], count)
        if status == "failed":
            failed[channel_type] += count
    failures = CounterMetricFamily(
        "golive_notification_failures",
        "Notifications given up on (refused, or out of retries).", labels=["channel_type"])
    for channel_type, count in sorted(failed.items()):
        failures.add_metric([channel_type], count)

    attempts: dict[str, int] = dict.fromkeys(types, 0)
    refused = (select(Channel.type, func.count())
               .select_from(NotificationAttempt)
               .join(Channel, Channel.id == NotificationAttempt.channel_id)
               .where(NotificationAttempt.ok.is_(False))
               .group_by(Channel.type))
    for channel_type, count in session.execute(refused):
        attempts[channel_type] = count
    failed_attempts = CounterMetricFamily(
        "golive_notification_attempts_failed",
        "Delivery attempts that failed (a retried notification may fail several).",
        labels=["channel_type"])
    for channel_type, count in sorted(attempts.items()):
        failed_attempts.add_metric([channel_type], count)
    return [outbox, failures, failed_attempts]


def render_metrics(store: Store) -> tuple[bytes, str]:
    """The text exposition of the store's metrics, and its content type.

    Raises ``StoreError`` when the store cannot be read."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    try:
        return generate_latest(registry), CONTENT_TYPE
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the metrics from the store: {exc}") from None
