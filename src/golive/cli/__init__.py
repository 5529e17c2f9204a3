"""The `golive` command (Typer + Rich)."""
