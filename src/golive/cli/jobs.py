"""`golive order job add|remove|list` and reading job files for `order create --job`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from golive.api.schemas.ledgers import JobList
from golive.cli import output
from golive.cli.client import body, call
from golive.domain.jobs import parse_jobs
from golive.errors import InputError

app = typer.Typer(help="An order's jobs on job hosts.", no_args_is_help=True)
NUMBER = typer.Argument(..., help="The order number.")


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
    jobs = body(JobList, jobs=read_job_data(file, "--file"))
    done = call("job.add", number=number, service=service, body=jobs)
    output.console.print(f"order {number}: {service} has {done['jobs']} job(s)", markup=False)


@app.command("remove")
def remove(
    number: int = NUMBER,
    service: str = typer.Option(..., "-s", "--service", help="The service."),
    name: str = typer.Argument(..., help="The job."),
) -> None:
    """Take a job out of the order; hosts keep it until a deploy with --prune-jobs."""
    call("job.remove", number=number, service=service, job=name)
    output.console.print(f"order {number}: job {name} of {service} removed; job hosts keep "
                         "it until a deploy with --prune-jobs", markup=False)


@app.command("list")
def list_(number: int = NUMBER,
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The order's jobs, and where the job ledger says each was created."""
    rows = call("job.list", number=number)
    if as_json:
        output.print_json(rows)
        return
    output.table(f"jobs of order {number}", ["service", "job", "kind", "created on"], [
        [r["service"], r["name"], r["kind"],
         ", ".join(f"{h['stage']}/{h['host']}" for h in r["hosts"]) or "-"] for r in rows])
