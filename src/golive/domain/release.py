"""The release layout on a host, as commands (DESIGN §3).

    <path>/releases/<release-id>/   one unpacked release each (its files read-only)
    <path>/manifests/<release-id>   its manifest (``domain.manifest``), and
    <path>/manifests/<release-id>.stat   its files' inode, mtime and size when golive
                                    verified it: both written before the release's marker
    <path>/shared/                  files and folders linked into every release
    <path>/current -> releases/<id> switched atomically: a new link renamed over it

A release comes either from the whole archive (``unpack``) or, when the host's current
release is one golive knows, from a delta (``apply_delta``): unchanged files are hard
links to the current release's, the rest comes in one stream, and the result is
verified against the new manifest (docs/transfer.md). Files are made read-only so that
a write to one release cannot reach another through a shared inode.

Functions here only build shell text; a transport runs it. Every path and name
that comes from a user is quoted.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import datetime
from shlex import quote

RELEASE_ID = re.compile(r"^\d{14}-d\d+$")
MARKER = ".golive-release"
MANIFESTS = "manifests"
DELTA_REFUSED = 75
"""Exit code of ``apply_delta`` when the delta cannot make the release (then the host
gets the full archive)."""


def release_id(at: datetime, deployment_id: int) -> str:
    """Sortable by time: ``20261126051500-d12``."""
    return f"{at:%Y%m%d%H%M%S}-d{deployment_id}"


def releases_dir(path: str) -> str:
    return posixpath.join(path, "releases")


def release_path(path: str, rid: str) -> str:
    return posixpath.join(path, "releases", rid)


def incoming_archive(path: str, rid: str, fmt: str = "gz") -> str:
    return posixpath.join(path, "releases", f".incoming-{rid}.tar.{fmt}")


def incoming_manifest(path: str, rid: str) -> str:
    return posixpath.join(path, "releases", f".incoming-{rid}.manifest.gz")


def incoming_delta(path: str, rid: str, fmt: str) -> str:
    return posixpath.join(path, "releases", f".incoming-{rid}.delta.tar.{fmt}")


def manifest_path(path: str, rid: str) -> str:
    return posixpath.join(path, MANIFESTS, rid)


HAS_ZSTD = "command -v zstd >/dev/null 2>&1 && echo yes || echo no"
"""Prints yes when the host can unpack a zstd archive."""


def prepare_layout(path: str) -> str:
    return f"mkdir -p {quote(releases_dir(path))} {quote(posixpath.join(path, 'shared'))}"


def unpack(path: str, rid: str, sha256: str, marker_text: str, fmt: str = "gz",
           manifest_sha: str = "") -> str:
    """Check the uploaded archive's SHA-256, unpack it into a fresh release folder (modes
    as packed, then files read-only). With ``manifest_sha`` the uploaded manifest is
    checked and kept, with the files' identity, so the release can be a delta's base."""
    archive = incoming_archive(path, rid, fmt)
    target = release_path(path, rid)
    keep = quote(manifest_path(path, rid))
    extract = (f"tar -xzpf {quote(archive)} -C {quote(target)} --no-same-owner" if fmt == "gz"
               else f"zstd -dcq {quote(archive)} | tar -xpf - -C {quote(target)} "
               "--no-same-owner")
    steps = [
        f"echo {quote(sha256 + '  ' + archive)} | sha256sum -c --quiet -",
        f"rm -rf {quote(target)} {keep} {keep}.stat",
        f"mkdir -p {quote(target)}",
        extract,
        f"rm -f {quote(archive)}",
        f"find {quote(target)} -type f -exec chmod a-w {{}} +",
    ]
    if manifest_sha:
        incoming = quote(incoming_manifest(path, rid))
        steps += [
            f"mkdir -p {quote(posixpath.join(path, MANIFESTS))}",
            f"gzip -dc {incoming} > {keep}.part",
            f"echo {quote(manifest_sha)}\"  \"{keep}.part | sha256sum -c --quiet -",
            f"rm -f {incoming}",
            f"(cd {quote(target)} && find . -type f -printf {quote(STAT_FORMAT)}) > {keep}.stat",
            f"mv {keep}.part {keep}",
        ]
    steps.append(f"printf '%s\\n' {quote(marker_text)} > {quote(posixpath.join(target, MARKER))}")
    # a half-unpacked release (disk full, a dropped connection) is removed, never kept;
    # tar only says "Wrote only N of M bytes" when the disk is full: say it, before the
    # removal frees the space
    full = (f"df -Pk {quote(releases_dir(path))} 2>/dev/null | awk 'NR == 2 && $4 < 1024 "
            f"{{ print \"no space left on the device of \" $6 \" (\" $4 \" KiB free)\" }}' >&2")
    leftovers = " ".join([quote(target), quote(archive), keep, f"{keep}.part", f"{keep}.stat",
                          quote(incoming_manifest(path, rid))])
    return (f"{{ {' && '.join(steps)}; }} || {{ rc=$?; {full}; rm -rf {leftovers}; "
            "exit $rc; }")


STAT_FORMAT = "%P\t%i\t%T@\t%s\n"
"""What ``find -printf`` records of each file of a complete release: path, inode, mtime,
size. A later delta links a file only if it is still that inode, unwritten since."""


@dataclass(frozen=True)
class Probe:
    """What phase one learns from a host in one round trip."""

    has_zstd: bool
    current: str | None
    """The release ``current`` points to (None: none, or not a golive release id)."""
    manifest: str = ""
    """The SHA-256 of that release's manifest, when it is complete and has its record."""


def probe(path: str) -> str:
    """Make the layout; print whether zstd is there, where ``current`` points and the
    checksum of that release's manifest (only for a complete release with its record)."""
    rel, man = quote(releases_dir(path)), quote(posixpath.join(path, MANIFESTS))
    return "\n".join([
        f"mkdir -p {rel} {quote(posixpath.join(path, 'shared'))} || exit 1",
        "if command -v zstd >/dev/null 2>&1; then echo zstd=yes; else echo zstd=no; fi",
        f"c=$(readlink {quote(posixpath.join(path, 'current'))}); r=${{c##*/}}",
        'echo "current=$c"',
        f'if [ -n "$r" ] && [ -f {rel}/"$r"/{MARKER} ] && [ -f {man}/"$r".stat ] && '
        f'[ -f {man}/"$r" ]; then echo "manifest=$(sha256sum < {man}/"$r" | cut -c1-64)"; fi',
        "true",
    ])


def parse_probe(output: str) -> Probe:
    found: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key in ("zstd", "current", "manifest"):
            found[key] = value
    current = current_id(found.get("current", ""))
    if current is not None and not RELEASE_ID.match(current):
        current = None
    manifest = found.get("manifest", "")
    ok = current is not None and re.fullmatch(r"[0-9a-f]{64}", manifest) is not None
    return Probe(found.get("zstd") == "yes", current, manifest if ok else "")


def apply_delta(path: str, rid: str, previous: str, fmt: str, new_sha: str, previous_sha: str,
                marker_text: str) -> str:
    """Make release ``rid`` from ``previous`` and the uploaded delta stream, verify it
    against the new manifest and mark it complete; exit ``DELTA_REFUSED`` with a line
    ``golive-delta: why`` (and nothing left behind) when it cannot."""
    values = {"P": path, "R": rid, "O": previous, "IN": incoming_delta(path, rid, fmt),
              "FMT": fmt, "NEW": new_sha, "OLD": previous_sha, "MARK": marker_text}
    header = "\n".join(f"{name}={quote(value)}" for name, value in values.items())
    return f"{header}\n{_DELTA_SCRIPT}"


_DELTA_SCRIPT = r"""T="$P/releases/$R"; B="$P/releases/$O"; M="$P/manifests"; D="$T/.golive-delta"
export LC_ALL=C
no() { echo "golive-delta: $*" >&2; cd /; rm -rf "$T" "$M/$R" "$M/$R.stat" "$IN"; exit 75; }
[ -f "$B/.golive-release" ] || no "release $O is not complete"
[ -f "$M/$O.stat" ] || no "release $O has no record of its files"
printf '%s  %s\n' "$OLD" "$M/$O" | sha256sum -c --status - 2>/dev/null ||
  no "the manifest of release $O is not the one golive made"
rm -rf "$T" "$M/$R" "$M/$R.stat" && mkdir -p "$D" || no "cannot make $T"
unpack() {
  if [ "$FMT" = zst ]; then zstd -dcq "$IN" | tar -xpf - -C "$T" --no-same-owner "$@"
  else tar -xzpf "$IN" -C "$T" --no-same-owner "$@"; fi
}
# the list of changes first (the stream's first member); the files once the links are made
unpack --occurrence=1 .golive-delta/changes || no "the delta stream cannot be unpacked"
for f in body link linkf linksums sums copy dirs stat; do : > "$D/$f"; done
# the previous manifest minus every path the changes name, plus their lines; what to
# link (unchanged files and links), copy (same bytes, new mode) and check by checksum
awk -F '\t' -v D="$D" '
part == "c" {
  drop[$2] = 1
  if ($1 == "gone") next
  print substr($0, length($1) + 2) > (D "/body")
  if ($1 == "copy") { print $2 > (D "/copy"); print $2 > (D "/fmode." $4) }
  if ($3 == "f" && ($1 == "copy" || $1 == "send")) print $6 "  " $2 > (D "/sums")
  next
}
FNR > 1 && !($1 in drop) {
  print > (D "/body")
  if ($2 == "f") {
    print $1 > (D "/link"); print $1 > (D "/linkf"); print $5 "  " $1 > (D "/linksums")
  } else if ($2 == "l") print $1 > (D "/link")
}' part=c "$D/changes" part=m "$M/$O" || no "cannot read the changes"
{ echo 'golive-manifest 1'; sort "$D/body"; } > "$D/manifest" || no "cannot write the manifest"
printf '%s  %s\n' "$NEW" "$D/manifest" | sha256sum -c --status - 2>/dev/null ||
  no "the changes do not make the new manifest"
# folders: those holding a linked entry come with it (cp --parents, the previous mode);
# the others, and every new or changed one, are made here and get their mode at the end;
# and the listing the result must match
awk -F '\t' -v D="$D" '
part == "c" { if ($1 == "set") made[$2] = 1; next }
part == "l" {
  n = split($0, parts, "/"); p = parts[1]
  for (i = 1; i < n; i++) { held[p] = 1; p = p "/" parts[i + 1] }
  next
}
FNR > 1 {
  if ($2 == "d") {
    if (($1 in made) || !($1 in held)) { print $1 > (D "/dirs"); print $1 > (D "/dmode." $3) }
    print $1 "\td\t" $3
  } else if ($2 == "f") print $1 "\tf\t" $3 "\t" $4
  else print $1 "\tl\t" $3
}' part=c "$D/changes" part=l "$D/link" part=n "$D/manifest" | sort > "$D/expect" ||
  no "cannot read the new manifest"
cd "$B" || no "cannot enter release $O"
how=links
if ! xargs -r -d '\n' cp -lP --parents --preserve=mode -t "$T" -- < "$D/link" 2> "$D/why"
then
  how="copies ($(head -n 1 "$D/why"))"
  xargs -r -d '\n' cp -P --preserve=mode,timestamps --parents --remove-destination \
    -t "$T" -- < "$D/link" || no "cannot copy the unchanged files of release $O"
fi
xargs -r -d '\n' cp -P --preserve=timestamps --parents --remove-destination \
  -t "$T" -- < "$D/copy" || no "cannot copy the files whose mode changed"
unpack || no "the delta stream cannot be unpacked"
rm -f "$IN"
cd "$T" && xargs -r -d '\n' mkdir -p -- < "$D/dirs" || no "cannot make the folders"
for f in "$D"/fmode.* "$D"/dmode.*; do
  [ -f "$f" ] || continue
  xargs -r -d '\n' chmod "${f##*.}" -- < "$f" || no "cannot set modes"
done
# what is there, as the manifest lists it (modes: the permission bits only), and each
# file's identity (inode, mtime, size): one walk
find . -mindepth 1 \( -path ./.golive-delta -prune \) \
  -o -printf '%y\t%P\t%m\t%s\t%i\t%T@\t%l\n' | awk -F '\t' -v D="$D" '
  { m = "00" $3; m = substr(m, length(m) - 2) }
  $1 == "f" { print $2 "\tf\t" m "\t" $4; print $2 "\t" $5 "\t" $6 "\t" $4 > (D "/stat"); next }
  $1 == "d" { print $2 "\td\t" m; next }
  $1 == "l" { print $2 "\tl\t" $7; next }
  { print $2 "\t?" }' | sort > "$D/actual" || no "cannot list $T"
cmp -s "$D/expect" "$D/actual" || no "the release does not match its manifest:" \
  "$(comm -3 "$D/expect" "$D/actual" | head -n 2 | tr '\t\n' ' ;')"
# linked files: still the very inodes verified with release O, unwritten since
if [ "$how" = links ]; then
  awk -F '\t' 'part == "w" { want[$0] = 1; next }
    part == "o" { if ($1 in want) was[$1] = $2 " " $3 " " $4; next }
    ($1 in want) && was[$1] != $2 " " $3 " " $4 { print $1; exit 1 }' \
    part=w "$D/linkf" part=o "$M/$O.stat" part=n "$D/stat" > "$D/bad" ||
    no "$(head -n 1 "$D/bad") was changed in release $O after golive verified it"
elif [ -s "$D/linksums" ]; then
  sha256sum -c --quiet --strict "$D/linksums" > "$D/bad" 2>&1 ||
    no "a copied file is not what the manifest says: $(head -n 1 "$D/bad")"
fi
if [ -s "$D/sums" ]; then
  sha256sum -c --quiet --strict "$D/sums" > "$D/bad" 2>&1 ||
    no "a file sent is not what the manifest says: $(head -n 1 "$D/bad")"
fi
mv "$D/stat" "$M/$R.stat" && mv "$D/manifest" "$M/$R" && rm -rf "$D" &&
  printf '%s\n' "$MARK" > "$T/.golive-release" || no "cannot complete release $R"
echo "golive-delta: made with $how"
"""


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
            f"rm -f .incoming-*; {_sweep_manifests()}; true")


def _sweep_manifests() -> str:
    """Remove the manifests (and records) of releases that are gone or incomplete: a
    manifest is only ever trusted beside a complete release."""
    return (f"if cd ../{MANIFESTS} 2>/dev/null; then for m in *; do r=${{m%.part}}; "
            f"r=${{r%.stat}}; [ -f \"../releases/$r/{MARKER}\" ] || rm -f \"$m\"; done; fi")


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
    """Removes the releases with their manifests (hard links to them elsewhere stay)."""
    if not ids:
        return None
    return "rm -rf " + " ".join(
        f"{quote(release_path(path, rid))} {quote(manifest_path(path, rid))} "
        f"{quote(manifest_path(path, rid) + '.stat')}" for rid in ids)


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
