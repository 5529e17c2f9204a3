"""The server's Celery dispatcher when the broker does not answer: the deployment is
``interrupted`` with the reason (resumable once the broker is back), never left pending."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fastapi.testclient import TestClient

from golive.api.app import create_app
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import DeployLock, Deployment, Order
from golive.testing.server import api_token, bearer, free_port
from golive.testing.world import apply_config, file_order, local_hosts, make_repo, rows


def test_a_deployment_the_broker_cannot_take_is_interrupted_with_the_reason(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = sqlite_runtime.settings.model_copy(update={"tasks": "celery",
                                                          "broker_url": closed})
    runtime = dataclasses.replace(sqlite_runtime, settings=settings)
    repo = make_repo(tmp_path, "web", {"src/a.txt": "1\n"}, branches={"f": {"src/a.txt": "2"}})
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1"]),
        "projects": [{"name": "shop", "stages": ["prod"], "services": [{
            "name": "web", "repo": repo.url, "pack": ["src"],
            "stages": {"prod": {"path": "srv", "hosts": ["h1"], "zone": "dc9"}}}]}]})
    order = file_order(runtime, "admin", "shop", [ItemRequest("web", "f")])
    with TestClient(create_app(runtime=runtime, announce=lambda _: None)) as client:
        answer = client.post(f"/api/v1/orders/{order}/deploy", json={},
                             headers=bearer(api_token(runtime, "admin")))
        assert answer.status_code == 202, answer.text
    (deployment,) = rows(runtime, Deployment)
    assert deployment.status == "interrupted"
    assert deployment.error.startswith(
        "interrupted: the deployment could not be sent to queue golive.dc9: ")
    assert [lock.deployment_id for lock in rows(runtime, DeployLock)] == [None]
    assert rows(runtime, Order)[0].state == "prod:failed"
