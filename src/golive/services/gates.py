"""What a release must pass besides the state machine: the project's release windows
and the staleness guard.

* **Windows** (``domain.windows``): outside the project's weekly windows, or on a
  freeze day, a release is refused naming the next window — or queued for it with
  ``--when-open``, and started by the scheduler once it opens.
* **Staleness**: when the main branch has commits that the order's code did not
  contain when it was verified on the stage before the last, the release names
  those commits and needs ``--accept-unverified`` by a releaser (recorded in the
  history) or a redeploy on that stage.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from golive.adapters.git import Mirror
from golive.domain.windows import ReleasePolicy, describe, is_open, next_open
from golive.errors import ConfigError, GoliveError, OutsideWindow, Unverified
from golive.services import ledger
from golive.store.models import Order, Project

SHOWN_COMMITS = 10


def policy_of(project: Project) -> ReleasePolicy:
    try:
        return ReleasePolicy.from_settings(list(project.release_windows or ()),
                                           list(project.freeze_dates or ()),
                                           project.release_timezone or "UTC")
    except ValueError as exc:
        raise ConfigError(f"project {project.name}: {exc}") from None


def window_opens(project: Project, now: datetime) -> datetime | None:
    """None when a release may start now; else when the next window opens. OutsideWindow
    when none opens within the search horizon."""
    policy = policy_of(project)
    if is_open(policy, now):
        return None
    opens = next_open(policy, now)
    if opens is None:
        raise OutsideWindow(f"project {project.name} allows releases {describe(policy)}; no "
                            "window opens in the next 400 days", opens=None)
    return opens


def outside_window(project: Project, opens: datetime) -> OutsideWindow:
    policy = policy_of(project)
    return OutsideWindow(
        f"project {project.name} allows releases {describe(policy)}; it is outside them "
        f"now. The next window opens {opens:%a %Y-%m-%d %H:%M %Z}: release then, or queue "
        "the release for it with --when-open", opens=opens)


def unverified_commits(home: Path, session: Session, order: Order) -> dict[str, list[str]]:
    """service → commits on its main branch that the stage before the last did not verify
    (only services deployed there; empty when the project has one stage)."""
    stages = list(order.project.stages)
    if len(stages) < 2:
        return {}
    verified_on = stages[-2]
    found: dict[str, list[str]] = {}
    for item in order.items:
        entry = ledger.commit_entry(session, order.id, item.service_id, verified_on)
        if entry is None:
            continue
        service = item.service
        mirror = Mirror.at(home / "repos", service.repo)
        try:
            mirror.fetch()
            commits = mirror.commits_between(entry.deployed_commit,
                                             mirror.resolve(service.main_branch))
        except GoliveError as exc:
            raise type(exc)(f"service {service.name}: checking what staging verified: "
                            f"{exc.message}") from None
        if commits:
            found[service.name] = commits
    return found


def unverified_error(order: Order, commits: dict[str, list[str]]) -> Unverified:
    verified_on = list(order.project.stages)[-2]
    parts = []
    for service, lines in commits.items():
        shown = "; ".join(lines[:SHOWN_COMMITS])
        more = f"; and {len(lines) - SHOWN_COMMITS} more" if len(lines) > SHOWN_COMMITS else ""
        parts.append(f"{service}: {len(lines)} commit(s) on main not verified on "
                     f"{verified_on}: {shown}{more}")
    return Unverified(
        f"order {order.id}: main moved since {verified_on} verified it — "
        + " | ".join(parts)
        + f". Verify them: `golive order deploy {order.id} --stage {verified_on}` (artifact "
          "mode merges the new main; in checkout mode merge main into the branch first), or "
          "release with --accept-unverified (releaser; recorded)", commits=commits)
