"""The `reprocess` group: available, run, failed, stale, bulk.

Each verb prints its counts first, asks before changing anything (unless --yes), and with --wait
works through the items here with a progress bar, so it finishes even when no worker runs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click

from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.processing import reprocess as service
from kiln.processing.dispatch import RecordingDispatcher
from kiln.runtime import Runtime


@main.group()
def reprocess() -> None:
    """Run processing steps again: after failures, or after the settings changed."""


def _runtime(kiln: Kiln, here: bool) -> Runtime:
    # Working here (--wait) or changing nothing: bells are only recorded, this process does the work.
    return kiln.runtime(RecordingDispatcher() if here else None)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _wait(rt: Runtime, wanted: Mapping[int, Any], label: str) -> dict[str, Any]:
    ids = sorted(wanted)
    with click.progressbar(ids, label=label, file=sys.stderr, show_pos=True) as bar:
        for media_id in bar:
            service.settle(rt, media_id)
    return service.outcome(rt, wanted)


def _report_outcome(result: dict[str, Any]) -> None:
    parts = [f"{result['done']} done", f"{result['failed']} failed"]
    if result["waiting"]:
        parts.append(f"{result['waiting']} waiting for a retry")
    if result["busy"]:
        parts.append(f"{result['busy']} still with a worker")
    click.echo("Steps: " + ", ".join(parts) + ".")
    for media_id, step, message in result["failures"]:
        click.echo(f"  media {media_id} {step}: {message}", err=True)


def _requested_line(rt: Runtime, requested: dict[str, Any], wait: bool) -> str:
    items = len(requested["media_ids"])
    line = f"Requested {_plural(requested['steps'], 'step')} on {_plural(items, 'item')}"
    if requested["reason"] == "retry":
        line += " on the retry lane."
    else:
        line += " on the reprocess lane"
        limit = rt.settings.processing.reprocess_concurrency
        line += "." if wait else f" (workers take {limit} at a time: processing.reprocess_concurrency)."
    if requested["busy"]:
        line += f" Left alone (running, or changed since): {', '.join(map(str, requested['busy']))}."
    return line


def _finish(rt: Runtime, requested: dict[str, Any], wanted: Mapping[int, Any], wait: bool,
            as_json: bool, extra: dict[str, Any]) -> None:
    """After a request: wait here if asked, then print (or dump) what happened."""
    result = None
    if wait and requested["media_ids"]:
        result = _wait(rt, {i: wanted[i] for i in requested["media_ids"]}, "Reprocessing"
                       if requested["reason"] == "reprocess" else "Retrying")
    if as_json:
        echo_json({**extra, "requested": requested, "outcome": result})
    else:
        click.echo(_requested_line(rt, requested, wait))
        if result is not None:
            _report_outcome(result)
    if result is not None and result["failed"]:
        raise SystemExit(1)


def _confirm(question: str, yes: bool) -> None:
    if not yes:
        click.confirm(question, abort=True, err=True)


# available -------------------------------------------------------------------------------------
@reprocess.command("available")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def available_cmd(kiln: Kiln, target: str, as_json: bool) -> None:
    """What can run for a media item (ID) or a kind (KIND), and what is stale."""
    rt = _runtime(kiln, True)
    data = service.available(rt, int(target) if target.isdigit() else target)
    if as_json:
        echo_json(data)
        return
    if "media_id" in data:
        click.echo(f"media {data['media_id']} ({data['kind']}, {data['state']}): {data['title']}")
        for step in data["steps"]:
            note = ""
            if step["stale"]:
                note = "stale: the current settings would make it differently"
            elif step["spec_changed"]:
                note = "settings changed, output would be the same"
            if step["error"]:
                note = (note + "; " if note else "") + step["error"]["message"]
            click.echo(f"  {step['step']:<12} {','.join(step['renditions']) or '-':<12} {step['state']:<8} {note}"
                       .rstrip())
        click.echo(f"Run one with: kiln reprocess run {data['media_id']} STEP (or all)")
        return
    items = ", ".join(f"{state} {n}" for state, n in data["items"].items()) or "none"
    click.echo(f"{data['kind']}: {sum(data['items'].values())} items ({items})")
    for step in data["steps"]:
        states = ", ".join(f"{state} {n}" for state, n in step["states"].items()) or "-"
        note = f"{step['stale']} stale" if step["stale"] else ""
        if step["same_output"]:
            note += (", " if note else "") + f"{step['same_output']} same output"
        click.echo(f"  {step['step']:<12} {','.join(step['renditions']) or '-':<12} {states:<24} {note}".rstrip())


# run -------------------------------------------------------------------------------------------
@reprocess.command("run")
@click.argument("media_id", type=int)
@click.argument("step")
@click.option("--wait", is_flag=True, help="Process here and now, and wait until it is done.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def run_cmd(kiln: Kiln, media_id: int, step: str, wait: bool, as_json: bool) -> None:
    """Run STEP (or all) of one media item again, on the reprocess lane."""
    rt = _runtime(kiln, wait)
    names = service.check_steps(rt, service.kind_of(rt, media_id), [step])
    requested = service.request(rt, [media_id], names, "reprocess")
    _finish(rt, requested, {media_id: set(names)}, wait, as_json, {"media_id": media_id, "step": step})


# failed ----------------------------------------------------------------------------------------
@reprocess.command("failed")
@click.option("--kind")
@click.option("--dry-run", is_flag=True, help="Only count.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Process here and now, and wait until each item is done.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def failed_cmd(kiln: Kiln, kind: str | None, dry_run: bool, yes: bool, wait: bool, as_json: bool) -> None:
    """Retry now every failed step (of failed items, and of published items whose reprocess failed)."""
    rt = _runtime(kiln, wait or dry_run)
    report = service.failed(rt, kind)
    total = len({media_id for media_id, _ in report["failed"]})
    if not as_json:
        for kind_name, data in report["kinds"].items():
            steps = ", ".join(f"{name} {n}" for name, n in data["steps"].items() if n) or "none"
            click.echo(f"{kind_name}: {_plural(data['items'], 'item')} with failed steps ({steps})")
        for media_id, message in report["errors"].items():
            click.echo(f"  media {media_id}: {message}")
        if not total:
            click.echo("No failed steps.")
    if not total or dry_run:
        if as_json:
            echo_json({"report": report, "requested": None, "outcome": None})
        elif dry_run and total:
            click.echo("Dry run: nothing was changed.")
        return
    _confirm(f"Retry {_plural(len(report['failed']), 'step')} on {_plural(total, 'item')} now?", yes)
    requested = service.retry_failed(rt, report=report)
    _finish(rt, requested, service.group_pairs(report["failed"]), wait, as_json, {"report": report})


# stale -----------------------------------------------------------------------------------------
@reprocess.command("stale")
@click.option("--kind")
@click.option("--dry-run", is_flag=True, help="Only count.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Process here and now, and wait until each item is done.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def stale_cmd(kiln: Kiln, kind: str | None, dry_run: bool, yes: bool, wait: bool, as_json: bool) -> None:
    """Remake every rendition the current settings would make differently."""
    rt = _runtime(kiln, wait or dry_run)
    report = service.stale(rt, kind)
    stale_items = len({media_id for media_id, _ in report["stale"]})
    same_items = len({media_id for media_id, _ in report["same_output"]})
    if not as_json:
        for kind_name, data in report["kinds"].items():
            for step, counts in data["steps"].items():
                line = f"{step}: {counts['stale']} of {data['items']} {kind_name} items are stale"
                same = counts["same_output"]
                if same:
                    line += (f"; {same} more already {'matches' if same == 1 else 'match'} the new settings "
                             f"({'its record is' if same == 1 else 'their records are'} updated, nothing is remade)")
                click.echo(line)
        click.echo(f"{_plural(stale_items, 'item')} to reprocess.")
    if dry_run or not (stale_items or same_items):
        if as_json:
            echo_json({"report": report, "requested": None, "outcome": None})
        elif dry_run:
            click.echo("Dry run: nothing was changed.")
        return
    _confirm(f"Reprocess {_plural(stale_items, 'item')}?", yes)
    result = service.apply_stale(rt, report)
    if not as_json and result["recorded"]:
        click.echo(f"Recorded the new settings on {_plural(result['recorded'], 'step')} whose output "
                   "would not change.")
    _finish(rt, result, service.group_pairs(report["stale"]), wait, as_json, {"report": report})


# bulk ------------------------------------------------------------------------------------------
@reprocess.command("bulk")
@click.option("--kind", required=True)
@click.option("--state", required=True, type=click.Choice(service.BULK_STATES), help="Media state.")
@click.option("--step", required=True, help="A step of the kind, or all.")
@click.option("--dry-run", is_flag=True, help="Only count.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Process here and now, and wait until each item is done.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def bulk_cmd(kiln: Kiln, kind: str, state: str, step: str, dry_run: bool, yes: bool, wait: bool,
             as_json: bool) -> None:
    """Reprocess STEP of every KIND item in STATE, stale or not."""
    rt = _runtime(kiln, wait or dry_run)
    plan = service.bulk(rt, kind, state, step, dry_run=True)
    count = len(plan["media_ids"])
    if not as_json:
        click.echo(f"{'+'.join(plan['steps'])}: {_plural(count, kind + ' item')} {'is' if count == 1 else 'are'} "
                   f"{state}.")
    if dry_run or not count:
        if as_json:
            echo_json({"plan": plan, "requested": None, "outcome": None})
        elif dry_run:
            click.echo("Dry run: nothing was changed.")
        return
    _confirm(f"Reprocess {'+'.join(plan['steps'])} of {_plural(count, 'item')}?", yes)
    wanted = {i: set(plan["steps"]) for i in plan["media_ids"]}
    requested = service.request_pairs(rt, wanted, "reprocess")
    _finish(rt, requested, wanted, wait, as_json, {"plan": plan})
