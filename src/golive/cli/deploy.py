"""`golive order deploy|release|plan|rollback|logs`."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import typer
from rich.markup import escape
from sqlalchemy import select

from golive.cli import output
from golive.cli.context import unit_of_work
from golive.cli.follow import deployment_view, follow, format_line
from golive.domain.plan import Plan
from golive.domain.workflow import Action
from golive.errors import GoliveError, NotFound
from golive.services import deploy as deploy_service
from golive.services import lanes, requests
from golive.services.orders import get_order, readable_order
from golive.services.rollback import request_rollback
from golive.services.runtime import open_runtime
from golive.store.models import Deployment, LogLine
from golive.worker.inline import InlineRunner
from golive.worker.notifier import drain, sender

NUMBER = typer.Argument(..., help="The order number.")
STAGE = typer.Option(None, "--stage", "-S", help="The stage (default: the order's next).")
JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")
HOSTS = typer.Option("", "--hosts", help="A canary: only these hosts (comma-separated); "
                     "the order's state does not move.")
PRUNE = typer.Option(False, "--prune-jobs",
                     help="Remove jobs on the job hosts that the order no longer lists.")
PAUSE = typer.Option(False, "--pause-after-batch",
                     help="Wait for `golive order resume N` after each batch.")
WAIT = typer.Option(0.0, "--wait", min=0.0,
                    help="Seconds to wait for another deployment of the same service, stage "
                         "and lane to end (default: refuse at once, naming its order).")
TAKE_OVER = typer.Option(False, "--take-over",
                         help="Deploy onto a lane another order holds (tester or owner; "
                              "recorded in both orders' history).")


def _only(hosts: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in hosts.split(",") if h.strip())


def run_and_follow(deployment_id: int, as_json: bool) -> None:
    runtime = open_runtime()
    runner = InlineRunner(runtime, workers=1)
    try:
        with sender(runtime):
            future = runner.submit(deployment_id)
            if as_json:
                future.result()
            else:
                follow(runtime, deployment_id, done=future.done)
            future.result()
        drain(runtime)
        with runtime.store.session() as session:
            deployment = session.get_one(Deployment, deployment_id)
            view = deployment_view(deployment)
            state = get_order(session, deployment.order_id).state
    finally:
        runner.shutdown()
        runtime.close()
    view["order_state"] = state
    if as_json:
        output.print_json(view)
    else:
        output.console.print(f"deployment {deployment_id} {view['status']}; order "
                             f"{view['order']} is {state}", markup=False)
    if view["status"] != "succeeded":
        raise GoliveError(view["error"] or f"deployment {deployment_id} failed")


def _start(number: int, stage: str | None, ask: requests.Ask, as_json: bool) -> None:
    with unit_of_work() as work:
        deployment = requests.request_deployment(work.session, number, work.user, stage=stage,
                                                 ask=ask)
        deployment_id, view = deployment.id, deployment_view(deployment)
    if view["status"] == "queued":
        _print_queued(view, as_json)
        return
    run_and_follow(deployment_id, as_json)


def _print_queued(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.print_json(view)
        return
    output.console.print(f"order {view['order']}: release queued as deployment {view['id']}; "
                         f"it starts when the release window opens at "
                         f"{view['not_before'].astimezone(UTC):%Y-%m-%d %H:%M} UTC (`golive "
                         "scheduler` starts "
                         "it)", markup=False)


def deploy(
    number: int = NUMBER, stage: str | None = STAGE,
    full: bool = typer.Option(False, "--full", help="Redeploy every service, changed or not."),
    lane: str = typer.Option("", "--lane", help="The lane of a stage that has lanes."),
    follow_: bool = typer.Option(True, "--follow/--no-follow",
                                 help="Show the log as it runs (the inline runner always "
                                      "waits for the deployment)."),
    hosts: str = HOSTS, pause: bool = PAUSE, prune: bool = PRUNE, wait: float = WAIT,
    take_over: bool = TAKE_OVER,
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Resume the stage's interrupted deployment (default), or "
                                     "start a new one."),
    as_json: bool = JSON,
) -> None:
    """Deploy the order on a stage (iterative unless --full) and follow it. An interrupted
    deployment on that stage is resumed: what it finished is checked, not redone."""
    ask = requests.Ask(kind="full" if full else "iterative", lane=lane,
                       action=Action.DEPLOY.value, only_hosts=_only(hosts),
                       pause_after_batch=pause, prune_jobs=prune, take_over=take_over,
                       lock_wait=wait, resume=resume)
    _start(number, stage, ask, as_json or not follow_)


def release(
    number: int = NUMBER,
    full: bool = typer.Option(False, "--full", help="Redeploy every service, changed or not."),
    hosts: str = HOSTS, pause: bool = PAUSE, prune: bool = PRUNE, wait: float = WAIT,
    accept_unverified: bool = typer.Option(
        False, "--accept-unverified",
        help="Release although main has commits the stage before did not verify (releaser; "
             "recorded in the history)."),
    when_open: bool = typer.Option(
        False, "--when-open",
        help="Outside the release windows: queue the release for the next window."),
    as_json: bool = JSON,
) -> None:
    """Deploy the order on the last stage (prod) and follow it."""
    ask = requests.Ask(kind="full" if full else "iterative", action=Action.RELEASE.value,
                       only_hosts=_only(hosts), pause_after_batch=pause, prune_jobs=prune,
                       lock_wait=wait, accept_unverified=accept_unverified,
                       when_open=when_open)
    _start(number, None, ask, as_json)


def resume(number: int = NUMBER) -> None:
    """Let a deployment paused between batches switch its next batch."""
    with unit_of_work() as work:
        deployment = requests.resume_batches(work.session, number, work.user)
        released = deployment.batches_released
    output.console.print(f"order {number}: deployment {deployment.id} goes on "
                         f"(batches let through: {released})", markup=False)


def rollback(
    number: int = NUMBER, stage: str | None = STAGE,
    to: str = typer.Option("", "--to", help="A kept release id (default: the previous one)."),
    wait: float = WAIT, as_json: bool = JSON,
) -> None:
    """Switch the order's services back to the previous (or a kept) release. SQL is not undone."""
    with unit_of_work() as work:
        deployment = request_rollback(work.session, number, work.user, stage=stage,
                                      to_release=to, lock_wait=wait)
        deployment_id = deployment.id
    run_and_follow(deployment_id, as_json)


def _print_review(plan: Plan, language: str) -> None:
    for svc in plan.services:
        for stmt in svc.statements:
            for note in stmt.review:
                text = note.message_zh if language == "zh_CN" else note.message_en
                verdict = "approved" if note.approved else note.severity
                style = "red" if verdict == "refuse" else "yellow"
                output.console.print(
                    f"[{style}]{svc.service}:{stmt.position + 1} {verdict} "
                    f"({note.rule})[/]: {escape(text)}")
    if plan.refused:
        output.console.print(f"the deploy is refused until an owner or releaser runs "
                             f"`golive order approve-sql {plan.order_id}`", markup=False)


def _print_plan(plan: Plan) -> None:
    lane = f", lane {plan.lane}" if plan.lane else ""
    output.console.print(f"plan for order {plan.order_id} on {plan.stage}{lane} ({plan.kind})",
                         markup=False)
    if plan.resumes:
        output.console.print(
            f"resumes interrupted deployment {plan.resumes} with the commits it planned; "
            f"{len(plan.finished_steps)} step(s) it finished are checked on the hosts, not "
            f"redone: {', '.join(plan.finished_steps) or 'none'}", markup=False)
    rows: list[list[Any]] = []
    for svc in plan.services:
        new = svc.branch_head[:10]
        if svc.mode == "artifact":
            new = f"main {svc.main_head[:10]} + {svc.branch} {svc.branch_head[:10]}"
        old = svc.old_commit[:10] or "-"
        change = "unchanged" if svc.action == "unchanged" else f"{old} → {new}"
        sql = ", ".join(f"#{s.position + 1} {s.action}" for s in svc.statements) or "-"
        batches = " | ".join(",".join(b) for b in svc.batches)
        rows.append([svc.service, svc.mode, change, batches, svc.database or "-", sql])
    output.table("services", ["service", "mode", "commit", "hosts (batches)", "database",
                              "SQL"], rows)
    if plan.jobs:
        output.table("jobs", ["service", "host", "job", "kind", "action"], [
            [j.service, j.host, j.job, j.kind, j.action] for j in plan.jobs])


def plan(
    number: int = NUMBER, stage: str | None = STAGE,
    full: bool = typer.Option(False, "--full", help="Plan a full deploy."),
    lane: str = typer.Option("", "--lane", help="The lane of a stage that has lanes."),
    as_json: bool = JSON,
) -> None:
    """Show what a deploy would do; touches no host and no database."""
    with unit_of_work() as work:
        order = readable_order(work.session, number, work.user)
        target = stage or requests.natural_stage(order)
        resume = deploy_service.resuming(work.session, order, target)
        lane = lane or lanes.preview_lane(work.session, order, target)
        result = deploy_service.build_plan(work.runtime, work.session, order, target,
                                           "full" if full else "iterative", lane,
                                           resume=resume)
        language = work.user.language
    if as_json:
        output.print_json(result.to_dict())
    else:
        _print_plan(result)
        _print_review(result, language)


def logs(
    number: int = NUMBER,
    deployment: int = typer.Option(0, "--deployment", "-d",
                                   help="One deployment (default: the order's latest)."),
    follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    as_json: bool = JSON,
) -> None:
    """Print a deployment's log."""
    with unit_of_work() as work:
        readable_order(work.session, number, work.user)
        query = select(Deployment).where(Deployment.order_id == number)
        if deployment:
            query = query.where(Deployment.id == deployment)
        chosen = work.session.scalars(query.order_by(Deployment.id.desc())).first()
        if chosen is None:
            raise NotFound("deployment of order", number)
        deployment_id = chosen.id
        lines = list(work.session.scalars(select(LogLine).where(
            LogLine.deployment_id == deployment_id).order_by(LogLine.id)))
        data = [{"at": ln.at, "level": ln.level, "service": ln.service, "host": ln.host,
                 "text": ln.text} for ln in lines]
    if as_json:
        output.print_json({"deployment": deployment_id, "lines": data})
        return
    if follow_:
        follow(work.runtime, deployment_id, live=False)
        return
    for line in lines:
        output.console.print(format_line(line), markup=False, soft_wrap=True)
