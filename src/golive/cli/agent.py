"""`golive agent`: run a Celery agent for one zone here; `golive agent list`: every agent.

The agent itself works on this machine only (it needs the shared store and the broker);
the list is an operation (``api/operations/agents.py``), here or on the server.
"""

from __future__ import annotations

from typing import Any

import typer

from golive.cli import output
from golive.cli.client import call, local_only

app = typer.Typer(help="Run a Celery agent for a network zone, or list the agents.",
                  invoke_without_command=True)

JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")


@app.callback()
def agent(
    ctx: typer.Context,
    queue: str = typer.Option("default", "--queue", "-Q",
                              help="The zone whose deployments this agent runs."),
    concurrency: int = typer.Option(2, "--concurrency", "-c",
                                    help="Deployments run at once."),
    name: str = typer.Option("", "--name", envvar="GOLIVE_AGENT_NAME",
                             help="The agent's name (default: <host>-<zone>)."),
) -> None:
    """Run a Celery worker that executes the deployments of one zone (GOLIVE_TASKS=celery,
    GOLIVE_BROKER_URL, GOLIVE_DATABASE_URL and GOLIVE_SECRET_KEY as the server's; its own
    GOLIVE_HOME). Stop it with Ctrl-C or SIGTERM: running deployments finish first."""
    if ctx.invoked_subcommand is not None:
        return
    local_only("agent")
    from golive.settings import get_settings
    from golive.worker.agent import AgentOptions, run_agent  # Celery loads only here

    run_agent(get_settings(), AgentOptions(zone=queue, concurrency=concurrency, name=name))


def _work(row: dict[str, Any]) -> str:
    return ", ".join(f"order {w['order']} on {w['stage']} (deployment {w['deployment']}, "
                     f"{w['status']})" for w in row["work"]) or "idle"


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """Every agent: its zone, state (alive, lost, stopped), version and current work."""
    rows = call("agent.list")
    if as_json:
        output.print_json(rows)
        return
    output.table("agents", ["name", "zone", "state", "version", "host", "last heartbeat",
                            "work"],
                 [[r["name"], r["zone"], r["state"], r["version"], r["host"],
                   output.when(r["heartbeat_at"]), _work(r)] for r in rows])
