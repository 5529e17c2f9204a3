"""Hosts, the SQL ledger and the job ledger: what was checked, executed and created where.

No answer here carries a credential: a host shows how it logs in (``credential``) with
any stored password or key replaced by ``***``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from golive.api.schemas.base import Request, Response

# -- hosts ------------------------------------------------------------------------------


class HostView(Response):
    name: str
    transport: str
    address: str
    port: int
    user: str
    zone: str
    host_key: str
    """The pinned host key's fingerprint; "" before the first contact."""
    credential: str
    """How golive logs in: ``key file PATH``, ``stored key ***``, ``password ***`` or ""."""


class HostCheckView(Response):
    name: str
    reachable: bool
    message: str
    host_key: str
    pinned: bool
    disk: dict[str, str]
    """Deploy path → free space there."""


class HostTrusted(Response):
    name: str
    old_key: str
    """The fingerprint pinned before; "" when none was."""
    new_key: str


# -- SQL --------------------------------------------------------------------------------


class SqlExecutionView(Response):
    database: str
    stage: str
    status: str
    by: str
    at: datetime
    duration_ms: int | None
    rows: int | None
    message: str


class SqlLedgerEntry(Response):
    statement: str
    """``SERVICE:N``, N counted from 1."""
    checksum: str
    text: str
    executions: list[SqlExecutionView]


class SqlResolution(Request):
    """How an ``unknown`` statement is settled: ``executed`` (it took effect) or ``retry``
    (run it again on the next deploy); ``database``: only there."""

    as_: Literal["executed", "retry"] = Field(alias="as")
    database: str = Field(default="", max_length=100)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class SqlResolved(Response):
    order: int
    statement: str
    databases: list[str]
    outcome: str


class SqlApproved(Response):
    order: int
    approved: int
    """How many statements the approval covers."""
    approved_by: str


class SqlScript(Request):
    sql: str = Field(max_length=1_000_000)
    """The service's whole SQL script; statements that ran must stay as they are."""


class SqlReplaced(Response):
    order: int
    service: str
    statements: int


# -- jobs -------------------------------------------------------------------------------


class JobPlacement(Response):
    stage: str
    host: str
    created_at: datetime
    reloaded_at: datetime | None
    created_by_order: int | None


class JobView(Response):
    service: str
    name: str
    kind: str
    spec: dict[str, Any]
    hosts: list[JobPlacement]


class JobList(Request):
    jobs: list[dict[str, Any]] = Field(max_length=200)
    """Jobs as in a job file: ``name``, ``kind`` and the kind's fields."""


class JobsSet(Response):
    order: int
    service: str
    jobs: int
    """How many jobs the service has in the order now."""


class JobRemoved(Response):
    order: int
    service: str
    job: str
