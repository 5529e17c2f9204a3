"""Progress of a running deployment, written to the store as it happens.

Every step change and log line is its own short committed transaction, so the
CLI, the server and other processes see them at once. Secrets are masked in
every line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from golive.store.models import DeploymentStep, Host, LogLine, Service, utcnow
from golive.store.secrets import mask_text


@dataclass
class Reporter:
    sessions: sessionmaker[Session]
    deployment_id: int
    secrets: list[str] = field(default_factory=list)

    def mask(self, text: str) -> str:
        """``text`` as it may be stored or shown: the deployment's secrets masked."""
        return mask_text(text, self.secrets)

    def log(self, text: str, *, service: str = "", host: str = "", level: str = "info") -> None:
        clean = self.mask(text)
        with self.sessions() as session:
            session.add(LogLine(deployment_id=self.deployment_id, level=level, service=service,
                                host=host, text=clean))
            session.commit()

    def start_step(self, name: str, *, service_id: int | None = None,
                   host_id: int | None = None) -> int:
        with self.sessions() as session:
            step = DeploymentStep(deployment_id=self.deployment_id, name=name,
                                  service_id=service_id, host_id=host_id, status="running",
                                  started_at=utcnow())
            session.add(step)
            session.commit()
            return step.id

    def end_step(self, step_id: int, status: str, message: str = "",
                 data: dict[str, Any] | None = None) -> None:
        with self.sessions() as session:
            step = session.get_one(DeploymentStep, step_id)
            step.status, step.finished_at = status, utcnow()
            step.message = mask_text(message, self.secrets)
            step.data = dict(data or {})
            session.commit()


def steps_of(session: Session, deployment_id: int
             ) -> list[tuple[DeploymentStep, str, str]]:
    """The deployment's steps in the order they started, each with its service's and
    host's names ("" where the step runs on none)."""
    found = session.execute(
        select(DeploymentStep, Service.name, Host.name)
        .outerjoin(Service, Service.id == DeploymentStep.service_id)
        .outerjoin(Host, Host.id == DeploymentStep.host_id)
        .where(DeploymentStep.deployment_id == deployment_id).order_by(DeploymentStep.id)
    ).all()
    return [(step, service or "", host or "") for step, service, host in found]
