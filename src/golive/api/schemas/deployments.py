"""Deployments: asking for one (deploy, release, rollback), what one is and did (its view,
steps and log), and the plan a deploy would carry out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from golive.api.schemas.base import Request, Response

ENDED = ("succeeded", "failed", "interrupted", "cancelled", "abandoned")
"""The statuses a deployment does not leave by itself: following it stops there
(``interrupted`` moves again only when someone resumes it, as a new run)."""

MAX_WAIT = 900.0
"""Seconds a request may wait for a lock: the remote CLI waits that long for an answer."""

HostName = Annotated[str, Field(min_length=1, max_length=100)]


class DeployRequest(Request):
    stage: str | None = Field(default=None, max_length=100)
    """None: the order's next stage."""
    full: bool = False
    """Redeploy every service, changed or not (default: iterative)."""
    lane: str = Field(default="", max_length=100)
    hosts: list[HostName] = Field(default_factory=list, max_length=1000)
    """A canary: only these hosts; the order's state does not move."""
    pause_after_batch: bool = False
    prune_jobs: bool = False
    wait: float = Field(default=0.0, ge=0.0, le=MAX_WAIT)
    """Seconds to wait for another deployment of the same service, stage and lane."""
    take_over: bool = False
    full_transfer: bool = False
    """Send the whole archive to every host, not only the files that changed."""
    resume: bool = True
    """Resume the stage's interrupted deployment (default), or abandon it for a new one."""


class ReleaseRequest(Request):
    full: bool = False
    hosts: list[HostName] = Field(default_factory=list, max_length=1000)
    pause_after_batch: bool = False
    prune_jobs: bool = False
    wait: float = Field(default=0.0, ge=0.0, le=MAX_WAIT)
    accept_unverified: bool = False
    """Release although main has commits the stage before did not verify (releaser)."""
    when_open: bool = False
    """Outside the release windows: queue the release for the next window."""
    full_transfer: bool = False
    """Send the whole archive to every host, not only the files that changed."""


class RollbackRequest(Request):
    stage: str | None = Field(default=None, max_length=100)
    to: str = Field(default="", max_length=100)
    """A kept release id (default: the previous one)."""
    wait: float = Field(default=0.0, ge=0.0, le=MAX_WAIT)


class DeploymentView(Response):
    """One deployment: the `deploy|release|rollback --json` fields, and the order's state."""

    id: int
    order: int
    stage: str
    lane: str
    kind: str
    """iterative | full | rollback"""
    status: str
    """queued | pending | running | paused | succeeded | failed | interrupted | abandoned"""
    action: str
    requested_by: str
    policy: str
    release_id: str
    resumes: int
    not_before: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    order_state: str
    zone: str = ""
    """The network zone whose agents run it ("": the default zone)."""
    agent: str = ""
    """The agent that ran it last ("" when the server or the CLI ran it)."""


class Step(Response):
    """Progress of one step, per service and (when it runs on one) host."""

    service: str
    host: str
    step: str
    status: str
    message: str
    started_at: datetime | None
    finished_at: datetime | None


class DeploymentDetail(DeploymentView):
    only_hosts: list[str]
    pause_after_batch: bool
    batches_released: int
    steps: list[Step]


class BatchesResumed(Response):
    order: int
    deployment: int
    batches_released: int


class LogLineView(Response):
    at: datetime
    level: str
    service: str
    host: str
    text: str


class DeploymentLog(Response):
    deployment: int
    lines: list[LogLineView]


class ReviewNoteView(Response):
    rule: str
    severity: str
    message_en: str
    message_zh: str
    approved: bool


class StatementPlanView(Response):
    position: int
    checksum: str
    text: str
    action: str
    """run | skip | blocked"""
    status: str
    review: list[ReviewNoteView]


class TransferPlanView(Response):
    """What phase one would send an artifact service's hosts (``domain.plan.TransferPlan``):
    an estimate; each host's own current release decides on the day."""

    method: str
    """delta | full"""
    reason: str
    previous_release: str
    hosts: int
    full_bytes: int | None
    delta_bytes: int | None
    bytes_total: int | None
    full_bytes_total: int | None
    files_sent: int | None
    files_linked: int | None
    files_copied: int | None
    files_removed: int | None


class ServicePlanView(Response):
    service: str
    mode: str
    action: str
    """deploy | unchanged"""
    branch: str
    old_commit: str
    branch_head: str
    main_head: str
    hosts: list[str]
    batches: list[list[str]]
    database: str
    statements: list[StatementPlanView]
    transfer: TransferPlanView | None = None
    """Artifact services that deploy: the bytes this deploy sends (absent otherwise)."""

    @model_serializer(mode="wrap")
    def _without_absent_transfer(self, handler: SerializerFunctionWrapHandler
                                 ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("transfer") is None:
            data.pop("transfer", None)  # as ``Plan.to_dict()`` has it
        return data


class JobPlanView(Response):
    service: str
    host: str
    job: str
    kind: str
    action: str


class PlanView(Response):
    """``domain.plan.Plan.to_dict()``, and the language the caller reads review notes in."""

    order_id: int
    stage: str
    kind: str
    services: list[ServicePlanView]
    jobs: list[JobPlanView]
    lane: str
    resumes: int
    finished_steps: list[str]
    language: str
    """The acting user's language: show ``message_zh`` for ``zh_CN``, else ``message_en``."""
