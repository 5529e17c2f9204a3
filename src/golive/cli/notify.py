"""`golive notify log|test|send`: the notification log, a test message, the outbox now."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from golive.cli import output
from golive.cli.context import Work, unit_of_work
from golive.domain.permissions import Permission
from golive.errors import GoliveError, NotFound
from golive.services import notify as notify_service
from golive.services.users import get_project, require
from golive.store.models import Channel, Notification, NotificationAttempt

app = typer.Typer(help="Notification channels: the log of what was sent, test messages.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")
PROJECT = typer.Option(..., "-p", "--project", help="The project.")


def _channel(work: Work, project: str, name: str) -> Channel:
    row = work.session.scalar(select(Channel).where(
        Channel.project_id == get_project(work.session, project).id, Channel.name == name))
    if row is None:
        raise NotFound(f"channel of {project}", name)
    return row


@app.command("log")
def log(project: str = PROJECT,
        order: int = typer.Option(0, "--order", help="Only this order's notifications."),
        limit: int = typer.Option(50, "--limit", min=1, help="The newest N attempts."),
        as_json: bool = JSON) -> None:
    """Each delivery attempt: channel, event, order, result, the vendor's answer."""
    with unit_of_work() as work:
        found = get_project(work.session, project)
        require(work.session, work.user, found, Permission.VIEW, f"reading {project}'s "
                                                                  "notifications")
        query = (select(NotificationAttempt, Notification, Channel)
                 .join(Notification, NotificationAttempt.notification_id == Notification.id)
                 .join(Channel, NotificationAttempt.channel_id == Channel.id)
                 .where(Channel.project_id == found.id))
        if order:
            query = query.where(Notification.order_id == order)
        found_rows = work.session.execute(
            query.order_by(NotificationAttempt.id.desc()).limit(limit)).all()
        rows: list[dict[str, Any]] = [
            {"at": a.at, "channel": c.name, "type": c.type, "event": n.event,
             "order": n.order_id, "ok": a.ok, "status": a.status, "answer": a.answer,
             "error": a.error, "notification_status": n.status, "attempts": n.attempts}
            for a, n, c in found_rows]
    rows.reverse()
    if as_json:
        output.print_json(rows)
        return
    output.table(f"notifications of {project}", ["at", "channel", "event", "order", "ok",
                                                 "answer"], [
        [f"{r['at']:%m-%d %H:%M:%S}", r["channel"], r["event"], r["order"] or "-",
         "yes" if r["ok"] else "no", (r["error"] or r["answer"])[:80]] for r in rows])


@app.command("test")
def test(channel: str = typer.Argument(..., help="The channel's name."),
         project: str = PROJECT) -> None:
    """Send a test message through a channel now and print the vendor's answer (owner)."""
    with unit_of_work() as work:
        row = _channel(work, project, channel)
        require(work.session, work.user, row.project, Permission.MANAGE_CHANNELS,
                f"testing channel {channel}")
        answer = notify_service.send_test(work.runtime, work.session, row, work.user)
    output.console.print(f"{channel}: {'ok' if answer.ok else 'failed'} "
                         f"(status {answer.status}): {answer.error or answer.body}",
                         markup=False)
    if not answer.ok:
        raise GoliveError(f"channel {channel}: {answer.error or 'the vendor refused'}")


@app.command("send")
def send() -> None:
    """Deliver the queued notifications that are due now."""
    with unit_of_work() as work:
        sent = notify_service.deliver_due(work.runtime)
    output.console.print(f"{sent} notification(s) tried", markup=False)
