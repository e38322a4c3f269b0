"""`kiln moderation reports|purge`: the moderation queue for scripts, and deleting for good what the
moderators removed once its grace period is over (the sweeper does it too; docs/moderation.md)."""

from __future__ import annotations

import click

from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.moderation import reports as service
from kiln.moderation.removal import due, purge_due


@main.group()
def moderation() -> None:
    """Open reports, and purging removed content."""


@moderation.command("reports")
@click.option("--sort", type=click.Choice(service.SORTS), default="newest", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def reports(kiln: Kiln, sort: str, as_json: bool) -> None:
    """Open reports, grouped by what they are about."""
    rt = kiln.runtime()
    with rt.sessions() as session:
        data = [service.case_json(c) for c in service.open_cases(session, sort)]
    if as_json:
        echo_json(data)
        return
    for case in data:
        click.echo(f"{case['target_type']} {case['target_id']}\t{case['count']} report(s)\t{case['label']}")


@moderation.command("purge")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@pass_kiln
def purge(kiln: Kiln, dry_run: bool, yes: bool) -> None:
    """Delete for good the media (rows and files) and collections removed longer ago than
    moderation.removal_grace_days."""
    rt = kiln.runtime()
    media_ids, collection_ids = due(rt)
    click.echo(f"{len(media_ids)} removed item(s) and {len(collection_ids)} removed collection(s) are due.")
    if dry_run or not (media_ids or collection_ids):
        return
    if yes or click.confirm("Delete them for good?"):
        click.echo(f"Purged {purge_due(rt, via='cli')}.")
