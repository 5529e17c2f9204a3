"""A deployment's live events, as Server-Sent Events (``text/event-stream``).

``GET /deployments/{id}/events`` sends, in order:

* ``event: log`` with ``id: <log line id>`` for every log line (``data``: ``at``,
  ``level``, ``service``, ``host``, ``text``);
* ``event: status`` (``data``: ``id``, ``status``) at the start and whenever the
  deployment's status changes;
* ``event: end`` with the deployment's detail (``deployment.show``) once it has ended
  (succeeded, failed, interrupted, cancelled, abandoned); then the stream closes.

A comment line keeps an idle connection open through proxies. A client that lost the
stream reconnects with ``Last-Event-ID`` (EventSource does it by itself; or
``?last_event_id=``) and gets only the lines after that one.

The store is polled in short sessions on a worker thread: a deployment may be run by
another process (an agent, the CLI), so the store is the only place that knows.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from golive.api.auth import authenticate
from golive.api.errors import ERROR_RESPONSES
from golive.api.operations.deployments import detail, readable_deployment
from golive.api.schemas.deployments import ENDED, DeploymentDetail, LogLineView
from golive.errors import InputError, NotFound
from golive.services.runtime import Runtime
from golive.store.models import Deployment, LogLine

POLL_EVERY = 0.25
KEEP_ALIVE_AFTER = 15.0
BATCH = 500
"""Log lines read per poll at most; a long log is sent in several rounds."""
MAX_ID = 2**63 - 1
"""The largest id every store's integer columns hold: a larger one is a 422."""

router = APIRouter(tags=["deployment"])


@dataclass(frozen=True)
class Line:
    id: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    status: str
    lines: list[Line]
    complete: bool
    """All lines after the asked one were read (fewer than ``BATCH``)."""
    end: dict[str, Any] | None
    """The deployment's detail once it has ended (and every line was read)."""


def settled(lines: Sequence[Line], seen_before: set[int], ended: bool) -> list[Line]:
    """The lines that may be sent now, in id order.

    On PostgreSQL and MariaDB the hosts' threads commit log lines concurrently, so a
    line may become visible after one with a higher id; a client that resumes after
    the higher id would never get it. So a line is sent only from the second poll that
    sees it, and only when every line before it was sent too: a lagging commit takes
    milliseconds, a poll ``POLL_EVERY``. Once the deployment has ended (its status is
    read before its lines), every line has been committed."""
    if ended:
        return list(lines)
    ready = []
    for line in lines:
        if line.id not in seen_before:
            break
        ready.append(line)
    return ready


def snapshot(runtime: Runtime, deployment_id: int, after: int) -> Snapshot:
    """The status, then the lines after ``after`` (read second: an ended status means
    every line is in), in one short session."""
    with runtime.store.session() as session:
        deployment = session.get(Deployment, deployment_id)
        if deployment is None:
            raise NotFound("deployment", deployment_id)
        status = deployment.status
        rows = list(session.scalars(select(LogLine).where(
            LogLine.deployment_id == deployment_id, LogLine.id > after)
            .order_by(LogLine.id).limit(BATCH)))
        lines = [Line(row.id, LogLineView.model_validate(row).model_dump(mode="json"))
                 for row in rows]
        complete = len(rows) < BATCH
        end = None
        if status in ENDED and complete:
            end = DeploymentDetail.model_validate(detail(session, deployment)).model_dump(
                mode="json")
    return Snapshot(status, lines, complete, end)


def message(event: str, data: Any, event_id: int | None = None) -> str:
    """One event in the text/event-stream format (the JSON is on one line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream(request: Request, runtime: Runtime, deployment_id: int,
                 after: int) -> AsyncIterator[str]:
    """The events of one deployment, from the line after ``after`` until it ends or the
    client goes away."""
    last, status = after, ""
    seen: set[int] = set()
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        now = await anyio.to_thread.run_sync(snapshot, runtime, deployment_id, last)
        out = []
        ready = settled(now.lines, seen, now.end is not None)
        for line in ready:
            out.append(message("log", line.data, line.id))
            last = line.id
        seen = {line.id for line in now.lines[len(ready):]}
        if now.status != status:
            status = now.status
            out.append(message("status", {"id": deployment_id, "status": status}))
        if now.end is not None:
            out.append(message("end", now.end))
        if out:
            quiet_since = time.monotonic()
            yield "".join(out)
        elif time.monotonic() - quiet_since >= KEEP_ALIVE_AFTER:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        if now.end is not None:
            return
        if now.complete:
            await anyio.sleep(POLL_EVERY)


def _resume_point(header: str, query: int | None) -> int:
    """The log line id the client has: Last-Event-ID, else ``?last_event_id=``."""
    if header.strip():
        try:
            value = int(header.strip())
        except ValueError:
            raise InputError(f"Last-Event-ID must be a log line id (a number), got "
                             f"{header.strip()[:50]!r}") from None
        if not 0 <= value <= MAX_ID:
            raise InputError(f"Last-Event-ID must be a log line id from 0 to {MAX_ID}")
        return value
    return query or 0


def _check(request: Request, runtime: Runtime, deployment_id: int) -> None:
    with runtime.store.session() as session:
        user = authenticate(request, session, write=False)
        readable_deployment(session, deployment_id, user)


@router.get(
    "/deployments/{deployment_id}/events", response_class=StreamingResponse,
    response_model=None, name="deployment.events", operation_id="deployment.events",
    summary="A deployment's log lines, status changes and end, as Server-Sent Events",
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "`log` events (id: the log line's id), `status` "
                                    "events, and a last `end` event with the deployment"},
               **{code: ERROR_RESPONSES[code] for code in (401, 403, 404, 422)}})
async def deployment_events(
    request: Request, deployment_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    last_event_id: int | None = Query(None, ge=0, le=MAX_ID, description=(
        "Send only the log lines after this id (the Last-Event-ID header wins)")),
    last_event_header: str = Header("", alias="Last-Event-ID", max_length=100, description=(
        "The id of the last event received: a reconnection gets only the lines after it")),
) -> StreamingResponse:
    """Follow a deployment live. Reconnect with ``Last-Event-ID`` to get only the lines
    after the last one received; the stream closes after the ``end`` event."""
    runtime = request.app.state.runtime
    after = _resume_point(last_event_header, last_event_id)
    await anyio.to_thread.run_sync(_check, request, runtime, deployment_id)
    return StreamingResponse(stream(request, runtime, deployment_id, after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
