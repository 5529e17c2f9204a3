"""Drafting an order before it is deployed: the branches a service's repository offers,
the review rules' findings on SQL as it is written, and changing an order that has not
been deployed yet (title, services, branches, SQL, jobs) in one transaction.

Once an order has been deployed its services and branches are what the stages run;
only its SQL (append-only) and jobs may still change, through ``sqlops.replace_sql``
and ``orders.set_jobs``, until it is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.adapters.git import git
from golive.domain import offers
from golive.domain import sql as sqlrules
from golive.domain.jobs import JobSpec
from golive.domain.names import branch_problem
from golive.domain.permissions import Permission
from golive.domain.secrets import mask_text
from golive.domain.sql_review import Finding, review_item
from golive.errors import GitError, InputError, NotFound, RefusedError
from golive.services import sqlops
from golive.services.history import note
from golive.services.orders import get_order, remove_job, service_dialect, set_jobs
from golive.services.users import get_project, require
from golive.store.models import Order, OrderItem, Service, User, utcnow

LIST_BRANCHES_TIMEOUT = 30
"""Seconds ``git ls-remote`` may take: a form waits for it."""


def order_editable(state: str) -> bool:
    """Whether an order in ``state`` can still be edited as a whole (title, services,
    branches): only before its first deployment."""
    return state in offers.EDITABLE_STATES


def project_service(session: Session, by: User, project: str, service: str) -> Service:
    """A service of a project ``by`` may read (a member, or a site admin)."""
    found_project = get_project(session, project)
    require(session, by, found_project, Permission.VIEW, f"reading project {project}")
    found = session.scalar(select(Service).where(Service.project_id == found_project.id,
                                                 Service.name == service))
    if found is None:
        raise NotFound("service", f"{service} of project {project}")
    return found


def remote_branches(url: str) -> list[str]:
    """The branch names the repository at ``url`` has now (``git ls-remote --heads``),
    sorted; GitError naming the repository, its password masked."""
    try:
        out = git("ls-remote", "--heads", "--", url, timeout=LIST_BRANCHES_TIMEOUT)
    except GitError as exc:
        raise GitError(mask_text(f"cannot list the branches of repository {url}: "
                                 f"{exc.message}")) from None
    prefix = "refs/heads/"
    refs = (line.split("\t", 1)[-1] for line in out.splitlines() if "\t" in line)
    return sorted(ref[len(prefix):] for ref in refs if ref.startswith(prefix))


@dataclass(frozen=True)
class Review:
    statements: list[str]
    findings: list[Finding]


def review_sql(service: Service, script: str) -> Review:
    """The statements of ``script`` as the service's databases split them, and what the
    review rules find in them (refusals need an approval before a deploy runs them)."""
    dialect = service_dialect(service)
    statements = sqlrules.split_statements(script, dialect)
    return Review(statements, review_item(statements, dialect))


def script_of(statements: Sequence[str], dialect: str) -> str:
    """The statements as one script that splits back into the same statements: a
    statement holding its own ``;`` (a MySQL routine) is written between DELIMITER lines."""
    parts = []
    for text in statements:
        if sqlrules.split_statements(text + ";", dialect) == [text]:
            parts.append(text + ";")
        else:
            parts.append(f"DELIMITER //\n{text} //\nDELIMITER ;")
    return "\n\n".join(parts) + ("\n" if parts else "")


@dataclass(frozen=True)
class ItemChange:
    """A service as the edited order has it; None keeps what the order has (SQL, jobs)."""

    service: str
    branch: str
    sql: str | None = None
    jobs: tuple[JobSpec, ...] | None = None


def update_order(session: Session, order_id: int, by: User, *, title: str | None = None,
                 items: Sequence[ItemChange] | None = None) -> Order:
    """Change an order that has not been deployed: its title, and (``items``: the whole
    new list) its services, their branches, SQL and jobs. Statements get their checksums
    as when the order was filed. Written in the order's history; flushes, the caller
    commits."""
    order = get_order(session, order_id, lock=True)
    require(session, by, order.project, Permission.EDIT_ORDER, f"order {order.id}: editing it")
    if not order_editable(order.state):
        raise RefusedError(
            f"order {order.id} is {order.state}: only an order not deployed yet (draft or "
            "submitted) can change its services and branches; its SQL and jobs can still "
            "change until it is done, or file a new order")
    changed = [] if items is None else _replace_items(session, order, list(items), by)
    session.expire(order, ["items"])  # read again in their new positions
    if title is not None:
        wanted = title.strip() or ", ".join(f"{i.service.name}@{i.branch}" for i in order.items)
        if wanted != order.title:
            order.title = wanted
            changed.insert(0, "title")
    order.updated_at = utcnow()
    session.flush()
    note(session, order, by.name, "edit",
         "changed " + ", ".join(changed) if changed else "nothing changed")
    return order


def _replace_items(session: Session, order: Order, items: list[ItemChange], by: User
                   ) -> list[str]:
    services = _checked_services(session, order, items)
    changed = []
    kept = {item.service.name: item for item in order.items}
    for name in [n for n in kept if n not in services]:
        order.items.remove(kept.pop(name))
        changed.append(f"removed {name}")
    session.flush()
    for position, change in enumerate(items):
        row = kept.get(change.service)
        if row is None:
            row = OrderItem(service=services[change.service], branch=change.branch,
                            position=position)
            order.items.append(row)
            changed.append(f"added {change.service}@{change.branch}")
        elif row.branch != change.branch:
            changed.append(f"{change.service}: branch {row.branch} → {change.branch}")
        row.branch, row.position = change.branch, position
        session.flush()
        changed.extend(_sync_contents(session, order, row, change, by))
    return changed


def _checked_services(session: Session, order: Order, items: list[ItemChange]
                      ) -> dict[str, Service]:
    """The services of the new list, by name; InputError naming the first wrong one."""
    if not items:
        raise InputError(f"order {order.id} needs at least one service")
    found: dict[str, Service] = {}
    for change in items:
        if change.service in found:
            raise InputError(f"service {change.service} is listed twice in the order")
        problem = branch_problem(change.branch)
        if problem:
            raise InputError(f"service {change.service}: {problem}")
        names = [job.name for job in change.jobs or ()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InputError(f"service {change.service}: job {', '.join(twice)} is given twice")
        service = session.scalar(select(Service).where(
            Service.project_id == order.project_id, Service.name == change.service))
        if service is None:
            raise NotFound("service", f"{change.service} of project {order.project.name}")
        found[change.service] = service
    return found


def _sync_contents(session: Session, order: Order, row: OrderItem, change: ItemChange,
                   by: User) -> list[str]:
    """The item's SQL and jobs made as ``change`` says (through the services that edit
    them anyway: the same checks, the same checksums)."""
    changed = []
    name = change.service
    if change.sql is not None:
        before = [s.checksum for s in row.statements]
        sqlops.replace_sql(session, order.id, name, change.sql, by)
        if [s.checksum for s in row.statements] != before:
            changed.append(f"{name}: SQL")
    if change.jobs is not None:
        wanted = {job.name for job in change.jobs}
        before_jobs = [(j.name, j.kind, j.spec) for j in row.jobs]
        for job in [j for j in row.jobs if j.name not in wanted]:
            remove_job(session, order.id, name, job.name, by)
        set_jobs(session, order.id, name, list(change.jobs), by)
        if [(j.name, j.kind, j.spec) for j in row.jobs] != before_jobs:
            changed.append(f"{name}: jobs")
    return changed
