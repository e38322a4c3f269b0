"""The `search` group: reindex, query."""

from __future__ import annotations

import sys

import click

from kiln.cli import main
from kiln.cli.context import Kiln, pass_kiln


@main.group()
def search() -> None:
    """Full-text search: rebuild the index, try a query."""


@search.command()
@pass_kiln
def reindex(kiln: Kiln) -> None:
    """Rebuild the search index from every item (searches keep answering meanwhile). Needed after
    upgrading to a version with search, or after changing search.language; never for normal use,
    where every change updates the index by itself."""
    from kiln.media.models import MediaEntry
    from kiln.search.upkeep import reindex_all

    rt = kiln.runtime()
    with rt.sessions() as session:
        total = session.query(MediaEntry).count()
    with click.progressbar(length=total, label="Indexing", file=sys.stderr, show_pos=True) as bar:
        written, removed = reindex_all(rt, bar.update)
    click.echo(f"Indexed {written} searchable item(s) of {total}; removed {removed} row(s) of items that are gone.")


@search.command()
@click.argument("words", nargs=-1)
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@pass_kiln
def query(kiln: Kiln, words: tuple[str, ...], limit: int) -> None:
    """Search as an anonymous visitor would and print what is found (id, owner, title)."""
    from kiln.search import service

    rt = kiln.runtime()
    with rt.sessions() as session:
        page = service.find(rt, session, None, service.make_search(q=" ".join(words) + " "), per_page=limit)
        for media in page.items:
            click.echo(f"{media.id}\t{media.owner.username}\t{media.title}")
        if not page.ids:
            click.echo("Nothing found.", err=True)
