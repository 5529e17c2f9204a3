"""Drafting an order: the branches to pick from, SQL reviewed before it is filed, and an
order edited while it is not deployed yet (the web UI's order form reads and writes
through these)."""

from __future__ import annotations

from typing import Any

from golive.api.operations.orders import detail
from golive.api.registry import Work, operation
from golive.api.schemas.drafting import (
    BranchList,
    OrderChange,
    OrderDraft,
    SqlReview,
    SqlToReview,
)
from golive.api.schemas.orders import OrderDetail
from golive.domain.jobs import JobSpec, parse_jobs
from golive.domain.secrets import mask_url_passwords
from golive.errors import InputError
from golive.services import drafting
from golive.services.orders import readable_order, service_dialect


@operation("service.branches", "GET", "/projects/{project}/services/{service}/branches",
           BranchList)
def branches(work: Work, project: str, service: str) -> dict[str, Any]:
    """The branches the service's repository has now (``git ls-remote``), to pick an
    order's branch from (any member of the project)."""
    found = drafting.project_service(work.session, work.user, project, service)
    url = found.repo
    work.session.commit()  # nothing to write: hold no store transaction while git runs
    return {"project": project, "service": service, "repo": mask_url_passwords(url),
            "branches": drafting.remote_branches(url)}


@operation("sql.review", "POST", "/sql/review", SqlReview)
def review(work: Work, body: SqlToReview) -> dict[str, Any]:
    """What the review rules find in SQL for a service, before it is filed: statements a
    deploy refuses without an approval, and warnings (any member of the project). Changes
    nothing."""
    service = drafting.project_service(work.session, work.user, body.project, body.service)
    found = drafting.review_sql(service, body.sql)
    return {"project": body.project, "service": body.service,
            "statements": len(found.statements),
            "findings": [{"statement": f.statement + 1, "rule": f.rule,
                          "severity": f.severity, "message_en": f.message_en,
                          "message_zh": f.message_zh} for f in found.findings]}


@operation("order.draft", "GET", "/orders/{number}/draft", OrderDraft)
def draft(work: Work, number: int) -> dict[str, Any]:
    """The order as its edit form shows it: each service's SQL as one script and its jobs
    as ``order.update`` takes them, and whether it may still change as a whole."""
    order = readable_order(work.session, number, work.user)
    return {"id": order.id, "project": order.project.name, "title": order.title,
            "state": order.state, "editable": drafting.order_editable(order.state),
            "items": [{"service": item.service.name, "branch": item.branch,
                       "sql": drafting.script_of([s.text for s in item.statements],
                                                 service_dialect(item.service)),
                       "jobs": [{"name": j.name, "kind": j.kind, **j.spec} for j in item.jobs]}
                      for item in order.items]}


@operation("order.update", "PATCH", "/orders/{number}", OrderDetail)
def update(work: Work, number: int, body: OrderChange) -> dict[str, Any]:
    """Change an order not deployed yet (draft or submitted): its title, and with
    ``items`` its services, branches, SQL and jobs (a developer or owner)."""
    items = None
    if body.items is not None:
        items = [drafting.ItemChange(item.service, item.branch, item.sql,
                                     _jobs(item.jobs, index))
                 for index, item in enumerate(body.items)]
    order = drafting.update_order(work.session, number, work.user, title=body.title,
                                  items=items)
    return detail(order)


def _jobs(jobs: list[dict[str, Any]] | None, index: int) -> tuple[JobSpec, ...] | None:
    if jobs is None:
        return None
    try:
        # one by one: a name given twice is the service's rule (it says which service)
        return tuple(parse_jobs([job], f"items.{index}.jobs.{k}")[0]
                     for k, job in enumerate(jobs))
    except ValueError as exc:
        raise InputError(str(exc)) from None
