"""`golive demo`: the whole product on the embedded default, in well under a minute.

It builds a scratch world (``services/demo.py``), applies its golive.yaml, and
takes an order through test → staging → prod with the demo's people acting at
each gate, including an iterative redeploy after a fix; then prints a summary.
"""

from __future__ import annotations

import os
import secrets
import time

import typer
from sqlalchemy import func, select

from golive.cli import output
from golive.cli.context import unit_of_work
from golive.cli.follow import follow
from golive.services import accounts
from golive.services import orders as order_service
from golive.services.configuration import apply_file
from golive.services.demo import FEATURE_BRANCH, DemoWorld, build_world, commit_fix
from golive.services.requests import request_deployment
from golive.services.runtime import Runtime, open_runtime
from golive.services.users import acting_user
from golive.store.models import CommitLedger, Deployment, Order, Service, SqlExecution
from golive.worker.inline import InlineRunner

PROJECT = "demo-shop"


def _say(text: str) -> None:
    output.console.print(f"\n[bold cyan]▶ {text}[/]")


def _act(number: int, who: str, action: str, reason: str = "") -> str:
    with unit_of_work() as work:
        user = acting_user(work.session, who)
        return order_service.transition(work.session, number, action, user, reason=reason).state


def _deploy(runtime: Runtime, runner: InlineRunner, number: int, who: str,
            action: str = "deploy") -> str:
    with unit_of_work() as work:
        user = acting_user(work.session, who)
        deployment_id = request_deployment(work.session, number, user, action=action).id
    future = runner.submit(deployment_id)
    follow(runtime, deployment_id, done=future.done, live=False, steps=False)
    future.result()
    with runtime.store.session() as session:
        deployment = session.get_one(Deployment, deployment_id)
        state = session.get_one(Order, number).state
        if deployment.status != "succeeded":
            raise typer.Exit(1)
    output.console.print(f"order {number} is now [bold]{state}[/]")
    return state


def _file_order(world: DemoWorld) -> int:
    with unit_of_work() as work:
        alice = acting_user(work.session, "alice")
        items = [
            order_service.ItemRequest("web", FEATURE_BRANCH),
            order_service.ItemRequest("orders", FEATURE_BRANCH,
                                      world.sql_file.read_text(encoding="utf-8")),
        ]
        order = order_service.create_order(work.session, alice, PROJECT, items,
                                           "Coupons for the shop")
        order_service.transition(work.session, order.id, "submit", alice)
        return order.id


def _summary(runtime: Runtime, number: int, world: DemoWorld) -> None:
    rows = []
    with runtime.store.session() as session:
        order = session.get_one(Order, number)
        for stage in order.project.stages:
            for item in order.items:
                entry = session.scalar(select(CommitLedger).where(
                    CommitLedger.order_id == number, CommitLedger.service_id == item.service_id,
                    CommitLedger.stage == stage))
                ran = session.scalar(select(func.count()).select_from(SqlExecution).where(
                    SqlExecution.order_id == number, SqlExecution.stage == stage,
                    SqlExecution.status == "success",
                    SqlExecution.statement_id.in_([s.id for s in item.statements]))) or 0
                total = len(item.statements)
                rows.append([stage, item.service.name,
                             entry.deployed_commit[:10] if entry else "-",
                             (entry.release_id or "(checkout)") if entry else "-",
                             f"{ran} / {total - ran}" if total else "-"])
        services = {s.name for s in session.scalars(select(Service))}
    output.table(f"order {number}: {order.state}",
                 ["stage", "service", "commit", "release", "SQL run / skipped"], rows)
    current = world.root / "hosts" / "prod-1" / "srv" / "web" / "current"
    if "web" in services:
        output.console.print(f"prod current of web on demo-prod-1: {current} -> "
                             f"{os.readlink(current)}", markup=False)


def demo(
    no_serve: bool = typer.Option(False, "--no-serve",
                                  help="End after the demo instead of serving the UI."),
    port: int = typer.Option(8800, "--port", min=1, max=65535,
                             help="Where the UI is served after the demo (on 127.0.0.1)."),
) -> None:
    """Build a demo world and take an order through test, staging and prod."""
    started = time.monotonic()
    runtime = open_runtime()
    runner = InlineRunner(runtime, workers=1)
    try:
        world = build_world(runtime.settings.home)
        _say(f"a demo world in {world.root}: two repositories, four local hosts, "
             "two SQLite databases")
        with unit_of_work() as work:
            env = {**os.environ, "DEMO_DIR": str(world.root)}
            apply_file(work.session, work.runtime.box, work.user, world.config_file, env=env)
        number = _file_order(world)
        _say(f"alice filed order {number} (web + orders with 2 SQL statements) and submitted it")
        _say("alice deploys it on test")
        _deploy(runtime, runner, number, "alice")
        commit_fix(world, "web")
        _say("alice pushes a fix to web's branch and redeploys: only web moves, no SQL twice")
        _deploy(runtime, runner, number, "alice")
        _say("tom passes test; rita deploys on staging (staging shares prod's database)")
        _act(number, "tom", "pass")
        _deploy(runtime, runner, number, "rita")
        _say("tom passes staging; rita releases to prod, two hosts one at a time")
        _act(number, "tom", "pass")
        _deploy(runtime, runner, number, "rita", action="release")
        _say("summary")
        _summary(runtime, number, world)
    finally:
        runner.shutdown()
        runtime.close()
    output.console.print(f"demo finished in {time.monotonic() - started:.1f}s; "
                         f"try: golive order show {number}", markup=False)
    if not no_serve:
        _serve(number, port)


DEMO_PEOPLE = ("alice", "tom", "rita")


def _serve(number: int, port: int) -> None:
    """The web UI on the demo's data, on this machine only; the demo's people get
    passwords printed here (generated: a demo is no reason for a known password)."""
    import uvicorn  # here: only serving needs it

    from golive.api.app import create_app

    with unit_of_work() as work:
        passwords = {name: secrets.token_urlsafe(9) for name in DEMO_PEOPLE}
        for name, password in passwords.items():
            accounts.set_password(work.session, work.user, name, password)
    url = f"http://127.0.0.1:{port}"
    _say(f"the web UI: {url}/orders/{number} (Ctrl-C ends it)")
    for name, password in passwords.items():
        output.console.print(f"  log in as {name} with the password {password}", markup=False)
    uvicorn.run(create_app(announce=lambda line: output.console.print(line, markup=False)),
                host="127.0.0.1", port=port, log_level="warning", access_log=False)
