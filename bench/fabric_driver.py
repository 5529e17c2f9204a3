"""Fabric side of bench/fanout.py: ThreadingGroup put + run to every host.

Run by fanout.py with the Python of bench/.venvs/fabric (fabric from PyPI), never
imported by golive. Argument: a JSON file with the hosts, key, known_hosts, the
archive and where to put it. Prints one JSON line: the wall and CPU time of the
put + run part (after imports and argument parsing, like golive's in-process run).
"""

from __future__ import annotations

import json
import resource
import sys
import time


def cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    import paramiko
    from fabric import ThreadingGroup

    wall0, cpu0 = time.perf_counter(), cpu_now()
    group = ThreadingGroup(
        *[f"{user}@127.0.0.1:{spec['port']}" for user in spec["users"]],
        connect_kwargs={"key_filename": spec["key"], "look_for_keys": False,
                        "allow_agent": False},
        connect_timeout=15,
    )
    for connection in group:
        # strict host key checking against the fixture's known_hosts (Fabric would
        # otherwise add unknown keys silently)
        connection.client.load_host_keys(spec["known_hosts"])
        connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        group.put(spec["archive"], remote=spec["remote"])
        group.run(f"mkdir -p {spec['dest']} && tar xzf {spec['remote']} -C {spec['dest']}",
                  hide=True, in_stream=False)
    finally:
        group.close()
    print(json.dumps({"wall": time.perf_counter() - wall0, "cpu": cpu_now() - cpu0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
