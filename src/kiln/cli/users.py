"""adduser, makeadmin, changepw, token create."""

from __future__ import annotations

import click

from kiln.accounts import services as accounts
from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln


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
