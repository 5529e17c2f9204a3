"""golive's errors as HTTP answers, in one place.

Every error body is ``{"error": {"kind", "message", "exit_code", ...}}``: ``kind`` is
the error's class, ``exit_code`` the one the CLI exits with, so the remote CLI prints
the same line and exits the same way as the local one. Refused transitions, busy locks
and closed windows are 409, permissions 403, unknown things 404, bad input 422 (with
the field paths), failed logins 401 (429 once too many), a failing host or repository
502.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from golive import errors
from golive.domain.secrets import mask_text


class ErrorDetail(BaseModel):
    kind: str
    message: str
    exit_code: int
    fields: list[dict[str, str]] | None = None
    order_id: int | None = None
    needed_roles: list[str] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


STATUS: list[tuple[type[errors.GoliveError], int]] = [
    # the first class that matches wins: subclasses before their parents
    (errors.NotAuthenticated, 401),
    (errors.LoginRefused, 401),
    (errors.PermissionDenied, 403),
    (errors.CsrfRefused, 403),
    (errors.RefusedError, 409),
    (errors.NotFound, 404),
    (errors.InputError, 422),
    (errors.DeployError, 502),
    (errors.StoreError, 503),
]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why} for code, why in (
        (400, "the body is not valid JSON"),
        (401, "not logged in, or the token is unknown, revoked or expired"),
        (403, "the acting user may not do this (the roles needed are named)"),
        (404, "no such order, project, user, deployment, ..."),
        (409, "refused now: the order's state, a lock or lane, a release window"),
        (422, "bad input; `fields` names each wrong field"),
    )}


def status_of(exc: errors.GoliveError) -> int:
    if isinstance(exc, errors.LoginRefused) and exc.retry_after:
        return 429
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


def body_of(exc: errors.GoliveError) -> dict[str, Any]:
    # a message may quote a command or a repository URL: no password leaves the server
    detail: dict[str, Any] = {"kind": type(exc).__name__, "message": mask_text(exc.message),
                              "exit_code": exc.exit_code}
    if isinstance(exc, errors.Busy):
        detail["order_id"] = exc.order_id
    if isinstance(exc, errors.PermissionDenied):
        detail["needed_roles"] = list(exc.needed_roles)
    return {"error": detail}


def _golive_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.GoliveError)
    headers = {}
    if isinstance(exc, errors.LoginRefused) and exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body_of(exc), status_code=status_of(exc), headers=headers)


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in location)


def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [{"path": _field_path(e.get("loc", ())), "message": str(e.get("msg", ""))}
              for e in exc.errors()]
    message = "; ".join(f"{f['path']}: {f['message']}" for f in fields) or "bad input"
    return JSONResponse({"error": {"kind": "InputError", "message": message,
                                   "exit_code": 2, "fields": fields}}, status_code=422)


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (no such route, method not allowed, a body that is not
    JSON) in golive's error shape."""
    assert isinstance(exc, HTTPException)
    kind = "NotFound" if exc.status_code == 404 else "InputError"
    return JSONResponse({"error": {"kind": kind, "message": str(exc.detail),
                                   "exit_code": 2}},
                        status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.GoliveError, _golive_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
