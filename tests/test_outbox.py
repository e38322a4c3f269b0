"""The outbox: mail is recorded in the request's transaction and sent by a worker after the commit, so a
slow, hung or unreachable SMTP server never slows a request, loses a mail or tells which addresses have
accounts. Real SMTP servers here: aiosmtpd, and a socket that accepts and never answers."""

from __future__ import annotations

import concurrent.futures
import json
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.processing import outbox, sweeper
from kiln.processing.dispatch import RecordingDispatcher
from kiln.processing.models import OutboxEffect
from kiln.runtime import Runtime, build_runtime
from kiln.web.deps import CSRF_COOKIE, SESSION_COOKIE
from tests.conftest import BASE_URL, make_settings
from tests.e2e.conftest import free_port
from tests.test_mail import Inbox

pytestmark = pytest.mark.db  # transactions, concurrent writers, time stamps read back


@contextmanager
def smtp_up(port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


class HungServer:
    """Accepts connections and never says a word (an SMTP server that hangs)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@contextmanager
def smtp_hung(port: int) -> Iterator[HungServer]:
    server = HungServer(port)
    try:
        yield server
    finally:
        server.close()


def site(tmp_path, db_url: str, port: int, **overrides: object) -> Runtime:  # type: ignore[no-untyped-def]
    """A site mailing through 127.0.0.1:port whose worker is elsewhere: bells are only recorded."""
    settings = make_settings(
        tmp_path / "data", db_url,
        mail={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "smtp_timeout": 0.5},
        outbox={"backoff_base": 0.0},
        security={"reset_mails_per_ip_per_hour": 1000, "reset_mails_per_account_per_hour": 1000,
                  "registrations_per_ip_per_hour": 1000},
        **overrides)
    rt = build_runtime(settings, dispatcher=RecordingDispatcher())
    rt.effects = outbox.RecordingBell()
    return rt


@contextmanager
def web(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt.settings, rt), base_url=BASE_URL) as client:
        client.get("/auth/forgot")  # the CSRF cookie
        client.csrf = client.cookies[CSRF_COOKIE]  # type: ignore[attr-defined]
        yield client


def add_user(rt: Runtime, name: str) -> None:
    with rt.sessions() as session:
        accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True)
        session.commit()


def timed_post(client: TestClient, path: str, data: dict[str, str]) -> float:
    started = time.perf_counter()
    resp = client.post(path, data={**data, "csrf_token": client.csrf}, follow_redirects=False)  # type: ignore[attr-defined]
    took = time.perf_counter() - started
    assert resp.status_code in (200, 303), (path, resp.status_code, resp.text[:300])
    # Far below the SMTP timeout (10 s) a request would wait if it sent mail itself; loose enough for a
    # machine running the suite four processes wide on two cores.
    assert took < 5.0, f"{path} took {took:.2f} s"
    return took


def requests_of_each_kind(client: TestClient, tag: str, n: int = 5) -> list[float]:
    times = []
    for i in range(n):
        times.append(timed_post(client, "/auth/register",
                                {"username": f"{tag}{i}", "email": f"{tag}{i}@example.com",
                                 "password": "correct horse"}))
        client.cookies.delete(SESSION_COOKIE)
        times.append(timed_post(client, "/auth/forgot", {"email": f"{tag}{i}@example.com"}))
    return times


def effects(rt: Runtime) -> list[OutboxEffect]:
    with rt.sessions() as session:
        return list(session.scalars(select(OutboxEffect).order_by(OutboxEffect.id)))


def test_sign_up_and_reset_answer_as_fast_with_smtp_down_or_hung_and_the_mail_follows(tmp_path, db_url):
    port = free_port()
    rt = site(tmp_path, db_url, port)
    medians = {}
    with web(rt) as client:
        with smtp_up(port) as inbox:
            medians["up"] = statistics.median(requests_of_each_kind(client, "up"))
        assert inbox.messages == []  # the request only recorded the mail
        medians["down"] = statistics.median(requests_of_each_kind(client, "down"))
        with smtp_hung(port) as hung:
            medians["hung"] = statistics.median(requests_of_each_kind(client, "hung"))
            assert hung.accepted == []  # no request touched SMTP
            print("request medians (s):", {k: round(v, 4) for k, v in medians.items()})
            # A request that talked to SMTP itself would wait the 0.5 s timeout; the slack below it is
            # for a loaded machine (the bound was 20 ms and failed once at 81 ms against 30 under CI).
            assert medians["down"] < medians["up"] * 1.5 + 0.2
            assert medians["hung"] < medians["up"] * 1.5 + 0.2

            # The worker tries while the server hangs: a short timeout, then a retry is scheduled.
            rung = rt.effects.rung  # type: ignore[attr-defined]
            assert len(rung) == 30
            # A sign-up's effect writes the mail (in the reader's language) and records it.
            assert outbox.run_effect(rt, rt_first_id(rt)) == "done"
            assert len(rung) == 31
            rt.effects = outbox.InlineBell(rt)
            started = time.monotonic()
            assert outbox.run_effect(rt, rung[-1]) == "pending"
            assert time.monotonic() - started < 3
        first = next(e for e in effects(rt) if e.kind == "mail")
        assert (first.state, first.error_code, first.attempts) == ("pending", "timeout", 1)
        assert "did not answer in time" in (first.error_message or "")
        # SMTP down: the worker hears every bell the requests rang. A reset request finds its account
        # and records the mail with the link; every mail fails and waits.
        for effect_id in rung:
            outbox.run_effect(rt, effect_id)
        by_kind = {(e.kind, e.state, e.error_code) for e in effects(rt)}
        assert by_kind == {("mail", "pending", "unreachable"), ("reset_request", "done", None),
                           ("verify_request", "done", None)}
        assert len(effects(rt)) == 60

        with smtp_up(port) as inbox:  # the server is back: the sweeper's next pass sends everything
            assert outbox.sweep(rt) == 30
        sent = [e for e in effects(rt) if e.kind == "mail"]
        assert {e.state for e in sent} == {"done"}
        assert len(sent) == len(inbox.messages) == 30
        assert all("body" not in e.payload for e in sent)  # a sent link is not kept in the clear
        resets = [m for m in inbox.messages if "Reset" in m["Subject"]]
        token = re.search(r"/auth/reset\?token=([\w-]+)", resets[0].get_payload()).group(1)  # type: ignore[union-attr]
        assert client.get(f"/auth/reset?token={token}").status_code == 200
    rt.close()


def rt_first_id(rt: Runtime) -> int:
    return effects(rt)[0].id


def test_a_reset_for_an_unknown_address_takes_as_long_as_for_a_known_one(tmp_path, db_url):
    port = free_port()
    rt = site(tmp_path, db_url, port)
    add_user(rt, "known")
    rounds = []
    with web(rt) as client, smtp_hung(port) as hung:
        for _ in range(3):  # warm up
            timed_post(client, "/auth/forgot", {"email": "known@example.com"})
            timed_post(client, "/auth/forgot", {"email": "nobody@example.com"})
        # Medians of 20 interleaved requests each; on a busy machine one round may be noisy, so the
        # best of three rounds counts (an oracle, such as a lookup or a mail in the request, shows in all).
        for _ in range(3):
            times: dict[str, list[float]] = {"known": [], "unknown": []}
            for _ in range(20):
                for who, address in (("known", "known@example.com"), ("unknown", "nobody@example.com")):
                    times[who].append(timed_post(client, "/auth/forgot", {"email": address}))
            known, unknown = (statistics.median(times[k]) for k in ("known", "unknown"))
            rounds.append((known, unknown))
            if abs(known - unknown) < max(0.002, 0.15 * min(known, unknown)):
                break
        assert hung.accepted == []
    print("reset medians (known, unknown), ms:", [(round(k * 1000, 2), round(u * 1000, 2)) for k, u in rounds])
    known, unknown = rounds[-1]
    assert abs(known - unknown) < max(0.002, 0.15 * min(known, unknown)), rounds
    # The same row either way: whether the address has an account is looked up by the worker.
    assert {e.kind for e in effects(rt)} == {"reset_request"} and len(effects(rt)) == 6 + 40 * len(rounds)
    rt.close()


def test_twelve_resets_with_smtp_hung_do_not_starve_the_web_process(tmp_path, db_url):
    port = free_port()
    rt = site(tmp_path, db_url, port)
    for i in range(12):
        add_user(rt, f"user{i}")
    with web(rt) as client, smtp_hung(port) as hung:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            resets = [pool.submit(timed_post, client, "/auth/forgot", {"email": f"user{i}@example.com"})
                      for i in range(12)]
            others = []
            for _ in range(10):
                started = time.perf_counter()
                assert client.get("/auth/login").status_code == 200
                others.append(time.perf_counter() - started)
            reset_times = [f.result(timeout=60) for f in resets]
        assert hung.accepted == []
    print(f"12 resets: slowest {max(reset_times):.3f} s; other requests: slowest {max(others):.3f} s")
    # No request touched SMTP (hung.accepted above); had they waited on it, twelve resets queued behind a
    # 0.5 s timeout would take 6 s. The bound is half that, far from the noise of a busy 2-core machine.
    assert max(reset_times) < 3.0 and max(others) < 3.0
    assert len(effects(rt)) == 12
    rt.close()


def test_an_effect_runs_once_after_commit_and_never_after_rollback(tmp_path, db_url):
    port = free_port()
    rt = site(tmp_path, db_url, port)
    with rt.sessions() as session:
        outbox.record_mail(session, "a@example.com", "Dropped", "never sent")
        session.flush()
        session.rollback()
        outbox.record_mail(session, "b@example.com", "Kept", "sent once")
        session.flush()
        assert rt.effects.rung == []  # type: ignore[attr-defined]  # not before the commit
        session.commit()
    [effect] = effects(rt)
    assert effect.summary == "Kept → b@example.com"
    assert rt.effects.rung == [effect.id]  # type: ignore[attr-defined]
    with smtp_up(port) as inbox:
        assert outbox.run_effect(rt, effect.id) == "done"
        assert outbox.run_effect(rt, effect.id) is None  # a second bell finds nothing to do
    assert [m["Subject"] for m in inbox.messages] == ["Kept"]
    rt.close()


def test_a_failed_mail_is_retried_by_the_sweeper_then_given_up_then_retried_by_hand(tmp_path, db_url):
    port = free_port()
    rt = site(tmp_path, db_url, port, processing={"sweep_interval": 0.2})
    rt.settings.outbox.max_attempts = 2
    with rt.sessions() as session:
        effect = outbox.record_mail(session, "c@example.com", "Hello", "body")
        session.commit()
        effect_id = effect.id
    rt.effects = outbox.InlineBell(rt)
    assert outbox.run_effect(rt, effect_id) == "pending"  # SMTP down
    sweeper.sweep(rt)  # the second attempt, from the sweeper: the limit
    [effect] = effects(rt)
    assert effect.state == "failed" and effect.attempts == 2
    assert "Kiln tried 2 times and gave up" in (effect.error_message or "")
    with smtp_up(port) as inbox:
        assert outbox.retry(rt) == [effect_id]
    assert effects(rt)[0].state == "done" and len(inbox.messages) == 1
    rt.close()


def test_a_reset_request_with_control_characters_is_recorded_cleaned(tmp_path, db_url):
    rt = site(tmp_path, db_url, free_port())
    with web(rt) as client:
        timed_post(client, "/auth/forgot", {"email": "a\x00b\x07@example.com"})
    [effect] = effects(rt)
    assert effect.payload["email"] == "ab@example.com"
    rt.close()


def test_admins_see_waiting_and_failed_mail_and_why_and_the_cli_retries_it(tmp_path, db_url, kiln, monkeypatch):
    port = free_port()
    rt = site(tmp_path, db_url, port)
    rt.settings.outbox.max_attempts = 1
    with rt.sessions() as session:
        accounts.create_user(session, "root", "root@example.com", "correct horse", verified=True, admin=True)
        outbox.record_mail(session, "gone@example.com", "Lost in the post", "secret link")
        outbox.record_mail(session, "later@example.com", "Still to send", "another link")
        session.commit()
    failed, waiting = (e.id for e in effects(rt))
    rt.effects = outbox.InlineBell(rt)
    assert outbox.run_effect(rt, failed) == "failed"  # SMTP down, and one attempt allowed

    with web(rt) as client:
        timed_post(client, "/auth/login", {"username": "root", "password": "correct horse"})
        page = client.get("/admin/processing").text
        overview = client.get("/api/v1/admin/processing").json()["outbox"]
    section = page[page.index('id="h-outbox"'):page.index('id="h-latest"')]
    assert "1 to send · 0 waiting to retry · 1 failed · 0 sent" in " ".join(section.split())
    assert re.search(rf'(?s)<tr data-effect="{failed}">.*Lost in the post → gone@example.com.*failed.*'
                     r'The mail server could not be reached.*Kiln tried 1 time and gave up.*unreachable', section)
    assert f'<tr data-effect="{waiting}">' in section and "secret link" not in page
    assert overview["counts"] == {"queued": 1, "pending": 0, "running": 0, "done": 0, "failed": 1}
    assert [(r["id"], r["state"], r["code"]) for r in overview["failed"]] == [(failed, "failed", "unreachable")]
    assert [r["id"] for r in overview["waiting"]] == [waiting]

    # The CLI, on the same site, with the mail server back.
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "false"}.items():
        monkeypatch.setenv(f"KILN_MAIL__{key}", value)
    listed = json.loads(kiln("outbox", "list", "--json").output)
    assert [(r["id"], r["state"], r["summary"]) for r in listed] == [
        (waiting, "queued", "Still to send → later@example.com"),
        (failed, "failed", "Lost in the post → gone@example.com")]
    assert "The mail server could not be reached" in kiln("outbox", "list", "--state", "failed").output
    with smtp_up(port) as inbox:
        result = json.loads(kiln("outbox", "retry", "--failed", "--here", "--json").output)
    assert result == {"retried": [failed], "states": {str(failed): "done"}}
    assert [m["To"] for m in inbox.messages] == ["gone@example.com"]
    assert kiln("outbox", "retry", "--failed").output.strip() == "Nothing to retry."
    assert json.loads(kiln("outbox", "list", "--json", "--state", "done").output)[0]["id"] == failed
    rt.close()
