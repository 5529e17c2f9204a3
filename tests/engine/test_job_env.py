"""Job commands see the deployment (DESIGN §5a): GOLIVE_COMMIT is the deployed commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from golive.domain.jobs import JobSpec
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import CommitLedger
from golive.testing.world import (
    apply_config,
    commit,
    deploy,
    file_order,
    host_root,
    local_hosts,
    make_repo,
    rows,
)


def test_a_command_job_sees_the_commit_deployed_and_kept(
    tmp_path: Path, sqlite_runtime: Runtime
) -> None:
    repo = make_repo(tmp_path, "api", {"app.txt": "v1\n"},
                     branches={"feature/x": {"app.txt": "v2\n"}})
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "j1"]),
        "projects": [{
            "name": "shop",
            "members": [{"user": "dev", "roles": ["developer"]}],
            "services": [{"name": "api", "repo": str(repo.origin), "pack": ["."],
                          "stages": {"test": {"path": "srv/api", "hosts": ["h1"],
                                              "job_hosts": ["j1"]}}}],
        }],
    })
    job = JobSpec("note", "command", {
        "create": 'echo "create $GOLIVE_COMMIT" >> ~/jobs.log',
        "reload": 'echo "reload $GOLIVE_COMMIT" >> ~/jobs.log; '
                  'echo "$GOLIVE_RELEASE" > ~/release.txt; test -d "$GOLIVE_RELEASE_PATH"'})
    order_id = file_order(sqlite_runtime, "dev", "shop",
                          [ItemRequest("api", "feature/x", jobs=(job,))])
    assert deploy(sqlite_runtime, order_id, "dev")[1]
    (entry,) = rows(sqlite_runtime, CommitLedger)
    log = host_root(tmp_path, "j1") / "jobs.log"
    assert log.read_text().splitlines() == [f"create {entry.deployed_commit}"]
    assert (host_root(tmp_path, "j1") / "srv" / "api" / "current").is_symlink()

    # an iterative redeploy with nothing changed keeps the commit and the release; the job
    # reloads with them
    assert deploy(sqlite_runtime, order_id, "dev")[1]
    assert log.read_text().splitlines()[-1] == f"reload {entry.deployed_commit}"
    assert (host_root(tmp_path, "j1") / "release.txt").read_text().strip() == entry.release_id
    commit(repo, "feature/x", {"app.txt": "v3\n"})
    assert deploy(sqlite_runtime, order_id, "dev")[1]
    (moved,) = rows(sqlite_runtime, CommitLedger)
    assert moved.deployed_commit != entry.deployed_commit
    assert log.read_text().splitlines()[-1] == f"reload {moved.deployed_commit}"


def test_hooks_and_builds_never_see_golives_own_settings(
    tmp_path: Path, sqlite_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOLIVE_SECRET_KEY", "do-not-leak")
    monkeypatch.setenv("GOLIVE_DATABASE_URL", "postgresql://u:pw@db/golive")
    repo = make_repo(tmp_path, "api", {"app.txt": "v1\n"},
                     branches={"feature/x": {"app.txt": "v2\n"}})
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1"]),
        "projects": [{
            "name": "shop",
            "members": [{"user": "dev", "roles": ["developer"]}],
            "services": [{"name": "api", "repo": str(repo.origin), "pack": ["."],
                          "build": "env > build.env",
                          "post_deploy": ["env > ~/hook.env"],
                          "stages": {"test": {"path": "srv/api", "hosts": ["h1"]}}}],
        }],
    })
    order_id = file_order(sqlite_runtime, "dev", "shop", [ItemRequest("api", "feature/x")])
    assert deploy(sqlite_runtime, order_id, "dev")[1]
    hook = (host_root(tmp_path, "h1") / "hook.env").read_text()
    build = (host_root(tmp_path, "h1") / "srv" / "api" / "current" / "build.env").read_text()
    for seen in (hook, build):
        assert "do-not-leak" not in seen and "GOLIVE_DATABASE_URL" not in seen
        assert "GOLIVE_SERVICE=api" in seen  # the deployment's own variables are there
