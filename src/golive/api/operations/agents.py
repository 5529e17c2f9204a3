"""Agents: the Celery workers that run deployments per network zone.

Who may: any logged-in user sees the agents (which zone is served, what runs where);
starting and stopping them is done on their machines (``golive agent``), not here.
"""

from __future__ import annotations

from typing import Any

from golive.api.registry import Work, operation
from golive.api.schemas.agents import AgentView
from golive.services import agents


@operation("agent.list", "GET", "/agents", list[AgentView])
def list_agents(work: Work) -> list[dict[str, Any]]:
    """Every agent: its zone, state (alive, lost, stopped), version and current work."""
    return agents.list_agents(work.session)
