"""`golive host list|check|trust`."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from golive.adapters.transport.ssh import fingerprint
from golive.cli import output
from golive.cli.context import unit_of_work
from golive.errors import GoliveError
from golive.services import hosts as host_service
from golive.store.models import Host

app = typer.Typer(help="Hosts: list them, check them, accept a changed host key.",
                  no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """List hosts with their pinned host key."""
    with unit_of_work() as work:
        rows = [{"name": h.name, "transport": h.transport, "address": h.address, "port": h.port,
                 "user": h.user, "zone": h.zone,
                 "host_key": fingerprint(h.host_key) if h.host_key else ""}
                for h in work.session.scalars(select(Host).order_by(Host.name))]
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
    with unit_of_work() as work:
        hosts = ([host_service.get_host(work.session, name)] if name else
                 list(work.session.scalars(select(Host).order_by(Host.name))))
        results = [host_service.check_host(work.runtime, work.session, h) for h in hosts]
    data: list[dict[str, Any]] = [
        {"name": r.name, "reachable": r.reachable, "message": r.message, "host_key": r.key,
         "pinned": r.pinned, "disk": r.disk} for r in results]
    if as_json:
        output.print_json(data)
    else:
        output.table("host check", ["host", "reachable", "host key", "disk", "problem"], [
            [r["name"], "yes" if r["reachable"] else "NO", r["host_key"],
             "; ".join(f"{p}: {f}" for p, f in r["disk"].items()), r["message"]] for r in data])
    if not all(r.reachable for r in results):
        raise GoliveError(", ".join(r.message for r in results if not r.reachable))


@app.command()
def trust(name: str = typer.Argument(..., help="The host.")) -> None:
    """Accept the host key the host presents now (after a legitimate change)."""
    with unit_of_work() as work:
        old, new = host_service.trust_host(work.runtime, work.session, work.user, name)
    if old and old != new:
        output.console.print(f"host {name}: key changed from {old} to {new}; accepted",
                             markup=False)
    else:
        output.console.print(f"host {name}: key {new} pinned", markup=False)
