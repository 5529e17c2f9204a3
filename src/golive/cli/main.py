"""The `golive` command: sub-commands, the acting user, errors as exit codes.

Exit codes (DESIGN §10): 0 ok, 1 the action failed or was refused, 2 bad usage
or input. A GoliveError prints one line; only a bug prints a traceback.
"""

from __future__ import annotations

import sys

import click
import typer

from golive import __version__
from golive.cli import config, demo, orders, users
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
app.command("apply")(config.apply)
app.command("export")(config.export)
app.command("demo")(demo.demo)


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
    """Run the command line; returns the exit code instead of exiting."""
    STATE.as_user = ""
    try:
        result = app(args=argv, prog_name="golive", standalone_mode=False)
    except GoliveError as exc:
        error(exc.message)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Abort:
        error("aborted")
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
