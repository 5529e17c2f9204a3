"""GET /deployments/{id}/events on a server over HTTP: a real deployment's log lines
arrive while it runs, in order, then `end`; a reconnection with Last-Event-ID gets
exactly the lines after that one; keep-alives on a quiet stream, and no more polling once
the client has gone; 404 / 401 / 403 / 422 as JSON before any event."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from golive.api import events
from golive.api.events import Line, settled
from golive.services import requests
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.services.users import acting_user
from golive.testing.server import LiveServer, api_token, bearer
from golive.testing.world import apply_config, file_order, local_hosts, make_repo

BRANCH = "feature/x"
BUILD_SECONDS = 1.5


@dataclass(frozen=True)
class Received:
    name: str
    data: Any
    id: int | None
    at: float
    """time.monotonic() when it arrived."""


def read_events(response: httpx.Response, until: Callable[[list[Received]], bool] | None = None,
                comments: list[str] | None = None) -> list[Received]:
    """The events of a text/event-stream, parsed here (not by the CLI's parser), until the
    server closes it or ``until`` says enough."""
    got: list[Received] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            if comments is not None:
                comments.append(line)
        elif line:
            key, _, value = line.partition(": ")
            fields[key] = value
        elif fields:
            got.append(Received(fields["event"], json.loads(fields["data"]),
                                int(fields["id"]) if "id" in fields else None,
                                time.monotonic()))
            fields = {}
        if until is not None and until(got):
            break
    return got


@pytest.fixture
def shop(tmp_path: Path, sqlite_runtime: Runtime) -> int:
    """A submitted order of project shop (service shop, its build takes a moment, on local
    hosts h1 and h2); alice develops it, mallory is no member."""
    repo = make_repo(tmp_path, "shop", {"src/index.html": "v1\n"},
                     branches={BRANCH: {"src/index.html": "v2\n"}})
    stage = {"mode": "artifact", "path": "srv/shop", "hosts": ["h1", "h2"]}
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "h2"]),
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]}],
            "services": [{"name": "shop", "repo": repo.url, "pack": ["dist"],
                          "build": f"sleep {BUILD_SECONDS} && cp -r src dist",
                          "stages": {"test": stage, "prod": stage}}],
        }]})
    return file_order(sqlite_runtime, "alice", "shop", [ItemRequest("shop", BRANCH)])


def deploy(live: LiveServer, alice: dict[str, str], number: int) -> int:
    answer = httpx.post(f"{live.url}/api/v1/orders/{number}/deploy", headers=alice, json={})
    assert answer.status_code == 202, answer.text
    return int(answer.json()["id"])


def stream(live: LiveServer, deployment_id: int, headers: dict[str, str],
           **params: Any) -> Any:
    return httpx.stream("GET", f"{live.url}/api/v1/deployments/{deployment_id}/events",
                        headers=headers, params=params, timeout=httpx.Timeout(30.0))


def logs(live: LiveServer, alice: dict[str, str], number: int) -> list[dict[str, Any]]:
    answer = httpx.get(f"{live.url}/api/v1/orders/{number}/logs", headers=alice)
    assert answer.status_code == 200
    lines: list[dict[str, Any]] = answer.json()["lines"]
    return lines


def test_a_deployments_lines_arrive_live_in_order_then_its_end(
        live: LiveServer, sqlite_runtime: Runtime, shop: int) -> None:
    alice = bearer(api_token(sqlite_runtime, "alice"))
    deployment_id = deploy(live, alice, shop)
    with stream(live, deployment_id, alice) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        got = read_events(response)  # to the end: the server closes the stream

    lines = [e for e in got if e.name == "log"]
    ids = [e.id for e in lines]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(set(ids))  # type: ignore
    assert [e.data for e in lines] == logs(live, alice, shop)  # every line, in order
    statuses = [e.data["status"] for e in got if e.name == "status"]
    assert statuses[-1] == "succeeded" and "running" in statuses
    assert len(statuses) == len(set(statuses))  # sent when it changes, not every poll
    end = got[-1]
    assert end.name == "end" and [e.name for e in got].count("end") == 1
    assert end.data["id"] == deployment_id and end.data["status"] == "succeeded"
    assert end.data["order_state"] == "test:deployed"
    assert {s["host"] for s in end.data["steps"] if s["step"] == "switch"} == {"h1", "h2"}
    # streamed as it ran, not sent at the end: the first line came before the build ended
    assert end.at - lines[0].at > BUILD_SECONDS * 0.7


def test_a_reconnection_gets_exactly_the_lines_after_last_event_id(
        live: LiveServer, sqlite_runtime: Runtime, shop: int) -> None:
    alice = bearer(api_token(sqlite_runtime, "alice"))
    deployment_id = deploy(live, alice, shop)
    with stream(live, deployment_id, alice) as response:
        first = [e for e in read_events(response) if e.name == "log"]
    every = logs(live, alice, shop)
    assert len(first) == len(every) >= 4
    cut = len(first) // 2
    after = first[cut].id
    assert after is not None

    with stream(live, deployment_id, {**alice, "Last-Event-ID": str(after)}) as response:
        again = read_events(response)
    assert [e.data for e in again if e.name == "log"] == every[cut + 1:]
    assert [e.id for e in again if e.name == "log"] == [e.id for e in first[cut + 1:]]
    assert again[-1].name == "end" and again[-1].data["status"] == "succeeded"

    with stream(live, deployment_id, alice, last_event_id=after) as response:
        by_query = read_events(response)
    assert [e.data for e in by_query if e.name == "log"] == every[cut + 1:]
    with stream(live, deployment_id, {**alice, "Last-Event-ID": str(first[-1].id)}) as response:
        assert [e.name for e in read_events(response)] == ["status", "end"]


def test_refusals_come_as_json_before_any_event(
        live: LiveServer, sqlite_runtime: Runtime, shop: int) -> None:
    alice = bearer(api_token(sqlite_runtime, "alice"))
    deployment_id = deploy(live, alice, shop)
    cases: list[tuple[int, dict[str, str], int, str]] = [
        (999, alice, 404, "deployment 999 does not exist"),
        (deployment_id, {}, 401, "log in, or send an API token"),
        (deployment_id, bearer(api_token(sqlite_runtime, "mallory")), 403,
         f"reading order {shop}"),
        (deployment_id, {**alice, "Last-Event-ID": "abc"}, 422,
         "Last-Event-ID must be a log line id"),
        (deployment_id, {**alice, "Last-Event-ID": str(2**63)}, 422,
         "Last-Event-ID must be a log line id"),
        (2**64, alice, 422, "deployment_id"),  # beyond the store's integers: no overflow
    ]
    for target, headers, status, words in cases:
        with stream(live, target, headers) as response:
            response.read()
            assert response.status_code == status, response.text
            assert words in response.json()["error"]["message"]
    answer = httpx.get(f"{live.url}/api/v1/deployments/{deployment_id}/events",
                       headers=alice, params={"last_event_id": -1})
    assert answer.status_code == 422
    schema = httpx.get(f"{live.url}/api/v1/openapi.json").json()
    route = schema["paths"]["/api/v1/deployments/{deployment_id}/events"]["get"]
    assert "text/event-stream" in route["responses"]["200"]["content"]
    assert {"401", "403", "404"} <= set(route["responses"])


def test_a_quiet_stream_keeps_alive_and_stops_polling_when_the_client_goes(
        live: LiveServer, sqlite_runtime: Runtime, shop: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    alice = bearer(api_token(sqlite_runtime, "alice"))
    with sqlite_runtime.store.session() as session:  # asked for, but no runner takes it
        pending = requests.request_deployment(session, shop, acting_user(session, "alice")).id
        session.commit()
    polls: list[float] = []
    lock = threading.Lock()
    real = events.snapshot

    def counted(runtime: Runtime, deployment_id: int, after: int) -> events.Snapshot:
        with lock:
            polls.append(time.monotonic())
        return real(runtime, deployment_id, after)

    monkeypatch.setattr(events, "snapshot", counted)
    monkeypatch.setattr(events, "KEEP_ALIVE_AFTER", 0.3)
    comments: list[str] = []
    with stream(live, pending, alice) as response:
        got = read_events(response, until=lambda _: len(comments) >= 2, comments=comments)
        # from now on nothing is written: only asking whether the client is there tells
        monkeypatch.setattr(events, "KEEP_ALIVE_AFTER", 3600.0)
    assert [(e.name, e.data["status"]) for e in got] == [("status", "pending")]
    assert comments[:2] == [": keep-alive", ": keep-alive"]

    time.sleep(1.0)  # the server notices the client went away at its next poll
    with lock:
        settled_count = len(polls)
    time.sleep(1.0)
    with lock:
        assert len(polls) == settled_count, "the server still polls for a client that left"


def line(number: int) -> Line:
    return Line(number, {"text": str(number)})


def test_a_line_committed_after_a_later_one_is_not_skipped() -> None:
    """PostgreSQL and MariaDB: line 10 may become visible after line 11; a line is sent
    from the second poll that sees it and only after every line before it."""
    assert settled([line(11)], set(), ended=False) == []
    assert settled([line(10), line(11)], {11}, ended=False) == []
    assert settled([line(10), line(11), line(12)], {10, 11}, ended=False) == [
        line(10), line(11)]
    assert settled([line(12), line(13)], set(), ended=True) == [line(12), line(13)]
