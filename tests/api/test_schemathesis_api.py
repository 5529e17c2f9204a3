"""The API against its own OpenAPI schema, by schemathesis: requests generated from
``/api/v1/openapi.json`` (valid and invalid ones) are sent as the site admin to the
application on a seeded world, and every answer must be no server error, of a status
the schema declares for the operation, of the declared content type, and match the
declared response schema.

The world: project ``shop`` (test, staging, prod; service ``api`` on local hosts), a
user per role, orders in several states — a draft, a submitted one, one deployed on
test for real (its deployment, log and ledger exist) — and a notification channel
pointing at a closed port; each stage has one local host. Numbers in paths are
generated, so some requests reach these rows and most answer 404: both are checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.core.result import Ok
from schemathesis.python import asgi

from golive.api.app import create_app
from golive.services import accounts, orders, users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime, open_runtime
from golive.settings import Settings
from golive.testing.server import api_token, bearer
from golive.testing.world import apply_config, deploy, file_order, local_hosts, make_repo

BRANCH = "feature/x"
CHECKS = [schemathesis.checks.not_a_server_error,
          schemathesis.checks.response_schema_conformance,
          schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance]
# Kept: order.deploy, release and rollback start real deployments, on local hosts. With
# one host per stage `pause_after_batch` never pauses (there is no batch after the
# first), so every deployment ends within seconds and frees its lock: a generated
# `wait` (up to 900 s) never waits long — and the live events of one
# (deployment.events, a stream that closes when its deployment ends) never last long.
EXCLUDED_PATHS = [
    # the push webhooks read the raw body (the signatures cover its bytes): the schema
    # describes no body to generate, only a wrong signature could be tried
    "/api/v1/hooks/{provider}/{project}",
]

# The document create_app() serves at /api/v1/openapi.json, built without starting the
# application (no store is opened at import). test_the_schema_tested_is_the_one_served
# checks that it is the served one. (schemathesis.pytest.from_fixture — the lazy way to
# use from_asgi on a fixture's application — fails on pytest 9.2: it sets
# ``node._nodeid``, which pytest no longer has.)
schema = schemathesis.openapi.from_dict(create_app().openapi()).exclude(path=EXCLUDED_PATHS)


@dataclass
class World:
    runtime: Runtime
    app: FastAPI
    token: str

    def admin(self) -> dict[str, str]:
        """The admin's token; a new one when a generated request revoked it."""
        with self.runtime.store.session() as session:
            if accounts.user_for_token(session, self.token) is None:
                self.token = api_token(self.runtime, "admin")
            session.commit()
        return bearer(self.token)


def _seed(root: Path, runtime: Runtime) -> None:
    repo = make_repo(root, "api", {"app.txt": "v1\n"}, branches={BRANCH: {"app.txt": "v2\n"}})
    checkout = {"mode": "checkout", "path": "srv/api"}
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h-test", "h-staging", "h-prod"]),
        "databases": [{"name": "shop-test", "url": f"sqlite:///{root}/shop-test.db"}],
        "projects": [{
            "name": "shop", "stages": ["test", "staging", "prod"], "push_secret": "s3cret",
            "members": [{"user": "dev", "roles": ["developer"]},
                        {"user": "tess", "roles": ["tester"]},
                        {"user": "rel", "roles": ["releaser"]},
                        {"user": "olga", "roles": ["owner"]}],
            "notify": [{"type": "webhook", "name": "hook", "events": ["release_queued"],
                        "webhook": "http://127.0.0.1:9/golive-schemathesis"}],
            "services": [{"name": "api", "repo": repo.url, "stages": {
                "test": {**checkout, "hosts": ["h-test"], "database": "shop-test"},
                "staging": {**checkout, "hosts": ["h-staging"]},
                "prod": {**checkout, "hosts": ["h-prod"]}}}]}]})
    item = ItemRequest("api", BRANCH, sql="CREATE TABLE t (a INT);")
    deployed = file_order(runtime, "dev", "shop", [item], "deployed on test")
    assert deploy(runtime, deployed, "dev")[1], "the seeded deployment failed"
    file_order(runtime, "dev", "shop", [ItemRequest("api", BRANCH)], "submitted")
    with runtime.store.session() as session:
        orders.create_order(session, users.acting_user(session, "dev"), "shop",
                            [ItemRequest("api", BRANCH)], "a draft")
        session.commit()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("api-schemathesis")
    runtime = open_runtime(Settings(home=root / "home", database_url="", secret_key=""))
    try:
        _seed(root, runtime)
        app = create_app(runtime=runtime, announce=lambda _: None)
        yield World(runtime, app, api_token(runtime, "admin"))
        asgi.shutdown_lifespans()  # schemathesis started the application's lifespan
    finally:
        runtime.close()


@pytest.fixture(autouse=True)
def golive_home(world: World, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GOLIVE_HOME stays the world's home (its secret key, its git mirrors)."""
    home = world.runtime.settings.home
    monkeypatch.setenv("GOLIVE_HOME", str(home))
    return home


def test_the_schema_tested_is_the_one_served(world: World) -> None:
    served = schemathesis.openapi.from_asgi("/api/v1/openapi.json", world.app)
    assert served.raw_schema == create_app().openapi()
    tested = {found.ok().definition.raw.get("operationId")
              for found in schema.get_all_operations() if isinstance(found, Ok)}
    assert {"order.create", "order.deploy", "deployment.events"} <= tested
    every = sum(len(methods) for methods in served.raw_schema["paths"].values())
    assert len(tested) == every - len(EXCLUDED_PATHS)  # the hook route has one method


@schema.parametrize()
# no shrinking: a failure is reported as found (with its curl line), and a failing run
# stays as short as a passing one
@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_the_api_answers_as_its_schema_says(case: Any, world: World) -> None:
    case.call_and_validate(app=world.app, headers=world.admin(), checks=CHECKS)
