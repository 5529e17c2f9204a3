"""`golive board`, `golive lane list|release`, `golive scheduler`: the pipeline around
the orders — who is on which stage and lane, and the releases waiting for a window."""

from __future__ import annotations

import time
from typing import Any

import typer

from golive.cli import output
from golive.cli.client import call, local_only
from golive.services import scheduler
from golive.services.runtime import Runtime, open_runtime
from golive.worker.inline import InlineRunner
from golive.worker.notifier import drain, sender

JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")
PROJECT = typer.Option("", "-p", "--project", help="Only this project.")

lanes = typer.Typer(help="The lanes of stages, and the orders holding them.",
                    no_args_is_help=True)


def board(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Per project, stage and lane: which order and branch each service serves now, who
    holds each lane, and the open orders whose main branch moved."""
    boards = call("board.show", project=project)
    if as_json:
        output.print_json(boards)
        return
    for one in boards:
        output.table(f"{one['project']}: {' → '.join(one['stages'])}",
                     ["stage", "lane", "service", "order", "branch", "commit", "since",
                      "lane held by"],
                     [_slot_row(s) for s in one["slots"]])
        flagged = [o for o in one["open_orders"] if o["main_moved"]]
        if flagged:
            output.table("main moved", ["order", "state", "title", "what"], [
                [o["order_id"], o["state"], o["title"], "; ".join(o["main_moved"])]
                for o in flagged])


def _slot_row(slot: dict[str, Any]) -> list[Any]:
    order = f"#{slot['order_id']}" if slot["order_id"] else "-"
    since = output.when(slot["since"], "%m-%d %H:%M") or "-"
    note = f" ({slot['note']})" if slot["note"] else ""
    held = f"#{slot['held_by_order']}" if slot["held_by_order"] else "-"
    return [slot["stage"], slot["lane"] or "-", slot["service"], order + note,
            slot["branch"] or "-", slot["commit"][:8] or "-", since, held]


@lanes.command("list")
def list_lanes(project: str = typer.Option(..., "-p", "--project", help="The project."),
               as_json: bool = JSON) -> None:
    """The held lanes of a project's stages."""
    rows = call("lane.list", project=project)
    if as_json:
        output.print_json(rows)
        return
    output.table(f"lanes held in {project}", ["stage", "lane", "order", "by", "since"], [
        [r["stage"], r["lane"], r["order"], r["held_by"], output.when(r["since"],
                                                                      "%Y-%m-%d %H:%M")]
        for r in rows])


@lanes.command("release")
def release_lane(
    stage: str = typer.Argument(..., help="The stage."),
    lane: str = typer.Argument(..., help="The lane."),
    project: str = typer.Option(..., "-p", "--project", help="The project."),
) -> None:
    """Free a lane an order holds (tester or owner); the order is told in its history."""
    done = call("lane.release", project=project, stage=stage, lane=lane)
    output.console.print(f"lane {lane} of {stage} released (it was held by order "
                         f"{done['order']})", markup=False)


def scheduler_command(
    once: bool = typer.Option(False, "--once",
                              help="Start what is due, wait for it to finish, and exit."),
    every: float = typer.Option(30.0, "--every", min=1.0, help="Seconds between looks."),
) -> None:
    """Start releases queued for a release window once the window opens."""
    local_only("scheduler")
    runtime = open_runtime()
    runner = InlineRunner(runtime)
    try:
        with sender(runtime):  # notifications go out while deployments run
            try:
                _schedule(runtime, runner, once, every)
            finally:
                runner.shutdown()
        drain(runtime)
    finally:
        runtime.close()


def _schedule(runtime: Runtime, runner: InlineRunner, once: bool, every: float) -> None:
    while True:
        for started in scheduler.start_due(runtime):
            output.console.print(f"deployment {started.deployment_id} of order "
                                 f"{started.order_id}: {started.outcome}"
                                 + (f": {started.message}" if started.message else ""),
                                 markup=False)
            if started.outcome == "started":
                runner.submit(started.deployment_id)
        if once:
            return
        time.sleep(every)
