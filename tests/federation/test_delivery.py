"""Delivery that never gives up too early (kiln.federation.hosts, kiln.federation.delivery): retries per
destination host with backoff up to a day apart, about three weeks in all; a permanent refusal is
marked failed at once; a server that keeps failing counts as dead, its deliveries wait without using
up their tries, one is tried now and then, and when it gets through the rest go. The administrators'
page lists it all and sends again. Deliveries go to the signing test peer over real HTTP on 127.0.0.1,
which answers with whatever status the test sets."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from kiln.accounts import services as accounts
from kiln.db.base import utcnow
from kiln.federation import hosts
from kiln.federation.models import DeliveryHost
from kiln.processing import ledger, outbox
from kiln.processing.models import OutboxEffect, WorkState
from tests.federation.peer import Peer
from tests.federation.test_follow import follow_activity, post
from tests.social_kit import log_in

pytestmark = pytest.mark.db


def deliveries(rt) -> list[OutboxEffect]:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        rows = list(session.scalars(select(OutboxEffect).where(OutboxEffect.kind == hosts.DELIVERY)
                                    .order_by(OutboxEffect.id)))
        session.expunge_all()
        return rows


def host_row(rt, peer: Peer) -> DeliveryHost | None:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        row = session.get(DeliveryHost, "127.0.0.1")
        if row is not None:
            session.expunge(row)
        return row


def test_the_delivery_policy_waits_up_to_a_day_and_lasts_weeks(fed_rt):
    policy = hosts.policy(fed_rt)
    assert policy.max_attempts == 30 and policy.backoff_cap == 86_400
    waits = [min(policy.backoff_cap, policy.backoff_base * 2 ** (n - 1)) for n in range(1, policy.max_attempts)]
    assert waits[0] == 60 and waits[-1] == 86_400 and sum(waits) > 14 * 86_400


def test_a_failing_server_is_retried_then_dead_then_alive_again(fed, fed_rt, peer):
    fed_rt.settings.federation.dead_host_failures = 2
    fed_rt.settings.federation.dead_host_after_seconds = 0
    peer.status = 503
    assert post(fed, peer, follow_activity(peer, 1)).status_code == 202
    (first,) = deliveries(fed_rt)
    assert first.state == WorkState.PENDING and first.attempts == 1 and first.next_run > utcnow()
    row = host_row(fed_rt, peer)
    assert row is not None and row.state == "up" and row.failures == 1 and row.last_error == "HTTP 503"

    assert post(fed, peer, follow_activity(peer, 2)).status_code == 202  # the second failure: dead
    row = host_row(fed_rt, peer)
    assert row is not None and row.state == "dead" and row.probe_at is not None
    tried = len(peer.inbox)
    assert post(fed, peer, follow_activity(peer, 3)).status_code == 202
    third = deliveries(fed_rt)[-1]
    assert len(peer.inbox) == tried  # not even tried: it waits for the server
    assert third.state == WorkState.PENDING and third.attempts == 0 and third.error_code == "postponed"
    assert third.next_run is not None and abs((third.next_run - row.probe_at).total_seconds()) < 1

    # The probe is due; the server is back: the probe gets through and every waiting delivery goes.
    peer.status = 202
    with fed_rt.sessions() as session:
        session.execute(update(DeliveryHost).values(probe_at=utcnow() - dt.timedelta(seconds=1)))
        session.execute(update(OutboxEffect).where(OutboxEffect.id == third.id).values(next_run=utcnow()))
        session.commit()
    assert outbox.run_effect(fed_rt, third.id) == WorkState.DONE
    assert [d.state for d in deliveries(fed_rt)] == [WorkState.DONE] * 3
    row = host_row(fed_rt, peer)
    assert row is not None and row.state == "up" and row.failures == 0 and row.last_success is not None


def test_a_permanent_refusal_is_failed_not_done_and_can_be_sent_again(fed, fed_rt, peer):
    peer.status = 403
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    (refused,) = deliveries(fed_rt)
    assert refused.state == WorkState.FAILED and refused.error_code == "refused" and refused.attempts == 1
    row = host_row(fed_rt, peer)
    assert row is None or (row.state == "up" and row.failures == 0)  # it answered: alive
    for status in (401, 408, 429):  # "later", not "never"
        peer.status = status
        assert post(fed, peer, follow_activity(peer, status)).status_code == 202
        assert deliveries(fed_rt)[-1].state == WorkState.PENDING
    peer.status = 202
    assert len(hosts.retry_host(fed_rt, "127.0.0.1")) == 4
    assert {d.state for d in deliveries(fed_rt)} == {WorkState.DONE}


def test_the_admin_page_lists_servers_and_sends_again(fed, fed_rt, peer):
    peer.status = 500
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    with fed_rt.sessions() as session:
        ada = accounts.create_user(session, "ada", "ada@example.com", "correct horse", verified=True, admin=True)
        bob = accounts.create_user(session, "bob", "bob@example.com", "correct horse", verified=True)
        session.commit()
        ada_id, bob_id = ada.id, bob.id
    log_in(fed, fed_rt, bob_id)
    assert fed.get("/admin/federation").status_code == 403
    token = log_in(fed, fed_rt, ada_id)
    page = fed.get("/admin/federation")
    assert page.status_code == 200 and 'data-host="127.0.0.1"' in page.text and "HTTP 500" in page.text
    assert 'href="/admin/federation" aria-current="page"' in page.text
    assert fed.post("/admin/federation/retry", data={"host": "127.0.0.1"}).status_code == 403  # no CSRF token
    peer.status = 202
    sent = fed.post("/admin/federation/retry", data={"host": "127.0.0.1", "csrf_token": token},
                    follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/federation"
    assert [d.state for d in deliveries(fed_rt)] == [WorkState.DONE]
    assert "Nothing is waiting and nothing has failed." in fed.get("/admin/federation").text


def test_postponing_does_not_use_up_tries():
    effect = ledger.new_effect(hosts.DELIVERY, {"inbox": "https://x.example/inbox"}, "")
    effect.attempts = 3
    ledger.postpone(effect, utcnow() + dt.timedelta(hours=1), "waiting")
    assert effect.attempts == 2 and effect.state == WorkState.PENDING and effect.error_code == "postponed"
