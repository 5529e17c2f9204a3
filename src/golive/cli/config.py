"""`golive apply` and `golive export`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from golive.cli import output
from golive.cli.context import unit_of_work
from golive.services.configuration import apply_file, export_text


def apply(
    file: Path = typer.Option(..., "-f", "--file", help="The golive.yaml to apply."),
    prune: bool = typer.Option(False, "--prune",
                               help="Remove what is in the store but not in the file."),
    as_json: bool = typer.Option(False, "--json", help="Print the changes as JSON."),
) -> None:
    """Create or update hosts, databases, projects, services, members and channels."""
    with unit_of_work() as work:
        report = apply_file(work.session, work.runtime.box, work.user, file, prune=prune)
    if as_json:
        output.print_json([{"kind": c.kind, "name": c.name, "action": c.action}
                           for c in report.changes])
        return
    for change in report.changes:
        if change.action == "unchanged":
            continue
        note = " (not in the file; --prune removes it)" if change.action == "kept" else ""
        output.console.print(f"{change.action:>9}  {change.kind} {change.name}{note}",
                             markup=False)
    counts = Counter(c.action for c in report.changes)
    summary = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    output.console.print(f"applied {file}: {summary or 'nothing in the file'}", markup=False)


def export(
    out: Path | None = typer.Option(None, "-o", "--output", help="Write to this file."),
    with_secrets: bool = typer.Option(False, "--with-secrets",
                                      help="Write secrets in clear instead of ${...}."),
) -> None:
    """Write the current configuration as golive.yaml."""
    with unit_of_work() as work:
        text = export_text(work.session, work.runtime.box, work.user, with_secrets=with_secrets)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        if with_secrets:
            out.chmod(0o600)
        output.console.print(f"wrote {out}", markup=False)
