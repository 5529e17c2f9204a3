"""The ``local`` transport: a host that is a folder on the control machine.

The folder (the host's ``root``) plays both the host's ``/`` and the login home:
``/srv/app`` and ``srv/app`` both live at ``<root>/srv/app``. Commands run with
``sh -c`` in their own process group, so a time limit kills the whole tree.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from golive.adapters.transport.base import (
    DEFAULT_TIMEOUT,
    OUTPUT_TAIL_LINES,
    CommandResult,
    LineSink,
    Transport,
)
from golive.errors import CommandFailed, TransportError


def hook_environment() -> dict[str, str]:
    """This process's environment without golive's own settings: a hook or build must
    never see GOLIVE_SECRET_KEY, GOLIVE_DATABASE_URL or the like (only the GOLIVE_*
    variables of the deployment, which the caller adds)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_")}


def run_process(
    argv: list[str],
    *,
    cwd: str | None,
    env: Mapping[str, str],
    timeout: float,
    on_line: LineSink | None,
) -> tuple[int | None, str]:
    """Run ``argv``, streaming lines; (exit code or None if it timed out, output tail)."""
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    timed_out = threading.Event()
    with subprocess.Popen(
        argv, cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    ) as process:

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
            code = process.wait()
        finally:
            timer.cancel()
    return (None if timed_out.is_set() else code), "\n".join(tail)


class LocalTransport(Transport):
    def __init__(self, host_name: str, root: Path) -> None:
        super().__init__(host_name)
        self.root = root.expanduser().resolve()

    def resolve(self, path: str) -> str:
        relative = path.lstrip("/")
        return str(self.root / relative) if relative else str(self.root)

    def run(
        self,
        command: str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        on_line: LineSink | None = None,
        check: bool = True,
    ) -> CommandResult:
        if cwd is not None and not Path(cwd).is_dir():
            raise CommandFailed(f"host {self.host_name}: directory {cwd} does not exist",
                                host=self.host_name, command=command, returncode=None)
        self.root.mkdir(parents=True, exist_ok=True)
        full_env = {**hook_environment(), "HOME": str(self.root), **(env or {})}
        code, output = run_process(["sh", "-c", command], cwd=cwd or str(self.root),
                                   env=full_env, timeout=timeout, on_line=on_line)
        if check and code != 0:
            raise command_failed(self.host_name, command, code, output, timeout)
        return CommandResult(-1 if code is None else code, output)

    def put_file(self, local: Path, remote: str) -> None:
        try:
            Path(remote).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, remote)
        except OSError as exc:
            raise TransportError(f"host {self.host_name}: cannot write {remote}: "
                                 f"{exc.strerror}", host=self.host_name) from None

    def put_stream(self, stream: BinaryIO, remote: str) -> None:
        try:
            Path(remote).parent.mkdir(parents=True, exist_ok=True)
            with open(remote, "wb") as target:
                shutil.copyfileobj(stream, target, 1024 * 1024)
        except OSError as exc:
            raise TransportError(f"host {self.host_name}: cannot write {remote}: "
                                 f"{exc.strerror}", host=self.host_name) from None

    def read_file(self, remote: str) -> bytes:
        try:
            return Path(remote).read_bytes()
        except OSError as exc:
            raise TransportError(f"host {self.host_name}: cannot read {remote}: "
                                 f"{exc.strerror}", host=self.host_name) from None


def command_failed(
    host: str, command: str, code: int | None, output: str, timeout: float
) -> CommandFailed:
    """The error for a command that exited non-zero (code) or ran past its limit (None)."""
    last = output.strip().splitlines()[-1] if output.strip() else ""
    if code is None:
        what = f"ran past its limit of {timeout:g}s"
    else:
        what = f"exited with {code}"
    message = f"host {host}: `{_short(command)}` {what}" + (f": {last}" if last else "")
    return CommandFailed(message, host=host, command=command, returncode=code, output=output,
                         timed_out=code is None)


def _short(command: str, limit: int = 120) -> str:
    one_line = " ".join(command.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
