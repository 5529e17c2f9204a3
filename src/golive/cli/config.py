"""`golive apply`, `golive export` and `golive project ...`.

`apply` reads the file where the command runs and sends its text, with the values of
the ``${VAR}`` it uses from this shell's environment, so a file applies the same way to
the local store and to a server (whose own environment is never read).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from golive.api.schemas.settings import ConfigText
from golive.cli import output
from golive.cli.client import body, call
from golive.config.loader import VARIABLE
from golive.errors import ConfigError

projects = typer.Typer(help="The projects you work on and their settings.",
                       no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")


def read_config(file: Path) -> str:
    """The file's text; ConfigError naming the file when it cannot be read."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", file=str(file)) from None


def variables_of(text: str) -> dict[str, str]:
    """The values of the ``${VAR}`` the text uses that this environment sets (an unset one
    is reported by the apply, with its file, line and field)."""
    names = {match.group(1) for match in VARIABLE.finditer(text)}
    return {name: os.environ[name] for name in sorted(names) if name in os.environ}


def apply(
    file: Path = typer.Option(..., "-f", "--file", help="The golive.yaml to apply."),
    prune: bool = typer.Option(False, "--prune",
                               help="Remove what is in the store but not in the file."),
    as_json: bool = typer.Option(False, "--json", help="Print the changes as JSON."),
) -> None:
    """Create or update hosts, databases, projects, services, members and channels."""
    text = read_config(file)
    data = call("config.apply", body=body(ConfigText, text=text, file_name=str(file),
                                          prune=prune, secrets=variables_of(text)))
    changes = data["changes"]
    if as_json:
        output.print_json(changes)
        return
    for change in changes:
        if change["action"] == "unchanged":
            continue
        note = " (not in the file; --prune removes it)" if change["action"] == "kept" else ""
        output.console.print(f"{change['action']:>9}  {change['kind']} {change['name']}{note}",
                             markup=False)
    counts = Counter(c["action"] for c in changes)
    summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    output.console.print(f"applied {file}: {summary or 'nothing in the file'}", markup=False)


def export(
    out: Path | None = typer.Option(None, "-o", "--output", help="Write to this file."),
    with_secrets: bool = typer.Option(False, "--with-secrets",
                                      help="Write secrets in clear instead of ${...}."),
) -> None:
    """Write the current configuration as golive.yaml."""
    text = call("config.export", secrets=with_secrets)["text"]
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        if with_secrets:
            out.chmod(0o600)
        output.console.print(f"wrote {out}", markup=False)


@projects.command("list")
def project_list(as_json: bool = JSON) -> None:
    """The projects you are a member of (a site admin: all), with your roles."""
    rows = call("project.list")
    if as_json:
        output.print_json(rows)
        return
    output.table("projects", ["name", "stages", "your roles", "services"], [
        [r["name"], " → ".join(r["stages"]), ", ".join(r["roles"]), ", ".join(r["services"])]
        for r in rows])


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _print_settings(settings: dict[str, Any]) -> None:
    lines = [
        f"auto_promote: {_yes(settings['auto_promote'])}   "
        f"auto_release: {_yes(settings['auto_release'])}",
        f"release windows: {', '.join(settings['release_windows']) or 'any time'} "
        f"({settings['release_timezone']})",
        f"freeze: {', '.join(settings['freeze']) or 'none'}",
        f"delete_branch_after_release: {_yes(settings['delete_branch_after_release'])}   "
        f"redeploy_on_push: {_yes(settings['redeploy_on_push'])}",
    ]
    for line in lines:
        output.console.print(line, markup=False)


def _targets(stage: dict[str, Any]) -> str:
    if stage["lanes"]:
        return "; ".join(f"{lane}: {', '.join(hosts)}" for lane, hosts in stage["lanes"].items())
    return ", ".join(stage["hosts"])


@projects.command("show")
def project_show(name: str = typer.Argument(..., help="The project."),
                 as_json: bool = JSON) -> None:
    """A project's stages, settings, services per stage, channels and members (secrets
    masked)."""
    data = call("project.show", project=name)
    if as_json:
        output.print_json(data)
        return
    output.console.print(f"project {data['name']}: {' → '.join(data['stages'])}", markup=False)
    _print_settings(data["settings"])
    output.table("services", ["service", "stage", "mode", "path", "hosts", "database", "batch"],
                 [[s["name"], stage_name, st["mode"], st["path"], _targets(st), st["database"],
                   st["batch"]]
                  for s in data["services"] for stage_name, st in s["stages"].items()])
    output.table("channels", ["name", "type", "language", "events", "webhook", "secret"], [
        [c["name"], c["type"], c["language"], ", ".join(c["events"]) or "all", c["webhook"],
         c["secret"]] for c in data["channels"]])
    output.table("members", ["user", "roles"], [
        [m["user"], ", ".join(m["roles"])] for m in data["members"]])
