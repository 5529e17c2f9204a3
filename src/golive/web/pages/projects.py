"""Projects and their settings: the list, a project's settings page (services and their
per-stage settings, lanes, hosts, databases, members, notification channels, release
windows) and its golive.yaml exported and imported.

Forms change members (add, set roles, remove), test a channel, check a host and trust
its new key; everything else is changed as code: the project's YAML is exported, edited
and applied (``project.apply``, a site admin's), which changes only what it names and
keeps the stored values of the ``${VAR}``s the export wrote.
Each write goes through the operation table, so it is refused with the API's words.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from golive.api.schemas.settings import MAX_CONFIG_TEXT
from golive.domain.roles import ALL_ROLES
from golive.domain.secrets import mask_url_passwords
from golive.errors import InputError
from golive.web.i18n import gettext as _
from golive.web.page import SECURITY_HEADERS, Page, field_errors, page


def _url(project: str, *rest: str) -> str:
    return "/".join(["/projects", quote(project, safe=""), *(quote(r, safe="") for r in rest)])


@page("/projects")
def project_list(p: Page) -> Response:
    return p.render("projects_list.html", projects=p.read("project.list"))


# -- the settings page ----------------------------------------------------------------------


def _used_hosts(services: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for service in services:
        for stage in service["stages"].values():
            names.update(stage["hosts"], stage["job_hosts"])
            for hosts in stage["lanes"].values():
                names.update(hosts)
    return names


def _lanes(detail: dict[str, Any], holds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each lane of each stage: its hosts, the services deployed there, who holds it."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for service in detail["services"]:
        for stage_name, stage in service["stages"].items():
            for lane, hosts in stage["lanes"].items():
                row = found.setdefault((stage_name, lane), {
                    "stage": stage_name, "lane": lane, "hosts": [], "services": [],
                    "hold": None})
                row["services"].append(service["name"])
                row["hosts"] += [h for h in hosts if h not in row["hosts"]]
    for hold in holds:
        if (hold["stage"], hold["lane"]) in found:
            found[(hold["stage"], hold["lane"])]["hold"] = hold
    order = {name: i for i, name in enumerate(detail["stages"])}
    return sorted(found.values(), key=lambda r: (order.get(r["stage"], 99), r["lane"]))


def _can_manage(p: Page, detail: dict[str, Any]) -> bool:
    mine: list[str] = next(
        (m["roles"] for m in detail["members"] if m["user"] == p.me.name), [])
    return p.me.is_admin or "owner" in mine


def _settings_page(p: Page, project: str, *, errors: dict[str, str] | None = None,
                   form: dict[str, Any] | None = None, status: int = 200) -> Response:
    detail = p.read("project.show", project=project)
    manage = _can_manage(p, detail)
    used = _used_hosts(detail["services"])
    databases = {s["database"] for svc in detail["services"] for s in svc["stages"].values()}
    return p.render(
        "project_settings.html", status=status, project=detail, manage=manage,
        admin=p.me.is_admin, roles=ALL_ROLES,
        hosts=[h for h in p.read("host.list") if h["name"] in used],
        databases=[d for d in p.read("database.list") if d["name"] in databases],
        lanes=_lanes(detail, p.read("lane.list", project=project)),
        users=[u["name"] for u in p.read("user.list")] if manage else [],
        errors=errors or {}, form=form or {})


@page("/projects/{project}")
def project_settings(p: Page, project: str) -> Response:
    return _settings_page(p, project)


# -- members -------------------------------------------------------------------------------


@page("/projects/{project}/members", methods=("POST",))
def add_member(p: Page, project: str) -> Response:
    user, roles = p.value("user").strip(), p.values("roles")
    try:
        p.act("member.add", project=project, body={"user": user, "roles": roles})
    except ValidationError as exc:
        # the request model bounds sizes: say what to do in the reader's language
        found = field_errors(exc)
        errors = {"user": _("Enter the user's name.") if not user else found.get("user", ""),
                  "roles": _("Choose at least one role.") if not roles else found.get(
                      "roles", "")}
        return _settings_page(p, project, errors={k: v for k, v in errors.items() if v},
                              form={"user": user, "roles": roles}, status=422)
    except InputError as exc:
        return _settings_page(p, project, errors={"user": exc.message},
                              form={"user": user, "roles": roles}, status=422)
    return p.redirect(_url(project) + "#members",
                      flash=_("%(user)s is now a member of %(project)s")
                      % {"user": user, "project": project})


@page("/projects/{project}/members/{user}", methods=("POST",))
def set_member_roles(p: Page, project: str, user: str) -> Response:
    roles = p.values("roles")
    try:
        p.act("member.set_roles", project=project, user=user, body={"roles": roles})
    except ValidationError:
        return _settings_page(p, project, status=422, errors={
            f"roles-{user}": _("Choose at least one role, or remove the member.")})
    except InputError as exc:
        return _settings_page(p, project, errors={f"roles-{user}": exc.message}, status=422)
    return p.redirect(_url(project) + "#members",
                      flash=_("The roles of %(user)s are saved") % {"user": user})


@page("/projects/{project}/members/{user}/remove", methods=("POST",))
def remove_member(p: Page, project: str, user: str) -> Response:
    try:
        p.act("member.remove", project=project, user=user)
    except InputError as exc:
        return _settings_page(p, project, errors={f"roles-{user}": exc.message}, status=422)
    return p.redirect(_url(project) + "#members",
                      flash=_("%(user)s is no longer a member of %(project)s")
                      % {"user": user, "project": project})


# -- channels and hosts ------------------------------------------------------------------------


@page("/projects/{project}/channels/{channel}/test", methods=("POST",))
def test_channel(p: Page, project: str, channel: str) -> Response:
    answer = p.act("notify.test", project=project, channel=channel)
    status = answer["status"] if answer["status"] is not None else "-"
    reply = answer["error"] or answer["body"]
    if answer["ok"]:
        text = _("Test message sent through %(channel)s: the vendor answered %(status)s %(reply)s")
    else:
        text = _("The test message through %(channel)s failed: %(status)s %(reply)s")
    return p.redirect(_url(project) + "#channels", kind="ok" if answer["ok"] else "bad",
                      flash=text % {"channel": channel, "status": status, "reply": reply})


@page("/projects/{project}/hosts/{host}/check", methods=("POST",))
def check_host(p: Page, project: str, host: str) -> Response:
    found = p.act("host.check", host=host)
    disk = "; ".join(f"{path}: {free}" for path, free in found["disk"].items())
    if found["reachable"]:
        text = _("%(host)s answered. Host key: %(key)s. Disk: %(disk)s") % {
            "host": host, "key": found["host_key"] or _("none (local host)"), "disk": disk}
    else:
        text = _("%(host)s did not answer: %(message)s") % {
            "host": host, "message": found["message"]}
    return p.redirect(_url(project) + "#hosts", flash=text,
                      kind="ok" if found["reachable"] else "bad")


@page("/projects/{project}/hosts/{host}/trust", methods=("POST",))
def trust_host(p: Page, project: str, host: str) -> Response:
    found = p.act("host.trust", host=host)
    return p.redirect(_url(project) + "#hosts", flash=_(
        "The key of %(host)s is pinned: %(new)s (before: %(old)s)") % {
        "host": host, "new": found["new_key"], "old": found["old_key"] or _("none")})


# -- golive.yaml out and in ------------------------------------------------------------------


def _config_page(p: Page, project: str, *, text: str | None = None, secrets: str = "",
                 errors: dict[str, str] | None = None, status: int = 200) -> Response:
    exported = p.read("project.export", project=project)["text"]
    manage = _can_manage(p, p.read("project.show", project=project))
    return p.render("project_config.html", status=status, project=project,
                    exported=exported, text=exported if text is None else text,
                    secrets=secrets, errors=errors or {}, admin=manage)


@page("/projects/{project}/config")
def project_config(p: Page, project: str) -> Response:
    return _config_page(p, project)


@page("/projects/{project}/config/golive.yaml")
def download_config(p: Page, project: str) -> Response:
    text = p.read("project.export", project=project)["text"]
    name = f"{project}.golive.yaml"
    headers = {**SECURITY_HEADERS,
               "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    return Response(text, media_type="application/yaml; charset=utf-8", headers=headers)


def _secrets(text: str) -> dict[str, str]:
    """``NAME=value`` lines (blank lines and ``#`` comments skipped)."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise InputError(_("line %(n)d: write NAME=value") % {"n": number})
        found[name.strip()] = value
    return found


def _uploaded(p: Page) -> tuple[str, str] | None:
    """The uploaded file's name and text, when one was chosen."""
    upload = p.form.get("file") if p.form is not None else None
    if not isinstance(upload, UploadFile):
        return None
    if not upload.filename:
        return None
    raw = upload.file.read(MAX_CONFIG_TEXT + 1)  # the page frame closes the form's files
    if len(raw) > MAX_CONFIG_TEXT:
        raise InputError(_("The file is larger than %(n)d bytes") % {"n": MAX_CONFIG_TEXT})
    try:
        return upload.filename, raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(_("The file is not UTF-8 text")) from None


def _shown(message: str) -> str:
    """A config error as shown: passwords in URLs masked. (Not ``mask_text``: the error
    names the field, ``…webhook: environment variable X is not set``, which it would take
    for a secret's value and hide.)"""
    return mask_url_passwords(message)


@page("/projects/{project}/config", methods=("POST",))
def import_config(p: Page, project: str) -> Response:
    text, secret_lines = p.value("text"), p.value("secrets")
    try:
        file_name, text = _uploaded(p) or (f"{project}.golive.yaml", text)
    except InputError as exc:
        return _config_page(p, project, text=text, secrets=secret_lines, status=422,
                            errors={"file": exc.message})
    try:
        secrets = _secrets(secret_lines)
    except InputError as exc:
        return _config_page(p, project, text=text, secrets=secret_lines, status=422,
                            errors={"secrets": exc.message})
    body = {"text": text, "file_name": file_name, "secrets": secrets}
    try:
        applied = p.act("project.apply", project=project, body=body)
    except ValidationError as exc:
        return _config_page(p, project, text=text, secrets=secret_lines, status=422,
                            errors={"text": _shown("; ".join(field_errors(exc).values()))})
    except InputError as exc:
        return _config_page(p, project, text=text, secrets=secret_lines, status=422,
                            errors={"text": _shown(exc.message)})
    changed = [c for c in applied["changes"] if c["action"] in ("created", "updated")]
    return p.redirect(_url(project), flash=_("%(file)s applied: %(n)d changes") % {
        "file": file_name, "n": len(changed)})
