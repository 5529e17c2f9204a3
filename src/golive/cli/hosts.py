"""`golive host list|check|trust`."""

from __future__ import annotations

from typing import Any

import typer

from golive.cli import output
from golive.cli.client import call
from golive.errors import GoliveError

app = typer.Typer(help="Hosts: list them, check them, accept a changed host key.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """List hosts with their pinned host key."""
    rows = call("host.list")
    if as_json:
        output.print_json(rows)
        return
    output.table("hosts", ["name", "transport", "address", "user", "host key"], [
        [r["name"], r["transport"], f"{r['address']}:{r['port']}" if r["address"] else "",
         r["user"], r["host_key"] or "(not pinned yet)"] for r in rows])


@app.command()
def check(
    name: str = typer.Argument("", help="One host (default: every host)."),
    as_json: bool = JSON,
) -> None:
    """Connect to hosts and report reachability, host key and free disk at deploy paths."""
    names = [name] if name else [h["name"] for h in call("host.list")]
    data: list[dict[str, Any]] = [call("host.check", host=n) for n in names]
    if as_json:
        output.print_json(data)
    else:
        output.table("host check", ["host", "reachable", "host key", "disk", "problem"], [
            [r["name"], "yes" if r["reachable"] else "NO", r["host_key"],
             "; ".join(f"{p}: {f}" for p, f in r["disk"].items()), r["message"]] for r in data])
    if not all(r["reachable"] for r in data):
        raise GoliveError(", ".join(r["message"] for r in data if not r["reachable"]))


@app.command()
def trust(name: str = typer.Argument(..., help="The host.")) -> None:
    """Accept the host key the host presents now (after a legitimate change)."""
    data = call("host.trust", host=name)
    old, new = data["old_key"], data["new_key"]
    if old and old != new:
        output.console.print(f"host {name}: key changed from {old} to {new}; accepted",
                             markup=False)
    else:
        output.console.print(f"host {name}: key {new} pinned", markup=False)
