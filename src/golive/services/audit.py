"""The audit log: every write through the API (and every accepted push webhook), with who,
when, what, from which address and how it ended. Owners read their projects' entries,
site admins all of them. Parameters are stored with secrets masked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain.permissions import Permission
from golive.domain.secrets import mask_secrets
from golive.services.users import get_project, require
from golive.store.models import AuditEntry, Member, Project, User


def record(session: Session, *, user_name: str, address: str, action: str, target: str,
           project: str = "", status: int = 200, detail: Mapping[str, Any] | None = None
           ) -> AuditEntry:
    """Add one entry (the caller commits, in a transaction of its own so that a refused or
    failed action is recorded too)."""
    entry = AuditEntry(user_name=user_name[:100], address=address[:100], action=action[:100],
                       target=target[:500], project=project[:100], status=status,
                       detail=mask_secrets(dict(detail or {})))
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, by: User, project: str = "", limit: int = 200
            ) -> list[AuditEntry]:
    """The newest entries ``by`` may read: a project's (its owners), or all (site admins)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000)))
    if project:
        require(session, by, get_project(session, project), Permission.READ_AUDIT,
                f"reading the audit log of {project}")
        query = query.where(AuditEntry.project == project)
    elif not by.is_admin:
        owned = select(Member.project_id).where(Member.user_id == by.id, Member.role == "owner")
        names = list(session.scalars(select(Project.name).where(Project.id.in_(owned))))
        if not names:
            require(session, by, None, Permission.READ_AUDIT, "reading the audit log")
        query = query.where(AuditEntry.project.in_(names))
    return list(session.scalars(query))
