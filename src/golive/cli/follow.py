"""Following a deployment: its log lines and per service/host steps, live."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.live import Live
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from golive.cli import output
from golive.services.runtime import Runtime
from golive.store.models import Deployment, DeploymentStep, Host, LogLine, Service

FINAL = ("succeeded", "failed")
STATUS_STYLE = {"done": "green", "failed": "red", "running": "yellow"}


def _steps_table(rows: list[tuple[str, str, str, str, str]]) -> Table:
    table = Table(title="progress", title_justify="left")
    for column in ("service", "host", "step", "status", "detail"):
        table.add_column(column)
    for service, host, step, status, message in rows:
        style = STATUS_STYLE.get(status, "")
        table.add_row(service, host, step, f"[{style}]{status}[/]" if style else status,
                      escape(message))
    return table


def _snapshot(runtime: Runtime, deployment_id: int, after_log: int
              ) -> tuple[str, list[LogLine], list[tuple[str, str, str, str, str]]]:
    with runtime.store.session() as session:
        status = session.get_one(Deployment, deployment_id).status
        lines = list(session.scalars(select(LogLine).where(
            LogLine.deployment_id == deployment_id, LogLine.id > after_log).order_by(LogLine.id)))
        steps = session.execute(
            select(DeploymentStep, Service.name, Host.name)
            .outerjoin(Service, Service.id == DeploymentStep.service_id)
            .outerjoin(Host, Host.id == DeploymentStep.host_id)
            .where(DeploymentStep.deployment_id == deployment_id).order_by(DeploymentStep.id)
        ).all()
        rows = [(svc or "", host or "", st.name, st.status, st.message) for st, svc, host in steps]
        session.expunge_all()
    return status, lines, rows


def format_line(line: LogLine) -> str:
    where = "/".join(p for p in (line.service, line.host) if p)
    prefix = f"[{where}] " if where else ""
    return f"{line.at:%H:%M:%S} {prefix}{line.text}"


def follow(runtime: Runtime, deployment_id: int, *, done: Callable[[], bool] | None = None,
           interval: float = 0.3, live: bool = True, steps: bool = True) -> str:
    """Print the deployment's log as it grows and its steps; the final status."""
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
                style = {"error": "red", "warning": "yellow"}.get(line.level, "")
                text = escape(format_line(line))
                (show.console if show else output.console).print(
                    f"[{style}]{text}[/]" if style else text, soft_wrap=True)
                last = line.id
            if show is not None:
                show.update(_steps_table(rows), refresh=True)
            if status in FINAL and (done is None or done()):
                break
            time.sleep(interval)
    finally:
        if show is not None:
            show.stop()
    if show is None and steps:
        _print_steps(rows)
    return status


def _print_steps(rows: list[tuple[str, str, str, str, str]]) -> None:
    if rows:
        output.console.print(_steps_table(rows))


def deployment_view(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.id, "order": deployment.order_id, "stage": deployment.stage,
        "lane": deployment.lane, "kind": deployment.kind, "status": deployment.status,
        "requested_by": deployment.requested_by, "created_at": deployment.created_at,
        "started_at": deployment.started_at, "finished_at": deployment.finished_at,
        "error": deployment.error, "action": deployment.action,
        "release_id": deployment.release_id, "resumes": deployment.resumes,
        "not_before": deployment.not_before, "policy": deployment.policy,
    }
