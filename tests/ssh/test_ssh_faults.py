"""Every fault of issue 4 on real OpenSSH hosts. Each time: the deployment fails with one
clear line naming the host and what failed; no host is left without a complete
``current`` (its previous release, or none on a first deploy); hosts switched in the
deployment are switched back; the order is at ``test:failed`` with its log kept; and a
rerun after the fault is fixed completes."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import asyncssh
import pytest
from ssh_world import (
    PATH,
    World,
    by_host,
    closed_port,
    health_server,
    make_world,
    port_of,
    shim,
    wait_until,
)

from golive.cli.main import main
from golive.services import deploy as engine
from golive.services.runtime import Runtime
from golive.store.models import Deployment, OrderHistory
from golive.testing.sshd import SshServer, SshServerFactory
from golive.testing.world import roll_back, rows

# the build adds a 3 MB blob when the branch asks for one (src/BLOB names its source)
BLOB_BUILD = ("mkdir -p dist && cp -r src/. dist/ && "
              "if [ -f src/BLOB ]; then head -c 3000000 /dev/$(cat src/BLOB) > dist/blob.bin; fi")


def assert_failed_cleanly(world: World, deployment: Deployment, host: str,
                          *what: str) -> str:
    """The deployment failed with one line naming ``host`` and ``what``; the order is
    at test:failed with that reason; the log is kept and has exactly that error."""
    assert deployment.status == "failed", world.log(deployment.id)
    error = deployment.error
    assert "\n" not in error and "Traceback" not in error
    assert error.startswith("service web: ") and f"host {host}" in error, error
    for words in what:
        assert words in error, error
    assert world.state() == "test:failed"
    lines = world.log_lines(deployment.id)
    assert [ln.text for ln in lines if ln.level == "error"] == [error]
    assert lines[0].text.startswith("iterative deployment of order")
    (history,) = rows(world.runtime, OrderHistory, OrderHistory.order_id == world.order_id,
                      OrderHistory.action == "fail")
    assert history.reason == error[:500]
    return error


def assert_no_switch(world: World, deployment: Deployment) -> None:
    assert world.steps(deployment.id, "switch") == []


def rerun_completes(world: World) -> str:
    """A deploy after the fix succeeds on every host; its release id."""
    deployment = world.deploy_ok()
    assert world.state() == "test:deployed"
    rid = next(e.release_id for e in world.ledger() if e.deployment_id == deployment.id)
    world.assert_serving({name: rid for name in world.hosts})
    for name in world.hosts:
        assert world.leftovers(name) == []
    return rid


def first_release(world: World, path: str = PATH) -> str:
    world.deploy_ok()
    (entry,) = world.ledger()
    world.assert_serving({name: entry.release_id for name in world.hosts}, path)
    return entry.release_id


def test_a_closed_port(tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd)
    with closed_port() as sock:
        port = port_of(sock)
        world.set_host("h3", port=port)
        deployment = world.deploy()
    error = assert_failed_cleanly(world, deployment, "h3")
    assert error == f"service web: host h3 (127.0.0.1:{port}): Connection refused"
    assert_no_switch(world, deployment)
    # a first deploy: no host serves anything, and the unused release is gone
    world.assert_serving({"h1": None, "h2": None, "h3": None})
    for name in ("h1", "h2"):
        assert world.releases(name) == [] and world.leftovers(name) == []
    assert by_host(world, world.steps(deployment.id, "receive"))["h3"].status == "failed"

    world.set_host("h3", port=sshd.port)
    rerun_completes(world)


def test_a_wrong_key(tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd)
    rid = first_release(world)
    wrong = tmp_path / "wrong_key"
    wrong.write_text(asyncssh.generate_private_key("ssh-ed25519").export_private_key()
                     .decode())
    world.set_host("h2", key=str(wrong))
    world.change()
    deployment = world.deploy()
    error = assert_failed_cleanly(world, deployment, "h2")
    assert error == (f"service web: host h2 (127.0.0.1:{sshd.port}): authentication failed "
                     "(wrong key, password or user)")
    assert_no_switch(world, deployment)
    world.assert_serving({"h1": rid, "h2": rid, "h3": rid})
    assert [world.releases(name) for name in world.hosts] == [[rid]] * 3

    world.set_host("h2", key=str(sshd.client_key))
    rerun_completes(world)


def test_a_changed_host_key(tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer,
                            sshd_factory: SshServerFactory,
                            capsys: pytest.CaptureFixture[str]) -> None:
    other = sshd_factory(hosts=1)  # h3 lives on a server of its own
    world = make_world(tmp_path, sqlite_runtime, sshd, 2, order=False)
    world.add_host(other, 0, "h3")
    world.file_order()
    rid = first_release(world)
    old_key, old_fingerprint = other.host_public_key, other.host_key_fingerprint
    assert world.host_row("h3").host_key == " ".join(old_key.split()[:2])

    other.rotate_host_key()
    world.change()
    deployment = world.deploy()
    error = assert_failed_cleanly(world, deployment, "h3", old_fingerprint,
                                  other.host_key_fingerprint, "`golive host trust h3`")
    assert "the host key changed" in error
    assert_no_switch(world, deployment)
    world.assert_serving({"h1": rid, "h2": rid, "h3": rid})
    assert world.host_row("h3").host_key == " ".join(old_key.split()[:2])  # not re-pinned

    # only an admin may accept it
    assert main(["--as", "alice", "host", "trust", "h3"]) == 1
    assert "admin" in capsys.readouterr().err
    assert world.host_row("h3").host_key == " ".join(old_key.split()[:2])
    assert main(["host", "trust", "h3"]) == 0
    assert " ".join(capsys.readouterr().out.split()) == (
        f"host h3: key changed from {old_fingerprint} to {other.host_key_fingerprint}; "
        "accepted")
    assert world.host_row("h3").host_key == " ".join(other.host_public_key.split()[:2])
    rerun_completes(world)


@pytest.mark.parametrize("where", ["the deploy path", "the releases folder"])
def test_a_deploy_path_without_write_permission(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer, where: str
) -> None:
    h2 = sshd.users[1]
    world = make_world(tmp_path, sqlite_runtime, sshd, stage={"path": "locked/app"})
    if where == "the deploy path":  # a first deploy into a folder h2 may not write
        locked, previous = h2.home / "locked", None
        locked.mkdir()
        subprocess.run(["chown", f"{h2.uid}:{h2.gid}", str(locked)], check=True)
    else:  # later, the releases folder of a deployed host turns read-only
        previous = first_release(world, "locked/app")
        locked = h2.home / "locked" / "app" / "releases"
        world.change()
    locked.chmod(0o555)
    deployment = world.deploy()
    error = assert_failed_cleanly(world, deployment, "h2", "Permission denied")
    if where == "the deploy path":
        assert f"mkdir: cannot create directory '{h2.home}/locked/app'" in error
    else:
        assert f"cannot write {locked}/.incoming-" in error
    assert_no_switch(world, deployment)
    world.assert_serving({name: previous for name in world.hosts}, "locked/app")
    for name in ("h1", "h3"):
        assert world.releases(name, "locked/app") == ([previous] if previous else [])

    locked.chmod(0o755)
    deployment = world.deploy_ok()
    rid = next(e.release_id for e in world.ledger() if e.deployment_id == deployment.id)
    world.assert_serving({name: rid for name in world.hosts}, "locked/app")


@pytest.mark.parametrize("blob", ["zero", "urandom"], ids=["unpack", "upload"])
def test_a_full_disk(tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer,
                     blob: str) -> None:
    """h2's deploy path is a 1 MiB disk. Zeros pack small and fill it while unpacking;
    random bytes fill it while the archive is uploaded."""
    disk = sshd.small_disk(sshd.users[1], "1m")
    path = f"{disk.name}/app"
    world = make_world(tmp_path, sqlite_runtime, sshd, stage={"path": path},
                       service={"build": BLOB_BUILD})
    rid = first_release(world, path)

    world.change({"src/BLOB": blob})
    deployment = world.deploy()
    error = assert_failed_cleanly(world, deployment, "h2", "no space left on the device")
    if blob == "zero":
        assert "unpacking release" in error and "tar: " in error
    else:
        assert "cannot write" in error and ".incoming-" in error
    assert_no_switch(world, deployment)
    world.assert_serving({name: rid for name in world.hosts}, path)
    for name in world.hosts:  # no half release, no half upload, anywhere
        assert world.releases(name, path) == [rid]
        assert world.leftovers(name, path) == []

    subprocess.run(["mount", "-o", "remount,size=32m", str(disk)], check=True)
    deployment = world.deploy_ok()
    new = next(e.release_id for e in world.ledger() if e.deployment_id == deployment.id)
    world.assert_serving({name: new for name in world.hosts}, path)
    assert (world.base("h2", path) / "releases" / new / "dist" / "blob.bin").stat().st_size \
        == 3_000_000


def test_the_ssh_server_killed_during_phase_one(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer
) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd)
    rid = first_release(world)
    # h2 and h3 unpack slowly: the server dies while they do, after h1 is done
    slow = [shim(user, "tar", 'sleep 20; exec /usr/bin/tar "$@"') for user in sshd.users[1:]]
    world.change()
    deployment_id = world.request()
    outcome: list[bool] = []
    runner = threading.Thread(
        target=lambda: outcome.append(engine.run_deployment(world.runtime, deployment_id)))
    runner.start()
    try:
        def h1_received() -> bool:
            steps = by_host(world, world.steps(deployment_id, "receive"))
            return "h1" in steps and steps["h1"].status == "done"
        wait_until(h1_received, 60, "h1's release to be unpacked")
        sshd.kill()
    finally:
        runner.join(60)
    assert outcome == [False]
    deployment = world.deployment(deployment_id)
    error = assert_failed_cleanly(world, deployment, "h2")
    assert error.startswith(f"service web: host h2 (127.0.0.1:{sshd.port}): ")
    assert_no_switch(world, deployment)
    world.assert_serving({name: rid for name in world.hosts})

    sshd.start()
    for script in slow:
        script.unlink()
    new = rerun_completes(world)
    assert new != rid
    # what the killed deployment left (h2, h3: half releases and uploads; h1: a release
    # never served) is not taken for a release to go back to: every host returns to rid
    for name in ("h2", "h3"):
        assert world.releases(name) == [rid, new]
    rollback_id, ok = roll_back(world.runtime, world.order_id, "rita", stage="test")
    assert ok, world.log(rollback_id)
    world.assert_serving({name: rid for name in world.hosts})


POST_DEPLOY = ('if [ "$GOLIVE_HOST" = h3 ] && [ -e "$HOME/broken" ]; then '
               'echo "h3: the app does not start" >&2; exit 7; fi; echo "$GOLIVE_HOST started"')


def test_a_post_deploy_command_failing_on_host_3_of_5_in_batch_2(
    tmp_path: Path, sqlite_runtime: Runtime, sshd_factory: SshServerFactory
) -> None:
    server = sshd_factory(hosts=5)
    world = make_world(tmp_path, sqlite_runtime, server, stage={"batch": 2},
                       service={"post_deploy": [POST_DEPLOY]})
    rid = first_release(world)
    broken = world.home("h3") / "broken"
    broken.touch()
    world.change()
    deployment = world.deploy()
    error = assert_failed_cleanly(world, deployment, "h3", "exited with 7",
                                  "h3: the app does not start")
    switches = by_host(world, world.steps(deployment.id, "switch"))
    assert {h: s.status for h, s in switches.items()} == {
        "h1": "done", "h2": "done", "h3": "failed", "h4": "done"}  # h5: batch 3, never
    assert error == f"service web: {switches['h3'].message}"
    world.assert_serving({name: rid for name in world.hosts})
    switched_back = {ln.host for ln in world.log_lines(deployment.id)
                     if ln.text == f"switched back to {rid}" and ln.level == "warning"}
    assert switched_back == {"h1", "h2", "h3", "h4"}
    for name in world.hosts:  # the failed release is not kept for a later rollback
        assert world.releases(name) == [rid]

    broken.unlink()
    rerun_completes(world)


@pytest.mark.parametrize("fault", ["503 in batch 2", "closed port"])
def test_a_failing_health_check(tmp_path: Path, sqlite_runtime: Runtime, sshd_factory:
                                SshServerFactory, fault: str) -> None:
    server = sshd_factory(hosts=4)
    with health_server() as health, closed_port() as sock:
        dead_url = f"http://127.0.0.1:{port_of(sock)}/health"
        check = {"http": health.url, "retries": 0, "timeout": 5}
        world = make_world(tmp_path, sqlite_runtime, server, stage={"batch": 2},
                           service={"health_check": check})
        if fault == "503 in batch 2":
            previous: str | None = first_release(world)
            health.fail_after = len(health.requests) + 2  # batch 1 passes, batch 2 not
            world.change()
            failing, url, switched = "h3", health.url, {"h1", "h2", "h3", "h4"}
        else:  # a first deploy whose check cannot reach the service at all
            previous = None
            world.service["health_check"] = {**check, "http": dead_url}
            world.apply()
            failing, url, switched = "h1", dead_url, {"h1", "h2"}
        deployment = world.deploy()
        error = assert_failed_cleanly(world, deployment, failing)
        assert error == f"service web: host {failing}: health check failed: {url}"
        world.assert_serving({name: previous for name in world.hosts})
        back = {ln.host for ln in world.log_lines(deployment.id)
                if ln.text == f"switched back to {previous or 'no release'}"}
        assert back == switched

        health.fail_after = None
        world.service["health_check"] = check
        world.apply()
        rerun_completes(world)
