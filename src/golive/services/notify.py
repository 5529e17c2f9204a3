"""Notifications: each event becomes a message in the outbox of every project channel
that wants it, in the transaction of the event; a sender delivers them later.

``emit`` renders the message in the channel's language (``domain.messages``) with
@-mentions of whoever must act next (their mobile, chat ids and e-mail from their
profile). ``deliver_due`` sends what is due through ``adapters.notify``, writes every
attempt to the notification log, retries network errors and the vendors' "too many
requests" with exponential backoff, and keeps each channel under its vendor's rate
limit (a DingTalk robot takes 20 messages a minute). A failure never reaches a
deployment: it only ever sees a row added to the outbox.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from golive.adapters import notify as channels
from golive.adapters.notify.base import Answer, ChannelConfig, Mentions, Message
from golive.config.export import channel_spec
from golive.domain import messages
from golive.settings import get_settings
from golive.store.models import (
    Channel,
    CommitLedger,
    Deployment,
    Member,
    Notification,
    NotificationAttempt,
    Order,
    User,
    utcnow,
)
from golive.store.secrets import SecretBox

if TYPE_CHECKING:
    from golive.services.runtime import Runtime

MAX_ATTEMPTS = 6
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 300.0
PER_MINUTE = {"dingtalk": 20, "wecom": 20, "feishu": 100, "slack": 60}
"""Messages a channel of each type may send in 60 s (the vendors' documented limits)."""
ID_FIELD = {"wecom": "wecom_id", "dingtalk": "dingtalk_id", "feishu": "feishu_id"}


def _people(session: Session, order: Order, roles: tuple[str, ...]) -> list[User]:
    people: dict[int, User] = {}
    if "creator" in roles:
        people[order.created_by.id] = order.created_by
    wanted = [r for r in roles if r != "creator"]
    if wanted:
        for member in session.scalars(select(Member).where(
                Member.project_id == order.project_id, Member.role.in_(wanted))):
            people[member.user.id] = member.user
    return list(people.values())


def _services(session: Session, order: Order, stage: str) -> tuple[messages.ServiceLine, ...]:
    commits = {row.service_id: row.deployed_commit for row in session.scalars(
        select(CommitLedger).where(CommitLedger.order_id == order.id,
                                   CommitLedger.stage == stage))} if stage else {}
    return tuple(messages.ServiceLine(i.service.name, i.branch, commits.get(i.service_id, ""))
                 for i in order.items)


def _seconds(session: Session, order: Order, stage: str) -> float | None:
    latest = session.scalar(select(Deployment).where(
        Deployment.order_id == order.id, Deployment.stage == stage,
        Deployment.started_at.is_not(None)).order_by(Deployment.id.desc()).limit(1))
    if latest is None or latest.started_at is None:
        return None
    return ((latest.finished_at or utcnow()) - latest.started_at).total_seconds()


def _link(order_id: int) -> str:
    base = get_settings().public_url.rstrip("/")
    return f"{base}/orders/{order_id}" if base else ""


def _mentions(people: list[User], channel_type: str) -> Mentions:
    field = ID_FIELD.get(channel_type)
    return Mentions(
        mobiles=tuple(p.mobile for p in people if p.mobile),
        user_ids=tuple(getattr(p, field) for p in people if field and getattr(p, field)),
        emails=tuple(p.email for p in people if p.email) if channel_type == "email" else ())


def emit(session: Session, order: Order, event: str, *, actor: str, stage: str = "",
         reason: str = "", error: str = "") -> int:
    """Queue ``event`` of ``order`` for every channel of its project that wants it; how
    many messages were queued. Flushes; the caller's commit makes them real."""
    wanting = [c for c in order.project.channels if not c.events or event in c.events]
    if not wanting:
        return 0
    people = _people(session, order, messages.who_acts(event))
    facts = messages.Facts(
        event=event, project=order.project.name, order_id=order.id, title=order.title,
        stage=stage, actor=actor, services=_services(session, order, stage),
        seconds=_seconds(session, order, stage) if event in (
            messages.DEPLOY_SUCCEEDED, messages.DEPLOY_FAILED, messages.RELEASED) else None,
        reason=reason, error=error, link=_link(order.id),
        mentions=tuple(p.display_name or p.name for p in people))
    data = {"project": facts.project, "order": order.id, "title": order.title,
            "stage": stage, "actor": actor, "event": event, "reason": reason,
            "services": [{"service": s.service, "branch": s.branch, "commit": s.commit}
                         for s in facts.services]}
    for channel in wanting:
        text = messages.render(facts, channel.language)
        mentions = _mentions(people, channel.type)
        session.add(Notification(
            channel_id=channel.id, order_id=order.id, event=event, title=text.title[:500],
            payload={"markdown": text.markdown, "text": text.text, "html": text.html,
                     "link": facts.link, "data": data,
                     "mentions": {"mobiles": list(mentions.mobiles),
                                  "user_ids": list(mentions.user_ids),
                                  "emails": list(mentions.emails)}}))
    session.flush()
    return len(wanting)


def _message(row: Notification) -> Message:
    payload: dict[str, Any] = row.payload or {}
    mentions = payload.get("mentions", {})
    return Message(title=row.title, markdown=payload.get("markdown", ""),
                   text=payload.get("text", ""), html=payload.get("html", ""),
                   link=payload.get("link", ""), event=row.event,
                   mentions=Mentions(tuple(mentions.get("mobiles", ())),
                                     tuple(mentions.get("user_ids", ())),
                                     tuple(mentions.get("emails", ()))),
                   data=payload.get("data", {}))


def channel_config(channel: Channel, box: SecretBox) -> ChannelConfig:
    spec = channel_spec(channel, box)
    return ChannelConfig(
        type=spec.type, name=spec.name, webhook=spec.webhook, secret=spec.secret,
        smtp_host=spec.smtp_host, smtp_port=spec.smtp_port, smtp_user=spec.smtp_user,
        smtp_password=spec.smtp_password, smtp_tls=spec.smtp_tls, mail_from=spec.mail_from,
        to=tuple(spec.to))


def _sent_last_minute(session: Session, channel_id: int, now: datetime) -> int:
    return int(session.scalar(select(func.count(NotificationAttempt.id)).where(
        NotificationAttempt.channel_id == channel_id,
        NotificationAttempt.at > now - timedelta(seconds=60))) or 0)


def _backoff(attempts: int, answer: Answer) -> float:
    wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1))
    return max(wait, answer.retry_after or 0.0)


def deliver_due(runtime: Runtime, now: datetime | None = None, limit: int = 50) -> int:
    """Send the queued notifications that are due; how many were tried."""
    moment = now or utcnow()
    with runtime.store.session() as session:
        due = list(session.scalars(select(Notification.id).where(
            Notification.status == "queued", Notification.next_at <= moment)
            .order_by(Notification.next_at, Notification.id).limit(limit)))
    tried = 0
    for notification_id in due:
        tried += _deliver_one(runtime, notification_id, moment)
    return tried


def _deliver_one(runtime: Runtime, notification_id: int, now: datetime) -> int:
    with runtime.store.session() as session:
        row = session.get_one(Notification, notification_id)
        channel = session.get(Channel, row.channel_id)
        if row.status != "queued" or channel is None:
            return 0
        allowed = PER_MINUTE.get(channel.type)
        if allowed is not None and _sent_last_minute(session, channel.id, now) >= allowed:
            row.next_at = now + timedelta(seconds=60 / allowed)  # wait for room, not an attempt
            session.commit()
            return 0
        config, message = channel_config(channel, runtime.box), _message(row)
    started = time.monotonic()
    answer = channels.send(config, message)
    took = int((time.monotonic() - started) * 1000)
    _record(runtime, notification_id, config.type, answer, took, now)
    return 1


def _record(runtime: Runtime, notification_id: int, channel_type: str, answer: Answer,
            took_ms: int, now: datetime) -> None:
    with runtime.store.session() as session:
        row = session.get_one(Notification, notification_id)
        row.attempts += 1
        session.add(NotificationAttempt(notification_id=row.id, channel_id=row.channel_id,
                                        at=utcnow(), ok=answer.ok, status=answer.status,
                                        answer=answer.body[:2000], error=answer.error[:2000],
                                        duration_ms=took_ms))
        if answer.ok:
            row.status, row.sent_at, row.last_error = "sent", utcnow(), ""
        elif answer.retryable and row.attempts < MAX_ATTEMPTS:
            row.next_at = now + timedelta(seconds=_backoff(row.attempts, answer))
            row.last_error = answer.error
        else:
            row.status, row.last_error = "failed", answer.error or f"{channel_type} refused"
        session.commit()


def send_test(runtime: Runtime, session: Session, channel: Channel, by: User) -> Answer:
    """Send a test message through ``channel`` now (not queued): the vendor's answer."""
    facts = messages.Facts(event=messages.SUBMITTED, project=channel.project.name, order_id=0,
                           title="golive test message", actor=by.name, link=_link(0))
    text = messages.render(facts, channel.language)
    title = ("golive: 测试消息" if channel.language == "zh_CN" else "golive: test message")
    message = Message(title=title, markdown=text.markdown, text=text.text, html=text.html,
                      event="test", mentions=_mentions([by], channel.type))
    return channels.send(channel_config(channel, runtime.box), message)
