"""Projects and their settings, target databases, and golive.yaml in and out.

Nothing here carries a secret: a channel's webhook URL and secret, the project's push
secret and a database URL's password are ``***`` (``domain.secrets.MASK``) when set and
"" when not, so a reader can tell configured from missing without seeing the value.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from golive.api.schemas.base import Request, Response
from golive.api.schemas.people import MemberView

MAX_CONFIG_TEXT = 5_000_000


class ProjectSummary(Response):
    name: str
    stages: list[str]
    roles: list[str]
    """The caller's roles in the project (a site admin may hold none)."""
    services: list[str]


class ProjectSettings(Response):
    """The project's settings, named as in golive.yaml."""

    auto_promote: bool
    auto_release: bool
    release_windows: list[str]
    release_timezone: str
    freeze: list[str]
    delete_branch_after_release: bool
    redeploy_on_push: bool
    push_secret: str
    """``***`` when the push webhooks have a secret, "" when not."""


class StageView(Response):
    """How and where a service is deployed on one stage."""

    mode: str
    path: str
    hosts: list[str]
    lanes: dict[str, list[str]]
    """Lane name → its hosts (a stage has hosts or lanes)."""
    database: str
    job_hosts: list[str]
    batch: int | str
    parallel: int
    keep_releases: int


class ServiceView(Response):
    name: str
    repo: str
    main_branch: str
    build: str
    build_timeout: int
    pack: list[str]
    exclude: list[str]
    shared: list[str]
    post_deploy: list[str]
    rollback_hooks: list[str]
    health_check: dict[str, Any] | None
    stages: dict[str, StageView]
    """Stage name → its settings, in the project's stage order."""


class ChannelView(Response):
    name: str
    type: str
    language: str
    events: list[str]
    """The events the channel is told about (empty: all)."""
    webhook: str
    """``***`` when set: a webhook URL carries its token."""
    secret: str
    settings: dict[str, Any]
    """The rest of the channel's settings (e-mail: smtp_host, to, ...), secrets masked."""


class ProjectDetail(Response):
    name: str
    stages: list[str]
    settings: ProjectSettings
    services: list[ServiceView]
    channels: list[ChannelView]
    members: list[MemberView]


class DatabaseView(Response):
    name: str
    url: str
    """The URL with its password masked."""
    statement_timeout: int


class ConfigText(Request):
    """A golive.yaml to apply, as text: the CLI reads the file where it runs and sends it."""

    text: str = Field(max_length=MAX_CONFIG_TEXT)
    file_name: str = Field(default="golive.yaml", min_length=1, max_length=1000)
    """Named in every error, with the line and the field."""
    prune: bool = False
    """Remove what is in the store but not in the file."""
    secrets: dict[str, str] = Field(default_factory=dict, max_length=1000)
    """The values of the ``${VAR}`` the text uses, from the caller's environment (the
    server's own environment is never read). Named so that the audit log masks them."""


class Change(Response):
    kind: str
    name: str
    action: str
    """created, updated, unchanged, kept (in the store, not in the file) or removed."""


class Applied(Response):
    file: str
    changes: list[Change]


class ConfigExport(Response):
    text: str
    """golive.yaml: secrets as ``${...}`` unless asked for in clear (site admin)."""
