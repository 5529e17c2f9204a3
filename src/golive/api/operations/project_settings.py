"""A project's settings by its owners: a member's roles set or taken away, and the
project's own part of golive.yaml, read and applied.

Who may: the project's owner (or a site admin) changes members; any member reads the
project's YAML, which shows nothing ``project.show`` does not (secrets as ``${VAR}``);
a site admin applies it (``project.apply``: ``config.apply`` for one project, whose
``${VAR}``s keep their stored values unless given).
"""

from __future__ import annotations

from typing import Any

from golive.api.operations.people import members_of
from golive.api.registry import Work, operation
from golive.api.schemas.base import Done
from golive.api.schemas.people import MemberView
from golive.api.schemas.project_settings import MemberRoles, ProjectConfigText, ProjectExport
from golive.api.schemas.settings import Applied
from golive.services import project_settings
from golive.services.users import get_project


@operation("member.set_roles", "PUT", "/projects/{project}/members/{user}", MemberView)
def set_member_roles(work: Work, project: str, user: str, body: MemberRoles) -> dict[str, Any]:
    """Make the given roles exactly a member's roles in the project (its owner or a site
    admin). The project's last owner keeps the owner role."""
    project_settings.set_roles(work.session, work.user, project, user, body.roles)
    found = get_project(work.session, project)
    return next(m for m in members_of(found) if m["user"] == user)


@operation("member.remove", "DELETE", "/projects/{project}/members/{user}", Done)
def remove_member(work: Work, project: str, user: str) -> dict[str, Any]:
    """Take every role of a user in the project away (its owner or a site admin); the
    project's last owner cannot be removed."""
    project_settings.remove_member(work.session, work.user, project, user)
    return {"message": f"{user} removed from {project}"}


@operation("project.export", "GET", "/projects/{project}/config", ProjectExport)
def export_project(work: Work, project: str) -> dict[str, Any]:
    """The project's part of golive.yaml (any member): secrets as ``${VAR}``, passwords
    in URLs masked. Edit it and apply it (``config.apply``) to change the project."""
    text = project_settings.project_yaml(work.session, work.runtime.box, work.user, project)
    return {"project": project, "text": text}


@operation("project.apply", "POST", "/projects/{project}/config", Applied)
def apply_project(work: Work, project: str, body: ProjectConfigText) -> dict[str, Any]:
    """Apply the project's golive.yaml, edited from its export (its owner or a site admin;
    changes to hosts, databases or users need a site admin): what it names is created or
    updated, the rest kept; it may name no other project. A
    ``${VAR}`` not given in ``secrets`` keeps its stored value. An error names the file,
    the line and the field, and nothing is applied."""
    report = project_settings.apply_project_yaml(
        work.session, work.runtime.box, work.user, project, body.text, body.file_name,
        body.secrets)
    return {"file": body.file_name,
            "changes": [{"kind": c.kind, "name": c.name, "action": c.action}
                        for c in report.changes]}
