"""`kiln import`: bring another site's people and media into Kiln (kiln.imports)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.imports.mediagoblin import KINDS, ImportReport, Progress, import_site
from kiln.media.models import VISIBILITIES
from kiln.processing.dispatch import RecordingDispatcher
from kiln.runtime import Runtime


@main.group("import")
def import_() -> None:
    """Import another site, a folder or an export into this one (safe to run again: what is here
    already is skipped)."""


def _progress(as_json: bool, verb: str) -> tuple[Progress, Callable[[], None]]:
    bars: dict[str, Any] = {}
    open_bar: list[Any] = []  # the one bar being drawn

    def finish() -> None:
        while open_bar:
            open_bar.pop().render_finish()

    def progress(kind: str, done: int, total: int) -> None:
        if as_json:
            return
        bar = bars.get(kind)
        if bar is None:
            finish()
            bar = bars[kind] = click.progressbar(length=total, label=f"{verb} {kind:<11}", file=sys.stderr,
                                                 show_pos=True)
            open_bar.append(bar)
        bar.update(done - bar.pos)

    return progress, finish


def _finish(rt: Runtime, report: ImportReport, *, wait: bool, as_json: bool, kinds: tuple[str, ...]) -> None:
    from kiln.cli.media import _process_until_settled

    if wait and report.new_media:
        with click.progressbar(report.new_media, label="Processing", file=sys.stderr, show_pos=True) as todo:
            for media_id in todo:
                _process_until_settled(rt, media_id)
    if as_json:
        echo_json(report.as_json())
        return
    verb = "would import" if report.dry_run else "imported"
    for kind in kinds:
        counts = report.counts[kind]
        line = (f"{kind:<12} {verb} {counts.get('new', 0)}, already here {counts.get('already', 0)}, "
                f"left out {counts.get('skipped', 0)}")
        if counts.get("left_out_before"):
            line += f", left out by an earlier run {counts['left_out_before']} (--retry tries them again)"
        click.echo(line)
    for note in report.notes:
        click.echo(f"  - {note}")
    if report.nothing_to_do:
        click.echo("Nothing to do: everything is here already.")
    elif not report.dry_run and not wait and report.new_media:
        click.echo(f"{len(report.new_media)} items are queued for processing by Kiln's workers.")


COMMON = [
    click.option("--dry-run", is_flag=True, help="Say what would be imported, and change nothing."),
    click.option("--wait", is_flag=True, help="Process the imported media here and now, and wait until each is done."),
    click.option("--json", "as_json", is_flag=True),
]


def common(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(COMMON):
        command = option(command)
    return command


@import_.command("mediagoblin")
@click.option("--config", "config", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The site's mediagoblin.ini (its database and media folders are found from it).")
@click.option("--retry", is_flag=True,
              help="Try again what an earlier run left out (after fixing what its report said).")
@common
@pass_kiln
def import_mediagoblin(kiln: Kiln, config: Path, retry: bool, dry_run: bool, wait: bool, as_json: bool) -> None:
    """Import a GNU MediaGoblin site: people (who log in with their old passwords), media, tags, comments,
    collections and reports; its old URLs then redirect here. Without --wait, running workers process
    the media."""
    rt = kiln.runtime(RecordingDispatcher() if wait else None)
    progress, done = _progress(as_json, "Checking" if dry_run else "Importing")
    report = import_site(rt, config, dry_run=dry_run, retry=retry, progress=progress)
    done()
    _finish(rt, report, wait=wait, as_json=as_json, kinds=KINDS)


def _items(kiln: Kiln, source: str, user: str, visibility: str, dry_run: bool, wait: bool, as_json: bool,
           read: Callable[[], Any], collection: str | None = None) -> None:
    from kiln.imports.items import ItemImport

    rt = kiln.runtime(RecordingDispatcher() if wait else None)
    found = read()
    progress, done = _progress(as_json, "Checking" if dry_run else "Importing")
    try:
        importer = ItemImport(rt, source, user, visibility=visibility, dry_run=dry_run, collection=collection,
                              albums=getattr(found, "albums", None), progress=progress)
        importer.report.notes.extend(found.notes)
        report = importer.run(found.items, len(found.items))
    finally:
        done()
        if hasattr(found, "zips"):
            found.zips.close()
    _finish(rt, report, wait=wait, as_json=as_json, kinds=("media", "collections"))


USER = click.option("--user", "user", required=True, help="Whose account the media go into.")


@import_.command("folder")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@USER
@click.option("--csv", "sheet", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A spreadsheet of titles, descriptions, tags, licences, dates and albums, one row per file.")
@click.option("--collection", help="Put every file into this collection (made if it does not exist).")
@click.option("--visibility", type=click.Choice(VISIBILITIES), default="public", show_default=True)
@common
@pass_kiln
def import_folder(kiln: Kiln, folder: Path, user: str, sheet: Path | None, collection: str | None, visibility: str,
                  dry_run: bool, wait: bool, as_json: bool) -> None:
    """Import every media file under FOLDER into USER's account (sub-folders too; hidden files and
    sidecars are passed over)."""
    from kiln.imports.sources import read_folder

    _items(kiln, "folder", user, visibility, dry_run, wait, as_json, lambda: read_folder(folder, sheet), collection)


@import_.command("takeout")
@click.argument("zips", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@USER
@click.option("--visibility", type=click.Choice(VISIBILITIES), default="private", show_default=True,
              help="Google Photos are private: so are they here unless you say otherwise.")
@common
@pass_kiln
def import_takeout(kiln: Kiln, zips: tuple[Path, ...], user: str, visibility: str, dry_run: bool, wait: bool,
                   as_json: bool) -> None:
    """Import a Google Takeout of Google Photos (all its zip parts): photos and videos with their
    descriptions, dates and places; albums become collections."""
    from kiln.imports.sources import read_takeout

    _items(kiln, "takeout", user, visibility, dry_run, wait, as_json, lambda: read_takeout(list(zips)))


@import_.command("flickr")
@click.argument("zips", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@USER
@common
@pass_kiln
def import_flickr(kiln: Kiln, zips: tuple[Path, ...], user: str, dry_run: bool, wait: bool, as_json: bool) -> None:
    """Import a Flickr export (all its zip parts, the account part included): photos with their titles,
    descriptions, tags, licences, dates and places; what was public on Flickr is public here, the rest
    private; albums become collections."""
    from kiln.imports.sources import read_flickr

    _items(kiln, "flickr", user, "public", dry_run, wait, as_json, lambda: read_flickr(list(zips)))
