"""Manifests and the delta between two releases, as data: the text format, which entry
is sent, copied, linked or gone, and that applying the changes gives the new manifest."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golive.domain import manifest as m
from golive.domain.manifest import COPY, GONE, SEND, SET, Entry
from golive.domain.plan import human_bytes, transfer_plan

A1 = m.file_entry("app/a.py", 0o644, 3, "a" * 64)
B1 = m.file_entry("app/b.py", 0o644, 5, "b" * 64)
RUN = m.file_entry("bin/run", 0o755, 7, "c" * 64)
APP = m.dir_entry("app", 0o755)
BIN = m.dir_entry("bin", 0o755)
LATEST = m.link_entry("latest", "app/a.py")
BASE = [APP, A1, B1, BIN, RUN, LATEST]


def changed(entries: list[Entry], **replace: Entry | None) -> list[Entry]:
    """``entries`` with some replaced (by path; None removes it) or added."""
    by_path = {e.path: e for e in entries}
    for path, entry in replace.items():
        by_path.pop(path.replace("__", "/").replace("_dot_", "."), None)
        if entry is not None:
            by_path[entry.path] = entry
    return list(by_path.values())


CASES = [
    ("nothing changed", BASE, BASE, (), set(), 4),
    ("one file's content", BASE, changed(BASE, app__a_dot_py=m.file_entry(
        "app/a.py", 0o644, 4, "d" * 64)), (), {(SEND, "app/a.py")}, 3),
    ("a file deleted", BASE, changed(BASE, app__b_dot_py=None), (), {(GONE, "app/b.py")}, 3),
    ("a mode change only: copied on the host, never a shared inode", BASE,
     changed(BASE, bin__run=m.file_entry("bin/run", 0o644, 7, "c" * 64)), (),
     {(COPY, "bin/run")}, 3),
    ("a symlink's target", BASE, changed(BASE, latest=m.link_entry("latest", "app/b.py")), (),
     {(SEND, "latest")}, 3),
    ("a new file in a new folder", BASE,
     [*BASE, m.dir_entry("lib", 0o750), m.file_entry("lib/x.so", 0o755, 9, "e" * 64)], (),
     {(SET, "lib"), (SEND, "lib/x.so")}, 4),
    ("a folder's mode", BASE, changed(BASE, bin=m.dir_entry("bin", 0o700)), (),
     {(SET, "bin")}, 4),
    ("a file becomes a folder", BASE,
     changed(BASE, bin__run=m.dir_entry("bin/run", 0o755)), (), {(SET, "bin/run")}, 3),
    ("only the mtime changed: nothing (mtimes are not in the manifest)", BASE, list(BASE), (),
     set(), 4),
    ("an unchanged file under a shared item is sent, not linked", BASE, BASE, ("app/b.py",),
     {(SEND, "app/b.py")}, 3),
    ("a shared folder: its files are sent", BASE, BASE, ("/app/",),
     {(SEND, "app/a.py"), (SEND, "app/b.py")}, 2),
]


@pytest.mark.parametrize(("name", "before", "after", "shared", "expected", "linked"), CASES,
                         ids=[c[0] for c in CASES])
def test_what_a_host_gets(name: str, before: list[Entry], after: list[Entry],
                          shared: tuple[str, ...], expected: set[tuple[str, str]],
                          linked: int) -> None:
    previous, new = m.build(before), m.build(after)
    plan = m.diff(previous, new, shared)
    assert {(c.action, c.entry.path) for c in plan.changes} == expected
    assert plan.linked == linked
    assert (plan.previous, plan.new) == (previous.sha256, new.sha256)
    assert m.apply_changes(previous, m.changes_text(plan)) == new


def test_the_text_format() -> None:
    manifest = m.build(reversed(BASE))
    assert manifest.text == (
        "golive-manifest 1\n"
        "app\td\t755\n"
        f"app/a.py\tf\t444\t3\t{'a' * 64}\n"
        f"app/b.py\tf\t444\t5\t{'b' * 64}\n"
        "bin\td\t755\n"
        f"bin/run\tf\t555\t7\t{'c' * 64}\n"
        "latest\tl\tapp/a.py\n")
    assert manifest.sha256 == hashlib.sha256(manifest.text.encode()).hexdigest()
    assert m.parse(manifest.text) == manifest
    assert (manifest.files, manifest.file_bytes, manifest.deltable) == (3, 15, True)


def test_lines_sort_like_the_hosts_sort() -> None:
    """The host rebuilds the manifest with ``LC_ALL=C sort``: Python's order is the same,
    also where one path is a prefix of another or holds a space, a dot or UTF-8."""
    names = ["a", "a b", "a-b", "a.b", "a/b", "a/b/c", "ab", "Z", "é", "a\u00a0", "_x"]
    manifest = m.build(m.file_entry(n, 0o644, 1, "0" * 64) for n in names)
    body = manifest.text.split("\n", 1)[1]
    host = subprocess.run(["sort"], input=body.encode(), capture_output=True, check=True,
                          env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}).stdout
    assert host.decode() == body


@pytest.mark.parametrize(("text", "ok"), [
    ("dist/app.js", True), ("with space/é.txt", True), ("tab\there", False),
    ("new\nline", False), ("back\\slash", False), ("del\x7f", False),
    ("bad\udcff", False),
])
def test_plain_names_only(text: str, ok: bool) -> None:
    assert m.plain(text) is ok
    manifest = m.build([m.file_entry(text, 0o644, 1, "0" * 64)])
    assert manifest.deltable is ok


def test_reserved_names_are_not_deltable() -> None:
    assert not m.build([m.dir_entry(".golive-delta", 0o755)]).deltable
    assert m.build([m.dir_entry("x/.golive-delta", 0o755)]).deltable


@pytest.mark.parametrize(("kind", "mode", "host"), [
    ("f", 0o644, 0o444), ("f", 0o755, 0o555), ("f", 0o600, 0o400), ("f", 0o4775, 0o555),
    ("d", 0o755, 0o755), ("d", 0o2775, 0o775), ("l", 0o777, 0),
])
def test_releases_are_read_only_on_the_host(kind: str, mode: int, host: int) -> None:
    assert m.host_mode(kind, mode) == host


@pytest.mark.parametrize("text", [
    "", "golive-manifest 2\n", "golive-manifest 1", "golive-manifest 1\na\tx\n",
    "golive-manifest 1\na\tf\t644\n", "golive-manifest 1\na\td\t7z5\n",
    "golive-manifest 1\na\td\t755\na\td\t755\n",
])
def test_a_bad_manifest_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        m.parse(text)


def test_apply_changes_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match="not a change"):
        m.apply_changes(m.build(BASE), "move\tapp/a.py\n")


def test_sent_bytes_and_counts() -> None:
    new = changed(BASE, app__a_dot_py=m.file_entry("app/a.py", 0o644, 40, "d" * 64),
                  app__b_dot_py=None,
                  bin__run=m.file_entry("bin/run", 0o644, 7, "c" * 64))
    plan = m.diff(m.build(BASE), m.build(new))
    assert (plan.sent_bytes, len(plan.sent), plan.removed, len(plan.of(COPY))) == (40, 1, 1, 1)


def test_transfer_plan_totals() -> None:
    delta = transfer_plan("delta", 20, previous_release="r1", full_bytes=50_000_000,
                          delta_bytes=12_000, counts=(1, 2999, 0, 0))
    assert (delta.bytes_total, delta.full_bytes_total) == (240_000, 1_000_000_000)
    assert (delta.files_sent, delta.files_linked) == (1, 2999)
    unknown = transfer_plan("delta", 3, previous_release="r1", reason="built later")
    assert (unknown.bytes_total, unknown.full_bytes_total) == (None, None)
    full = transfer_plan("full", 2, full_bytes=10, reason="--full-transfer")
    assert full.bytes_total == 20
    assert [human_bytes(n) for n in (812, 14_200, 52_300_000, 1_050_000_000)] == [
        "812 B", "14.2 KB", "52.3 MB", "1.1 GB"]


# -- any two releases ------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "a b", "é"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)


@st.composite
def manifests(draw: st.DrawFn) -> m.Manifest:
    """A consistent tree: every parent of an entry is a folder of the manifest."""
    kinds: dict[str, str] = {}
    for path in draw(st.lists(PATHS, max_size=12)):
        parts = path.split("/")
        if any(kinds.get("/".join(parts[:i]), "d") != "d" for i in range(1, len(parts))):
            continue
        for i in range(1, len(parts)):
            kinds["/".join(parts[:i])] = "d"
        if path not in kinds:
            kinds[path] = draw(st.sampled_from("fdl"))
    entries = []
    for path, kind in kinds.items():
        if kind == "d":
            entries.append(m.dir_entry(path, draw(st.sampled_from([0o755, 0o700]))))
        elif kind == "f":
            content = draw(st.sampled_from("xyz"))
            entries.append(m.file_entry(path, draw(st.sampled_from([0o644, 0o755])),
                                        len(content), content * 64))
        else:
            entries.append(m.link_entry(path, draw(st.sampled_from(["a", "../b"]))))
    return m.build(entries)


@given(manifests(), manifests(), st.lists(NAMES, max_size=2))
@settings(max_examples=150, deadline=None)
def test_the_changes_always_make_the_new_manifest(previous: m.Manifest, new: m.Manifest,
                                                  shared: list[str]) -> None:
    plan = m.diff(previous, new, shared)
    assert m.apply_changes(previous, m.changes_text(plan)) == new
    unchanged = [e for e in new.entries if previous.by_path.get(e.path) == e]
    # unchanged entries are linked (or made again) unless under a shared item: sent
    assert plan.linked + plan.folders + len(plan.shared_sent) == len(unchanged)
    for change in plan.changes:
        if change.action == COPY:  # same bytes in the previous release
            before = previous.by_path[change.entry.path]
            assert (before.sha256, before.mode != change.entry.mode) == (
                change.entry.sha256, True)
