"""addmedia, and the `media` group: list, show, set-visibility, delete."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kiln.accounts import services as accounts
from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.errors import KilnError
from kiln.media import services as media_service
from kiln.media.models import VISIBILITIES, MediaEntry
from kiln.media.services import MediaFields
from kiln.processing import ledger
from kiln.processing.dispatch import RecordingDispatcher
from kiln.processing.service import process_media
from kiln.units import format_size


@main.command()
@click.argument("username")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title")
@click.option("--description")
@click.option("--alt", "alt_text", help="What the picture shows, for people who cannot see it (one file only).")
@click.option("--tags", help="Comma-separated.")
@click.option("--license", "license_url", help="Licence URL (empty for all rights reserved).")
@click.option("--visibility", type=click.Choice(VISIBILITIES), default="public", show_default=True,
              help="unlisted: by link only; private: the owner and admins only.")
@click.option("--wait", is_flag=True, help="Process here and now, and wait until each file is done.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def addmedia(kiln: Kiln, username: str, files: tuple[Path, ...], title: str | None, description: str | None,
             alt_text: str | None, tags: str | None, license_url: str | None, visibility: str, wait: bool,
             as_json: bool) -> None:
    """Upload FILES for USERNAME. Without --wait, running workers process them."""
    if alt_text and len(files) > 1:
        raise click.UsageError("--alt describes one picture: add the files one at a time to describe each.")
    rt = kiln.runtime(RecordingDispatcher() if wait else None)
    results, failures = [], 0
    with rt.sessions() as session:
        owner = accounts.get_user(session, username)
        with click.progressbar(files, label="Uploading", file=sys.stderr,
                               show_pos=True) as bar:
            for path in bar:
                fields = MediaFields(title=title, description=description, alt_text=alt_text, tags=tags,
                                     license=license_url,
                                     visibility=visibility)
                try:
                    with path.open("rb") as fh:
                        entry = media_service.submit(rt, session, owner, fh, path.name, fields)
                    results.append(entry.id)
                except KilnError as exc:
                    failures += 1
                    click.echo(f"\n{path}: {exc.message}", err=True)
        if wait:
            with click.progressbar(results, label="Processing", file=sys.stderr,
                                   show_pos=True) as bar:
                for media_id in bar:
                    _process_until_settled(rt, media_id)
        items = [media_service.media_json(rt, session.get_one(MediaEntry, i, populate_existing=True),
                                          rt.settings.link_base(), ledger.steps_of(session, i)) for i in results]
    if as_json:
        echo_json(items)
    else:
        for item in items:
            click.echo(f"{item['id']}\t{item['state']}\t{item['title']}\t{item['url']}")
    if failures:
        raise SystemExit(1)


def _process_until_settled(rt, media_id: int, limit: float = 600.0) -> None:
    """Run due steps here; a transient failure waits out its backoff (bounded), like a worker would."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = process_media(rt, media_id)
        if state in ("processed", "failed", None):
            return
        time.sleep(0.5)


@main.group()
def media() -> None:
    """List, show, change and delete media."""


@media.command("list")
@click.option("--user", "username")
@click.option("--state", type=click.Choice(["queued", "processing", "processed", "failed"]))
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def media_list(kiln: Kiln, username: str | None, state: str | None, limit: int, as_json: bool) -> None:
    rt = kiln.runtime()
    with rt.sessions() as session:
        owner = accounts.get_user(session, username) if username else None
        items = [media_service.media_json(rt, m, rt.settings.link_base())
                 for m in media_service.list_for_admin(session, owner=owner, state=state, limit=limit)]
    if as_json:
        echo_json(items)
        return
    for item in items:
        click.echo(f"{item['id']}\t{item['state']:<10}\t{item['owner']}\t{item['title']}")


@media.command("show")
@click.argument("media_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def media_show(kiln: Kiln, media_id: int, as_json: bool) -> None:
    rt = kiln.runtime()
    with rt.sessions() as session:
        item = media_service.get_media(session, media_id)
        data = media_service.media_json(rt, item, rt.settings.link_base(), ledger.steps_of(session, media_id))
    if as_json:
        echo_json(data)
        return
    for key in ("id", "title", "kind", "state", "visibility", "owner", "url", "created"):
        click.echo(f"{key:>10}: {data[key]}")
    if "error" in data:
        click.echo(f"{'error':>10}: {data['error']['message']} ({data['error']['code']})")
    for key, value in data["info"].items():
        if key != "text" and not isinstance(value, dict | list):
            click.echo(f"{key:>10}: {value}")
    for name, r in data["renditions"].items():
        click.echo(f"{name:>10}: {r['width']}x{r['height']} {r['mime_type']} {format_size(r['bytes'])}  {r['url']}")
    for step in data["steps"]:
        click.echo(f"{'step':>10}: {step['name']} {step['state']} (attempts {step['attempts']})")


@media.command("set-visibility")
@click.argument("media_id", type=int)
@click.argument("visibility", type=click.Choice(VISIBILITIES))
@pass_kiln
def media_set_visibility(kiln: Kiln, media_id: int, visibility: str) -> None:
    """Make an item public, unlisted or private. Making it private moves its files to new URLs,
    so every URL handed out before stops working."""
    rt = kiln.runtime()
    with rt.sessions() as session:
        item = media_service.get_media(session, media_id)
        media_service.update(rt, session, item.owner, item, MediaFields(visibility=visibility))
    click.echo(f"Media {media_id} is now {visibility}.")


@media.command("delete")
@click.argument("media_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_kiln
def media_delete(kiln: Kiln, media_id: int, yes: bool) -> None:
    rt = kiln.runtime()
    with rt.sessions() as session:
        item = media_service.get_media(session, media_id)
        if not yes:
            click.confirm(f"Delete media {media_id} “{item.title}” and all its files?", abort=True)
        media_service.delete(rt, session, None, item)
    click.echo(f"Deleted media {media_id}.")
