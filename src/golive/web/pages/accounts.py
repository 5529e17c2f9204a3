"""Accounts: my profile and password, my API tokens, the site admins' user management
and the audit log.

Every write goes through the operation table (``user.update``, ``user.password``,
``token.*``, ``user.add``), so the page is refused exactly what the API and the CLI
are; bad input comes back as the form again with the error beside its field.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response
from pydantic import ValidationError

from golive.api.auth import SESSION_COOKIE, client_address
from golive.errors import InputError, LoginRefused, NotFound, PermissionDenied
from golive.services import accounts
from golive.services.users import PROFILE_FIELDS
from golive.web import i18n
from golive.web.i18n import N_
from golive.web.i18n import gettext as _
from golive.web.page import LANGUAGE_COOKIE, Page, field_errors, page

LANGUAGE_CHOICES = (("", N_("The browser's language")), ("en", "English"), ("zh_CN", "中文"))
AUDIT_LIMITS = (50, 200, 1000)

Errors = dict[str, str]


def beside(exc: InputError | ValidationError, fields: tuple[str, ...], fallback: str) -> Errors:
    """An error by the field it is about: a model's errors by their path, a service's
    message by the field it starts with (``language 'x' is not one of ...``), else
    ``fallback``'s."""
    if isinstance(exc, ValidationError):
        return field_errors(exc)
    about = next((name for name in fields if exc.message.startswith(name)), fallback)
    return {about: exc.message}


def language_options() -> list[tuple[str, str]]:
    return [(value, _(label) if not value else label) for value, label in LANGUAGE_CHOICES]


def profile_changes(p: Page) -> dict[str, str]:
    return {name: p.value(name).strip() for name in PROFILE_FIELDS}


# --- my profile and password --------------------------------------------------------


@page("/profile")
def profile(p: Page) -> Response:
    return _profile_page(p, p.read("user.me"))


def _profile_page(p: Page, user: dict[str, Any], errors: Errors | None = None,
                  password_errors: Errors | None = None, status: int = 200) -> Response:
    return p.render("profile.html", status=status, user=user, errors=errors or {},
                    password_errors=password_errors or {}, languages=language_options())


@page("/profile", methods=("POST",))
def save_profile(p: Page) -> Response:
    changes = profile_changes(p)
    try:
        p.act("user.update", user=p.me.name, body=changes)
    except (InputError, ValidationError) as exc:
        shown = {**p.read("user.me"), **changes}
        return _profile_page(p, shown, errors=beside(exc, PROFILE_FIELDS, ""), status=422)
    # the next page speaks the language just chosen: so does its message
    here = p.request.cookies.get(LANGUAGE_COOKIE, "")
    chosen = i18n.choose(changes["language"], here,
                         p.request.headers.get("accept-language", ""))
    with i18n.use(chosen):
        response = p.redirect("/profile", flash=_("Your profile is saved."))
    if not changes["language"]:  # the browser's language: forget the switch's choice too
        response.delete_cookie(LANGUAGE_COOKIE, path="/")
    return response


@page("/profile/password", methods=("POST",))
def change_my_password(p: Page) -> Response:
    errors = _password_problems(p.value("password"), p.value("repeat"))
    if not errors:
        try:
            accounts.check_password(p.session, p.me.name, p.value("current"),
                                    client_address(p.request))
        except LoginRefused as exc:
            errors = {"current": _("This is not your current password.")}
            if exc.retry_after:  # guessed too often: not even the right one is checked
                errors = {"current": _("Too many failed logins: try again in %(minutes)d "
                                       "minutes.") % {"minutes": max(1, exc.retry_after // 60)}}
        p.session.commit()  # a wrong guess is counted, as a failed login is
    if not errors:
        try:
            p.act("user.password", user=p.me.name, body={"password": p.value("password")})
        except (InputError, ValidationError) as exc:
            errors = beside(exc, (), "password")
    if errors:
        return _profile_page(p, p.read("user.me"), password_errors=errors, status=422)
    return _logged_out(p)


def _logged_out(p: Page) -> Response:
    """After my password changed: every login session of mine has ended, this one too."""
    response = p.redirect("/login", flash=_("Your password is changed and you are logged "
                                            "out everywhere: log in with the new password."))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _password_problems(password: str, repeat: str) -> Errors:
    if len(password) < accounts.MIN_PASSWORD:
        return {"password": _("A password needs at least %(n)d characters.") % {
            "n": accounts.MIN_PASSWORD}}
    if password != repeat:
        return {"repeat": _("The two passwords differ.")}
    return {}


# --- my API tokens -------------------------------------------------------------------


@page("/tokens")
def tokens(p: Page) -> Response:
    return _tokens_page(p)


def _tokens_page(p: Page, *, created: dict[str, Any] | None = None, errors: Errors | None = None,
                 form: dict[str, str] | None = None, status: int = 200) -> Response:
    response = p.render("tokens.html", status=status, tokens=p.read("token.list"),
                        created=created, errors=errors or {},
                        form=form or {"name": "", "expires_in_days": "90"})
    if created is not None:  # the secret is on this page only: no cache may keep it
        response.headers["Cache-Control"] = "no-store"
    return response


@page("/tokens", methods=("POST",))
def create_token(p: Page) -> Response:
    form = {"name": p.value("name").strip(), "expires_in_days": p.value("expires_in_days").strip()}
    days = form["expires_in_days"]
    if days and not days.isdigit():
        errors = {"expires_in_days": _("Give a whole number of days, or leave it empty for a "
                                       "token that does not expire.")}
        return _tokens_page(p, errors=errors, form=form, status=422)
    body = {"name": form["name"], "expires_in_days": int(days) if days else None}
    try:
        created = p.act("token.create", body=body)
    except (InputError, ValidationError) as exc:
        return _tokens_page(p, errors=beside(exc, ("name",), "name"), form=form, status=422)
    return _tokens_page(p, created=created)


@page("/tokens/{token_id:int}/revoke", methods=("POST",))
def revoke_token(p: Page, token_id: int) -> Response:
    revoked = p.act("token.revoke", token_id=token_id)
    return p.redirect("/tokens", flash=_("Token %(name)s is revoked: it no longer works.") % {
        "name": revoked["name"]})


# --- site admins: the users ------------------------------------------------------------


def require_admin(p: Page) -> None:
    """The user pages are for site admins (the operations refuse others their writes;
    the list would be readable, but managing it is not theirs)."""
    if not p.me.is_admin:
        raise PermissionDenied(_("Only site admins manage users."), needed_roles=("admin",))


def find_user(p: Page, name: str) -> dict[str, Any]:
    found = next((u for u in p.read("user.list") if u["name"] == name), None)
    if found is None:
        raise NotFound("user", name)
    return found


@page("/admin/users")
def users(p: Page) -> Response:
    require_admin(p)
    return _users_page(p)


def _users_page(p: Page, errors: Errors | None = None, form: dict[str, Any] | None = None,
                status: int = 200) -> Response:
    return p.render("users.html", status=status, users=p.read("user.list"),
                    errors=errors or {}, form=form or {}, languages=language_options())


NEW_USER_FIELDS = ("name", "display_name", "email", "mobile", "language")


@page("/admin/users", methods=("POST",))
def add_user(p: Page) -> Response:
    require_admin(p)
    form: dict[str, Any] = {name: p.value(name).strip() for name in NEW_USER_FIELDS}
    form["admin"] = p.value("admin") == "yes"
    password = p.value("password")
    # checked before the user is added: never a user whose password was refused
    if password and len(password) < accounts.MIN_PASSWORD:
        return _users_page(p, _password_problems(password, password), form, 422)
    try:
        p.act("user.add", body=form)
    except (InputError, ValidationError) as exc:
        # the services' words: "language ..." or about the name ("'x' is not a valid
        # name", "user x already exists"); the model's: by field
        errors = beside(exc, ("language",), "name")
        return _users_page(p, errors, form, 422)
    if password:
        p.act("user.password", user=form["name"], body={"password": password})
        return p.redirect("/admin/users", flash=_("User %(name)s is added and can log in.") % {
            "name": form["name"]})
    return p.redirect(f"/admin/users/{form['name']}", flash=_(
        "User %(name)s is added. Set a password so that they can log in.") % {
        "name": form["name"]})


@page("/admin/users/{name}")
def edit_user(p: Page, name: str) -> Response:
    require_admin(p)
    return _user_page(p, find_user(p, name))


def _user_page(p: Page, user: dict[str, Any], errors: Errors | None = None,
               password_errors: Errors | None = None, status: int = 200) -> Response:
    return p.render("user_edit.html", status=status, user=user, errors=errors or {},
                    password_errors=password_errors or {}, languages=language_options())


@page("/admin/users/{name}", methods=("POST",))
def save_user(p: Page, name: str) -> Response:
    require_admin(p)
    changes = profile_changes(p)
    try:
        p.act("user.update", user=name, body=changes)
    except (InputError, ValidationError) as exc:
        shown = {**find_user(p, name), **changes}
        return _user_page(p, shown, errors=beside(exc, PROFILE_FIELDS, ""), status=422)
    return p.redirect(f"/admin/users/{name}", flash=_("The profile of %(name)s is saved.") % {
        "name": name})


@page("/admin/users/{name}/password", methods=("POST",))
def set_user_password(p: Page, name: str) -> Response:
    require_admin(p)
    errors = _password_problems(p.value("password"), p.value("repeat"))
    if not errors:
        try:
            p.act("user.password", user=name, body={"password": p.value("password")})
        except (InputError, ValidationError) as exc:
            errors = beside(exc, (), "password")
    if errors:
        return _user_page(p, find_user(p, name), password_errors=errors, status=422)
    if name == p.me.name:  # my own sessions ended with it, this one too
        return _logged_out(p)
    return p.redirect(f"/admin/users/{name}", flash=_(
        "The password of %(name)s is set; their login sessions have ended.") % {"name": name})


# --- the audit log ---------------------------------------------------------------------


@page("/audit")
def audit_log(p: Page) -> Response:
    project = p.request.query_params.get("project", "")
    limit_text = p.request.query_params.get("limit", "200")
    limit = int(limit_text) if limit_text.isdigit() and int(limit_text) in AUDIT_LIMITS \
        else 200
    entries = p.read("audit.list", project=project, limit=limit)
    projects = [row["name"] for row in p.read("project.list")
                if p.me.is_admin or "owner" in row["roles"]]
    return p.render("audit.html", entries=entries, projects=projects, project=project,
                    limit=limit, limits=AUDIT_LIMITS)
