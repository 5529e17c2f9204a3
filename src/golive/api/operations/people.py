"""People: users and their profiles and passwords, project members, the caller's API
tokens, and the audit log.

Who may: any logged-in user lists users (to pick members and @-mentions) and reads
their own profile; a user changes their own profile and password, a site admin
anyone's; a project's owner (or a site admin) adds members, its members list them;
everyone manages their own tokens; owners read their projects' audit log, site admins
all of it. The services decide each of these (``services/users.py``, ``accounts.py``,
``audit.py``), so the CLI and the API refuse the same things with the same words.
"""

from __future__ import annotations

from typing import Any

from golive.api.registry import Work, operation
from golive.api.schemas.base import Done
from golive.api.schemas.people import (
    AuditView,
    MemberView,
    NewMember,
    NewPassword,
    NewToken,
    NewUser,
    ProfileChanges,
    TokenRequest,
    TokenView,
    UserView,
)
from golive.domain.permissions import Permission
from golive.domain.roles import ALL_ROLES
from golive.errors import InputError
from golive.services import accounts, audit
from golive.services import users as user_service
from golive.store.models import ApiToken, AuditEntry, Project, User


def user_view(user: User) -> dict[str, Any]:
    return {"name": user.name, "display_name": user.display_name, "email": user.email,
            "mobile": user.mobile, "language": user.language, "is_admin": user.is_admin,
            "wecom_id": user.wecom_id, "dingtalk_id": user.dingtalk_id,
            "feishu_id": user.feishu_id}


def members_of(project: Project) -> list[dict[str, Any]]:
    """One row per user with every role they hold, users by name, roles in the usual
    order (owner, developer, tester, releaser)."""
    rows: dict[str, dict[str, Any]] = {}
    for member in project.members:
        row = rows.setdefault(member.user.name, {"user": member.user.name,
                                                 "display_name": member.user.display_name,
                                                 "roles": []})
        row["roles"].append(member.role)
    for row in rows.values():
        row["roles"].sort(key=lambda r: ALL_ROLES.index(r) if r in ALL_ROLES else len(ALL_ROLES))
    return [rows[name] for name in sorted(rows)]


@operation("user.list", "GET", "/users", list[UserView])
def list_users(work: Work) -> list[dict[str, Any]]:
    """Every user and their profile (any logged-in user: to pick members and mentions)."""
    return [user_view(u) for u in user_service.list_users(work.session)]


@operation("user.me", "GET", "/me", UserView)
def me(work: Work) -> dict[str, Any]:
    """The calling user's own profile."""
    return user_view(work.user)


@operation("user.add", "POST", "/users", UserView, status=201)
def add_user(work: Work, body: NewUser) -> dict[str, Any]:
    """Add a user (site admin). They log in once given a password (``user.password``)."""
    return user_view(user_service.add_user(
        work.session, work.user, body.name, admin=body.admin, email=body.email,
        mobile=body.mobile, display_name=body.display_name, language=body.language))


@operation("user.update", "PATCH", "/users/{user}", UserView)
def update_user(work: Work, user: str, body: ProfileChanges) -> dict[str, Any]:
    """Change a profile: the mobile, chat ids and e-mail notifications mention (the user
    themself, or a site admin). Fields left out stay as they are."""
    changes = body.model_dump(exclude_none=True)
    return user_view(user_service.update_profile(work.session, work.user, user, changes))


@operation("user.password", "PUT", "/users/{user}/password", Done)
def set_password(work: Work, user: str, body: NewPassword) -> dict[str, Any]:
    """Set a password (the user themself, or a site admin); their login sessions end."""
    accounts.set_password(work.session, work.user, user, body.password)
    return {"message": f"password of {user} set"}


@operation("member.add", "POST", "/projects/{project}/members", MemberView)
def add_member(work: Work, project: str, body: NewMember) -> dict[str, Any]:
    """Give a user one or more roles in a project (its owner or a site admin); roles
    they already hold are kept as they are."""
    for role in body.roles:
        user_service.add_member(work.session, work.user, project, body.user, role)
    found = user_service.get_project(work.session, project)
    return next(m for m in members_of(found) if m["user"] == body.user)


@operation("member.list", "GET", "/projects/{project}/members", list[MemberView])
def list_members(work: Work, project: str) -> list[dict[str, Any]]:
    """The project's members and their roles (any member of the project)."""
    found = user_service.get_project(work.session, project)
    user_service.require(work.session, work.user, found, Permission.VIEW,
                         f"reading the members of {project}")
    return members_of(found)


def token_view(token: ApiToken) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix,
            "created_at": token.created_at, "expires_at": token.expires_at,
            "last_used_at": token.last_used_at, "revoked_at": token.revoked_at,
            "revoked": token.revoked_at is not None}


@operation("token.create", "POST", "/tokens", NewToken, status=201)
def create_token(work: Work, body: TokenRequest) -> dict[str, Any]:
    """A new API token of the caller. Its answer is the only time the token is shown:
    the store keeps its hash."""
    made = accounts.create_token(work.session, work.user, body.name, body.expires_in_days)
    return {"id": made.token.id, "name": made.token.name, "prefix": made.token.prefix,
            "token": made.secret, "created_at": made.token.created_at,
            "expires_at": made.token.expires_at}


@operation("token.list", "GET", "/tokens", list[TokenView])
def list_tokens(work: Work) -> list[dict[str, Any]]:
    """The caller's API tokens: names, prefixes and dates, never the tokens."""
    return [token_view(t) for t in accounts.list_tokens(work.session, work.user)]


@operation("token.revoke", "DELETE", "/tokens/{token_id}", TokenView)
def revoke_token(work: Work, token_id: int) -> dict[str, Any]:
    """Revoke one of the caller's tokens (a site admin: anyone's); it stops working now."""
    return token_view(accounts.revoke_token(work.session, work.user, token_id))


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at, "user": entry.user_name, "address": entry.address,
            "action": entry.action, "target": entry.target, "project": entry.project,
            "status": entry.status, "detail": entry.detail or {}}


AUDIT_LIMIT = 1000


@operation("audit.list", "GET", "/audit", list[AuditView])
def list_audit(work: Work, project: str = "", limit: int = 200) -> list[dict[str, Any]]:
    """The newest writes, newest first: a project's (its owners), or all the caller may
    read (site admins: every entry). Parameters were recorded with secrets masked."""
    if not 1 <= limit <= AUDIT_LIMIT:
        raise InputError(f"limit must be between 1 and {AUDIT_LIMIT}")
    return [audit_view(e) for e in audit.entries(work.session, work.user, project, limit)]
