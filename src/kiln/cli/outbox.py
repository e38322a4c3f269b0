"""`kiln outbox`: see the mail waiting to be sent or failed, and send it again."""

from __future__ import annotations

import dataclasses

import click

from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.processing import outbox as effects
from kiln.processing.models import EFFECT_STATES
from kiln.processing.stats import outbox_rows

UNFINISHED = ("queued", "running", "pending", "failed")


@main.group()
def outbox() -> None:
    """Side effects run after commit (mail): list, retry."""


@outbox.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(EFFECT_STATES),
              help="Only these states (repeat the option); default: everything not sent yet.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def outbox_list(kiln: Kiln, states: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Effects newest first: what, state, attempts, and why the last attempt failed."""
    with kiln.runtime().sessions() as session:
        rows = outbox_rows(session, states or UNFINISHED, newest_first=True, limit=limit)
    if as_json:
        echo_json([{**dataclasses.asdict(row), "created": row.created.isoformat(),
                    "next_run": row.next_run.isoformat() if row.next_run else None} for row in rows])
        return
    if not rows:
        click.echo("Nothing in the outbox" + (f" in state {', '.join(states)}." if states else " to send."))
        return
    for row in rows:
        when = f", again at {row.next_run:%Y-%m-%d %H:%M:%S} UTC" if row.next_run else ""
        click.echo(f"#{row.id} {row.state} ({row.attempts} attempt{'s' if row.attempts != 1 else ''}{when}) "
                   f"{row.kind}: {row.summary}")
        if row.message:
            click.echo(f"    {row.message} [{row.code}]")


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", "failed_only", is_flag=True, help="Only effects that failed for good.")
@click.option("--here", is_flag=True, help="Run them in this process now instead of ringing the workers.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def outbox_retry(kiln: Kiln, ids: tuple[int, ...], failed_only: bool, here: bool, as_json: bool) -> None:
    """Run failed effects (and those waiting to retry) again now, with a fresh count of attempts;
    IDS: only these."""
    rt = kiln.runtime()
    if here:
        rt.effects = effects.InlineBell(rt)
    retried = effects.retry(rt, ids or None, failed_only=failed_only)
    rows = {}
    if here:
        with rt.sessions() as session:
            rows = {row.id: row for row in outbox_rows(session, EFFECT_STATES, limit=None, ids=retried)}
    if as_json:
        echo_json({"retried": retried,
                   **({"states": {str(i): rows[i].state for i in retried if i in rows}} if here else {})})
        return
    if not retried:
        click.echo("Nothing to retry.")
        return
    click.echo(f"Retrying {len(retried)}: " + ", ".join(f"#{i}" for i in retried)
               + ("." if here else " (the workers send them)."))
    if here:
        for i in retried:
            if i in rows:
                click.echo(f"#{i} {rows[i].state}" + (f": {rows[i].message}" if rows[i].state != "done" and
                                                       rows[i].message else ""))
