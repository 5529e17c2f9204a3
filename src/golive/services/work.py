"""What one deployment works on, read from the store once, as plain data.

The engine's threads use these objects, never ORM rows bound to a session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, object_session

from golive.adapters.transport import LocalTransport, Transport
from golive.adapters.transport.ssh import SshTarget, SshTransport
from golive.domain.jobs import JobSpec
from golive.errors import DeployError, InputError, NotFound
from golive.services.lanes import service_lanes
from golive.store.models import Host, Order, ServiceStage, SqlStatement
from golive.store.secrets import SecretBox


@dataclass(frozen=True)
class HostRef:
    id: int
    name: str
    transport: str
    root: str
    address: str
    port: int
    user: str
    key_path: str
    password: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)
    host_key: str = ""
    jump: HostRef | None = None


@dataclass(frozen=True)
class DatabaseRef:
    id: int
    name: str
    url: str = field(repr=False)
    statement_timeout: int = 0


@dataclass(frozen=True)
class StatementRef:
    id: int
    position: int
    text: str
    checksum: str


@dataclass
class ItemWork:
    """One service of the order on the deployment's stage."""

    service_id: int
    service: str
    repo: str
    main_branch: str
    branch: str
    build: str
    build_timeout: int
    pack: list[str]
    exclude: list[str]
    shared: list[str]
    post_deploy: list[str]
    rollback_hooks: list[str]
    health_check: dict[str, Any] | None
    mode: str
    path: str
    batch: str
    parallel: int
    keep_releases: int
    hosts: list[HostRef]
    database: DatabaseRef | None
    statements: list[StatementRef]
    transactional: bool | None = None
    jobs: list[JobSpec] = field(default_factory=list)
    job_hosts: list[HostRef] = field(default_factory=list)
    lane: str = ""
    """The lane deployed on ("" when the service has no lanes on the stage)."""


def host_ref(host: Host, box: SecretBox, jump: HostRef | None = None) -> HostRef:
    return HostRef(
        host.id, host.name, host.transport, host.root, host.address, host.port, host.user,
        host.key_path, box.open(host.password_enc) if host.password_enc else "",
        box.open(host.private_key_enc) if host.private_key_enc else "",
        host.host_key or "", jump,
    )


def resolve_host(session: Session, host: Host, box: SecretBox, depth: int = 0) -> HostRef:
    """``host`` as plain data, with its jump host (``proxy_jump`` names another host)."""
    jump = None
    if host.proxy_jump:
        if depth >= 3:
            raise InputError(f"host {host.name}: jump hosts nest more than 3 deep")
        via = session.scalar(select(Host).where(Host.name == host.proxy_jump))
        if via is None:
            raise NotFound("jump host", host.proxy_jump)
        jump = resolve_host(session, via, box, depth + 1)
    return host_ref(host, box, jump)


def ssh_target(host: HostRef) -> SshTarget:
    return SshTarget(
        name=host.name, address=host.address, port=host.port, user=host.user,
        key_path=host.key_path, private_key=host.private_key, password=host.password,
        host_key=host.host_key, jump=ssh_target(host.jump) if host.jump else None,
    )


def open_transport(host: HostRef) -> Transport:
    """A transport to ``host`` (not yet connected); its errors name the host."""
    if host.transport == "local":
        return LocalTransport(host.name, Path(host.root))
    if host.transport == "ssh":
        return SshTransport(ssh_target(host))
    raise DeployError(f"host {host.name}: unknown transport {host.transport}", host=host.name)


def _stage_of(item_service_stages: list[ServiceStage], stage: str) -> ServiceStage | None:
    return next((s for s in item_service_stages if s.stage == stage), None)


def _hosts(setting: ServiceStage, lane: str, box: SecretBox) -> tuple[list[HostRef], str]:
    """The deploy hosts of the service on the stage (of ``lane`` when it has lanes: the
    first lane when none is given, for a plan), and the lane used."""
    deploy = [sh for sh in setting.hosts if sh.kind == "deploy"]
    lanes = service_lanes(setting)
    chosen = ""
    if lanes:
        chosen = lane or lanes[0]
        if chosen not in lanes:
            raise InputError(f"lane {chosen} is not one of {', '.join(lanes)}")
        deploy = [sh for sh in deploy if sh.lane == chosen]
    session = object_session(setting)
    assert session is not None
    return [resolve_host(session, sh.host, box) for sh in deploy], chosen


def _job_hosts(setting: ServiceStage, box: SecretBox) -> list[HostRef]:
    session = object_session(setting)
    assert session is not None
    return [resolve_host(session, sh.host, box) for sh in setting.hosts if sh.kind == "job"]


def _with_job_hosts(hosts: list[HostRef], job_hosts: list[HostRef]) -> list[HostRef]:
    """Job hosts receive the release too (DESIGN §5): the deploy targets, then job-only hosts."""
    names = {h.name for h in hosts}
    return hosts + [h for h in job_hosts if h.name not in names]


def load_items(order: Order, stage: str, box: SecretBox, lane: str = "") -> list[ItemWork]:
    """The order's services as they are set up on ``stage``; InputError if one is not."""
    items = []
    for item in order.items:
        svc = item.service
        setting = _stage_of(list(svc.stages), stage)
        if setting is None:
            raise InputError(f"service {svc.name} has no settings for stage {stage}: add "
                             f"services[].stages.{stage} to golive.yaml")
        database = None
        if setting.database is not None:
            database = DatabaseRef(setting.database.id, setting.database.name,
                                   box.open(setting.database.url_enc),
                                   setting.database.statement_timeout)
        statements = [_statement(s) for s in item.statements]
        job_hosts = _job_hosts(setting, box)
        hosts, lane_used = _hosts(setting, lane, box)
        if statements and database is None:
            raise InputError(f"service {svc.name} has SQL in the order but no database on "
                             f"stage {stage}")
        items.append(ItemWork(
            service_id=svc.id, service=svc.name, repo=svc.repo, main_branch=svc.main_branch,
            branch=item.branch, build=svc.build, build_timeout=svc.build_timeout,
            pack=list(svc.pack), exclude=list(svc.exclude), shared=list(svc.shared),
            post_deploy=list(svc.post_deploy), rollback_hooks=list(svc.rollback_hooks),
            health_check=svc.health_check, mode=setting.mode, path=setting.path,
            batch=setting.batch, parallel=setting.parallel,
            keep_releases=setting.keep_releases,
            hosts=_with_job_hosts(hosts, job_hosts), lane=lane_used,
            database=database, statements=statements, transactional=item.transactional,
            jobs=[JobSpec(j.name, j.kind, dict(j.spec)) for j in item.jobs],
            job_hosts=job_hosts,
        ))
    return items


def _statement(row: SqlStatement) -> StatementRef:
    return StatementRef(row.id, row.position, row.text, row.checksum)


def secrets_of(items: list[ItemWork]) -> list[str]:
    """Every secret a deployment could print by accident, for masking its log."""
    found: list[str] = []
    for item in items:
        if item.database is not None:
            password = make_url(item.database.url).password
            if password:
                found.append(str(password))
        found += [h.password for h in item.hosts if h.password]
    return found
