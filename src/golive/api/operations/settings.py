"""Projects and their settings, target databases, and golive.yaml applied or exported.

Reading: a project's members (and site admins) see its stages, settings, services,
channels and members; a user sees the databases their projects' stages run SQL on
(site admins: all). Writing the configuration is ``config.apply`` (site admins), the
same upsert as ``golive apply -f``.

No answer here carries a secret: channel webhooks and secrets, the push secret and
database passwords are masked, and free text that may hold a URL (a repository, a
build command, a hook) has the password of that URL masked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from golive.api.operations.people import members_of
from golive.api.registry import Work, operation
from golive.api.schemas.settings import (
    Applied,
    ConfigExport,
    ConfigText,
    DatabaseView,
    ProjectDetail,
    ProjectSummary,
)
from golive.config import export
from golive.config.apply import apply_config
from golive.config.loader import load_text
from golive.config.schema import CHANNEL_SECRET_FIELDS
from golive.domain.permissions import Permission
from golive.domain.secrets import MASK, mask_secrets
from golive.services import users as user_service
from golive.services.configuration import export_text
from golive.store.models import (
    Channel,
    Member,
    Project,
    Service,
    ServiceStage,
    TargetDatabase,
    User,
)
from golive.store.secrets import SecretBox


def _masked(value: object) -> str:
    return MASK if value else ""


def _roles(project: Project, user: User) -> list[str]:
    return next((m["roles"] for m in members_of(project) if m["user"] == user.name), [])


@operation("project.list", "GET", "/projects", list[ProjectSummary])
def list_projects(work: Work) -> list[dict[str, Any]]:
    """The projects the caller is a member of (a site admin: all), by name."""
    query = select(Project).order_by(Project.name)
    if not work.user.is_admin:
        query = query.where(Project.id.in_(
            select(Member.project_id).where(Member.user_id == work.user.id)))
    return [{"name": p.name, "stages": list(p.stages), "roles": _roles(p, work.user),
             "services": [s.name for s in p.services]}
            for p in work.session.scalars(query)]


def _settings(project: Project) -> dict[str, Any]:
    fields = export.project_fields(project)
    return {**{k: v for k, v in fields.items() if k not in ("stages", "freeze_dates")},
            "freeze": fields["freeze_dates"], "push_secret": _masked(project.push_secret_enc)}


def _service(service: Service) -> dict[str, Any]:
    """The service's spec (as golive.yaml has it) with URL passwords in its text masked;
    the stages are names, paths and hosts only, kept as they are (a stage or lane named
    like a secret must not be masked away)."""
    spec = export.service_spec(service)
    data = spec.model_dump(mode="json", exclude={"stages"})
    data = mask_secrets(data)
    data["stages"] = {name: {**stage.model_dump(mode="json", exclude={"lanes"}),
                             "lanes": {lane: list(ls.hosts) for lane, ls in stage.lanes.items()}}
                      for name, stage in spec.stages.items()}
    return data


def _channel(channel: Channel, box: SecretBox) -> dict[str, Any]:
    """The channel without its secrets: a sealed field says only whether it is set."""
    spec = export.channel_spec(channel, box)
    rest = spec.model_dump(mode="json", exclude={"type", "name", "language", "events",
                                                 *CHANNEL_SECRET_FIELDS})
    rest.update({f: _masked(getattr(spec, f)) for f in CHANNEL_SECRET_FIELDS
                 if f not in ("webhook", "secret")})
    return {"name": channel.name, "type": channel.type, "language": channel.language,
            "events": list(channel.events), "webhook": _masked(spec.webhook),
            "secret": _masked(spec.secret), "settings": mask_secrets(rest)}


@operation("project.show", "GET", "/projects/{project}", ProjectDetail)
def show_project(work: Work, project: str) -> dict[str, Any]:
    """One project: its stages, settings, services with their per-stage settings,
    notification channels and members (any member of the project). Secrets masked."""
    found = user_service.get_project(work.session, project)
    user_service.require(work.session, work.user, found, Permission.VIEW,
                         f"reading project {project}")
    return {"name": found.name, "stages": list(found.stages), "settings": _settings(found),
            "services": [_service(s) for s in found.services],
            "channels": [_channel(c, work.runtime.box) for c in found.channels],
            "members": members_of(found)}


@operation("database.list", "GET", "/databases", list[DatabaseView])
def list_databases(work: Work) -> list[dict[str, Any]]:
    """The databases order SQL runs on, their URLs with the password masked: a site admin
    sees all; anyone else those a stage of one of their projects uses."""
    query = select(TargetDatabase).order_by(TargetDatabase.name)
    if not work.user.is_admin:
        used = (select(ServiceStage.database_id)
                .join(Service, ServiceStage.service_id == Service.id)
                .join(Member, Member.project_id == Service.project_id)
                .where(Member.user_id == work.user.id))
        query = query.where(TargetDatabase.id.in_(used))
    return [{"name": d.name, "url": d.url_masked, "statement_timeout": d.statement_timeout}
            for d in work.session.scalars(query)]


@operation("config.apply", "POST", "/config", Applied)
def apply(work: Work, body: ConfigText) -> dict[str, Any]:
    """Create or update hosts, databases, projects, services, members and channels from a
    golive.yaml text, in one transaction (site admin). ``${VAR}`` takes its value from
    ``secrets``; an error names the file, the line and the field."""
    user_service.require(work.session, work.user, None, Permission.APPLY_CONFIG,
                         "applying a configuration")
    loaded = load_text(body.text, body.file_name, body.secrets)
    report = apply_config(work.session, loaded, work.runtime.box, prune=body.prune)
    return {"file": body.file_name,
            "changes": [{"kind": c.kind, "name": c.name, "action": c.action}
                        for c in report.changes]}


@operation("config.export", "GET", "/config", ConfigExport)
def export_config(work: Work, secrets: bool = False) -> dict[str, Any]:
    """The configuration as golive.yaml text (site admin): secrets as the ``${VAR}`` they
    were applied with, or placeholders; in clear only with ``secrets=true``."""
    return {"text": export_text(work.session, work.runtime.box, work.user,
                                with_secrets=secrets)}
