"""A real OpenSSH server on 127.0.0.1 for tests, with throwaway unix users as "hosts".

::

    with ssh_server(tmp_path / "sshd", hosts=2) as server:
        user = server.users[0]                  # user.name, user.home (on a tmpfs)
        subprocess.run([*server.ssh_args(user), "echo ok"], check=True)
        server.stop(); server.start()           # same port, same keys
        server.rotate_host_key()                # clients now see a changed host key
        full = server.small_disk(user, "1m")    # a tiny tmpfs inside the user's home

Needs root, ``/usr/sbin/sshd`` and ``ssh-keygen``. What it makes, and why:

* ``workdir``: the host key, the client key pair (ed25519, no passphrase), an
  ``sshd_config`` of its own, the pid file, ``sshd.log``, a ``known_hosts`` file
  pinning the host key for ``[127.0.0.1]:PORT`` and a ``hosts`` symlink to the homes.
* A tmpfs at ``/run/golive-sshd/<prefix>``: the users' homes (``home/<user>``) and
  their authorized keys (``authorized/<user>``). Not under ``workdir``: sshd reads
  the authorized keys file as the user and the user must reach its home, and
  pytest's temporary folders are mode 700. A tmpfs because files written by
  non-root users on the root filesystem of the test machines are very slow.
* Users ``glt<6 hex><i>`` (unique per server, so pytest-xdist workers never
  collide), unlocked for key login (``usermod -p '*'``: with ``UsePAM no`` sshd
  refuses locked ``!`` accounts) or with the given password.
* ``/run/sshd`` (mode 755): sshd's privilege separation folder; it refuses to
  start without it.
* sshd runs in the foreground (``-D``) as a child of this process (still writing
  its PidFile), so it is reaped as soon as it stops: PID 1 on the test machines
  reaps orphans late, a daemonized sshd would linger as a zombie and look alive.
  It is also made the subreaper of its sessions' processes, so that killed
  sessions and daemonized leftovers are reaped at once too.

On exit everything is undone, even if the body raised: sshd and every process of
the test users are killed by pid, the mounts are unmounted (lazily if busy), the
users are deleted. A record in ``/run/golive-sshd/<prefix>.json`` lets a later
server sweep what a killed test process left behind (only records whose owner
process is gone).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import json
import os
import pwd
import random
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
HOST = "127.0.0.1"
RUN_ROOT = Path("/run/golive-sshd")
PRIVSEP_DIR = Path("/run/sshd")
USER_PREFIX = "glt"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40
# Ports are drawn below the kernel's ephemeral range, which bind(0) and every
# outgoing connection draw from: a port found free there could be taken by a
# client socket of a parallel test before sshd binds it (or binds it again on start()).
PORT_RANGE = (20000, 32000)


class SshServerError(RuntimeError):
    """The test sshd could not be set up, started, stopped or cleaned up."""


@dataclass(frozen=True)
class SshUser:
    """One test user: a "host" to deploy to, its home on the server's tmpfs."""

    name: str
    home: Path
    uid: int
    gid: int


@dataclass
class _Record:
    """What a server made, on disk, so a later run can undo it if this one was killed."""

    prefix: str
    owner_pid: int
    owner_start: str
    root: str
    config: str
    users: list[str] = field(default_factory=list)
    sshd_pid: int = 0

    @property
    def path(self) -> Path:
        return RUN_ROOT / f"{self.prefix}.json"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, self.path)


@dataclass(eq=False)
class SshServer:
    """A running (or stopped) test sshd; see :func:`ssh_server`."""

    port: int
    host_public_key: str
    """The host key as an OpenSSH public key line (``ssh-ed25519 AAAA... comment``)."""
    host_key_path: Path
    client_key: Path
    """The client's private key (ed25519, no passphrase), authorized for every user."""
    client_public_key: str
    users: list[SshUser]
    log_path: Path
    pid: int
    """The sshd listener's pid; 0 while stopped."""
    workdir: Path
    config_path: Path
    root: Path
    """The tmpfs holding the homes (``root/home``) and authorized keys (``root/authorized``)."""
    known_hosts: Path
    """A known_hosts file pinning the current host key for ``[127.0.0.1]:port``."""
    password: str | None = field(default=None, repr=False)
    host: str = HOST
    _record: _Record | None = field(default=None, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _disks: int = field(default=0, repr=False)

    # -- facts ------------------------------------------------------------------

    @property
    def host_key_fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -l`` and asyncssh print it."""
        return fingerprint(self.host_public_key)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def user(self, name: str) -> SshUser:
        for user in self.users:
            if user.name == name:
                return user
        raise KeyError(name)

    def ssh_args(self, user: SshUser | str, *, key: Path | None = None,
                 known_hosts: Path | None = None) -> list[str]:
        """The system ``ssh`` client's argv to log in as ``user`` (append the command).

        Batch mode, the test key only, strict host key checking against
        ``known_hosts`` (default: the server's own file), no user or system config.
        """
        name = user.name if isinstance(user, SshUser) else user
        return ["ssh", "-F", "/dev/null", "-i", str(key or self.client_key),
                "-p", str(self.port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={known_hosts or self.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR", f"{name}@{self.host}"]

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start sshd on ``port`` with the current config and keys; wait until it answers."""
        if self.running:
            raise SshServerError(f"sshd already running (pid {self.pid})")
        self._reap()
        pidfile = self.workdir / "sshd.pid"
        pidfile.unlink(missing_ok=True)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.workdir / "sshd.stderr", "ab") as stderr:
            proc = subprocess.Popen(
                [SSHD, "-D", "-f", str(self.config_path), "-E", str(self.log_path)],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, preexec_fn=_subreaper())
        self._proc, self.pid = proc, proc.pid
        if self._record is not None:
            self._record.sshd_pid = proc.pid
            self._record.save()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            code = proc.poll()
            if code is not None:
                self._proc, self.pid = None, 0
                raise SshServerError(f"sshd on port {self.port} exited with {code} at start:\n"
                                     f"{self._log_tail(log_offset)}")
            if _pid_in(pidfile) == proc.pid and _answers(self.host, self.port):
                return
            if time.monotonic() > deadline:
                self._stop(signal.SIGKILL, sessions=True)
                raise SshServerError(f"sshd on port {self.port} did not answer within "
                                     f"{START_TIMEOUT:.0f}s:\n{self._log_tail(log_offset)}")
            time.sleep(0.02)

    def stop(self, *, sessions: bool = True) -> None:
        """SIGTERM sshd and wait until it is gone; with ``sessions`` (the default) also
        kill the open connections and every process of the test users, so that a
        deployment in flight breaks as if the host went away."""
        self._stop(signal.SIGTERM, sessions=sessions)

    def kill(self, *, sessions: bool = True) -> None:
        """Like :meth:`stop` with SIGKILL: sshd gets no chance to clean up."""
        self._stop(signal.SIGKILL, sessions=sessions)

    def rotate_host_key(self) -> str:
        """A new host key (restarting sshd if it ran); rewrites ``known_hosts``.

        Copy ``known_hosts`` (or keep ``host_public_key``) first to test a client
        that still pins the old key. Returns the new public key line.
        """
        was_running = self.running
        if was_running:
            self.stop()
        self.host_public_key = _keygen(self.host_key_path, f"golive-test-host-{self.port}")
        self._write_known_hosts()
        if was_running:
            self.start()
        return self.host_public_key

    # -- helpers for tests ------------------------------------------------------

    def authorize(self, user: SshUser | str, public_key: str) -> None:
        """Also accept ``public_key`` (an OpenSSH public key line) for ``user``."""
        name = user.name if isinstance(user, SshUser) else user
        path = self.root / "authorized" / name
        with open(path, "a") as out:
            out.write(public_key.strip() + "\n")

    def small_disk(self, user: SshUser | str, size: str = "1m") -> Path:
        """A tmpfs of ``size`` owned by ``user``, mounted at a new folder in its home
        (for "disk full" tests); unmounted when the server is cleaned up."""
        owner = user if isinstance(user, SshUser) else self.user(user)
        self._disks += 1
        path = owner.home / f"small-disk-{self._disks}"
        path.mkdir()
        _run(["mount", "-t", "tmpfs", "-o",
              f"size={size},mode=755,uid={owner.uid},gid={owner.gid}",
              f"golive-small-disk-{owner.name}", str(path)])
        os.chown(path, owner.uid, owner.gid)
        return path

    # -- internals --------------------------------------------------------------

    def _stop(self, sig: signal.Signals, *, sessions: bool) -> None:
        proc = self._proc
        running = proc is not None and proc.poll() is None
        names = [u.name for u in self.users]
        if proc is not None and running:
            if sessions:
                # Freeze the listener (it accepts nothing new), kill its connection
                # processes and every process of the users, then let it reap them: it
                # is their subreaper, while orphans of a dead listener stay zombies
                # until PID 1 gets to them (late, on the test machines).
                _signal(proc.pid, signal.SIGSTOP)
                try:
                    victims = _kill_user_processes(self._uids(), names, parent=proc.pid)
                finally:
                    _signal(proc.pid, signal.SIGCONT)
                _wait_reaped(victims, STOP_TIMEOUT)
            _signal(proc.pid, sig)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        self._proc, self.pid = None, 0
        if sessions:
            _kill_user_processes(self._uids(), names)

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc, self.pid = None, 0

    def _uids(self) -> set[int]:
        return {u.uid for u in self.users}

    def _write_known_hosts(self) -> None:
        key = " ".join(self.host_public_key.split()[:2])
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {key}\n")

    def _log_tail(self, offset: int = 0) -> str:
        parts = []
        for path in (self.log_path, self.workdir / "sshd.stderr"):
            try:
                with open(path, "rb") as f:
                    f.seek(offset if path == self.log_path else 0)
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            lines = text.splitlines()[-LOG_TAIL_LINES:]
            if lines:
                parts.append(f"--- {path} ---\n" + "\n".join(lines))
        return "\n".join(parts) or "(sshd wrote nothing)"


class SshServerFactory(Protocol):
    """The ``sshd_factory`` fixture: a new server per call, all cleaned up at teardown."""

    def __call__(self, hosts: int = 1, *, password: str | None = None,
                 tmpfs_size: str = "512m") -> SshServer: ...


def fingerprint(public_key: str) -> str:
    """The SHA256 fingerprint of an OpenSSH public key line."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@contextlib.contextmanager
def ssh_server(workdir: Path, hosts: int = 1, *, password: str | None = None,
               tmpfs_size: str = "512m") -> Iterator[SshServer]:
    """A running OpenSSH server on 127.0.0.1 with ``hosts`` test users; undone on exit."""
    if os.geteuid() != 0:
        raise SshServerError("the test sshd needs root (useradd, mount)")
    if not os.access(SSHD, os.X_OK):
        raise SshServerError(f"{SSHD} is missing: install openssh-server "
                             "(scripts/apt-packages.txt, `make system-packages`)")
    if hosts < 1:
        raise ValueError("hosts must be at least 1")
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    _prepare_run_dirs()
    sweep_stale()
    with _user_db_lock():
        prefix = _new_prefix()
        record = _Record(prefix=prefix, owner_pid=os.getpid(),
                         owner_start=_start_time(os.getpid()) or "",
                         root=str(RUN_ROOT / prefix), config=str(workdir / "sshd_config"))
        record.save()
    server: SshServer | None = None
    try:
        root = Path(record.root)
        root.mkdir(mode=0o755)
        _run(["mount", "-t", "tmpfs", "-o", f"size={tmpfs_size},mode=755",
              f"golive-sshd-{prefix}", str(root)])
        (root / "home").mkdir(mode=0o755)
        (root / "authorized").mkdir(mode=0o755)
        link = workdir / "hosts"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(root / "home")

        host_key = workdir / "ssh_host_ed25519_key"
        client_key = workdir / "client_ed25519"
        host_public = _keygen(host_key, f"golive-test-host-{prefix}")
        client_public = _keygen(client_key, f"golive-test-client-{prefix}")
        server = SshServer(
            port=0, host_public_key=host_public, host_key_path=host_key,
            client_key=client_key, client_public_key=client_public, users=[],
            log_path=workdir / "sshd.log", pid=0, workdir=workdir,
            config_path=Path(record.config), root=root, known_hosts=workdir / "known_hosts",
            password=password, _record=record)
        for i in range(hosts):
            server.users.append(_add_user(record, f"{prefix}{i}", root, password))
            (root / "authorized" / f"{prefix}{i}").write_text(client_public + "\n")
        _prepare_privsep_dir()
        _start_on_free_port(server, prefix)
        yield server
    except BaseException as exc:
        for problem in _cleanup(record, server):
            exc.add_note(f"test sshd cleanup: {problem}")
        raise
    else:
        problems = _cleanup(record, server)
        if problems:
            raise SshServerError("test sshd cleanup failed: " + "; ".join(problems))


def sweep_stale() -> list[str]:
    """Undo what servers of dead processes left (records in /run/golive-sshd).

    Returns the prefixes swept. Servers of live processes are never touched.
    """
    swept: list[str] = []
    if not RUN_ROOT.is_dir():
        return swept
    with _user_db_lock():
        for path in sorted(RUN_ROOT.glob("*.json")):
            try:
                record = _Record(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if _start_time(record.owner_pid) == record.owner_start:
                continue
            _cleanup(record, None)
            swept.append(record.prefix)
    return swept


# -- setup ------------------------------------------------------------------------


def _prepare_run_dirs() -> None:
    RUN_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    st = RUN_ROOT.lstat()
    if st.st_uid != 0 or not RUN_ROOT.is_dir() or RUN_ROOT.is_symlink():
        raise SshServerError(f"{RUN_ROOT} must be a folder owned by root")
    os.chmod(RUN_ROOT, 0o755)


def _prepare_privsep_dir() -> None:
    """sshd refuses to start unless /run/sshd exists, owned by root, not group/world-writable."""
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(PRIVSEP_DIR, 0, 0)
    os.chmod(PRIVSEP_DIR, 0o755)


def _new_prefix() -> str:
    while True:
        prefix = f"{USER_PREFIX}{secrets.token_hex(3)}"
        if (RUN_ROOT / f"{prefix}.json").exists():
            continue
        if any(p.pw_name.startswith(prefix) for p in pwd.getpwall()):
            continue
        return prefix


def _keygen(path: Path, comment: str) -> str:
    for old in (path, path.with_name(path.name + ".pub")):
        old.unlink(missing_ok=True)
    _run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_name(path.name + ".pub").read_text().strip()


def _add_user(record: _Record, name: str, root: Path, password: str | None) -> SshUser:
    home = root / "home" / name
    with _user_db_lock():
        record.users.append(name)
        record.save()
        _run_user_db(["useradd", "--no-log-init", "--create-home", "--home-dir", str(home),
                      "--shell", "/bin/bash", "--comment", "golive test host", name])
        if password is None:
            _run_user_db(["usermod", "-p", "*", name])
        else:
            _run_user_db(["chpasswd"], stdin=f"{name}:{password}\n")
    entry = pwd.getpwnam(name)
    return SshUser(name=name, home=home, uid=entry.pw_uid, gid=entry.pw_gid)


def _config(server: SshServer, prefix: str) -> str:
    password_auth = "yes" if server.password is not None else "no"
    return f"""\
# golive test sshd {prefix}: generated by golive.testing.sshd
Port {server.port}
ListenAddress {server.host}
AddressFamily inet
HostKey {server.host_key_path}
PidFile {server.workdir / "sshd.pid"}
AuthorizedKeysFile {server.root}/authorized/%u
AuthorizedPrincipalsFile none
AllowUsers {prefix}*
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication {password_auth}
PermitEmptyPasswords no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitRootLogin no
PermitUserEnvironment no
Subsystem sftp internal-sftp
MaxStartups 200:30:400
MaxSessions 200
LoginGraceTime 60
LogLevel VERBOSE
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
"""


def _start_on_free_port(server: SshServer, prefix: str, attempts: int = 8) -> None:
    """Pick a port, start; on "Address already in use" (a parallel test won the
    port between the check and sshd's bind) pick another."""
    for attempt in range(attempts):
        server.port = _free_port()
        server.config_path.write_text(_config(server, prefix))
        server._write_known_hosts()
        if attempt == 0:
            check = subprocess.run([SSHD, "-t", "-f", str(server.config_path)],
                                   capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if check.returncode != 0:
                raise SshServerError(f"sshd rejects {server.config_path}: "
                                     f"{(check.stderr or check.stdout).strip()}")
        try:
            server.start()
            return
        except SshServerError as exc:
            if "Address already in use" not in str(exc) or attempt == attempts - 1:
                raise


PR_SET_CHILD_SUBREAPER = 36


def _subreaper() -> Callable[[], None]:
    """A preexec_fn making sshd the subreaper of its sessions' processes.

    Orphans (a daemonized process a deployment started, a session whose monitor was
    killed) are then adopted and reaped by the listener (its SIGCHLD handler waits for
    any child) at once, instead of lingering as zombies until PID 1 reaps them.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def become_subreaper() -> None:
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    return become_subreaper


def _free_port() -> int:
    low, high = PORT_RANGE
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    """True once something on host:port accepts a connection and greets with SSH-."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as conn:
            conn.settimeout(2.0)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


# -- cleanup ----------------------------------------------------------------------


def _cleanup(record: _Record, server: SshServer | None) -> list[str]:
    """Undo everything ``record`` says was made; the problems, if any (never raises)."""
    problems: list[str] = []

    def step(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # every step runs; the problems are reported
            problems.append(f"{what}: {exc}")

    uids = set()
    for name in record.users:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    if server is not None:
        step("stop sshd", lambda: server._stop(signal.SIGKILL, sessions=True))
    elif record.sshd_pid:
        step("kill sshd", lambda: _kill_foreign_sshd(record.sshd_pid, record.config))
    step("kill user processes", lambda: _kill_user_processes(uids, record.users))
    step("unmount", lambda: _unmount_under(Path(record.root)))
    for name in record.users:
        step(f"userdel {name}", functools.partial(_delete_user, name))
    step("remove mount point", lambda: _rmdir(Path(record.root)))
    if server is not None:
        link = server.workdir / "hosts"
        step("remove hosts link", lambda: link.unlink(missing_ok=True))
    if not problems:
        step("remove record", lambda: record.path.unlink(missing_ok=True))
    return problems


def _kill_foreign_sshd(pid: int, config: str) -> None:
    """Kill a swept server's sshd, if that pid is still that sshd (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if config.encode() not in b" ".join(cmdline):  # sshd rewrites its title: substring
        return
    _signal(pid, signal.SIGKILL)
    _wait_gone([pid], STOP_TIMEOUT)


def _kill_user_processes(uids: set[int], names: Sequence[str], *,
                         parent: int | None = None) -> set[int]:
    """SIGKILL, until none is left, every live process running as one of ``uids``
    (like ``pkill -u``), sshd's per-connection monitors of ``names`` (root, titled
    ``sshd: NAME [priv]``) and the children of ``parent``; the pids killed."""
    titles = tuple(f"sshd: {name}".encode() for name in names)
    me = os.getpid()
    killed: set[int] = set()
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        targets = [p.pid for p in live_processes() if p.pid != me and (
            uids.intersection(p.uids) or p.cmdline.startswith(titles)
            or (parent is not None and p.ppid == parent))]
        if not targets:
            return killed
        if time.monotonic() > deadline:
            raise SshServerError(f"processes of the test users survive SIGKILL: {targets}")
        for pid in targets:
            _signal(pid, signal.SIGKILL)
        killed.update(targets)
        time.sleep(0.02)


def _unmount_under(root: Path) -> None:
    """Unmount ``root`` and every mount under it, deepest first; lazily if busy."""
    for point in sorted(_mounts_under(root), key=lambda p: len(p.parts), reverse=True):
        done = subprocess.run(["umount", str(point)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0 and point in _mounts_under(root):
            _run(["umount", "-l", str(point)])
    left = _mounts_under(root)
    if left:
        raise SshServerError(f"still mounted: {', '.join(map(str, left))}")


def _mounts_under(root: Path) -> list[Path]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split()[4]
        point = Path(raw.encode().decode("unicode_escape"))  # \040 for spaces, etc.
        if point == root or root in point.parents:
            points.append(point)
    return points


def _delete_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    with _user_db_lock():
        # -f: even if a zombie still counts as "logged in"; -r: mail spool too (the
        # home went with the tmpfs, userdel just notes it is missing: exit 12).
        _run_user_db(["userdel", "-f", "-r", name], ok=(0, 6, 12))
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    raise SshServerError(f"user {name} still exists after userdel")


def _rmdir(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.rmdir()


# -- processes, users, commands ----------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    uids: tuple[int, ...]
    cmdline: bytes


def live_processes() -> list[Proc]:
    """Live (not zombie) processes, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith(("Z", "X")):
            continue
        found.append(Proc(pid=int(entry), ppid=int(fields.get("PPid", "0")),
                           uids=tuple(int(u) for u in fields.get("Uid", "").split()),
                           cmdline=cmdline.replace(b"\0", b" ")))
    return found


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), to tell reused pids apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pids: Sequence[int], timeout: float) -> None:
    """Until ``pids`` are dead (zombies count as dead: PID 1 may take a while to reap them)."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        live = {p.pid for p in live_processes()}
        pending &= live
        if pending:
            time.sleep(0.02)


def _wait_reaped(pids: set[int], timeout: float) -> None:
    """Until ``pids`` have left the process table (their parent reaped them), or timeout."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if os.path.exists(f"/proc/{pid}")}
        if pending:
            time.sleep(0.02)


def _pid_in(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _run(argv: list[str], *, stdin: str | None = None,
         ok: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    if done.returncode not in ok:
        raise SshServerError(f"{' '.join(argv)} failed ({done.returncode}): "
                             f"{(done.stderr or done.stdout).strip()}")
    return done


def _run_user_db(argv: list[str], *, stdin: str | None = None,
                 ok: Sequence[int] = (0,)) -> None:
    """useradd & co., retried while another program holds the passwd/shadow locks."""
    for attempt in range(20):
        try:
            _run(argv, stdin=stdin, ok=ok)
            return
        except SshServerError as exc:
            if "lock" not in str(exc).lower() or attempt == 19:
                raise
            time.sleep(0.1 * (attempt + 1))


_lock_guard = threading.RLock()
_lock_depth = 0
_lock_fd: int | None = None


@contextlib.contextmanager
def _user_db_lock() -> Iterator[None]:
    """Serializes user-database changes and sweeps across processes (flock) and threads.

    Reentrant within a thread (a sweep deletes users while holding it).
    """
    global _lock_depth, _lock_fd
    with _lock_guard:
        if _lock_depth == 0:
            fd = os.open(RUN_ROOT / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    break
                except InterruptedError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.EINTR:
                        os.close(fd)
                        raise
            _lock_fd = fd
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
            if _lock_depth == 0 and _lock_fd is not None:
                os.close(_lock_fd)  # releases the flock
                _lock_fd = None


__all__ = ["SshServer", "SshServerError", "SshServerFactory", "SshUser", "fingerprint",
           "ssh_server", "sweep_stale"]
