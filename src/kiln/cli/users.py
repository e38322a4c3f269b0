"""adduser, makeadmin, changepw, token create, and the `users` group: show, set-upload-limit."""

from __future__ import annotations

import re

import click

from kiln.accounts import services as accounts
from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.media import services as media_service
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
        accounts.grant(user, "admin")
        accounts.grant(user, "moderator")
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
    """Look at people and set their upload limits."""


_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3,
          "t": 1024**4, "tib": 1024**4, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int | None:
    """'500MiB', '2GiB', '1.5 GiB', '1048576' (bytes) as bytes; 'none' as None (the site's limit).
    KiB/MiB/GiB (or K/M/G) count in 1024s, KB/MB/GB in 1000s."""
    if text.strip().lower() in ("none", "default", "site"):
        return None
    found = _SIZE.match(text)
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _UNITS:
        raise click.BadParameter(f"'{text}' is not a size; write it like 500MiB, 2GiB, 1048576 or none.")
    size = int(float(found.group(1)) * _UNITS[unit])
    if size < 1:
        raise click.BadParameter("An upload limit must be at least 1 byte.")
    return size


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
        media_service.set_upload_limit(user, limit)
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
        data = {"username": user.username, "email": user.email, "display_name": user.display_name,
                "created": user.created.isoformat(), "privileges": user.privilege_names,
                "verified": user.has("active"), "banned": user.banned, "upload_limit_bytes": limit,
                "upload_limit_is_own": user.upload_limit_bytes is not None}
    if as_json:
        echo_json(data)
        return
    for key in ("username", "email", "display_name", "created"):
        click.echo(f"{key:>13}: {data[key]}")
    click.echo(f"{'privileges':>13}: {', '.join(user.privilege_names) or '-'}")
    click.echo(f"{'verified':>13}: {'yes' if data['verified'] else 'no'}")
    click.echo(f"{'banned':>13}: {'yes' if data['banned'] else 'no'}")
    source = "own limit" if data["upload_limit_is_own"] else "the site's max_upload_bytes"
    click.echo(f"{'upload limit':>13}: {format_size(limit)} ({source})")
