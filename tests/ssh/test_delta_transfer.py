"""Delta transfer to real OpenSSH hosts: only what changed is sent, the rest is hard-linked
from the current release; a changed file, a deleted file, a mode change and a symlink change
each land exactly; a host whose current release was tampered with, removed, or is not one
golive knows gets the whole archive with a log line saying why; ``full_transfer`` sends the
archive everywhere; a release can never change another through a shared inode; the plan
tells the bytes; a resumed deployment finishes correctly; and the same on a local host."""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ssh_world import BRANCH, World, make_world, shim, wait_until

from golive.domain.release import MARKER
from golive.services import deploy as engine
from golive.services import requests, users
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import Deployment, DeploymentStep
from golive.testing.sshd import SshServer, SshServerFactory
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

# the build lays out dist/ from src/ and sets a mode and a link as layout.sh says
BUILD = "mkdir -p dist && cp -r src/. dist/ && cd dist && sh ../layout.sh"
LAYOUT = "chmod {mode} tool.sh && ln -s {target} latest\n"
BLOB = base64.b64encode(random.Random(12).randbytes(300_000)).decode()  # ~300 KB packed


def web_repo(root: Path) -> Any:
    return make_repo(root, "web", {
        "src/index.html": "<h1>shop</h1>\n", "src/blob.txt": BLOB, "src/tool.sh": "echo t\n",
        "src/old.txt": "old\n", "layout.sh": LAYOUT.format(mode=644, target="index.html"),
    }, branches={BRANCH: {"src/feature.html": "<p>new</p>\n"}})


def delta_world(tmp_path: Path, runtime: Runtime, server: SshServer, hosts: int) -> World:
    return make_world(tmp_path, runtime, server, hosts, repo=web_repo(tmp_path),
                      service={"build": BUILD})


def receives(world: World, deployment_id: int) -> dict[str, dict[str, Any]]:
    """host → the receive step's data (transfer, bytes sent, previous release)."""
    return {world.host_name(s.host_id): dict(s.data or {})
            for s in world.steps(deployment_id, "receive")}


def lines(world: World, deployment_id: int, start: str) -> dict[str, str]:
    """host → the log line starting with ``start``."""
    return {ln.host: ln.text for ln in world.log_lines(deployment_id)
            if ln.text.startswith(start)}


def release_dir(world: World, host: str, rid: str) -> Path:
    return world.base(host) / "releases" / rid


def inode(world: World, host: str, rid: str, rel: str) -> int:
    return (release_dir(world, host, rid) / rel).lstat().st_ino


def as_host(server: SshServer, world: World, host: str, command: str
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server.ssh_args(world.hosts[host]), command], capture_output=True,
                          text=True, timeout=60)


def deploy_delta(world: World, previous: str) -> tuple[Deployment, str]:
    """Deploy; every host must have made the release by a delta from ``previous``."""
    done = world.deploy_ok()
    rid = world.ledger()[0].release_id
    got = receives(world, done.id)
    assert {h: d["transfer"] for h, d in got.items()} == {h: "delta" for h in world.hosts}
    assert all(d["previous"] == previous for d in got.values())
    world.assert_serving({name: rid for name in world.hosts})
    return done, rid


def test_only_what_changed_is_sent(tmp_path: Path, sqlite_runtime: Runtime,
                                   sshd_factory: SshServerFactory) -> None:
    server = sshd_factory(hosts=2)
    world = delta_world(tmp_path, sqlite_runtime, server, 2)
    first = world.deploy_ok()
    rid1 = world.ledger()[0].release_id
    assert lines(world, first.id, "full archive:") == {
        h: "full archive: the host has no current release" for h in world.hosts}
    full_sent = {d["sent"] for d in receives(world, first.id).values()}
    (archive_bytes,) = full_sent
    assert archive_bytes > 200_000

    # one changed file: a few hundred bytes, the rest hard links to the current release
    world.change({"src/index.html": "<h1>shop, fixed</h1>\n"})
    second, rid2 = deploy_delta(world, rid1)
    for host, data in receives(world, second.id).items():
        assert data["sent"] < 2_000, data  # the archive was > 200 KB
        assert (release_dir(world, host, rid2) / "dist/index.html").read_text() == \
            "<h1>shop, fixed</h1>\n"
        assert (release_dir(world, host, rid1) / "dist/index.html").read_text() == \
            "<h1>shop</h1>\n"
        assert inode(world, host, rid2, "dist/blob.txt") == inode(world, host, rid1,
                                                                  "dist/blob.txt")
        assert inode(world, host, rid2, "dist/index.html") != inode(world, host, rid1,
                                                                    "dist/index.html")
        assert (world.base(host) / "manifests" / rid2).is_file()
    made = lines(world, second.id, f"release {rid2} made from {rid1} by a delta of ")
    assert sorted(made) == ["h1", "h2"]
    assert made["h1"].endswith(": 1 sent, 5 linked, 0 copied, 0 gone; verified against its "
                               "manifest")
    assert any(ln.text.startswith("phase one sent ") and "(2 by delta, 0 full)" in ln.text
               for ln in world.log_lines(second.id))

    # a deleted file is simply absent
    world.change({"src/old.txt": None})
    third, rid3 = deploy_delta(world, rid2)
    assert ": 0 sent, 5 linked, 0 copied, 1 gone;" in lines(world, third.id, "release ")["h1"]
    assert not (release_dir(world, "h1", rid3) / "dist/old.txt").exists()
    assert (release_dir(world, "h1", rid2) / "dist/old.txt").is_file()

    # a mode change: the file is copied on the host, so the old release keeps its mode
    world.change({"layout.sh": LAYOUT.format(mode=755, target="index.html")})
    fourth, rid4 = deploy_delta(world, rid3)
    assert ": 0 sent, 4 linked, 1 copied, 0 gone;" in lines(world, fourth.id, "release ")["h2"]
    for host in world.hosts:
        tool4, tool3 = (release_dir(world, host, r) / "dist/tool.sh" for r in (rid4, rid3))
        assert (stat.S_IMODE(tool4.stat().st_mode), stat.S_IMODE(tool3.stat().st_mode)) == (
            0o555, 0o444)
        assert tool4.stat().st_ino != tool3.stat().st_ino

    # a symlink change
    world.change({"layout.sh": LAYOUT.format(mode=755, target="feature.html")})
    fifth, rid5 = deploy_delta(world, rid4)
    assert ": 1 sent, 4 linked, 0 copied, 0 gone;" in lines(world, fifth.id, "release ")["h1"]
    for host in world.hosts:
        assert os.readlink(release_dir(world, host, rid5) / "dist/latest") == "feature.html"
        assert os.readlink(release_dir(world, host, rid4) / "dist/latest") == "index.html"
        assert (world.base(host) / "current" / "dist/latest").read_text() == "<p>new</p>\n"

    # the same blob is still the first release's inode, five releases on
    assert inode(world, "h1", rid5, "dist/blob.txt") == inode(world, "h1", rid1,
                                                             "dist/blob.txt")


def test_a_write_to_one_release_never_changes_another(
        tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer) -> None:
    world = delta_world(tmp_path, sqlite_runtime, sshd, 1)
    world.deploy_ok()
    rid1 = world.ledger()[0].release_id
    world.change({"src/index.html": "<h1>2</h1>\n"})
    _, rid2 = deploy_delta(world, rid1)
    shared_blob = f"app/releases/{rid2}/dist/blob.txt"
    assert inode(world, "h1", rid2, "dist/blob.txt") == inode(world, "h1", rid1,
                                                             "dist/blob.txt")
    # the deploy user cannot write into a release file: it is read-only
    appended = as_host(sshd, world, "h1", f"echo oops >> {shared_blob}")
    assert appended.returncode != 0 and "Permission denied" in appended.stderr
    # tools that replace a file (sed -i, editors, cp over) make a new inode: one release only
    edited = as_host(sshd, world, "h1", f"sed -i 1s/^/EDITED/ {shared_blob}")
    assert edited.returncode == 0, edited.stderr
    assert (release_dir(world, "h1", rid2) / "dist/blob.txt").read_text().startswith("EDITED")
    assert (release_dir(world, "h1", rid1) / "dist/blob.txt").read_text() == BLOB
    # new files in a release are fine (hooks write there): the folders stay writable
    assert as_host(sshd, world, "h1", f"echo x > app/releases/{rid2}/dist/new.txt"
                   ).returncode == 0


def test_hosts_that_cannot_take_a_delta_get_the_archive_and_say_why(
        tmp_path: Path, sqlite_runtime: Runtime, sshd_factory: SshServerFactory) -> None:
    server = sshd_factory(hosts=4)
    world = delta_world(tmp_path, sqlite_runtime, server, 4)
    world.deploy_ok()
    rid1 = world.ledger()[0].release_id
    blob = f"app/releases/{rid1}/dist/blob.txt"
    # h1: the current release tampered with (same size, same inode: only its record tells)
    tamper = as_host(server, world, "h1", f"chmod u+w {blob} && printf X | dd of={blob} "
                     "bs=1 count=1 conv=notrunc status=none && chmod a-w " + blob)
    assert tamper.returncode == 0, tamper.stderr
    # h2: the current release removed
    shutil.rmtree(release_dir(world, "h2", rid1))
    # h3: current is a release golive did not make (a copy with an edited manifest)
    other = "20200101000000-d999"
    shutil.copytree(release_dir(world, "h3", rid1), release_dir(world, "h3", other),
                    symlinks=True)
    manifests = world.base("h3") / "manifests"
    (manifests / other).write_bytes((manifests / rid1).read_bytes().replace(b"\t444\t",
                                                                            b"\t644\t", 1))
    shutil.copy(manifests / f"{rid1}.stat", manifests / f"{other}.stat")
    os.unlink(world.base("h3") / "current")
    os.symlink(f"releases/{other}", world.base("h3") / "current")

    world.change({"src/index.html": "<h1>shop, fixed</h1>\n"})
    second = world.deploy_ok()
    rid2 = world.ledger()[0].release_id
    world.assert_serving({name: rid2 for name in world.hosts})
    assert {h: d["transfer"] for h, d in receives(world, second.id).items()} == {
        "h1": "full", "h2": "full", "h3": "full", "h4": "delta"}
    warnings = {ln.host: ln.text for ln in world.log_lines(second.id) if ln.level == "warning"}
    assert warnings == {"h1": f"full archive instead of a delta: the delta from {rid1} did not "
                              f"make the release: dist/blob.txt was changed in release {rid1} "
                              "after golive verified it"}
    assert lines(world, second.id, "full archive: ") == {
        "h2": f"full archive: current release {rid1} has no manifest and record of its files "
              "(made before delta transfer, incomplete, or removed)",
        "h3": "full archive: golive does not know the manifest of the current release (not "
              "made by golive, or its artifact was removed from the cache)"}
    for host in world.hosts:  # every host has the right bytes, the tampered one too
        current = world.base(host) / "current" / "dist"
        assert (current / "blob.txt").read_text() == BLOB
        assert (current / "index.html").read_text() == "<h1>shop, fixed</h1>\n"
        assert world.leftovers(host) == []
    assert inode(world, "h1", rid2, "dist/blob.txt") != inode(world, "h1", rid1,
                                                             "dist/blob.txt")

    # --full-transfer: the archive to every host, although each could take a delta
    world.change({"src/index.html": "<h1>three</h1>\n"})
    with world.runtime.store.session() as session:
        asked = requests.request_deployment(session, world.order_id,
                                            users.acting_user(session, "alice"), stage="test",
                                            full_transfer=True)
        session.commit()
        asked_id = asked.id
    assert engine.run_deployment(world.runtime, asked_id), world.log(asked_id)
    assert world.deployment(asked_id).full_transfer is True
    assert {d["transfer"] for d in receives(world, asked_id).values()} == {"full"}
    assert lines(world, asked_id, "full archive: ") == {
        h: "full archive: full transfer asked (--full-transfer)" for h in world.hosts}
    rid3 = world.ledger()[0].release_id
    world.assert_serving({name: rid3 for name in world.hosts})


def test_the_plan_tells_the_bytes_a_deploy_sends(
        tmp_path: Path, sqlite_runtime: Runtime, sshd_factory: SshServerFactory) -> None:
    server = sshd_factory(hosts=2)
    world = delta_world(tmp_path, sqlite_runtime, server, 2)

    def plan(full_transfer: bool = False) -> dict[str, Any]:
        with world.runtime.store.session() as session:
            order = get_order(session, world.order_id)
            made = engine.build_plan(world.runtime, session, order, "test", "iterative",
                                     full_transfer=full_transfer, estimate_transfer=True)
        (service,) = made.to_dict()["services"]
        return dict(service["transfer"])

    first_plan = plan()
    assert (first_plan["method"], first_plan["bytes_total"]) == ("full", None)
    assert first_plan["reason"] == "no release golive made is known to serve the stage"
    world.deploy_ok()
    rid1 = world.ledger()[0].release_id
    world.change({"src/index.html": "<h1>shop, fixed</h1>\n"})
    unbuilt = plan()
    assert (unbuilt["method"], unbuilt["previous_release"], unbuilt["delta_bytes"]) == (
        "delta", rid1, None)
    assert unbuilt["reason"] == "the release is built by the deploy: its size is known then"
    world.deploy_ok(only_hosts=("h1",))  # a canary builds the artifact, the board stays

    estimate = plan()
    assert estimate["method"] == "delta" and estimate["previous_release"] == rid1
    assert (estimate["files_sent"], estimate["files_linked"], estimate["files_removed"]) == (
        1, 5, 0)
    assert estimate["hosts"] == 2 and estimate["bytes_total"] == 2 * estimate["delta_bytes"]
    assert estimate["full_bytes_total"] == 2 * estimate["full_bytes"]
    assert estimate["delta_bytes"] * 100 < estimate["full_bytes"]
    assert plan(full_transfer=True)["bytes_total"] == estimate["full_bytes_total"]

    done = world.deploy_ok()
    got = receives(world, done.id)
    assert got["h2"] == {**got["h2"], "transfer": "delta", "sent": estimate["delta_bytes"],
                         "previous": rid1}


def test_a_deployment_interrupted_during_a_delta_resumes_correctly(
        tmp_path: Path, sqlite_runtime: Runtime, sshd_factory: SshServerFactory) -> None:
    server = sshd_factory(hosts=2)
    world = delta_world(tmp_path, sqlite_runtime, server, 2)
    world.deploy_ok()
    rid1 = world.ledger()[0].release_id
    world.change({"src/index.html": "<h1>shop, fixed</h1>\n"})
    # h2 stops while linking (its apply's process group noted), until the test kills it
    h2 = world.hosts["h2"]
    shim(h2, "cp", 'if [ "$1" = -lP ]; then ps -o pgid= $$ > "$HOME/apply.pgid"; '
                   'sleep 600; fi; exec /bin/cp "$@"')
    deployment_id = world.request()
    runner = subprocess.Popen(
        [sys.executable, "-c", "import sys; from golive.services.deploy import run_deployment;"
         " from golive.services.runtime import open_runtime;"
         " run_deployment(open_runtime(), int(sys.argv[1]))", str(deployment_id)],
        env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        pgid_file = h2.home / "apply.pgid"
        wait_until(lambda: pgid_file.exists() and pgid_file.read_text().strip(), 90,
                   "h2 linking its release")
        wait_until(lambda: any(s.status == "done" for s in world.steps(deployment_id,
                                                                      "receive")),
                   60, "h1's receive step")
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(30)
    os.killpg(int(pgid_file.read_text()), signal.SIGKILL)  # what the dropped session left
    (h2.home / "bin" / "cp").unlink()
    rid = world.deployment(deployment_id).release_id
    assert not (release_dir(world, "h2", rid) / MARKER).exists()  # half made, no marker

    with world.runtime.store.session() as session:  # a new golive process: recovery runs
        from golive.services.recovery import recover
        recover(session)
        session.commit()
    assert world.deployment(deployment_id).status == "interrupted"
    resumed = world.request()
    assert resumed == deployment_id
    assert engine.run_deployment(world.runtime, deployment_id), world.log(deployment_id)
    world.assert_serving({"h1": rid, "h2": rid})
    steps = {world.host_name(s.host_id): s for s in world.steps(deployment_id, "receive")
             if s.status == "done"}
    assert steps["h1"].message == (f"release {rid} received before the interruption and still "
                                   f"complete: kept; current {rid1}")
    assert steps["h2"].data["transfer"] == "delta"
    for host in world.hosts:
        assert (world.base(host) / "current" / "dist/index.html").read_text() == \
            "<h1>shop, fixed</h1>\n"
        assert inode(world, host, rid, "dist/blob.txt") == inode(world, host, rid1,
                                                                "dist/blob.txt")
        assert world.leftovers(host) == []


def test_a_local_host_takes_deltas_too(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    repo = web_repo(tmp_path)
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["l1"]),
        "projects": [{"name": "shop", "stages": ["test", "prod"],
                      "members": [{"user": "alice", "roles": ["developer"]}],
                      "services": [{"name": "web", "repo": repo.url, "build": BUILD,
                                    "pack": ["dist"], "stages": {"test": {
                                        "mode": "artifact", "path": "srv/web",
                                        "hosts": ["l1"]}}}]}]})
    order_id = file_order(sqlite_runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    _, ok = deploy(sqlite_runtime, order_id, "alice")
    assert ok
    commit(repo, BRANCH, {"src/index.html": "<h1>local</h1>\n"})
    started = time.monotonic()
    second, ok = deploy(sqlite_runtime, order_id, "alice")
    assert ok and time.monotonic() - started < 30
    base = host_root(tmp_path, "l1") / "srv" / "web"
    first_rid, rid = sorted(p.name for p in (base / "releases").iterdir())
    steps = rows(sqlite_runtime, DeploymentStep, DeploymentStep.deployment_id == second,
                 DeploymentStep.name == "receive")
    assert [s.message for s in steps] == [f"release {rid} ready (delta); current {first_rid}"]
    assert (base / "current" / "dist/index.html").read_text() == "<h1>local</h1>\n"
    assert (base / "releases" / rid / "dist/blob.txt").stat().st_ino == \
        (base / "releases" / first_rid / "dist/blob.txt").stat().st_ino
