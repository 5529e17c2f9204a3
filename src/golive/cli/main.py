"""The `golive` command: sub-commands, the acting user, errors as exit codes.

Exit codes (DESIGN §10): 0 ok, 1 the action failed or was refused, 2 bad usage
or input. A GoliveError prints one line; only a bug prints a traceback.
"""

from __future__ import annotations

import sys

import typer

from golive import __version__
from golive.cli import (
    agent,
    config,
    demo,
    hosts,
    notify,
    orders,
    pipeline,
    server,
    sql,
    tokens,
    users,
)
from golive.cli.context import STATE
from golive.cli.output import error
from golive.errors import GoliveError

app = typer.Typer(
    name="golive",
    help="golive: deploy orders through test, staging and prod.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(orders.app, name="order")
app.add_typer(users.users, name="user")
app.add_typer(users.members, name="member")
app.add_typer(tokens.app, name="token")
app.add_typer(config.projects, name="project")
app.add_typer(hosts.app, name="host")
app.add_typer(sql.app, name="sql")
app.add_typer(pipeline.lanes, name="lane")
app.add_typer(notify.app, name="notify")
app.add_typer(agent.app, name="agent")
app.command("board")(pipeline.board)
app.command("scheduler")(pipeline.scheduler_command)
app.command("apply")(config.apply)
app.command("export")(config.export)
app.command("audit")(users.audit)
app.command("demo")(demo.demo)
app.command("server")(server.server)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"golive {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    as_user: str = typer.Option("", "--as", envvar="GOLIVE_USER",
                                help="Act as this user (default: the first admin)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version."),
) -> None:
    STATE.as_user = as_user


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting.

    Typer's standalone mode handles usage errors (exit 2); golive's own errors
    pass through it and are printed here as one line.
    """
    STATE.as_user = ""
    try:
        app(args=argv, prog_name="golive", standalone_mode=True)
    except GoliveError as exc:
        error(exc.message)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run() -> None:
    sys.exit(main())
