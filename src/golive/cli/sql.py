"""`golive sql list|resolve` and `golive order approve-sql|sql`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select

from golive.cli import output
from golive.cli.context import unit_of_work
from golive.errors import InputError
from golive.services import sqlops
from golive.services.orders import readable_order
from golive.store.models import SqlExecution, TargetDatabase

app = typer.Typer(help="An order's SQL: its ledger, and settling unknown statements.",
                  no_args_is_help=True)
NUMBER = typer.Argument(..., help="The order number.")


@app.command("list")
def list_(number: int = NUMBER,
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each statement of the order and what the ledger says of it on each database."""
    with unit_of_work() as work:
        order = readable_order(work.session, number, work.user)
        names = {d.id: d.name for d in work.session.scalars(select(TargetDatabase))}
        rows: list[dict[str, Any]] = []
        for item in order.items:
            for stmt in item.statements:
                runs = work.session.scalars(select(SqlExecution).where(
                    SqlExecution.statement_id == stmt.id).order_by(SqlExecution.id))
                rows.append({
                    "statement": f"{item.service.name}:{stmt.position + 1}",
                    "checksum": stmt.checksum, "text": stmt.text,
                    "executions": [{"database": names.get(r.database_id, ""), "stage": r.stage,
                                    "status": r.status, "by": r.executed_by,
                                    "at": r.started_at, "duration_ms": r.duration_ms,
                                    "rows": r.rows_affected, "message": r.message}
                                   for r in runs]})
    if as_json:
        output.print_json(rows)
        return
    output.table(f"SQL of order {number}", ["statement", "text", "ledger"], [
        [r["statement"], " ".join(r["text"].split())[:60],
         "; ".join(f"{e['database']} {e['status']}" for e in r["executions"]) or "not run"]
        for r in rows])


@app.command()
def resolve(
    number: int = NUMBER,
    statement: str = typer.Argument(..., help="SERVICE:N, e.g. orders:2 (N alone when one "
                                              "service has SQL)."),
    outcome: str = typer.Option(..., "--as", help="executed (it took effect) or retry "
                                                  "(run it again on the next deploy)."),
    database: str = typer.Option("", "--database", help="Only on this database."),
) -> None:
    """Settle a statement left unknown by a run that died (owner or releaser)."""
    with unit_of_work() as work:
        done = sqlops.resolve(work.session, number, statement, outcome, work.user, database)
    output.console.print(f"order {number}: statement {done.statement} on "
                         f"{', '.join(done.databases)} resolved as {done.outcome}",
                         markup=False)


def approve_sql(number: int = NUMBER) -> None:
    """Approve the order's SQL past the review rules (owner or releaser)."""
    with unit_of_work() as work:
        order = sqlops.approve_sql(work.session, number, work.user)
        count = len(order.sql_approved_checksums)
    output.console.print(f"order {number}: {count} statement(s) approved", markup=False)


def set_sql(
    number: int = NUMBER,
    service: str = typer.Option(..., "-s", "--service", help="The service."),
    file: Path = typer.Option(..., "-f", "--file", help="The service's whole SQL script."),
) -> None:
    """Replace a service's SQL in the order: statements that ran must stay; add new ones."""
    try:
        script = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--file {file}: cannot read the file: {exc.strerror}") from None
    with unit_of_work() as work:
        count = sqlops.replace_sql(work.session, number, service, script, work.user)
    output.console.print(f"order {number}: {service} has {count} statement(s)", markup=False)
