"""Which names golive accepts for projects, services, hosts, users and branches.

Names end up in paths, tags and shell commands; validating them here keeps
user text out of places where it could mean something else.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid entity name, or None when it is."""
    if not _NAME.match(name):
        return (
            f"{name!r} is not a valid name: use letters, digits, '.', '_' and '-', "
            "start with a letter or digit, at most 63 characters"
        )
    return None


def branch_problem(branch: str) -> str | None:
    """Why ``branch`` is not a valid branch name (git check-ref-format rules), or None."""
    if not branch:
        return "the branch name is empty"
    if branch.startswith("-"):
        return f"branch {branch!r} starts with '-'"
    checks = (
        (_BAD_REF_CHARS.search(branch) is not None, "contains a space, control or ~^:?*[\\ char"),
        (".." in branch, "contains '..'"),
        ("@{" in branch, "contains '@{'"),
        (branch == "@", "is '@'"),
        (branch.startswith("/") or branch.endswith("/") or "//" in branch, "has an empty part"),
        (branch.endswith("."), "ends with '.'"),
        (any(p.startswith(".") or p.endswith(".lock") for p in branch.split("/")),
         "has a part starting with '.' or ending with '.lock'"),
    )
    for failed, why in checks:
        if failed:
            return f"branch {branch!r} is not a valid git branch name: it {why}"
    return None
