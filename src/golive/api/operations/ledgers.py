"""Hosts (list, check, trust a key), an order's SQL ledger and what people do with it
(resolve, approve, edit), and its jobs with the job ledger.

Every answer is built from the store here so that ``golive host|sql|order job ...`` print
the same thing locally and through a server. A host's password or private key never
leaves: ``credential`` says which kind it logs in with, masked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from golive.adapters.transport.ssh import fingerprint
from golive.api.registry import Work, operation
from golive.api.schemas.ledgers import (
    HostCheckView,
    HostTrusted,
    HostView,
    JobList,
    JobRemoved,
    JobsSet,
    JobView,
    SqlApproved,
    SqlLedgerEntry,
    SqlReplaced,
    SqlResolution,
    SqlResolved,
    SqlScript,
)
from golive.domain.jobs import parse_jobs
from golive.domain.permissions import Permission
from golive.domain.secrets import MASK
from golive.errors import InputError
from golive.services import hosts as host_service
from golive.services import sqlops
from golive.services.orders import readable_order, remove_job, set_jobs
from golive.services.users import require
from golive.store.models import Host, JobLedger, OrderItem, SqlExecution, TargetDatabase

# -- hosts ------------------------------------------------------------------------------


def credential(host: Host) -> str:
    """How the host logs in, naming no secret: a key file's path is not one, a stored
    password or private key is shown as ``***``."""
    if host.private_key_enc:
        return f"stored key {MASK}"
    if host.password_enc:
        return f"password {MASK}"
    return f"key file {host.key_path}" if host.key_path else ""


def host_view(host: Host) -> dict[str, Any]:
    return {"name": host.name, "transport": host.transport, "address": host.address,
            "port": host.port, "user": host.user, "zone": host.zone,
            "host_key": fingerprint(host.host_key) if host.host_key else "",
            "credential": credential(host)}


@operation("host.list", "GET", "/hosts", list[HostView])
def list_hosts(work: Work) -> list[dict[str, Any]]:
    """Every host by name, with the fingerprint of its pinned host key."""
    return [host_view(h) for h in work.session.scalars(select(Host).order_by(Host.name))]


@operation("host.check", "POST", "/hosts/{host}/check", HostCheckView)
def check_host(work: Work, host: str) -> dict[str, Any]:
    """Connect to the host and report reachability, its key and free disk at each deploy
    path (site admin: hosts serve every project, and this logs in to one). An unreachable
    host is an answer (``reachable: false``), not an error."""
    # no permission of its own yet: the host-key one is the site admin's "reach a host"
    require(work.session, work.user, None, Permission.TRUST_HOST_KEY, f"checking host {host}")
    row = host_service.get_host(work.session, host)
    work.session.commit()  # nothing to write: hold no store lock while the host answers
    found = host_service.check_host(work.runtime, work.session, row)
    return {"name": found.name, "reachable": found.reachable, "message": found.message,
            "host_key": found.key, "pinned": found.pinned, "disk": found.disk}


@operation("host.trust", "POST", "/hosts/{host}/trust", HostTrusted)
def trust_host(work: Work, host: str) -> dict[str, Any]:
    """Pin the key the host presents now, after a legitimate change (site admin)."""
    old, new = host_service.trust_host(work.runtime, work.session, work.user, host)
    return {"name": host, "old_key": old, "new_key": new}


# -- SQL --------------------------------------------------------------------------------


def _executions(work: Work, statement_id: int, names: dict[int, str]) -> list[dict[str, Any]]:
    runs = work.session.scalars(select(SqlExecution).where(
        SqlExecution.statement_id == statement_id).order_by(SqlExecution.id))
    return [{"database": names.get(r.database_id, ""), "stage": r.stage, "status": r.status,
             "by": r.executed_by, "at": r.started_at, "duration_ms": r.duration_ms,
             "rows": r.rows_affected, "message": r.message} for r in runs]


@operation("sql.list", "GET", "/orders/{number}/sql", list[SqlLedgerEntry])
def list_sql(work: Work, number: int) -> list[dict[str, Any]]:
    """Each statement of the order and what the ledger says of it on each database."""
    order = readable_order(work.session, number, work.user)
    names = {d.id: d.name for d in work.session.scalars(select(TargetDatabase))}
    return [{"statement": f"{item.service.name}:{stmt.position + 1}",
             "checksum": stmt.checksum, "text": stmt.text,
             "executions": _executions(work, stmt.id, names)}
            for item in order.items for stmt in item.statements]


@operation("sql.resolve", "POST", "/orders/{number}/sql/{statement}/resolve", SqlResolved)
def resolve_sql(work: Work, number: int, statement: str, body: SqlResolution
                ) -> dict[str, Any]:
    """Settle a statement (``SERVICE:N``) left unknown by a run that died (owner or
    releaser)."""
    done = sqlops.resolve(work.session, number, statement, body.as_, work.user,
                          body.database)
    return {"order": number, "statement": done.statement, "databases": done.databases,
            "outcome": done.outcome}


@operation("order.approve_sql", "POST", "/orders/{number}/approve-sql", SqlApproved)
def approve_sql(work: Work, number: int) -> dict[str, Any]:
    """Approve the order's SQL past the review rules (owner or releaser)."""
    order = sqlops.approve_sql(work.session, number, work.user)
    return {"order": number, "approved": len(order.sql_approved_checksums),
            "approved_by": order.sql_approved_by}


@operation("order.set_sql", "PUT", "/orders/{number}/sql/{service}", SqlReplaced)
def set_sql(work: Work, number: int, service: str, body: SqlScript) -> dict[str, Any]:
    """Replace a service's SQL in the order: statements that ran must stay; add new ones."""
    count = sqlops.replace_sql(work.session, number, service, body.sql, work.user)
    return {"order": number, "service": service, "statements": count}


# -- jobs -------------------------------------------------------------------------------


def _placements(work: Work, item: OrderItem, job_name: str) -> list[dict[str, Any]]:
    found = work.session.execute(
        select(JobLedger, Host.name).join(Host, Host.id == JobLedger.host_id)
        .where(JobLedger.service_id == item.service_id, JobLedger.job_name == job_name)).all()
    return [{"stage": row.stage, "host": host, "created_at": row.created_at,
             "reloaded_at": row.reloaded_at, "created_by_order": row.created_by_order_id}
            for row, host in found]


@operation("job.list", "GET", "/orders/{number}/jobs", list[JobView])
def list_jobs(work: Work, number: int) -> list[dict[str, Any]]:
    """The order's jobs, and where the job ledger says each was created."""
    order = readable_order(work.session, number, work.user)
    return [{"service": item.service.name, "name": job.name, "kind": job.kind,
             "spec": job.spec, "hosts": _placements(work, item, job.name)}
            for item in order.items for job in item.jobs]


@operation("job.add", "PUT", "/orders/{number}/jobs/{service}", JobsSet)
def add_jobs(work: Work, number: int, service: str, body: JobList) -> dict[str, Any]:
    """Add jobs to a service of the order, or change them (by name)."""
    try:
        jobs = parse_jobs(body.jobs, "body")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    item = set_jobs(work.session, number, service, jobs, work.user)
    return {"order": number, "service": service, "jobs": len(item.jobs)}


@operation("job.remove", "DELETE", "/orders/{number}/jobs/{service}/{job}", JobRemoved)
def remove_one_job(work: Work, number: int, service: str, job: str) -> dict[str, Any]:
    """Take a job out of the order; job hosts keep it until a deploy that prunes jobs."""
    remove_job(work.session, number, service, job, work.user)
    return {"order": number, "service": service, "job": job}
