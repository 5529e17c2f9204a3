"""The Celery backend (``GOLIVE_TASKS=celery``): the server enqueues, agents run.

The server's :class:`CeleryDispatcher` sends each deployment id to the queue of the
deployment's zone (``<GOLIVE_QUEUE_PREFIX>.<zone>``, on ``GOLIVE_BROKER_URL``); an agent
(``worker/agent.py``) consumes one zone's queue and runs the task :data:`TASK`, which
claims the deployment and hands it to the engine — the same ``run_deployment`` the
inline runner calls, reading everything else from the shared store.

Delivery: a task is acknowledged only once its deployment ended (late
acknowledgement, one message prefetched per thread), so a message an agent took and
could not finish is delivered again; ``agents.claim`` makes a second delivery of a
deployment that ran, runs, or was interrupted a no-op. An interrupted deployment is
resumed by asking for it again (``golive order deploy N``), which enqueues it anew.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from celery import Celery
from kombu.exceptions import KombuError

from golive.domain.zones import queue_name
from golive.errors import InputError
from golive.services import agents
from golive.services.deploy import run_deployment
from golive.services.liveness import this_runner
from golive.services.recovery import interrupt
from golive.services.runtime import Runtime
from golive.settings import Settings
from golive.store.models import Deployment

TASK = "golive.deploy"
QUEUED = "queue:"
"""The runner of a deployment waiting in a queue (``queue:<name>``): no process holds it,
so recovery leaves it alone until an agent claims it."""
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")
VISIBILITY_TIMEOUT = 3600
"""Redis: a message taken and not acknowledged within this many seconds is delivered
again (the claim then skips it when its deployment still runs)."""

log = logging.getLogger("golive.agent")


def check_broker(settings: Settings) -> str:
    """The broker URL; InputError saying how to set it when it is missing or unknown."""
    url = settings.broker_url
    if not url:
        raise InputError("GOLIVE_TASKS=celery needs GOLIVE_BROKER_URL: the Redis or RabbitMQ "
                         "URL agents and the server share (redis://host:6379/0 or "
                         "amqp://user:password@host:5672//)")
    scheme = urlsplit(url).scheme
    if scheme not in BROKER_SCHEMES:
        raise InputError(f"GOLIVE_BROKER_URL must start with redis://, rediss://, amqp:// or "
                         f"amqps:// (got {scheme or 'no scheme'}://)")
    return url


def make_app(settings: Settings) -> Celery:
    """A Celery application on the settings' broker, with golive's delivery rules."""
    url = check_broker(settings)
    app = Celery("golive", broker=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=queue_name(settings.queue_prefix, ""),
        worker_enable_remote_control=False,  # agents are watched through the store
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK, ignore_result=True)(_deploy_task)
    return app


@dataclass
class AgentContext:
    """What the task needs in an agent process: its runtime and name."""

    runtime: Runtime
    name: str


_context: list[AgentContext] = []


def bind_agent(context: AgentContext) -> None:
    """Make this process an agent whose tasks run on ``context``."""
    _context[:] = [context]


def _deploy_task(deployment_id: int) -> str:
    if not _context:
        raise RuntimeError("the golive task runs in `golive agent` only")
    context = _context[0]
    with context.runtime.store.session() as session:
        claimed = agents.claim(session, deployment_id, this_runner(), context.name)
        session.commit()
    if not claimed:
        log.info("deployment %s is not pending (it ran or runs elsewhere): skipped",
                 deployment_id)
        return "skipped"
    log.info("deployment %s: started", deployment_id)
    ok = run_deployment(context.runtime, deployment_id)
    log.info("deployment %s: %s", deployment_id, "succeeded" if ok else "failed")
    return "succeeded" if ok else "failed"


class CeleryDispatcher:
    """The server's task backend with agents: ``submit`` enqueues on the zone's queue."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._app = make_app(runtime.settings) if runtime.settings.broker_url else None

    def submit(self, deployment_id: int) -> None:
        """Enqueue the deployment for its zone's agents. When the broker cannot take it,
        the deployment is interrupted with the reason (resumable once the broker answers)."""
        with self._runtime.store.session() as session:
            deployment = session.get_one(Deployment, deployment_id)
            queue = queue_name(self._runtime.settings.queue_prefix, deployment.zone)
            # the queue holds it now, not this process: a server restart leaves it waiting
            deployment.runner = f"{QUEUED}{queue}"
            session.commit()
        try:
            if self._app is None:
                check_broker(self._runtime.settings)
            assert self._app is not None
            self._app.send_task(TASK, args=[deployment_id], queue=queue, retry=True,
                                retry_policy={"max_retries": 3, "interval_start": 0.2,
                                              "interval_step": 0.5, "interval_max": 2})
        except (KombuError, OSError, InputError) as exc:
            self._not_sent(deployment_id, queue, exc)

    def _not_sent(self, deployment_id: int, queue: str, exc: Exception) -> None:
        why = f"interrupted: the deployment could not be sent to queue {queue}: {exc}"
        with self._runtime.store.session() as session:
            interrupt(session, session.get_one(Deployment, deployment_id), why)
            session.commit()

    def shutdown(self) -> None:
        if self._app is not None:
            self._app.close()
