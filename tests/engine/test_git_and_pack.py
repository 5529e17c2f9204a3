"""The git adapter (mirrors, branches, merged worktrees) and the packer's safety
checks, on real repositories and crafted archives."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from golive.adapters.build import check_archive, pack
from golive.adapters.git import Mirror, check_branch
from golive.errors import BranchNotFound, InputError, MergeConflict, PackError
from golive.testing.world import commit, git, make_repo

# --- check_archive -------------------------------------------------------------------------


def craft(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            if member.isfile():
                member.size = 2
                archive.addfile(member, io.BytesIO(b"ok"))
            else:
                archive.addfile(member)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_check_archive_accepts_files_folders_and_inner_links(tmp_path: Path) -> None:
    good = craft(tmp_path / "good.tar.gz", entry("dist", tarfile.DIRTYPE),
                 entry("dist/app.js"), entry("dist/sub/x.js"),
                 entry("dist/latest", tarfile.SYMTYPE, "app.js"),
                 entry("dist/sub/up", tarfile.SYMTYPE, "../app.js"),
                 entry("dist/hard", tarfile.LNKTYPE, "dist/app.js"))
    check_archive(good)


@pytest.mark.parametrize(("member", "problem"), [
    (entry("/etc/passwd"), "archive entry /etc/passwd escapes the release"),
    (entry("../outside"), "archive entry ../outside escapes the release"),
    (entry("dist/../../outside"), "archive entry dist/../../outside escapes the release"),
    (entry("dist/evil", tarfile.SYMTYPE, "../../etc"),
     "archive entry dist/evil links to ../../etc, outside the release"),
    (entry("evil", tarfile.SYMTYPE, ".."), "archive entry evil links to .., outside the release"),
    (entry("dist/abs", tarfile.SYMTYPE, "/etc"),
     "archive entry dist/abs links to /etc, outside the release"),
    (entry("dist/hard", tarfile.LNKTYPE, "../etc/passwd"),
     "archive entry dist/hard hard-links outside the release"),
    (entry("dist/tty", tarfile.CHRTYPE), "archive entry dist/tty is not a file, folder or link"),
    (entry("dist/disk", tarfile.BLKTYPE),
     "archive entry dist/disk is not a file, folder or link"),
    (entry("dist/pipe", tarfile.FIFOTYPE),
     "archive entry dist/pipe is not a file, folder or link"),
], ids=["absolute", "dotdot", "inner-dotdot", "symlink-out", "symlink-parent", "symlink-abs",
        "hardlink-out", "char-device", "block-device", "fifo"])
def test_check_archive_refuses_entries_leaving_the_release(
        tmp_path: Path, member: tarfile.TarInfo, problem: str) -> None:
    bad = craft(tmp_path / "bad.tar.gz", entry("dist", tarfile.DIRTYPE), entry("dist/ok.js"),
                member)
    with pytest.raises(PackError) as caught:
        check_archive(bad)
    assert caught.value.message == problem


def test_check_archive_refuses_what_is_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not a tarball")
    with pytest.raises(PackError, match="the archive junk.tar.gz cannot be read"):
        check_archive(junk)


# --- pack --------------------------------------------------------------------------------


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def names(archive: Path) -> list[str]:
    with tarfile.open(archive) as opened:
        return sorted(m.name + ("/" if m.isdir() else "") for m in opened.getmembers())


def test_pack_takes_the_pack_folders_minus_the_exclude_patterns(tmp_path: Path) -> None:
    work = tree(tmp_path / "wt", {
        "dist/app.js": "a", "dist/app.log": "l", "dist/keep.log": "k", "dist/sub/deep.log": "d",
        "dist/tests/unit.js": "t", "dist/tmp/scratch": "s", "dist/sub/tmp/kept": "k",
        "public/index.html": "i", "public/.DS_Store": "x", "src/secret.py": "not packed",
        "README.md": "not packed"})
    os.symlink("app.js", work / "dist" / "latest.js")
    archive = pack(work, ["dist", "public"],
                   ["*.log", "!keep.log", "tests/", "/dist/tmp/", ".DS_Store"],
                   tmp_path / "out" / "a.tar.gz")
    assert names(archive.path) == [
        "dist/", "dist/app.js", "dist/keep.log", "dist/latest.js", "dist/sub/",
        "dist/sub/tmp/", "dist/sub/tmp/kept", "public/", "public/index.html"]
    assert archive.files == 4  # regular files; folders and links are not counted
    with tarfile.open(archive.path) as opened:
        link = opened.getmember("dist/latest.js")
        assert link.issym() and link.linkname == "app.js"
        assert {(m.uid, m.gid, m.uname) for m in opened.getmembers()} == {(0, 0, "")}
    assert len(archive.sha256) == 64 and archive.size == archive.path.stat().st_size


def test_pack_without_folders_takes_the_worktree_but_git(tmp_path: Path) -> None:
    work = tree(tmp_path / "wt", {"app/x.py": "x", "README.md": "r", "debug.log": "d"})
    git(work, "init", "-q")
    archive = pack(work, [], ["*.log"], tmp_path / "b.tar.gz")
    assert names(archive.path) == ["README.md", "app/", "app/x.py"]


@pytest.mark.parametrize(("folders", "problem"), [
    (["nope"], "pack folder nope does not exist after the build"),
    (["../wt"], "pack entry '../wt' must be a path inside the repository"),
    (["/etc"], "pack entry '/etc' must be a path inside the repository"),
])
def test_pack_refuses_missing_or_outside_folders(tmp_path: Path, folders: list[str],
                                                 problem: str) -> None:
    work = tree(tmp_path / "wt", {"dist/a": "a"})
    with pytest.raises(PackError) as caught:
        pack(work, folders, [], tmp_path / "c.tar.gz")
    assert caught.value.message == problem


def test_pack_refuses_a_link_leaving_the_release(tmp_path: Path) -> None:
    work = tree(tmp_path / "wt", {"dist/a": "a"})
    os.symlink("../../etc", work / "dist" / "evil")
    with pytest.raises(PackError, match="dist/evil links to ../../etc, outside the release"):
        pack(work, ["dist"], [], tmp_path / "d.tar.gz")


# --- git -----------------------------------------------------------------------------------


def test_mirror_fetches_and_never_reclones(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "web", {"a.txt": "1\n"},
                     branches={"feature/a": {"b.txt": "b\n"}, "feature/b": {"c.txt": "c\n"}})
    mirror = Mirror.at(tmp_path / "repos-cache", repo.url)
    mirror.fetch()
    assert mirror.branches() == ["feature/a", "feature/b", "main"]
    assert mirror.resolve("feature/a") == repo.head("feature/a")
    head_inode = (mirror.path / "HEAD").stat().st_ino
    objects_inode = (mirror.path / "objects").stat().st_ino
    (mirror.path / "sentinel").write_text("a re-clone would lose me\n")

    new_head = commit(repo, "feature/a", {"b.txt": "b2\n"})
    git(repo.work, "push", "-q", "origin", "--delete", "feature/b")
    git(repo.work, "push", "-q", "origin", "HEAD:refs/heads/feature/c")
    mirror.fetch()
    assert (mirror.path / "HEAD").stat().st_ino == head_inode
    assert (mirror.path / "objects").stat().st_ino == objects_inode
    assert (mirror.path / "sentinel").exists()
    assert mirror.resolve("feature/a") == new_head
    assert mirror.branches() == ["feature/a", "feature/c", "main"]  # deleted upstream: gone
    with pytest.raises(BranchNotFound) as caught:
        mirror.resolve("feature/b")
    assert caught.value.message == f"branch feature/b does not exist in {repo.url}"


def test_mirror_paths_differ_per_url(tmp_path: Path) -> None:
    one = Mirror.at(tmp_path, "git@example.com:shop/web.git").path
    two = Mirror.at(tmp_path, "git@example.com:other/web.git").path
    assert one != two and one.name.startswith("web.git-") and one.parent == tmp_path


@pytest.mark.parametrize("branch", ["-x", "--upload-pack=touch", "a..b", "bad name", "x.lock",
                                    "a//b", "trailing/", "@", "a@{1}", ""])
def test_check_branch_refuses_bad_names(tmp_path: Path, branch: str) -> None:
    with pytest.raises(InputError):
        check_branch(branch)
    repo = make_repo(tmp_path, "web", {"a.txt": "1\n"})
    mirror = Mirror.at(tmp_path / "cache", repo.url)
    mirror.fetch()
    with pytest.raises(InputError):
        mirror.resolve(branch)


def test_check_branch_accepts_ordinary_names() -> None:
    for branch in ("main", "feature/x", "release-1.2", "fix_42/sub.part"):
        check_branch(branch)


def test_merged_worktree_merges_no_ff_and_names_conflicts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "web", {"a.txt": "1\n", "b.txt": "1\n"},
                     branches={"feature/ok": {"c.txt": "c\n"},
                               "feature/clash": {"a.txt": "branch\n", "b.txt": "branch\n"}})
    commit(repo, "main", {"a.txt": "main\n", "b.txt": "main\n"})
    mirror = Mirror.at(tmp_path / "cache", repo.url)
    mirror.fetch()
    main, ok = mirror.resolve("main"), mirror.resolve("feature/ok")
    dest = tmp_path / "work" / "wt"
    merge = mirror.merged_worktree(main, ok, dest, "Merge feature/ok")
    assert git(mirror.path, "rev-list", "--parents", "-n", "1", merge).split()[1:] == [main, ok]
    assert (dest / "c.txt").read_text() == "c\n" and (dest / "a.txt").read_text() == "main\n"
    assert git(mirror.path, "log", "-1", "--format=%s", merge) == "Merge feature/ok"
    mirror.remove_worktree(dest)
    assert not dest.exists()

    with pytest.raises(MergeConflict) as caught:
        mirror.merged_worktree(main, mirror.resolve("feature/clash"), dest, "Merge clash")
    assert caught.value.files == ["a.txt", "b.txt"]
    assert caught.value.message == "merging into main conflicts in: a.txt, b.txt"
    assert not dest.exists()
    assert "wt" not in git(mirror.path, "worktree", "list")


def _half_made_worktree(mirror: Mirror, dest: Path) -> Path:
    """What a golive SIGKILLed during `git worktree add` leaves (seen in the crash test):
    an entry locked "initializing" whose HEAD names no commit yet."""
    entry = mirror.path / "worktrees" / "worktree"
    entry.mkdir(parents=True)
    dest.mkdir(parents=True, exist_ok=True)
    (entry / "gitdir").write_text(f"{dest}/.git\n")
    (entry / "commondir").write_text("../..\n")
    (entry / "HEAD").write_text("0" * 40 + "\n")
    (entry / "HEAD.lock").write_text("")
    (entry / "locked").write_text("initializing")
    (dest / ".git").write_text(f"gitdir: {entry}\n")
    return entry


def test_a_worktree_left_by_a_killed_build_is_cleared(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "api", {"a.txt": "1\n"}, branches={"feature/x": {"b.txt": "2\n"}})
    mirror = Mirror.at(tmp_path / "mirrors", repo.url)
    mirror.fetch()
    dest = tmp_path / "work" / "d2" / "api" / "worktree"
    entry = _half_made_worktree(mirror, dest)
    newer = commit(repo, "feature/x", {"c.txt": "3\n"})

    mirror.fetch()  # git's connectivity check failed on the broken entry: it is dropped
    assert mirror.resolve("feature/x") == newer
    assert not entry.exists()

    entry = _half_made_worktree(mirror, dest)
    (entry / "HEAD").write_text(mirror.resolve("main") + "\n")  # a valid HEAD, still locked
    merge = mirror.merged_worktree(mirror.resolve("main"), newer, dest, "merge")
    assert (dest / "c.txt").read_text() == "3\n"
    assert git(dest, "rev-parse", "HEAD") == merge
    mirror.remove_worktree(dest)
    assert not dest.exists() and mirror._worktree_entries() == []
