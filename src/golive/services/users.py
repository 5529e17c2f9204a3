"""Users, the acting user, and project membership."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain import permissions
from golive.domain.names import name_problem
from golive.domain.permissions import Permission
from golive.domain.roles import parse_role
from golive.domain.workflow import Actor
from golive.errors import InputError, NotFound, PermissionDenied
from golive.store.models import Member, Project, User

DEFAULT_ADMIN = "admin"


def ensure_admin(session: Session) -> User:
    """The first admin; created (without a password) when the store has no user yet."""
    admin = session.scalar(select(User).where(User.is_admin.is_(True)).order_by(User.id))
    if admin is not None:
        return admin
    if session.scalar(select(User.id).limit(1)) is None:
        admin = User(name=DEFAULT_ADMIN, display_name="Administrator", is_admin=True)
        session.add(admin)
        session.flush()
        return admin
    raise InputError("the store has users but no admin; name one with --as USER")


def acting_user(session: Session, name: str | None) -> User:
    """The user named ``name`` (--as / GOLIVE_USER), or the first admin."""
    if not name:
        return ensure_admin(session)
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound("user", name)
    return user


def project_roles(session: Session, user: User, project: Project) -> frozenset[str]:
    rows = session.scalars(
        select(Member.role).where(Member.user_id == user.id, Member.project_id == project.id)
    )
    return frozenset(rows)


def actor_for(session: Session, user: User, project: Project) -> Actor:
    return Actor(user.name, project_roles(session, user, project), user.is_admin)


def require(session: Session, by: User, project: Project | None, permission: Permission,
            what: str, extra: tuple[str, ...] = ()) -> None:
    """Refuse ``by`` unless ``domain.permissions`` lets them take ``permission`` in
    ``project`` (None: a site-wide action); the refusal names the roles needed."""
    actor = (actor_for(session, by, project) if project is not None
             else Actor(by.name, frozenset(), by.is_admin))
    decision = permissions.check(permission, actor, what, extra)
    if not decision.allowed:
        raise PermissionDenied(decision.reason, needed_roles=decision.needed_roles)


def add_user(
    session: Session, by: User, name: str, *, admin: bool = False, email: str = "",
    mobile: str = "", display_name: str = "", language: str = "",
) -> User:
    require(session, by, None, Permission.MANAGE_USERS, "adding a user")
    problem = name_problem(name)
    if problem:
        raise InputError(problem)
    if language not in LANGUAGES:
        raise InputError(f"language {language!r} is not one of: en, zh_CN "
                         "(or empty: the browser's)")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise InputError(f"user {name} already exists")
    user = User(name=name, is_admin=admin, email=email, mobile=mobile,
                display_name=display_name or name, language=language)
    session.add(user)
    session.flush()
    return user


LANGUAGES = ("", "en", "zh_CN")
"""A user's language for the web pages; empty: the one their browser asks for."""

PROFILE_FIELDS = ("display_name", "email", "mobile", "wecom_id", "dingtalk_id", "feishu_id",
                  "language")
"""What a user's profile holds: the chat ids and mobile notifications @-mention."""


def update_profile(session: Session, by: User, name: str, changes: dict[str, str]) -> User:
    """Change a user's profile: the user themself, or a site admin."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound("user", name)
    if user.id != by.id:
        require(session, by, None, Permission.MANAGE_USERS, f"changing {name}'s profile")
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise InputError(f"not a profile field: {', '.join(sorted(unknown))}")
    if changes.get("language", "") not in LANGUAGES:
        raise InputError(f"language {changes['language']!r} is not one of: en, zh_CN "
                         "(or empty: the browser's)")
    for field, value in changes.items():
        if len(value) > 200:
            raise InputError(f"{field} is longer than 200 characters")
        setattr(user, field, value.strip())
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def get_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound("project", name)
    return project


def add_member(session: Session, by: User, project_name: str, user_name: str, role: str) -> Member:
    """Give ``user_name`` a role in the project; only its owner or a site admin may."""
    project = get_project(session, project_name)
    require(session, by, project, Permission.MANAGE_MEMBERS, f"adding a member to {project.name}")
    try:
        parsed = parse_role(role)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        raise NotFound("user", user_name)
    existing = session.scalar(select(Member).where(
        Member.project_id == project.id, Member.user_id == user.id, Member.role == parsed.value))
    if existing is not None:
        return existing
    member = Member(project=project, user=user, role=parsed.value)
    session.add(member)
    session.flush()
    return member
