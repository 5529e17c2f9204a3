"""The board (who serves what on each stage and lane) and the lanes orders hold."""

from __future__ import annotations

from datetime import datetime

from golive.api.schemas.base import Response


class SlotView(Response):
    """One (stage, lane, service) of a project and the order serving it."""

    stage: str
    lane: str
    service: str
    order_id: int | None
    title: str
    branch: str
    commit: str
    since: datetime | None
    note: str
    held_by_order: int | None
    """The order holding the lane (it may differ from the one serving it)."""


class OpenOrderView(Response):
    order_id: int
    title: str
    state: str
    services: list[str]
    main_moved: list[str]
    """``service: main moved by order N (commit)`` for each service whose main moved."""


class BoardView(Response):
    project: str
    stages: list[str]
    slots: list[SlotView]
    open_orders: list[OpenOrderView]


class LaneHoldView(Response):
    stage: str
    lane: str
    order: int
    held_by: str
    since: datetime


class LaneReleased(Response):
    project: str
    stage: str
    lane: str
    order: int
    """The order that held the lane (told in its history)."""
