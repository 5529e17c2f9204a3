"""Artifacts: main + the order's branch, merged, built and packed on the control machine.

An artifact is keyed by the pair (main head, branch head) of its repository. When
an earlier stage already built that pair, the same archive is shipped again:
same merge commit, same bytes, same checksum — what was verified is what ships.

Beside each archive lies its manifest (``<stem>.manifest``, and gzipped for the hosts
``<stem>.manifest.gz``); every manifest is also kept by its SHA-256 in
``artifacts/manifests/``, which is how golive knows what a host's current release
holds when the host shows that checksum. ``Deltas`` makes (once per previous manifest
and format, in ``artifacts/deltas/``) the stream that turns such a release into this
artifact's (docs/transfer.md).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from golive.adapters.build import Archive, pack, recompress_zstd, run_build, sha256_of, write_delta
from golive.adapters.git import Mirror
from golive.domain import manifest as manifests
from golive.domain.manifest import DeltaPlan, Manifest
from golive.domain.plan import TransferPlan, transfer_plan
from golive.errors import DeployError, GoliveError

MAX_DELTA_SHARE = 0.5
"""A delta whose changed files hold more than this share of the release's bytes is not
made: the archive is sent (and unpacked) instead, which is then about as cheap."""

_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}
_known: dict[str, Manifest] = {}


def _lock(key: str) -> threading.Lock:
    """One lock per cache file: the hosts of a deployment ask at once, one thread builds."""
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


@dataclass(frozen=True)
class Artifact:
    merge_commit: str
    archive: Archive
    """The .tar.gz every host can unpack."""
    reused: bool
    zst: Archive | None = None
    """The same files as .tar.zst, for hosts that have zstd (faster to unpack)."""
    manifest_gz: Path | None = None
    """The manifest, gzipped: sent with the archive so that the release can be the base
    of a later delta (None for an artifact packed before golive made manifests)."""
    meta_path: Path | None = None
    _checked: set[str] = field(default_factory=set, compare=False, repr=False)

    def for_host(self, has_zstd: bool) -> Archive:
        return self.zst if has_zstd and self.zst is not None else self.archive

    @property
    def manifest(self) -> Manifest | None:
        return self.archive.manifest

    def checked(self, archive: Archive) -> Archive:
        """``archive`` once its SHA-256 is checked (once per process and format): a cached
        archive is checked before its first full send, not on every cache hit. A damaged
        one is dropped from the cache (the next deploy builds it again) and stops the host.
        """
        with _lock(str(archive.path)):
            if archive.format not in self._checked:
                if sha256_of(archive.path) != archive.sha256:
                    if self.meta_path is not None:
                        self.meta_path.unlink(missing_ok=True)
                    raise DeployError(f"the cached archive {archive.path.name} is damaged (its "
                                      "SHA-256 changed): it was dropped from the cache; "
                                      "deploy again to build it anew")
                self._checked.add(archive.format)
        return archive


def _cache_paths(home: Path, mirror: Mirror, main: str, branch: str,
                 recipe: str) -> tuple[Path, Path]:
    """Keyed by both commits and by the recipe (build command, pack, exclude): another
    recipe on the same commits makes other bytes, so it is built again."""
    folder = home / "artifacts" / mirror.path.name
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    stem = f"{main[:16]}-{branch[:16]}-{digest}"
    return folder / f"{stem}.tar.gz", folder / f"{stem}.json"


def recipe_of(build: str, folders: list[str], exclude: list[str]) -> str:
    return json.dumps({"build": build, "pack": folders, "exclude": exclude}, sort_keys=True)


def _stamp(path: Path) -> list[int]:
    """Size and modification time: a cheap check that a cached file is the one written."""
    found = path.stat()
    return [found.st_size, found.st_mtime_ns]


def _cached(archive_path: Path, meta_path: Path, *, verify: bool = True) -> Artifact | None:
    """The cached artifact, or None when there is none or it is damaged (then it is
    rebuilt, never shipped). Archives with a recorded size and time are checked by those
    here and by their SHA-256 before the first full send (``Artifact.checked``)."""
    zst_path = archive_path.with_suffix(".zst")
    if not (archive_path.exists() and zst_path.exists() and meta_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    stamped = "gz_stamp" in meta and "zst_stamp" in meta
    if stamped and (_stamp(archive_path) != meta["gz_stamp"]
                    or _stamp(zst_path) != meta["zst_stamp"]):
        return None
    if verify and not stamped and (sha256_of(archive_path) != meta["sha256"]
                                   or sha256_of(zst_path) != meta["zst_sha256"]):
        return None  # a damaged cache entry is rebuilt, never shipped
    found = _stored_manifest(archive_path, meta.get("manifest_sha256", ""))
    if found is False:
        return None
    manifest = found if isinstance(found, Manifest) else None
    archive = Archive(archive_path, meta["sha256"], archive_path.stat().st_size, meta["files"],
                      manifest=manifest)
    zst = Archive(zst_path, meta["zst_sha256"], zst_path.stat().st_size, meta["files"], "zst",
                  manifest=manifest)
    gz_manifest = _manifest_paths(archive_path)[1] if manifest is not None else None
    checked = {"gz", "zst"} if verify and not stamped else set()
    return Artifact(meta["merge_commit"], archive, True, zst, gz_manifest, meta_path, checked)


def _manifest_paths(archive_path: Path) -> tuple[Path, Path]:
    stem = archive_path.name.removesuffix(".tar.gz")
    return (archive_path.with_name(f"{stem}.manifest"),
            archive_path.with_name(f"{stem}.manifest.gz"))


def _stored_manifest(archive_path: Path, sha: str) -> Manifest | None | bool:
    """The manifest beside the archive (None when the artifact has none; False when it is
    missing or damaged: the artifact is built again)."""
    if not sha:
        return None
    text_path, gz_path = _manifest_paths(archive_path)
    try:
        data = text_path.read_bytes()
        ok = gz_path.exists()
    except OSError:
        return False
    if not ok or hashlib.sha256(data).hexdigest() != sha:
        return False
    return _parsed(sha, data)


def _parsed(sha: str, data: bytes) -> Manifest:
    with _locks_guard:
        known = _known.get(sha)
    if known is None:
        known = manifests.parse(data.decode("utf-8", "surrogateescape"))
        with _locks_guard:
            _known[sha] = known
    return known


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def _keep_manifest(home: Path, archive_path: Path, manifest: Manifest) -> Path:
    """Write the manifest beside the archive (plain and gzipped) and under its checksum
    in ``artifacts/manifests/``; the gzipped path."""
    text_path, gz_path = _manifest_paths(archive_path)
    _write_atomically(text_path, manifest.data)
    _write_atomically(gz_path, gzip.compress(manifest.data, compresslevel=9, mtime=0))
    known = home / "artifacts" / "manifests" / manifest.sha256
    if not known.exists():
        known.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(known, manifest.data)
    return gz_path


def known_manifest(home: Path, sha: str) -> Manifest | None:
    """The manifest whose SHA-256 is ``sha`` if golive made it (and still has it)."""
    if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
        return None
    path = home / "artifacts" / "manifests" / sha
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != sha:
        return None
    try:
        return _parsed(sha, data)
    except ValueError:
        return None


def peek_artifact(home: Path, mirror: Mirror, main: str, branch: str, *, build: str,
                  folders: list[str], exclude: list[str]) -> Artifact | None:
    """The cached artifact for (main, branch) if there is one; builds nothing, checks only
    what is cheap (for a plan)."""
    archive_path, meta_path = _cache_paths(home, mirror, main, branch,
                                           recipe_of(build, folders, exclude))
    return _cached(archive_path, meta_path, verify=False)


def prepare_artifact(
    home: Path, mirror: Mirror, main: str, branch: str, *, build: str, timeout: float,
    folders: list[str], exclude: list[str], merge_message: str, work_dir: Path,
    env: Callable[[str], Mapping[str, str]], on_line: Callable[[str], None],
) -> Artifact:
    """The artifact for (main, branch): from the cache, or merged, built and packed now.

    ``env(merge_commit)`` gives the GOLIVE_* variables for the build.
    """
    archive_path, meta_path = _cache_paths(home, mirror, main, branch,
                                           recipe_of(build, folders, exclude))
    found = _cached(archive_path, meta_path)
    if found is not None:
        return found
    worktree = work_dir / "worktree"
    merge_commit = mirror.merged_worktree(main, branch, worktree, merge_message)
    try:
        run_build(build, worktree, env(merge_commit), timeout, on_line)
        staging = work_dir / "archive.tar.gz"
        archive = pack(worktree, folders, exclude, staging)
    finally:
        mirror.remove_worktree(worktree)
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging, archive_path)
    manifest = archive.manifest
    assert manifest is not None
    archive = Archive(archive_path, archive.sha256, archive.size, archive.files,
                      manifest=manifest)
    zst = recompress_zstd(archive, archive_path.with_suffix(".zst"))
    zst = Archive(zst.path, zst.sha256, zst.size, zst.files, "zst", manifest=manifest)
    gz_manifest = _keep_manifest(home, archive_path, manifest)
    meta_path.write_text(json.dumps({
        "merge_commit": merge_commit, "sha256": archive.sha256, "zst_sha256": zst.sha256,
        "files": archive.files, "manifest_sha256": manifest.sha256,
        "gz_stamp": _stamp(archive_path), "zst_stamp": _stamp(zst.path)}))
    return Artifact(merge_commit, archive, False, zst, gz_manifest, meta_path, {"gz", "zst"})


# -- deltas ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """The stream that makes this artifact's release from a previous one on a host."""

    path: Path
    format: str
    size: int
    plan: DeltaPlan


@dataclass
class Deltas:
    """Delta streams to one artifact for one service (its shared items are sent, never
    linked), made once per previous manifest and format and shared by all hosts."""

    home: Path
    artifact: Artifact
    shared: list[str]
    _plans: dict[str, DeltaPlan | str] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def plan_from(self, previous_sha: str) -> DeltaPlan | str:
        """What a host whose current release has manifest ``previous_sha`` needs, or why
        it gets the full archive."""
        with self._guard:
            if previous_sha not in self._plans:
                self._plans[previous_sha] = self._plan(previous_sha)
            return self._plans[previous_sha]

    def _plan(self, previous_sha: str) -> DeltaPlan | str:
        new = self.artifact.manifest
        if new is None:
            return "the artifact was packed before golive made manifests"
        if not new.deltable:
            return "a file name holds a character a manifest line cannot carry"
        previous = known_manifest(self.home, previous_sha)
        if previous is None:
            return ("golive does not know the manifest of the current release (not made by "
                    "golive, or its artifact was removed from the cache)")
        if not previous.deltable:
            return "a file name of the current release cannot be carried by a manifest line"
        plan = manifests.diff(previous, new, self.shared)
        if manifests.apply_changes(previous, manifests.changes_text(plan)) != new:
            return "the changes would not make the new manifest (a golive bug: please report)"
        share = plan.sent_bytes / max(new.file_bytes, 1)
        if share > MAX_DELTA_SHARE:
            return f"{share:.0%} of the release's bytes changed: the archive is as cheap"
        return plan

    def stream(self, previous_sha: str, fmt: str) -> Delta | str:
        """The delta stream from ``previous_sha`` as ``fmt`` (zst or gz), made on first use
        and then reused; or why the host gets the full archive."""
        plan = self.plan_from(previous_sha)
        if isinstance(plan, str):
            return plan
        shared = hashlib.sha256(json.dumps(sorted(self.shared)).encode()).hexdigest()[:8]
        path = (self.home / "artifacts" / "deltas"
                / f"{plan.previous[:16]}-{plan.new[:16]}-{shared}.tar.{fmt}")
        with _lock(str(path)):
            if not path.exists():
                source = self.artifact.zst if self.artifact.zst is not None else \
                    self.artifact.archive
                write_delta(source, plan, manifests.changes_text(plan), path, fmt)
        return Delta(path, fmt, path.stat().st_size, plan)


def estimate_transfer(home: Path, artifact: Artifact | None, shared: list[str], hosts: int,
                      previous: str, previous_manifest: str,
                      full_transfer: bool) -> TransferPlan:
    """The plan's ``TransferPlan`` for one service: a delta from the release the stage
    serves when golive knows its manifest (the stream is made now, and reused by the
    deploy), else the archive; sizes stay unknown while the artifact is not built."""
    full = None
    if artifact is not None:
        archive = artifact.zst or artifact.archive
        extra = artifact.manifest_gz.stat().st_size if artifact.manifest_gz else 0
        full = archive.size + extra
    if full_transfer:
        return transfer_plan("full", hosts, reason="full transfer asked (--full-transfer)",
                             full_bytes=full)
    if not previous:
        return transfer_plan("full", hosts, full_bytes=full,
                             reason="no release golive made is known to serve the stage")
    if not previous_manifest:
        return transfer_plan("full", hosts, previous_release=previous, full_bytes=full,
                             reason=f"release {previous} has no manifest")
    if artifact is None:
        return transfer_plan("delta", hosts, previous_release=previous,
                             reason="the release is built by the deploy: its size is known then")
    try:
        delta: Delta | str = Deltas(home, artifact, shared).stream(previous_manifest, "zst")
    except GoliveError as exc:  # a damaged cached archive: the deploy rebuilds it
        delta = f"the delta could not be made: {exc}"
    if isinstance(delta, str):
        return transfer_plan("full", hosts, reason=delta, previous_release=previous,
                             full_bytes=full)
    plan = delta.plan
    counts = (len(plan.sent), plan.linked, len(plan.of(manifests.COPY)), plan.removed)
    return transfer_plan("delta", hosts, previous_release=previous, full_bytes=full,
                         delta_bytes=delta.size, counts=counts)
