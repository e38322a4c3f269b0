"""A real `kiln worker` SIGKILLed while it is sending a mail (the SMTP server hangs): nothing is lost.
The reset request answers at once; after the kill the server comes back, a new worker's sweeper takes
the mail back from the dead process and the mail arrives, once."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.processing.models import OutboxEffect
from kiln.runtime import build_runtime
from kiln.web.deps import CSRF_COOKIE
from tests.conftest import BASE_URL, fresh_database, make_settings
from tests.e2e.conftest import free_port
from tests.e2e.test_brokers import WorkerProcess
from tests.test_outbox import smtp_hung, smtp_up

pytestmark = [pytest.mark.slow, pytest.mark.db]


def wait_for(what: str, check, timeout: float, worker: WorkerProcess):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s:\n{worker.tail()}")


def test_a_worker_killed_while_sending_loses_no_mail(tmp_path):
    port, data = free_port(), tmp_path / "data"
    mail = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "smtp_timeout": 60}
    with fresh_database(tmp_path) as db_url:
        env = {key: value for key, value in os.environ.items() if not key.startswith("KILN_")}
        env.update({"KILN_DATABASE_URL": db_url, "KILN_BASE_URL": BASE_URL,
                    "KILN_PROCESSING__SWEEP_INTERVAL": "0.5", "KILN_OUTBOX__BACKOFF_BASE": "0.5",
                    **{f"KILN_MAIL__{key.upper()}": str(value) for key, value in mail.items()}})
        rt = build_runtime(make_settings(data, db_url, mail=mail))  # rings the worker through the embedded queue
        worker = WorkerProcess(data, env, tmp_path / "worker.log", processes=1)
        with rt.sessions() as session:
            accounts.create_user(session, "kim", "kim@example.com", "correct horse", verified=True)
            session.commit()

        def mail_effect(*states: str) -> OutboxEffect | None:
            with rt.sessions() as session:
                return session.scalar(select(OutboxEffect).where(OutboxEffect.kind == "mail",
                                                                 OutboxEffect.state.in_(states)))

        try:
            with smtp_hung(port) as hung:
                with TestClient(create_app(rt.settings, rt), base_url=BASE_URL) as client:
                    client.get("/auth/forgot")
                    started = time.perf_counter()
                    resp = client.post("/auth/forgot", data={"email": "kim@example.com",
                                                             "csrf_token": client.cookies[CSRF_COOKIE]})
                    took = time.perf_counter() - started
                assert resp.status_code == 200 and took < 1.0, (resp.status_code, took)
                worker.start()
                worker.wait_ready()
                sending = wait_for("no worker started sending the mail", lambda: hung.accepted and
                                   mail_effect("running"), 60, worker)
                owner_pid = int(sending.lease_owner.split(":")[1])  # type: ignore[union-attr]
                assert owner_pid in worker.children()
                os.killpg(worker.pid, signal.SIGKILL)  # the worker, its pool and its sweeper: all at once
                worker.proc.wait()  # type: ignore[union-attr]
                wait_for("the pool process outlived the kill", lambda: not worker.stray(), 10, worker)
            assert mail_effect("running") is not None  # held by a dead process: only the sweeper can help

            with smtp_up(port) as inbox:
                worker.start()
                worker.wait_ready()
                wait_for("the mail was not sent again", lambda: inbox.messages, 60, worker)
                time.sleep(1.0)  # a duplicate would show up now
            [message] = inbox.messages
            assert message["To"] == "kim@example.com"
            assert re.search(r"/auth/reset\?token=[\w-]+", message.get_payload())
            done = mail_effect("done")
            assert done is not None and done.attempts == 2 and "body" not in done.payload
        finally:
            worker.stop()
            rt.close()
        assert not worker.stray()
