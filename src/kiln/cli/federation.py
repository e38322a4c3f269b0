"""`kiln federation`: look up an account elsewhere, see and retry deliveries, block or silence a server
(docs/federation.md, docs/moderation.md)."""

from __future__ import annotations

import click
from sqlalchemy import select

from kiln.cli import echo_json, main
from kiln.cli.context import Kiln, pass_kiln
from kiln.federation import hosts, remote
from kiln.federation import moderation as service
from kiln.federation.models import DOMAIN_BLOCK_KINDS, RemoteActor
from kiln.processing import outbox


@main.group()
def federation() -> None:
    """ActivityPub: accounts elsewhere, deliveries, blocked servers."""


@federation.command("lookup")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def lookup(kiln: Kiln, account: str, as_json: bool) -> None:
    """Fetch an account elsewhere (@name@host or its address) and show what Kiln keeps of it."""
    rt = kiln.runtime()
    found = remote.lookup(rt, account)
    with rt.sessions() as session:
        row = session.scalars(select(RemoteActor).where(RemoteActor.uri == found.uri)).one()
        data = {"id": row.uri, "handle": row.handle, "name": row.display_name, "profile": row.profile_url,
                "inbox": row.inbox, "shared_inbox": row.shared_inbox, "key_id": row.key_id,
                "server": service.rule_for(session, row.uri) or "allowed"}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value if value is not None else '-'}")


@federation.command("follow")
@click.argument("username")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def follow(kiln: Kiln, username: str, account: str, as_json: bool) -> None:
    """USERNAME follows ACCOUNT elsewhere (@name@host or its address): a signed Follow is sent, and the
    follow waits for its server's Accept."""
    from kiln.accounts.services import get_user
    from kiln.federation import following

    rt = kiln.runtime()
    with rt.sessions() as session:
        user_id = get_user(session, username).id
    row = following.follow(rt, user_id, account)
    data = {"account": row.followee_uri if row else account, "pending": bool(row and not row.accepted)}
    if as_json:
        echo_json(data)
    else:
        click.echo(f"{username} asked to follow {data['account']}" if data["pending"] else
                   f"{username} follows {data['account']}")


@federation.command("unfollow")
@click.argument("username")
@click.argument("account")
@pass_kiln
def unfollow(kiln: Kiln, username: str, account: str) -> None:
    """USERNAME stops following ACCOUNT elsewhere (its server is sent Undo{Follow})."""
    from kiln.accounts.services import get_user
    from kiln.federation import following

    rt = kiln.runtime()
    with rt.sessions() as session:
        following.unfollow(rt, session, get_user(session, username), account)
        session.commit()
    click.echo(f"{username} no longer follows {account}")


@federation.command("deliveries")
@click.option("--host", help="Only deliveries to this server.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def deliveries(kiln: Kiln, host: str | None, as_json: bool) -> None:
    """Servers with deliveries waiting or failed, then those deliveries (failed first)."""
    with kiln.runtime().sessions() as session:
        view = hosts.overview(session, limit=1000)
        servers = [h for h in view.hosts if host is None or h.host == host.lower()]
        rows = [hosts.describe(e) for e in [*view.failed, *view.pending]]
    rows = [r for r in rows if host is None or r["host"] == host.lower()]
    if as_json:
        echo_json({"servers": [{"host": h.host, "state": h.state, "waiting": h.pending, "failed": h.failed,
                                "failures_in_a_row": h.failures, "last_error": h.last_error,
                                "next_probe": h.probe_at.isoformat() if h.probe_at else None} for h in servers],
                   "deliveries": rows})
        return
    if not servers:
        click.echo("Nothing is waiting and nothing has failed.")
        return
    for h in servers:
        click.echo(f"{h.host}\t{h.state}\t{h.pending} waiting\t{h.failed} failed\t{h.last_error}")
    for r in rows:
        click.echo(f"  #{r['id']} {r['state']} {r['type']} → {r['host']} ({r['attempts']} tries) {r['error']}")


@federation.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--host", help="Every failed or waiting delivery to this server.")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def retry(kiln: Kiln, ids: tuple[int, ...], host: str | None, as_json: bool) -> None:
    """Send failed and waiting deliveries again now (IDS, or --host, or all of them), fresh tries each."""
    rt = kiln.runtime()
    if ids:
        with rt.sessions() as session:
            own = hosts.deliveries_of(session, None, ("failed", "pending"))
        rung = outbox.retry(rt, [i for i in ids if i in own])
    else:
        rung = hosts.retry_host(rt, host.lower() if host else None)
    if as_json:
        echo_json({"retried": rung})
    else:
        click.echo(f"Sending {len(rung)} deliver{'y' if len(rung) == 1 else 'ies'} again.")


@federation.command("block")
@click.argument("domain")
@click.option("--silence", is_flag=True, help="Silence instead: its replies wait for a moderator, its likes and "
              "follows notify nobody.")
@click.option("--reason", default="", help="Kept in the audit log.")
@click.option("--yes", is_flag=True, help="Do not ask (a block removes everything the server's accounts left here).")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def block(kiln: Kiln, domain: str, silence: bool, reason: str, yes: bool, as_json: bool) -> None:
    """Block a server (and its subdomains): nothing from it is accepted or shown, its followers are
    removed, nothing is delivered there."""
    kind = DOMAIN_BLOCK_KINDS[1] if silence else DOMAIN_BLOCK_KINDS[0]
    clean = service.clean_domain(domain)
    if kind == "block" and not yes and not click.confirm(
            f"Block {clean}? Its replies, likes and followers here are removed.", err=True):
        raise SystemExit(1)
    with kiln.runtime().sessions() as session:
        _row, purged = service.block_domain(session, None, clean, kind, reason, via="cli")
        session.commit()
    if as_json:
        echo_json({"domain": clean, "kind": kind, "accounts_cleared": purged})
    else:
        click.echo(f"{clean}: {'silenced' if silence else 'blocked'}" + (f" ({purged} account(s) cleared)."
                                                                           if purged else "."))


@federation.command("unblock")
@click.argument("domain")
@pass_kiln
def unblock(kiln: Kiln, domain: str) -> None:
    """Lift a block or silence (what was removed stays removed)."""
    with kiln.runtime().sessions() as session:
        service.unblock_domain(session, None, domain, via="cli")
        session.commit()
    click.echo(f"{service.clean_domain(domain)}: allowed again.")


@federation.command("blocks")
@click.option("--json", "as_json", is_flag=True)
@pass_kiln
def blocks(kiln: Kiln, as_json: bool) -> None:
    """Blocked and silenced servers."""
    with kiln.runtime().sessions() as session:
        rows = [{"domain": r.domain, "kind": r.kind, "reason": r.reason, "since": r.created.isoformat()}
                for r in service.domain_blocks(session)]
    if as_json:
        echo_json(rows)
        return
    for r in rows or [{"domain": "No server is blocked or silenced.", "kind": "", "reason": ""}]:
        click.echo(f"{r['domain']}\t{r['kind']}\t{r['reason']}".rstrip())
