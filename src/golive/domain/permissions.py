"""Who may do what, besides moving an order (``workflow.decide`` rules those moves).

One table, ``NEEDS``: each action that is not a state transition and the project
roles that may take it. The project's owner and a site admin may take every
action; actions marked ``ADMIN_ONLY`` belong to site admins alone (they reach
beyond one project). ``check`` answers with a ``Decision`` and never raises; the
service layer turns a refusal into ``PermissionDenied`` (``services/users.py``),
so the CLI, the API and the UI refuse the same things with the same words.
"""

from __future__ import annotations

from enum import StrEnum

from golive.domain.roles import Role
from golive.domain.workflow import Actor, Decision

DEV, TESTER, RELEASER, OWNER = (Role.DEVELOPER.value, Role.TESTER.value, Role.RELEASER.value,
                                Role.OWNER.value)


class Permission(StrEnum):
    VIEW = "view"                            # read orders, plans, logs, ledgers, the board
    CREATE_ORDER = "create_order"
    EDIT_ORDER = "edit_order"                # change an order's SQL or jobs before done
    APPROVE_SQL = "approve_sql"              # let statements past the review rules
    RESOLVE_SQL = "resolve_sql"              # settle an ``unknown`` statement
    RESUME_BATCHES = "resume_batches"        # let a paused deployment switch its next batch
    RELEASE_LANE = "release_lane"            # free a lane another order holds
    TAKE_OVER_LANE = "take_over_lane"        # deploy onto a lane another order holds
    ACCEPT_UNVERIFIED = "accept_unverified"  # release although main moved since staging
    MANAGE_MEMBERS = "manage_members"
    MANAGE_CHANNELS = "manage_channels"      # notification channels: send a test message
    MANAGE_USERS = "manage_users"
    APPLY_CONFIG = "apply_config"            # golive apply: hosts, databases, projects
    CONFIGURE_PROJECT = "configure_project"  # apply one project's own golive.yaml
    EXPORT_CONFIG = "export_config"          # golive export (secrets as ${...})
    EXPORT_SECRETS = "export_secrets"
    TRUST_HOST_KEY = "trust_host_key"
    READ_AUDIT = "read_audit"                # the audit log of a project (all: site admin)


NEEDS: dict[Permission, tuple[str, ...]] = {
    Permission.VIEW: (DEV, TESTER, RELEASER),
    Permission.CREATE_ORDER: (DEV,),
    Permission.EDIT_ORDER: (DEV,),
    Permission.APPROVE_SQL: (RELEASER,),
    Permission.RESOLVE_SQL: (RELEASER,),
    Permission.RESUME_BATCHES: (),           # the deployer of the stage: see deployer_roles
    Permission.RELEASE_LANE: (TESTER,),
    Permission.TAKE_OVER_LANE: (TESTER,),
    Permission.ACCEPT_UNVERIFIED: (RELEASER,),
    Permission.MANAGE_MEMBERS: (),
    Permission.MANAGE_CHANNELS: (),
    Permission.MANAGE_USERS: (),
    Permission.APPLY_CONFIG: (),
    Permission.CONFIGURE_PROJECT: (),
    Permission.EXPORT_CONFIG: (),
    Permission.EXPORT_SECRETS: (),
    Permission.TRUST_HOST_KEY: (),
    Permission.READ_AUDIT: (),
}

ADMIN_ONLY = frozenset({Permission.MANAGE_USERS, Permission.APPLY_CONFIG,
                        Permission.EXPORT_CONFIG, Permission.EXPORT_SECRETS,
                        Permission.TRUST_HOST_KEY})


def needed_roles(permission: Permission, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The roles that may take ``permission`` (owner last); ``extra`` adds the roles a
    rule computes (e.g. the deployer of a stage)."""
    if permission in ADMIN_ONLY:
        return ("admin",)
    return tuple(dict.fromkeys([*NEEDS[permission], *extra, OWNER]))


def check(permission: Permission, actor: Actor, what: str,
          extra: tuple[str, ...] = ()) -> Decision:
    """May ``actor`` take ``permission``? ``what`` is named in the refusal."""
    needed = needed_roles(permission, extra)
    if actor.is_admin:
        return Decision(True, needed_roles=needed)
    if permission in ADMIN_ONLY:
        return Decision(False, reason=f"{what} needs a site admin; {actor.name} is not one",
                        needed_roles=needed, permission_refused=True)
    if actor.roles & set(needed):
        return Decision(True, needed_roles=needed)
    held = ", ".join(sorted(actor.roles)) or "no role in this project"
    return Decision(False, reason=f"{what} needs the role {' or '.join(needed)}; "
                                  f"{actor.name} has {held}",
                    needed_roles=needed, permission_refused=True)
