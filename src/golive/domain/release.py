"""The release layout on a host, as commands (DESIGN §3).

    <path>/releases/<release-id>/   one unpacked release each
    <path>/shared/                  files and folders linked into every release
    <path>/current -> releases/<id> switched atomically: a new link renamed over it

Functions here only build shell text; a transport runs it. Every path and name
that comes from a user is quoted.
"""

from __future__ import annotations

import posixpath
import re
from datetime import datetime
from shlex import quote

RELEASE_ID = re.compile(r"^\d{14}-d\d+$")
MARKER = ".golive-release"


def release_id(at: datetime, deployment_id: int) -> str:
    """Sortable by time: ``20261126051500-d12``."""
    return f"{at:%Y%m%d%H%M%S}-d{deployment_id}"


def releases_dir(path: str) -> str:
    return posixpath.join(path, "releases")


def release_path(path: str, rid: str) -> str:
    return posixpath.join(path, "releases", rid)


def incoming_archive(path: str, rid: str, fmt: str = "gz") -> str:
    return posixpath.join(path, "releases", f".incoming-{rid}.tar.{fmt}")


HAS_ZSTD = "command -v zstd >/dev/null 2>&1 && echo yes || echo no"
"""Prints yes when the host can unpack a zstd archive."""


def prepare_layout(path: str) -> str:
    return f"mkdir -p {quote(releases_dir(path))} {quote(posixpath.join(path, 'shared'))}"


def unpack(path: str, rid: str, sha256: str, marker_text: str, fmt: str = "gz") -> str:
    """Check the uploaded archive's SHA-256, unpack it into a fresh release folder."""
    archive = incoming_archive(path, rid, fmt)
    target = release_path(path, rid)
    extract = (f"tar -xzf {quote(archive)} -C {quote(target)} --no-same-owner" if fmt == "gz"
               else f"zstd -dcq {quote(archive)} | tar -xf - -C {quote(target)} --no-same-owner")
    steps = " && ".join([
        f"echo {quote(sha256 + '  ' + archive)} | sha256sum -c --quiet -",
        f"rm -rf {quote(target)}",
        f"mkdir -p {quote(target)}",
        extract,
        f"rm -f {quote(archive)}",
        f"printf '%s\\n' {quote(marker_text)} > {quote(posixpath.join(target, MARKER))}",
    ])
    # a half-unpacked release (disk full, a dropped connection) is removed, never kept;
    # tar only says "Wrote only N of M bytes" when the disk is full: say it, before the
    # removal frees the space
    full = (f"df -Pk {quote(releases_dir(path))} 2>/dev/null | awk 'NR == 2 && $4 < 1024 "
            f"{{ print \"no space left on the device of \" $6 \" (\" $4 \" KiB free)\" }}' >&2")
    return (f"{{ {steps}; }} || {{ rc=$?; {full}; rm -rf {quote(target)} {quote(archive)}; "
            "exit $rc; }")


def link_shared(path: str, rid: str, items: list[str]) -> str | None:
    """Link each shared item into the release; fail naming a missing one."""
    if not items:
        return None
    parts = []
    for item in items:
        clean = posixpath.normpath(item).lstrip("/")
        shared = posixpath.join(path, "shared", clean)
        inside = posixpath.join(release_path(path, rid), clean)
        relative = posixpath.relpath(posixpath.join("shared", clean),
                                     posixpath.dirname(posixpath.join("releases", rid, clean)))
        parts.append(
            f"{{ [ -e {quote(shared)} ] || {{ echo {quote('shared item missing: ' + shared)} "
            f">&2; exit 3; }}; }}")
        parts.append(f"rm -rf {quote(inside)}")
        parts.append(f"mkdir -p {quote(posixpath.dirname(inside))}")
        parts.append(f"ln -s {quote(relative)} {quote(inside)}")
    return " && ".join(parts)


def read_current(path: str) -> str:
    """Prints the release id ``current`` points to, or nothing."""
    return f"readlink {quote(posixpath.join(path, 'current'))} || true"


def current_id(readlink_output: str) -> str | None:
    target = readlink_output.strip()
    if not target:
        return None
    return posixpath.basename(target.rstrip("/")) or None


def switch(path: str, rid: str | None) -> str:
    """Point ``current`` at the release atomically (or remove it when ``rid`` is None)."""
    current = posixpath.join(path, "current")
    if rid is None:
        return f"rm -f {quote(current)}"
    temp = posixpath.join(path, f".current-{rid}")
    return (f"ln -sfn {quote(posixpath.join('releases', rid))} {quote(temp)} && "
            f"mv -Tf {quote(temp)} {quote(current)}")


def list_releases(path: str) -> str:
    """Prints the complete releases: those unpacked to the end (they have the marker)."""
    return (f"cd {quote(releases_dir(path))} 2>/dev/null && "
            f"for d in *; do [ -f \"$d/{MARKER}\" ] && echo \"$d\"; done; true")


def remove_incomplete(path: str, current: str | None) -> str:
    """Removes what an interrupted deployment left (a killed connection gets no chance
    to clean up): release folders without the marker, never ``current``, and uploaded
    archives. Prints the folders removed."""
    keep = quote(current or "")
    return (f"cd {quote(releases_dir(path))} 2>/dev/null || exit 0; "
            f"for d in [0-9]*-d[0-9]*; do if [ -d \"$d\" ] && [ ! -f \"$d/{MARKER}\" ] && "
            f"[ \"$d\" != {keep} ]; then rm -rf \"$d\" && echo \"$d\"; fi; done; "
            "rm -f .incoming-*; true")


def release_order(rid: str) -> tuple[str, int]:
    """Sort key of a release id: its time, then its deployment number (d9 before d10)."""
    stamp, _, number = rid.partition("-d")
    return stamp, int(number) if number.isdigit() else 0


def releases_to_remove(listing: str, current: str | None, keep: int) -> list[str]:
    """The oldest releases beyond ``keep``; never ``current``, never a foreign folder."""
    ids = sorted((line.strip() for line in listing.splitlines()
                  if RELEASE_ID.match(line.strip())), key=release_order)
    kept = ids[-keep:] if keep > 0 else []
    return [rid for rid in ids if rid not in kept and rid != current]


def remove_releases(path: str, ids: list[str]) -> str | None:
    if not ids:
        return None
    return "rm -rf " + " ".join(quote(release_path(path, rid)) for rid in ids)


def checkout(path: str, repo: str, branch: str) -> str:
    """Checkout mode: a git working copy at ``path`` on the order's branch; prints HEAD."""
    q = quote(path)
    return " && ".join([
        f"if [ ! -d {quote(posixpath.join(path, '.git'))} ]; then "
        f"if [ -e {q} ] && [ -n \"$(ls -A {q} 2>/dev/null)\" ]; then "
        f"echo {quote(path + ' exists and is not a git working copy')} >&2; exit 3; fi; "
        f"mkdir -p {quote(posixpath.dirname(path) or '.')} && "
        f"git clone --quiet {quote(repo)} {q}; fi",
        f"cd {q}",
        "git fetch --prune --quiet origin",
        f"git checkout -f -q -B {quote(branch)} {quote('origin/' + branch)}",
        "git clean -fdq",
        "git rev-parse HEAD",
    ])


def checkout_commit(path: str, branch: str, commit: str) -> str:
    """Checkout mode rollback: put the working copy back on an earlier commit."""
    return (f"cd {quote(path)} && git checkout -f -q -B {quote(branch)} {quote(commit)} && "
            "git clean -fdq && git rev-parse HEAD")


def read_head(path: str) -> str:
    return f"cd {quote(path)} 2>/dev/null && git rev-parse HEAD 2>/dev/null || true"
