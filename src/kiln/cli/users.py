"""adduser, makeadmin, changepw, token create, and the `users` group: show, set-upload-limit, ban,
unban, revoke, restore, warn, export, delete. Changes to people go through kiln.moderation.people, which writes each
to the audit log (via "cli", the actor named ``cli:USER@HOST``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from kiln import units
from kiln.accounts import export, leaving
from kiln.accounts import services as accounts
from kiln.accounts.models import PRIVILEGES
from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.errors import InvalidInput
from kiln.media import services as media_service
from kiln.moderation import directory, people
from kiln.units import format_size


@main.command()
@click.argument("username")
@click.option("--email", required=True)
@click.option("--password", help="Asked for when not given.")
@click.option("--admin", is_flag=True, help="Give admin and moderator privileges.")
@pass_kiln
def adduser(kiln: Kiln, username: str, email: str, password: str | None, admin: bool) -> None:
    """Create a user whose email address counts as confirmed."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    rt = kiln.runtime()
    with rt.sessions() as session:
        user = accounts.create_user(session, username, email, password, verified=True, admin=admin)
        session.commit()
        click.echo(f"Created user {user.username}{' (admin)' if admin else ''}.")


@main.command()
@click.argument("username")
@pass_kiln
def makeadmin(kiln: Kiln, username: str) -> None:
    """Give a user admin and moderator privileges."""
    with kiln.runtime().sessions() as session:
        user = accounts.get_user(session, username)
        if not user.is_admin:
            people.set_role(session, None, user, "admin", True, via="cli")
        session.commit()
        click.echo(f"{user.username} is now an admin.")


@main.command()
@click.argument("username")
@click.option("--password", help="Asked for when not given.")
@pass_kiln
def changepw(kiln: Kiln, username: str, password: str | None) -> None:
    """Set a user's password (their login sessions end)."""
    with kiln.runtime().sessions() as session:
        user = accounts.get_user(session, username)
        if password is None:
            password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
        accounts.set_password(session, user, password)
        session.commit()
        click.echo(f"Password changed for {user.username}.")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="CLI", show_default=True)
@click.option("--scope", type=click.Choice(["read", "write"]), default="write", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def token_create(kiln: Kiln, username: str, name: str, scope: str, as_json: bool) -> None:
    """Create a personal access token and print it (it is shown only once)."""
    with kiln.runtime().sessions() as session:
        user = accounts.get_user(session, username)
        value = accounts.create_api_token(session, user, name, scope)
        session.commit()
    if as_json:
        echo_json({"token": value, "scope": scope, "username": username})
    else:
        click.echo(value)


@main.group()
def users() -> None:
    """Look at people; ban, warn, take away privileges; set upload limits."""


def parse_size(text: str) -> int | None:
    """A size as ``kiln.units.parse_size`` reads it, refused as a bad parameter."""
    try:
        return units.parse_size(text)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc)) from exc


@users.command("set-upload-limit")
@click.argument("username")
@click.argument("size")
@pass_kiln
def users_set_upload_limit(kiln: Kiln, username: str, size: str) -> None:
    """Let USERNAME upload files of up to SIZE (500MiB, 2GiB, 1048576) per request, more or less than
    the site's max_upload_bytes; `none` returns them to the site's limit."""
    limit = parse_size(size)
    rt = kiln.runtime()
    with rt.sessions() as session:
        user = accounts.get_user(session, username)
        people.set_upload_limit(session, None, user, limit, via="cli")
        session.commit()
    if limit is None:
        click.echo(f"{username} now has the site's upload limit "
                   f"({format_size(rt.settings.max_upload_bytes)}).")
    else:
        click.echo(f"{username} may now upload up to {format_size(limit)} ({limit:,} bytes).")


@users.command("show")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def users_show(kiln: Kiln, username: str, as_json: bool) -> None:
    """A person's account: email, privileges, state and upload limit."""
    rt = kiln.runtime()
    with rt.sessions() as session:
        user = accounts.get_user(session, username)
        limit = media_service.upload_limit(rt.settings, user)
        data: dict[str, Any] = {"username": user.username, "email": user.email, "display_name": user.display_name,
                "created": user.created.isoformat(), "privileges": user.privilege_names,
                "verified": user.has("active"), "banned": user.banned_now,
                "banned_until": _iso(user.banned_until) if user.banned_now else None,
                "ban_reason": user.ban_reason if user.banned_now else "",
                "suspended": {name: until.isoformat() for name, until in user.suspensions},
                "last_seen": _iso(user.last_seen), "upload_limit_bytes": limit,
                "upload_limit_is_own": user.upload_limit_bytes is not None}
    if as_json:
        echo_json(data)
        return
    for key in ("username", "email", "display_name", "created"):
        click.echo(f"{key:>13}: {data[key]}")
    click.echo(f"{'privileges':>13}: {', '.join(user.privilege_names) or '-'}")
    click.echo(f"{'verified':>13}: {'yes' if data['verified'] else 'no'}")
    if not data["banned"]:
        click.echo(f"{'banned':>13}: no")
    else:
        click.echo(f"{'banned':>13}: {_until_text(data['banned_until'])}: {data['ban_reason']}")
    for name, until in data["suspended"].items():
        click.echo(f"{'suspended':>13}: {name} until {until}")
    click.echo(f"{'last seen':>13}: {data['last_seen'] or 'never'}")
    source = "own limit" if data["upload_limit_is_own"] else "the site's max_upload_bytes"
    click.echo(f"{'upload limit':>13}: {format_size(limit)} ({source})")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _until_text(until: str | None) -> str:
    return f"until {until}" if until else "for good"


_DAYS = click.option("--days", type=click.IntRange(1, people.MAX_DAYS),
                     help="How many days it lasts; without it, for good.")
_REASON = click.option("--reason", required=True, help="Why (the person is told).")


@users.command("ban")
@click.argument("username")
@_DAYS
@_REASON
@pass_kiln
def users_ban(kiln: Kiln, username: str, days: int | None, reason: str) -> None:
    """Ban USERNAME for --days N or for good: their sessions and API tokens stop working at once,
    and logging in tells them why and until when."""
    with kiln.runtime().sessions() as session:
        user = accounts.get_user(session, username)
        until = people.ban(session, None, user, days=days, reason=reason, via="cli")
        session.commit()
    click.echo(f"{username} is banned {_until_text(_iso(until))}.")


@users.command("unban")
@click.argument("username")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@pass_kiln
def users_unban(kiln: Kiln, username: str, reason: str) -> None:
    """Lift USERNAME's ban now."""
    with kiln.runtime().sessions() as session:
        people.unban(session, None, accounts.get_user(session, username), reason=reason, via="cli")
        session.commit()
    click.echo(f"{username} is no longer banned.")


@users.command("revoke")
@click.argument("username")
@click.argument("privilege", type=click.Choice(people.REVOCABLE))
@_DAYS
@_REASON
@pass_kiln
def users_revoke(kiln: Kiln, username: str, privilege: str, days: int | None, reason: str) -> None:
    """Take PRIVILEGE away from USERNAME for --days N (it comes back by itself) or for good."""
    with kiln.runtime().sessions() as session:
        user = accounts.get_user(session, username)
        until = people.revoke(session, None, user, privilege, days=days, reason=reason, via="cli")
        session.commit()
    click.echo(f"{username} has lost the {privilege} privilege {_until_text(_iso(until))}.")


@users.command("restore")
@click.argument("username")
@click.argument("privilege", type=click.Choice(people.REVOCABLE))
@click.option("--reason", default="", help="Why (kept in the audit log).")
@pass_kiln
def users_restore(kiln: Kiln, username: str, privilege: str, reason: str) -> None:
    """Give PRIVILEGE back to USERNAME now."""
    with kiln.runtime().sessions() as session:
        people.restore_privilege(session, None, accounts.get_user(session, username), privilege, reason=reason,
                                 via="cli")
        session.commit()
    click.echo(f"{username} has the {privilege} privilege again.")


@users.command("warn")
@click.argument("username")
@_REASON
@pass_kiln
def users_warn(kiln: Kiln, username: str, reason: str) -> None:
    """Send USERNAME a warning (a notification, mailed at once by default)."""
    with kiln.runtime().sessions() as session:
        people.warn(session, None, accounts.get_user(session, username), reason=reason, via="cli")
        session.commit()
    click.echo(f"{username} is warned.")


@users.command("export")
@click.argument("username")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="The zip file to write (- for standard output).")
@pass_kiln
def users_export(kiln: Kiln, username: str, out: str) -> None:
    """Write everything USERNAME put in to a zip (the same as their own download): originals, their
    metadata as JSON, comments, collections, favourites and profile. Streamed from the stores;
    written to the audit log (user.export)."""
    rt = kiln.runtime()
    with rt.sessions() as session:
        user = accounts.get_user(session, username)
        plan = export.plan(rt, session, user, rt.settings.link_base())
        export.record_export_by_other(session, None, user, plan, via="cli")
        session.commit()
    stream = export.zip_stream(rt, plan)
    total = len(stream)
    with click.open_file(out, "wb") as sink:
        if out == "-":
            for chunk in stream:
                sink.write(chunk)
        else:
            with click.progressbar(length=total, label=f"Exporting {username}") as bar:
                for chunk in stream:
                    sink.write(chunk)
                    bar.update(len(chunk))
    if out != "-":
        click.echo(f"Wrote {out}: {len(plan.originals)} files, {format_size(total)} ({total:,} bytes).")


@users.command("delete")
@click.argument("username")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def users_delete(kiln: Kiln, username: str, reason: str, yes: bool, as_json: bool) -> None:
    """Delete USERNAME's account for good: their media and files in every store, collections,
    favourites, follows, notifications, sessions and tokens; their comments on other people's media
    stay as placeholders; the username is held back for username_hold_days."""
    rt = kiln.runtime()
    with rt.sessions() as session:
        user = accounts.get_user(session, username)
        if not yes:
            click.confirm(f"Delete {username} and everything they put in? This cannot be undone", abort=True)
        done = leaving.delete_account(rt, session, None, user, reason=reason, via="cli")
    data = {"username": done.username, "media": done.media, "comments": done.comments,
            "collections": done.collections, "held_until": _iso(done.held_until), "files_left": done.files_left}
    if as_json:
        echo_json(data)
        return
    click.echo(f"Deleted {username}: {done.media} media, {done.collections} collections; "
               f"{done.comments} comments left as placeholders.")
    if done.held_until:
        click.echo(f"The username is held until {_iso(done.held_until)}.")
    if done.files_left:
        click.echo(f"{done.files_left} files could not be deleted now; `kiln storage gc` will remove them.", err=True)
        raise SystemExit(1)


@users.command("list")
@click.option("--search", default="", help="Part of the username or e-mail address.")
@click.option("--state", type=click.Choice(list(directory.STATES)), help="Only people in this state.")
@click.option("--privilege", type=click.Choice(list(PRIVILEGES)), help="Only people holding it now.")
@click.option("--limit", type=click.IntRange(1, directory.MAX_PAGE_SIZE), default=directory.PAGE_SIZE,
              show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def users_list(kiln: Kiln, search: str, state: str | None, privilege: str | None, limit: int, as_json: bool) -> None:
    """The newest accounts (as /admin/users lists them), with what each stores."""
    rt = kiln.runtime()
    where = directory.PeopleFilter(text=search or None, state=state, privilege=privilege, by_email=True)
    with rt.sessions() as session:
        rows: list[dict[str, Any]] = [
            {"username": row.user.username, "email": row.user.email, "banned": row.user.banned_now,
             "pending_approval": row.user.pending_approval,
             "privileges": row.user.privilege_names, "media_count": row.stored.items,
             "storage_bytes": row.stored.bytes, "last_seen": _iso(row.user.last_seen),
             "created": row.user.created.isoformat()}
            for row in directory.page(session, where, limit=limit).rows]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        flags = ("banned " if row["banned"] else "") + ("pending " if row["pending_approval"] else "")
        click.echo(f"{row['username']:<30} {flags}{','.join(row['privileges']) or '-':<45} "
                   f"{format_size(row['storage_bytes']):>10}  last seen {row['last_seen'] or 'never'}")
