"""`golive notify log|test|send`: the notification log, a test message, the outbox now."""

from __future__ import annotations

import typer

from golive.cli import output
from golive.cli.client import call
from golive.errors import GoliveError

app = typer.Typer(help="Notification channels: the log of what was sent, test messages.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")
PROJECT = typer.Option(..., "-p", "--project", help="The project.")


@app.command("log")
def log(project: str = PROJECT,
        order: int = typer.Option(0, "--order", help="Only this order's notifications."),
        limit: int = typer.Option(50, "--limit", min=1, help="The newest N attempts."),
        as_json: bool = JSON) -> None:
    """Each delivery attempt: channel, event, order, result, the vendor's answer."""
    rows = call("notify.log", project=project, order=order, limit=limit)
    if as_json:
        output.print_json(rows)
        return
    output.table(f"notifications of {project}", ["at", "channel", "event", "order", "ok",
                                                 "answer"], [
        [output.when(r["at"], "%m-%d %H:%M:%S"), r["channel"], r["event"], r["order"] or "-",
         "yes" if r["ok"] else "no", (r["error"] or r["answer"])[:80]] for r in rows])


@app.command("test")
def test(channel: str = typer.Argument(..., help="The channel's name."),
         project: str = PROJECT) -> None:
    """Send a test message through a channel now and print the vendor's answer (owner)."""
    answer = call("notify.test", project=project, channel=channel)
    output.console.print(f"{channel}: {'ok' if answer['ok'] else 'failed'} "
                         f"(status {answer['status']}): {answer['error'] or answer['body']}",
                         markup=False)
    if not answer["ok"]:
        raise GoliveError(f"channel {channel}: {answer['error'] or 'the vendor refused'}")


@app.command("send")
def send() -> None:
    """Deliver the queued notifications that are due now."""
    done = call("notify.send")
    output.console.print(f"{done['tried']} notification(s) tried", markup=False)
