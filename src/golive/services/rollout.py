"""What the engine does on one host: receive and unpack a release, switch, check.

Each function takes an open transport and the item's plain data, runs the
commands built by ``domain.release`` and returns what the engine needs to
record. Failures are golive errors naming the host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from shlex import quote

from golive.adapters.build import Archive
from golive.adapters.transport import Transport
from golive.domain import release
from golive.errors import CommandFailed
from golive.services.work import ItemWork

Log = Callable[[str], None]
HOOK_TIMEOUT = 600.0


def base_path(transport: Transport, item: ItemWork) -> str:
    return transport.resolve(item.path)


def current_release(transport: Transport, path: str) -> str | None:
    return release.current_id(transport.run(release.read_current(path)).output)


def distribute(transport: Transport, item: ItemWork, rid: str, archive: Archive,
               marker: str, log: Log) -> str | None:
    """Phase one on a host: the release unpacked and verified; the current release id."""
    path = base_path(transport, item)
    # one round trip: the layout made, then where current points
    previous = release.current_id(transport.run(
        f"{release.prepare_layout(path)} && {{ {release.read_current(path)}; }}").output)
    transport.put_file(archive.path, release.incoming_archive(path, rid, archive.format))
    try:
        transport.run(release.unpack(path, rid, archive.sha256, marker, archive.format))
    except CommandFailed as exc:
        why = [line for line in exc.output.strip().splitlines()
               if line.strip() and "Exiting with failure status" not in line][-3:]
        raise CommandFailed(f"host {transport.host_name}: unpacking release {rid} failed "
                            f"({'ran too long' if exc.timed_out else f'exit {exc.returncode}'})"
                            + (f": {'; '.join(why)}" if why else ""),
                            host=transport.host_name, command=exc.command,
                            returncode=exc.returncode, output=exc.output,
                            timed_out=exc.timed_out) from None
    shared = release.link_shared(path, rid, item.shared)
    if shared:
        transport.run(shared)
    log(f"release {rid} unpacked ({archive.files} file(s), {archive.format}, "
        f"sha256 {archive.sha256[:12]}), "
        f"current is {previous or 'none'}")
    return previous


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
    transport.run(f"rm -rf {quote(release.release_path(path, rid))}")
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
