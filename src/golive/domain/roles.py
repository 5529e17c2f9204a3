"""Project roles and what each may do in general (the state machine refines it)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    DEVELOPER = "developer"
    TESTER = "tester"
    RELEASER = "releaser"


ALL_ROLES: tuple[str, ...] = tuple(r.value for r in Role)


def parse_role(text: str) -> Role:
    """The role named ``text``; ValueError naming the accepted roles otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {text!r}; roles are: {', '.join(ALL_ROLES)}") from None
