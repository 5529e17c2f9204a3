"""Build and pack on the control machine; the archive's safety check.

``run_build`` runs the service's build command in the worktree with a time limit
and the GOLIVE_* variables, streaming its output. ``pack`` puts the ``pack``
folders (all of the worktree but ``.git`` when none are named) minus the
``exclude`` patterns (gitignore syntax) into one ``.tar.gz`` with its SHA-256.
``check_archive`` refuses an archive with an absolute path, a ``..`` part, a link
leaving the release, or anything but files, folders and links.

``pack`` also makes the release's manifest (``domain.manifest``: every entry with its
mode, size and SHA-256), hashing each file as it is read into the archive;
``write_delta`` makes the stream a host needs to go from an earlier release to this
one: the changes and the files whose content is new, taken from the archive.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import shutil
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import pathspec
import zstandard

from golive.adapters.transport.base import LineSink
from golive.adapters.transport.local import hook_environment, run_process
from golive.domain import manifest as manifests
from golive.domain.manifest import DeltaPlan, Manifest
from golive.errors import BuildFailed, PackError

SMALL_DELTA = 4 * 1024 * 1024
"""Below this many bytes of changed files a delta is compressed hard (zstd 19, gzip 9):
it costs milliseconds and it is sent to every host."""


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    size: int
    files: int
    format: str = "gz"
    """``gz`` (every host can unpack it) or ``zst`` (faster to unpack, where zstd is)."""
    manifest: Manifest | None = field(default=None, compare=False, repr=False)
    """What the release holds once unpacked (``pack`` makes it; None for an archive
    packed before golive made manifests)."""


def run_build(command: str, worktree: Path, env: Mapping[str, str], timeout: float,
              on_line: LineSink) -> None:
    """Run the build; BuildFailed naming the exit code or the time limit."""
    if not command.strip():
        return
    code, output = run_process(["sh", "-c", command], cwd=str(worktree),
                               env={**hook_environment(), **env}, timeout=timeout,
                               on_line=on_line)
    if code is None:
        raise BuildFailed(f"the build ran past its limit of {timeout:g}s")
    if code != 0:
        last = output.strip().splitlines()[-1] if output.strip() else ""
        raise BuildFailed(f"the build exited with {code}" + (f": {last}" if last else ""))


def _walk(root: Path, start: Path) -> Iterator[Path]:
    """Every file, folder and link under ``start`` (links are not followed)."""
    yield start
    if start.is_dir() and not start.is_symlink():
        for entry in sorted(start.iterdir()):
            if entry.name == ".git" and entry.parent == root:
                continue
            yield from _walk(root, entry)


def _link_escapes(link_path: str, target: str) -> bool:
    if posixpath.isabs(target):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    return resolved == ".." or resolved.startswith("../")


def _members(worktree: Path, folders: list[str], exclude: list[str]) -> list[Path]:
    spec = pathspec.GitIgnoreSpec.from_lines(exclude)
    starts = []
    for folder in folders or ["."]:
        if posixpath.isabs(folder) or ".." in Path(folder).parts:
            raise PackError(f"pack entry {folder!r} must be a path inside the repository")
        start = worktree / folder
        if not start.exists():
            raise PackError(f"pack folder {folder} does not exist after the build")
        starts.append(start)
    chosen: list[Path] = []
    for start in starts:
        for path in _walk(worktree, start):
            rel = path.relative_to(worktree).as_posix()
            if rel == ".":
                continue
            probe = rel + "/" if path.is_dir() and not path.is_symlink() else rel
            if spec.match_file(probe):
                continue
            chosen.append(path)
    return chosen


class _Hashing:
    """A file read through while it is archived, hashed on the way: the manifest's
    checksum costs no second read."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        block = self.handle.read(size)
        self.digest.update(block)
        self.size += len(block)
        return block


def pack(worktree: Path, folders: list[str], exclude: list[str], dest: Path) -> Archive:
    """Pack the chosen files into ``dest`` (.tar.gz) with the release's manifest;
    PackError if one escapes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    members = _members(worktree, folders, exclude)
    count = 0
    entries: list[manifests.Entry] = []
    # gzip level 6: half the time of tarfile's default 9 for an archive 0.3% larger
    with tarfile.open(dest, "w:gz", compresslevel=6) as archive:
        for path in members:
            rel = path.relative_to(worktree).as_posix()
            if path.is_symlink() and _link_escapes(rel, os.readlink(path)):
                raise PackError(f"{rel} links to {os.readlink(path)}, outside the release")
            info = archive.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with open(path, "rb") as handle:
                    reader = _Hashing(handle)
                    archive.addfile(info, reader)
                entries.append(manifests.file_entry(rel, info.mode, reader.size,
                                                    reader.digest.hexdigest()))
                count += 1
            elif info.isdir():
                archive.addfile(info)
                entries.append(manifests.dir_entry(rel, info.mode))
            elif info.issym():
                archive.addfile(info)
                entries.append(manifests.link_entry(rel, info.linkname))
    check_archive(dest)
    return Archive(dest, sha256_of(dest), dest.stat().st_size, count,
                   manifest=manifests.build(entries))


def recompress_zstd(archive: Archive, dest: Path, level: int = 3) -> Archive:
    """The same tar stream as ``archive``, compressed with zstd: hosts unpack it faster."""
    with gzip.open(archive.path, "rb") as source, open(dest, "wb") as target:
        writer = zstandard.ZstdCompressor(level=level, threads=-1).stream_writer(
            target, closefd=False)
        with writer:
            shutil.copyfileobj(source, writer, 1024 * 1024)
    return Archive(dest, sha256_of(dest), dest.stat().st_size, archive.files, "zst")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def check_archive(path: Path) -> None:
    """PackError for the first member that could land outside the release."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                _check_member(member)
    except tarfile.TarError as exc:
        raise PackError(f"the archive {path.name} cannot be read: {exc}") from None


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if posixpath.isabs(name) or ".." in name.split("/"):
        raise PackError(f"archive entry {name} escapes the release")
    if member.issym() and _link_escapes(name, member.linkname):
        raise PackError(f"archive entry {name} links to {member.linkname}, outside the release")
    if member.islnk() and (posixpath.isabs(member.linkname)
                           or ".." in member.linkname.split("/")):
        raise PackError(f"archive entry {name} hard-links outside the release")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise PackError(f"archive entry {name} is not a file, folder or link")


# -- the delta stream -------------------------------------------------------------------------


@contextmanager
def _reading(archive: Archive) -> Iterator[tarfile.TarFile]:
    """The archive's members in order, read as a stream (no seeking, nothing unpacked)."""
    with open(archive.path, "rb") as raw:
        if archive.format == "zst":
            with zstandard.ZstdDecompressor().stream_reader(raw) as plain, \
                    tarfile.open(fileobj=plain, mode="r|") as tar:
                yield tar
        else:
            with tarfile.open(fileobj=raw, mode="r|gz") as tar:
                yield tar


@contextmanager
def _compressing(target: IO[bytes], fmt: str, small: bool) -> Iterator[IO[bytes]]:
    """A writer compressing into ``target``: hard for a small delta (milliseconds, and it
    goes to every host), fast for a large one."""
    if fmt == "zst":
        level = 19 if small else 3
        with zstandard.ZstdCompressor(level=level, write_checksum=True).stream_writer(
                target, closefd=False) as writer:
            yield writer
    else:
        with gzip.GzipFile(fileobj=target, mode="wb", compresslevel=9 if small else 6,
                           mtime=0) as gz:
            yield cast(IO[bytes], gz)


def _member(name: str, mode: int, size: int = 0, mtime: float = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.size, info.mtime = mode, size, int(mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_delta(source: Archive, plan: DeltaPlan, changes: str, dest: Path, fmt: str) -> int:
    """Write the stream a host unpacks into the new release: ``.golive-delta/changes``,
    the links and the files the plan sends (read from ``source``, each checked against
    its SHA-256: a damaged archive never makes a delta). Compressed as ``fmt``; its size.
    """
    files = {e.path: e for e in plan.sent if e.kind == manifests.FILE}
    partial = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "wb") as raw:
        with _compressing(raw, fmt, plan.sent_bytes < SMALL_DELTA) as out, \
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as delta:
            data = changes.encode("utf-8", "surrogateescape")
            delta.addfile(_member(".golive-delta/changes", 0o600, len(data)), io.BytesIO(data))
            for entry in plan.sent:
                if entry.kind == manifests.LINK:
                    link = _member(entry.path, 0o777)
                    link.type, link.linkname = tarfile.SYMTYPE, entry.target
                    delta.addfile(link)
            if files:
                _copy_sent(source, files, delta)
    os.replace(partial, dest)
    return dest.stat().st_size


def _copy_sent(source: Archive, files: dict[str, manifests.Entry],
               delta: tarfile.TarFile) -> None:
    """Copy the wanted files from the archive into the delta, stopping once all are in."""
    with _reading(source) as tar:
        for member in tar:
            entry = files.pop(member.name, None)
            if entry is None:
                continue
            handle = tar.extractfile(member)
            if handle is None or not member.isfile():
                raise PackError(f"the archive {source.path.name} holds {member.name} as "
                                "something else than a file")
            reader = _Hashing(handle)
            delta.addfile(_member(entry.path, entry.mode, entry.size, member.mtime), reader)
            if (reader.size, reader.digest.hexdigest()) != (entry.size, entry.sha256):
                raise PackError(f"the archive {source.path.name} is damaged: {member.name} "
                                "is not what its manifest says")
            if not files:
                return
    if files:
        raise PackError(f"the archive {source.path.name} lacks {next(iter(files))}")
