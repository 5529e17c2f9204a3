"""`golive host list|check|trust` against real OpenSSH hosts: reachability, the host
key and whether it is pinned, free space at each deploy path, a jump host from
golive.yaml, a closed port, a changed key and accepting it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ssh_world import closed_port, make_world, port_of

from golive.cli.main import main
from golive.services.runtime import Runtime
from golive.testing.sshd import SshServer


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def checks(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "host", "check", *args, "--json")
    return code, {entry["name"]: entry for entry in json.loads(out)}


def logins(server: SshServer, index: int) -> int:
    return server.log_path.read_text().count(
        f"Accepted publickey for {server.users[index].name} ")


def test_host_check_reports_reachability_key_and_disk_at_the_deploy_path(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer,
    capsys: pytest.CaptureFixture[str]
) -> None:
    disk = sshd.small_disk(sshd.users[1], "1m")  # h2's deploy path is on a 1 MiB disk
    path = f"{disk.name}/app"
    world = make_world(tmp_path, sqlite_runtime, sshd, stage={"path": path},
                       host_extra={"h3": {"proxy_jump": "h1"}}, order=False)
    code, out, _ = run(capsys, "host", "list", "--json")
    assert code == 0
    assert {h["name"]: h["host_key"] for h in json.loads(out)} == {"h1": "", "h2": "",
                                                                   "h3": ""}
    jumps = logins(sshd, 0)

    code, found = checks(capsys)
    assert code == 0
    assert set(found) == {"h1", "h2", "h3"}
    for entry in found.values():
        assert entry["reachable"] is True and entry["message"] == ""
        assert entry["host_key"] == sshd.host_key_fingerprint and entry["pinned"] is False
        assert list(entry["disk"]) == [path]
    assert found["h2"]["disk"][path] == "1 MiB free"
    for name in ("h1", "h3"):  # no such folder there: the space of the nearest parent
        free = int(found[name]["disk"][path].removesuffix(" MiB free"))
        assert 400 < free <= 512
    assert logins(sshd, 0) >= jumps + 2  # h1 itself, and h3's tunnel through h1
    # checking pins nothing
    assert all(world.host_row(name).host_key is None for name in world.hosts)

    code, out, _ = run(capsys, "host", "check", "h2")
    assert code == 0
    cells = out.translate({ord(c): " " for c in "┏┳┓┃┡╇┩│└┴┘━─"}).split()
    assert {"h2", "yes", "MiB"} <= set(cells)
    assert "h1" not in cells and "h3" not in cells  # that host only


def test_host_check_of_a_closed_port_exits_1_naming_the_host(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer,
    capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd, order=False)
    with closed_port() as sock:
        port = port_of(sock)
        world.set_host("h3", port=port)
        code, out, err = run(capsys, "host", "check", "h3")
        assert code == 1
        assert err == f"error: host h3 (127.0.0.1:{port}): Connection refused"
        assert "NO" in out
        code, found = checks(capsys)
    assert code == 1
    assert {name: entry["reachable"] for name, entry in found.items()} == {
        "h1": True, "h2": True, "h3": False}
    assert found["h3"]["message"] == f"host h3 (127.0.0.1:{port}): Connection refused"
    assert found["h3"]["disk"] == {} and found["h3"]["host_key"] == ""


def test_a_changed_key_shows_in_check_and_trust_pins_the_new_one(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer,
    capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd, 1, order=False)
    code, out, _ = run(capsys, "host", "trust", "h1")  # first contact: pinned as it is
    assert code == 0
    assert " ".join(out.split()) == f"host h1: key {sshd.host_key_fingerprint} pinned"
    old = sshd.host_key_fingerprint
    assert world.host_row("h1").host_key == " ".join(sshd.host_public_key.split()[:2])
    code, found = checks(capsys, "h1")
    assert code == 0 and found["h1"]["pinned"] is True

    sshd.rotate_host_key()
    code, out, err = run(capsys, "host", "check", "h1")
    assert code == 1
    assert old in err and sshd.host_key_fingerprint in err
    assert "`golive host trust h1`" in err

    code, out, err = run(capsys, "--as", "alice", "host", "trust", "h1")
    assert code == 1 and "admin" in err
    code, out, _ = run(capsys, "host", "trust", "h1")
    assert code == 0
    assert " ".join(out.split()) == (f"host h1: key changed from {old} to "
                                     f"{sshd.host_key_fingerprint}; accepted")
    assert world.host_row("h1").host_key == " ".join(sshd.host_public_key.split()[:2])
    code, found = checks(capsys, "h1")
    assert code == 0 and found["h1"]["host_key"] == sshd.host_key_fingerprint
    code, out, _ = run(capsys, "host", "list", "--json")
    assert json.loads(out)[0]["host_key"] == sshd.host_key_fingerprint


def test_trust_refuses_hosts_without_a_key_and_unknown_hosts(
    tmp_path: Path, sqlite_runtime: Runtime, sshd: SshServer,
    capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(tmp_path, sqlite_runtime, sshd, 1, order=False)
    world.host_entries.append({"name": "demo-1", "transport": "local",
                               "root": str(tmp_path / "demo-1")})
    world.apply()
    code, _, err = run(capsys, "host", "trust", "demo-1")
    assert code == 2 and err == "error: host demo-1 is a local host: it has no host key"
    code, _, err = run(capsys, "host", "trust", "nope")
    assert code != 0 and "nope" in err
    with closed_port() as sock:
        world.set_host("h1", port=port_of(sock))
        code, _, err = run(capsys, "host", "trust", "h1")
        assert code == 1
        assert err == f"error: host h1 (127.0.0.1:{port_of(sock)}): Connection refused"
    assert world.host_row("h1").host_key is None
