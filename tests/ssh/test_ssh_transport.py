"""The SSH transport against a real OpenSSH server: commands (directory, environment,
time limit, streamed output, exit codes), files, paths, every way to log in, host key
pinning, a jump host, and user text that must reach the host literally."""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from ssh_world import closed_port, port_of, wait_until

from golive.adapters.transport.ssh import (
    HostKeyChanged,
    SshTarget,
    SshTransport,
    fingerprint,
    server_key,
)
from golive.errors import CommandFailed, TransportError
from golive.testing.sshd import SshServer, SshServerFactory, SshUser, ssh_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """One server for the module (two users): these tests only read and write homes."""
    with ssh_server(tmp_path_factory.mktemp("sshd"), hosts=2) as running:
        yield running


def target(server: SshServer, index: int = 0, name: str = "h1", *, key_path: str | None = None,
           private_key: str = "", host_key: str = "", jump: SshTarget | None = None
           ) -> SshTarget:
    return SshTarget(name, "127.0.0.1", server.port, server.users[index].name,
                     key_path=str(server.client_key) if key_path is None else key_path,
                     private_key=private_key, host_key=host_key, jump=jump)


@pytest.fixture
def h1(server: SshServer) -> Iterator[SshTransport]:
    transport = SshTransport(target(server))
    yield transport
    transport.close()


def logins(server: SshServer, user: SshUser) -> int:
    """How many times ``user`` logged in so far, from sshd's log."""
    return server.log_path.read_text().count(f"Accepted publickey for {user.name} ")


def other_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()


def test_commands_run_in_the_directory_with_the_environment(
    server: SshServer, h1: SshTransport
) -> None:
    home = server.users[0].home
    (home / "work").mkdir(exist_ok=True)
    os.chown(home / "work", server.users[0].uid, server.users[0].gid)
    result = h1.run('pwd; echo "$GREETING, $WHO"; id -un', cwd=str(home / "work"),
                    env={"GREETING": "hello", "WHO": "world"})
    assert result.exit_code == 0
    assert result.output.splitlines() == [str(home / "work"), "hello, world",
                                          server.users[0].name]
    # without cwd the command runs in the login home
    assert h1.run("pwd").output.strip() == str(home)


def test_output_is_streamed_line_by_line_in_order(h1: SshTransport) -> None:
    h1.connect()
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    result = h1.run("echo one; echo two >&2; sleep 1.5; echo three; printf 'no newline'",
                    on_line=lambda line: seen.append((time.monotonic() - started, line)))
    ended = time.monotonic() - started
    assert [line for _, line in seen] == ["one", "two", "three", "no newline"]
    assert result.output.splitlines() == ["one", "two", "three", "no newline"]
    # "one" arrived while the command was still sleeping, not when it ended
    assert seen[0][0] < 1.0 and ended >= 1.5 and seen[2][0] - seen[0][0] >= 1.0


def test_a_command_past_its_time_limit_is_stopped(
    server: SshServer, h1: SshTransport
) -> None:
    started = time.monotonic()
    with pytest.raises(CommandFailed) as failed:
        h1.run("sleep 30", timeout=1)
    assert time.monotonic() - started < 10
    error = failed.value
    assert error.timed_out and error.returncode is None and error.host == "h1"
    assert error.message == "host h1: `sleep 30` ran past its limit of 1s"

    def sleeping() -> str:
        return subprocess.run(["pgrep", "-u", str(server.users[0].uid), "-x", "sleep"],
                              capture_output=True, text=True).stdout
    wait_until(lambda: not sleeping(), 10, "the remote sleep to be killed")
    # the connection is still usable after a timeout
    assert h1.run("echo still here").output == "still here"


def test_a_failing_command_raises_naming_the_host(h1: SshTransport) -> None:
    with pytest.raises(CommandFailed) as failed:
        h1.run("echo working; echo 'disk on fire' >&2; exit 3")
    error = failed.value
    assert error.host == "h1" and error.returncode == 3 and not error.timed_out
    assert error.message == "host h1: `echo working; echo 'disk on fire' >&2; exit 3` " \
                            "exited with 3: disk on fire"
    assert error.output.splitlines() == ["working", "disk on fire"]
    result = h1.run("echo soft; exit 5", check=False)
    assert (result.exit_code, result.output) == (5, "soft")


def test_files_go_up_and_come_back(server: SshServer, h1: SshTransport,
                                   tmp_path: Path) -> None:
    home = server.users[0].home
    data = os.urandom(3 * 1024 * 1024 + 17)  # several SFTP writes, an uneven tail
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    h1.put_file(local, str(home / "blob.bin"))
    assert (home / "blob.bin").read_bytes() == data
    assert (home / "blob.bin").stat().st_uid == server.users[0].uid
    assert h1.read_file(str(home / "blob.bin")) == data

    h1.put_stream(io.BytesIO(data[::-1]), str(home / "blob.bin"))  # replaces it
    assert (home / "blob.bin").read_bytes() == data[::-1]
    assert h1.run(f"sha256sum {home}/blob.bin").output.split()[0] == \
        subprocess.run(["sha256sum", str(home / "blob.bin")], capture_output=True,
                       text=True).stdout.split()[0]

    with pytest.raises(TransportError) as failed:
        h1.read_file(str(home / "missing.txt"))
    assert failed.value.host == "h1" and "host h1 (127.0.0.1:" in failed.value.message


def test_a_full_disk_on_upload_is_named_and_leaves_no_partial_file(
    server: SshServer, h1: SshTransport, tmp_path: Path
) -> None:
    disk = server.small_disk(server.users[0], "1m")
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3 * 1024 * 1024))
    with pytest.raises(TransportError) as failed:
        h1.put_file(local, str(disk / "big.bin"))
    assert failed.value.message.startswith(f"host h1 (127.0.0.1:{server.port}): cannot write "
                                           f"{disk}/big.bin: no space left on the device")
    assert list(disk.iterdir()) == []
    with pytest.raises(TransportError, match="no space left on the device"):
        h1.put_stream(io.BytesIO(os.urandom(3 * 1024 * 1024)), str(disk / "streamed.bin"))
    assert list(disk.iterdir()) == []
    assert h1.run("echo fine").output == "fine"  # the connection survived


def test_relative_paths_are_under_the_login_home(server: SshServer,
                                                 h1: SshTransport) -> None:
    home = str(server.users[0].home)
    assert h1.resolve("app") == f"{home}/app"
    assert h1.resolve("srv/shop api") == f"{home}/srv/shop api"
    assert h1.resolve(".") == home and h1.resolve("") == home
    assert h1.resolve("/srv/app") == "/srv/app"


def test_one_connection_serves_every_call(server: SshServer, h1: SshTransport,
                                          tmp_path: Path) -> None:
    user = server.users[0]
    before = logins(server, user)
    (tmp_path / "f").write_text("x")
    for n in range(5):
        h1.run(f"echo {n}")
    h1.put_file(tmp_path / "f", str(user.home / "f"))
    h1.read_file(str(user.home / "f"))
    h1.resolve("app")
    assert logins(server, user) == before + 1
    h1.close()
    h1.run("true")  # a closed transport connects again
    assert logins(server, user) == before + 2


def test_login_with_a_key_stored_in_golive(server: SshServer) -> None:
    stored = SshTarget("h1", "127.0.0.1", server.port, server.users[0].name,
                       private_key=server.client_key.read_text())
    with SshTransport(stored) as transport:
        assert transport.run("id -un").output == server.users[0].name


def test_login_with_a_password(sshd_factory: SshServerFactory) -> None:
    pw_server = sshd_factory(hosts=1, password="s3cret; 'quoted' pw")
    user = pw_server.users[0].name
    good = SshTarget("h1", "127.0.0.1", pw_server.port, user, password="s3cret; 'quoted' pw")
    with SshTransport(good) as transport:
        assert transport.run("id -un").output == user
    bad = SshTarget("h1", "127.0.0.1", pw_server.port, user, password="wrong")
    with pytest.raises(TransportError) as failed, SshTransport(bad) as transport:
        transport.run("true")
    assert failed.value.message == (f"host h1 (127.0.0.1:{pw_server.port}): authentication "
                                    "failed (wrong key, password or user)")


def test_a_wrong_key_fails_naming_the_host(server: SshServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_key"
    wrong.write_text(other_key())
    for transport in (SshTransport(target(server, name="web-1", key_path=str(wrong))),
                      SshTransport(target(server, name="web-1", key_path="",
                                          private_key=other_key()))):
        with pytest.raises(TransportError) as failed, transport:
            transport.run("true")
        assert failed.value.host == "web-1"
        assert failed.value.message == (f"host web-1 (127.0.0.1:{server.port}): "
                                        "authentication failed (wrong key, password or user)")
    missing = SshTransport(target(server, name="web-1", key_path=str(tmp_path / "nope")))
    with pytest.raises(TransportError, match="^host web-1: cannot read its private key"):
        missing.connect()


def test_a_closed_port_fails_naming_the_host_and_address() -> None:
    with closed_port() as sock:
        port = port_of(sock)
        transport = SshTransport(SshTarget("web-2", "127.0.0.1", port, "nobody",
                                           connect_timeout=5))
        started = time.monotonic()
        with pytest.raises(TransportError) as failed:
            transport.run("true")
    assert time.monotonic() - started < 5
    assert failed.value.host == "web-2"
    assert failed.value.message == f"host web-2 (127.0.0.1:{port}): Connection refused"


def test_the_host_key_is_handed_back_for_pinning_and_checked(server: SshServer) -> None:
    first = SshTransport(target(server))
    presented = first.connect()
    first.close()
    assert presented.split()[:2] == server.host_public_key.split()[:2]
    assert server_key(target(server)) == presented
    # a pin with a comment (a .pub line) matches by key material
    with SshTransport(target(server, host_key=server.host_public_key)) as pinned:
        assert pinned.run("echo ok").output == "ok"

    stale = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    transport = SshTransport(target(server, name="web-1", host_key=stale))
    with pytest.raises(HostKeyChanged) as changed:
        transport.connect()
    message = changed.value.message
    assert fingerprint(stale) in message and server.host_key_fingerprint in message
    assert "golive host trust web-1" in message and changed.value.host == "web-1"
    assert changed.value.pinned == fingerprint(stale)
    assert changed.value.presented == server.host_key_fingerprint


def test_the_key_is_checked_before_any_credential_is_sent(server: SshServer) -> None:
    user = server.users[0]
    offset = len(server.log_path.read_text())
    stale = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    with pytest.raises(HostKeyChanged):
        SshTransport(target(server, host_key=stale)).connect()
    since = server.log_path.read_text()[offset:]
    assert "Connection from 127.0.0.1" in since  # it did connect, and
    assert user.name not in since  # never named the user, let alone offered a key


def test_a_jump_host_carries_the_connection(server: SshServer) -> None:
    jump_user, target_user = server.users
    jump = target(server, index=0, name="bastion")
    before = logins(server, jump_user)
    through = target(server, index=1, name="app-1", jump=jump)
    with SshTransport(through) as transport:
        assert transport.run("id -un").output == target_user.name
        assert transport.resolve("app") == f"{target_user.home}/app"
    assert logins(server, jump_user) == before + 1  # the tunnel logged in on the bastion
    assert server_key(through).split()[:2] == server.host_public_key.split()[:2]

    with closed_port() as sock:
        port = port_of(sock)
        hidden = SshTarget("app-2", "127.0.0.1", port, target_user.name,
                           key_path=str(server.client_key), jump=jump, connect_timeout=5)
        with pytest.raises(TransportError) as failed:
            SshTransport(hidden).connect()
    assert failed.value.message == f"host app-2 (127.0.0.1:{port}): Connection refused"


def test_user_text_reaches_the_host_literally(server: SshServer, h1: SshTransport) -> None:
    user = server.users[0]
    odd = "it's; \"quoted\" $(touch pwned) `touch pwned2` && rm -rf ~ | x"
    folder = user.home / "we'ird; dir $(touch pwned3)"
    folder.mkdir()
    os.chown(folder, user.uid, user.gid)
    result = h1.run('printf "%s\\n" "$ODD" > value.txt; pwd', cwd=str(folder),
                    env={"ODD": odd, "EMPTY": ""})
    assert result.output == str(folder)
    assert (folder / "value.txt").read_text() == odd + "\n"
    assert h1.run('printf "[%s]" "$EMPTY"', env={"EMPTY": ""}).output == "[]"
    names = {p.name for p in user.home.iterdir()} | {p.name for p in folder.iterdir()}
    assert not {n for n in names if re.fullmatch(r"pwned\d?", n)}
    with pytest.raises(CommandFailed) as failed:
        h1.run("true", cwd=str(user.home / "no such; dir"))
    assert failed.value.host == "h1"
