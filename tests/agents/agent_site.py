"""A golive site with agents for tests: the real server, real `golive agent` processes.

The server is the real application (``GOLIVE_TASKS=celery``) served on 127.0.0.1 from
this process, on a scratch PostgreSQL store; each agent is a `golive agent` process
with its own GOLIVE_HOME, the same store, secret key and broker, and a per-test queue
prefix so that parallel test workers never take each other's tasks. Every process is
stopped (and its queues deleted) when the site closes, also when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select

from golive.api.app import create_app
from golive.services.runtime import Runtime, open_runtime
from golive.settings import get_settings
from golive.store.models import Agent, Deployment
from golive.testing.brokers import forget_queues
from golive.testing.databases import scratch_database
from golive.testing.server import LiveServer, api_token, bearer, serve

GOLIVE = Path(sys.executable).parent / "golive"
REDIS = os.environ.get("GOLIVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ = os.environ.get("GOLIVE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS, "rabbitmq": RABBITMQ}
HEARTBEAT = "1"
"""Seconds between heartbeats in tests: a killed agent is lost after 3 s."""


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class AgentProcess:
    name: str
    zone: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Site:
    root: Path
    runtime: Runtime
    server: LiveServer
    token: str
    env: dict[str, str]
    prefix: str
    agents: dict[str, AgentProcess] = field(default_factory=dict)

    def start_agent(self, name: str, zone: str = "default", concurrency: int = 2
                    ) -> AgentProcess:
        """A `golive agent` process for ``zone``, returned once it consumes its queue."""
        home = self.root / "agents" / name
        home.mkdir(parents=True)
        log = self.root / f"agent-{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(GOLIVE), "agent", "--queue", zone, "--name", name,
                 "--concurrency", str(concurrency)],
                env={**self.env, "GOLIVE_HOME": str(home)}, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        agent = AgentProcess(name, zone, home, log, process)
        self.agents[name] = agent

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"agent {name} exited: {agent.output()}")
            return " ready." in agent.output() and self.agent_state(name) == "alive"

        wait_for(f"agent {name} to be ready", ready)
        return agent

    def kill(self, name: str) -> None:
        """SIGKILL the agent and what it started (a hook's shell too)."""
        agent = self.agents[name]
        os.killpg(agent.process.pid, signal.SIGKILL)
        agent.process.wait(timeout=30)

    def agent_state(self, name: str) -> str:
        rows = self.api("GET", "/agents")
        return next((r["state"] for r in rows if r["name"] == name), "")

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.server.url}/api/v1{path}",
                                 headers=bearer(self.token), timeout=60, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def events(self, deployment_id: int, until: Callable[[list[tuple[str, Any]]], bool],
               timeout: float = 30.0) -> list[tuple[str, Any]]:
        """The deployment's live events (SSE) from the server, read until ``until`` holds."""
        found: list[tuple[str, Any]] = []
        name = ""
        with httpx.stream("GET", f"{self.server.url}/api/v1/deployments/{deployment_id}/events",
                          headers=bearer(self.token), timeout=timeout) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    found.append((name, json.loads(line.removeprefix("data: "))))
                    if until(found):
                        return found
        raise AssertionError(f"the stream ended before the awaited event: {found}")

    def deploy(self, order_id: int) -> int:
        """Ask the server to deploy the order (its next stage); the deployment's id."""
        return int(self.api("POST", f"/orders/{order_id}/deploy", json={})["id"])

    def deployment(self, deployment_id: int) -> Deployment:
        with self.runtime.store.session() as session:
            found = session.get_one(Deployment, deployment_id)
            session.expunge(found)
            return found

    def wait_ended(self, deployment_id: int, timeout: float = 60.0) -> Deployment:
        ended = ("succeeded", "failed", "interrupted")
        return wait_for(f"deployment {deployment_id} to end",
                        lambda: (d := self.deployment(deployment_id)).status in ended and d,
                        timeout)

    def agent_rows(self) -> list[Agent]:
        with self.runtime.store.session() as session:
            found = list(session.scalars(select(Agent).order_by(Agent.name)))
            session.expunge_all()
            return found

    def stop_agents(self) -> None:
        for agent in self.agents.values():
            if agent.process.poll() is None:
                agent.process.terminate()  # a warm shutdown: its row says stopped
        for agent in self.agents.values():
            try:
                agent.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(agent.process.pid, signal.SIGKILL)
                agent.process.wait(timeout=10)


@contextmanager
def agent_site(root: Path, broker: str, monkeypatch: Any) -> Iterator[Site]:
    """A server with GOLIVE_TASKS=celery on ``broker`` (redis or rabbitmq), no agents yet."""
    prefix = f"golive-t-{uuid.uuid4().hex[:10]}"
    with ExitStack() as stack:
        store = stack.enter_context(scratch_database("postgresql", root))
        env = {"GOLIVE_DATABASE_URL": store, "GOLIVE_SECRET_KEY": Fernet.generate_key().decode(),
               "GOLIVE_TASKS": "celery", "GOLIVE_BROKER_URL": BROKERS[broker],
               "GOLIVE_QUEUE_PREFIX": prefix, "GOLIVE_AGENT_HEARTBEAT": HEARTBEAT}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        runtime = open_runtime(get_settings())
        stack.callback(runtime.close)
        server = stack.enter_context(serve(create_app(runtime=runtime,
                                                      announce=lambda _: None)))
        site = Site(root, runtime, server, api_token(runtime, "admin"),
                    {**os.environ, **env}, prefix)
        stack.callback(lambda: forget_queues(
            BROKERS[broker], prefix, {a.zone for a in site.agents.values()} | {"default"}))
        stack.callback(site.stop_agents)
        yield site
