"""Hosts: accepting a host key, and checking that a host is ready for deploys."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from shlex import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.adapters.transport.ssh import SshTransport, fingerprint, server_key
from golive.domain.permissions import Permission
from golive.errors import GoliveError, InputError, NotFound
from golive.services.runtime import Runtime
from golive.services.users import require
from golive.services.work import open_transport, resolve_host, ssh_target
from golive.store.models import Host, ServiceStage, StageHost, User


def get_host(session: Session, name: str) -> Host:
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        raise NotFound("host", name)
    return host


def trust_host(runtime: Runtime, session: Session, by: User, name: str) -> tuple[str, str]:
    """Pin the key the host presents now; (old fingerprint or '', new fingerprint)."""
    require(session, by, None, Permission.TRUST_HOST_KEY, "accepting a host key")
    host = get_host(session, name)
    if host.transport != "ssh":
        raise InputError(f"host {name} is a {host.transport} host: it has no host key")
    target = ssh_target(resolve_host(session, host, runtime.box))
    presented = server_key(target)
    old = fingerprint(host.host_key) if host.host_key else ""
    host.host_key = presented
    session.flush()
    return old, fingerprint(presented)


@dataclass
class HostCheck:
    name: str
    reachable: bool
    message: str = ""
    key: str = ""
    pinned: bool = False
    disk: dict[str, str] = field(default_factory=dict)
    """deploy path → free space, as df reports it."""


def deploy_paths(session: Session, host: Host) -> list[str]:
    rows = session.scalars(select(ServiceStage.path).join(StageHost).where(
        StageHost.host_id == host.id).distinct())
    return sorted(set(rows))


def check_host(runtime: Runtime, session: Session, host: Host) -> HostCheck:
    """Connect, compare the key with the pin, and report free space at each deploy path."""
    ref = resolve_host(session, host, runtime.box)
    transport = open_transport(ref)
    result = HostCheck(host.name, False)
    try:
        if isinstance(transport, SshTransport):
            result.key = fingerprint(transport.connect())
            result.pinned = bool(host.host_key)
        for path in deploy_paths(session, host) or ["."]:
            full = transport.resolve(path)
            probe = _existing_parent(full)
            out = transport.run(f"df -Pk {probe} | tail -n 1", check=False).output.split()
            result.disk[path] = f"{int(out[3]) // 1024} MiB free" if len(out) > 3 and \
                out[3].isdigit() else "unknown"
        result.reachable = True
    except GoliveError as exc:
        result.message = exc.message
    finally:
        transport.close()
    return result


def _existing_parent(path: str) -> str:
    """Shell text naming the nearest existing folder of ``path`` (df needs one)."""
    quoted = quote(path)
    return (f"\"$(p={quoted}; while [ ! -e \"$p\" ] && [ \"$p\" != / ]; do "
            f"p=$(dirname \"$p\"); done; echo \"$p\")\"") if posixpath.isabs(path) else quoted
