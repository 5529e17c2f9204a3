"""Agents (``golive agent``): their zone, state, version and current work."""

from __future__ import annotations

from datetime import datetime

from golive.api.schemas.base import Response


class AgentWork(Response):
    """A deployment the agent runs now."""

    deployment: int
    order: int
    stage: str
    status: str


class AgentView(Response):
    name: str
    zone: str
    state: str
    """alive | lost (no heartbeat for three periods) | stopped (it ended cleanly)."""
    version: str
    host: str
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    work: list[AgentWork]
