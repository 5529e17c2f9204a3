"""The test OpenSSH server (golive.testing.sshd), checked with the system ssh client."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from golive.testing.sshd import (
    RUN_ROOT,
    SshServer,
    SshServerError,
    SshServerFactory,
    SshUser,
    ssh_server,
    sweep_stale,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def ssh(server: SshServer, user: SshUser | str, command: str, *,
        known_hosts: Path | None = None, key: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server.ssh_args(user, known_hosts=known_hosts, key=key), command],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


def user_exists(name: str) -> bool:
    return subprocess.run(["getent", "passwd", name], capture_output=True).returncode == 0


def alive(pid: int) -> bool:
    """Running (a zombie is dead: PID 1 here reaps orphans late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def mounted_under(root: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_for(check: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def pids_of(user: SshUser) -> list[int]:
    done = subprocess.run(["pgrep", "-u", str(user.uid)], capture_output=True, text=True)
    return [int(pid) for pid in done.stdout.split()]


def test_each_user_logs_in_with_the_key_into_its_tmpfs_home(sshd: SshServer) -> None:
    assert len(sshd.users) == 3
    assert len({user.name for user in sshd.users}) == 3
    for user in sshd.users:
        done = ssh(sshd, user, "echo ok; whoami; pwd; stat -f -c %T .; df -h .; touch mine")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[:4] == ["ok", user.name, str(user.home), "tmpfs"]
        assert "Filesystem" in lines[4]
        assert (user.home / "mine").stat().st_uid == user.uid
        assert pwd.getpwnam(user.name).pw_dir == str(user.home)
    assert (sshd.workdir / "hosts").resolve() == sshd.root / "home"
    assert str(sshd.root) in mounted_under(sshd.root)


def test_the_known_hosts_file_and_fingerprint_match_ssh_keygen(sshd: SshServer) -> None:
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(sshd.host_key_path)],
                            capture_output=True, text=True, check=True).stdout
    assert sshd.host_key_fingerprint in listed
    assert sshd.host_public_key.startswith("ssh-ed25519 ")
    assert sshd.client_public_key.startswith("ssh-ed25519 ")
    assert sshd.known_hosts.read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert Path(f"/proc/{sshd.pid}").exists()
    assert int((sshd.workdir / "sshd.pid").read_text()) == sshd.pid


def test_a_wrong_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True, stdin=subprocess.DEVNULL)
    done = ssh(sshd, sshd.users[0], "echo ok", key=other)
    assert done.returncode == 255
    assert "Permission denied (publickey)" in done.stderr
    assert "ok" not in done.stdout
    sshd.authorize(sshd.users[0], (tmp_path / "other_key.pub").read_text())
    assert ssh(sshd, sshd.users[0], "echo ok", key=other).stdout == "ok\n"


def test_root_and_other_servers_users_are_refused(sshd_factory: SshServerFactory) -> None:
    first, second = sshd_factory(hosts=1), sshd_factory(hosts=1)
    assert first.port != second.port
    assert first.users[0].name != second.users[0].name
    assert ssh(first, first.users[0], "echo ok").stdout == "ok\n"
    assert ssh(first, second.users[0], "echo ok").returncode == 255
    assert ssh(first, "root", "echo ok").returncode == 255


def password_ssh(server: SshServer, user: SshUser, password: str, tmp_path: Path
                 ) -> subprocess.CompletedProcess[str]:
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{password}'\n")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
           "DISPLAY": ":0"}
    argv = ["ssh", "-F", "/dev/null", "-p", str(server.port),
            "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
            "-o", "NumberOfPasswordPrompts=1", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={server.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", f"{user.name}@127.0.0.1", "echo ok; pwd"]
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=env, timeout=60)


def test_password_login_works_when_a_password_is_set(sshd_factory: SshServerFactory,
                                                     tmp_path: Path) -> None:
    server = sshd_factory(hosts=2, password="s3cret pass")
    for user in server.users:
        done = password_ssh(server, user, "s3cret pass", tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["ok", str(user.home)]
        assert ssh(server, user, "echo key").stdout == "key\n"  # the key works too
    wrong = password_ssh(server, server.users[0], "not it", tmp_path)
    assert wrong.returncode == 255
    assert "Permission denied" in wrong.stderr


def test_password_login_is_off_without_a_password(sshd: SshServer, tmp_path: Path) -> None:
    done = password_ssh(sshd, sshd.users[0], "anything", tmp_path)
    assert done.returncode == 255
    assert "Permission denied (publickey)" in done.stderr


def test_sftp_subsystem(sshd: SshServer, tmp_path: Path) -> None:
    user = sshd.users[1]
    (tmp_path / "payload.txt").write_text("payload\n")
    batch = tmp_path / "batch"
    batch.write_text(f"put {tmp_path / 'payload.txt'} uploaded.txt\n")
    done = subprocess.run(
        ["sftp", "-F", "/dev/null", "-i", str(sshd.client_key), "-P", str(sshd.port),
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={sshd.known_hosts}", "-b", str(batch),
         f"{user.name}@127.0.0.1"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (user.home / "uploaded.txt").read_text() == "payload\n"
    assert (user.home / "uploaded.txt").stat().st_uid == user.uid


def test_stop_then_start_on_the_same_port(sshd: SshServer) -> None:
    port, old_pid = sshd.port, sshd.pid
    sshd.stop()
    assert sshd.pid == 0 and not sshd.running
    assert not alive(old_pid)
    assert refuses_connections(port)
    assert ssh(sshd, sshd.users[0], "echo ok").returncode == 255
    sshd.start()
    assert sshd.port == port and sshd.running
    assert sshd.pid != old_pid
    assert ssh(sshd, sshd.users[0], "echo ok").stdout == "ok\n"


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_stop_and_kill_break_open_sessions(sshd: SshServer, how: str) -> None:
    user = sshd.users[2]
    client = subprocess.Popen([*sshd.ssh_args(user), "sleep 300"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: pids_of(user)), "the remote sleep never started"
        getattr(sshd, how)()
        assert client.wait(20) == 255
        # the session's processes are killed with sshd; a loaded machine reaps them late
        assert wait_for(lambda: pids_of(user) == []), pids_of(user)
    finally:
        client.kill()
        client.wait()
    sshd.start()
    assert ssh(sshd, user, "echo again").stdout == "again\n"


def test_kill_without_sessions_keeps_them(sshd: SshServer) -> None:
    user = sshd.users[0]
    done = subprocess.Popen([*sshd.ssh_args(user), "sleep 1; echo survived"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: pids_of(user))
        sshd.kill(sessions=False)
        out, _ = done.communicate(timeout=20)
    finally:
        done.kill()
        done.wait()
    assert out == "survived\n"
    assert refuses_connections(sshd.port)


def test_start_reports_why_sshd_did_not_start(sshd: SshServer) -> None:
    sshd.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", sshd.port))
        squatter.listen()
        with pytest.raises(SshServerError, match="Address already in use"):
            sshd.start()
    assert not sshd.running
    sshd.start()
    assert ssh(sshd, sshd.users[0], "echo ok").stdout == "ok\n"


def test_rotate_host_key_changes_the_fingerprint(sshd: SshServer, tmp_path: Path) -> None:
    user = sshd.users[0]
    old_known_hosts = tmp_path / "old_known_hosts"
    shutil.copy(sshd.known_hosts, old_known_hosts)
    old_key, old_fingerprint, port = sshd.host_public_key, sshd.host_key_fingerprint, sshd.port
    new_key = sshd.rotate_host_key()
    assert new_key == sshd.host_public_key != old_key
    assert sshd.host_key_fingerprint != old_fingerprint
    assert sshd.port == port and sshd.running
    scanned = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
                             capture_output=True, text=True, timeout=30).stdout
    assert new_key.split()[1] in scanned
    refused = ssh(sshd, user, "echo ok", known_hosts=old_known_hosts)
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr
    assert "ok" not in refused.stdout
    assert ssh(sshd, user, "echo ok").stdout == "ok\n"


def test_small_disk_fills_up(sshd: SshServer) -> None:
    user = sshd.users[1]
    disk = sshd.small_disk(user, size="1m")
    assert disk.parent == user.home
    assert disk.stat().st_uid == user.uid
    full = ssh(sshd, user, f"dd if=/dev/zero of={disk}/fill bs=64k count=64")
    assert full.returncode != 0
    assert "No space left on device" in full.stderr
    roomy = ssh(sshd, user, "dd if=/dev/zero of=big bs=64k count=64 && echo fine")
    assert roomy.stdout == "fine\n", roomy.stderr
    second = sshd.small_disk(user.name, size="2m")
    assert second != disk and str(second) in mounted_under(sshd.root)


def test_everything_is_gone_after_the_context(tmp_path: Path) -> None:
    with ssh_server(tmp_path / "sshd", hosts=2) as server:
        names = [user.name for user in server.users]
        uids = [str(user.uid) for user in server.users]
        pid, root = server.pid, server.root
        record = RUN_ROOT / f"{root.name}.json"
        assert record.exists()
        server.small_disk(server.users[0], "1m")
        # a session still open and a process left behind by the user must not block cleanup
        lingering = subprocess.Popen([*server.ssh_args(server.users[0]), "sleep 300"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        left = ssh(server, server.users[1], "setsid nohup sleep 300 </dev/null >/dev/null 2>&1 &")
        assert left.returncode == 0
        assert wait_for(lambda: pids_of(server.users[0]) and pids_of(server.users[1]))
    try:
        assert lingering.wait(20) == 255
    finally:
        lingering.kill()
        lingering.wait()
    for name in names:
        assert not user_exists(name)
    # no process of theirs is left, not even a zombie (the listener reaped them)
    assert subprocess.run(["pgrep", "-U", ",".join(uids)]).returncode == 1
    assert not alive(pid)
    assert mounted_under(root) == []
    assert not root.exists()
    assert not record.exists()
    assert not (tmp_path / "sshd" / "hosts").is_symlink()


def test_cleanup_also_runs_when_the_body_raises(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), ssh_server(tmp_path / "sshd") as server:
        name, pid, root = server.users[0].name, server.pid, server.root
        1 / 0  # noqa: B018
    assert not user_exists(name)
    assert not alive(pid)
    assert mounted_under(root) == []


def test_sweep_removes_what_a_killed_test_process_left(tmp_path: Path) -> None:
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from golive.testing.sshd import ssh_server\n"
        "with ssh_server(Path(sys.argv[1]), hosts=2) as s:\n"
        "    s.small_disk(s.users[0], '1m')\n"
        "    print(json.dumps({'pid': s.pid, 'root': str(s.root),\n"
        "                      'users': [u.name for u in s.users]}), flush=True)\n"
        "    time.sleep(300)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    owner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "sshd")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, "the owner process died before its server was up"
        made = json.loads(line)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    root = Path(made["root"])
    assert alive(made["pid"]) and user_exists(made["users"][0])
    sweep_stale()  # (a parallel worker's own sweep may have done it already)
    assert not alive(made["pid"])
    for name in made["users"]:
        assert not user_exists(name)
    assert mounted_under(root) == []
    assert not (RUN_ROOT / f"{root.name}.json").exists()
