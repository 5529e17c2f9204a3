"""What the engine does on one host: receive and unpack a release, switch, check.

Phase one (``distribute``) makes the release from the host's current one by a delta
when golive knows that release's manifest, else from the whole archive; a delta that
does not verify on the host falls back to the archive for that host, with a log line
saying why (docs/transfer.md).

Each function takes an open transport and the item's plain data, runs the
commands built by ``domain.release`` and returns what the engine needs to
record. Failures are golive errors naming the host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from golive.adapters.build import Archive
from golive.adapters.transport import Transport
from golive.domain import manifest as manifests
from golive.domain import release
from golive.domain.plan import human_bytes
from golive.errors import CommandFailed, GoliveError
from golive.services.artifacts import Artifact, Delta, Deltas
from golive.services.work import ItemWork

Log = Callable[[str], None]
HOOK_TIMEOUT = 600.0


def base_path(transport: Transport, item: ItemWork) -> str:
    return transport.resolve(item.path)


def current_release(transport: Transport, path: str) -> str | None:
    return release.current_id(transport.run(release.read_current(path)).output)


@dataclass(frozen=True)
class Received:
    """How a host got its release in phase one."""

    previous: str | None
    """The release ``current`` pointed to (the base of a delta)."""
    method: str
    """``delta`` or ``full``."""
    sent: int
    """Bytes uploaded for it (the delta stream, or the archive and its manifest)."""
    has_zstd: bool


def distribute(transport: Transport, item: ItemWork, rid: str, artifact: Artifact,
               marker: str, log: Log, warn: Log | None = None, deltas: Deltas | None = None,
               why_full: str = "") -> Received:
    """Phase one on a host: the release made and verified — from the current release by a
    delta when golive knows it, else (or when the delta does not verify) from the whole
    archive; each fallback is logged with its reason."""
    path = base_path(transport, item)
    # one round trip: the layout made, zstd, where current points, its manifest
    found = release.parse_probe(transport.run(release.probe(path)).output)
    reason = why_full or _why_not_delta(found, deltas, rid)
    if not reason and deltas is not None and found.current is not None:
        fmt = "zst" if found.has_zstd and artifact.zst is not None else "gz"
        try:
            delta: Delta | str = deltas.stream(found.manifest, fmt)
        except GoliveError as exc:  # e.g. a damaged cached archive: the full send checks it
            delta = f"the delta could not be made: {exc}"
        if isinstance(delta, str):
            reason = delta
        elif _receive_delta(transport, path, rid, found.current, delta, marker, log,
                            warn or log):
            _link_shared(transport, item, path, rid)
            return Received(found.current, "delta", delta.size, found.has_zstd)
    if reason:
        log(f"full archive: {reason}")
    archive = artifact.checked(artifact.for_host(found.has_zstd))
    sent = _receive_full(transport, path, rid, archive, artifact.manifest_gz, marker)
    _link_shared(transport, item, path, rid)
    log(f"release {rid} unpacked ({archive.files} file(s), {archive.format}, "
        f"sha256 {archive.sha256[:12]}), "
        f"current is {found.current or 'none'}")
    return Received(found.current, "full", sent, found.has_zstd)


def _why_not_delta(found: release.Probe, deltas: Deltas | None, rid: str) -> str:
    """Why this host cannot get a delta ("" when it can try)."""
    if deltas is None:
        return "no delta for this deployment"
    if found.current is None:
        return "the host has no current release"
    if found.current == rid:
        return f"current already is {rid}"
    if not found.manifest:
        return (f"current release {found.current} has no manifest and record of its files "
                "(made before delta transfer, incomplete, or removed)")
    return ""


def _delta_failure(exc: CommandFailed) -> str:
    """The host's reason (its ``golive-delta:`` line), or the command's own failure."""
    said = [line.split("golive-delta:", 1)[1].strip() for line in exc.output.splitlines()
            if "golive-delta:" in line]
    return said[-1] if said else exc.message


def _receive_delta(transport: Transport, path: str, rid: str, previous: str, delta: Delta,
                   marker: str, log: Log, warn: Log) -> bool:
    """Send the delta and make the release from it; False (with a warning saying why, and
    nothing left on the host) when the host refused it: the archive follows."""
    transport.put_file(delta.path, release.incoming_delta(path, rid, delta.format))
    try:
        done = transport.run(release.apply_delta(path, rid, previous, delta.format,
                                                 delta.plan.new, delta.plan.previous, marker))
    except CommandFailed as exc:
        if exc.timed_out:  # as likely to happen again with the archive: the host fails
            raise
        warn(f"full archive instead of a delta: the delta from {previous} did not make the "
             f"release: {_delta_failure(exc)}")
        return False
    plan = delta.plan
    how = next((line.split("made with", 1)[1].strip() for line in done.output.splitlines()
                if "golive-delta: made with" in line), "links")
    log(f"release {rid} made from {previous} by a delta of {human_bytes(delta.size)}: "
        f"{len(plan.sent)} sent, {plan.linked} linked, {len(plan.of(manifests.COPY))} copied, "
        f"{plan.removed} gone; verified against its manifest"
        + ("" if how == "links" else f"; unchanged files were copied: hard links failed: {how}"))
    return True


def _receive_full(transport: Transport, path: str, rid: str, archive: Archive,
                  manifest_gz: Path | None, marker: str) -> int:
    """Send the archive (and the manifest, when the artifact has one) and unpack it; the
    bytes sent."""
    transport.put_file(archive.path, release.incoming_archive(path, rid, archive.format))
    sent = archive.size
    manifest_sha = ""
    if manifest_gz is not None and archive.manifest is not None:
        transport.put_file(manifest_gz, release.incoming_manifest(path, rid))
        sent += manifest_gz.stat().st_size
        manifest_sha = archive.manifest.sha256
    try:
        transport.run(release.unpack(path, rid, archive.sha256, marker, archive.format,
                                     manifest_sha))
    except CommandFailed as exc:
        why = [line for line in exc.output.strip().splitlines()
               if line.strip() and "Exiting with failure status" not in line][-3:]
        raise CommandFailed(f"host {transport.host_name}: unpacking release {rid} failed "
                            f"({'ran too long' if exc.timed_out else f'exit {exc.returncode}'})"
                            + (f": {'; '.join(why)}" if why else ""),
                            host=transport.host_name, command=exc.command,
                            returncode=exc.returncode, output=exc.output,
                            timed_out=exc.timed_out) from None
    return sent


def _link_shared(transport: Transport, item: ItemWork, path: str, rid: str) -> None:
    shared = release.link_shared(path, rid, item.shared)
    if shared:
        transport.run(shared)


def has_zstd(transport: Transport) -> bool:
    return transport.run(release.HAS_ZSTD).output.strip().endswith("yes")


def switch(transport: Transport, item: ItemWork, rid: str | None) -> None:
    transport.run(release.switch(base_path(transport, item), rid))


def run_hooks(transport: Transport, commands: list[str], cwd: str, env: Mapping[str, str],
              log: Log) -> None:
    for command in commands:
        log(f"$ {command}")
        transport.run(command, cwd=cwd, env=env, timeout=HOOK_TIMEOUT, on_line=log)


def health_check(transport: Transport, item: ItemWork, cwd: str, env: Mapping[str, str],
                 log: Log) -> None:
    check = item.health_check
    if not check:
        return
    timeout, retries = int(check.get("timeout", 10)), int(check.get("retries", 3))
    if check.get("http"):
        probe = f"curl -fsS -o /dev/null --max-time {timeout} {quote(check['http'])}"
    else:
        probe = str(check["command"])
    command = (f"n=0; until {probe}; do n=$((n+1)); [ $n -gt {retries} ] && exit 1; "
               f"sleep 1; done")
    log(f"health check: {check.get('http') or check.get('command')}")
    try:
        transport.run(command, cwd=cwd, env=env, timeout=(timeout + 1) * (retries + 1) + 5,
                      on_line=log)
    except CommandFailed as exc:
        raise CommandFailed(f"host {transport.host_name}: health check failed: "
                            f"{check.get('http') or check.get('command')}",
                            host=transport.host_name, command=exc.command,
                            returncode=exc.returncode, output=exc.output) from None


def cleanup(transport: Transport, item: ItemWork, log: Log) -> None:
    path = base_path(transport, item)
    listing = transport.run(release.list_releases(path)).output
    current = current_release(transport, path)
    doomed = release.releases_to_remove(listing, current, item.keep_releases)
    command = release.remove_releases(path, doomed)
    if command:
        transport.run(command)
        log(f"removed old releases: {', '.join(doomed)}")
    swept = transport.run(release.remove_incomplete(path, current)).output.split()
    if swept:
        log(f"removed incomplete releases of an interrupted deployment: {', '.join(swept)}")


def discard(transport: Transport, item: ItemWork, rid: str) -> bool:
    """Remove release ``rid`` unless ``current`` points to it; whether it was removed."""
    path = base_path(transport, item)
    if current_release(transport, path) == rid:
        return False
    transport.run(f"rm -rf {quote(release.release_path(path, rid))} "
                  f"{quote(release.manifest_path(path, rid))} "
                  f"{quote(release.manifest_path(path, rid) + '.stat')}")
    return True


def release_exists(transport: Transport, item: ItemWork, rid: str) -> bool:
    """Whether release ``rid`` is kept complete (unpacked to the end) on the host."""
    path = release.release_path(base_path(transport, item), rid)
    marker = posixpath.join(path, release.MARKER)
    return transport.run(f"test -f {quote(marker)}", check=False).exit_code == 0


def earlier_releases(transport: Transport, item: ItemWork) -> list[str]:
    """The complete releases older than ``current``, oldest first, for a plain rollback."""
    path = base_path(transport, item)
    current = current_release(transport, path)
    ids = sorted((line.strip() for line in transport.run(release.list_releases(path))
                  .output.splitlines() if release.RELEASE_ID.match(line.strip())),
                 key=release.release_order)
    return [rid for rid in ids
            if current is None or release.release_order(rid) < release.release_order(current)]


def head_of(transport: Transport, item: ItemWork) -> str:
    """The commit the host's working copy is at ("" when it has none)."""
    return transport.run(release.read_head(base_path(transport, item))).output.strip()


def checkout(transport: Transport, item: ItemWork, log: Log) -> tuple[str, str]:
    """Checkout mode on a host: (commit before, commit now) of the working copy."""
    path = base_path(transport, item)
    before = head_of(transport, item)
    lines = transport.run(release.checkout(path, item.repo, item.branch), on_line=log)
    head = lines.output.strip().splitlines()[-1] if lines.output.strip() else ""
    return before, head


def checkout_back(transport: Transport, item: ItemWork, commit: str) -> None:
    path = base_path(transport, item)
    transport.run(release.checkout_commit(path, item.branch, commit))


def release_dir(transport: Transport, item: ItemWork, rid: str) -> str:
    return posixpath.join(base_path(transport, item), "releases", rid)
