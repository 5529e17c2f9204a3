"""Helpers for tests of the web pages through starlette's TestClient (and a browser).

    password = give_password(runtime, "alice")
    log_in(api, "alice", password)               # the client now holds the session cookie
    page = api.get("/orders/1")
    api.post("/orders/1/pass", data={"csrf_token": csrf_of(page.text)})
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from golive.services import accounts
from golive.services.runtime import Runtime
from golive.store.models import User

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


def give_password(runtime: Runtime, user_name: str, password: str = "",
                  *, admin: bool = False) -> str:
    """``user_name`` can log in with the returned password (the user is made if missing)."""
    password = password or f"pw-{user_name}-0123456789"
    with runtime.store.session() as session:
        user = session.scalar(select(User).where(User.name == user_name))
        if user is None:
            user = User(name=user_name, display_name=user_name, is_admin=admin)
            session.add(user)
        user.password_hash = accounts.HASHER.hash(password)
        session.commit()
    return password


def log_in(client: Any, user_name: str, password: str) -> None:
    response = client.post("/login", data={"user": user_name, "password": password,
                                           "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF_FIELD.search(html)
    assert found is not None and found.group(1), "the page has no form with a CSRF token"
    return found.group(1)
