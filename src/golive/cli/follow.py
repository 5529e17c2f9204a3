"""Following a deployment: its log lines and per service/host steps, live.

Locally the CLI runs the deployment itself and reads its progress from the store
(:func:`follow`); with a server, the server runs it and the CLI reads the server's
event stream (:func:`follow_remote`, ``api/events.py``). Both print each line the same
way and end with the same steps table, so a command's output does not depend on
where it runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from golive.api.schemas.deployments import ENDED
from golive.cli import output
from golive.cli.client import stream
from golive.errors import RemoteError
from golive.services import progress
from golive.services.runtime import Runtime
from golive.settings import Settings
from golive.store.models import Deployment, LogLine

STATUS_STYLE = {"done": "green", "failed": "red", "running": "yellow"}
LEVEL_STYLE = {"error": "red", "warning": "yellow"}
StepRow = tuple[str, str, str, str, str]

RETRIES = 12
"""Reconnections in a row (none of them delivering an event) before giving up."""
RETRY_STATUSES = (0, 502, 503, 504)
"""No answer, or a proxy or store that is down for a moment: try again."""


def _steps_table(rows: list[StepRow]) -> Table:
    table = Table(title="progress", title_justify="left")
    for column in ("service", "host", "step", "status", "detail"):
        table.add_column(column)
    for service, host, step, status, message in rows:
        style = STATUS_STYLE.get(status, "")
        table.add_row(service, host, step, f"[{style}]{status}[/]" if style else status,
                      escape(message))
    return table


def _snapshot(runtime: Runtime, deployment_id: int, after_log: int
              ) -> tuple[str, list[LogLine], list[StepRow]]:
    with runtime.store.session() as session:
        status = session.get_one(Deployment, deployment_id).status
        lines = list(session.scalars(select(LogLine).where(
            LogLine.deployment_id == deployment_id, LogLine.id > after_log).order_by(LogLine.id)))
        rows = [(service, host, step.name, step.status, step.message)
                for step, service, host in progress.steps_of(session, deployment_id)]
        session.expunge_all()
    return status, lines, rows


def format_line(line: LogLine | Mapping[str, Any]) -> str:
    """``HH:MM:SS [service/host] text``, from a store row or an operation's JSON line."""
    def field(name: str) -> Any:
        return line[name] if isinstance(line, Mapping) else getattr(line, name)

    at = field("at")
    moment = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    where = "/".join(p for p in (field("service"), field("host")) if p)
    prefix = f"[{where}] " if where else ""
    return f"{moment:%H:%M:%S} {prefix}{field('text')}"


def print_line(console: Console, line: LogLine | Mapping[str, Any]) -> None:
    level = line["level"] if isinstance(line, Mapping) else line.level
    style = LEVEL_STYLE.get(level, "")
    text = escape(format_line(line))
    console.print(f"[{style}]{text}[/]" if style else text, soft_wrap=True)


def follow(runtime: Runtime, deployment_id: int, *, done: Callable[[], bool] | None = None,
           interval: float = 0.3, live: bool = True, steps: bool = True) -> str:
    """Print the deployment's log as it grows and its steps, from the store; the final
    status."""
    last = 0
    status = ""
    show = Live(_steps_table([]), console=output.console, transient=False,
                auto_refresh=False) if live and output.console.is_terminal else None
    if show is not None:
        show.start()
    try:
        while True:
            status, lines, rows = _snapshot(runtime, deployment_id, last)
            for line in lines:
                print_line(show.console if show else output.console, line)
                last = line.id
            if show is not None:
                show.update(_steps_table(rows), refresh=True)
            if status in ENDED and (done is None or done()):
                break
            time.sleep(interval)
    finally:
        if show is not None:
            show.stop()
    if show is None and steps:
        _print_steps(rows)
    return status


def _print_steps(rows: list[StepRow]) -> None:
    if rows:
        output.console.print(_steps_table(rows))


def step_rows(view: Mapping[str, Any]) -> list[StepRow]:
    """The steps of a ``deployment.show`` view as the progress table's rows."""
    return [(s["service"], s["host"], s["step"], s["status"], s["message"])
            for s in view.get("steps", ())]


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its type, data and id ("" when it has none)."""

    name: str
    data: str
    id: str = ""


def sse_events(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a text/event-stream, line by line (comments skipped)."""
    name, event_id = "message", ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event(name, "\n".join(data), event_id)
            name, data, event_id = "message", [], ""
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
        elif key == "id":
            event_id = value


def follow_remote(settings: Settings, deployment_id: int, *, quiet: bool = False) -> dict[str, Any]:
    """Print the deployment's log lines from the server's event stream until it ends,
    then its steps (nothing with ``quiet``); the ended deployment's view.

    A stream that breaks is opened again with ``Last-Event-ID``: the server sends only
    the lines after the last one printed."""
    last, failures = 0, 0
    while True:
        headers = {"Last-Event-ID": str(last)} if last else {}
        try:
            with stream(settings, f"/deployments/{deployment_id}/events", headers) as response:
                for event in sse_events(response.iter_lines()):
                    failures = 0
                    if event.name == "log":
                        if not quiet:
                            print_line(output.console, json.loads(event.data))
                        last = int(event.id)
                    elif event.name == "end":
                        view: dict[str, Any] = json.loads(event.data)
                        if not quiet:
                            _print_steps(step_rows(view))
                        return view
        except RemoteError as exc:
            if exc.status not in RETRY_STATUSES or failures >= RETRIES:
                raise
        failures += 1
        if failures > RETRIES:
            raise RemoteError(f"the event stream of deployment {deployment_id} kept ending "
                              "before the deployment did")
        time.sleep(min(5.0, 0.25 * 2 ** failures))
