"""Release layout commands: quoting, the atomic switch, which releases are removed."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from golive.domain import release


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, text=True)


def test_release_id_sorts_by_time() -> None:
    early = release.release_id(datetime(2026, 1, 2, 3, 4, 5), 12)
    later = release.release_id(datetime(2026, 1, 2, 3, 4, 6), 3)
    assert early == "20260102030405-d12"
    assert sorted([later, early]) == [early, later]
    assert release.RELEASE_ID.match(early)


def test_switch_is_a_rename_over_current(tmp_path: Path) -> None:
    base = tmp_path / "app"
    (base / "releases" / "r1").mkdir(parents=True)
    (base / "releases" / "r2").mkdir(parents=True)
    assert sh(release.switch(str(base), "r1"), tmp_path).returncode == 0
    assert (base / "current").readlink() == Path("releases/r1")
    inode_dir = (base / "current").lstat().st_ino
    assert sh(release.switch(str(base), "r2"), tmp_path).returncode == 0
    assert (base / "current").readlink() == Path("releases/r2")
    assert (base / "current").lstat().st_ino != inode_dir  # a new link, renamed over
    assert not list(base.glob(".current-*"))
    assert sh(release.switch(str(base), None), tmp_path).returncode == 0
    assert not (base / "current").is_symlink()


def test_user_text_is_quoted(tmp_path: Path) -> None:
    evil = str(tmp_path / "x; touch pwned")
    sh(release.prepare_layout(evil), tmp_path)
    assert not (tmp_path / "pwned").exists()
    assert (Path(evil) / "releases").is_dir()


@pytest.mark.parametrize(
    ("listing", "current", "keep", "removed"),
    [
        ("20260101000000-d1\n20260102000000-d2\n20260103000000-d3\n", "20260103000000-d3", 2,
         ["20260101000000-d1"]),
        # current is old (after a rollback): kept even beyond the limit
        ("20260101000000-d1\n20260102000000-d2\n20260103000000-d3\n", "20260101000000-d1", 1,
         ["20260102000000-d2"]),
        # folders golive did not make are never touched
        ("notes\n.incoming-x.tar.gz\n20260101000000-d1\n", "20260101000000-d1", 1, []),
    ],
)
def test_releases_to_remove(listing: str, current: str, keep: int, removed: list[str]) -> None:
    assert release.releases_to_remove(listing, current, keep) == removed


def test_link_shared_fails_naming_a_missing_item(tmp_path: Path) -> None:
    base = tmp_path / "app"
    (base / "releases" / "r1" / "config").mkdir(parents=True)
    (base / "shared").mkdir()
    done = sh(release.link_shared(str(base), "r1", ["config/.env"]) or "", tmp_path)
    assert done.returncode == 3
    assert "shared item missing" in done.stderr and "config/.env" in done.stderr
    (base / "shared" / "config").mkdir()
    (base / "shared" / "config" / ".env").write_text("A=1\n")
    done = sh(release.link_shared(str(base), "r1", ["config/.env"]) or "", tmp_path)
    assert done.returncode == 0, done.stderr
    assert (base / "releases" / "r1" / "config" / ".env").read_text() == "A=1\n"
    assert (base / "releases" / "r1" / "config" / ".env").readlink() == Path(
        "../../../shared/config/.env")


def test_a_failed_unpack_leaves_no_half_release(tmp_path: Path) -> None:
    base = tmp_path / "app"
    (base / "releases").mkdir(parents=True)
    (base / "releases" / ".incoming-r1.tar.gz").write_bytes(b"not a tarball")
    import hashlib

    digest = hashlib.sha256(b"not a tarball").hexdigest()
    done = sh(release.unpack(str(base), "r1", digest, "r1 x y"), tmp_path)
    assert done.returncode != 0
    assert not (base / "releases" / "r1").exists()
    assert not (base / "releases" / ".incoming-r1.tar.gz").exists()
    wrong = sh(release.unpack(str(base), "r2", "0" * 64, "r2"), tmp_path)
    assert wrong.returncode != 0 and not (base / "releases" / "r2").exists()
