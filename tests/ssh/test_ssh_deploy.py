"""Deployments to real OpenSSH hosts: artifact mode in batches (a number or a
percentage), post-deploy commands and health checks per host, a canary, a pause
between batches, checkout mode with the host's own git, and zstd archives."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from ssh_world import (
    BRANCH,
    by_host,
    health_server,
    hide_program,
    make_readable,
    make_world,
    wait_until,
    world_readable_repo,
)

from golive.domain.release import MARKER
from golive.services import deploy as engine
from golive.services import requests, users
from golive.services.runtime import Runtime
from golive.testing.sshd import SshServer, SshServerFactory
from golive.testing.world import git

# each host notes when its post-deploy command ran, to see the batches
TIMED_HOOK = ('printf "%s %s\\n" "$GOLIVE_HOST" "$(date +%s.%N)" > hook.start; sleep 0.8; '
              'date +%s.%N > hook.end; echo "post-deploy on $GOLIVE_HOST in $PWD"')


def logins(server: SshServer, user_name: str) -> int:
    return server.log_path.read_text().count(f"Accepted publickey for {user_name} ")


@pytest.mark.parametrize("batch", [2, "40%"])
def test_artifact_deploy_to_five_hosts_in_batches(
    tmp_path: Path, sqlite_runtime: Runtime, sshd_factory: SshServerFactory, batch: Any
) -> None:
    server = sshd_factory(hosts=5)
    stored_key = server.client_key.read_text()
    world = make_world(tmp_path, sqlite_runtime, server,
                       stage={"batch": batch}, service={"post_deploy": [TIMED_HOOK]},
                       # h2 logs in with a key stored (encrypted) in golive, not a file
                       host_extra={"h2": {"key": "", "private_key": stored_key}})
    assert world.host_row("h2").key_path == ""
    assert stored_key not in (world.host_row("h2").private_key_enc or "")

    deployment = world.deploy_ok()
    (entry,) = world.ledger()
    rid = entry.release_id
    assert rid.endswith(f"-d{deployment.id}") and world.state() == "test:deployed"
    world.assert_serving({name: rid for name in world.hosts})
    for name in world.hosts:
        release = world.base(name) / "releases" / rid
        marker = (release / MARKER).read_text().split()
        assert marker[:2] == [rid, entry.deployed_commit]
        assert (release / "dist" / "feature.html").read_text() == "<p>new</p>\n"
        assert (release / "hook.start").read_text().split()[0] == name  # GOLIVE_HOST
        assert release.stat().st_uid == world.hosts[name].uid
        assert world.leftovers(name) == []

    # the batches switched one after the other, the hosts of a batch together
    windows = {name: (float((world.base(name) / "releases" / rid / "hook.start")
                            .read_text().split()[1]),
                      float((world.base(name) / "releases" / rid / "hook.end").read_text()))
               for name in world.hosts}
    batches = [["h1", "h2"], ["h3", "h4"], ["h5"]]
    for earlier, later in zip(batches, batches[1:], strict=False):
        assert max(windows[h][1] for h in earlier) <= min(windows[h][0] for h in later)
    for together in batches[:2]:
        assert max(windows[h][0] for h in together) < min(windows[h][1] for h in together)

    # one connection per host for the whole deployment, its key pinned on first contact
    for name, user in world.hosts.items():
        assert logins(server, user.name) == 1
        assert world.host_row(name).host_key == " ".join(server.host_public_key.split()[:2])
    lines = world.log_lines(deployment.id)
    pinned = [ln.host for ln in lines if ln.text == "host key pinned on first contact: "
              f"{server.host_key_fingerprint}"]
    assert sorted(pinned) == sorted(world.hosts)
    hook_output = {ln.host: ln.text for ln in lines if ln.text.startswith("post-deploy on")}
    assert hook_output == {name: f"post-deploy on {name} in "
                           f"{world.base(name) / 'releases' / rid}" for name in world.hosts}
    for step_name in ("receive", "switch"):
        steps = by_host(world, world.steps(deployment.id, step_name))
        assert sorted(steps) == sorted(world.hosts)
        assert {s.status for s in steps.values()} == {"done"}


def test_health_checks_over_http_and_by_command(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer
) -> None:
    with health_server() as health:
        world = make_world(tmp_path, sqlite_runtime, sshd, stage={"batch": 1},
                           service={"health_check": {"http": health.url, "retries": 0,
                                                     "timeout": 5}})
        deployment = world.deploy_ok()
        # fetched from each host, once per host
        assert health.requests == ["/health"] * 3
        checks = [ln.host for ln in world.log_lines(deployment.id)
                  if ln.text == f"health check: {health.url}"]
        assert sorted(checks) == ["h1", "h2", "h3"]

    check = 'echo "$GOLIVE_HOST $(basename "$PWD")" >> "$HOME/checked"; test -f dist/index.html'
    world.service["health_check"] = {"command": check, "retries": 0}
    world.apply()
    world.change()
    deployment = world.deploy_ok()
    rid = world.ledger()[0].release_id
    for name in world.hosts:
        assert (world.home(name) / "checked").read_text() == f"{name} {rid}\n"
    world.assert_serving({name: rid for name in world.hosts})


def test_a_canary_deploys_to_its_hosts_only_and_moves_nothing(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer
) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd, stage={"keep_releases": 1})
    canary = world.deploy_ok(only_hosts=("h1",))
    assert canary.only_hosts == ["h1"]
    (rid,) = world.releases("h1")
    world.assert_serving({"h1": rid})
    assert not world.base("h2").exists() and not world.base("h3").exists()
    assert world.state() == "submitted" and world.ledger() == []
    assert "canary: the ledger is not updated; deploy to every host to finish" in \
        world.log(canary.id)
    assert [world.host_name(s.host_id) for s in world.steps(canary.id, "receive")] == ["h1"]

    full = world.deploy_ok()
    assert world.state() == "test:deployed"
    (entry,) = world.ledger()
    assert entry.deployment_id == full.id
    world.assert_serving({name: entry.release_id for name in world.hosts})
    assert world.releases("h1") == [entry.release_id]  # keep_releases: 1 removed the canary's


def test_pause_after_each_batch_until_resumed(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer
) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd, stage={"batch": 2})
    deployment_id = world.request(pause_after_batch=True)
    outcome: list[bool] = []
    runner = threading.Thread(
        target=lambda: outcome.append(engine.run_deployment(world.runtime, deployment_id)))
    runner.start()
    try:
        wait_until(lambda: world.deployment(deployment_id).status == "paused", 60,
                   "the pause after batch 1")
        (rid,) = world.releases("h3")  # phase one is done on every host
        world.assert_serving({"h1": rid, "h2": rid, "h3": None})
        assert world.state() == "test:deploying"
        assert (f"paused after batch 1 of 2: run `golive order resume {world.order_id}` "
                "to go on") in world.log(deployment_id)
        runner.join(1.0)
        assert runner.is_alive()  # it waits for the resume, however long
        assert world.current("h3") is None

        with world.runtime.store.session() as session:
            requests.resume_batches(session, world.order_id, users.acting_user(session, "alice"))
            session.commit()
    finally:
        runner.join(60)
    assert outcome == [True], world.log(deployment_id)
    world.assert_serving({name: rid for name in world.hosts})
    deployment = world.deployment(deployment_id)
    assert deployment.status == "succeeded" and deployment.batches_released == 1
    assert world.state() == "test:deployed"
    assert any(ln.text == "resumed" for ln in world.log_lines(deployment_id))


def test_checkout_mode_uses_the_hosts_own_git(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer
) -> None:
    shared = sshd.root / "git"  # the hosts' users can read it; tmp_path is private
    shared.mkdir()
    repo = world_readable_repo(shared)
    # the repositories are root's: let the hosts' users fetch from them
    for user in sshd.users:
        gitconfig = user.home / ".gitconfig"
        gitconfig.write_text("[safe]\n\tdirectory = *\n")
        os.chown(gitconfig, user.uid, user.gid)
    build = 'echo "built by $(id -un) on $(git rev-parse --abbrev-ref HEAD)" > BUILT'
    hook = 'echo "$GOLIVE_HOST $GOLIVE_COMMIT" > DEPLOYED'
    world = make_world(tmp_path, sqlite_runtime, sshd, stage={"mode": "checkout", "batch": 2},
                       service={"build": build, "post_deploy": [hook]}, repo=repo)

    world.deploy_ok()
    head = repo.head(BRANCH)
    (entry,) = world.ledger()
    assert entry.deployed_commit == head and entry.release_id == ""
    assert world.state() == "test:deployed"
    for name, user in world.hosts.items():
        copy = world.base(name)
        assert git(copy, "-c", "safe.directory=*", "rev-parse", "HEAD") == head
        assert git(copy, "-c", "safe.directory=*", "rev-parse", "--abbrev-ref",
                   "HEAD") == BRANCH
        assert (copy / "src" / "feature.html").is_file()
        assert (copy / "BUILT").read_text() == f"built by {user.name} on {BRANCH}\n"
        assert (copy / "DEPLOYED").read_text() == f"{name} {head}\n"
        assert (copy / ".git").stat().st_uid == user.uid  # cloned by the host's user

    # the next deploy fetches the new commit into the same working copy and cleans it
    (world.base("h1") / "stray.txt").write_text("untracked\n")
    world.change({"src/feature.html": "<p>newer</p>\n"})
    make_readable(shared)
    world.deploy_ok()
    newer = repo.head(BRANCH)
    assert world.ledger()[0].deployed_commit == newer != head
    for name in world.hosts:
        assert (world.base(name) / "src" / "feature.html").read_text() == "<p>newer</p>\n"
        assert (world.base(name) / "DEPLOYED").read_text() == f"{name} {newer}\n"
    assert not (world.base("h1") / "stray.txt").exists()


def test_hosts_with_zstd_get_a_zst_archive_others_gzip(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer
) -> None:
    hide_program(sshd.users[1], "zstd")  # h2 has no zstd
    probe = subprocess.run([*sshd.ssh_args(sshd.users[1]), "command -v zstd || echo none"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "none"
    world = make_world(tmp_path, sqlite_runtime, sshd, 2)
    deployment = world.deploy_ok()
    rid = world.ledger()[0].release_id
    world.assert_serving({"h1": rid, "h2": rid})
    formats = {ln.host: ln.text.split(", ")[1] for ln in world.log_lines(deployment.id)
               if ln.text.startswith(f"release {rid} unpacked")}
    assert formats == {"h1": "zst", "h2": "gz"}
    assert {world.host_name(s.host_id): s.status
            for s in world.steps(deployment.id, "receive")} == {"h1": "done", "h2": "done"}
