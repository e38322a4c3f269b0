"""Several hosts: a worker or web process refuses, with a sentence saying what to change, a
configuration that cannot work across machines; workers' heartbeats are listed on the admin panel."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from kiln.db.base import utcnow
from kiln.processing import hosts
from kiln.processing.hosts import WontWorkAcrossHosts, WorkerHost
from tests.conftest import make_settings
from tests.test_panels import login, make_user


def refusal(rt_or_settings, multi_host: bool = True) -> str:  # type: ignore[no-untyped-def]
    """The sentence check_start refuses with (settings alone: refused before the database is asked)."""
    rt = rt_or_settings if hasattr(rt_or_settings, "sessions") else SimpleNamespace(settings=rt_or_settings)
    with pytest.raises(WontWorkAcrossHosts) as caught:
        hosts.check_start(rt, multi_host=multi_host)
    return caught.value.message


def test_multi_host_refuses_what_lives_on_one_machine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    said = refusal(make_settings(data, f"sqlite:///{tmp_path / 'k.db'}"))
    assert "the embedded queue keeps its messages in this machine's data directory" in said
    assert f"Set broker_url (Redis or RabbitMQ) in {data / 'kiln.toml'}" in said
    said = refusal(make_settings(data, f"sqlite:///{tmp_path / 'k.db'}", broker_url="redis://127.0.0.1:6379/0"))
    assert "SQLite is a file on this machine" in said and "database_url (PostgreSQL)" in said
    pg = "postgresql+psycopg://kiln@db.internal:5432/kiln"
    said = refusal(make_settings(data, pg, broker_url="redis://127.0.0.1:6379/0"))
    assert "queue, originals, public is a folder on this machine" in said and "Swift or S3" in said


def test_a_host_that_disagrees_with_the_others_is_refused_and_heartbeats_are_listed(rt) -> None:  # type: ignore[no-untyped-def]
    hosts.check_start(rt, multi_host=False)  # alone: nothing to disagree with
    mine = hosts.store_identities(rt.settings)
    with rt.sessions() as s:
        s.add(WorkerHost(id="rack2:77", host="rack2", lanes=["image.new"], processes=2, running=1,
                         broker="redis://broker.internal:6379/0", stores=mine))
        s.commit()
    said = refusal(rt, multi_host=False)
    assert said.startswith("Host rack2, at work on this site, uses the broker redis://broker.internal:6379/0; "
                           "this host would use embedded.")
    with rt.sessions() as s:
        other = s.get_one(WorkerHost, "rack2:77")
        swift = "swift https://swift.internal/auth/v1.0 kiln-public"
        other.broker, other.stores = "embedded", {**mine, "public": swift}
        s.commit()
    assert f"keeps the public store in {swift}" in refusal(rt, multi_host=False)
    with rt.sessions() as s:  # a host silent for long does not count
        s.get_one(WorkerHost, "rack2:77").last_beat = utcnow() - dt.timedelta(hours=1)
        s.commit()
    hosts.check_start(rt, multi_host=False)

    hosts.beat(rt, "this-host:1", ["image.new", "outbox"], 2)
    with rt.sessions() as s:
        assert s.get_one(WorkerHost, "this-host:1").lanes == ["image.new", "outbox"]
        listed = {w["id"]: w for w in hosts.listing(s, rt.settings)}
    assert not listed["this-host:1"]["silent"] and listed["rack2:77"]["silent"]
    make_user(rt, "root", admin=True)
    page = login(rt, "root").get("/admin/processing").text
    assert 'data-worker="this-host:1"' in page and "Silent: the host may be down or cut off." in page
    hosts.leave(rt, "this-host:1")
    with rt.sessions() as s:
        assert s.scalar(select(WorkerHost).where(WorkerHost.id == "this-host:1")) is None
