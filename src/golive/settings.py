"""golive's settings, read from the environment (prefix ``GOLIVE_``).

Built by :func:`get_settings` when asked, never at import, so tests and the CLI
can set the environment first.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOLIVE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".golive")
    database_url: str = ""
    secret_key: str = ""
    user: str = ""
    public_url: str = ""
    """Where people reach golive (GOLIVE_PUBLIC_URL): notifications link to order pages."""
    tasks: str = "inline"
    """Who runs deployments for the server (GOLIVE_TASKS): ``inline`` (a thread pool in
    the server process) or ``celery`` (agents)."""
    broker_url: str = ""
    """The Celery broker agents take deployments from (GOLIVE_BROKER_URL, with
    ``GOLIVE_TASKS=celery``): ``redis://...`` or ``amqp://...``."""
    queue_prefix: str = "golive"
    """Names the zone queues ``<prefix>.<zone>`` (GOLIVE_QUEUE_PREFIX), so that several golive
    sites can share one broker."""
    agent_name: str = ""
    """This agent's name (GOLIVE_AGENT_NAME; default: the host name and the zone)."""
    agent_heartbeat: float = Field(default=10.0, gt=0, le=300)
    """Seconds between an agent's heartbeats (GOLIVE_AGENT_HEARTBEAT); an agent silent for
    three of them is lost, and the deployments it ran are interrupted."""
    url: str = ""
    """A golive server (GOLIVE_URL): the CLI then works through its API."""
    token: str = ""
    """The API token the remote CLI sends (GOLIVE_TOKEN)."""

    @property
    def store_url(self) -> str:
        """The store's SQLAlchemy URL: GOLIVE_DATABASE_URL, or a SQLite file in home."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'golive.db'}"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"


def get_settings() -> Settings:
    settings = Settings()
    settings.home = settings.home.expanduser()
    return settings
