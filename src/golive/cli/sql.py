"""`golive sql list|resolve` and `golive order approve-sql|sql`."""

from __future__ import annotations

from pathlib import Path

import typer

from golive.api.schemas.ledgers import SqlResolution, SqlScript
from golive.cli import output
from golive.cli.client import body, call
from golive.errors import InputError

app = typer.Typer(help="An order's SQL: its ledger, and settling unknown statements.",
                  no_args_is_help=True)
NUMBER = typer.Argument(..., help="The order number.")


@app.command("list")
def list_(number: int = NUMBER,
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each statement of the order and what the ledger says of it on each database."""
    rows = call("sql.list", number=number)
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
    how = body(SqlResolution, **{"as": outcome, "database": database})
    done = call("sql.resolve", number=number, statement=statement, body=how)
    output.console.print(f"order {number}: statement {done['statement']} on "
                         f"{', '.join(done['databases'])} resolved as {done['outcome']}",
                         markup=False)


def approve_sql(number: int = NUMBER) -> None:
    """Approve the order's SQL past the review rules (owner or releaser)."""
    done = call("order.approve_sql", number=number)
    output.console.print(f"order {number}: {done['approved']} statement(s) approved",
                         markup=False)


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
    done = call("order.set_sql", number=number, service=service,
                body=body(SqlScript, sql=script))
    output.console.print(f"order {number}: {service} has {done['statements']} statement(s)",
                         markup=False)
