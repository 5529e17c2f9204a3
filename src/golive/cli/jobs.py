"""`golive order job add|list` and reading job files for `order create --job`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from sqlalchemy import select

from golive.cli import output
from golive.cli.context import unit_of_work
from golive.domain.jobs import JobSpec, parse_jobs
from golive.errors import InputError
from golive.services.orders import readable_order, remove_job, set_jobs
from golive.store.models import Host, JobLedger

app = typer.Typer(help="An order's jobs on job hosts.", no_args_is_help=True)
NUMBER = typer.Argument(..., help="The order number.")


def read_jobs(file: Path, option: str = "--job") -> list[JobSpec]:
    """The jobs of a YAML list file; InputError naming the file, job and field."""
    try:
        return parse_jobs(read_job_data(file, option), str(file))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def read_job_data(file: Path, option: str = "--job") -> list[dict[str, Any]]:
    """A job file's YAML list as it is, checked here first so that a mistake names the
    file (the server checks it again)."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{option} {file}: cannot read the file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{option} {file}: not valid YAML: {_yaml_problem(exc)}") from None
    try:
        parse_jobs(data, str(file))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return list(data or [])


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint on one line (its own text spans several, with a caret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


@app.command("add")
def add(
    number: int = NUMBER,
    service: str = typer.Option(..., "-s", "--service", help="The service."),
    file: Path = typer.Option(..., "-f", "--file", help="A YAML list of jobs."),
) -> None:
    """Add jobs to a service of the order, or change them (by name)."""
    jobs = read_jobs(file, "--file")
    with unit_of_work() as work:
        item = set_jobs(work.session, number, service, jobs, work.user)
        count = len(item.jobs)
    output.console.print(f"order {number}: {service} has {count} job(s)", markup=False)


@app.command("remove")
def remove(
    number: int = NUMBER,
    service: str = typer.Option(..., "-s", "--service", help="The service."),
    name: str = typer.Argument(..., help="The job."),
) -> None:
    """Take a job out of the order; hosts keep it until a deploy with --prune-jobs."""
    with unit_of_work() as work:
        remove_job(work.session, number, service, name, work.user)
    output.console.print(f"order {number}: job {name} of {service} removed; job hosts keep "
                         "it until a deploy with --prune-jobs", markup=False)


@app.command("list")
def list_(number: int = NUMBER,
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The order's jobs, and where the job ledger says each was created."""
    with unit_of_work() as work:
        order = readable_order(work.session, number, work.user)
        rows: list[dict[str, Any]] = []
        for item in order.items:
            for job in item.jobs:
                ledger = work.session.execute(
                    select(JobLedger, Host.name).join(Host, Host.id == JobLedger.host_id)
                    .where(JobLedger.service_id == item.service_id,
                           JobLedger.job_name == job.name)).all()
                rows.append({
                    "service": item.service.name, "name": job.name, "kind": job.kind,
                    "spec": job.spec,
                    "hosts": [{"stage": row.stage, "host": host, "created_at": row.created_at,
                               "reloaded_at": row.reloaded_at,
                               "created_by_order": row.created_by_order_id}
                              for row, host in ledger]})
    if as_json:
        output.print_json(rows)
        return
    output.table(f"jobs of order {number}", ["service", "job", "kind", "created on"], [
        [r["service"], r["name"], r["kind"],
         ", ".join(f"{h['stage']}/{h['host']}" for h in r["hosts"]) or "-"] for r in rows])
