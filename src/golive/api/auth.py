"""Who is calling: a bearer token, or a login session cookie (with its CSRF token for
writes); and the login / logout routes that open and close sessions.

Cookie: ``golive_session``, HttpOnly, SameSite=Lax, Secure when the request came over
HTTPS. A cookie-authenticated write (POST, PUT, PATCH, DELETE) must send the session's
CSRF token in the ``X-CSRF-Token`` header: another site can make a browser send the
cookie, not read the token. Bearer tokens are not sent by browsers on their own, so
they need no CSRF token.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from golive.api.errors import ERROR_RESPONSES
from golive.errors import CsrfRefused, NotAuthenticated
from golive.services import accounts
from golive.store.models import User

SESSION_COOKIE = "golive_session"
CSRF_HEADER = "X-CSRF-Token"

router = APIRouter(tags=["account"])


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def authenticate(request: Request, session: Session, *, write: bool,
                 csrf: str | None = None) -> User:
    """The acting user, or NotAuthenticated / CsrfRefused. ``csrf``: the token a web form
    sent (instead of the header)."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("the Authorization header must be `Bearer <token>`")
        user = accounts.user_for_token(session, secret.strip())
        if user is None:
            raise NotAuthenticated("the API token is unknown, revoked or expired")
        return user
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie:
        found = accounts.session_for(session, cookie)
        if found is None:
            raise NotAuthenticated("the login session has ended; log in again")
        sent = csrf if csrf is not None else request.headers.get(CSRF_HEADER, "")
        if write and not hmac.compare_digest(sent.encode(), found.csrf_token.encode()):
            raise CsrfRefused(f"a write with a session cookie needs the {CSRF_HEADER} header "
                              "holding the session's CSRF token")
        return found.user
    raise NotAuthenticated("log in, or send an API token as `Authorization: Bearer <token>`")


def over_https(request: Request) -> bool:
    return (request.url.scheme == "https"
            or request.headers.get("x-forwarded-proto", "") == "https")


class LoginRequest(BaseModel):
    user: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class LoginResponse(BaseModel):
    user: str
    csrf_token: str
    """Send it back as the X-CSRF-Token header with every write."""


class LogoutResponse(BaseModel):
    ok: bool


@router.post("/login", response_model=LoginResponse, responses={
    400: ERROR_RESPONSES[400], 401: ERROR_RESPONSES[401],
    429: {"model": ERROR_RESPONSES[401]["model"], "description": "too many failed logins"}})
def login(body: LoginRequest, request: Request, response: Response) -> LoginResponse:
    """Log in with a password: sets the session cookie, returns the CSRF token."""
    runtime = request.app.state.runtime
    with runtime.store.session() as session:
        try:
            user = accounts.check_password(session, body.user, body.password,
                                           client_address(request))
        finally:
            session.commit()  # a failure is counted even though the login is refused
        opened = accounts.open_session(session, user, client_address(request))
        name = user.name
        session.commit()
    response.set_cookie(SESSION_COOKIE, opened.cookie, max_age=accounts.SESSION_DAYS * 86400,
                        httponly=True, samesite="lax", secure=over_https(request), path="/")
    return LoginResponse(user=name, csrf_token=opened.csrf_token)


@router.post("/logout", response_model=LogoutResponse, responses={
    401: ERROR_RESPONSES[401], 403: ERROR_RESPONSES[403]})
def logout(request: Request, response: Response) -> LogoutResponse:
    """End the login session of the cookie."""
    runtime = request.app.state.runtime
    with runtime.store.session() as session:
        authenticate(request, session, write=True)
        accounts.close_session(session, request.cookies.get(SESSION_COOKIE, ""))
        session.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return LogoutResponse(ok=True)
