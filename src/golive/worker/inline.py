"""The inline runner: deployments run on a thread pool inside this process.

The default backend (``GOLIVE_TASKS=inline``): the CLI, and later the server,
hand it deployment ids; the engine reads everything else from the store, so a
Celery worker can run the same ids unchanged.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from golive.services.deploy import run_deployment
from golive.services.runtime import Runtime


class InlineRunner:
    def __init__(self, runtime: Runtime, workers: int = 4) -> None:
        self._runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="golive-deploy")

    def submit(self, deployment_id: int) -> Future[bool]:
        """Start the deployment; the future's result says whether it succeeded."""
        return self._pool.submit(run_deployment, self._runtime, deployment_id)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
