"""Git on the control machine, through the ``git`` CLI.

A bare mirror per repository lives in ``GOLIVE_HOME/repos`` (fetched, never
re-cloned). Artifact builds happen in a worktree of the mirror at the main
branch's head with the order's branch merged in ``--no-ff``. Every git failure
becomes a ``GitError`` naming the repository; a missing branch is
``BranchNotFound``, a conflicting merge is ``MergeConflict`` listing the files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from golive.domain.names import branch_problem
from golive.errors import BranchNotFound, GitError, InputError, MergeConflict

GIT_TIMEOUT = 600
PUSH_ATTEMPTS = 3
IDENTITY = {
    "GIT_AUTHOR_NAME": "golive", "GIT_AUTHOR_EMAIL": "golive@localhost",
    "GIT_COMMITTER_NAME": "golive", "GIT_COMMITTER_EMAIL": "golive@localhost",
}


def git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT,
        what: str = "", detached: bool = False, extra_env: dict[str, str] | None = None) -> str:
    """Run git; its stdout, or GitError with git's own message.

    ``detached``: in a session of its own, so that a signal to golive's process group
    (golive killed) does not cut it short — a push then ends as a whole, and never
    leaves a remote on this machine with its ref locks held."""
    env = {**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
           **(extra_env or {})}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL,
                              start_new_session=detached)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} {what} ran past {timeout}s") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        detail = message[-1] if message else f"exit {done.returncode}"
        raise GitError(f"git {args[0]} {what}failed: {detail}".replace("  ", " "))
    return done.stdout


def check_branch(branch: str) -> None:
    """Refuse names git would refuse, or that could pass for an option."""
    problem = branch_problem(branch)
    if problem is None:
        done = subprocess.run(["git", "check-ref-format", "--branch", branch],
                              capture_output=True, text=True)
        if done.returncode != 0:
            problem = f"branch {branch!r} is not a valid git branch name"
    if problem:
        raise InputError(problem)


def mirror_dir(repos: Path, url: str) -> Path:
    """Where the mirror of ``url`` lives: readable name plus a hash of the URL."""
    tail = re.sub(r"[^A-Za-z0-9_.-]+", "-", url.rstrip("/").rsplit("/", 1)[-1]).strip("-.")
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return repos / f"{tail or 'repo'}-{digest}"


def _entry_target(entry: Path) -> Path | None:
    """The worktree folder a mirror's worktree entry belongs to (None: unreadable)."""
    try:
        return Path((entry / "gitdir").read_text().strip()).parent
    except OSError:
        return None


@dataclass
class Mirror:
    url: str
    path: Path

    @classmethod
    def at(cls, repos: Path, url: str) -> Mirror:
        return cls(url, mirror_dir(repos, url))

    def fetch(self) -> None:
        """Clone the first time, fetch every branch after (a branch deleted upstream goes)."""
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            git("clone", "--bare", "--quiet", "--", self.url, str(self.path),
                what=f"of {self.url} ")
        try:
            self._fetch()
        except GitError as exc:
            # a golive killed while `git worktree add` ran leaves a worktree whose HEAD
            # names no object, and every fetch then fails its connectivity check ("did
            # not send all necessary objects"): drop such entries and fetch again
            if not self._drop_broken_worktrees():
                raise exc from None
            self._fetch()

    def _fetch(self) -> None:
        git("fetch", "--prune", "--quiet", "origin", "+refs/heads/*:refs/heads/*",
            cwd=self.path, what=f"of {self.url} ")

    def _worktree_entries(self) -> list[Path]:
        folder = self.path / "worktrees"
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def _drop_broken_worktrees(self) -> bool:
        """Remove the worktree entries whose HEAD is a commit the mirror lacks (left
        half-made by a killed `git worktree add`); whether any was removed."""
        dropped = False
        for entry in self._worktree_entries():
            head = (entry / "HEAD").read_text().strip() if (entry / "HEAD").exists() else ""
            if head.startswith("ref:"):
                continue
            known = subprocess.run(["git", "cat-file", "-e", f"{head}^{{commit}}"],
                                   cwd=self.path, capture_output=True).returncode == 0
            if not head or not known:
                shutil.rmtree(entry, ignore_errors=True)
                dropped = True
        return dropped

    def resolve(self, branch: str) -> str:
        """The commit at the head of ``branch``."""
        check_branch(branch)
        try:
            return git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}",
                       cwd=self.path).strip()
        except GitError:
            raise BranchNotFound(f"branch {branch} does not exist in {self.url}") from None

    def branches(self) -> list[str]:
        out = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=self.path)
        return sorted(line for line in out.splitlines() if line)

    def merged_worktree(self, main_commit: str, branch_commit: str, dest: Path,
                        message: str) -> str:
        """A worktree at ``dest``: main with the branch merged --no-ff; the merge commit."""
        self.remove_worktree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--detach", "--quiet", str(dest), main_commit, cwd=self.path)
        # dated by its parents, not by the clock: every agent that merges the same pair
        # makes the same merge commit (an agent resuming another's deployment, a later
        # stage built on another agent)
        newest = max(int(git("show", "-s", "--format=%ct", commit, cwd=self.path).strip())
                     for commit in (main_commit, branch_commit))
        dated = {"GIT_AUTHOR_DATE": f"@{newest} +0000", "GIT_COMMITTER_DATE": f"@{newest} +0000"}
        try:
            git("merge", "--no-ff", "--no-edit", "-m", message, branch_commit, cwd=dest,
                what="of the branch into main ", extra_env=dated)
        except GitError:
            conflicted = git("diff", "--name-only", "--diff-filter=U", cwd=dest).split()
            self.remove_worktree(dest)
            if conflicted:
                raise MergeConflict(
                    f"merging into main conflicts in: {', '.join(conflicted)}",
                    files=conflicted) from None
            raise
        return git("rev-parse", "HEAD", cwd=dest).strip()

    def remove_worktree(self, dest: Path) -> None:
        """Remove the worktree at ``dest`` and its entry in the mirror, also when a killed
        `git worktree add` left it locked ("initializing") or half-made."""
        mine = [e for e in self._worktree_entries() if _entry_target(e) in (None, dest)]
        if dest.exists() or mine:
            for args in (["unlock", str(dest)], ["remove", "--force", "--force", str(dest)]):
                subprocess.run(["git", "worktree", *args], cwd=self.path, capture_output=True)
            shutil.rmtree(dest, ignore_errors=True)
            for entry in mine:  # what git refused to remove: ``dest`` is this run's alone
                shutil.rmtree(entry, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=self.path, capture_output=True)

    def commits_between(self, base: str, head: str) -> list[str]:
        """The commits ``head`` has and ``base`` has not, newest first, as "sha subject"."""
        out = git("log", "--format=%h %s", f"{base}..{head}", "--", cwd=self.path,
                  what="of the main branch ")
        return [line for line in out.splitlines() if line.strip()]

    def delete_remote_branch(self, branch: str) -> bool:
        """Delete ``branch`` on the remote; False when it was already gone."""
        check_branch(branch)
        remote = git("ls-remote", "--heads", "origin", f"refs/heads/{branch}", cwd=self.path,
                     what=f"of {self.url} ")
        if not remote.strip():
            return False
        git("push", "--quiet", "origin", f":refs/heads/{branch}", cwd=self.path,
            what=f"to {self.url} ", detached=True)
        return True

    def push_release(self, commit: str, main_branch: str, tag: str) -> None:
        """Push ``commit`` to the main branch (fast-forward only) and tag it."""
        check_branch(main_branch)
        wanted = {f"refs/heads/{main_branch}": commit, f"refs/tags/{tag}": commit}
        for attempt in range(PUSH_ATTEMPTS):
            try:
                git("push", "--quiet", "origin", *(f"{commit}:{ref}" for ref in wanted),
                    cwd=self.path, what=f"to {self.url} ", detached=True)
                break
            except GitError:
                # the push of a golive killed meanwhile may still be ending (holding the
                # remote's ref locks) or may have landed: look, then try again
                if self._remote_refs(list(wanted)) == wanted:
                    break
                if attempt + 1 == PUSH_ATTEMPTS:
                    raise
                time.sleep(1.0)
        git("fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*", cwd=self.path)

    def _remote_refs(self, refs: list[str]) -> dict[str, str]:
        out = git("ls-remote", "origin", *refs, cwd=self.path, what=f"of {self.url} ")
        pairs = (line.split("\t") for line in out.splitlines() if "\t" in line)
        return {ref: sha for sha, ref in pairs}
