"""``golive apply``: upsert a golive.yaml into the store, as one transaction.

Each entity is read back as its spec (``export.py``) and compared with the file;
only differences are written, so applying the same file twice changes nothing.
Things in the store but not in the file are reported, and removed only with
``prune``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.config import export
from golive.config.loader import VARIABLE, LoadedConfig, Loc
from golive.config.references import check_references
from golive.config.schema import (
    CHANNEL_SECRET_FIELDS,
    ChannelSpec,
    DatabaseSpec,
    HostSpec,
    ProjectSpec,
    ServiceSpec,
)
from golive.errors import InputError
from golive.store.models import (
    Channel,
    Host,
    JobLedger,
    Member,
    OrderItem,
    Project,
    Service,
    ServiceStage,
    SqlExecution,
    StageHost,
    TargetDatabase,
    User,
)
from golive.store.secrets import SecretBox, mask_url, url_password


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # created | updated | unchanged | kept (not in file) | removed


@dataclass
class ApplyReport:
    changes: list[Change] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str) -> None:
        self.changes.append(Change(kind, name, action))

    @property
    def changed(self) -> bool:
        return any(c.action in ("created", "updated", "removed") for c in self.changes)


@dataclass
class _Context:
    session: Session
    loaded: LoadedConfig
    box: SecretBox
    prune: bool
    report: ApplyReport

    def template(self, loc: Loc) -> str | None:
        return self.loaded.templates.get(loc)

    def secret_template(self, loc: Loc) -> str | None:
        """The ${VAR} text of a secret, kept only when it is nothing but variables:
        any clear text in it would otherwise be stored unencrypted."""
        template = self.template(loc)
        return template if template and not VARIABLE.sub("", template) else None


def apply_config(
    session: Session, loaded: LoadedConfig, box: SecretBox, *, prune: bool = False
) -> ApplyReport:
    """Upsert ``loaded`` into the session (flushes; the caller commits)."""
    stored_hosts = set(session.scalars(select(Host.name)))
    stored_databases = set(session.scalars(select(TargetDatabase.name)))
    check_references(loaded, stored_hosts, stored_databases)
    ctx = _Context(session, loaded, box, prune, ApplyReport())
    for index, spec in enumerate(loaded.config.hosts):
        _apply_host(ctx, index, spec)
    for index, db_spec in enumerate(loaded.config.databases):
        _apply_database(ctx, index, db_spec)
    session.flush()
    for index, project_spec in enumerate(loaded.config.projects):
        _apply_project(ctx, index, project_spec)
    _report_unlisted(ctx)
    session.flush()
    return ctx.report


def _record(ctx: _Context, kind: str, name: str, is_new: bool, same: bool) -> None:
    ctx.report.add(kind, name, "created" if is_new else ("unchanged" if same else "updated"))


def _apply_host(ctx: _Context, index: int, spec: HostSpec) -> None:
    row = ctx.session.scalar(select(Host).where(Host.name == spec.name))
    is_new = row is None
    if row is not None and export.host_spec(row, ctx.box) == spec:
        template = ctx.secret_template(("hosts", index, "password")) or row.password_template
        row.password_template = template if spec.password else None
        key_template = (ctx.secret_template(("hosts", index, "private_key"))
                        or row.private_key_template)
        row.private_key_template = key_template if spec.private_key else None
        _record(ctx, "host", spec.name, False, True)
        return
    if row is None:
        row = Host(name=spec.name)
        ctx.session.add(row)
    row.transport, row.address, row.port = spec.transport, spec.address, spec.port
    row.user, row.key_path, row.root = spec.user, spec.key, spec.root
    row.proxy_jump, row.zone, row.labels = spec.proxy_jump, spec.zone, dict(spec.labels)
    row.password_enc = ctx.box.seal(spec.password) if spec.password else None
    row.password_template = (ctx.secret_template(("hosts", index, "password"))
                             if spec.password else None)
    row.private_key_enc = ctx.box.seal(spec.private_key) if spec.private_key else None
    row.private_key_template = (ctx.secret_template(("hosts", index, "private_key"))
                                if spec.private_key else None)
    _record(ctx, "host", spec.name, is_new, False)


def _apply_database(ctx: _Context, index: int, spec: DatabaseSpec) -> None:
    row = ctx.session.scalar(select(TargetDatabase).where(TargetDatabase.name == spec.name))
    template = ctx.template(("databases", index, "url"))
    if template and url_password(VARIABLE.sub("", template)):
        template = None  # the password is written in clear: it is kept sealed only
    if row is not None and export.database_spec(row, ctx.box) == spec:
        row.url_template = template or row.url_template
        _record(ctx, "database", spec.name, False, True)
        return
    is_new = row is None
    if row is None:
        row = TargetDatabase(name=spec.name)
        ctx.session.add(row)
    row.url_enc = ctx.box.seal(spec.url)
    row.statement_timeout = spec.statement_timeout
    row.url_masked = mask_url(spec.url)
    row.url_template = template
    _record(ctx, "database", spec.name, is_new, False)


def _apply_project(ctx: _Context, index: int, spec: ProjectSpec) -> None:
    row = ctx.session.scalar(select(Project).where(Project.name == spec.name))
    fields = export.project_fields_of(spec)
    is_new = row is None
    if row is None:
        row = Project(name=spec.name, **fields)
        ctx.session.add(row)
        ctx.session.flush()
    same = not is_new and export.project_fields(row) == fields
    if not same:
        for key, value in fields.items():
            setattr(row, key, value)
    same = _apply_push_secret(ctx, row, spec) and same
    _record(ctx, "project", spec.name, is_new, same)
    _apply_members(ctx, row, spec)
    loc: Loc = ("projects", index)
    for c_index, channel in enumerate(spec.notify):
        _apply_channel(ctx, row, (*loc, "notify", c_index), c_index, channel)
    for s_index, service in enumerate(spec.services):
        _apply_service(ctx, row, s_index, service)
    _prune_project_children(ctx, row, spec)


def _apply_push_secret(ctx: _Context, project: Project, spec: ProjectSpec) -> bool:
    """Seal the push webhooks' secret when it changed; whether it was the same."""
    stored = ctx.box.open(project.push_secret_enc) if project.push_secret_enc else ""
    if stored == spec.push_secret:
        return True
    project.push_secret_enc = ctx.box.seal(spec.push_secret) if spec.push_secret else None
    return False


def _user(ctx: _Context, name: str) -> User:
    user = ctx.session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        ctx.session.add(user)
        ctx.session.flush()
        ctx.report.add("user", name, "created")
    return user


def _apply_members(ctx: _Context, project: Project, spec: ProjectSpec) -> None:
    current = {(m.user.name, m.role) for m in project.members}
    for member in spec.members:
        for role in member.roles:
            label = f"{project.name}/{member.user}:{role}"
            if (member.user, role) in current:
                ctx.report.add("member", label, "unchanged")
                continue
            project.members.append(Member(user=_user(ctx, member.user), role=role))
            ctx.report.add("member", label, "created")


def _apply_channel(
    ctx: _Context, project: Project, loc: Loc, position: int, spec: ChannelSpec
) -> None:
    spec = spec.model_copy(update={"name": spec.name or f"{spec.type}-{position + 1}"})
    row = next((c for c in project.channels if c.name == spec.name), None)
    label = f"{project.name}/{spec.name}"
    templates = {f: t for f in CHANNEL_SECRET_FIELDS if (t := ctx.secret_template((*loc, f)))}
    if row is not None and export.channel_spec(row, ctx.box) == spec:
        row.secret_templates = {**(row.secret_templates or {}), **templates}
        row.position = position
        _record(ctx, "channel", label, False, True)
        return
    is_new = row is None
    if row is None:
        row = Channel(name=spec.name, type=spec.type)
        project.channels.append(row)
    data = spec.model_dump(exclude={"type", "name", "language", "events"})
    secrets = {f: data.pop(f) for f in CHANNEL_SECRET_FIELDS if data.get(f)}
    for f in CHANNEL_SECRET_FIELDS:
        data.pop(f, None)
    row.type, row.language, row.events = spec.type, spec.language, list(spec.events)
    row.settings, row.position, row.secret_templates = data, position, templates
    row.secrets_enc = ctx.box.seal(yaml.safe_dump(secrets)) if secrets else None
    _record(ctx, "channel", label, is_new, False)


def _host_rows(ctx: _Context, names: list[str]) -> list[Host]:
    hosts = {h.name: h for h in ctx.session.scalars(select(Host).where(Host.name.in_(names)))}
    return [hosts[n] for n in names]


def _apply_service(ctx: _Context, project: Project, position: int, spec: ServiceSpec) -> None:
    row = next((s for s in project.services if s.name == spec.name), None)
    label = f"{project.name}/{spec.name}"
    if row is not None and export.service_spec(row) == spec:
        row.position = position
        _record(ctx, "service", label, False, True)
        return
    is_new = row is None
    if row is None:
        row = Service(name=spec.name, repo=spec.repo)
        project.services.append(row)
    row.position = position
    row.repo, row.main_branch, row.build = spec.repo, spec.main_branch, spec.build
    row.build_timeout, row.pack, row.exclude = spec.build_timeout, spec.pack, spec.exclude
    row.shared, row.post_deploy = spec.shared, spec.post_deploy
    row.rollback_hooks = spec.rollback_hooks
    row.health_check = spec.health_check.model_dump() if spec.health_check else None
    _write_stages(ctx, project, row, spec)
    _record(ctx, "service", label, is_new, False)


def _write_stages(ctx: _Context, project: Project, service: Service, spec: ServiceSpec) -> None:
    service.stages.clear()
    ctx.session.flush()
    for stage_name, stage in spec.stages.items():
        database = None
        if stage.database:
            database = ctx.session.scalar(
                select(TargetDatabase).where(TargetDatabase.name == stage.database))
        row = ServiceStage(
            stage=stage_name, position=list(project.stages).index(stage_name), mode=stage.mode,
            path=stage.path, database=database, batch=str(stage.batch), parallel=stage.parallel,
            keep_releases=stage.keep_releases, zone=stage.zone,
        )
        targets = [("deploy", "", n) for n in stage.hosts]
        targets += [("deploy", lane, n) for lane, ls in stage.lanes.items() for n in ls.hosts]
        targets += [("job", "", n) for n in stage.job_hosts]
        hosts = _host_rows(ctx, [t[2] for t in targets])
        for position, ((kind, lane, _), host) in enumerate(zip(targets, hosts, strict=True)):
            row.hosts.append(StageHost(kind=kind, lane=lane, host=host, position=position))
        service.stages.append(row)


def _prune_project_children(ctx: _Context, project: Project, spec: ProjectSpec) -> None:
    wanted_services = {s.name for s in spec.services}
    for service in list(project.services):
        if service.name in wanted_services:
            continue
        label = f"{project.name}/{service.name}"
        if not ctx.prune:
            ctx.report.add("service", label, "kept")
            continue
        used = ctx.session.scalar(select(OrderItem.id).where(OrderItem.service_id == service.id))
        if used is not None:
            raise InputError(f"service {label} is not in the file but has orders; "
                             "it cannot be removed with --prune")
        project.services.remove(service)
        ctx.report.add("service", label, "removed")
    wanted_channels = {c.name or f"{c.type}-{i + 1}" for i, c in enumerate(spec.notify)}
    for channel in list(project.channels):
        if channel.name not in wanted_channels:
            _prune_or_keep(ctx, "channel", f"{project.name}/{channel.name}",
                           lambda c=channel: project.channels.remove(c))
    wanted_members = {(m.user, r) for m in spec.members for r in m.roles}
    for member in list(project.members):
        if (member.user.name, member.role) not in wanted_members:
            _prune_or_keep(ctx, "member", f"{project.name}/{member.user.name}:{member.role}",
                           lambda m=member: project.members.remove(m))


def _prune_or_keep(ctx: _Context, kind: str, label: str, remove: object) -> None:
    if ctx.prune:
        remove()  # type: ignore[operator]
        ctx.report.add(kind, label, "removed")
    else:
        ctx.report.add(kind, label, "kept")


def _report_unlisted(ctx: _Context) -> None:
    """Hosts and databases in the store but not in the file: kept, or pruned if unused.

    Used means named by a stage, or in a ledger: the ledger must stay true.
    """
    in_file = {h.name for h in ctx.loaded.config.hosts}
    for host in ctx.session.scalars(select(Host).order_by(Host.name)):
        if host.name in in_file:
            continue
        used = (ctx.session.scalar(select(StageHost.id).where(StageHost.host_id == host.id))
                or ctx.session.scalar(select(JobLedger.id).where(JobLedger.host_id == host.id)))
        if ctx.prune and used is None:
            ctx.session.delete(host)
            ctx.report.add("host", host.name, "removed")
        else:
            ctx.report.add("host", host.name, "kept")
    in_file = {d.name for d in ctx.loaded.config.databases}
    for db in ctx.session.scalars(select(TargetDatabase).order_by(TargetDatabase.name)):
        if db.name in in_file:
            continue
        used = (ctx.session.scalar(
                    select(ServiceStage.id).where(ServiceStage.database_id == db.id))
                or ctx.session.scalar(
                    select(SqlExecution.id).where(SqlExecution.database_id == db.id)))
        if ctx.prune and used is None:
            ctx.session.delete(db)
            ctx.report.add("database", db.name, "removed")
        else:
            ctx.report.add("database", db.name, "kept")
