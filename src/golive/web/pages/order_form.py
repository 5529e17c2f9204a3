"""The new order form and the edit form of an order not deployed yet.

Both work without JavaScript: the branches of each service come in a ``<datalist>``
(read from the remote with ``service.branches``), the "Check SQL" button posts the form
back and shows the review rules' findings beside each SQL box, and a create or save
posts the whole form once (``order.create`` / ``order.update``: one transaction, nothing
half written). ``static/order_form.js`` adds the review as one types (``/orders/review``)
and a filter over many services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from golive.api.errors import status_of
from golive.domain.jobs import parse_jobs
from golive.domain.names import branch_problem
from golive.errors import GoliveError, PermissionDenied, RefusedError
from golive.web.i18n import gettext as _
from golive.web.page import Page, field_errors, page
from golive.web.render import state_label

CREATORS = ("developer", "owner")
"""The project roles that may file an order (a site admin may anywhere)."""
ITEM_PATH = re.compile(r"^items\.(\d+)\.(\w+)")


@dataclass
class ServiceBox:
    """One service's fieldset: whether it is in the order, and what was typed for it."""

    name: str
    chosen: bool = False
    branch: str = ""
    sql: str = ""
    jobs: str = ""
    branches: list[str] = field(default_factory=list)
    branches_error: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Draft:
    project: str
    title: str = ""
    services: list[ServiceBox] = field(default_factory=list)

    @property
    def chosen(self) -> list[ServiceBox]:
        return [box for box in self.services if box.chosen]


# -- new order -------------------------------------------------------------------------


@page("/orders/new")
def new_order_form(p: Page) -> Response:
    projects = _creatable(p)
    project = p.request.query_params.get("project", "")
    if project not in projects:  # the only project needs no choosing
        project = next(iter(projects)) if len(projects) == 1 else ""
    draft = _empty_draft(p, project, projects.get(project, []))
    return _show_new(p, projects, draft, {})


@page("/orders/new", methods=("POST",))
def file_new_order(p: Page) -> Response:
    projects = _creatable(p)
    project = p.value("project")
    if project not in projects:
        return _show_new(p, projects, Draft(""), {"project": _("Choose a project.")}, 422)
    draft = _posted_draft(p, project, projects[project])
    if "check" in (p.form or {}):  # the findings only: the rest is checked when filed
        return _show_new(p, projects, draft, {})
    errors = _checked(draft)
    if errors:
        return _show_new(p, projects, draft, errors, 422)
    try:
        created = p.act("order.create", body=_new_order_body(draft))
    except (GoliveError, ValidationError) as exc:
        return _show_new(p, projects, draft, _errors_of(exc, draft), _status(exc))
    number = created["id"]
    if "submit" not in (p.form or {}):
        return p.redirect(f"/orders/{number}", _("Order %(n)d is filed as a draft.")
                          % {"n": number})
    try:
        p.act("order.submit", number=number)
    except GoliveError as exc:  # the draft stays: it is filed, only not submitted yet
        why = _("Order %(n)d is filed as a draft, but not submitted: %(why)s")
        return p.redirect(f"/orders/{number}", why % {"n": number, "why": exc.message},
                          kind="warn")
    return p.redirect(f"/orders/{number}", _("Order %(n)d is filed and submitted.")
                      % {"n": number})


def _show_new(p: Page, projects: dict[str, list[str]], draft: Draft, errors: dict[str, str],
              status: int = 200) -> Response:
    return p.render("order_form.html", status=status, mode="new", action="/orders/new",
                    form_id="new-order", projects=sorted(projects), draft=draft,
                    errors=errors, order=None)


def _creatable(p: Page) -> dict[str, list[str]]:
    """The projects where the viewer may file an order, each with its services."""
    return {row["name"]: row["services"] for row in p.read("project.list")
            if p.me.is_admin or set(row["roles"]) & set(CREATORS)}


# -- editing -------------------------------------------------------------------------


@page("/orders/{number:int}/edit")
def edit_order_form(p: Page, number: int) -> Response:
    order = _editable_draft(p, number)
    services = _project_services(p, order["project"])
    items = {item["service"]: item for item in order["items"]}
    draft = Draft(order["project"], order["title"], [
        ServiceBox(name, True, items[name]["branch"], items[name]["sql"],
                   _yaml_of(items[name]["jobs"])) if name in items else ServiceBox(name)
        for name in services])
    _add_branches(p, draft)
    _add_findings(p, draft)
    return _show_edit(p, order, draft, {})


@page("/orders/{number:int}/edit", methods=("POST",))
def save_order(p: Page, number: int) -> Response:
    order = _editable_draft(p, number)
    draft = _posted_draft(p, order["project"], _project_services(p, order["project"]))
    if "check" in (p.form or {}):
        return _show_edit(p, order, draft, {})
    errors = _checked(draft)
    if errors:
        return _show_edit(p, order, draft, errors, 422)
    try:
        p.act("order.update", number=number, body=_change_body(draft))
    except (GoliveError, ValidationError) as exc:
        return _show_edit(p, order, draft, _errors_of(exc, draft), _status(exc))
    return p.redirect(f"/orders/{number}", _("Order %(n)d is saved.") % {"n": number})


def _editable_draft(p: Page, number: int) -> dict[str, Any]:
    order: dict[str, Any] = p.read("order.draft", number=number)
    if order["project"] not in _creatable(p):  # the edit is refused too: say so at once
        raise PermissionDenied(_("Only a developer or owner of project %(project)s can edit "
                                 "its orders.") % {"project": order["project"]})
    if not order["editable"]:
        raise RefusedError(_("Order %(n)d is %(state)s: it has been deployed, so its services "
                             "and branches can no longer change.") % {
            "n": number, "state": state_label(order["state"])})
    return order


def _show_edit(p: Page, order: dict[str, Any], draft: Draft, errors: dict[str, str],
               status: int = 200) -> Response:
    number = order["id"]
    return p.render("order_form.html", status=status, mode="edit",
                    action=f"/orders/{number}/edit", form_id="edit-order",
                    projects=[order["project"]], draft=draft, errors=errors, order=order)


def _project_services(p: Page, project: str) -> list[str]:
    return [service["name"] for service in p.read("project.show", project=project)["services"]]


# -- the review as one types (static/order_form.js) ------------------------------------


@page("/orders/review", methods=("POST",))
def review_as_typed(p: Page) -> Response:
    """The review rules' findings on one SQL box, for the form's script: changes nothing."""
    try:
        found = p.read("sql.review", body={"project": p.value("project"),
                                           "service": p.value("service"),
                                           "sql": p.value("sql")})
    except (GoliveError, ValidationError):
        return JSONResponse({"findings": [], "statements": 0}, status_code=422)
    return JSONResponse({"statements": found["statements"],
                         "findings": [_shown(f, p.locale) for f in found["findings"]]})


# -- the form's data -------------------------------------------------------------------


def _empty_draft(p: Page, project: str, services: list[str]) -> Draft:
    draft = Draft(project, "", [ServiceBox(name) for name in services])
    if len(draft.services) == 1:
        draft.services[0].chosen = True
    _add_branches(p, draft)
    return draft


def _posted_draft(p: Page, project: str, services: list[str]) -> Draft:
    chosen = set(p.values("service"))
    draft = Draft(project, p.value("title").strip(), [
        ServiceBox(name, name in chosen, p.value(f"branch.{name}").strip(),
                   p.value(f"sql.{name}"), p.value(f"jobs.{name}"))
        for name in services])
    _add_branches(p, draft)
    _add_findings(p, draft)
    return draft


def _add_branches(p: Page, draft: Draft) -> None:
    for box in draft.services:
        try:
            box.branches = p.read("service.branches", project=draft.project,
                                  service=box.name)["branches"]
        except GoliveError as exc:
            box.branches_error = exc.message


def _add_findings(p: Page, draft: Draft) -> None:
    for box in draft.services:
        if box.sql.strip():
            found = p.read("sql.review", body={"project": draft.project, "service": box.name,
                                               "sql": box.sql})
            box.findings = [_shown(f, p.locale) for f in found["findings"]]


def _shown(finding: dict[str, Any], locale: str) -> dict[str, Any]:
    return {"statement": finding["statement"], "severity": finding["severity"],
            "rule": finding["rule"],
            "message": finding["message_zh"] if locale == "zh_CN" else finding["message_en"]}


def _yaml_of(jobs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(jobs, sort_keys=False, allow_unicode=True) if jobs else ""


def _jobs_of(box: ServiceBox) -> list[dict[str, Any]]:
    """The jobs typed for ``box`` (a YAML list); ValueError saying what is wrong."""
    if not box.jobs.strip():
        return []
    try:
        data = yaml.safe_load(box.jobs)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _(" (line %(line)d)") % {"line": mark.line + 1} if mark else ""
        raise ValueError(_("The jobs are not valid YAML%(where)s.") % {"where": where}) from None
    parse_jobs(data, box.name)  # its words name the job and the field
    return list(data)


def _checked(draft: Draft) -> dict[str, str]:
    """What the form can tell before filing: no service, a branch missing, not a branch
    name or not in the repository, jobs that are not a list of jobs."""
    errors: dict[str, str] = {}
    if not draft.chosen:
        errors["services"] = _("Choose at least one service.")
    for box in draft.chosen:
        key = f"branch.{box.name}"
        if not box.branch:
            errors[key] = _("Choose the branch to deploy.")
        elif problem := branch_problem(box.branch):
            errors[key] = problem
        elif box.branches and box.branch not in box.branches:
            errors[key] = _("Branch %(branch)s is not in the repository of %(service)s.") % {
                "branch": box.branch, "service": box.name}
        try:
            _jobs_of(box)
        except ValueError as exc:
            errors[f"jobs.{box.name}"] = str(exc)
    return errors


def _items(draft: Draft) -> list[dict[str, Any]]:
    return [{"service": box.name, "branch": box.branch, "sql": box.sql,
             "jobs": _jobs_of(box)} for box in draft.chosen]


def _new_order_body(draft: Draft) -> dict[str, Any]:
    return {"project": draft.project, "title": draft.title, "items": _items(draft)}


def _change_body(draft: Draft) -> dict[str, Any]:
    return {"title": draft.title, "items": _items(draft)}


def _errors_of(exc: GoliveError | ValidationError, draft: Draft) -> dict[str, str]:
    """A refusal of the operation, beside the field it is about where it names one."""
    chosen = draft.chosen
    if isinstance(exc, ValidationError):
        errors: dict[str, str] = {}
        for path, message in field_errors(exc).items():
            found = ITEM_PATH.match(path)
            if found and int(found.group(1)) < len(chosen):
                name = chosen[int(found.group(1))].name
                errors.setdefault(f"{found.group(2)}.{name}", message)
            else:
                errors.setdefault({"title": "title", "items": "services"}.get(path, ""), message)
        return errors
    return {_field_of(exc.message, chosen): exc.message}


def _status(exc: GoliveError | ValidationError) -> int:
    return status_of(exc) if isinstance(exc, GoliveError) else 422


def _field_of(message: str, chosen: list[ServiceBox]) -> str:
    for index, box in enumerate(chosen):
        if f"items.{index}.jobs" in message or f"service {box.name}: job" in message:
            return f"jobs.{box.name}"
        if f"statement {box.name}:" in message:
            return f"sql.{box.name}"
        if f"branch {box.branch!r}" in message or f"service {box.name}" in message:
            return f"branch.{box.name}"
    return ""
