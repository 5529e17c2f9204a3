"""`golive order deploy|release|plan|rollback|resume|logs`.

Each command asks for the operation with ``call`` (here or on the server, alike). A
deployment it started is then carried out and followed: here, by the inline runner in
this process; with a server, by the server, whose event stream the command prints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.markup import escape

from golive.api.schemas.deployments import DeployRequest, ReleaseRequest, RollbackRequest
from golive.cli import output
from golive.cli.client import body, call, server
from golive.cli.follow import follow, follow_remote, format_line
from golive.domain.plan import human_bytes
from golive.domain.sql_review import REFUSE
from golive.errors import GoliveError
from golive.services.runtime import open_runtime
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
FULL_TRANSFER = typer.Option(False, "--full-transfer",
                             help="Send the whole archive to every host, not only the files "
                                  "that changed since the release it serves.")
TAKE_OVER = typer.Option(False, "--take-over",
                         help="Deploy onto a lane another order holds (tester or owner; "
                              "recorded in both orders' history).")


def _only(hosts: str) -> list[str]:
    return [h.strip() for h in hosts.split(",") if h.strip()]


QUEUED_FIELDS = ("id", "order", "stage", "lane", "kind", "status", "requested_by",
                 "created_at", "started_at", "finished_at", "error", "action", "release_id",
                 "resumes", "not_before", "policy")
"""What `release --json` prints for a release queued for its window (docs/cli.md)."""
RESULT_FIELDS = (*QUEUED_FIELDS, "order_state")
"""What `deploy|release|rollback --json` print once the deployment has ended."""


def _run_here(deployment_id: int, as_json: bool) -> None:
    """Carry the deployment out in this process, printing its log unless ``as_json``."""
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
    finally:
        runner.shutdown()
        runtime.close()


def run_and_follow(deployment_id: int, as_json: bool) -> None:
    """Carry out the deployment here, or wait for the server to, printing its log unless
    ``as_json``; then its result. GoliveError (exit 1) when it did not succeed."""
    remote = server()
    if remote is None:
        _run_here(deployment_id, as_json)
    else:
        follow_remote(remote, deployment_id, quiet=as_json)
    view = call("deployment.show", deployment_id=deployment_id)
    if as_json:
        output.print_json({key: view[key] for key in RESULT_FIELDS})
    else:
        output.console.print(f"deployment {deployment_id} {view['status']}; order "
                             f"{view['order']} is {view['order_state']}", markup=False)
    if view["status"] != "succeeded":
        raise GoliveError(view["error"] or f"deployment {deployment_id} failed")


def _started(view: dict[str, Any], as_json: bool) -> None:
    if view["status"] == "queued":
        _print_queued(view, as_json)
        return
    run_and_follow(view["id"], as_json)


def _print_queued(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.print_json({key: view[key] for key in QUEUED_FIELDS})
        return
    opens = datetime.fromisoformat(view["not_before"]).astimezone(UTC)
    output.console.print(f"order {view['order']}: release queued as deployment {view['id']}; "
                         f"it starts when the release window opens at "
                         f"{opens:%Y-%m-%d %H:%M} UTC (`golive scheduler` starts it)",
                         markup=False)


def deploy(
    number: int = NUMBER, stage: str | None = STAGE,
    full: bool = typer.Option(False, "--full", help="Redeploy every service, changed or not."),
    lane: str = typer.Option("", "--lane", help="The lane of a stage that has lanes."),
    follow_: bool = typer.Option(True, "--follow/--no-follow",
                                 help="Show the log as it runs (the inline runner always "
                                      "waits for the deployment)."),
    hosts: str = HOSTS, pause: bool = PAUSE, prune: bool = PRUNE, wait: float = WAIT,
    take_over: bool = TAKE_OVER, full_transfer: bool = FULL_TRANSFER,
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Resume the stage's interrupted deployment (default), or "
                                     "start a new one."),
    as_json: bool = JSON,
) -> None:
    """Deploy the order on a stage (iterative unless --full) and follow it. An interrupted
    deployment on that stage is resumed: what it finished is checked, not redone."""
    asked = body(DeployRequest, stage=stage, full=full, lane=lane, hosts=_only(hosts),
                 pause_after_batch=pause, prune_jobs=prune, wait=wait, take_over=take_over,
                 resume=resume, full_transfer=full_transfer)
    _started(call("order.deploy", number=number, body=asked), as_json or not follow_)


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
    full_transfer: bool = FULL_TRANSFER,
    as_json: bool = JSON,
) -> None:
    """Deploy the order on the last stage (prod) and follow it."""
    asked = body(ReleaseRequest, full=full, hosts=_only(hosts), pause_after_batch=pause,
                 prune_jobs=prune, wait=wait, accept_unverified=accept_unverified,
                 when_open=when_open, full_transfer=full_transfer)
    _started(call("order.release", number=number, body=asked), as_json)


def resume(number: int = NUMBER) -> None:
    """Let a deployment paused between batches switch its next batch."""
    data = call("order.resume", number=number)
    output.console.print(f"order {number}: deployment {data['deployment']} goes on "
                         f"(batches let through: {data['batches_released']})", markup=False)


def rollback(
    number: int = NUMBER, stage: str | None = STAGE,
    to: str = typer.Option("", "--to", help="A kept release id (default: the previous one)."),
    wait: float = WAIT, as_json: bool = JSON,
) -> None:
    """Switch the order's services back to the previous (or a kept) release. SQL is not undone."""
    asked = body(RollbackRequest, stage=stage, to=to, wait=wait)
    run_and_follow(call("order.rollback", number=number, body=asked)["id"], as_json)


def _print_review(plan: dict[str, Any], language: str) -> None:
    refused = False
    for svc in plan["services"]:
        for stmt in svc["statements"]:
            for note in stmt["review"]:
                text = note["message_zh"] if language == "zh_CN" else note["message_en"]
                verdict = "approved" if note["approved"] else note["severity"]
                refused = refused or verdict == REFUSE
                style = "red" if verdict == "refuse" else "yellow"
                output.console.print(
                    f"[{style}]{svc['service']}:{stmt['position'] + 1} {verdict} "
                    f"({note['rule']})[/]: {escape(text)}")
    if refused:
        output.console.print(f"the deploy is refused until an owner or releaser runs "
                             f"`golive order approve-sql {plan['order_id']}`", markup=False)


def _transfer(transfer: dict[str, Any]) -> str:
    """``delta 14.2 KB to 3 host(s) (the full archive: 157.2 MB)``, or why it is full."""
    def size(count: int | None) -> str:
        return "an unknown size (not built yet)" if count is None else human_bytes(count)
    line = f"{transfer['method']} {size(transfer['bytes_total'])} to {transfer['hosts']} host(s)"
    if transfer["method"] == "delta":
        line += f" (the full archive: {size(transfer['full_bytes_total'])})"
    return line + (f"; {transfer['reason']}" if transfer["reason"] else "")


def _print_plan(plan: dict[str, Any]) -> None:
    lane = f", lane {plan['lane']}" if plan["lane"] else ""
    output.console.print(f"plan for order {plan['order_id']} on {plan['stage']}{lane} "
                         f"({plan['kind']})", markup=False)
    if plan["resumes"]:
        output.console.print(
            f"resumes interrupted deployment {plan['resumes']} with the commits it planned; "
            f"{len(plan['finished_steps'])} step(s) it finished are checked on the hosts, not "
            f"redone: {', '.join(plan['finished_steps']) or 'none'}", markup=False)
    rows: list[list[Any]] = []
    for svc in plan["services"]:
        new = svc["branch_head"][:10]
        if svc["mode"] == "artifact":
            new = f"main {svc['main_head'][:10]} + {svc['branch']} {svc['branch_head'][:10]}"
        old = svc["old_commit"][:10] or "-"
        change = "unchanged" if svc["action"] == "unchanged" else f"{old} → {new}"
        sql = ", ".join(f"#{s['position'] + 1} {s['action']}" for s in svc["statements"]) or "-"
        batches = " | ".join(",".join(b) for b in svc["batches"])
        rows.append([svc["service"], svc["mode"], change, batches, svc["database"] or "-", sql])
    output.table("services", ["service", "mode", "commit", "hosts (batches)", "database",
                              "SQL"], rows)
    for svc in plan["services"]:
        if svc.get("transfer"):
            output.console.print(f"{svc['service']}: sends {_transfer(svc['transfer'])}",
                                 markup=False)
    if plan["jobs"]:
        output.table("jobs", ["service", "host", "job", "kind", "action"], [
            [j["service"], j["host"], j["job"], j["kind"], j["action"]] for j in plan["jobs"]])


def plan(
    number: int = NUMBER, stage: str | None = STAGE,
    full: bool = typer.Option(False, "--full", help="Plan a full deploy."),
    lane: str = typer.Option("", "--lane", help="The lane of a stage that has lanes."),
    as_json: bool = JSON,
) -> None:
    """Show what a deploy would do; touches no host and no database."""
    result = call("order.plan", number=number, stage=stage or "", full=full, lane=lane)
    language = result.pop("language")
    if as_json:
        output.print_json(result)
    else:
        _print_plan(result)
        _print_review(result, language)


def _follow_log(deployment_id: int) -> None:
    """Print a deployment's whole log and then each new line until it ends."""
    remote = server()
    if remote is not None:
        follow_remote(remote, deployment_id)
        return
    runtime = open_runtime()
    try:
        follow(runtime, deployment_id, live=False)
    finally:
        runtime.close()


def logs(
    number: int = NUMBER,
    deployment: int = typer.Option(0, "--deployment", "-d",
                                   help="One deployment (default: the order's latest)."),
    follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    as_json: bool = JSON,
) -> None:
    """Print a deployment's log."""
    data = call("order.logs", number=number, deployment=deployment)
    if as_json:
        output.print_json(data)
        return
    if follow_:
        _follow_log(data["deployment"])
        return
    for line in data["lines"]:
        output.console.print(format_line(line), markup=False, soft_wrap=True)
