"""Logging in and out, and the language switch."""

from __future__ import annotations

from fastapi.responses import RedirectResponse, Response

from golive.api.auth import SESSION_COOKIE, authenticate, client_address, over_https
from golive.errors import LoginRefused
from golive.services import accounts
from golive.web import i18n
from golive.web.i18n import gettext as _
from golive.web.page import LANGUAGE_COOKIE, Page, page


def safe_next(target: str) -> str:
    """Where to go after logging in: a path of this site only (never another site)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@page("/login", public=True)
def login_form(p: Page) -> Response:
    target = safe_next(p.request.query_params.get("next", "/"))
    if p.user is not None:  # already logged in (not back to /login: round in circles)
        return p.redirect("/" if target.startswith("/login") else target)
    return p.render("login.html", next=target, user="", errors={})


@page("/login", methods=("POST",), public=True)
def log_in(p: Page) -> Response:
    target, name = safe_next(p.value("next", "/")), p.value("user").strip()
    address = client_address(p.request)
    try:
        user = accounts.check_password(p.session, name, p.value("password"), address)
    except LoginRefused as exc:
        p.session.commit()  # the failure is counted although the login is refused
        message = _("The user name or the password is wrong.")
        if exc.retry_after:
            message = _("Too many failed logins: try again in %(minutes)d minutes.") % {
                "minutes": max(1, exc.retry_after // 60)}
        return p.render("login.html", status=401, next=target, user=name,
                        errors={"": message})
    opened = accounts.open_session(p.session, user, address)
    p.session.commit()
    response = p.redirect(target)
    response.set_cookie(SESSION_COOKIE, opened.cookie, max_age=accounts.SESSION_DAYS * 86400,
                        httponly=True, samesite="lax", secure=over_https(p.request), path="/")
    return response


@page("/logout", methods=("POST",))
def log_out(p: Page) -> Response:
    authenticate(p.request, p.session, write=True, csrf=p.value("csrf_token"))
    accounts.close_session(p.session, p.request.cookies.get(SESSION_COOKIE, ""))
    p.session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@page("/language", methods=("POST",), public=True)
def switch_language(p: Page) -> Response:
    """Pick the pages' language: on this browser, and in the profile when logged in."""
    chosen = p.value("language")
    if chosen not in i18n.LOCALES:
        chosen = ""
    if p.user is not None and chosen:
        p.act("user.update", user=p.user.name, body={"language": chosen})
    response = p.redirect(safe_next(p.value("next", "/")))
    response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=365 * 86400, samesite="lax",
                        path="/")
    return response
