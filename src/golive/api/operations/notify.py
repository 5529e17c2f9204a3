"""Notifications: the log of delivery attempts, a channel's test message, and delivering
the queued ones that are due now.

A channel is named by its project and its name (``golive notify test NAME -p PROJECT``).
Answers carry the vendor's reply as stored: masked by the adapters, so no webhook token
or signing secret is in them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from golive.api.registry import Work, operation
from golive.api.schemas.notify import ChannelTestAnswer, NotificationAttemptView, NotificationsSent
from golive.domain.permissions import Permission
from golive.errors import InputError, NotFound
from golive.services import notify as notify_service
from golive.services.users import get_project, require
from golive.store.models import Channel, Notification, NotificationAttempt

MAX_LOG = 1000


def _attempt(attempt: NotificationAttempt, note: Notification, channel: Channel
             ) -> dict[str, Any]:
    return {"at": attempt.at, "channel": channel.name, "type": channel.type,
            "event": note.event, "order": note.order_id, "ok": attempt.ok,
            "status": attempt.status, "answer": attempt.answer, "error": attempt.error,
            "notification_status": note.status, "attempts": note.attempts}


@operation("notify.log", "GET", "/notifications", list[NotificationAttemptView])
def log(work: Work, project: str, order: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` delivery attempts of the project's channels, oldest first;
    ``order``: only that order's notifications."""
    if not 1 <= limit <= MAX_LOG:
        raise InputError(f"limit {limit}: write a number from 1 to {MAX_LOG}")
    found = get_project(work.session, project)
    require(work.session, work.user, found, Permission.VIEW,
            f"reading {project}'s notifications")
    query = (select(NotificationAttempt, Notification, Channel)
             .join(Notification, NotificationAttempt.notification_id == Notification.id)
             .join(Channel, NotificationAttempt.channel_id == Channel.id)
             .where(Channel.project_id == found.id))
    if order:
        query = query.where(Notification.order_id == order)
    rows = work.session.execute(query.order_by(NotificationAttempt.id.desc()).limit(limit))
    return [_attempt(a, n, c) for a, n, c in reversed(rows.all())]


def _channel(work: Work, project: str, name: str) -> Channel:
    row = work.session.scalar(select(Channel).where(
        Channel.project_id == get_project(work.session, project).id, Channel.name == name))
    if row is None:
        raise NotFound(f"channel of {project}", name)
    return row


@operation("notify.test", "POST", "/channels/{project}/{channel}/test", ChannelTestAnswer)
def send_test_message(work: Work, project: str, channel: str) -> dict[str, Any]:
    """Send a test message through a channel now and answer with the vendor's reply
    (owner). A refusal by the vendor is an answer (``ok: false``), not an error."""
    row = _channel(work, project, channel)
    require(work.session, work.user, row.project, Permission.MANAGE_CHANNELS,
            f"testing channel {channel}")
    answer = notify_service.send_test(work.runtime, work.session, row, work.user)
    return {"channel": channel, "ok": answer.ok, "status": answer.status,
            "body": answer.body, "error": answer.error}


@operation("notify.send", "POST", "/notifications/send", NotificationsSent)
def send(work: Work) -> dict[str, Any]:
    """Deliver the queued notifications that are due now (each in its own transaction)."""
    work.session.commit()  # the sender writes in sessions of its own: hold no store lock
    return {"tried": notify_service.deliver_due(work.runtime)}
