"""People: users and their profiles, project members, API tokens, the audit log.

A token's secret is in :class:`NewToken` only, the answer to creating it; every other
answer about tokens carries its prefix and dates, never the token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from golive.api.schemas.base import Request, Response

# Names, languages and roles are checked by the services, so the CLI and the API refuse
# them with the same words; the schemas bound only sizes.


class NewUser(Request):
    name: str = Field(min_length=1, max_length=100)
    admin: bool = False
    email: str = Field(default="", max_length=200)
    mobile: str = Field(default="", max_length=50)
    display_name: str = Field(default="", max_length=200)
    language: str = Field(default="", max_length=10)


class ProfileChanges(Request):
    """The fields to change; those left out (or null) stay as they are."""

    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=200)
    mobile: str | None = Field(default=None, max_length=50)
    wecom_id: str | None = Field(default=None, max_length=100)
    dingtalk_id: str | None = Field(default=None, max_length=100)
    feishu_id: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=10)


class NewPassword(Request):
    password: str = Field(min_length=1, max_length=1000)


class UserView(Response):
    name: str
    display_name: str
    email: str
    mobile: str
    language: str
    is_admin: bool
    wecom_id: str
    dingtalk_id: str
    feishu_id: str


class NewMember(Request):
    user: str = Field(min_length=1, max_length=100)
    roles: list[str] = Field(min_length=1, max_length=10)


class MemberView(Response):
    """One user of a project and every role they hold in it."""

    user: str
    display_name: str = ""
    roles: list[str]


class TokenRequest(Request):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenView(Response):
    id: int
    name: str
    prefix: str
    """The token's first characters, to tell tokens apart."""
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked: bool = False


class NewToken(Response):
    """The answer to creating a token: the only one that ever holds the token itself."""

    id: int
    name: str
    prefix: str
    token: str
    created_at: datetime
    expires_at: datetime | None


class AuditView(Response):
    id: int
    at: datetime
    user: str
    address: str
    action: str
    target: str
    project: str
    status: int
    detail: dict[str, Any]
    """The request's parameters, secrets masked when they were recorded."""
