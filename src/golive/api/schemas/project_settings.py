"""A project's members' roles set or removed, and the project's part of golive.yaml."""

from __future__ import annotations

from pydantic import Field

from golive.api.schemas.base import Request, Response
from golive.api.schemas.settings import MAX_CONFIG_TEXT


class MemberRoles(Request):
    """The roles the member holds from now on (every other role is taken away)."""

    roles: list[str] = Field(min_length=1, max_length=10)


class ProjectExport(Response):
    project: str
    text: str
    """golive.yaml with only this project: secrets as ``${...}``, URL passwords masked."""


class ProjectConfigText(Request):
    """The project's golive.yaml, edited: it may name no other project."""

    text: str = Field(max_length=MAX_CONFIG_TEXT)
    file_name: str = Field(default="golive.yaml", min_length=1, max_length=1000)
    """Named in every error, with the line and the field."""
    secrets: dict[str, str] = Field(default_factory=dict, max_length=1000)
    """Values of ``${VAR}``s; one not given keeps the value stored for it. Named so that
    the audit log masks them."""
