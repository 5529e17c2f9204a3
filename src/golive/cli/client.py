"""Where a command runs: on this machine's data directory, or on a golive server.

With ``GOLIVE_URL`` (and ``GOLIVE_TOKEN``) set, :func:`call` sends the operation to the
server's API; without, it runs the same operation here in one transaction. Both return
the same JSON-ready data (the operation's response schema), and a server's error comes
back as the same one line and exit code, so every command prints and exits alike
wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from golive.api import operations  # noqa: F401 - registers every operation
from golive.api.registry import OPERATIONS, Operation, call_local
from golive.cli.context import unit_of_work
from golive.errors import InputError, RemoteError
from golive.settings import Settings, get_settings

M = TypeVar("M", bound=BaseModel)
API = "/api/v1"
TIMEOUT = httpx.Timeout(30.0, read=900.0)  # a request may wait for a lock (--wait)


def server() -> Settings | None:
    """The settings naming a server, or None when commands run here."""
    settings = get_settings()
    return settings if settings.url else None


def call(name: str, **params: Any) -> Any:
    """Run the operation ``name`` with ``params`` here or on the server."""
    remote = server()
    if remote is not None:
        return call_remote(remote, OPERATIONS[name], params)
    with unit_of_work() as work:
        return call_local(work, name, params)


def body(model: type[M], **fields: Any) -> M:
    """A request body built from command-line values; InputError naming the wrong field."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise InputError(problems) from None


def local_only(command: str) -> None:
    """Refuse a command that works on this machine only when a server is named."""
    if server() is not None:
        raise InputError(f"golive {command} works on this machine's data directory; "
                         "unset GOLIVE_URL to run it")


def request(settings: Settings, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the server, with the token; RemoteError when it cannot be reached."""
    headers = {"Accept": "application/json"}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    url = settings.url.rstrip("/") + API + path
    try:
        return httpx.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
    except httpx.HTTPError as exc:
        raise RemoteError(f"cannot reach the golive server at {settings.url}: {exc}") from None


def call_remote(settings: Settings, op: Operation, params: dict[str, Any]) -> Any:
    path = op.path.format(**{key: quote(str(params[key]), safe="") for key in op.path_params})
    body = params.get(op.body_param) if op.body_param else None
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    query = {key: value for key, value in params.items()
             if key not in op.path_params and key != op.body_param and value is not None}
    response = request(settings, op.method, path, params=query, json=body)
    return answer(response)


def answer(response: httpx.Response) -> Any:
    """The response's JSON, or its error raised as RemoteError (message, exit code)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success:
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and "message" in error:
        raise RemoteError(str(error["message"]), kind=str(error.get("kind", "")),
                          exit_code=int(error.get("exit_code", 1)),
                          status=response.status_code)
    raise RemoteError(f"the golive server answered {response.status_code}: "
                      f"{response.text[:200]}", status=response.status_code)


@contextmanager
def stream(settings: Settings, path: str, headers: dict[str, str] | None = None
           ) -> Iterator[httpx.Response]:
    """A streaming GET (Server-Sent Events) to the server, with the token: an error answer
    is raised as RemoteError like :func:`answer`; a connection that cannot be made or
    breaks while reading is a RemoteError with ``status`` 0 (try again)."""
    sent = {"Accept": "text/event-stream", **(headers or {})}
    if settings.token:
        sent["Authorization"] = f"Bearer {settings.token}"
    url = settings.url.rstrip("/") + API + path
    # the server sends a comment every 15 s: a read waiting longer means a dead connection
    timeout = httpx.Timeout(30.0, read=60.0)
    try:
        with httpx.stream("GET", url, headers=sent, timeout=timeout) as response:
            if not response.is_success:
                response.read()
                answer(response)
            yield response
    except httpx.HTTPError as exc:
        raise RemoteError(f"lost the connection to the golive server at {settings.url}: "
                          f"{exc}") from None
