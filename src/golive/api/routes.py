"""The REST routes, made from the operation table (``api/registry.py``).

Each route authenticates the caller, runs its operation in one transaction, records a
write in the audit log (in that transaction when it succeeds, in one of its own when it
fails, so refusals are on record too), commits, and only then hands the deployments the
operation asked for to the task backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from golive.api import operations  # noqa: F401 - registers every operation
from golive.api.auth import authenticate, client_address
from golive.api.errors import ERROR_RESPONSES, status_of
from golive.api.registry import OPERATIONS, Operation, Work, to_json
from golive.errors import GoliveError
from golive.services import audit
from golive.store.models import Order, User

INT64 = 2**63


def build_router() -> APIRouter:
    router = APIRouter()
    for op in OPERATIONS.values():
        router.add_api_route(
            op.path, _endpoint(op), methods=[op.method], response_model=op.response,
            status_code=op.status, name=op.name, operation_id=op.name, summary=op.summary,
            description=inspect.getdoc(op.run) or "", tags=[op.name.split(".")[0]],
            responses=ERROR_RESPONSES)
    return router


def _endpoint(op: Operation) -> Callable[..., Any]:
    def endpoint(request: Request, **params: Any) -> JSONResponse:
        return execute(request, op, params)

    parameters = [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY,
                                    annotation=Request),
                  *(_bounded(op, p).replace(kind=inspect.Parameter.KEYWORD_ONLY)
                    for p in op.params.values())]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name.replace(".", "_")
    return endpoint


def _bounded(op: Operation, param: inspect.Parameter) -> inspect.Parameter:
    """An integer parameter limited to what every store's integer columns hold, so a huge
    number is a 422, not a database overflow."""
    if param.annotation is not int:
        return param
    where = Path if param.name in op.path_params else Query
    limits = where(ge=-INT64, le=INT64 - 1)
    return param.replace(annotation=Annotated[int, limits])


def execute(request: Request, op: Operation, params: dict[str, Any]) -> JSONResponse:
    data = perform(request, op, params,
                   lambda session: authenticate(request, session, write=not op.reads_only))
    return JSONResponse(data, status_code=op.status)


def perform(request: Request, op: Operation, params: dict[str, Any],
            caller: Callable[[Session], User]) -> Any:
    """Run ``op`` for the user ``caller`` finds (or refuses) in the transaction: audit a
    write, commit, start the deployments it asked for; JSON-ready result. The web pages
    call it too, with their own way of finding the caller (a form's CSRF token)."""
    runtime = request.app.state.runtime
    user_name = ""
    with runtime.store.session() as session:
        try:
            user = caller(session)
            user_name = user.name
            # a token's last use, written now: the operation must not start holding
            # SQLite's write lock that its own helper sessions (locks, logs) then wait for
            session.commit()
            work = Work(runtime, session, user)
            data = to_json(op, op.run(work, **params))
            if not op.reads_only:
                _audit(session, request, op, params, user_name, op.status)
            session.commit()
        except GoliveError as exc:
            session.rollback()
            if not op.reads_only:
                _audit(session, request, op, params, user_name, status_of(exc))
                session.commit()
            raise
    for deployment_id in work.started:
        request.app.state.tasks.submit(deployment_id)
    return data


def _audit(session: Session, request: Request, op: Operation, params: dict[str, Any],
           user_name: str, status: int) -> None:
    detail = {key: (value.model_dump(mode="json") if hasattr(value, "model_dump") else value)
              for key, value in params.items()}
    audit.record(session, user_name=user_name, address=client_address(request),
                 action=op.name, target=f"{op.method} {request.url.path}",
                 project=_project_of(session, detail), status=status, detail=detail)


def _project_of(session: Session, detail: dict[str, Any]) -> str:
    for value in (detail, *(v for v in detail.values() if isinstance(v, dict))):
        if isinstance(value.get("project"), str):
            return str(value["project"])
    number = detail.get("number")
    if isinstance(number, int):
        order = session.get(Order, number)
        return order.project.name if order is not None else ""
    return ""
