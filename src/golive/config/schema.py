"""The schema of golive.yaml (DESIGN §9) as pydantic models.

Cross references (a stage naming an undefined host, database or stage) are checked
in ``references.py``, where the store's hosts and databases are known too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from golive.domain import messages
from golive.domain import windows as windows_rules
from golive.domain.names import name_problem
from golive.domain.zones import zone_problem

DEFAULT_STAGES = ["test", "staging", "prod"]
CHANNEL_SECRET_FIELDS = ("webhook", "secret", "smtp_password")
INT_MAX = 2**31 - 1  # the store's integer columns hold no more


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _valid_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _valid_zone(value: str) -> str:
    problem = zone_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class HostSpec(Spec):
    name: str
    transport: Literal["ssh", "local"] = "ssh"
    address: str = Field(default="", max_length=255)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(default="", max_length=100)
    key: str = Field(default="", max_length=500)
    password: str = ""
    private_key: str = ""
    root: str = Field(default="", max_length=500)
    proxy_jump: str = Field(default="", max_length=255)
    zone: str = Field(default="", max_length=100)
    labels: dict[str, str] = Field(default_factory=dict)

    _name = field_validator("name")(_valid_name)
    _zone = field_validator("zone")(_valid_zone)

    @model_validator(mode="after")
    def _transport_fields(self) -> HostSpec:
        if self.transport == "ssh" and not self.address:
            raise ValueError("an ssh host needs an address")
        if self.transport == "local" and not self.root:
            raise ValueError("a local host needs a root directory")
        return self


class DatabaseSpec(Spec):
    name: str
    url: str = Field(max_length=1000)
    statement_timeout: int = Field(default=0, ge=0, le=86_400)

    _name = field_validator("name")(_valid_name)

    @field_validator("url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        scheme = url.split("://", 1)[0]
        if scheme.split("+", 1)[0] not in ("mysql", "mariadb", "postgresql", "sqlite"):
            raise ValueError(
                "the URL must start with mysql+pymysql://, postgresql+psycopg:// or sqlite://"
            )
        return url


class LaneSpec(Spec):
    hosts: list[str] = Field(min_length=1)


class HealthCheckSpec(Spec):
    http: str = ""
    command: str = ""
    timeout: int = Field(default=10, ge=1)
    retries: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _one_check(self) -> HealthCheckSpec:
        if bool(self.http) == bool(self.command):
            raise ValueError("a health check needs either http or command")
        return self


class StageSpec(Spec):
    mode: Literal["artifact", "checkout"] = "artifact"
    path: str = Field(max_length=500)
    hosts: list[str] = Field(default_factory=list)
    lanes: dict[str, LaneSpec] = Field(default_factory=dict)
    database: str = ""
    job_hosts: list[str] = Field(default_factory=list)
    batch: int | str = 0
    parallel: int = Field(default=20, ge=1, le=500)
    keep_releases: int = Field(default=5, ge=1, le=INT_MAX)
    zone: str = Field(default="", max_length=100)
    """The network zone whose agents deploy it (GOLIVE_TASKS=celery); default: its hosts'."""

    _zone = field_validator("zone")(_valid_zone)

    @field_validator("batch")
    @classmethod
    def _batch(cls, batch: int | str) -> int | str:
        if isinstance(batch, int):
            if not 0 <= batch <= 10_000:
                raise ValueError("batch must be between 0 (all at once) and 10000")
            return batch
        text = batch.strip()
        if text.isdigit():
            return cls._batch(int(text))
        if text.endswith("%") and text[:-1].isdigit() and 1 <= int(text[:-1]) <= 100:
            return text
        raise ValueError("batch is a number of hosts or a percentage like 25%")

    @model_validator(mode="after")
    def _hosts_or_lanes(self) -> StageSpec:
        if self.hosts and self.lanes:
            raise ValueError("a stage has either hosts or lanes, not both")
        if not self.hosts and not self.lanes:
            raise ValueError("a stage needs hosts or lanes")
        for lane in self.lanes:
            _valid_name(lane)
        return self


class ServiceSpec(Spec):
    name: str
    repo: str = Field(max_length=1000)
    main_branch: str = Field(default="main", max_length=255)
    build: str = ""
    build_timeout: int = Field(default=600, ge=1, le=INT_MAX)
    pack: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    shared: list[str] = Field(default_factory=list)
    post_deploy: list[str] = Field(default_factory=list)
    rollback_hooks: list[str] = Field(default_factory=list)
    health_check: HealthCheckSpec | None = None
    stages: dict[str, StageSpec] = Field(default_factory=dict)

    _name = field_validator("name")(_valid_name)


class ChannelSpec(Spec):
    type: Literal["wecom", "dingtalk", "feishu", "slack", "webhook", "email"]
    name: str = Field(default="", max_length=100)
    language: Literal["zh_CN", "en"] = "en"
    events: list[str] = Field(default_factory=list)
    webhook: str = ""
    secret: str = ""
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    mail_from: str = ""
    to: list[str] = Field(default_factory=list)

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        unknown = [e for e in events if e not in messages.EVENTS]
        if unknown:
            raise ValueError(f"unknown event {', '.join(unknown)}; events are: "
                             f"{', '.join(messages.EVENTS)}")
        return events

    @model_validator(mode="after")
    def _target(self) -> ChannelSpec:
        if self.type == "email" and not (self.smtp_host and self.to):
            raise ValueError("an email channel needs smtp_host and to")
        if self.type != "email" and not self.webhook:
            raise ValueError(f"a {self.type} channel needs a webhook URL")
        return self


class MemberSpec(Spec):
    user: str
    roles: list[Literal["owner", "developer", "tester", "releaser"]] = Field(min_length=1)

    _user = field_validator("user")(_valid_name)


class ProjectSpec(Spec):
    name: str
    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES), min_length=1)
    auto_promote: bool = False
    auto_release: bool = False
    release_windows: list[str] = Field(default_factory=list)
    release_timezone: str = Field(default="UTC", max_length=64)
    freeze: list[str] = Field(default_factory=list)
    delete_branch_after_release: bool = False
    redeploy_on_push: bool = False
    push_secret: str = ""
    notify: list[ChannelSpec] = Field(default_factory=list)
    members: list[MemberSpec] = Field(default_factory=list)
    services: list[ServiceSpec] = Field(default_factory=list)

    _name = field_validator("name")(_valid_name)

    @field_validator("release_windows")
    @classmethod
    def _windows(cls, windows: list[str]) -> list[str]:
        return [windows_rules.parse_window(w).text for w in windows]

    @field_validator("freeze")
    @classmethod
    def _freeze(cls, days: list[str]) -> list[str]:
        for day in days:
            windows_rules.parse_freeze(day)
        return [day.strip() for day in days]

    @field_validator("release_timezone")
    @classmethod
    def _timezone(cls, zone: str) -> str:
        windows_rules.ReleasePolicy.from_settings([], [], zone)
        return zone

    @field_validator("stages")
    @classmethod
    def _distinct_stages(cls, stages: list[str]) -> list[str]:
        for stage in stages:
            _valid_name(stage)
        if len(set(stages)) != len(stages):
            raise ValueError("stage names must be distinct")
        return stages


class GoliveConfig(Spec):
    hosts: list[HostSpec] = Field(default_factory=list)
    databases: list[DatabaseSpec] = Field(default_factory=list)
    projects: list[ProjectSpec] = Field(default_factory=list)

