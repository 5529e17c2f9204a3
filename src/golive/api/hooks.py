"""Git push webhooks: ``POST /hooks/{provider}/{project}`` (mounted under ``/api/v1``).

No login: the project's ``push_secret``, proven by the provider's token or signature
(``domain/pushes.py``), is the only credential. The route reads the raw body (the
signatures cover its bytes), lets ``services.pushes.handle_push`` verify it and ask the
redeploys, records the request in the audit log whatever the outcome, commits, and only
then hands the deployments to the task runner.

Answers: 200 ``{"deployments": [...], "ignored": "..."}``; 403 for a missing or wrong
token or signature (or a project without a push secret); 404 for an unknown provider or
project; 400 for a body that is not JSON. Error bodies are golive's usual
``{"error": {"kind", "message", ...}}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from golive.api.errors import ErrorBody, body_of, status_of
from golive.errors import GoliveError, InputError, NotFound
from golive.services.audit import record
from golive.services.pushes import PushOutcome, handle_push
from golive.services.runtime import Runtime

router = APIRouter(tags=["hooks"])


class PushAnswer(BaseModel):
    deployments: list[int]
    """The redeploys started, one per order being tested on the pushed branch."""
    ignored: str
    """Why nothing was tried (not a push, a deleted branch, the setting off, no order on
    that branch), or empty."""


RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": why} for code, why in (
        (400, "the body is not JSON"),
        (403, "the token or signature is missing or wrong, or the project has no push secret"),
        (404, "no such provider (github, gitlab, gitee, gitea) or project"),
    )}


@router.post("/hooks/{provider}/{project}", response_model=PushAnswer, responses=RESPONSES,
             summary="A git push webhook (GitHub, GitLab, Gitee, Gitea)")
async def push_hook(provider: str, project: str, request: Request) -> JSONResponse:
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    address = request.client.host if request.client else ""
    status, answer, started = await run_in_threadpool(
        _receive, request.app.state.runtime, provider, project, headers, body, address,
        request.url.path)
    for deployment_id in started:
        request.app.state.tasks.submit(deployment_id)
    return JSONResponse(answer, status_code=status)


def _receive(runtime: Runtime, provider: str, project: str, headers: dict[str, str],
             body: bytes, address: str, target: str
             ) -> tuple[int, dict[str, Any], list[int]]:
    """(HTTP status, answer, deployments to start): handled, audited and committed."""
    audit = {"user_name": f"push:{provider}", "address": address, "action": "hook.push",
             "target": target, "project": project}
    with runtime.store.session() as session:
        try:
            outcome = handle_push(session, runtime.box, provider, project, headers, body)
        except GoliveError as exc:
            session.rollback()
            status = _status(exc)
            record(session, **audit, status=status, detail={"error": exc.message})
            session.commit()
            return status, body_of(exc), []
        record(session, **audit, status=200, detail=_detail(outcome))
        session.commit()
    answer = PushAnswer(deployments=outcome.deployments, ignored=outcome.ignored)
    return 200, answer.model_dump(), list(outcome.deployments)


def _status(exc: GoliveError) -> int:
    if isinstance(exc, InputError) and not isinstance(exc, NotFound):
        return 400  # a body that is not JSON, or a push without its ref
    return status_of(exc)


def _detail(outcome: PushOutcome) -> dict[str, Any]:
    detail: dict[str, Any] = {"deployments": outcome.deployments, "ignored": outcome.ignored}
    if outcome.push is not None:
        detail |= {"branch": outcome.push.branch, "after": outcome.push.after,
                   "pusher": outcome.push.pusher}
    if outcome.refused:
        detail["refused"] = {str(order_id): why for order_id, why in outcome.refused.items()}
    return detail
