"""The transport interface: what the engine may ask of a host.

A transport runs a shell command in a directory with an environment and a time
limit, streaming its output line by line; sends a file or a byte stream; reads a
file; and says where a deploy path lives on the host. Every failure is a golive
error (``TransportError`` or ``CommandFailed``) naming the host. The engine only
talks to hosts through this interface, so the SSH transport drops in unchanged.

Commands are shell text built by golive; every piece of user text in them is
quoted with ``shlex.quote`` by whoever builds the command.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

LineSink = Callable[[str], None]
OUTPUT_TAIL_LINES = 20
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str
    """The last lines of stdout and stderr together."""


class Transport(ABC):
    """One open connection to one host, reused for a whole deployment."""

    def __init__(self, host_name: str) -> None:
        self.host_name = host_name

    @abstractmethod
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
        """Run ``command`` with ``sh``; raise CommandFailed on a non-zero exit if ``check``."""

    @abstractmethod
    def put_file(self, local: Path, remote: str) -> None:
        """Copy a local file to ``remote`` (an absolute host path), replacing it."""

    @abstractmethod
    def put_stream(self, stream: BinaryIO, remote: str) -> None:
        """Write everything read from ``stream`` to ``remote``."""

    @abstractmethod
    def read_file(self, remote: str) -> bytes:
        """The content of ``remote``; TransportError if it cannot be read."""

    @abstractmethod
    def resolve(self, path: str) -> str:
        """The absolute host path of a deploy path (relative: from the login home)."""

    def close(self) -> None:  # noqa: B027 - most transports have nothing to close
        """Release the connection."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
