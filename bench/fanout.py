"""Fan-out benchmark: one ~50 MB, ~3,000-file release to N SSH hosts, six ways (+1).

    .venv/bin/python bench/fanout.py [--hosts 1,5,20] [--repeat 3] [--quick]
    .venv/bin/python bench/fanout.py --delta [--hosts 20] [--repeat 3] [--quick]

``--delta`` measures instead how a one-line fix reaches N hosts that serve the previous
release: golive's delta transfer against golive's full transfer and N parallel ``rsync
-a --link-dest`` over ssh, with every other file's mtime kept or touched, wall, CPU and
bytes on the wire (the "delta transfer" section below and in bench/README.md).

Needs root (the test OpenSSH server adds unix users and mounts a tmpfs). Everything
happens on 127.0.0.1: the hosts are unix users of one OpenSSH server started here
(golive.testing.sshd), their homes on a tmpfs. See bench/README.md for what each
method does, how time and CPU are counted, and the results on this machine.

Methods (each verified on every host after every run: file count and total size
of the unpacked tree, so a broken method is never timed as fast):

* golive   request_deployment(kind="full") + run_deployment: phase one (upload,
           checksum, unpack on all hosts in parallel) + switch, on a SQLite store in
           a temporary GOLIVE_HOME; the artifact cache is warmed first (pack once);
* stream   N concurrent ``ssh host 'mkdir -p D && tar xzf - -C D' < archive.tar.gz``;
* upload   N concurrent ``scp archive host:D.tgz && ssh host 'mkdir -p D && tar xzf D.tgz -C D'``;
* seq      the same as upload, one host after another (what Walle does);
* fabric   Fabric's ThreadingGroup put + run (bench/fabric_driver.py, own venv);
* ansible  ansible-playbook with ``unarchive``, forks = N (bench/ansible_unarchive.yml,
           own venv);
* stream-gcm  (reference, not used for the goal) ``stream`` with ``ssh -c
           aes128-gcm@openssh.com``, the cipher golive's asyncssh connections prefer.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
VENVS = HERE / ".venvs"

# -- the test tree ------------------------------------------------------------------
TREE_VERSION = 1
TREE_SEED = 20260504
TEXT_FILES = 2850
BINARY_FILES = 150
TEXT_BYTES = 83_000_000
BINARY_BYTES = 25_000_000
FEATURE_FILE = "FEATURE.md"
BRANCH = "feature/bench"

# -- the run ------------------------------------------------------------------------
USERS = 20
TMPFS = "6g"
GOLIVE_PATH = "srv/golive"
METHOD_TIMEOUT = 900.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36

ALL_METHODS = ("golive", "stream", "upload", "seq", "fabric", "ansible", "stream-gcm")
LABELS = {
    "golive": "golive full deploy (phase one + switch)",
    "stream": "raw OpenSSH: N x ssh 'tar xzf -' < archive",
    "upload": "raw OpenSSH: N x (scp, then ssh tar xzf)",
    "seq": "sequential scp + ssh tar x (Walle)",
    "fabric": "Fabric ThreadingGroup put + run",
    "ansible": "Ansible unarchive, forks=N",
    "stream-gcm": "(ref) raw stream, ssh -c aes128-gcm",
}
RAW = ("stream", "upload")


class MethodFailed(RuntimeError):
    """A method did not deliver the release to every host (or could not run)."""


def say(text: str) -> None:
    print(text, flush=True)


# == test tree and repository =========================================================


@dataclass(frozen=True)
class Tree:
    origin: Path
    """Bare repository: ``main`` with the tree, ``BRANCH`` one commit on top of it."""
    files: int
    """Regular files in the merged tree (what every host must end up with)."""
    bytes: int


def _words(rng: random.Random) -> list[str]:
    syllables = ["ab", "el", "or", "un", "is", "at", "er", "on", "an", "ti", "co", "de", "re",
                 "in", "st", "ma", "lo", "pa", "ra", "ve", "ku", "zi", "fo", "ne"]
    return sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(6000)})


KEYWORDS = ["def", "return", "if", "else", "for", "in", "import", "class", "self", "None",
            "True", "False", "while", "with", "as", "yield", "lambda", "not", "and", "or"]
OPERATORS = [" = ", " + ", " - ", " * ", " == ", " != ", ", ", ".", "(", ")", ": ", "[", "]"]
TEXT_EXTS = ["py", "py", "py", "js", "ts", "html", "css", "md", "json", "yaml", "txt", "sql"]
BINARY_EXTS = ["png", "jpg", "woff2", "so", "whl", "gz", "pdf"]


def _source(rng: random.Random, words: list[str], size: int) -> bytes:
    """Source-like text of ``size`` bytes: a per-file vocabulary, indented lines
    (gzip packs it about 3.3x, like real code)."""
    local = rng.sample(words, 120) + KEYWORDS
    lines, total = [], 0
    while total < size:
        indent = "    " * rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4))
        tokens = rng.choices(local, k=rng.randint(2, 9))
        ops = rng.choices(OPERATORS, k=len(tokens))
        body = "".join(a + b for a, b in zip(tokens, ops, strict=True))
        line = f"{indent}{rng.choice(KEYWORDS)} {body}{rng.randint(0, 99)}"
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()[:size]


def _sizes(rng: random.Random, count: int, total: int, mu: float, sigma: float,
           low: int) -> list[int]:
    raw = [rng.lognormvariate(mu, sigma) for _ in range(count)]
    scale = total / sum(raw)
    return [max(low, int(x * scale)) for x in raw]


def generate_tree(dest: Path) -> tuple[int, int]:
    """Write the deterministic tree into ``dest``; (files, bytes)."""
    rng = random.Random(TREE_SEED)
    words = _words(rng)
    packages = [f"{rng.choice(words)}{i}" for i in range(24)]
    count = size_total = 0
    for index, size in enumerate(_sizes(rng, TEXT_FILES, TEXT_BYTES, 9.5, 1.1, 120)):
        package = packages[index % len(packages)]
        sub = f"{rng.choice(words)}{index % 7}"
        path = dest / "src" / package / sub / f"{rng.choice(words)}_{index}.{rng.choice(TEXT_EXTS)}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_source(rng, words, size))
        count, size_total = count + 1, size_total + size
    for index, size in enumerate(_sizes(rng, BINARY_FILES, BINARY_BYTES, 11.5, 1.0, 512)):
        path = (dest / "assets" / f"{rng.choice(words)}{index % 5}"
                / f"{rng.choice(words)}_{index}.{rng.choice(BINARY_EXTS)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        count, size_total = count + 1, size_total + size
    return count, size_total


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost",
           "GIT_AUTHOR_DATE": "2026-05-04T00:00:00Z", "GIT_COMMITTER_DATE": "2026-05-04T00:00:00Z"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def test_tree() -> Tree:
    """The tree's repository in bench/.cache (made once, reused by later runs)."""
    folder = CACHE / f"tree-v{TREE_VERSION}"
    meta_path = folder / "tree.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return Tree(folder / "origin.git", meta["files"], meta["bytes"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    work, origin = folder / "work", folder / "origin.git"
    say(f"generating the test tree in {folder} (once) ...")
    started = time.perf_counter()
    work.mkdir()
    files, size = generate_tree(work)
    feature = b"# the feature branch\n" * 50
    _git(folder, "init", "-q", "--bare", "-b", "main", str(origin))
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "the tree")
    _git(work, "checkout", "-q", "-b", BRANCH)
    (work / FEATURE_FILE).write_bytes(feature)
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "a feature")
    _git(work, "push", "-q", str(origin), "main", BRANCH)
    shutil.rmtree(work)
    files, size = files + 1, size + len(feature)
    meta_path.write_text(json.dumps({"files": files, "bytes": size}))
    say(f"  {files} files, {size / 1e6:.1f} MB, in {time.perf_counter() - started:.1f}s")
    return Tree(origin, files, size)


# == measuring ========================================================================


@dataclass
class Sample:
    wall: float
    cpu: float
    """Control side: this process (all threads) + reaped child processes, seconds."""
    host_cpu: float
    """Host side: the sshd listener and every session it reaped (sshd, shells, tar)."""


def _rusage_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry))
    return found


def _become_subreaper() -> None:
    """Orphans of our children (an ssh ControlPersist master Ansible leaves behind) are
    re-parented to this process, so that reaping them adds their CPU to RUSAGE_CHILDREN."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans(keep: set[int], timeout: float = 15.0) -> None:
    """Wait for and reap every child of ours but ``keep`` (sshd), SIGTERM after ``timeout``."""
    deadline = time.monotonic() + timeout
    terminated = False
    while True:
        kids = [pid for pid in _children(os.getpid()) if pid not in keep]
        if not kids:
            return
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline and not terminated:
            for pid in kids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            terminated, deadline = True, time.monotonic() + timeout
        elif time.monotonic() > deadline:
            raise RuntimeError(f"child processes do not exit: {kids}")
        time.sleep(0.02)


class HostMeter:
    """CPU of the sshd listener plus everything it reaped (its sessions: sshd, the
    login shell, tar, zstd, sha256sum...): the host side of every method."""

    def __init__(self, sshd_pid: int) -> None:
        self.pid = sshd_pid

    def settle(self, timeout: float = 20.0) -> None:
        """Until sshd has no session left (its children are gone and reaped)."""
        deadline = time.monotonic() + timeout
        while _children(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def cpu(self) -> float:
        fields = _stat(self.pid)
        if fields is None:
            raise RuntimeError("the test sshd is gone")
        # utime, stime, cutime, cstime: fields 14-17 of /proc/PID/stat
        return sum(int(x) for x in fields[11:15]) / CLK_TCK


def measure(body: Callable[[], tuple[float, float] | None], meter: HostMeter,
            keep: set[int]) -> Sample:
    """Run ``body`` and measure it. ``body`` may return (wall, cpu) measured by a
    driver process itself (Fabric: its put + run without interpreter start-up)."""
    meter.settle()
    host0 = meter.cpu()
    own0, kids0 = _rusage_cpu(resource.RUSAGE_SELF), _rusage_cpu(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    inner = body()
    wall = time.perf_counter() - wall0
    own = _rusage_cpu(resource.RUSAGE_SELF) - own0
    reap_orphans(keep)  # daemonized helpers (ssh masters): their CPU counts too
    kids = _rusage_cpu(resource.RUSAGE_CHILDREN) - kids0
    meter.settle()
    host = meter.cpu() - host0
    if inner is not None:
        return Sample(inner[0], inner[1], host)
    return Sample(wall, own + kids, host)


# == the hosts ===========================================================================


@dataclass
class Bench:
    server: Any  # golive.testing.sshd.SshServer
    tree: Tree
    scratch: Path
    meter: HostMeter
    archive: Path | None = None
    """The .tar.gz the raw methods, Fabric and Ansible ship (golive's own artifact)."""
    zst: Path | None = None
    golive: GoliveSide | None = None
    fabric_python: Path | None = None
    ansible_bin: Path | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def users(self, n: int) -> list[Any]:
        return list(self.server.users[:n])

    def ssh(self, user: Any) -> list[str]:
        return [*self.server.ssh_args(user)[:-1], "-o", "ControlMaster=no",
                self.server.ssh_args(user)[-1]]

    def scp(self, user: Any, source: Path, remote: str) -> list[str]:
        return ["scp", "-q", "-F", "/dev/null", "-i", str(self.server.client_key),
                "-P", str(self.server.port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.server.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
                "-o", "ControlMaster=no", "-o", "LogLevel=ERROR",
                str(source), f"{user.name}@{self.server.host}:{remote}"]

    def clean(self, n: int) -> None:
        """Remove what every method left in the homes (as root, outside the timing)."""
        for user in self.users(n):
            home = Path(user.home)
            for name in ("bench", "srv"):
                shutil.rmtree(home / name, ignore_errors=True)
            for leftover in home.glob("bench-*.tgz"):
                leftover.unlink()

    def verify(self, n: int, folder: Callable[[Any], Path]) -> None:
        """Every host has the whole tree: file count and total size."""
        for user in self.users(n):
            root = folder(user)
            files = size = 0
            for dirpath, _dirs, names in os.walk(root):
                for name in names:
                    if name == ".golive-release" and dirpath == str(root):
                        continue
                    files += 1
                    size += os.lstat(os.path.join(dirpath, name)).st_size
            if (files, size) != (self.tree.files, self.tree.bytes):
                raise MethodFailed(f"host {user.name}: {root} holds {files} files, "
                                   f"{size} bytes; expected {self.tree.files}, "
                                   f"{self.tree.bytes}")


def run_all(argvs: list[list[str]], stdin: Path | None = None,
            timeout: float = METHOD_TIMEOUT) -> None:
    """Start the commands at once, wait for all; MethodFailed naming the first failure."""
    procs: list[subprocess.Popen[bytes]] = []
    inputs = []
    errors: list[str] = []
    try:
        for argv in argvs:
            handle = open(stdin, "rb") if stdin is not None else subprocess.DEVNULL
            if stdin is not None:
                inputs.append(handle)
            procs.append(subprocess.Popen(argv, stdin=handle, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE))
        deadline = time.monotonic() + timeout
        for argv, proc in zip(argvs, procs, strict=True):
            _out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if proc.returncode != 0:
                errors.append(f"{' '.join(argv[-2:])} exited {proc.returncode}: "
                              f"{err.decode(errors='replace').strip()[-300:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for handle in inputs:
            handle.close()
    if errors:
        raise MethodFailed(errors[0])


# == the methods ===========================================================================


def method_stream(bench: Bench, n: int, cipher: str = "") -> None:
    assert bench.archive is not None
    dest = "bench/stream-gcm" if cipher else "bench/stream"
    options = ["-c", cipher] if cipher else []
    run_all([[*bench.ssh(u)[:-1], *options, bench.ssh(u)[-1],
              f"mkdir -p {dest} && tar xzf - -C {dest}"] for u in bench.users(n)],
            stdin=bench.archive)


def _upload_then_extract(bench: Bench, user: Any, dest: str, remote: str) -> list[str]:
    """One shell line: scp, then ssh tar x (so that N of them run concurrently)."""
    assert bench.archive is not None
    scp = subprocess.list2cmdline(bench.scp(user, bench.archive, remote))
    ssh = subprocess.list2cmdline([*bench.ssh(user),
                                   f"mkdir -p {dest} && tar xzf {remote} -C {dest}"])
    return ["sh", "-c", f"{scp} && {ssh}"]


def method_upload(bench: Bench, n: int) -> None:
    run_all([_upload_then_extract(bench, u, "bench/upload", "bench-upload.tgz")
             for u in bench.users(n)])


def method_seq(bench: Bench, n: int) -> None:
    assert bench.archive is not None
    for user in bench.users(n):
        run_all([bench.scp(user, bench.archive, "bench-seq.tgz")])
        run_all([[*bench.ssh(user), "mkdir -p bench/seq && tar xzf bench-seq.tgz -C bench/seq"]])


def method_fabric(bench: Bench, n: int) -> tuple[float, float]:
    assert bench.archive is not None and bench.fabric_python is not None
    spec = {"users": [u.name for u in bench.users(n)], "port": bench.server.port,
            "key": str(bench.server.client_key), "known_hosts": str(bench.server.known_hosts),
            "archive": str(bench.archive), "remote": "bench-fabric.tgz",
            "dest": "bench/fabric"}
    spec_path = bench.scratch / "fabric.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run([str(bench.fabric_python), str(HERE / "fabric_driver.py"),
                           str(spec_path)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=METHOD_TIMEOUT)
    if done.returncode != 0:
        raise MethodFailed(f"fabric driver exited {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["wall"]), float(result["cpu"])


def _ansible_inventory(bench: Bench, n: int) -> Path:
    common = (f"-o UserKnownHostsFile={bench.server.known_hosts} "
              "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes "
              "-o IdentitiesOnly=yes")
    hosts = {}
    for index, user in enumerate(bench.users(n)):
        hosts[f"h{index + 1:02d}"] = {
            "ansible_host": "127.0.0.1", "ansible_port": bench.server.port,
            "ansible_user": user.name,
            "ansible_ssh_private_key_file": str(bench.server.client_key),
            "ansible_ssh_common_args": common,
            "ansible_python_interpreter": "/usr/bin/python3",
            "dest": f"{user.home}/bench/ansible",
        }
    path = bench.scratch / f"inventory-{n}.json"
    path.write_text(json.dumps({"all": {"hosts": hosts}}))
    return path


def method_ansible(bench: Bench, n: int) -> None:
    assert bench.archive is not None and bench.ansible_bin is not None
    control = bench.scratch / "ansible-cp"
    shutil.rmtree(control, ignore_errors=True)
    control.mkdir()
    config = bench.scratch / "ansible.cfg"  # empty: Ansible's defaults, no user config
    config.write_text("")
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
           "ANSIBLE_LOCAL_TEMP": str(bench.scratch / "ansible-tmp"),
           "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_DEPRECATION_WARNINGS": "False", "LC_ALL": "C.UTF-8",
           "ANSIBLE_CONFIG": str(config)}
    argv = [str(bench.ansible_bin / "ansible-playbook"), "-i", str(_ansible_inventory(bench, n)),
            "-f", str(n), "-e", f"archive={bench.archive}", str(HERE / "ansible_unarchive.yml")]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=METHOD_TIMEOUT)
    finally:
        # Ansible's default ssh_args keep a ControlPersist master per host for 60s:
        # end them now (they are ours via the subreaper, and reaped by measure()).
        for socket_path in control.iterdir():
            subprocess.run(["ssh", "-S", str(socket_path), "-O", "exit", "x"],
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=20)
    if done.returncode != 0:
        raise MethodFailed(f"ansible-playbook exited {done.returncode}: "
                           f"{(done.stdout + done.stderr).strip()[-800:]}")


# -- golive ------------------------------------------------------------------------------


@dataclass
class GoliveSide:
    runtime: Any
    orders: dict[int, int] = field(default_factory=dict)
    last_deployment: int = 0


def golive_setup(bench: Bench, counts: list[int]) -> GoliveSide:
    import yaml

    from golive.services import configuration, orders, users
    from golive.services.orders import ItemRequest
    from golive.services.runtime import open_runtime
    from golive.settings import get_settings

    home = bench.scratch / "golive-home"
    for name in ("GOLIVE_DATABASE_URL", "GOLIVE_SECRET_KEY", "GOLIVE_USER", "GOLIVE_URL",
                 "GOLIVE_TOKEN"):
        os.environ.pop(name, None)
    os.environ["GOLIVE_HOME"] = str(home)
    runtime = open_runtime(get_settings())
    server = bench.server
    hosts = [{"name": f"h{i + 1:02d}", "address": server.host, "port": server.port,
              "user": user.name, "key": str(server.client_key)}
             for i, user in enumerate(server.users)]
    projects = []
    for n in counts:
        stage = {"mode": "artifact", "path": GOLIVE_PATH,
                 "hosts": [f"h{i + 1:02d}" for i in range(n)], "parallel": 20,
                 "keep_releases": 2}
        projects.append({"name": f"fan{n}", "stages": ["test", "prod"], "services": [
            {"name": f"app{n}", "repo": str(bench.tree.origin), "main_branch": "main",
             "stages": {"test": stage}}]})
    config = bench.scratch / "golive.yaml"
    config.write_text(yaml.safe_dump({"hosts": hosts, "projects": projects}, sort_keys=False))
    side = GoliveSide(runtime)
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        configuration.apply_file(session, runtime.box, admin, config)
        session.commit()
        for n in counts:
            order = orders.create_order(session, admin, f"fan{n}",
                                        [ItemRequest(f"app{n}", BRANCH)])
            session.commit()
            orders.transition(session, order.id, "submit", admin)
            session.commit()
            side.orders[n] = order.id
    return side


def method_golive(bench: Bench, n: int) -> None:
    from golive.services import deploy as engine
    from golive.services import requests, users

    side = bench.golive
    assert side is not None
    runtime = side.runtime
    with runtime.store.session() as session:
        deployment = requests.request_deployment(session, side.orders[n],
                                               users.ensure_admin(session), stage="test",
                                               kind="full")
        session.commit()
        deployment_id = deployment.id
    side.last_deployment = deployment_id
    if not engine.run_deployment(runtime, deployment_id):
        raise MethodFailed(f"golive deployment {deployment_id} failed: "
                           f"{golive_error(side, deployment_id)}")


def golive_error(side: GoliveSide, deployment_id: int) -> str:
    from golive.store.models import Deployment

    with side.runtime.store.session() as session:
        return session.get_one(Deployment, deployment_id).error


def golive_steps(side: GoliveSide, deployment_id: int) -> dict[str, float]:
    """Seconds from the deployment's start to the end of each kind of step (the last one)."""
    from sqlalchemy import select

    from golive.store.models import Deployment, DeploymentStep

    with side.runtime.store.session() as session:
        deployment = session.get_one(Deployment, deployment_id)
        start = deployment.started_at
        spans: dict[str, float] = {}
        for step in session.scalars(select(DeploymentStep).where(
                DeploymentStep.deployment_id == deployment_id)):
            if step.finished_at is None or start is None:
                continue
            spans[step.name] = max(spans.get(step.name, 0.0),
                                   (step.finished_at - start).total_seconds())
            if step.name == "build" and step.started_at is not None:
                spans["build-duration"] = (step.finished_at - step.started_at).total_seconds()
        if deployment.finished_at is not None and start is not None:
            spans["end"] = (deployment.finished_at - start).total_seconds()
        return spans


def golive_folder(bench: Bench, user: Any) -> Path:
    current = Path(user.home) / GOLIVE_PATH / "current"
    if not current.is_symlink():
        raise MethodFailed(f"host {user.name}: no {GOLIVE_PATH}/current")
    return current.resolve()


def golive_warmup(bench: Bench, counts: list[int]) -> dict[str, float]:
    """The first deploy of each order: builds the artifact (once: "pack once") and pins
    the host keys. Not timed in the table."""
    side = bench.golive
    assert side is not None
    facts: dict[str, float] = {}
    for n in counts:
        started = time.perf_counter()
        method_golive(bench, n)
        spent = time.perf_counter() - started
        bench.verify(n, lambda u: golive_folder(bench, u))
        bench.clean(n)
        if "pack_once" not in facts:
            facts["pack_once"] = golive_steps(side, side.last_deployment).get(
                "build-duration", spent)
            facts["first_deploy"] = spent
    home = Path(os.environ["GOLIVE_HOME"])
    (gz,) = [p for p in home.glob("artifacts/*/*.tar.gz") if p.parent.name != "deltas"]
    bench.archive, bench.zst = gz, gz.with_suffix(".zst")
    return facts


# == delta transfer: one changed file to N hosts (issue 12) ====================================
#
# golive delta (the engine, the hosts' current release known) against golive full
# (--full-transfer) and N parallel `rsync -a --link-dest=../v1` over ssh, in two variants:
# the rebuild kept every other file's mtime, or touched them all. Bytes are counted on the
# wire by a relay in front of sshd, in one extra untimed run per method.

DELTA_METHODS = ("golive-delta", "rsync", "golive-full")
DELTA_LABELS = {
    "golive-delta": "golive delta (deploy: phase one + switch)",
    "golive-full": "golive full transfer (--full-transfer)",
    "rsync": "N x rsync -a --link-dest=../v1 over ssh",
}
VARIANTS = ("keep-mtime", "touch-mtime")
TOUCH_BUILD = "find . -path ./.git -prune -o -type f -exec touch {} +"
"""The touch variant's build command: every file gets a new mtime (golive must not care)."""
FIX = " # fixed\n"
DELTA_TMPFS = "9g"
"""Room for both variants' worst moment: golive's base release and rsync's on every host,
plus rsync's full copies when every mtime changed (20 x 108 MB each)."""


class Relay:
    """A TCP relay in front of sshd counting the bytes each way: the bytes column. Methods
    run through it once, untimed (it costs CPU); the timed runs go to sshd directly."""

    def __init__(self, target_port: int) -> None:
        import asyncio
        import threading

        self.target_port, self.port, self.up, self.down = target_port, 0, 0, 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()

        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(serve()),
                                       name="bench-relay", daemon=True)
        self.thread.start()
        ready.wait(10)

    async def _handle(self, reader: Any, writer: Any) -> None:
        import asyncio

        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(source: Any, sink: Any, upward: bool) -> None:
            try:
                while block := await source.read(256 * 1024):
                    if upward:
                        self.up += len(block)
                    else:
                        self.down += len(block)
                    sink.write(block)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def reset(self) -> None:
        self.up = self.down = 0


@dataclass
class DeltaSide:
    """What the delta benchmark keeps between runs."""

    bench: Bench
    side: GoliveSide
    origin: Path
    n: int
    changed: str
    """The file the one-line fix changes (a source file of median size)."""
    relay: Relay
    projects: dict[str, str] = field(default_factory=dict)
    base: dict[str, str] = field(default_factory=dict)
    """variant → the release every host serves before a timed run (made by a full deploy)."""
    facts: dict[str, Any] = field(default_factory=dict)

    def path(self, variant: str) -> str:
        return f"srv/{variant}"


def _pick_changed(origin: Path) -> str:
    """The source file whose size is the median of the tree's text files."""
    listing = _git(origin, "ls-tree", "-r", "-l", "main").splitlines()
    sized = sorted((int(line.split()[3]), line.split("\t", 1)[1]) for line in listing
                   if line.split("\t", 1)[1].startswith("src/"))
    return sized[len(sized) // 2][1]


def _one_line_fix(origin: Path, branch: str, rel: str, work: Path) -> None:
    """Commit the fix on ``branch``: the middle line of ``rel`` gets a comment."""
    shutil.rmtree(work, ignore_errors=True)
    _git(origin.parent, "clone", "-q", "-b", branch, str(origin), str(work))
    lines = (work / rel).read_text().splitlines(keepends=True)
    middle = len(lines) // 2
    lines[middle] = lines[middle].rstrip("\n") + FIX
    (work / rel).write_text("".join(lines))
    _git(work, "commit", "-q", "-am", "a one-line fix")
    _git(work, "push", "-q", "origin", branch)
    shutil.rmtree(work)


def delta_setup(bench: Bench, n: int) -> DeltaSide:
    """golive's store, the hosts, one project per variant (each on its own branch, made
    from the feature branch) and the relay."""
    import yaml

    from golive.services import configuration, orders, users
    from golive.services.orders import ItemRequest
    from golive.services.runtime import open_runtime
    from golive.settings import get_settings

    origin = bench.scratch / "origin.git"
    _git(bench.scratch, "clone", "-q", "--bare", str(bench.tree.origin), str(origin))
    for variant in VARIANTS:
        _git(origin, "branch", f"bench-{variant}", BRANCH)
    home = bench.scratch / "golive-home"
    for name in ("GOLIVE_DATABASE_URL", "GOLIVE_SECRET_KEY", "GOLIVE_USER", "GOLIVE_URL",
                 "GOLIVE_TOKEN"):
        os.environ.pop(name, None)
    os.environ["GOLIVE_HOME"] = str(home)
    runtime = open_runtime(get_settings())
    server = bench.server
    hosts = [{"name": f"h{i + 1:02d}", "address": server.host, "port": server.port,
              "user": user.name, "key": str(server.client_key)}
             for i, user in enumerate(server.users[:n])]
    projects = []
    for variant in VARIANTS:
        stage = {"mode": "artifact", "path": f"srv/{variant}", "parallel": n,
                 "hosts": [h["name"] for h in hosts], "keep_releases": 2}
        service = {"name": f"app-{variant}", "repo": str(origin), "main_branch": "main",
                   "stages": {"test": stage}}
        if variant == "touch-mtime":
            service["build"] = TOUCH_BUILD
        projects.append({"name": f"delta-{variant}", "stages": ["test", "prod"],
                         "services": [service]})
    config = bench.scratch / "golive-delta.yaml"
    config.write_text(yaml.safe_dump({"hosts": hosts, "projects": projects}, sort_keys=False))
    side = GoliveSide(runtime)
    with runtime.store.session() as session:
        admin = users.ensure_admin(session)
        configuration.apply_file(session, runtime.box, admin, config)
        session.commit()
        for index, variant in enumerate(VARIANTS):
            order = orders.create_order(session, admin, f"delta-{variant}",
                                        [ItemRequest(f"app-{variant}", f"bench-{variant}")])
            session.commit()
            orders.transition(session, order.id, "submit", admin)
            session.commit()
            side.orders[index] = order.id
    relay = Relay(server.port)
    return DeltaSide(bench, side, origin, n, _pick_changed(origin), relay)


def _golive_deploy(ds: DeltaSide, variant: str, *, full_transfer: bool) -> int:
    from golive.services import deploy as engine
    from golive.services import requests, users

    runtime = ds.side.runtime
    with runtime.store.session() as session:
        deployment = requests.request_deployment(
            session, ds.side.orders[VARIANTS.index(variant)], users.ensure_admin(session),
            stage="test", kind="full", full_transfer=full_transfer)
        session.commit()
        deployment_id = deployment.id
    ds.side.last_deployment = deployment_id
    if not engine.run_deployment(runtime, deployment_id):
        raise MethodFailed(f"golive deployment {deployment_id} failed: "
                           f"{golive_error(ds.side, deployment_id)}")
    return deployment_id


def _cold_delta_cache() -> None:
    """Each timed delta deploy makes its delta stream again (as the first deploy of a new
    release does): the stream cache and the parsed manifests are dropped."""
    from golive.services import artifacts

    shutil.rmtree(Path(os.environ["GOLIVE_HOME"]) / "artifacts" / "deltas", ignore_errors=True)
    artifacts._known.clear()


def _golive_hosts_port(ds: DeltaSide, port: int) -> None:
    """Point golive's hosts at sshd or at the relay (the pinned host key stays)."""
    from sqlalchemy import update

    from golive.store.models import Host

    with ds.side.runtime.store.session() as session:
        session.execute(update(Host).values(port=port))
        session.commit()


def _golive_current(user: Any, variant: str) -> str:
    return os.readlink(Path(user.home) / "srv" / variant / "current").split("/")[-1]


def _golive_reset(ds: DeltaSide, variant: str) -> None:
    """Every host back on the base release: the run's release and manifest removed (root)."""
    for user in ds.bench.users(ds.n):
        base = Path(user.home) / "srv" / variant
        rid = _golive_current(user, variant)
        if rid == ds.base[variant]:
            continue
        shutil.rmtree(base / "releases" / rid)
        for leftover in (base / "manifests").glob(f"{rid}*"):
            leftover.unlink()
        link = base / "current"
        temp = base / ".current-bench"
        os.symlink(f"releases/{ds.base[variant]}", temp)
        os.lchown(temp, user.uid, user.gid)
        os.replace(temp, link)


def _verify_tree(ds: DeltaSide, root: Callable[[Any], Path], extra: int) -> None:
    """Every host holds the fixed tree: file count, total size, and the fixed line."""
    tree = ds.bench.tree
    ds.bench.tree = Tree(tree.origin, tree.files, tree.bytes + extra)
    try:
        ds.bench.verify(ds.n, root)
    finally:
        ds.bench.tree = tree
    for user in ds.bench.users(ds.n):
        if FIX not in (root(user) / ds.changed).read_text():
            raise MethodFailed(f"host {user.name}: {ds.changed} is not the fixed one")


def _rsync_ssh(ds: DeltaSide, port: int) -> str:
    server = ds.bench.server
    return subprocess.list2cmdline([
        "ssh", "-F", "/dev/null", "-i", str(server.client_key), "-p", str(port),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"HostKeyAlias=[{server.host}]:{server.port}", "-o", "ControlMaster=no",
        "-o", "LogLevel=ERROR"])


def _rsync(ds: DeltaSide, source: Path, port: int) -> None:
    server = ds.bench.server
    run_all([["rsync", "-a", "--link-dest=../v1", "-e", _rsync_ssh(ds, port), f"{source}/",
              f"{user.name}@{server.host}:bench/rsync/next/"] for user in ds.bench.users(ds.n)])


def _rsync_sources(ds: DeltaSide, variant: str) -> tuple[Path, Path]:
    """v1 (golive's v1 archive unpacked: the same files, modes and mtimes) and v2 (a copy,
    the one-line fix applied; for the touch variant every mtime new)."""
    folder = ds.bench.scratch / "rsync"
    v1, v2 = folder / "v1", folder / f"v2-{variant}"
    if not v1.exists():
        v1.mkdir(parents=True)
        archive = ds.facts["v1_archive"]
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(v1)], check=True)
    shutil.rmtree(v2, ignore_errors=True)
    subprocess.run(["cp", "-a", str(v1), str(v2)], check=True)
    target = v2 / ds.changed
    lines = target.read_text().splitlines(keepends=True)
    lines[len(lines) // 2] = lines[len(lines) // 2].rstrip("\n") + FIX
    target.write_text("".join(lines))
    if variant == "touch-mtime":
        subprocess.run(["find", str(v2), "-type", "f", "-exec", "touch", "{}", "+"], check=True)
    return v1, v2


def _rsync_bases(ds: DeltaSide, v1: Path) -> None:
    """Every host gets bench/rsync/v1 (a copy of v1 with its mtimes, as a first rsync would
    leave it), untimed."""
    for user in ds.bench.users(ds.n):
        dest = Path(user.home) / "bench" / "rsync"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(v1), str(dest / "v1")], check=True)
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(Path(user.home) / "bench")],
                       check=True)


def _rsync_reset(ds: DeltaSide) -> None:
    for user in ds.bench.users(ds.n):
        shutil.rmtree(Path(user.home) / "bench" / "rsync" / "next", ignore_errors=True)


@dataclass
class DeltaResults:
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    wire: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """(variant, method) → bytes to the hosts, bytes back (one run through the relay)."""
    payload: dict[tuple[str, str], int] = field(default_factory=dict)
    """golive's own count of what it uploaded (its receive steps), summed over the hosts."""
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    spans: dict[tuple[str, str], list[dict[str, float]]] = field(default_factory=dict)
    """golive's steps: seconds from the deployment's start to the end of each kind."""

    def median(self, variant: str, method: str) -> Sample | None:
        runs = self.samples.get((variant, method))
        if not runs or (variant, method) in self.failures:
            return None
        return Sample(statistics.median(s.wall for s in runs),
                      statistics.median(s.cpu for s in runs),
                      statistics.median(s.host_cpu for s in runs))


def _golive_payload(ds: DeltaSide, deployment_id: int) -> int:
    from sqlalchemy import select

    from golive.store.models import DeploymentStep

    with ds.side.runtime.store.session() as session:
        return sum(int((s.data or {}).get("sent", 0)) for s in session.scalars(
            select(DeploymentStep).where(DeploymentStep.deployment_id == deployment_id,
                                         DeploymentStep.name == "receive")))


def _delta_run(ds: DeltaSide, variant: str, method: str, results: DeltaResults,
               keep: set[int], sources: tuple[Path, Path], *, wire: bool = False) -> None:
    """One run of ``method``: timed (or through the relay for the bytes), verified, reset."""
    key = (variant, method)
    if key in results.failures:
        return
    port = ds.relay.port if wire else ds.bench.server.port
    path = ds.path(variant)
    golive = method.startswith("golive")
    if method == "golive-delta":
        _cold_delta_cache()
    if golive:
        _golive_hosts_port(ds, port)

    def body() -> None:
        if golive:
            _golive_deploy(ds, variant, full_transfer=method == "golive-full")
        else:
            _rsync(ds, sources[1], port)

    def root(u: Any) -> Path:
        if golive:
            return Path(u.home) / path / "current"
        return Path(u.home) / "bench" / "rsync" / "next"
    ds.relay.reset()
    try:
        sample = measure(body, ds.bench.meter, keep)
        _verify_tree(ds, root, len(FIX) - 1)
    except (MethodFailed, subprocess.TimeoutExpired) as exc:
        results.failures[key] = str(exc)
        say(f"  {variant:<12} {method:<13} FAILED: {exc}")
    else:
        if wire:
            results.wire[key] = (ds.relay.up, ds.relay.down)
            if method.startswith("golive"):
                results.payload[key] = _golive_payload(ds, ds.side.last_deployment)
            say(f"  {variant:<12} {method:<13} bytes to hosts {ds.relay.up / 1e6:8.3f} MB, "
                f"back {ds.relay.down / 1e6:6.3f} MB (through the relay)")
        else:
            results.samples.setdefault(key, []).append(sample)
            extra = ""
            if golive:
                spans = golive_steps(ds.side, ds.side.last_deployment)
                results.spans.setdefault(key, []).append(spans)
                extra = "  (" + ", ".join(f"{k} at {v:.2f}s" for k, v in spans.items()
                                          if k in ("build", "receive", "switch", "end")) + ")"
            say(f"  {variant:<12} {method:<13} wall {sample.wall:6.2f}s  control CPU "
                f"{sample.cpu:6.2f}s  host CPU {sample.host_cpu:6.2f}s{extra}")
    finally:
        if method.startswith("golive"):
            _golive_hosts_port(ds, ds.bench.server.port)
            _golive_reset(ds, variant)
        else:
            _rsync_reset(ds)


def _variant(ds: DeltaSide, variant: str, repeat: int, results: DeltaResults,
             keep: set[int]) -> None:
    """Base release, the fix, a warm-up, then the timed runs (golive delta and rsync
    interleaved, then golive full), each method once more through the relay."""
    say(f"{variant}: the base release (full deploy of v1 to {ds.n} hosts, untimed) ...")
    started = time.perf_counter()
    _golive_deploy(ds, variant, full_transfer=False)
    ds.facts[f"{variant}_base_deploy"] = time.perf_counter() - started
    users = ds.bench.users(ds.n)
    ds.base[variant] = _golive_current(users[0], variant)
    home = Path(os.environ["GOLIVE_HOME"])
    if "v1_archive" not in ds.facts:
        (gz,) = [p for p in home.glob("artifacts/*/*.tar.gz") if p.parent.name != "deltas"]
        ds.facts["v1_archive"] = gz
    _one_line_fix(ds.origin, f"bench-{variant}", ds.changed, ds.bench.scratch / "fix")
    say(f"{variant}: warm-up (builds the fixed release's artifact once, untimed) ...")
    started = time.perf_counter()
    _golive_deploy(ds, variant, full_transfer=False)
    ds.facts[f"{variant}_first_delta_deploy"] = time.perf_counter() - started
    _verify_tree(ds, lambda u: Path(u.home) / ds.path(variant) / "current", len(FIX) - 1)
    _golive_reset(ds, variant)
    sources = _rsync_sources(ds, variant)
    _rsync_bases(ds, sources[0])
    pair = ["golive-delta", "rsync"]
    for run in range(repeat):
        for method in pair[run % 2:] + pair[:run % 2]:
            _delta_run(ds, variant, method, results, keep, sources)
    for method in pair:
        _delta_run(ds, variant, method, results, keep, sources, wire=True)
    for user in users:  # room on the tmpfs for the full releases
        shutil.rmtree(Path(user.home) / "bench", ignore_errors=True)
    for _ in range(repeat):
        _delta_run(ds, variant, "golive-full", results, keep, sources)
    _delta_run(ds, variant, "golive-full", results, keep, sources, wire=True)
    for user in users:
        shutil.rmtree(Path(user.home) / "srv", ignore_errors=True)


def delta_table(results: DeltaResults, variant: str) -> tuple[list[str], dict[str, Any]]:
    lines = [f"{variant}", f"{'method':<44} {'wall s':>7} {'ctl CPU s':>9} {'host CPU s':>10} "
             f"{'to hosts MB':>11} {'both ways MB':>12}"]
    summary: dict[str, Any] = {}
    for method in DELTA_METHODS:
        key = (variant, method)
        if key in results.failures:
            lines.append(f"{DELTA_LABELS[method]:<44} FAILED: {results.failures[key][-200:]}")
            continue
        median = results.median(variant, method)
        up, down = results.wire.get(key, (0, 0))
        if median is None:
            continue
        lines.append(f"{DELTA_LABELS[method]:<44} {median.wall:7.2f} {median.cpu:9.2f} "
                     f"{median.host_cpu:10.2f} {up / 1e6:11.3f} {(up + down) / 1e6:12.3f}")
        summary[method] = {"wall": median.wall, "cpu": median.cpu, "host_cpu": median.host_cpu,
                           "bytes_up": up, "bytes_down": down,
                           "golive_payload": results.payload.get(key)}
    delta, rsync = summary.get("golive-delta"), summary.get("rsync")
    if delta and rsync:
        summary["goal"] = {"wall_ratio": delta["wall"] / rsync["wall"],
                           "bytes_ratio": (delta["bytes_up"] + delta["bytes_down"])
                           / max(rsync["bytes_up"] + rsync["bytes_down"], 1)}
        met = summary["goal"]["wall_ratio"] <= 1.0 and summary["goal"]["bytes_ratio"] <= 1.0
        lines.append(f"golive delta / rsync: wall {summary['goal']['wall_ratio']:.2f}x, bytes "
                     f"{summary['goal']['bytes_ratio']:.2f}x — goal "
                     f"{'MET' if met else 'NOT MET'}")
    return lines, summary


def main_delta(args: argparse.Namespace) -> int:
    """The delta benchmark: N hosts (the largest --hosts), both variants."""
    from golive.testing.sshd import ssh_server

    n = max(args.counts)
    if shutil.which("rsync") is None:
        say("rsync is not installed: scripts/system-packages.sh installs it")
        return 2
    tree = test_tree()
    results = DeltaResults()
    started_at = datetime.now().astimezone()
    with scratch_dir() as scratch, ssh_server(scratch / "sshd", hosts=n,
                                              tmpfs_size=DELTA_TMPFS) as server:
        bench = Bench(server, tree, scratch, HostMeter(server.pid))
        ds = delta_setup(bench, n)
        say(f"sshd on 127.0.0.1:{server.port}, {n} hosts; {tree.files} files, "
            f"{tree.bytes / 1e6:.1f} MB; the fix changes one line of {ds.changed}; relay on "
            f"port {ds.relay.port}")
        for variant in VARIANTS:
            _variant(ds, variant, args.repeat, results, {server.pid})
        ds.side.runtime.close()
    say("")
    say(f"Delta results ({started_at:%Y-%m-%d %H:%M %Z}, {os.cpu_count()} CPUs, N = {n}, "
        f"median of {args.repeat}; bytes on the wire, one run through the relay):")
    report: dict[str, Any] = {"date": started_at.isoformat(), "cpus": os.cpu_count(), "n": n,
                              "repeat": args.repeat, "changed": ds.changed,
                              "facts": {k: str(v) if isinstance(v, Path) else v
                                        for k, v in ds.facts.items()}, "variants": {}}
    for variant in VARIANTS:
        lines, summary = delta_table(results, variant)
        say("")
        for line in lines:
            say(line)
        report["variants"][variant] = {
            "summary": summary,
            "samples": {m: [s.__dict__ for s in results.samples.get((variant, m), [])]
                        for m in DELTA_METHODS},
            "golive_steps": {m: results.spans.get((variant, m), []) for m in DELTA_METHODS},
            "failures": {m: why for (v, m), why in results.failures.items() if v == variant}}
    out = args.json or CACHE / f"delta-{started_at:%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    say(f"(raw results: {out})")
    return 0


# == the optional tools =====================================================================


def tool_venv(name: str, package: str, probe: str) -> tuple[Path | None, str]:
    """(bin folder of bench/.venvs/NAME with PACKAGE installed, "") or (None, why not)."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    ok = python.exists() and subprocess.run(
        [str(python), "-c", probe], capture_output=True, stdin=subprocess.DEVNULL).returncode == 0
    if ok:
        return venv / "bin", ""
    say(f"installing {package} into {venv} (once) ...")
    made = subprocess.run(["python3", "-m", "venv", str(venv)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if made.returncode != 0:
        return None, f"python3 -m venv failed: {made.stderr.strip()[-300:]}"
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", package],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if pip.returncode != 0:
        return None, f"pip install {package} failed: {(pip.stderr or pip.stdout).strip()[-300:]}"
    check = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
    if check.returncode != 0:
        return None, f"{package} installed but does not import: {check.stderr.strip()[-300:]}"
    return venv / "bin", ""


# == the run ==================================================================================


@dataclass
class Results:
    samples: dict[tuple[int, str], list[Sample]] = field(default_factory=dict)
    failures: dict[tuple[int, str], str] = field(default_factory=dict)
    golive_spans: dict[int, list[dict[str, float]]] = field(default_factory=dict)

    def median(self, n: int, method: str) -> Sample | None:
        runs = self.samples.get((n, method))
        if not runs or (n, method) in self.failures:
            return None
        return Sample(statistics.median(s.wall for s in runs),
                      statistics.median(s.cpu for s in runs),
                      statistics.median(s.host_cpu for s in runs))


def run_method(bench: Bench, method: str, n: int, results: Results, keep: set[int]) -> None:
    key = (n, method)
    if key in results.failures:
        return
    bodies: dict[str, Callable[[], tuple[float, float] | None]] = {
        "golive": lambda: method_golive(bench, n),
        "stream": lambda: method_stream(bench, n),
        "upload": lambda: method_upload(bench, n),
        "seq": lambda: method_seq(bench, n),
        "fabric": lambda: method_fabric(bench, n),
        "ansible": lambda: method_ansible(bench, n),
        "stream-gcm": lambda: method_stream(bench, n, "aes128-gcm@openssh.com"),
    }
    folders: dict[str, Callable[[Any], Path]] = {
        "golive": lambda u: golive_folder(bench, u),
        **{m: (lambda u, m=m: Path(u.home) / "bench" / m)
           for m in ("stream", "upload", "seq", "fabric", "ansible", "stream-gcm")},
    }
    bench.clean(n)
    try:
        sample = measure(bodies[method], bench.meter, keep)
        bench.verify(n, folders[method])
    except (MethodFailed, subprocess.TimeoutExpired) as exc:
        results.failures[key] = str(exc)
        say(f"  N={n:<2} {method:<10} FAILED: {exc}")
        bench.clean(n)
        return
    bench.clean(n)
    results.samples.setdefault(key, []).append(sample)
    extra = ""
    if method == "golive" and bench.golive is not None:
        spans = golive_steps(bench.golive, bench.golive.last_deployment)
        results.golive_spans.setdefault(n, []).append(spans)
        extra = "  (" + ", ".join(f"{k} at {v:.2f}s" for k, v in spans.items()
                                  if k in ("build", "receive", "switch", "end")) + ")"
    say(f"  N={n:<2} {method:<10} wall {sample.wall:6.2f}s  control CPU {sample.cpu:6.2f}s  "
        f"host CPU {sample.host_cpu:6.2f}s{extra}")


def table(results: Results, n: int, methods: list[str], bench: Bench) -> tuple[list[str], dict]:
    lines = [f"N = {n}", f"{'method':<44} {'wall s':>8} {'ctl CPU s':>10} {'host CPU s':>11}"]
    for method in methods:
        if method in bench.unavailable:
            lines.append(f"{LABELS[method]:<44} not run: {bench.unavailable[method]}")
            continue
        if (n, method) in results.failures:
            why = " ".join(results.failures[(n, method)].split())
            lines.append(f"{LABELS[method]:<44} FAILED: {why[-200:]}")
            continue
        median = results.median(n, method)
        if median is None:
            continue
        lines.append(f"{LABELS[method]:<44} {median.wall:8.2f} {median.cpu:10.2f} "
                     f"{median.host_cpu:11.2f}")
    summary: dict[str, Any] = {}
    golive = results.median(n, "golive")
    raws = [(m, results.median(n, m)) for m in RAW]
    raws = [(m, s) for m, s in raws if s is not None]
    if golive is not None and raws:
        best_method, best = min(raws, key=lambda pair: pair[1].wall)
        wall_ratio = golive.wall / best.wall
        cpu_ratio = golive.cpu / best.cpu if best.cpu > 0 else float("inf")
        summary = {"faster_raw": best_method, "wall_ratio": wall_ratio, "cpu_ratio": cpu_ratio}
        lines.append(f"golive / faster raw OpenSSH ({best_method}, {best.wall:.2f}s): "
                     f"wall {wall_ratio:.2f}x, control CPU {cpu_ratio:.2f}x "
                     f"({golive.cpu:.2f}s vs {best.cpu:.2f}s)")
    same_cipher = results.median(n, "stream-gcm")
    if golive is not None and same_cipher is not None:
        summary["gcm_wall_ratio"] = golive.wall / same_cipher.wall
        summary["gcm_cpu_ratio"] = golive.cpu / same_cipher.cpu
        lines.append(f"(reference) golive / raw stream with golive's cipher (aes128-gcm): "
                     f"wall {summary['gcm_wall_ratio']:.2f}x, control CPU "
                     f"{summary['gcm_cpu_ratio']:.2f}x")
    return lines, summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", default="1,5,20", help="host counts (default 1,5,20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method and N (median)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: N=1,5, one run, no Fabric/Ansible")
    parser.add_argument("--methods", default=",".join(ALL_METHODS),
                        help="comma-separated subset of " + ",".join(ALL_METHODS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--delta", action="store_true",
                        help="the delta benchmark instead: one changed file to N hosts (the "
                             "largest --hosts, default 20), golive delta vs golive full vs "
                             "rsync --link-dest")
    args = parser.parse_args(argv)
    args.counts = [int(x) for x in args.hosts.split(",") if x.strip()]
    args.methods = [m for m in args.methods.split(",") if m.strip()]
    if args.delta:
        args.counts = [max(args.counts)] if args.hosts != "1,5,20" else [20]
        if args.quick:
            args.counts, args.repeat = [2], 1
        return args
    if args.quick:
        args.counts, args.repeat = [1, 5], 1
        args.methods = [m for m in args.methods if m not in ("fabric", "ansible")]
    unknown = set(args.methods) - set(ALL_METHODS)
    if unknown:
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    if not args.counts or min(args.counts) < 1 or max(args.counts) > USERS:
        parser.error(f"host counts must be between 1 and {USERS}")
    return args


def _stop_on_sigterm() -> None:
    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="golive-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        say("bench/fanout.py needs root: the test OpenSSH server adds users and mounts a tmpfs")
        return 2
    _stop_on_sigterm()
    _become_subreaper()
    if args.delta:
        return main_delta(args)
    from golive.testing.sshd import ssh_server

    tree = test_tree()
    methods = list(args.methods)
    results = Results()
    started_at = datetime.now().astimezone()
    with scratch_dir() as scratch, ssh_server(scratch / "sshd", hosts=USERS,
                                              tmpfs_size=TMPFS) as server:
        bench = Bench(server, tree, scratch, HostMeter(server.pid))
        keep = {server.pid}
        if "fabric" in methods:
            path, why = tool_venv("fabric", "fabric", "import fabric")
            bench.fabric_python = path / "python" if path else None
            if why:
                bench.unavailable["fabric"] = why
        if "ansible" in methods:
            path, why = tool_venv("ansible", "ansible-core", "import ansible")
            bench.ansible_bin = path
            if why:
                bench.unavailable["ansible"] = why
        for name, why in bench.unavailable.items():
            say(f"{name}: NOT AVAILABLE, skipped: {why}")
        say(f"sshd on 127.0.0.1:{server.port}, {len(server.users)} users, homes on a "
            f"{TMPFS} tmpfs; {tree.files} files, {tree.bytes / 1e6:.1f} MB unpacked")
        bench.golive = golive_setup(bench, args.counts)
        facts = golive_warmup(bench, args.counts)
        assert bench.archive is not None and bench.zst is not None
        gz_bytes, zst_bytes = bench.archive.stat().st_size, bench.zst.stat().st_size
        gz_mb, zst_mb = gz_bytes / 1e6, zst_bytes / 1e6
        say(f"golive packed the artifact once in {facts['pack_once']:.2f}s: "
            f".tar.gz {gz_mb:.1f} MB (shipped by the other methods), .tar.zst {zst_mb:.1f} MB "
            f"(golive ships it: the hosts have zstd)")
        runnable = [m for m in methods if m not in bench.unavailable]
        for n in args.counts:
            for repeat in range(args.repeat):
                order = runnable[repeat % len(runnable):] + runnable[:repeat % len(runnable)]
                say(f"N={n}, run {repeat + 1} of {args.repeat}: {', '.join(order)}")
                for method in order:
                    run_method(bench, method, n, results, keep)
        bench.golive.runtime.close()

    say("")
    say(f"Results ({started_at:%Y-%m-%d %H:%M %Z}, {os.cpu_count()} CPUs, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"median of {args.repeat}; wall = elapsed, ctl CPU = control side user+sys, "
        f"host CPU = sshd sessions + tar on the hosts):")
    report: dict[str, Any] = {"date": started_at.isoformat(), "cpus": os.cpu_count(),
                              "repeat": args.repeat, "files": tree.files,
                              "unpacked_bytes": tree.bytes,
                              "gz_bytes": gz_bytes, "zst_bytes": zst_bytes,
                              **facts,
                              "unavailable": bench.unavailable, "n": {}}
    goal_n = max(args.counts)
    goal_summary: dict[str, Any] = {}
    for n in args.counts:
        lines, summary = table(results, n, methods, bench)
        say("")
        for line in lines:
            say(line)
        report["n"][str(n)] = {
            "summary": summary,
            "failures": {m: why for (k, m), why in results.failures.items() if k == n},
            "samples": {m: [s.__dict__ for s in results.samples.get((n, m), [])]
                        for m in methods},
            "golive_steps": results.golive_spans.get(n, []),
        }
        if n == goal_n:
            goal_summary = summary
    say("")
    if goal_n != 20:
        say(f"Goal (golive <= 1.0x the faster raw OpenSSH way at N=20, wall and control "
            f"CPU): not judged, N=20 was not run (largest N {goal_n}).")
    elif not goal_summary:
        say("Goal: not judged (golive or both raw OpenSSH methods failed).")
    else:
        wall_ok = goal_summary["wall_ratio"] <= 1.0
        cpu_ok = goal_summary["cpu_ratio"] <= 1.0
        verdict = "MET" if wall_ok and cpu_ok else "NOT MET"
        say(f"Goal at N=20 (golive <= 1.0x the faster raw OpenSSH way on wall and on control "
            f"CPU): {verdict} — wall {goal_summary['wall_ratio']:.2f}x "
            f"({'ok' if wall_ok else 'over'}), control CPU {goal_summary['cpu_ratio']:.2f}x "
            f"({'ok' if cpu_ok else 'over'})")
    out = args.json or CACHE / f"results-{started_at:%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    say(f"(raw results: {out})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # the with-blocks have run: sshd stopped, test users and tmpfs removed
        say("\ninterrupted: the test OpenSSH server and its users were removed")
        sys.exit(130)
