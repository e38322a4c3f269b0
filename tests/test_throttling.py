"""Logins, sign-ups and reset mails are throttled per account and per address, and the answers do not
tell existing accounts from unknown ones."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from sqlalchemy import select

from kiln.accounts.models import ThrottleKey
from kiln.accounts.throttle import Throttle, Throttled
from kiln.config import SecuritySettings
from kiln.db.migrate import upgrade
from kiln.db.session import make_engine, make_session_factory
from tests.conftest import PG_URL, csrf, form_post, mails, register


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(client):  # type: ignore[no-untyped-def]
    """A throttle on a hand-moved clock, with the site's default limits unless a test changes them."""
    fake = Clock()
    client.app.state.throttle = Throttle(SecuritySettings(), client.app.state.runtime.sessions, clock=fake)
    return fake


def use_limits(client, clock, **limits: int) -> None:  # type: ignore[no-untyped-def]
    client.app.state.throttle = Throttle(SecuritySettings(**limits), client.app.state.runtime.sessions, clock=clock)


def login(client, name: str, password: str):  # type: ignore[no-untyped-def]
    token = client.cookies.get("kiln_csrf") or csrf(client)
    return client.post("/auth/login", data={"username": name, "password": password, "csrf_token": token},
                       follow_redirects=False)


@pytest.mark.db
def test_failed_logins_pause_the_account_with_429_and_retry_after(client, settings, clock):
    use_limits(client, clock, login_failures_per_account=3)
    register(client, settings, "alice")
    form_post(client, "/auth/logout", {}, page="/")
    for _ in range(3):
        assert login(client, "alice", "wrong password").status_code == 401
    paused = login(client, "Alice", "correct horse")  # even the right password waits
    assert paused.status_code == 429 and paused.headers["retry-after"] == "60"
    assert "Too many failed logins. Try again in 60 seconds." in paused.text
    clock.now += 61
    assert login(client, "alice", "correct horse").status_code == 303
    form_post(client, "/auth/logout", {}, page="/")
    # The success cleared the account's count: fresh failures are allowed again.
    for _ in range(2):
        assert login(client, "alice", "wrong password").status_code == 401
    assert login(client, "alice", "correct horse").status_code == 303


@pytest.mark.db
def test_pauses_double_while_failures_go_on(client, settings, clock):
    use_limits(client, clock, login_failures_per_account=2)
    register(client, settings, "alice")
    form_post(client, "/auth/logout", {}, page="/")
    waits = []
    for _ in range(3):
        for _ in range(2):
            login(client, "alice", "wrong password")
        paused = login(client, "alice", "wrong password")
        waits.append(int(paused.headers["retry-after"]))
        clock.now += waits[-1]
    assert waits == [60, 120, 240]


@pytest.mark.db
def test_unknown_and_existing_names_are_answered_alike(client, settings, clock):
    use_limits(client, clock, login_failures_per_account=3)
    register(client, settings, "alice")
    form_post(client, "/auth/logout", {}, page="/")
    answers = {}
    for name in ("alice", "nobody"):
        statuses = [login(client, name, "wrong password").status_code for _ in range(4)]
        last = login(client, name, "wrong password")
        answers[name] = (statuses, last.status_code, last.headers["retry-after"],
                         last.text.replace(name, "NAME"))
    assert answers["alice"] == answers["nobody"]
    assert answers["alice"][0] == [401] * 3 + [429]


@pytest.mark.deployed_password_costs
def test_unknown_names_cost_a_password_check_too(client, settings):
    register(client, settings, "alice")
    form_post(client, "/auth/logout", {}, page="/")
    token = csrf(client)

    def timed(name: str) -> float:
        start = time.perf_counter()
        client.post("/auth/login", data={"username": name, "password": "wrong password", "csrf_token": token})
        return time.perf_counter() - start

    known = min(timed("alice") for _ in range(2))
    unknown = min(timed(f"nobody{i}") for i in range(2))
    assert unknown > known * 0.6, (known, unknown)


@pytest.mark.db
def test_failed_logins_from_one_address_pause_every_name(client, settings, clock):
    use_limits(client, clock, login_failures_per_ip=3)
    register(client, settings, "alice")
    form_post(client, "/auth/logout", {}, page="/")
    for name in ("bob", "carol", "dave"):
        assert login(client, name, "guess guess").status_code == 401
    assert login(client, "alice", "correct horse").status_code == 429


@pytest.mark.db
def test_sign_ups_per_address_are_limited(client, settings, clock):
    use_limits(client, clock, registrations_per_ip_per_hour=2)
    for name in ("ann", "ben"):
        register(client, settings, name, verify=False)
        form_post(client, "/auth/logout", {}, page="/")
    third = form_post(client, "/auth/register", {"username": "cat", "email": "cat@example.com",
                                                 "password": "correct horse"})
    assert third.status_code == 429 and "Too many sign-ups" in third.text
    assert int(third.headers["retry-after"]) == 3600
    clock.now += 3601
    register(client, settings, "cat", verify=False)


@pytest.mark.db
def test_reset_mails_are_limited_per_account_and_answered_alike(client, settings, clock):
    register(client, settings, "alice")
    form_post(client, "/auth/logout", {}, page="/")
    before = len(mails(settings))
    answers = []
    for email in ("alice@example.com", "ghost@example.com"):
        for _ in range(3):
            sent = form_post(client, "/auth/forgot", {"email": email})
            assert sent.status_code == 200 and "If an account uses that address" in sent.text
        fourth = form_post(client, "/auth/forgot", {"email": email})
        answers.append((fourth.status_code, fourth.headers.get("retry-after")))
        assert "Too many password reset requests" in fourth.text
    assert answers[0] == answers[1] == (429, "3600")
    assert len(mails(settings)) == before + 3  # the fourth request mailed nothing


@pytest.mark.db
def test_reset_mails_per_address(client, settings, clock):
    use_limits(client, clock, reset_mails_per_ip_per_hour=2)
    for email in ("a@example.com", "b@example.com"):
        assert form_post(client, "/auth/forgot", {"email": email}).status_code == 200
    assert form_post(client, "/auth/forgot", {"email": "c@example.com"}).status_code == 429


@pytest.mark.db
def test_forwarded_addresses_count_only_behind_a_trusted_proxy(client, settings, clock):
    use_limits(client, clock, login_failures_per_ip=2)
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    for name in ("bob", "carol"):
        client.post("/auth/login", headers=spoofed,
                    data={"username": name, "password": "x" * 8, "csrf_token": csrf(client)})
    # The header was ignored: the peer itself (the test client) is paused whatever it claims.
    again = client.post("/auth/login", headers={"X-Forwarded-For": "198.51.100.1"},
                        data={"username": "dave", "password": "x" * 8, "csrf_token": csrf(client)})
    assert again.status_code == 429


@pytest.mark.db
def test_the_throttle_keeps_separate_counts_per_key(rt):
    clock = Clock()
    throttle = Throttle(SecuritySettings(login_failures_per_account=2), rt.sessions, clock=clock)
    throttle.login_failed("alice", "10.0.0.1")
    throttle.login_failed("bob", "10.0.0.2")
    throttle.before_login("alice", "10.0.0.3")  # one failure each: nobody paused
    throttle.login_failed("alice", "10.0.0.4")
    with pytest.raises(Exception, match="Too many failed logins"):
        throttle.before_login("ALICE ", "10.0.0.5")
    throttle.before_login("bob", "10.0.0.5")


@pytest.mark.db
def test_api_token_requests_count_towards_the_login_limit(client, settings, clock):
    """Trading a password for an API token is a login too: it cannot be used to go around the limit."""
    use_limits(client, clock, login_failures_per_account=3)
    register(client, settings, "alice")
    form_post(client, "/auth/logout", {}, page="/")
    ask = {"username": "alice", "password": "wrong password", "name": "cli"}
    for _ in range(3):
        assert client.post("/api/v1/tokens", json=ask).status_code == 401
    paused = client.post("/api/v1/tokens", json={**ask, "password": "correct horse"})
    assert paused.status_code == 429 and paused.headers["retry-after"] == "60"
    assert paused.json()["error"]["code"] == "too_many_attempts"
    assert login(client, "alice", "correct horse").status_code == 429  # the same count as the site's form
    clock.now += 61
    assert client.post("/api/v1/tokens", json={**ask, "password": "correct horse"}).status_code == 201


@pytest.mark.db
def test_counts_are_shared_by_throttles_on_one_database_and_survive_a_restart(rt):
    """Two Throttle objects stand for two web processes (or one before and after a restart)."""
    clock = Clock()
    limits = SecuritySettings(login_failures_per_account=4)
    first, second = (Throttle(limits, rt.sessions, clock=clock) for _ in range(2))
    for throttle in (first, second, first):
        throttle.login_failed("alice", "10.0.0.1")
    first.before_login("alice", "10.0.0.1")  # three failures: not yet paused
    second.login_failed("alice", "10.0.0.1")
    for throttle in (first, second, Throttle(limits, rt.sessions, clock=clock)):
        with pytest.raises(Throttled, match="Too many failed logins. Try again in 60 seconds."):
            throttle.before_login("alice", "10.0.0.2")
    second.login_succeeded("alice")
    first.before_login("alice", "10.0.0.2")


@pytest.mark.db
def test_names_of_any_length_or_content_are_counted(rt):
    throttle = Throttle(SecuritySettings(login_failures_per_account=2), rt.sessions, clock=Clock())
    for name in ("a" * 5000, "nul\x00name", "\udcff"):
        for ip in ("10.0.0.1", "10.0.0.2"):
            throttle.login_failed(name, ip)
        with pytest.raises(Throttled):
            throttle.before_login(name, "10.0.0.3")
    throttle.before_login("a" * 4999, "10.0.0.3")  # another long name has its own count


def keys(sessions) -> set[str]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return set(session.scalars(select(ThrottleKey.key)))


@pytest.mark.db
def test_idle_keys_are_deleted_when_new_ones_come(rt):
    clock = Clock()
    throttle = Throttle(SecuritySettings(max_lockout_seconds=7200), rt.sessions, clock=clock)
    throttle.hit("quiet", 5, 60)
    throttle.hit("paused", 1, 60, lockout=7200)  # paused until 1000 + 7200
    clock.now = 5000
    throttle.hit("recent", 5, 60)
    clock.now = 1000 + 7200 + 1  # "quiet" has been idle longer than the longest window and pause
    throttle.hit("recent", 5, 60)
    assert keys(rt.sessions) == {"quiet", "paused", "recent"}  # only a new key sweeps
    throttle.hit("new", 5, 60)
    assert keys(rt.sessions) == {"paused", "recent", "new"}
    clock.now = 8201 + 7201  # everyone, "paused" included, idle long enough
    throttle.hit("newer", 5, 60)
    assert keys(rt.sessions) == {"newer"}


# Several processes on one database ---------------------------------------------------------------

PROCESSES, HITS_EACH = 4, 15
LOCKOUT_LIMIT = 7


def hammer(url: str, hits: int, start) -> None:  # type: ignore[no-untyped-def]
    """One web process: counts ``hits`` attempts on two shared keys as fast as it can."""
    engine = make_engine(url)
    throttle = Throttle(SecuritySettings(), make_session_factory(engine))
    start.wait()
    for _ in range(hits):
        throttle.hit("rate", PROCESSES * HITS_EACH + 1, 3600)
        throttle.hit("lockout", LOCKOUT_LIMIT, 3600, lockout=60)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.db)])
def shared_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("set KILN_TEST_DATABASE_URL to run against PostgreSQL")
        return request.getfixturevalue("db_url")  # type: ignore[no-any-return]
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    return url


def test_processes_hammering_one_key_lose_no_count(shared_url):
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(PROCESSES)
    workers = [spawn.Process(target=hammer, args=(shared_url, HITS_EACH, start)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES
    engine = make_engine(shared_url)
    sessions = make_session_factory(engine)
    throttle = Throttle(SecuritySettings(), sessions)
    total = PROCESSES * HITS_EACH
    # The plain rate's limit is one more than all the processes' hits: not paused until that one.
    throttle.check("rate", "Too many.")
    throttle.hit("rate", total + 1, 3600)
    with pytest.raises(Throttled, match="Too many. Try again in 60 minutes."):
        throttle.check("rate", "Too many.")
    # Every seventh hit paused the other key and started a new round.
    with sessions() as session:
        row = session.get(ThrottleKey, "lockout")
        assert row is not None
        assert (row.strikes, len(row.hits)) == (total // LOCKOUT_LIMIT, total % LOCKOUT_LIMIT)
    engine.dispose()
