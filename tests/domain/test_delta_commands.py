"""The host side of a delta, run here with ``sh`` (as a local host runs it): a release made
from the previous one by hard links plus a stream, verified against its manifest, with
both awk implementations a Debian host may have (gawk, mawk)."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from golive.adapters.build import Archive, pack, recompress_zstd, write_delta
from golive.domain import manifest as m
from golive.domain import release

V1 = {"app/a.py": "print('a')\n", "app/b.py": "print('b')\n", "bin/run": "#!/bin/sh\necho run\n",
      "docs/old.md": "old\n", "lib/x.py": "x = 1\n" * 100, "top.txt": "top\n"}
AWKS = [name for name in ("gawk", "mawk") if shutil.which(name)]


def tree(root: Path, files: dict[str, str], links: dict[str, str],
         modes: dict[str, int]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        (root / rel).chmod(modes.get(rel, 0o644))
    for rel, target in links.items():
        os.symlink(target, root / rel)
    return root


@dataclass
class Host:
    """A folder playing a host: ``sh`` with the chosen awk first on PATH."""

    base: Path
    env: dict[str, str]

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                              env=self.env, cwd=self.base.parent)

    def full(self, rid: str, archive: Archive) -> None:
        (self.base / "releases").mkdir(parents=True, exist_ok=True)
        shutil.copy(archive.path, release.incoming_archive(str(self.base), rid, archive.format))
        assert archive.manifest is not None
        Path(release.incoming_manifest(str(self.base), rid)).write_bytes(
            gzip.compress(archive.manifest.data))
        done = self.run(release.unpack(str(self.base), rid, archive.sha256, f"{rid} m s",
                                       archive.format, archive.manifest.sha256))
        assert done.returncode == 0, done.stderr

    def delta(self, rid: str, previous: str, old: Archive, new: Archive,
              fmt: str = "zst") -> subprocess.CompletedProcess[str]:
        assert old.manifest is not None and new.manifest is not None
        plan = m.diff(old.manifest, new.manifest)
        incoming = Path(release.incoming_delta(str(self.base), rid, fmt))
        write_delta(new, plan, m.changes_text(plan), incoming, fmt)
        return self.run(release.apply_delta(str(self.base), rid, previous, fmt, plan.new,
                                            plan.previous, f"{rid} m s"))

    def release(self, rid: str) -> Path:
        return self.base / "releases" / rid


@pytest.fixture(params=AWKS)
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Host:
    shims = tmp_path / "shims"
    shims.mkdir()
    os.symlink(shutil.which(request.param) or "", shims / "awk")
    return Host(tmp_path / "srv" / "app",
                {"PATH": f"{shims}:/usr/bin:/bin", "HOME": str(tmp_path)})


def packed(tmp_path: Path, name: str, files: dict[str, str], links: dict[str, str],
           modes: dict[str, int]) -> Archive:
    work = tree(tmp_path / f"wt-{name}", files, links, modes)
    gz = pack(work, [], [], tmp_path / f"{name}.tar.gz")
    zst = recompress_zstd(gz, tmp_path / f"{name}.tar.zst")
    return Archive(zst.path, zst.sha256, zst.size, zst.files, "zst", manifest=gz.manifest)


def listing(root: Path) -> dict[str, tuple[str, int, str]]:
    """Path → (kind, permission bits, content or link target) of every entry."""
    found = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("l", 0, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("d", stat.S_IMODE(info.st_mode), "")
            else:
                found[rel] = ("f", stat.S_IMODE(info.st_mode), path.read_text())
    return found


def test_a_delta_makes_the_new_release_from_links_and_the_stream(
        tmp_path: Path, host: Host) -> None:
    v1 = packed(tmp_path, "v1", V1, {"latest": "app/a.py"}, {"bin/run": 0o755})
    files2 = {**V1, "app/a.py": "print('a2')\n", "new/n.txt": "n\n"}
    del files2["docs/old.md"]
    v2 = packed(tmp_path, "v2", files2, {"latest": "lib/x.py"}, {"bin/run": 0o644})
    host.full("r1", v1)
    r1, r2 = host.release("r1"), host.release("r2")
    before = listing(r1)
    assert before["app/a.py"] == ("f", 0o444, "print('a')\n")  # read-only once complete
    assert before["bin/run"][1] == 0o555

    done = host.delta("r2", "r1", v1, v2)
    assert done.returncode == 0, done.stderr
    assert "golive-delta: made with links" in done.stdout
    # the release is v2 exactly: changed, deleted, mode and link changes, new folder
    expected = listing(tree(tmp_path / "expected", files2, {"latest": "lib/x.py"},
                            {"bin/run": 0o644}))
    got = {k: v for k, v in listing(r2).items() if k != release.MARKER}
    assert {k: (v[0], v[2]) for k, v in got.items()} == {
        k: (v[0], v[2]) for k, v in expected.items()}
    assert got["bin/run"][1] == 0o444 and got["app/a.py"][1] == 0o444
    # unchanged files are hard links to r1's; changed and mode-changed ones are not
    for rel in ("app/b.py", "lib/x.py", "top.txt"):
        assert (r2 / rel).stat().st_ino == (r1 / rel).stat().st_ino, rel
    for rel in ("app/a.py", "bin/run"):
        assert (r2 / rel).stat().st_ino != (r1 / rel).stat().st_ino, rel
    assert listing(r1) == before  # r1 untouched: its mode 555 stays, its link stays
    manifests = host.base / "manifests"
    assert v2.manifest is not None
    assert (manifests / "r2").read_bytes() == v2.manifest.data
    assert len((manifests / "r2.stat").read_text().splitlines()) == v2.manifest.files
    assert (r2 / release.MARKER).read_text() == "r2 m s\n"
    assert sorted(p.name for p in (host.base / "releases").iterdir()) == ["r1", "r2"]

    # and a delta from a delta-made release works the same
    files3 = {**files2, "top.txt": "top 3\n"}
    v3 = packed(tmp_path, "v3", files3, {"latest": "lib/x.py"}, {"bin/run": 0o644})
    done = host.delta("r3", "r2", v2, v3, "gz")
    assert done.returncode == 0, done.stderr
    assert (host.release("r3") / "lib" / "x.py").stat().st_ino == (r1 / "lib/x.py").stat().st_ino
    assert (host.release("r3") / "top.txt").read_text() == "top 3\n"


def refused(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == release.DELTA_REFUSED, (done.stdout, done.stderr)
    return done.stderr.strip().splitlines()[-1]


def assert_nothing_left(host: Host, rid: str) -> None:
    assert not host.release(rid).exists()
    assert sorted(p.name for p in (host.base / "manifests").iterdir()) == ["r1", "r1.stat"]
    assert [p.name for p in (host.base / "releases").iterdir() if p.name.startswith(".")] == []


def test_a_changed_previous_release_refuses_the_delta(tmp_path: Path, host: Host) -> None:
    v1 = packed(tmp_path, "v1", V1, {}, {})
    v2 = packed(tmp_path, "v2", {**V1, "top.txt": "top 2\n"}, {}, {})
    host.full("r1", v1)
    victim = host.release("r1") / "lib" / "x.py"
    victim.chmod(0o644)
    with open(victim, "r+") as handle:  # same inode, same size: new content and mtime
        handle.write("y")
    victim.chmod(0o444)
    why = refused(host.delta("r2", "r1", v1, v2))
    assert why == "golive-delta: lib/x.py was changed in release r1 after golive verified it"
    assert_nothing_left(host, "r2")

    victim.chmod(0o644)
    with open(victim, "a") as handle:  # another size: the listing tells at once
        handle.write("x = 2\n")
    assert refused(host.delta("r2", "r1", v1, v2)) == (
        "golive-delta: the release does not match its manifest: lib/x.py f 444 600; "
        "lib/x.py f 644 606;")

    # a file replaced by another with the same bytes: another inode
    victim.unlink()
    victim.write_text("x = 1\n" * 100)
    victim.chmod(0o444)
    assert "lib/x.py was changed in release r1" in refused(host.delta("r2", "r1", v1, v2))


def test_an_edited_manifest_or_a_missing_record_refuses_the_delta(
        tmp_path: Path, host: Host) -> None:
    v1 = packed(tmp_path, "v1", V1, {}, {})
    v2 = packed(tmp_path, "v2", {**V1, "top.txt": "top 2\n"}, {}, {})
    host.full("r1", v1)
    manifest = host.base / "manifests" / "r1"
    original = manifest.read_bytes()
    manifest.write_bytes(original.replace(b"top.txt", b"top.TXT"))
    assert refused(host.delta("r2", "r1", v1, v2)) == (
        "golive-delta: the manifest of release r1 is not the one golive made")
    manifest.write_bytes(original)
    (host.release("r1") / "extra.txt").write_text("a file the manifest does not list\n")
    done = host.delta("r2", "r1", v1, v2)  # r1's extra file is simply not linked
    assert done.returncode == 0, done.stderr
    assert not (host.release("r2") / "extra.txt").exists()


def test_a_stream_that_does_not_match_is_refused(tmp_path: Path, host: Host) -> None:
    v1 = packed(tmp_path, "v1", V1, {}, {})
    v2 = packed(tmp_path, "v2", {**V1, "top.txt": "top 2\n"}, {}, {})
    host.full("r1", v1)
    assert v1.manifest is not None and v2.manifest is not None
    plan = m.diff(v1.manifest, v2.manifest)
    incoming = Path(release.incoming_delta(str(host.base), "r2", "gz"))
    # the changes of v2, the bytes of another file: the checksum catches it
    wrong = m.DeltaPlan(plan.previous, plan.new, plan.changes, plan.linked)
    write_delta(v2, wrong, m.changes_text(plan), incoming, "gz")
    with gzip.open(incoming) as raw:
        data = raw.read().replace(b"top 2\n", b"top X\n")
    incoming.write_bytes(gzip.compress(data))
    why = refused(host.run(release.apply_delta(str(host.base), "r2", "r1", "gz", plan.new,
                                               plan.previous, "r2")))
    assert why.startswith("golive-delta: a file sent is not what the manifest says: top.txt")
    assert_nothing_left(host, "r2")


def test_where_hard_links_fail_the_files_are_copied_and_checked(
        tmp_path: Path, host: Host) -> None:
    """A filesystem that refuses hard links (here: a ``cp`` that cannot make them): the
    unchanged files are copied, and then every copy is checked by its SHA-256."""
    shim = Path(host.env["PATH"].split(":")[0]) / "cp"
    shim.write_text('#!/bin/sh\nif [ "$1" = -lP ]; then\n'
                    '  echo "cp: cannot create hard link: Operation not permitted" >&2; exit 1\n'
                    f'fi\nexec {shutil.which("cp")} "$@"\n')
    shim.chmod(0o755)
    v1 = packed(tmp_path, "v1", V1, {"latest": "app/a.py"}, {})
    v2 = packed(tmp_path, "v2", {**V1, "top.txt": "top 2\n"}, {"latest": "app/a.py"}, {})
    host.full("r1", v1)
    done = host.delta("r2", "r1", v1, v2)
    assert done.returncode == 0, done.stderr
    assert "golive-delta: made with copies (cp: cannot create hard link: Operation not " \
           "permitted)" in done.stdout
    r1, r2 = host.release("r1"), host.release("r2")
    assert (r2 / "lib/x.py").read_text() == V1["lib/x.py"]
    assert (r2 / "lib/x.py").stat().st_ino != (r1 / "lib/x.py").stat().st_ino
    assert stat.S_IMODE((r2 / "lib/x.py").stat().st_mode) == 0o444
    assert os.readlink(r2 / "latest") == "app/a.py"

    # copies are checked by content: even a change that kept size and mtime is caught
    victim = r1 / "lib" / "x.py"
    times = victim.stat()
    victim.chmod(0o644)
    with open(victim, "r+") as handle:
        handle.write("y")
    victim.chmod(0o444)
    os.utime(victim, ns=(times.st_atime_ns, times.st_mtime_ns))
    shutil.rmtree(r2)
    (host.base / "manifests" / "r2").unlink()
    (host.base / "manifests" / "r2.stat").unlink()
    assert refused(host.delta("r2", "r1", v1, v2)).startswith(
        "golive-delta: a copied file is not what the manifest says: lib/x.py: FAILED")
