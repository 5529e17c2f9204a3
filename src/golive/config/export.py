"""The store's configuration as golive.yaml specs, and as the exported file.

``*_spec`` functions read a row back into its schema model with secrets in
clear; ``apply`` compares them with the file to decide what changed, and
``export_config`` writes them out with secrets as ``${...}`` placeholders
(or in clear with ``with_secrets``). apply(export()) therefore changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from golive.config.schema import (
    CHANNEL_SECRET_FIELDS,
    ChannelSpec,
    DatabaseSpec,
    GoliveConfig,
    HealthCheckSpec,
    HostSpec,
    LaneSpec,
    MemberSpec,
    ProjectSpec,
    ServiceSpec,
    StageSpec,
)
from golive.store.models import Channel, Host, Project, Service, ServiceStage, TargetDatabase
from golive.store.secrets import SecretBox


def placeholder(*parts: str) -> str:
    """``${SHOP_PROD_PASSWORD}`` from ('shop-prod', 'password')."""
    name = "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_").upper() for p in parts)
    return "${" + name + "}"


def host_spec(host: Host, box: SecretBox) -> HostSpec:
    return HostSpec(
        name=host.name, transport=host.transport,
        address=host.address, port=host.port, user=host.user, key=host.key_path,
        password=box.open(host.password_enc) if host.password_enc else "",
        private_key=box.open(host.private_key_enc) if host.private_key_enc else "",
        root=host.root, proxy_jump=host.proxy_jump, zone=host.zone, labels=dict(host.labels),
    )


def database_spec(database: TargetDatabase, box: SecretBox) -> DatabaseSpec:
    return DatabaseSpec(name=database.name, url=box.open(database.url_enc),
                        statement_timeout=database.statement_timeout)


def _stage_spec(stage: ServiceStage) -> StageSpec:
    deploy = [sh for sh in stage.hosts if sh.kind == "deploy"]
    lanes: dict[str, list[str]] = {}
    for sh in deploy:
        if sh.lane:
            lanes.setdefault(sh.lane, []).append(sh.host.name)
    return StageSpec(
        mode=stage.mode,
        path=stage.path,
        hosts=[sh.host.name for sh in deploy if not sh.lane],
        lanes={lane: LaneSpec(hosts=names) for lane, names in lanes.items()},
        database=stage.database.name if stage.database else "",
        job_hosts=[sh.host.name for sh in stage.hosts if sh.kind == "job"],
        batch=int(stage.batch) if stage.batch.isdigit() else stage.batch,
        parallel=stage.parallel,
        keep_releases=stage.keep_releases,
        zone=stage.zone,
    )


def service_spec(service: Service) -> ServiceSpec:
    check = HealthCheckSpec(**service.health_check) if service.health_check else None
    return ServiceSpec(
        name=service.name, repo=service.repo, main_branch=service.main_branch,
        build=service.build, build_timeout=service.build_timeout, pack=list(service.pack),
        exclude=list(service.exclude), shared=list(service.shared),
        post_deploy=list(service.post_deploy), rollback_hooks=list(service.rollback_hooks),
        health_check=check, stages={s.stage: _stage_spec(s) for s in service.stages},
    )


def channel_spec(channel: Channel, box: SecretBox) -> ChannelSpec:
    secrets: dict[str, Any] = {}
    if channel.secrets_enc:
        secrets = yaml.safe_load(box.open(channel.secrets_enc)) or {}
    return ChannelSpec(
        type=channel.type, name=channel.name,
        language=channel.language,
        events=list(channel.events), **channel.settings, **secrets,
    )


def member_specs(project: Project) -> list[MemberSpec]:
    roles: dict[str, list[str]] = {}
    for member in sorted(project.members, key=lambda m: (m.user.name, m.role)):
        roles.setdefault(member.user.name, []).append(member.role)
    return [MemberSpec(user=u, roles=r) for u, r in roles.items()]


PROJECT_SETTINGS = ("stages", "auto_promote", "auto_release", "release_windows",
                    "release_timezone", "delete_branch_after_release", "redeploy_on_push")


def project_fields(project: Project) -> dict[str, Any]:
    """The project's settings as stored (golive.yaml's ``freeze`` is ``freeze_dates``)."""
    fields = {name: getattr(project, name) for name in PROJECT_SETTINGS}
    fields["stages"], fields["release_windows"] = list(project.stages), list(
        project.release_windows)
    fields["freeze_dates"] = list(project.freeze_dates or ())
    return fields


def project_fields_of(spec: ProjectSpec) -> dict[str, Any]:
    """The same settings from golive.yaml, to compare and to store."""
    fields = spec.model_dump(include=set(PROJECT_SETTINGS))
    fields["freeze_dates"] = list(spec.freeze)
    return fields


def project_spec(project: Project, box: SecretBox) -> ProjectSpec:
    fields = project_fields(project)
    fields["freeze"] = fields.pop("freeze_dates")
    return ProjectSpec(
        name=project.name, **fields,
        push_secret=box.open(project.push_secret_enc) if project.push_secret_enc else "",
        notify=[channel_spec(c, box) for c in project.channels],
        members=member_specs(project),
        services=[service_spec(s) for s in project.services],
    )


def current_config(session: Session, box: SecretBox) -> GoliveConfig:
    """Everything in the store that golive.yaml describes, secrets in clear."""
    hosts = session.scalars(select(Host).order_by(Host.name)).all()
    databases = session.scalars(select(TargetDatabase).order_by(TargetDatabase.name)).all()
    projects = session.scalars(select(Project).order_by(Project.name)).all()
    return GoliveConfig(
        hosts=[host_spec(h, box) for h in hosts],
        databases=[database_spec(d, box) for d in databases],
        projects=[project_spec(p, box) for p in projects],
    )


def _hide_secrets(session: Session, config: GoliveConfig) -> None:
    """Replace every secret with its template from the applied file, or a placeholder."""
    hosts = {h.name: h for h in session.scalars(select(Host))}
    for spec in config.hosts:
        if spec.password:
            spec.password = hosts[spec.name].password_template or placeholder(
                "host", spec.name, "password")
        if spec.private_key:
            spec.private_key = hosts[spec.name].private_key_template or placeholder(
                "host", spec.name, "private_key")
    databases = {d.name: d for d in session.scalars(select(TargetDatabase))}
    for db in config.databases:
        row = databases[db.name]
        if make_url(db.url).password is None:
            continue
        if row.url_template:
            db.url = row.url_template
        else:
            hidden = make_url(db.url).set(password="__PLACEHOLDER__")
            db.url = hidden.render_as_string(hide_password=False).replace(
                "__PLACEHOLDER__", placeholder("db", db.name, "password"))
    for project in config.projects:
        if project.push_secret:  # no template is kept for it: always a placeholder
            project.push_secret = placeholder("project", project.name, "push_secret")
        channels = {c.name: c for c in session.scalars(
            select(Channel).join(Project).where(Project.name == project.name))}
        for channel in project.notify:
            templates = channels[channel.name].secret_templates
            for field in CHANNEL_SECRET_FIELDS:
                if getattr(channel, field):
                    setattr(channel, field, templates.get(field) or placeholder(
                        "channel", project.name, channel.name, field))


def export_config(session: Session, box: SecretBox, *, with_secrets: bool = False) -> str:
    """golive.yaml text of the store's state; secrets as placeholders unless asked."""
    config = current_config(session, box)
    if not with_secrets:
        _hide_secrets(session, config)
    data = config.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
