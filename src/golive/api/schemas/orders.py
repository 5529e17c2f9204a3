"""Orders: filing one, its summary in lists, its detail, its history, a transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from golive.api.schemas.base import Request, Response

# Names and branches are checked by the services (the same words for the CLI and the API)


class NewItem(Request):
    service: str = Field(min_length=1, max_length=100)
    branch: str = Field(min_length=1, max_length=255)
    sql: str = Field(default="", max_length=1_000_000)
    transaction: bool | None = None
    """False: run the SQL statement by statement (PostgreSQL runs it in one transaction)."""
    jobs: list[dict[str, Any]] = Field(default_factory=list, max_length=200)


class NewOrder(Request):
    project: str = Field(min_length=1, max_length=100)
    title: str = Field(default="", max_length=500)
    items: list[NewItem] = Field(min_length=1, max_length=100)


class Reason(Request):
    reason: str = Field(default="", max_length=2000)


class RequiredReason(Request):
    reason: str = Field(min_length=1, max_length=2000)


class OrderSummary(Response):
    id: int
    project: str
    title: str
    state: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    services: list[str]


class Statement(Response):
    position: int
    checksum: str
    text: str


class Job(Response):
    name: str
    kind: str
    spec: dict[str, Any]


class Item(Response):
    service: str
    branch: str
    statements: list[Statement]
    jobs: list[Job]


class HistoryEntry(Response):
    at: datetime
    actor: str
    action: str
    from_: str = Field(alias="from")
    to: str
    reason: str

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class OrderDetail(OrderSummary):
    items: list[Item]
    history: list[HistoryEntry]


class Moved(Response):
    """An order after a transition: its new state, and what the project's settings
    started after it (auto_promote after a pass)."""

    order: int
    action: str
    state: str
    message: str = ""
    deployment: int | None = None
    deployment_queued: bool = False
