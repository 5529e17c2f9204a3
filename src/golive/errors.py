"""The one error root of golive, and its subclasses.

Every error a user can cause or meet is a ``GoliveError``; the CLI (and later the
API) turn them into one clear line and an exit code, never a traceback.
Third-party errors are translated into these at the edge of the adapter or store
module that calls the library.

    GoliveError                     exit 1: the action failed
    ├── RefusedError                exit 1: an action the rules do not allow now
    │   ├── TransitionRefused       the order's state does not allow the action
    │   ├── PermissionDenied        the acting user lacks the role the action needs
    │   ├── Busy                    a lock or lane is held by another order (names it)
    │   ├── OutsideWindow           a release outside the project's release windows
    │   ├── Unverified              main moved since staging; names the commits
    │   ├── NotAuthenticated        the API was called without a valid session or token
    │   ├── LoginRefused            wrong user or password, or too many failed logins
    │   └── CsrfRefused             a cookie-authenticated write without its CSRF token
    ├── InputError                  exit 2: bad usage or input
    │   ├── ConfigError             golive.yaml: file, line, field path
    │   └── NotFound                an unknown order, project, user, ...
    ├── SecretError                 the secret key is missing or does not match
    ├── StoreError                  the store could not be opened or written
    ├── RemoteError                 the server (GOLIVE_URL) answered with an error
    └── DeployError                 a deployment step failed; carries service / host
        ├── GitError                a git command failed
        │   ├── BranchNotFound      the order's branch is not in the repository
        │   └── MergeConflict       merging the branch into main conflicts; lists files
        ├── BuildFailed             the build command failed or ran past its limit
        ├── PackError               a pack folder is missing, or an entry escapes the release
        ├── TransportError          a host cannot be reached or a transfer failed
        │   └── CommandFailed       a command on a host exited non-zero or timed out
        └── SqlFailed               a statement failed; names it and the database's message
"""

from __future__ import annotations


class GoliveError(Exception):
    """Root of golive's errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class RefusedError(GoliveError):
    """An action the rules refuse; says what was asked and why not."""


class TransitionRefused(RefusedError):
    def __init__(self, message: str, *, state: str, action: str) -> None:
        super().__init__(message)
        self.state = state
        self.action = action


class PermissionDenied(RefusedError):
    def __init__(self, message: str, *, needed_roles: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.needed_roles = needed_roles


class Busy(RefusedError):
    """A deployment lock or a lane is held by another order; ``order_id`` names it."""

    def __init__(self, message: str, *, order_id: int | None) -> None:
        super().__init__(message)
        self.order_id = order_id


class OutsideWindow(RefusedError):
    """A release asked for outside the project's release windows; ``opens`` is when the
    next one opens (None: none in sight)."""

    def __init__(self, message: str, *, opens: object = None) -> None:
        super().__init__(message)
        self.opens = opens


class Unverified(RefusedError):
    """Main has commits that staging did not verify; ``commits`` lists them per service."""

    def __init__(self, message: str, *, commits: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.commits = commits


class NotAuthenticated(RefusedError):
    pass


class LoginRefused(RefusedError):
    """Never says whether the user or the password was wrong; ``retry_after`` (seconds)
    is set when failed logins were too many."""

    def __init__(self, message: str, *, retry_after: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CsrfRefused(RefusedError):
    pass


class InputError(GoliveError):
    """Bad usage or input: the user can fix it by changing what they typed."""

    exit_code = 2


class ConfigError(InputError):
    """A problem in a golive.yaml file, located by file, line and field path."""

    def __init__(
        self, problem: str, *, file: str = "", line: int | None = None, path: str = ""
    ) -> None:
        where = file
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        parts = [p for p in (where, path) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)
        self.problem = problem
        self.file = file
        self.line = line
        self.path = path


class NotFound(InputError):
    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!s} does not exist")
        self.kind = kind
        self.key = key


class SecretError(GoliveError):
    """The secret key is missing, unreadable or not the one secrets were sealed with."""


class StoreError(GoliveError):
    """The store could not be opened, migrated or written."""


class RemoteError(GoliveError):
    """An error the server answered with: its message and the exit code it stands for."""

    def __init__(self, message: str, *, kind: str = "", exit_code: int = 1,
                 status: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.exit_code = exit_code
        self.status = status


class DeployError(GoliveError):
    """A deployment step failed. ``service`` and ``host`` say where, when known."""

    def __init__(self, message: str, *, service: str = "", host: str = "") -> None:
        super().__init__(message)
        self.service = service
        self.host = host

    def where(self) -> str:
        parts = [f"service {self.service}" if self.service else "",
                 f"host {self.host}" if self.host else ""]
        return ", ".join(p for p in parts if p)


class GitError(DeployError):
    pass


class BranchNotFound(GitError):
    pass


class MergeConflict(GitError):
    def __init__(self, message: str, *, files: list[str], service: str = "") -> None:
        super().__init__(message, service=service)
        self.files = files


class BuildFailed(DeployError):
    pass


class PackError(DeployError):
    pass


class TransportError(DeployError):
    pass


class CommandFailed(TransportError):
    def __init__(self, message: str, *, host: str, command: str, returncode: int | None,
                 output: str = "", timed_out: bool = False) -> None:
        super().__init__(message, host=host)
        self.command = command
        self.returncode = returncode
        self.output = output
        self.timed_out = timed_out


class SqlFailed(DeployError):
    def __init__(self, message: str, *, database: str, statement: str) -> None:
        super().__init__(message)
        self.database = database
        self.statement = statement
