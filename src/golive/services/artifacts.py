"""Artifacts: main + the order's branch, merged, built and packed on the control machine.

An artifact is keyed by the pair (main head, branch head) of its repository. When
an earlier stage already built that pair, the same archive is shipped again:
same merge commit, same bytes, same checksum — what was verified is what ships.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from golive.adapters.build import Archive, pack, recompress_zstd, run_build, sha256_of
from golive.adapters.git import Mirror


@dataclass(frozen=True)
class Artifact:
    merge_commit: str
    archive: Archive
    """The .tar.gz every host can unpack."""
    reused: bool
    zst: Archive | None = None
    """The same files as .tar.zst, for hosts that have zstd (faster to unpack)."""

    def for_host(self, has_zstd: bool) -> Archive:
        return self.zst if has_zstd and self.zst is not None else self.archive


def _cache_paths(home: Path, mirror: Mirror, main: str, branch: str,
                 recipe: str) -> tuple[Path, Path]:
    """Keyed by both commits and by the recipe (build command, pack, exclude): another
    recipe on the same commits makes other bytes, so it is built again."""
    folder = home / "artifacts" / mirror.path.name
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    stem = f"{main[:16]}-{branch[:16]}-{digest}"
    return folder / f"{stem}.tar.gz", folder / f"{stem}.json"


def _cached(archive_path: Path, meta_path: Path) -> Artifact | None:
    zst_path = archive_path.with_suffix(".zst")
    if not (archive_path.exists() and zst_path.exists() and meta_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    if sha256_of(archive_path) != meta["sha256"] or sha256_of(zst_path) != meta["zst_sha256"]:
        return None  # a damaged cache entry is rebuilt, never shipped
    archive = Archive(archive_path, meta["sha256"], archive_path.stat().st_size, meta["files"])
    zst = Archive(zst_path, meta["zst_sha256"], zst_path.stat().st_size, meta["files"], "zst")
    return Artifact(meta["merge_commit"], archive, True, zst)


def prepare_artifact(
    home: Path, mirror: Mirror, main: str, branch: str, *, build: str, timeout: float,
    folders: list[str], exclude: list[str], merge_message: str, work_dir: Path,
    env: Callable[[str], Mapping[str, str]], on_line: Callable[[str], None],
) -> Artifact:
    """The artifact for (main, branch): from the cache, or merged, built and packed now.

    ``env(merge_commit)`` gives the GOLIVE_* variables for the build.
    """
    recipe = json.dumps({"build": build, "pack": folders, "exclude": exclude}, sort_keys=True)
    archive_path, meta_path = _cache_paths(home, mirror, main, branch, recipe)
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
    archive = Archive(archive_path, archive.sha256, archive.size, archive.files)
    zst = recompress_zstd(archive, archive_path.with_suffix(".zst"))
    meta_path.write_text(json.dumps({"merge_commit": merge_commit, "sha256": archive.sha256,
                                     "zst_sha256": zst.sha256, "files": archive.files}))
    return Artifact(merge_commit, archive, False, zst)
