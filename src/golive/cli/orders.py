"""`golive order ...`"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from golive.api.schemas.orders import NewOrder, Reason, RequiredReason
from golive.cli import deploy as deploy_cli
from golive.cli import jobs as jobs_cli
from golive.cli import output
from golive.cli import sql as sql_cli
from golive.cli.client import body, call
from golive.errors import InputError

app = typer.Typer(help="File deploy orders and move them through the pipeline.",
                  no_args_is_help=True)
app.command()(deploy_cli.deploy)
app.command()(deploy_cli.release)
app.command()(deploy_cli.rollback)
app.command()(deploy_cli.plan)
app.command()(deploy_cli.logs)
app.command()(deploy_cli.resume)
app.command("approve-sql")(sql_cli.approve_sql)
app.command("sql")(sql_cli.set_sql)
app.add_typer(jobs_cli.app, name="job")

JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise InputError(f"{option} expects SERVICE=VALUE, got {value!r}")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def _read_sql(pairs: list[tuple[str, str]]) -> dict[str, str]:
    scripts: dict[str, str] = {}
    for service, file in pairs:
        try:
            scripts[service] = scripts.get(service, "") + Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--sql {service}={file}: cannot read the file: "
                             f"{exc.strerror}") from None
    return scripts


@app.command()
def create(
    project: str = typer.Option(..., "-p", "--project", help="The project."),
    service: list[str] = typer.Option(..., "-s", "--service", help="SERVICE=BRANCH, repeatable."),
    sql: list[str] = typer.Option([], "--sql", help="SERVICE=FILE: SQL to run for the service."),
    job: list[str] = typer.Option([], "--job", help="SERVICE=FILE: a YAML list of jobs."),
    title: str = typer.Option("", "-t", "--title", help="A title (default: the services)."),
    no_transaction: list[str] = typer.Option(
        [], "--no-transaction", help="SERVICE: run its SQL statement by statement, not in one "
        "transaction (PostgreSQL runs an item's SQL in one transaction by default)."),
    as_json: bool = JSON,
) -> None:
    """File a new draft order."""
    branches = _pairs(service, "-s")
    sql_files = _pairs(sql, "--sql")
    unknown = {name for name, _ in sql_files} - {name for name, _ in branches}
    if unknown:
        raise InputError(f"--sql names {', '.join(sorted(unknown))}, which is not in the order")
    scripts = _read_sql(sql_files)
    job_files = _pairs(job, "--job")
    unknown = {name for name, _ in job_files} - {name for name, _ in branches}
    if unknown:
        raise InputError(f"--job names {', '.join(sorted(unknown))}, which is not in the order")
    jobs: dict[str, list[dict[str, Any]]] = {}
    for name, file in job_files:
        jobs.setdefault(name, []).extend(jobs_cli.read_job_data(Path(file)))
    unknown = set(no_transaction) - {name for name, _ in branches}
    if unknown:
        raise InputError(f"--no-transaction names {', '.join(sorted(unknown))}, which is not "
                         "in the order")
    order = body(NewOrder, project=project, title=title, items=[
        {"service": s, "branch": b, "sql": scripts.get(s, ""),
         "transaction": False if s in no_transaction else None, "jobs": jobs.get(s, [])}
        for s, b in branches])
    data = call("order.create", body=order)
    if as_json:
        output.print_json(data)
    else:
        output.console.print(f"order {data['id']} filed as draft: {data['title']}")


@app.command("list")
def list_(
    project: str = typer.Option("", "-p", "--project", help="Only this project."),
    state: str = typer.Option("", "--state", help="Only orders in this state."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000,
                              help="Only the newest LIMIT orders."),
    as_json: bool = JSON,
) -> None:
    """List orders (the newest 100 unless --limit), oldest first."""
    rows = call("order.list", project=project, state=state, limit=limit)
    if as_json:
        output.print_json(rows)
        return
    output.table("orders", ["#", "project", "state", "title", "by", "services"], [
        [r["id"], r["project"], r["state"], r["title"], r["created_by"], ", ".join(r["services"])]
        for r in rows])


@app.command()
def show(number: int = typer.Argument(..., help="The order number."), as_json: bool = JSON) -> None:
    """Show one order: its items, statements and history."""
    data = call("order.show", number=number)
    if as_json:
        output.print_json(data)
        return
    output.console.print(f"order {data['id']} [{data['project']}] {data['title']}", markup=False)
    output.console.print(f"state: {data['state']}   by {data['created_by']}", markup=False)
    for item in data["items"]:
        output.console.print(f"  {item['service']} @ {item['branch']}: "
                             f"{len(item['statements'])} SQL statement(s)", markup=False)
    _history_table("history", data["history"])


def _history_table(title: str, rows: list[dict[str, Any]]) -> None:
    output.table(title, ["at", "who", "action", "from", "to", "why"], [
        [output.when(h["at"]), h["actor"], h["action"], h["from"], h["to"], h["reason"]]
        for h in rows])


def _moved(data: dict[str, Any]) -> None:
    output.console.print(f"order {data['order']}: {data['action']} → {data['state']}",
                         markup=False)


@app.command()
def submit(number: int = typer.Argument(..., help="The order number.")) -> None:
    """Submit a draft order."""
    _moved(call("order.submit", number=number))


@app.command("pass")
def pass_(
    number: int = typer.Argument(..., help="The order number."),
    as_json: bool = typer.Option(False, "--json", help="Print the started deployment as JSON."),
) -> None:
    """Pass the stage the order is deployed on (tester). With the project's auto_promote, the
    deploy on the next stage starts (and is followed) at once."""
    data = call("order.pass", number=number)
    _moved(data)
    if data["message"]:
        output.console.print(f"order {number}: {data['message']}", markup=False)
    if data["deployment"] and not data["deployment_queued"]:
        deploy_cli.run_and_follow(data["deployment"], as_json)


@app.command()
def history(number: int = typer.Argument(..., help="The order number."),
            as_json: bool = JSON) -> None:
    """Every transition, deployment, approval and take-over of the order, oldest first."""
    rows = call("order.history", number=number)
    if as_json:
        output.print_json(rows)
        return
    _history_table(f"order {number}", rows)


@app.command()
def reject(
    number: int = typer.Argument(..., help="The order number."),
    reason: str = typer.Option(..., "--reason", "-r", help="Why it is rejected."),
) -> None:
    """Reject the stage the order is deployed on, with a reason (tester)."""
    _moved(call("order.reject", number=number, body=body(RequiredReason, reason=reason)))


@app.command()
def cancel(
    number: int = typer.Argument(..., help="The order number."),
    reason: str = typer.Option("", "--reason", "-r", help="Why it is cancelled."),
) -> None:
    """Cancel an order that is not done."""
    _moved(call("order.cancel", number=number, body=body(Reason, reason=reason)))
