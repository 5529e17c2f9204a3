"""Drafting an order: a service's remote branches, the review of SQL before it is filed,
and the change of an order not deployed yet."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from golive.api.schemas.base import Request, Response


class BranchList(Response):
    project: str
    service: str
    repo: str
    """The repository's URL, its password masked."""
    branches: list[str]


class SqlToReview(Request):
    project: str = Field(min_length=1, max_length=100)
    service: str = Field(min_length=1, max_length=100)
    sql: str = Field(default="", max_length=1_000_000)


class ReviewFinding(Response):
    statement: int
    """1-based, as ``SERVICE:N`` names statements."""
    rule: str
    severity: str
    """``refuse`` (needs an owner's or releaser's approval before it runs) or ``warn``."""
    message_en: str
    message_zh: str


class SqlReview(Response):
    project: str
    service: str
    statements: int
    findings: list[ReviewFinding]


class ItemChange(Request):
    service: str = Field(min_length=1, max_length=100)
    branch: str = Field(min_length=1, max_length=255)
    sql: str | None = Field(default=None, max_length=1_000_000)
    """The service's whole SQL; left out (null): kept as it is."""
    jobs: list[dict[str, Any]] | None = Field(default=None, max_length=200)
    """The service's whole job list; left out (null): kept as it is."""


class OrderChange(Request):
    title: str | None = Field(default=None, max_length=500)
    items: list[ItemChange] | None = Field(default=None, min_length=1, max_length=100)
    """The order's services as they should be: those left out are removed."""


class DraftItem(Response):
    service: str
    branch: str
    sql: str
    """The service's statements as one script that splits back into them."""
    jobs: list[dict[str, Any]]
    """Each job as ``order create --job`` and ``order.update`` take it: name, kind, fields."""


class OrderDraft(Response):
    """An order as its edit form shows it."""

    id: int
    project: str
    title: str
    state: str
    editable: bool
    """Not deployed yet: its services, branches and title may change (``order.update``)."""
    items: list[DraftItem]
