"""Accounts: passwords, login sessions, API tokens, and the brake on password guessing.

* Passwords are stored as argon2 hashes only.
* A login session is a random id in an HttpOnly cookie; the store keeps its SHA-256
  and a CSRF token that unsafe cookie-authenticated requests must echo.
* An API token is shown once (``glv_`` + 40 random characters); the store keeps its
  SHA-256, a short prefix to tell tokens apart, an optional expiry and the revocation.
* Failed logins are counted per user name and per address over a window; past the
  limit, logins are refused (even with the right password) until the window moves on.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from golive.domain.permissions import Permission
from golive.errors import InputError, LoginRefused, NotFound
from golive.services.users import ensure_admin, require
from golive.store.models import ApiToken, LoginAttempt, User, WebSession, utcnow

HASHER = PasswordHasher()
SESSION_DAYS = 14
TOKEN_PREFIX = "glv_"
FAILED_LOGIN_LIMIT = 5
"""Failed logins allowed per user name, and (×4) per address, within the window."""
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 10


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def set_password(session: Session, by: User, name: str, password: str) -> User:
    """Set ``name``'s password: the user themself or a site admin."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound("user", name)
    if user.id != by.id:
        require(session, by, None, Permission.MANAGE_USERS, f"setting {name}'s password")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    user.password_hash = HASHER.hash(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return user


def first_admin_password(session: Session) -> str:
    """On a server's first start: give the first admin a generated password, returned to
    be printed once. Empty when an admin can already log in."""
    admin = ensure_admin(session)
    if admin.password_hash:
        return ""
    password = secrets.token_urlsafe(18)
    admin.password_hash = HASHER.hash(password)
    session.flush()
    return password


def _failures(session: Session, column: InstrumentedAttribute[str], value: str,
              since: datetime) -> int:
    return session.scalar(select(func.count(LoginAttempt.id)).where(
        column == value, LoginAttempt.at >= since)) or 0


def check_password(session: Session, name: str, password: str, address: str,
                   now: datetime | None = None) -> User:
    """The user whose password this is, or LoginRefused (counted). The caller commits, also
    after a refusal, so that the failure is counted."""
    now = now or utcnow()
    since = now - FAILED_LOGIN_WINDOW
    if (_failures(session, LoginAttempt.user_name, name, since) >= FAILED_LOGIN_LIMIT
            or _failures(session, LoginAttempt.address, address, since)
            >= FAILED_LOGIN_LIMIT * 4):
        raise LoginRefused("too many failed logins; try again later",
                           retry_after=int(FAILED_LOGIN_WINDOW.total_seconds()))
    user = session.scalar(select(User).where(User.name == name))
    if user is not None and user.password_hash and _matches(user.password_hash, password):
        session.execute(delete(LoginAttempt).where(LoginAttempt.user_name == name))
        return user
    session.add(LoginAttempt(user_name=name[:100], address=address[:100], at=now))
    session.flush()
    raise LoginRefused("wrong user name or password")


def _matches(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class NewSession:
    cookie: str
    csrf_token: str
    expires_at: datetime


def open_session(session: Session, user: User, address: str) -> NewSession:
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(days=SESSION_DAYS)
    session.add(WebSession(user_id=user.id, token_hash=digest(cookie), csrf_token=csrf,
                           address=address[:100], expires_at=expires))
    session.flush()
    return NewSession(cookie, csrf, expires)


def session_for(session: Session, cookie: str) -> WebSession | None:
    found = session.scalar(select(WebSession).where(WebSession.token_hash == digest(cookie)))
    if found is None or found.expires_at <= utcnow():
        return None
    return found


def close_session(session: Session, cookie: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == digest(cookie)))


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str
    """The token itself: shown once, never stored."""


def create_token(session: Session, user: User, name: str, expires_in_days: int | None
                 ) -> NewToken:
    if not name.strip() or len(name) > 100:
        raise InputError("a token needs a name of 1 to 100 characters")
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise InputError("expires_in_days must be between 1 and 3650")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(30)
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken(user_id=user.id, name=name.strip(), token_hash=digest(secret),
                     prefix=secret[:10], expires_at=expires)
    session.add(token)
    session.flush()
    return NewToken(token, secret)


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.id)))


def revoke_token(session: Session, by: User, token_id: int) -> ApiToken:
    """Revoke one of ``by``'s tokens (a site admin may revoke anyone's)."""
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != by.id and not by.is_admin):
        raise NotFound("token", str(token_id))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    session.flush()
    return token


def user_for_token(session: Session, secret: str, now: datetime | None = None) -> User | None:
    """The user a bearer token acts for; None when unknown, revoked or expired."""
    now = now or utcnow()
    token = session.scalar(select(ApiToken).where(
        ApiToken.token_hash == digest(secret), ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now)))
    if token is None:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now  # coarse, so reads do not write on every request
    return token.user
