"""A project's settings changed by its owners: members' roles set or removed, and the
project's part of golive.yaml exported and applied on its own.

Members: a project keeps at least one owner once it has one, so nobody can lock the
owners out by a slip (a site admin may still name a new owner). The project's YAML is
what ``golive export`` writes for it (secrets as ``${VAR}``, URL passwords masked): an
owner edits it and a site admin applies it; applying a document that names one project
changes only that project (``config/apply.py`` keeps everything it does not name), and
the ``${VAR}``s it kept from the export stand for the values stored for them.
"""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.config import export
from golive.config.apply import ApplyReport, apply_config
from golive.config.loader import VARIABLE, load_text
from golive.config.schema import GoliveConfig
from golive.domain.permissions import Permission
from golive.domain.roles import ALL_ROLES, Role, parse_role
from golive.domain.secrets import mask_url_passwords
from golive.errors import InputError, NotFound, PermissionDenied
from golive.services.users import get_project, require
from golive.store.models import Member, Project, User
from golive.store.secrets import SecretBox


def _member_user(session: Session, project: Project, user_name: str) -> User:
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None or not any(m.user_id == user.id for m in project.members):
        raise NotFound(f"member of {project.name}", user_name)
    return user


def _parsed_roles(roles: list[str]) -> list[str]:
    if not roles:
        raise InputError("give the member at least one role, or remove them from the project")
    try:
        wanted = {parse_role(r).value for r in roles}
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return [r for r in ALL_ROLES if r in wanted]


def _keep_an_owner(project: Project, leaving: list[Member]) -> None:
    """Refuse when ``leaving`` takes away the last owner the project has."""
    owners = [m for m in project.members if m.role == Role.OWNER.value]
    if owners and all(m in leaving for m in owners):
        raise InputError(f"{project.name} would have no owner left; "
                         "make someone else an owner first")


def set_roles(session: Session, by: User, project_name: str, user_name: str,
              roles: list[str]) -> list[str]:
    """Make ``roles`` exactly the member's roles in the project (its owner or a site
    admin); the roles they hold now, in the usual order."""
    project = get_project(session, project_name)
    require(session, by, project, Permission.MANAGE_MEMBERS,
            f"changing the roles of {user_name} in {project.name}")
    user = _member_user(session, project, user_name)
    wanted = _parsed_roles(roles)
    held = [m for m in project.members if m.user_id == user.id]
    leaving = [m for m in held if m.role not in wanted]
    _keep_an_owner(project, leaving)
    for member in leaving:
        project.members.remove(member)
    have = {m.role for m in held}
    for role in wanted:
        if role not in have:
            project.members.append(Member(user=user, role=role))
    session.flush()
    return wanted


def remove_member(session: Session, by: User, project_name: str, user_name: str) -> None:
    """Take every role of the user in the project away (its owner or a site admin)."""
    project = get_project(session, project_name)
    require(session, by, project, Permission.MANAGE_MEMBERS,
            f"removing {user_name} from {project.name}")
    user = _member_user(session, project, user_name)
    leaving = [m for m in project.members if m.user_id == user.id]
    _keep_an_owner(project, leaving)
    for member in leaving:
        project.members.remove(member)
    session.flush()


def project_yaml(session: Session, box: SecretBox, by: User, project_name: str) -> str:
    """The project's part of golive.yaml (any member: it shows what the project page
    shows), secrets as ``${VAR}`` and passwords in URLs masked."""
    project = get_project(session, project_name)
    require(session, by, project, Permission.VIEW, f"exporting {project.name}")
    config = GoliveConfig(projects=[export.project_spec(project, box)])
    # the placeholders the full export writes (the templates the file was applied with)
    export._hide_secrets(session, config)
    data = config.model_dump(mode="json", exclude_defaults=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return mask_url_passwords(text)


def _pair_values(hidden: Any, clear: Any, found: dict[str, str]) -> None:
    """Where ``hidden`` (the export) is one ``${VAR}`` and ``clear`` its stored value."""
    if isinstance(hidden, dict) and isinstance(clear, dict):
        for key, value in hidden.items():
            _pair_values(value, clear.get(key), found)
    elif isinstance(hidden, list) and isinstance(clear, list):
        for one, other in zip(hidden, clear, strict=False):
            _pair_values(one, other, found)
    elif isinstance(hidden, str) and isinstance(clear, str) and hidden != clear:
        whole = VARIABLE.fullmatch(hidden)
        if whole is not None:
            found[whole.group(1)] = clear


def stored_values(session: Session, box: SecretBox, project: Project) -> dict[str, str]:
    """The values the project's exported ``${VAR}``s stand for, from the store: applying
    its export again needs no secret typed in."""
    clear = GoliveConfig(projects=[export.project_spec(project, box)])
    hidden = clear.model_copy(deep=True)
    export._hide_secrets(session, hidden)
    found: dict[str, str] = {}
    _pair_values(hidden.model_dump(mode="json"), clear.model_dump(mode="json"), found)
    return found


def apply_project_yaml(session: Session, box: SecretBox, by: User, project_name: str,
                       text: str, file_name: str, secrets: dict[str, str]) -> ApplyReport:
    """Apply a golive.yaml edited from the project's export (the project's owner or a site
    admin): it may name no other project; a ``${VAR}`` not given in ``secrets`` keeps the
    value stored for it. Hosts and databases are shared by every project, and users are
    the site's: changing them needs a site admin. Nothing is written when anything is
    wrong (the caller rolls back)."""
    project = get_project(session, project_name)
    require(session, by, project, Permission.CONFIGURE_PROJECT,
            f"applying {project.name}'s settings")
    loaded = load_text(text, file_name, {**stored_values(session, box, project), **secrets})
    for index, spec in enumerate(loaded.config.projects):
        if spec.name != project.name:
            raise loaded.error(("projects", index, "name"),
                               f"this file may change {project.name} only, not {spec.name}; "
                               "apply the other projects on their own pages")
    report = apply_config(session, loaded, box)
    if not by.is_admin:
        _refuse_site_changes(report)
    return report


SITE_WIDE = ("host", "database", "user")
"""What a golive.yaml holds beyond one project: a project's owner may not change it."""


def _refuse_site_changes(report: ApplyReport) -> None:
    changed = [f"{c.kind} {c.name} ({c.action})" for c in report.changes
               if c.kind in SITE_WIDE and c.action in ("created", "updated", "removed")]
    if changed:
        raise PermissionDenied(
            f"the file changes what every project shares: {', '.join(changed)}; that needs a "
            "site admin (send them the file), or leave those entries as exported",
            needed_roles=("admin",))
