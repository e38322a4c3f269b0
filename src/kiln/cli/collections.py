"""`kiln collections list|show|create|add`: collections for scripts (docs/cli.md). The CLI acts as
the site's operator: `show` lists every item, whatever its visibility."""

from __future__ import annotations

import click

from kiln.accounts import services as accounts
from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.media import services as media_service
from kiln.media.models import VISIBILITIES
from kiln.social import collections as service
from kiln.web.collections_api import collection_json, item_json


@main.group()
def collections() -> None:
    """List, show, make and fill collections (albums)."""


@collections.command("list")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def list_(kiln: Kiln, username: str, as_json: bool) -> None:
    """USERNAME's collections, newest first, whatever their visibility."""
    rt = kiln.runtime()
    base = rt.settings.link_base()
    with rt.sessions() as session:
        owner = accounts.get_user(session, username)
        rows, _next = service.user_collections(session, owner, owner, per_page=service.MAX_ITEMS)
        data = [collection_json(c, base) for c in rows]
    if as_json:
        echo_json(data)
        return
    for row in data:
        click.echo(f"{row['id']}\t{row['visibility']:<9}\t{row['title']}")


@collections.command("show")
@click.argument("collection_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def show(kiln: Kiln, collection_id: int, as_json: bool) -> None:
    """A collection and all its items in order."""
    rt = kiln.runtime()
    base = rt.settings.link_base()
    with rt.sessions() as session:
        collection = service.get_collection(session, collection_id)
        data = collection_json(collection, base)
        data["collaborators"] = [u.username for u in service.collaborators(session, collection)]
        data["items"] = [item_json(rt, item, base, None) for item in service.all_items(session, collection)]
    if as_json:
        echo_json(data)
        return
    for key in ("id", "title", "visibility", "owner", "url"):
        click.echo(f"{key:>12}: {data[key]}")
    click.echo(f"{'helpers':>12}: {', '.join(data['collaborators']) or '-'}")
    for item in data["items"]:
        note = f"\t({item['note']})" if item["note"] else ""
        click.echo(f"{item['position']:>12}: {item['id']}\t{item['title']}{note}")


@collections.command("create")
@click.argument("username")
@click.argument("title")
@click.option("--description", default="", help="Markdown.")
@click.option("--visibility", type=click.Choice(VISIBILITIES), default="public", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def create(kiln: Kiln, username: str, title: str, description: str, visibility: str, as_json: bool) -> None:
    """Make a collection owned by USERNAME."""
    rt = kiln.runtime()
    with rt.sessions() as session:
        collection = service.create(session, accounts.get_user(session, username), title, description, visibility)
        session.commit()
        data = collection_json(collection, rt.settings.link_base())
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Made collection {data['id']}: {data['url']}")


@collections.command("add")
@click.argument("collection_id", type=int)
@click.argument("media_ids", type=int, nargs=-1, required=True)
@click.option("--note", default="", help="The note beside the item(s).")
@pass_kiln
def add(kiln: Kiln, collection_id: int, media_ids: tuple[int, ...], note: str) -> None:
    """Add items to a collection, at its end, as their owner (who must be its owner or a collaborator)."""
    rt = kiln.runtime()
    with rt.sessions() as session:
        collection = service.get_collection(session, collection_id)
        for media_id in media_ids:
            media = media_service.get_media(session, media_id)
            service.add_item(session, media.owner, collection, media, note)
        session.commit()
    click.echo(f"Added {len(media_ids)} item(s) to collection {collection_id}.")
