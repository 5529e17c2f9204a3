"""`golive user ...`, `golive member ...` and `golive audit`: each calls an operation
(``api/operations/people.py``) here or on the server and prints what it returns."""

from __future__ import annotations

import sys

import typer

from golive.api.schemas.people import NewMember, NewPassword, NewUser, ProfileChanges
from golive.api.schemas.project_settings import MemberRoles
from golive.cli import output
from golive.cli.client import body, call
from golive.errors import InputError

users = typer.Typer(help="Manage users (site admins).", no_args_is_help=True)
members = typer.Typer(help="Give users roles in projects.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON with stable field names.")


@users.command("add")
def add(
    name: str = typer.Argument(..., help="Login name."),
    admin: bool = typer.Option(False, "--admin", help="Make the user a site admin."),
    email: str = typer.Option("", "--email"),
    mobile: str = typer.Option("", "--mobile", help="Mobile number, for chat @-mentions."),
    display_name: str = typer.Option("", "--display-name"),
    language: str = typer.Option("", "--language",
                                  help="en or zh_CN; empty: the browser's."),
) -> None:
    """Add a user."""
    call("user.add", body=body(NewUser, name=name, admin=admin, email=email, mobile=mobile,
                               display_name=display_name, language=language))
    output.console.print(f"user {name} added", markup=False)


@users.command("set")
def set_profile(
    name: str = typer.Argument(..., help="The user (yourself, or anyone for a site admin)."),
    email: str | None = typer.Option(None, "--email"),
    mobile: str | None = typer.Option(None, "--mobile", help="For WeCom / DingTalk mentions."),
    wecom_id: str | None = typer.Option(None, "--wecom-id", help="WeCom userid."),
    dingtalk_id: str | None = typer.Option(None, "--dingtalk-id", help="DingTalk userId."),
    feishu_id: str | None = typer.Option(None, "--feishu-id", help="Feishu open_id."),
    display_name: str | None = typer.Option(None, "--display-name"),
    language: str | None = typer.Option(None, "--language", help="en or zh_CN."),
) -> None:
    """Change a user's profile: the mobile, chat ids and e-mail notifications mention."""
    given = {"email": email, "mobile": mobile, "wecom_id": wecom_id,
             "dingtalk_id": dingtalk_id, "feishu_id": feishu_id,
             "display_name": display_name, "language": language}
    changes = {k: v for k, v in given.items() if v is not None}
    call("user.update", user=name, body=body(ProfileChanges, **changes))
    output.console.print(f"user {name}: {', '.join(sorted(changes)) or 'nothing'} changed",
                         markup=False)


@users.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List users."""
    rows = call("user.list")
    if as_json:
        output.print_json(rows)
        return
    output.table("users", ["name", "display name", "email", "mobile", "admin"], [
        [r["name"], r["display_name"], r["email"], r["mobile"], "yes" if r["is_admin"] else ""]
        for r in rows])


def _read_password(name: str, from_stdin: bool) -> str:
    """The new password: from standard input (scripts), or typed twice without echo."""
    if not from_stdin:
        return str(typer.prompt(f"New password for {name}", hide_input=True,
                                confirmation_prompt=True))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InputError("--password-stdin: standard input holds no password")
    return password


@users.command("password")
def password(
    name: str = typer.Argument(..., help="The user (yourself, or anyone for a site admin)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard "
        "input instead of prompting."),
) -> None:
    """Set a user's password (they log in to the web UI with it); their sessions end."""
    data = call("user.password", user=name,
                body=body(NewPassword, password=_read_password(name, password_stdin)))
    output.console.print(data["message"], markup=False)


@members.command("add")
def member_add(
    user: str = typer.Argument(..., help="The user."),
    project: str = typer.Option(..., "-p", "--project", help="The project."),
    role: list[str] = typer.Option(..., "--role", "-r",
                                   help="owner, developer, tester or releaser; repeatable."),
) -> None:
    """Give a user one or more roles in a project (project owner or site admin)."""
    call("member.add", project=project, body=body(NewMember, user=user, roles=role))
    output.console.print(f"{user} is {', '.join(role)} in {project}", markup=False)


@members.command("roles")
def member_roles(
    user: str = typer.Argument(..., help="The member."),
    project: str = typer.Option(..., "-p", "--project", help="The project."),
    role: list[str] = typer.Option(..., "--role", "-r",
                                   help="owner, developer, tester or releaser; repeatable."),
) -> None:
    """Make these exactly a member's roles (project owner or site admin); the project's
    last owner keeps the owner role."""
    found = call("member.set_roles", project=project, user=user,
                 body=body(MemberRoles, roles=role))
    output.console.print(f"{user} is {', '.join(found['roles'])} in {project}", markup=False)


@members.command("remove")
def member_remove(
    user: str = typer.Argument(..., help="The member."),
    project: str = typer.Option(..., "-p", "--project", help="The project."),
) -> None:
    """Take every role of a user in the project away (project owner or site admin)."""
    output.console.print(call("member.remove", project=project, user=user)["message"],
                         markup=False)


@members.command("list")
def member_list(
    project: str = typer.Option(..., "-p", "--project", help="The project."),
    as_json: bool = JSON,
) -> None:
    """The project's members and their roles (any member of the project)."""
    rows = call("member.list", project=project)
    if as_json:
        output.print_json(rows)
        return
    output.table(f"members of {project}", ["user", "display name", "roles"], [
        [r["user"], r["display_name"], ", ".join(r["roles"])] for r in rows])


def audit(
    project: str = typer.Option("", "-p", "--project", help="Only this project's entries."),
    limit: int = typer.Option(50, "--limit", "-n", help="How many entries (at most 1000)."),
    as_json: bool = JSON,
) -> None:
    """The audit log, newest first: every write through the API, refused ones too (a
    project's owners read its entries, site admins all)."""
    rows = call("audit.list", project=project, limit=limit)
    if as_json:
        output.print_json(rows)
        return
    output.table("audit log", ["at", "user", "address", "action", "target", "project",
                               "status"], [
        [output.when(r["at"]), r["user"], r["address"], r["action"], r["target"],
         r["project"], r["status"]] for r in rows])
