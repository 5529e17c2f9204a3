"""The order page: the pipeline drawn as stages, the actions the viewer may take now,
the latest deployment's progress and live log, the SQL and job ledgers, the history —
and the forms behind each action (pass, reject with a reason, deploy after its plan,
release, roll back to a kept release, cancel, approve SQL, resolve a statement, resume).

Which buttons show is decided by ``order.actions`` (the rules the server enforces), so
no button leads to a refusal the page could have known about.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi.responses import Response
from pydantic import ValidationError

from golive.api.schemas.deployments import ENDED
from golive.errors import GoliveError
from golive.web.i18n import gettext as _
from golive.web.page import Page, field_errors, page, refusal
from golive.web.render import state_color, state_label, word

LOG_LINES = 500
"""Log lines the page renders (the live log streams the rest)."""


@page("/orders/{number:int}")
def order_page(p: Page, number: int) -> Response:
    return _render(p, number)


def _render(p: Page, number: int, errors: dict[str, str] | None = None,
            status: int = 200, reason: str = "") -> Response:
    order = p.read("order.show", number=number)
    stages = p.read("project.show", project=order["project"])["stages"]
    actions = p.read("order.actions", number=number)
    deployments = p.read("deployment.list", number=number)
    latest = deployments[-1] if deployments else None
    detail = p.read("deployment.show", deployment_id=latest["id"]) if latest else None
    log = p.read("order.logs", number=number, deployment=latest["id"]) if latest else None
    rollback = next((a for a in actions if a["operation"] == "order.rollback"), None)
    releases = p.read("order.releases", number=number, stage=rollback["stage"]) \
        if rollback else []
    sql = p.read("sql.list", number=number)
    jobs = p.read("job.list", number=number)
    return p.render(
        "order.html", status=status, order=order, stages=pipeline(stages, order),
        actions=actions, deployments=list(reversed(deployments)), latest=detail,
        live=detail is not None and detail["status"] not in ENDED,
        log_lines=(log["lines"][-LOG_LINES:] if log else []),
        progress=progress(detail["steps"] if detail else []), releases=releases,
        sql=sql_by_database(sql), jobs=jobs_by_host(jobs), errors=errors or {},
        reason=reason)


def pipeline(stages: list[str], order: dict[str, Any]) -> list[dict[str, Any]]:
    """Each stage with its phase now, who moved it there and when (from the history)."""
    state, history = order["state"], order["history"]
    on = state.partition(":")[0] if ":" in state else ""
    drawn = []
    for stage in stages:
        moves = [h for h in history if h["to"].startswith(f"{stage}:") or (
            h["to"] == "done" and stage == stages[-1])]
        last = moves[-1] if moves else None
        phase = "" if last is None else (
            "done" if last["to"] == "done" else last["to"].partition(":")[2])
        if stage == on:
            phase = state.partition(":")[2]
        drawn.append({"stage": stage, "phase": phase, "current": stage == on,
                      "color": state_color(phase) if phase else "",
                      "who": last["actor"] if last else "", "at": last["at"] if last else ""})
    return drawn


def progress(steps: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per service and per host: steps finished of all, and whether one failed."""
    bars: dict[str, dict[str, dict[str, Any]]] = {"service": {}, "host": {}}
    for step in steps:
        for axis in ("service", "host"):
            name = step[axis]
            if not name:
                continue
            bar = bars[axis].setdefault(name, {"name": name, "done": 0, "total": 0,
                                               "failed": False})
            bar["total"] += 1
            bar["done"] += step["status"] in ("done", "skipped")
            bar["failed"] = bar["failed"] or step["status"] == "failed"
    return {axis: list(found.values()) for axis, found in bars.items()}


def sql_by_database(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The statements, and per database what the ledger says of each."""
    databases = sorted({run["database"] for e in entries for run in e["executions"]})
    rows = []
    for entry in entries:
        latest: dict[str, dict[str, Any]] = {}
        for run in entry["executions"]:
            latest[run["database"]] = run  # the newest run on each database wins
        rows.append({**entry, "on": latest})
    return {"databases": databases, "rows": rows}


def jobs_by_host(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    hosts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        for placed in job["hosts"]:
            hosts[placed["host"]].append({**placed, "service": job["service"],
                                          "name": job["name"], "kind": job["kind"]})
    return {"jobs": jobs, "hosts": dict(sorted(hosts.items()))}


# -- the actions ---------------------------------------------------------------------------

def _back(p: Page, number: int, flash: str, kind: str = "ok") -> Response:
    return p.redirect(f"/orders/{number}", flash=flash, kind=kind)


def _act(p: Page, number: int, operation: str, done: str, **params: Any) -> Response:
    """Run ``operation`` and go back to the order with ``done`` or the refusal's words."""
    try:
        p.act(operation, number=number, **params)
    except GoliveError as exc:
        return _back(p, number, refusal(exc), "bad")
    except ValidationError as exc:
        return _back(p, number, "; ".join(field_errors(exc).values()), "bad")
    return _back(p, number, done)


@page("/orders/{number:int}/submit", methods=("POST",))
def submit(p: Page, number: int) -> Response:
    return _act(p, number, "order.submit", _("Order %(n)d submitted.") % {"n": number})


@page("/orders/{number:int}/pass", methods=("POST",))
def pass_(p: Page, number: int) -> Response:
    try:
        moved = p.act("order.pass", number=number)
    except GoliveError as exc:
        return _back(p, number, refusal(exc), "bad")
    done = _("Order %(n)d passed: %(state)s.") % {"n": number,
                                                  "state": state_label(moved["state"])}
    if moved.get("message"):
        done += " " + moved["message"]
    return _back(p, number, done)


@page("/orders/{number:int}/reject", methods=("POST",))
def reject(p: Page, number: int) -> Response:
    reason = p.value("reason").strip()
    if not reason:
        return _render(p, number, {"reason": _("Say why the order is rejected.")}, 422)
    try:
        p.act("order.reject", number=number, body={"reason": reason})
    except ValidationError as exc:
        return _render(p, number, field_errors(exc), 422, reason)
    except GoliveError as exc:
        return _back(p, number, refusal(exc), "bad")
    return _back(p, number, _("Order %(n)d rejected.") % {"n": number})


@page("/orders/{number:int}/cancel", methods=("POST",))
def cancel(p: Page, number: int) -> Response:
    return _act(p, number, "order.cancel", _("Order %(n)d cancelled.") % {"n": number},
                body={"reason": p.value("reason").strip()})


@page("/orders/{number:int}/approve-sql", methods=("POST",))
def approve_sql(p: Page, number: int) -> Response:
    return _act(p, number, "order.approve_sql",
                _("The SQL of order %(n)d is approved.") % {"n": number})


@page("/orders/{number:int}/resume", methods=("POST",))
def resume(p: Page, number: int) -> Response:
    return _act(p, number, "order.resume",
                _("The paused deployment goes on with its next batch."))


@page("/orders/{number:int}/sql/resolve", methods=("POST",))
def resolve_sql(p: Page, number: int) -> Response:
    statement, outcome = p.value("statement"), p.value("as")
    done = (_("Statement %(ref)s is recorded as executed.") if outcome == "executed" else
            _("Statement %(ref)s will run again on the next deploy.")) % {"ref": statement}
    return _act(p, number, "sql.resolve", done, statement=statement, body={"as": outcome})


@page("/orders/{number:int}/rollback", methods=("POST",))
def rollback(p: Page, number: int) -> Response:
    body = {"stage": p.value("stage") or None, "to": p.value("to")}
    try:
        started = p.act("order.rollback", number=number, body=body)
    except GoliveError as exc:
        return _back(p, number, refusal(exc), "bad")
    except ValidationError as exc:
        return _back(p, number, "; ".join(field_errors(exc).values()), "bad")
    return _back(p, number, _("Rollback started (deployment %(id)d). SQL is not undone.")
                 % {"id": started["id"]})


# -- deploy and release: the plan first, then the confirmation -----------------------------

@page("/orders/{number:int}/deploy", methods=("GET", "POST"))
def deploy(p: Page, number: int) -> Response:
    return _deploy_or_release(p, number, "order.deploy")


@page("/orders/{number:int}/release", methods=("GET", "POST"))
def release(p: Page, number: int) -> Response:
    return _deploy_or_release(p, number, "order.release")


def _deploy_or_release(p: Page, number: int, operation: str) -> Response:
    source = p if p.form is not None else None
    query = p.request.query_params
    stage = (source.value("stage") if source else query.get("stage", "")).strip()
    full = (source.value("full") if source else query.get("full", "")) in ("1", "true", "on")
    if p.form is None:
        order = p.read("order.show", number=number)
        plan = p.read("order.plan", number=number, stage=stage, full=full)
        # the plan is for every member to read; the confirmation only for who may do it
        allowed = any(a["operation"] == operation and not a["blocked"]
                      for a in p.read("order.actions", number=number))
        return p.render("order_plan.html", order=order, plan=plan, operation=operation,
                        full=full, stage=plan["stage"], allowed=allowed)
    body: dict[str, Any] = {"full": full}
    if operation == "order.deploy":
        body["stage"] = stage or None
    else:
        body["when_open"] = p.value("when_open") in ("1", "on")
    try:
        started = p.act(operation, number=number, body=body)
    except GoliveError as exc:
        return _back(p, number, refusal(exc), "bad")
    except ValidationError as exc:
        return _back(p, number, "; ".join(field_errors(exc).values()), "bad")
    if started["status"] == "queued":
        return _back(p, number, _("The release is queued for the next release window."))
    return _back(p, number, _("Deployment %(id)d started on %(stage)s.")
                 % {"id": started["id"], "stage": word(started["stage"])})
