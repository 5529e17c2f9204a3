"""`golive demo`: a self-contained tour on the embedded default."""

from __future__ import annotations

import os

import typer

from golive.cli import output
from golive.cli.context import unit_of_work
from golive.services import orders as order_service
from golive.services.configuration import apply_file
from golive.services.demo import FEATURE_BRANCH, build_world
from golive.services.runtime import open_runtime
from golive.services.users import acting_user


def demo(
    no_serve: bool = typer.Option(False, "--no-serve",
                                  help="End after the demo instead of serving the UI."),
) -> None:
    """Build a demo world, apply its golive.yaml and file an order."""
    runtime = open_runtime()
    home = runtime.settings.home
    runtime.close()
    world = build_world(home)
    output.console.print(f"demo world in {world.root}", markup=False)
    with unit_of_work() as work:
        env = {**os.environ, "DEMO_DIR": str(world.root)}
        report = apply_file(work.session, work.runtime.box, work.user, world.config_file,
                            env=env)
        created = sum(1 for c in report.changes if c.action in ("created", "updated"))
        output.console.print(f"applied {world.config_file}: {created} change(s)", markup=False)
    with unit_of_work() as work:
        alice = acting_user(work.session, "alice")
        items = [
            order_service.ItemRequest("web", FEATURE_BRANCH),
            order_service.ItemRequest("orders", FEATURE_BRANCH,
                                      world.sql_file.read_text(encoding="utf-8")),
        ]
        order = order_service.create_order(work.session, alice, "demo-shop", items,
                                           "Coupons for the shop")
        order = order_service.transition(work.session, order.id, "submit", alice)
        number, state = order.id, order.state
        statements = sum(len(i.statements) for i in order.items)
    output.console.print(
        f"order {number} filed by alice with {statements} SQL statement(s): {state}",
        markup=False)
    output.console.print(f"next: golive order show {number}", markup=False)
    if not no_serve:
        output.console.print("(the web UI is not built yet; the demo ends here)", markup=False)
