"""Release manifests and the delta between two releases (pure: no I/O).

A manifest says what a release holds once it is unpacked on a host: every folder,
regular file and symbolic link, with the mode it has there, and for a file its size
and SHA-256. It is made when the artifact is packed, kept beside the archive on the
control machine and beside the release on each host (``<path>/manifests/<release>``),
and it is how golive ships only what changed (docs/transfer.md):

* ``diff(previous, new)`` says, entry by entry, what a host that holds ``previous``
  needs to make ``new``: files to send (new or changed content), files to copy on the
  host (same content, another mode: a hard link would share the mode), entries gone;
  everything else is linked from the previous release.
* ``changes_text`` is that difference as the host reads it; ``apply_changes`` is what
  the host does with it (its ``awk`` twin lives in ``domain/release.py``), so the
  control machine checks that the host will arrive at exactly ``new``.

The text format is one entry a line after a header, sorted bytewise by line (the path
comes first, so this is the order of the paths; ``LC_ALL=C sort`` on a host sorts the
same way), fields separated by tabs::

    golive-manifest 1
    <path>\\tf\\t<mode>\\t<size>\\t<sha256>     a regular file
    <path>\\td\\t<mode>                       a folder
    <path>\\tl\\t<target>                     a symbolic link

Modes are three octal digits, the permission bits as the host keeps them: releases are
read-only once complete (a file's write bits are cleared), so that a release made of
hard links to an earlier one can never change it by a write (docs/transfer.md).
Mtimes are not in the manifest: a rebuild that touched every file but changed one
sends one file.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

HEADER = "golive-manifest 1"
FILE, DIR, LINK = "f", "d", "l"
SEND, COPY, SET, GONE = "send", "copy", "set", "gone"
"""What the host does with a changed entry: unpack it from the stream, copy it from the
previous release (then set its mode), make it from its line (a folder), or leave it out."""
RESERVED = (".golive-delta", ".golive-release")
"""Names golive itself uses at the top of a release (the delta's work folder, the marker)."""


def host_mode(kind: str, mode: int) -> int:
    """The permission bits an entry has on the host: a file loses its write bits (a
    release is read-only once complete), a folder keeps its mode, a link has none."""
    if kind == FILE:
        return mode & 0o555
    if kind == DIR:
        return mode & 0o777
    return 0


def plain(text: str) -> bool:
    """Whether a path or link target can travel in a line of the manifest and through
    the host's line tools: no control characters and no backslash."""
    return not any(ord(c) < 32 or c in "\\\x7f" for c in text) and _utf8(text)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8 (surrogate escapes)
        return False
    return True


@dataclass(frozen=True)
class Entry:
    """One folder, file or link of a release, as it is on the host."""

    path: str
    kind: str
    mode: int = 0
    size: int = 0
    sha256: str = ""
    target: str = ""

    def line(self) -> str:
        if self.kind == FILE:
            return f"{self.path}\t{FILE}\t{self.mode:03o}\t{self.size}\t{self.sha256}"
        if self.kind == DIR:
            return f"{self.path}\t{DIR}\t{self.mode:03o}"
        return f"{self.path}\t{LINK}\t{self.target}"

    def listing(self) -> str:
        """The line the host's ``find`` prints for this entry (no checksum): what the
        verification compares."""
        if self.kind == FILE:
            return f"{self.path}\t{FILE}\t{self.mode:03o}\t{self.size}"
        return self.line()


def file_entry(path: str, mode: int, size: int, sha256: str) -> Entry:
    return Entry(path, FILE, host_mode(FILE, mode), size, sha256)


def dir_entry(path: str, mode: int) -> Entry:
    return Entry(path, DIR, host_mode(DIR, mode))


def link_entry(path: str, target: str) -> Entry:
    return Entry(path, LINK, target=target)


def _line_key(entry: Entry) -> bytes:
    return entry.line().encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Manifest:
    """A release's entries, sorted as in the text."""

    entries: tuple[Entry, ...]

    @cached_property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in [HEADER, *(e.line() for e in self.entries)])

    @cached_property
    def data(self) -> bytes:
        return self.text.encode("utf-8", "surrogateescape")

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def by_path(self) -> dict[str, Entry]:
        return {e.path: e for e in self.entries}

    @cached_property
    def deltable(self) -> bool:
        """Whether a host can make this release from another by its line tools."""
        return all(plain(e.path) and plain(e.target) and e.path.split("/")[0] not in RESERVED
                   for e in self.entries)

    @property
    def files(self) -> int:
        return sum(1 for e in self.entries if e.kind == FILE)

    @property
    def file_bytes(self) -> int:
        return sum(e.size for e in self.entries if e.kind == FILE)


def build(entries: Iterable[Entry]) -> Manifest:
    """A manifest of ``entries`` (any order); ValueError if a path comes twice."""
    ordered = tuple(sorted(entries, key=_line_key))
    paths = [e.path for e in ordered]
    if len(set(paths)) != len(paths):
        raise ValueError("a path is listed twice in the manifest")
    return Manifest(ordered)


def parse(text: str) -> Manifest:
    """The manifest in ``text``; ValueError naming the first line that is not one."""
    lines = text.split("\n")
    if not lines or lines[0] != HEADER:
        raise ValueError(f"not a golive manifest (first line {lines[0][:40]!r})")
    if lines[-1] != "":
        raise ValueError("the manifest does not end with a newline")
    return build(_entry(number, line) for number, line in enumerate(lines[1:-1], start=2))


def _entry(number: int, line: str) -> Entry:
    fields = line.split("\t")
    try:
        if fields[1] == FILE and len(fields) == 5:
            return Entry(fields[0], FILE, int(fields[2], 8), int(fields[3]), fields[4])
        if fields[1] == DIR and len(fields) == 3:
            return Entry(fields[0], DIR, int(fields[2], 8))
        if fields[1] == LINK and len(fields) == 3:
            return Entry(fields[0], LINK, target=fields[2])
    except (IndexError, ValueError):
        pass
    raise ValueError(f"line {number} of the manifest is not an entry: {line[:80]!r}")


# -- the delta ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One line of the changes a host applies: ``action`` and the new entry (or, for
    ``gone``, the path that is no longer there)."""

    action: str
    entry: Entry

    def line(self) -> str:
        return f"{GONE}\t{self.entry.path}" if self.action == GONE else \
            f"{self.action}\t{self.entry.line()}"


@dataclass(frozen=True)
class DeltaPlan:
    """What a host holding ``previous`` needs to make ``new``."""

    previous: str
    """The SHA-256 of the previous manifest."""
    new: str
    changes: tuple[Change, ...]
    linked: int
    """Files and links taken from the previous release by a hard link."""
    folders: int = 0
    shared_sent: tuple[str, ...] = field(default=())
    """Paths sent although unchanged: under a shared item (the previous release has a link
    to ``shared/`` there, not the packed entry)."""

    def of(self, action: str) -> list[Entry]:
        return [c.entry for c in self.changes if c.action == action]

    @property
    def sent(self) -> list[Entry]:
        """Files and links that travel in the stream."""
        return self.of(SEND)

    @property
    def sent_bytes(self) -> int:
        return sum(e.size for e in self.sent if e.kind == FILE)

    @property
    def removed(self) -> int:
        return len(self.of(GONE))


def under(path: str, items: Sequence[str]) -> bool:
    """Whether ``path`` is one of the shared ``items`` or inside one."""
    for item in items:
        clean = posixpath.normpath(item).lstrip("/")
        if path == clean or path.startswith(clean + "/"):
            return True
    return False


def diff(previous: Manifest, new: Manifest, shared: Sequence[str] = ()) -> DeltaPlan:
    """The changes that turn ``previous`` into ``new`` on a host, by content (SHA-256),
    never by time. Entries under a shared item are sent even when unchanged: on the host
    the previous release has a link to ``shared/`` in their place."""
    old = previous.by_path
    changes: list[Change] = []
    linked = folders = 0
    forced: list[str] = []
    for entry in new.entries:
        before = old.get(entry.path)
        action = _action(before, entry)
        if action is None and entry.kind != DIR and under(entry.path, shared):
            action = SEND
            forced.append(entry.path)
        if action is None:
            folders += entry.kind == DIR
            linked += entry.kind != DIR
            continue
        changes.append(Change(action, entry))
    for entry in previous.entries:
        if entry.path not in new.by_path:
            changes.append(Change(GONE, Entry(entry.path, entry.kind)))
    return DeltaPlan(previous.sha256, new.sha256, tuple(changes), linked, folders,
                     tuple(forced))


def _action(before: Entry | None, entry: Entry) -> str | None:
    """How a host gets ``entry`` when the previous release had ``before`` there (None:
    unchanged, linked or made again as it was)."""
    if before == entry:
        return None
    if entry.kind == DIR:
        return SET
    if (entry.kind == FILE and before is not None and before.kind == FILE
            and (before.sha256, before.size) == (entry.sha256, entry.size)):
        return COPY  # same bytes, another mode: a link would change the old release's mode
    return SEND


def changes_text(plan: DeltaPlan) -> str:
    return "".join(f"{c.line()}\n" for c in plan.changes)


def apply_changes(previous: Manifest, changes: str) -> Manifest:
    """The manifest a host arrives at from ``previous`` and the changes text (what its
    ``awk`` does): the previous entries minus every path named, plus the new lines."""
    named: set[str] = set()
    added: list[Entry] = []
    for number, line in enumerate(changes.splitlines(), start=1):
        action, _, rest = line.partition("\t")
        if action == GONE:
            named.add(rest)
        elif action in (SEND, COPY, SET):
            entry = _entry(number, rest)
            named.add(entry.path)
            added.append(entry)
        else:
            raise ValueError(f"line {number} of the changes is not a change: {line[:80]!r}")
    return build([e for e in previous.entries if e.path not in named] + added)
