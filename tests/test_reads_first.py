"""PostgreSQL: pages that only read run without a transaction (no BEGIN, no ROLLBACK), what a reading
request writes is still one transaction, and a pooled connection is pinged only after it sat idle
(kiln.db.session: READS_FIRST, PING_WHEN_IDLE_FOR)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, text

from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.db import session as db_session
from kiln.social import notify
from kiln.social.models import Notification
from kiln.web.deps import SESSION_COOKIE
from tests.conftest import PG_URL

pytestmark = [pytest.mark.db, pytest.mark.skipif(not PG_URL, reason="PostgreSQL's transactions")]
IDLE, IN_TRANSACTION = 0, 2  # psycopg.pq.TransactionStatus


def watch(engine: Any) -> list[tuple[str, int]]:
    """(statement, the connection's transaction status as it was sent) for each statement."""
    seen: list[tuple[str, int]] = []

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append((" ".join(statement.split()), cursor.connection.info.transaction_status))

    event.listen(engine, "after_cursor_execute", after)
    return seen


def login(rt: Any, name: str = "rita") -> tuple[User, str]:
    with rt.sessions() as session:
        user = accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True)
        session.flush()
        cookie = accounts.start_session(session, user)
        session.commit()
        return user, cookie


def test_a_logged_in_page_that_only_reads_runs_outside_a_transaction(rt, client):
    user, cookie = login(rt)
    sam, _ = login(rt, "sam")
    with rt.sessions() as session:
        for _ in range(3):
            notify.notify(session, session.get(User, user.id), "follow", actor_id=sam.id)
        session.commit()
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/timeline").status_code == 200  # warm: the first request may write last_seen
    seen = watch(rt.engine)
    page = client.get("/timeline")
    assert page.status_code == 200
    assert seen and all(sql.startswith("SELECT ") and status == IDLE for sql, status in seen), seen
    # The bell's count came with the login, in the same query: 3 unread, and no count of its own.
    assert 'data-unseen="3"' in page.text
    assert not [sql for sql, _ in seen if sql.startswith("SELECT count(*)") and "FROM notifications" in sql], seen


def test_what_a_reading_request_writes_is_one_transaction(rt):
    """A write starts a real transaction first: rolled back, nothing of it stays; committed, all of it."""
    engine = db_session.reads_first(rt.engine)
    assert engine is not None
    user, _ = login(rt)
    with rt.sessions(bind=engine) as session:
        seen = watch(rt.engine)
        assert session.scalar(select(User.username).where(User.id == user.id)) == "rita"
        session.add(Notification(user_id=user.id, type="follow"))
        session.flush()
        session.execute(text("UPDATE users SET bio = 'changed' WHERE id = :id"), {"id": user.id})
        session.rollback()
    assert seen[0][0].startswith("SELECT ") and seen[0][1] == IDLE
    assert all(status == IN_TRANSACTION for verb, status in seen[1:]), seen
    with rt.sessions() as session:
        assert session.scalar(select(User.bio).where(User.id == user.id)) != "changed"
        assert session.scalar(select(Notification.id).where(Notification.user_id == user.id)) is None
    with rt.sessions(bind=engine) as session:
        session.add(Notification(user_id=user.id, type="follow"))
        session.execute(text("UPDATE users SET bio = 'changed' WHERE id = :id"), {"id": user.id})
        session.commit()
    with rt.sessions() as session:
        assert session.scalar(select(User.bio).where(User.id == user.id)) == "changed"
        assert session.scalar(select(Notification.id).where(Notification.user_id == user.id)) is not None


def test_a_locking_read_starts_the_transaction_and_holds_its_lock(rt):
    engine = db_session.reads_first(rt.engine)
    user, _ = login(rt)
    with rt.sessions(bind=engine) as session:
        session.scalar(select(User).where(User.id == user.id).with_for_update())
        with rt.engine.connect() as other:
            other.execute(text("SET lock_timeout = '200ms'"))
            with pytest.raises(Exception, match="lock"):
                other.execute(text("UPDATE users SET bio = 'x' WHERE id = :id"), {"id": user.id})
        session.rollback()


def test_an_idle_pooled_connection_is_pinged_and_replaced_when_its_server_side_is_gone(rt, monkeypatch):
    with rt.engine.connect() as doomed, rt.engine.connect() as other:
        pid = doomed.scalar(text("SELECT pg_backend_pid()"))
        doomed.commit()  # back in the pool without a word to the server, which is about to drop it
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
    # Idle past the limit (here: any time at all), each pooled connection is pinged when it is handed
    # out: the dead one is found and replaced before anyone runs a statement on it.
    monkeypatch.setattr(db_session, "PING_WHEN_IDLE_FOR", 0.0)
    with rt.engine.connect() as first, rt.engine.connect() as second:
        pids = {first.scalar(text("SELECT pg_backend_pid()")), second.scalar(text("SELECT pg_backend_pid()"))}
    assert pid not in pids and len(pids) == 2
