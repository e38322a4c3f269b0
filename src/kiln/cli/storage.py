"""`kiln storage`: check access, collect garbage, migrate a store to another backend."""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING

import click

from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.media.garbage import GRACE_SECONDS, gc
from kiln.storage import STORE_NAMES
from kiln.storage.operations import check, migrate
from kiln.units import format_size

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar  # what click.progressbar returns


@main.group()
def storage() -> None:
    """Media storage: check, gc, migrate."""


@storage.command("check")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def storage_check(kiln: Kiln, as_json: bool) -> None:
    """Write, read and delete a probe in every store on every configured backend."""
    rt = kiln.runtime()
    results = check(rt.settings, rt.stores)
    if as_json:
        echo_json([dataclasses.asdict(r) for r in results])
    else:
        current = rt.stores.assignments()
        for r in results:
            mark = click.style("ok  ", fg="green") if r.ok else click.style("FAIL", fg="red")
            using = " (in use)" if current[r.store].backend == r.backend else ""
            click.echo(f"{mark} {r.store:<10} on {r.backend}{using}: {r.message}")
    if not all(r.ok for r in results):
        sys.exit(1)


@storage.command("gc")
@click.option("--dry-run", is_flag=True, help="Only report.")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.option("--grace", type=click.IntRange(min=0), default=GRACE_SECONDS, show_default=True,
              help="Leave objects younger than this many seconds (their rows may not have committed yet).")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def storage_gc(kiln: Kiln, dry_run: bool, yes: bool, grace: int, as_json: bool) -> None:
    """Find objects no media references (and references whose object is missing); delete the former."""
    rt = kiln.runtime()
    report = gc(rt.sessions, rt.stores, dry_run=True, grace=grace)
    total = sum(len(keys) for keys in report.unreferenced.values()) + len(report.partial)
    if not dry_run and total and (yes or click.confirm(f"Delete {total} unreferenced objects?")):
        report = gc(rt.sessions, rt.stores, dry_run=False, grace=grace)
    if as_json:
        echo_json(dataclasses.asdict(report))
        return
    for name, keys in report.unreferenced.items():
        click.echo(f"{name}: {len(keys)} unreferenced object(s)")
        for key in keys[:20]:
            click.echo(f"  {'/'.join(key)}")
    if report.partial:
        click.echo(f"{len(report.partial)} half-written file(s) of saves that were cut off (a killed process)")
    if report.recent:
        click.echo(f"{report.recent} unreferenced object(s) younger than {grace} s left alone.")
    for media_id, what, key in report.missing:
        click.echo(f"missing: media {media_id} {what} at {'/'.join(key)}")
    if report.deleted:
        click.echo(f"Deleted {report.deleted} object(s).")


@storage.command("migrate")
@click.option("--store", type=click.Choice(STORE_NAMES), required=True)
@click.option("--to", "target", required=True, help="A backend name from [storage.backends].")
@click.option("--dry-run", is_flag=True, help="Count what would be copied.")
@click.option("--delete-old", is_flag=True, help="After the switch, delete the objects on the old backend.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def storage_migrate(kiln: Kiln, store: str, target: str, dry_run: bool, delete_old: bool, as_json: bool) -> None:
    """Copy a store to another backend, verify every object, and switch to it. Safe to interrupt and rerun."""
    rt = kiln.runtime()
    bar: dict[str, ProgressBar[int]] = {}

    def start(total: int) -> None:
        if not dry_run and not as_json:
            bar["bar"] = click.progressbar(length=total, label=f"Copying {store}", file=sys.stderr, show_pos=True)
            bar["bar"].__enter__()

    def step(n: int) -> None:
        if "bar" in bar:
            bar["bar"].update(n)

    try:
        report = migrate(rt.settings, rt.sessions, rt.stores, store, target, dry_run=dry_run,
                         delete_old=delete_old, progress=step, on_total=start)
    finally:
        if "bar" in bar:
            bar["bar"].__exit__(None, None, None)
    if as_json:
        echo_json(dataclasses.asdict(report))
    elif dry_run:
        click.echo(f"{report.objects} object(s) in the {store} store on '{report.source}' would be copied to "
                   f"'{target}'.")
    else:
        click.echo(f"The {store} store is now on '{target}': {report.copied} copied, {report.already_there} "
                   f"already there ({format_size(report.bytes_copied)} copied in all), {report.deleted_old} old "
                   "copies deleted.")
