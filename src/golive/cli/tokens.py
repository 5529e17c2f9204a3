"""`golive token ...`: the caller's API tokens (for GOLIVE_TOKEN, scripts and CI).

A token is printed once, by `token create`; golive keeps only its hash, so a lost token
is revoked and replaced, never shown again.
"""

from __future__ import annotations

from typing import Any

import typer

from golive.api.schemas.people import TokenRequest
from golive.cli import output
from golive.cli.client import body, call

app = typer.Typer(help="Create, list and revoke your API tokens.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")
DAY = "%Y-%m-%d"


@app.command()
def create(
    name: str = typer.Argument(..., help="What the token is for (e.g. ci, laptop)."),
    expires_days: int | None = typer.Option(None, "--expires-days",
                                            help="Expire after N days (default: never)."),
    as_json: bool = JSON,
) -> None:
    """Create an API token for yourself; it is printed now and never again."""
    data = call("token.create", body=body(TokenRequest, name=name,
                                          expires_in_days=expires_days))
    if as_json:
        output.print_json(data)
        return
    expires = output.when(data["expires_at"]) or "never"
    output.console.print(f"token {data['id']} ({data['name']}), expires: {expires}",
                         markup=False)
    typer.echo(data["token"])  # never wrapped by the terminal's width
    output.console.print("Shown only now: golive keeps only its hash. Store it (e.g. as "
                         "GOLIVE_TOKEN).", markup=False)


def _state(row: dict[str, Any]) -> str:
    return "revoked " + output.when(row["revoked_at"], DAY) if row["revoked"] else "active"


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """Your API tokens: their names, prefixes and dates (never the tokens)."""
    rows = call("token.list")
    if as_json:
        output.print_json(rows)
        return
    output.table("API tokens", ["id", "name", "prefix", "created", "expires", "last used",
                                "state"], [
        [r["id"], r["name"], r["prefix"] + "…", output.when(r["created_at"], DAY),
         output.when(r["expires_at"], DAY) or "never", output.when(r["last_used_at"], DAY),
         _state(r)]
        for r in rows])


@app.command()
def revoke(token_id: int = typer.Argument(..., help="The token's id (`golive token list`)."),
           as_json: bool = JSON) -> None:
    """Revoke one of your tokens (a site admin: anyone's); it stops working at once."""
    data = call("token.revoke", token_id=token_id)
    if as_json:
        output.print_json(data)
        return
    output.console.print(f"token {data['id']} ({data['name']}) revoked", markup=False)
