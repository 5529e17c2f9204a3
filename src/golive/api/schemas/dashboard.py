"""The dashboard (what waits for the caller, their orders, recent deployments, the board),
the actions the caller may take on an order, and the releases a rollback can go back to."""

from __future__ import annotations

from datetime import datetime

from golive.api.schemas.base import Response
from golive.api.schemas.orders import OrderSummary
from golive.api.schemas.pipeline import BoardView


class OfferView(Response):
    """One action the caller may take now (``domain.offers.Offer``)."""

    operation: str
    """The operation to call: ``order.pass``, ``order.deploy``, ``sql.resolve``, ..."""
    stage: str
    kind: str
    """``iterative`` or ``full`` for a deploy or release; "" otherwise."""
    redeploy: bool
    """A deploy again on the stage the order is on, not onto the next one."""
    statement: str
    """The ``SERVICE:N`` a ``sql.resolve`` settles."""
    blocked: str
    """``sql_approval`` or ``sql_unknown`` when the server would refuse it now."""


class WaitingOrder(OrderSummary):
    duties: list[str]
    """test | deploy | release | approve_sql | resolve_sql | resume | submit | fix"""


class RecentDeployment(Response):
    id: int
    order: int
    title: str
    project: str
    stage: str
    kind: str
    action: str
    status: str
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    error: str


class DashboardView(Response):
    waiting: list[WaitingOrder]
    mine: list[OrderSummary]
    deployments: list[RecentDeployment]
    board: list[BoardView]


class KeptReleaseView(Response):
    release_id: str
    deployment: int
    order: int
    """The order whose deployment made it."""
    finished_at: datetime | None
