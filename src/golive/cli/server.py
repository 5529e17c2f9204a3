"""`golive server`: the web UI and API (and, with GOLIVE_TASKS=inline, the worker)."""

from __future__ import annotations

import typer

from golive.cli.client import local_only
from golive.errors import InputError
from golive.settings import get_settings


def server(
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on."),
    port: int = typer.Option(8800, "--port", min=1, max=65535, help="The port."),
) -> None:
    """Serve the API (and the web UI) to the team; deployments run in this process unless
    GOLIVE_TASKS=celery. On the very first start it prints the admin's password once."""
    local_only("server")
    settings = get_settings()
    if settings.tasks not in ("inline", "celery"):
        raise InputError(f"GOLIVE_TASKS is inline or celery, not {settings.tasks!r}")
    if settings.tasks == "celery":
        from golive.worker.celery_app import check_broker

        check_broker(settings)  # refused now rather than at the first deployment
    import uvicorn  # here: the other commands do not need it loaded

    from golive.api.app import create_app

    uvicorn.run(create_app(settings, announce=lambda line: typer.echo(line, err=True)), host=host,
                port=port, log_level="info", proxy_headers=True, access_log=False)
