"""What people do with an order's SQL: resolve an ``unknown`` statement, approve the
order's SQL past the review rules, and edit it — append-only once anything ran."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain import sql as sqlrules
from golive.domain.permissions import Permission
from golive.domain.sql_review import REFUSE, review_item
from golive.errors import InputError, RefusedError
from golive.services.history import note
from golive.services.ledger import FAILED, RUNNING, SUCCESS, UNKNOWN, sql_status
from golive.services.orders import editable_item, get_order, service_dialect
from golive.services.users import require
from golive.store.models import (
    Order,
    OrderItem,
    SqlExecution,
    SqlStatement,
    TargetDatabase,
    User,
    utcnow,
)


def _require(session: Session, order: Order, by: User, permission: Permission,
             what: str) -> None:
    require(session, by, order.project, permission, f"order {order.id}: {what}")


def find_statement(order: Order, ref: str) -> tuple[OrderItem, SqlStatement]:
    """``SERVICE:N`` (or ``N`` when one service of the order has SQL) → the statement."""
    service, _, number = ref.rpartition(":")
    if not number.isdigit() or int(number) < 1:
        raise InputError(f"statement {ref!r}: write SERVICE:N, e.g. orders:2")
    items = [i for i in order.items if i.statements and (not service or
                                                         i.service.name == service)]
    if not service and len(items) > 1:
        raise InputError(f"order {order.id} has SQL for several services: write SERVICE:N")
    for item in items:
        for stmt in item.statements:
            if stmt.position + 1 == int(number):
                return item, stmt
    raise InputError(f"order {order.id} has no statement {ref}")


@dataclass(frozen=True)
class Resolution:
    statement: str
    databases: list[str]
    outcome: str


def resolve(session: Session, order_id: int, ref: str, outcome: str, by: User,
            database: str = "") -> Resolution:
    """Settle an ``unknown`` statement: ``executed`` records it a success, ``retry`` lets
    the next deploy run it again."""
    if outcome not in ("executed", "retry"):
        raise InputError(f"--as {outcome!r}: write executed or retry")
    order = get_order(session, order_id)
    _require(session, order, by, Permission.RESOLVE_SQL, "resolving a statement")
    item, stmt = find_statement(order, ref)
    query = select(SqlExecution).where(SqlExecution.statement_id == stmt.id,
                                       SqlExecution.status.in_((UNKNOWN, RUNNING)))
    rows = list(session.scalars(query))
    names = {d.id: d.name for d in session.scalars(select(TargetDatabase))}
    if database:
        rows = [r for r in rows if names.get(r.database_id) == database]
    if not rows:
        raise InputError(f"statement {ref} of order {order_id} is not unknown"
                         + (f" on {database}" if database else "") + ": nothing to resolve")
    if any(r.status == RUNNING for r in rows):
        raise InputError(f"statement {ref} is running now; wait for it to finish")
    for row in rows:
        row.status = SUCCESS if outcome == "executed" else FAILED
        row.message = f"resolved by {by.name} as {outcome} at {utcnow():%Y-%m-%d %H:%M} UTC"
        row.finished_at = row.finished_at or utcnow()
    session.flush()
    note(session, order, by.name, "resolve_sql", f"statement {item.service.name}:"
         f"{stmt.position + 1} resolved as {outcome}")
    return Resolution(f"{item.service.name}:{stmt.position + 1}",
                      sorted(names[r.database_id] for r in rows), outcome)


def approve_sql(session: Session, order_id: int, by: User) -> Order:
    """An owner or releaser allows the order's statements past the review rules."""
    order = get_order(session, order_id)
    _require(session, order, by, Permission.APPROVE_SQL, "approving SQL")
    order.sql_approved_by, order.sql_approved_at = by.name, utcnow()
    order.sql_approved_checksums = sorted({s.checksum for i in order.items
                                           for s in i.statements})
    session.flush()
    note(session, order, by.name, "approve_sql",
         f"{len(order.sql_approved_checksums)} statement(s) approved past the review rules")
    return order


def review_refusals(session: Session, order: Order, stage: str) -> list[str]:
    """One line per statement that would run on ``stage`` and the review refuses unapproved."""
    approved = set(order.sql_approved_checksums or ())
    lines = []
    for item in order.items:
        setting = next((s for s in item.service.stages if s.stage == stage), None)
        if setting is None or setting.database is None or not item.statements:
            continue
        status = sql_status(session, setting.database.id, order.id)
        statements = list(item.statements)
        findings = review_item([s.text for s in statements], service_dialect(item.service))
        for finding in findings:
            stmt = statements[finding.statement]
            if finding.severity != REFUSE or stmt.checksum in approved or \
                    status.get(stmt.checksum) == SUCCESS:
                continue
            lines.append(f"SQL {item.service.name}:{stmt.position + 1} is refused by the "
                         f"review rule {finding.rule}: {finding.message_en}")
    return lines


def check_review(session: Session, order: Order, stage: str) -> None:
    """Refuse a deploy whose SQL the review rules refuse, before anything moves."""
    lines = review_refusals(session, order, stage)
    if lines:
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise RefusedError(f"order {order.id}: {lines[0]}{more}. An owner or releaser can "
                           f"approve it with `golive order approve-sql {order.id}`")


def check_settled(session: Session, order: Order, stage: str) -> None:
    """Refuse a deploy while a statement of the order is ``unknown`` (or still marked
    running) on the stage's database: a person settles it first, and nothing starts."""
    for item in order.items:
        setting = next((s for s in item.service.stages if s.stage == stage), None)
        if not item.statements or setting is None or setting.database is None:
            continue
        status = sql_status(session, setting.database.id, order.id)
        for stmt in item.statements:
            verdict = status.get(stmt.checksum, "")
            if verdict in (UNKNOWN, RUNNING):
                ref = f"{item.service.name}:{stmt.position + 1}"
                raise RefusedError(
                    f"SQL {ref} is {verdict} on database {setting.database.name}: it may or "
                    f"may not have run; resolve it with `golive sql resolve {order.id} {ref} "
                    "--as executed|retry` before deploying")


def replace_sql(session: Session, order_id: int, service: str, script: str, by: User) -> int:
    """Set a service's SQL in the order; statements that ran anywhere must stay as they are.

    Returns the number of statements. Refuses the change, naming the statement and
    where it ran, if an executed statement would be edited or removed.
    """
    item = editable_item(session, order_id, service, by, "SQL")
    dialect = service_dialect(item.service)
    new = sqlrules.split_statements(script, dialect)
    _check_append_only(session, item, new, dialect)
    kept = {s.position: s for s in item.statements}
    for position, text in enumerate(new):
        checksum = sqlrules.checksum(text, dialect)
        row = kept.pop(position, None)
        if row is None:
            item.statements.append(SqlStatement(position=position, text=text,
                                                checksum=checksum))
        elif row.checksum != checksum or row.text != text:
            row.text, row.checksum = text, checksum
    for row in kept.values():
        item.statements.remove(row)
    session.flush()
    return len(new)


def _check_append_only(session: Session, item: OrderItem, new: list[str], dialect: str) -> None:
    for stmt in item.statements:
        ran = session.scalar(select(SqlExecution).where(
            SqlExecution.statement_id == stmt.id, SqlExecution.status != FAILED).limit(1))
        if ran is None:
            continue
        position = stmt.position
        if position >= len(new) or sqlrules.checksum(new[position], dialect) != stmt.checksum:
            where = session.get(TargetDatabase, ran.database_id)
            raise InputError(
                f"statement {item.service.name}:{position + 1} has run on "
                f"{where.name if where else 'a database'} ({ran.status}); it cannot be edited "
                "or removed: keep it and add a new statement after the others instead")
