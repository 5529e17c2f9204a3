"""One page request: who is looking, in which language, what they read and what they do.

A page handler is a plain function ``handler(p: Page, **path_params) -> Response``,
registered with :func:`page`. It runs in a worker thread with one store session
(``p.session``) for its reads; it reads through the operation table (``p.read``) and
writes through it too (``p.act``), so a page can show and do exactly what the API and
the CLI can — with the same permission checks, audit entries and error words.

Writes come from HTML forms (they work without JavaScript): each carries the login
session's CSRF token in a hidden ``csrf_token`` field, checked by the same code that
checks the API's ``X-CSRF-Token`` header. After a write the handler redirects (303) with
a flash message; on bad input it renders the form again with the errors beside the
fields (:func:`field_errors`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from golive.api.auth import SESSION_COOKIE, authenticate
from golive.api.errors import status_of
from golive.api.registry import OPERATIONS, Work, as_params, call_local
from golive.api.routes import perform
from golive.domain.secrets import mask_text
from golive.errors import CsrfRefused, GoliveError, NotAuthenticated
from golive.services import accounts
from golive.services.runtime import Runtime
from golive.store.models import User
from golive.web import i18n
from golive.web.i18n import gettext as _
from golive.web.render import render

FLASH_COOKIE = "golive_flash"
LANGUAGE_COOKIE = "golive_lang"
"""The language picked with the switch on this browser (before or without logging in)."""
SECURITY_HEADERS = {
    # our own scripts and styles only: no inline script can run if text slips through
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)

Handler = Callable[..., Response]


@dataclass
class Page:
    request: Request
    runtime: Runtime
    session: Session
    user: User | None
    csrf_token: str
    form: FormData | None
    flash: tuple[str, str] | None = None

    @property
    def locale(self) -> str:
        return i18n.current()

    @property
    def me(self) -> User:
        """The logged-in user (pages that are not public always have one)."""
        if self.user is None:
            raise NotAuthenticated(_("log in first"))
        return self.user

    def value(self, name: str, default: str = "") -> str:
        """A form field's text (the first, if given several times)."""
        found = self.form.get(name) if self.form is not None else None
        return found if isinstance(found, str) else default

    def values(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [v for v in self.form.getlist(name) if isinstance(v, str)]

    def read(self, name: str, **params: Any) -> Any:
        """Run the read operation ``name`` as the viewer: its JSON-ready answer."""
        return call_local(Work(self.runtime, self.session, self.me), name, params)

    def act(self, name: str, **params: Any) -> Any:
        """Run the write operation ``name`` as the viewer, with the form's CSRF token, in a
        transaction of its own: audited, committed, its deployments started."""
        op = OPERATIONS[name]
        csrf = self.value("csrf_token")
        self.session.commit()  # nothing of ours may hold a lock the write waits for
        return perform(self.request, op, as_params(op, params),
                       lambda session: authenticate(self.request, session, write=True,
                                                    csrf=csrf))

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        base = {"me": self.user, "csrf_token": self.csrf_token, "locale": self.locale,
                "locales": i18n.LOCALES, "flash": self.flash, "path": self.request.url.path,
                "request": self.request}
        response = HTMLResponse(render(template, {**base, **context}), status_code=status)
        if self.flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return _secured(response)

    def redirect(self, url: str, flash: str = "", kind: str = "ok") -> RedirectResponse:
        """To ``url`` after a write (303: the browser GETs it), with a one-time message."""
        response = RedirectResponse(url, status_code=303)
        if kind != "ok":  # a refusal may quote a command or a repository URL
            flash = mask_text(flash)
        if flash:
            response.set_cookie(FLASH_COOKIE, quote(json.dumps([kind, flash])), max_age=60,
                                httponly=True, samesite="lax", path="/")
        return response


def page(path: str, *, methods: tuple[str, ...] = ("GET",), public: bool = False
         ) -> Callable[[Handler], Handler]:
    """Register ``handler(p, **path_params)`` at ``path`` (starlette path syntax, e.g.
    ``/orders/{number:int}``). ``public``: also for visitors who are not logged in."""
    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if request.method != "POST":
                return await run_in_threadpool(_serve, handler, request, None, public)
            async with request.form() as form:  # closes uploaded files after the handler
                return await run_in_threadpool(_serve, handler, request, form, public)

        endpoint.__name__ = handler.__name__
        router.add_api_route(path, endpoint, methods=list(methods), name=handler.__name__,
                             response_class=HTMLResponse)
        return handler
    return register


def _serve(handler: Handler, request: Request, form: FormData | None,
           public: bool) -> Response:
    runtime: Runtime = request.app.state.runtime
    here = request.cookies.get(LANGUAGE_COOKIE, "")
    browser = i18n.choose("", here, request.headers.get("accept-language", ""))
    with i18n.use(browser), runtime.store.session() as session:
        try:
            user, csrf = _viewer(request, session)
            session.commit()
            if user is None and not public:
                raise NotAuthenticated(_("log in first"))
            locale = i18n.choose(user.language if user else "", here, browser)
            with i18n.use(locale):
                p = Page(request, runtime, session, user, csrf, form, _flash(request))
                return handler(p, **request.path_params)
        except NotAuthenticated:
            session.rollback()
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        except GoliveError as exc:
            session.rollback()
            return error_page(request, exc)


def _viewer(request: Request, session: Session) -> tuple[User | None, str]:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    found = accounts.session_for(session, cookie) if cookie else None
    if found is None:
        return None, ""
    return found.user, found.csrf_token


def _flash(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE, "")
    try:
        kind, text = json.loads(unquote(raw)) if raw else (None, None)
    except (ValueError, TypeError):
        return None
    return (str(kind), str(text)) if kind and text else None


def error_title(exc: GoliveError) -> str:
    """What kind of refusal or failure it is, in the reader's language (the message
    itself comes from the services, in English)."""
    if isinstance(exc, CsrfRefused):
        return _("The form has expired: reload the page and try again")
    return {403: _("Not allowed"), 404: _("Not found"), 409: _("Refused"),
            422: _("Bad input"), 502: _("A host or repository failed")}.get(
        status_of(exc), _("Something went wrong"))


def refusal(exc: GoliveError) -> str:
    """A refusal as one line for a flash message: its kind, then the services' words."""
    return f"{error_title(exc)}: {exc.message}"


def error_page(request: Request, exc: GoliveError) -> Response:
    """A refusal or failure as a page: the status the API would answer, the message."""
    status, title = status_of(exc), error_title(exc)
    body = render("error.html", {"me": None, "csrf_token": "", "locale": i18n.current(),
                                 "locales": i18n.LOCALES, "flash": None, "title": title,
                                 "message": mask_text(exc.message), "status": status,
                                 "path": request.url.path, "request": request})
    return _secured(HTMLResponse(body, status_code=status))


def field_errors(exc: ValidationError) -> dict[str, str]:
    """A request model's validation errors by field path (``items.0.branch``), to show
    each beside its field."""
    found: dict[str, str] = {}
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        found.setdefault(path, error["msg"])
    return found


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
