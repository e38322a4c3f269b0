"""The owner's processing panel, the admin's panel, "retry now", and their API, with real failures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import socket
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kiln import i18n
from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.db.base import utcnow
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.mediatypes import get_kind
from kiln.mediatypes.base import MediaRejected, TransientFailure
from kiln.processing import ledger, stats
from kiln.processing.models import ProcessingStep
from kiln.processing.service import process_media
from kiln.processing.stats import admin_overview
from kiln.runtime import Runtime, build_runtime
from tests.conftest import BASE_URL, csrf, make_settings

PASSWORD = "correct horse"


def make_user(rt: Runtime, name: str, admin: bool = False) -> None:
    with rt.sessions() as session:
        accounts.create_user(session, name, f"{name}@example.com", PASSWORD, verified=True, admin=admin)
        session.commit()


def submit(rt: Runtime, owner: str, path, title: str | None = None) -> int:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        user = accounts.get_user(session, owner)
        with path.open("rb") as fh:
            entry = media_service.submit(rt, session, user, fh, path.name, media_service.MediaFields(title=title))
        return entry.id


def login(rt: Runtime, name: str) -> TestClient:
    client = TestClient(create_app(rt.settings, rt), base_url=BASE_URL)
    resp = client.post("/auth/login", data={"username": name, "password": PASSWORD,
                                            "csrf_token": csrf(client, "/auth/login")})
    assert resp.status_code == 200, resp.text
    return client


def token(client: TestClient, name: str, scope: str = "write") -> dict[str, str]:
    resp = client.post("/api/v1/tokens", json={"username": name, "password": PASSWORD, "scope": scope})
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def row(html: str, media_id: int) -> str:
    found = re.search(rf'<tr data-media="{media_id}".*?</tr>', html, re.S)
    assert found, f"no row for media {media_id}"
    return found.group(0)


def post_retry(client: TestClient, media_id: int, back: str = "/panel", **headers: str):  # type: ignore[no-untyped-def]
    return client.post(f"/m/{media_id}/retry", data={"csrf_token": csrf(client, "/panel"), "next": back},
                       headers=headers)


def state_of(rt: Runtime, media_id: int) -> str:
    with rt.sessions() as session:
        return session.get(MediaEntry, media_id).state


def steps_of(rt: Runtime, media_id: int) -> dict[str, ProcessingStep]:
    with rt.sessions() as session:
        return {s.name: s for s in ledger.steps_of(session, media_id)}


class FlakyThumbnail:
    """While on, the image thumbnail step fails for a passing reason (a full disk)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch, self.kind = monkeypatch, get_kind("image")
        self.real = self.kind.run_step

    def flaky(self, step, ctx):  # type: ignore[no-untyped-def]
        if step == "thumbnail":
            raise TransientFailure("The disk was full.", code="disk_full")
        return self.real(step, ctx)

    def on(self) -> None:
        self.monkeypatch.setattr(self.kind, "run_step", self.flaky)

    def off(self) -> None:
        self.monkeypatch.setattr(self.kind, "run_step", self.real)


@pytest.fixture
def flaky_thumbnail(monkeypatch):  # type: ignore[no-untyped-def]
    flaky = FlakyThumbnail(monkeypatch)
    flaky.on()
    return flaky


# The owner's panel ------------------------------------------------------------------------------

@pytest.mark.db
def test_a_damaged_file_shows_its_reason_and_retry_runs_it_again(rt, images):
    make_user(rt, "alice")
    bad = submit(rt, "alice", images["truncated"], "Broken")
    good = submit(rt, "alice", images["plain"], "Fine")
    client = login(rt, "alice")
    page = client.get("/panel")
    assert page.status_code == 200
    failed = row(page.text, bad)
    assert 'data-state="failed"' in failed and "Failed" in failed
    assert "This JPEG file is damaged" in failed or "damaged" in failed
    assert f'action="/m/{bad}/retry"' in failed and 'name="csrf_token"' in failed and "Retry now" in failed
    published = row(page.text, good)
    assert "Published" in published and "<img" in published and "Retry now" not in published
    before = steps_of(rt, bad)["medium"].finished
    resp = post_retry(client, bad)
    assert resp.status_code == 200 and resp.url.path == "/panel"  # redirected back, without JavaScript
    assert "Retrying “Broken” now" in resp.text
    after = steps_of(rt, bad)["medium"]
    assert after.state == "failed" and after.error_code == "corrupt" and after.attempts == 1
    assert after.finished > before  # it really ran again, and failed again for the same reason
    assert "damaged" in row(resp.text, bad)
    # An item with nothing failed says so, without an error page.
    nothing = post_retry(client, good)
    assert nothing.status_code == 200 and "has nothing to retry" in nothing.text
    as_json = post_retry(client, good, Accept="application/json")
    assert as_json.status_code == 409 and as_json.json()["ok"] is False


@pytest.mark.db
def test_a_permanent_failure_is_published_after_retry_once_the_cause_is_gone(rt, images, monkeypatch):
    kind = get_kind("image")
    real = kind.run_step

    def broken(step, ctx):  # type: ignore[no-untyped-def]
        if step == "thumbnail":
            raise MediaRejected("The thumbnailer is missing a codec.", code="no_codec")
        return real(step, ctx)

    monkeypatch.setattr(kind, "run_step", broken)
    make_user(rt, "alice")
    media_id = submit(rt, "alice", images["plain"])
    assert state_of(rt, media_id) == "failed"
    client = login(rt, "alice")
    assert "The thumbnailer is missing a codec." in row(client.get("/panel?state=failed").text, media_id)
    monkeypatch.setattr(kind, "run_step", real)
    resp = post_retry(client, media_id, back="/panel?state=failed", Accept="application/json")
    assert resp.status_code == 200 and resp.json()["ok"] is True
    assert resp.json()["item"]["state"] == "processed" and "Published" in resp.json()["item"]["html"]
    assert state_of(rt, media_id) == "processed"
    assert {s.state for s in steps_of(rt, media_id).values()} == {"done"}


@pytest.mark.db
def test_a_passing_failure_shows_the_retry_time_and_retry_now_brings_it_back(queued_rt, images,
                                                                          flaky_thumbnail):
    make_user(queued_rt, "alice")
    media_id = submit(queued_rt, "alice", images["plain"], "Flaky")
    assert process_media(queued_rt, media_id) == "processing"
    thumb = steps_of(queued_rt, media_id)["thumbnail"]
    assert thumb.state == "pending" and thumb.next_run > utcnow()
    client = login(queued_rt, "alice")
    cells = row(client.get("/panel").text, media_id)
    assert "Retry scheduled" in cells
    when = i18n.format_datetime(thumb.next_run)  # "December 5, 2026, 17:02 UTC" in English
    assert re.search(rf"Retry scheduled at {re.escape(when)} \(in \d+ seconds?\)", cells), cells
    assert "Last attempt: The disk was full." in cells
    assert re.search(r'<progress max="100" value="100" aria-label="medium">', cells)
    assert re.search(r'<progress max="100" value="0" aria-label="thumbnail">', cells)
    assert "Retry now" in cells
    # Retry now: the step is due at once and the retry lane is rung.
    flaky_thumbnail.off()  # the disk has room again
    queued_rt.dispatcher.rung.clear()
    resp = post_retry(client, media_id)
    assert resp.status_code == 200 and "Retrying “Flaky” now (thumbnail)" in resp.text
    assert queued_rt.dispatcher.rung == [(media_id, "image", "retry")]
    cells = row(resp.text, media_id)
    assert "Queued" in cells and "Next in line" in cells and "image.retry" in cells
    assert process_media(queued_rt, media_id) == "processed"
    cells = row(client.get("/panel").text, media_id)
    assert "Published" in cells and "Retry now" not in cells


@pytest.mark.db
def test_queue_position_and_progress(queued_rt, images):
    make_user(queued_rt, "alice")
    make_user(queued_rt, "bob")
    first = submit(queued_rt, "alice", images["plain"])
    bobs = submit(queued_rt, "bob", images["webp"])
    third = submit(queued_rt, "alice", images["flat_png"])
    with queued_rt.sessions() as session:  # the same second: the earlier id goes first
        positions = stats.queue_positions(session, [first, bobs, third])
    assert positions == {first: ("image.new", 1, 3), bobs: ("image.new", 2, 3), third: ("image.new", 3, 3)}
    client = login(queued_rt, "alice")
    page = client.get("/panel").text
    assert "Next in line" in row(page, first)
    assert "Waiting in line: 2 items ahead" in row(page, third) and "position 3 of 3 in image.new" in row(page, third)
    assert bobs not in [int(i) for i in re.findall(r'data-media="(\d+)"', page)]
    # A worker starts the first item and reports progress: it leaves the line, the others move up.
    with queued_rt.sessions() as session:
        step = ledger.steps_of(session, first)[0]
        assert ledger.claim(session, step.id, "test-worker", lease_seconds=60)
        assert ledger.renew(session, step.id, "test-worker", 60, progress=0.4)
    page = client.get("/panel").text
    cells = row(page, first)
    assert 'data-phase="running"' in cells and "Processing" in cells
    assert re.search(r'<progress max="100" value="40" aria-label="medium">', cells)
    assert "Being processed: 13% done" in cells  # 0.4 of one step out of three
    assert "Waiting in line: 1 item ahead" in row(page, third)
    # The live endpoint sends the same rows, and asks to be polled while anything moves.
    live = client.get("/panel.json").json()
    assert live["poll"] == 2
    assert live["counts"] == {"queued": 1, "processing": 1, "processed": 0, "failed": 0}
    by_id = {item["id"]: item for item in live["items"]}
    assert set(by_id) == {first, third}
    assert by_id[first]["phase"] == "running" and 'value="40"' in by_id[first]["html"]
    with queued_rt.sessions() as session:  # that worker dies; the next one takes the step over
        session.get(ProcessingStep, step.id).lease_expires = utcnow() - dt.timedelta(seconds=1)
        session.commit()
    for media_id in (first, third):
        assert process_media(queued_rt, media_id) == "processed"
    live = client.get("/panel.json").json()
    assert live["poll"] is None and {i["phase"] for i in live["items"]} == {"done"}
    # Under the "Queued" tab the rows it showed still come back, now published, so they update.
    assert client.get("/panel.json", params={"state": "queued"}).json()["items"] == []
    shown = client.get("/panel.json", params={"state": "queued", "shown": f"{first},{third},{bobs},x"}).json()
    assert [(i["id"], i["phase"]) for i in shown["items"]] == [(third, "done"), (first, "done")]  # not bob's


@pytest.mark.db
def test_panel_filters_by_state(rt, images):
    make_user(rt, "alice")
    bad = submit(rt, "alice", images["truncated"])
    good = submit(rt, "alice", images["plain"])
    client = login(rt, "alice")
    failed_only = client.get("/panel?state=failed").text
    assert f'data-media="{bad}"' in failed_only and f'data-media="{good}"' not in failed_only
    assert 'data-count="failed">1<' in failed_only and 'data-count="all">2<' in failed_only
    assert "Nothing is queued right now" in client.get("/panel?state=queued").text
    assert client.get("/panel?state=bogus").status_code == 422


# Permissions ------------------------------------------------------------------------------------

@pytest.mark.db
def test_only_the_owner_or_an_admin_may_see_and_retry(rt, images):
    make_user(rt, "alice")
    make_user(rt, "bob")
    make_user(rt, "root", admin=True)
    bad = submit(rt, "alice", images["truncated"])
    anonymous = TestClient(create_app(rt.settings, rt), base_url=BASE_URL)
    for path in ("/panel", "/admin/processing", "/panel.json"):
        resp = anonymous.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == f"/auth/login?next={path}"
    assert anonymous.get("/panel.json", headers={"Accept": "application/json"}).status_code == 401
    denied = anonymous.post(f"/m/{bad}/retry", data={"csrf_token": csrf(anonymous, "/auth/login")})
    assert denied.status_code == 401
    bob = login(rt, "bob")
    assert f'data-media="{bad}"' not in bob.get("/panel").text
    # An unfinished item of someone else's answers as a missing one does: it does not exist for bob.
    assert post_retry(bob, bad).status_code == post_retry(bob, 2**31 - 1).status_code == 404
    assert bob.get(f"/m/{bad}/status").status_code == bob.get(f"/m/{2**31 - 1}/status").status_code == 404
    assert bob.get(f"/m/{bad}/edit").status_code == 404
    assert bob.get("/admin/processing").status_code == 403
    assert "Admin</a>" not in bob.get("/panel").text
    root = login(rt, "root")
    assert 'href="/admin/processing">Admin</a>' in root.get("/panel").text
    resp = post_retry(root, bad, back="/admin/processing")
    assert resp.status_code == 200 and resp.url.path == "/admin/processing" and "Retrying" in resp.text
    # The API: others get 404 for unpublished media, read-only tokens cannot retry.
    api = TestClient(create_app(rt.settings, rt), base_url=BASE_URL)
    assert api.post(f"/api/v1/media/{bad}/retry", headers=token(api, "bob")).status_code == 404
    read_only = api.post(f"/api/v1/media/{bad}/retry", headers=token(api, "alice", "read"))
    assert read_only.status_code == 403 and read_only.json()["error"]["code"] == "read_only_token"
    assert api.get("/api/v1/admin/processing").status_code == 401
    forbidden = api.get("/api/v1/admin/processing", headers=token(api, "alice"))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "not_admin"
    assert api.get("/api/v1/admin/processing", headers=token(api, "root", "read")).status_code == 200


@pytest.mark.db
def test_api_retry_returns_the_media_with_its_steps(rt, images, monkeypatch):
    kind = get_kind("image")
    real = kind.run_step
    monkeypatch.setattr(kind, "run_step", lambda step, ctx: (_ for _ in ()).throw(
        MediaRejected("Nope.", code="nope")) if step == "medium" else real(step, ctx))
    make_user(rt, "alice")
    media_id = submit(rt, "alice", images["plain"])
    client = TestClient(create_app(rt.settings, rt), base_url=BASE_URL)
    alice = token(client, "alice")
    got = client.get(f"/api/v1/media/{media_id}", headers=alice).json()
    assert got["state"] == "failed" and got["error"] == {"code": "nope", "message": "Nope."}
    assert {s["name"]: s["state"] for s in got["steps"]} == {"medium": "failed", "thumbnail": "done",
                                                           "metadata": "done"}
    monkeypatch.setattr(kind, "run_step", real)
    resp = client.post(f"/api/v1/media/{media_id}/retry", headers=alice)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "processed" and [s["state"] for s in resp.json()["steps"]] == ["done"] * 3
    again = client.post(f"/api/v1/media/{media_id}/retry", headers=alice)
    assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_retry"


# The admin's panel ------------------------------------------------------------------------------

@pytest.fixture
def mixed(queued_rt, images, flaky_thumbnail):  # type: ignore[no-untyped-def]
    """One item in each state: processed, failed (damaged), processing (retry scheduled), queued."""
    make_user(queued_rt, "alice")
    make_user(queued_rt, "bob")
    make_user(queued_rt, "root", admin=True)
    ids = {
        "processed": submit(queued_rt, "alice", images["webp"], "Good"),
        "failed": submit(queued_rt, "bob", images["truncated"], "Damaged"),
        "retrying": submit(queued_rt, "alice", images["plain"], "Flaky"),
        "queued": submit(queued_rt, "alice", images["flat_png"], "Waiting"),
    }
    flaky_thumbnail.off()
    for name in ("processed", "failed"):
        process_media(queued_rt, ids[name])
    flaky_thumbnail.on()
    process_media(queued_rt, ids["retrying"])
    flaky_thumbnail.off()
    return ids


@pytest.mark.db
def test_admin_panel_counts_states_failures_lanes_and_stuck_items(queued_rt, mixed):
    with queued_rt.sessions() as session:  # the queued item's bell was rung long ago and never answered
        for step in ledger.steps_of(session, mixed["queued"]):
            step.enqueued = utcnow() - dt.timedelta(hours=1)
        session.commit()
        view = admin_overview(queued_rt, session)
    assert view.media == {"queued": 1, "processing": 1, "failed": 1, "processed": 1}
    damaged = [s for s in steps_of(queued_rt, mixed["failed"]).values() if s.state == "failed"]
    assert {s.name for s in damaged} >= {"medium", "thumbnail"}  # the pixels cannot be read
    assert view.steps["failed"] == len(damaged) and view.steps["pending"] == 1 and view.steps["queued"] == 3
    failures = {f.code: f for f in view.failures}
    assert (failures["corrupt"].items, failures["corrupt"].failed, failures["corrupt"].retrying) == (
        1, len(damaged), 0)
    assert "damaged" in failures["corrupt"].message
    assert (failures["disk_full"].items, failures["disk_full"].retrying) == (0, 1)
    assert failures["disk_full"].message == "The disk was full."
    lanes = {lane.name: lane for lane in view.lanes}
    assert {"image.new", "image.retry", "image.reprocess", "video.new", "text.reprocess"} <= set(lanes)
    assert lanes["image.new"].waiting == 1 and lanes["image.retry"].waiting == 0
    assert lanes["image.new"].messages is None and lanes["image.new"].broker == "not available"
    assert [(s.media_id, s.steps, s.owner, s.state) for s in view.stuck] == [
        (mixed["queued"], ["medium", "thumbnail", "metadata"], "alice", "queued")]
    assert [(f.media_id, f.owner, f.code, f.steps) for f in view.latest_failures] == [
        (mixed["failed"], "bob", "corrupt", [s.name for s in damaged])]

    root = login(queued_rt, "root")
    page = root.get("/admin/processing")
    assert page.status_code == 200
    for state, count in view.media.items():
        assert re.search(rf'data-state="{state}"><span class="stat-number">{count}</span>', page.text)
    assert re.search(r'<tr data-code="corrupt"><td><code>corrupt</code></td><td>[^<]*damaged[^<]*</td>'
                     r'<td class="num">1</td><td class="num">0</td>', page.text)
    assert re.search(r'<tr data-lane="image.new"><td><code>image.new</code></td><td class="num">1</td>', page.text)
    assert "not available" in page.text and "Queued and not picked up by any worker." in page.text
    latest = row(page.text, mixed["failed"])
    assert "Damaged" in latest and ">bob</a>" in latest and "damaged" in latest
    assert "Retry all failed (1)" in page.text

    # The API gives the same numbers.
    data = root.get("/api/v1/admin/processing").json()
    expected = json.loads(json.dumps(dataclasses.asdict(view), default=lambda d: d.isoformat()))
    for key in ("media", "steps", "failures", "lanes", "stuck", "latest_failures"):
        assert normalise(data[key]) == normalise(expected[key]), key


def normalise(value):  # type: ignore[no-untyped-def]
    """Timestamps compared as instants (the API writes +00:00 the same as isoformat, but be safe)."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value


@pytest.mark.db
def test_bulk_retry_by_code_and_for_everything(queued_rt, mixed, images):
    make_user(queued_rt, "carol")
    other = submit(queued_rt, "carol", images["truncated"], "Also damaged")
    process_media(queued_rt, other)
    root = login(queued_rt, "root")
    queued_rt.dispatcher.rung.clear()
    token_ = csrf(root, "/admin/processing")
    none = root.post("/admin/processing/retry", data={"csrf_token": token_, "code": "out_of_memory"})
    assert none.status_code == 200 and "Nothing to retry: no failed items with reason “out_of_memory”" in none.text
    assert queued_rt.dispatcher.rung == []
    resp = root.post("/admin/processing/retry", data={"csrf_token": token_, "code": "corrupt", "kind": "image"})
    assert resp.status_code == 200 and resp.url.path == "/admin/processing"
    assert "Retrying 2 failed items (kind image and reason “corrupt”)." in resp.text
    assert sorted(queued_rt.dispatcher.rung) == sorted([(mixed["failed"], "image", "retry"),
                                                        (other, "image", "retry")])
    for media_id in (mixed["failed"], other):
        assert state_of(queued_rt, media_id) == "processing"
        assert {s.state for s in steps_of(queued_rt, media_id).values()} <= {"pending", "done"}
        assert steps_of(queued_rt, media_id)["medium"].state == "pending"
    for media_id in (mixed["failed"], other):  # the workers answer: still damaged
        assert process_media(queued_rt, media_id) == "failed"
    page = root.get("/admin/processing").text
    assert re.search(r'<tr data-code="corrupt">.*?<td class="num">2</td>', page)


@pytest.mark.db
def test_retrying_many_items_rings_once_each(rt, images):
    make_user(rt, "root", admin=True)
    ids = [submit(rt, "root", images["truncated"], f"Bad {n}") for n in range(5)]
    from kiln.processing.retry import retry_many

    with rt.sessions() as session:
        assert retry_many(rt, session, ids, batch=2) == 5
        assert retry_many(rt, session, []) == 0
    assert all(state_of(rt, i) == "failed" for i in ids)  # inline processing ran each again


# Queue depth from a real broker -----------------------------------------------------------------

def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def broker_rt(tmp_path, db_url, request) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    """A runtime whose dispatcher is the real Celery app (embedded filesystem queue, or a URL)."""
    url = getattr(request, "param", None)
    settings = make_settings(tmp_path / "broker-data", db_url, broker_url=url)
    runtime = build_runtime(settings)  # CeleryDispatcher: bells go to the broker, nobody answers
    yield runtime
    runtime.close()


def _depths(rt: Runtime) -> dict[str, stats.LaneDepth]:
    with rt.sessions() as session:
        return {lane.name: lane for lane in admin_overview(rt, session).lanes}


@pytest.mark.db
def test_queue_depth_from_the_embedded_broker(broker_rt, images):
    make_user(broker_rt, "alice")
    first = submit(broker_rt, "alice", images["plain"])
    submit(broker_rt, "alice", images["webp"])
    depths = _depths(broker_rt)
    assert (depths["image.new"].messages, depths["image.new"].waiting, depths["image.new"].broker) == (2, 2, "ok")
    assert depths["image.retry"].messages == 0
    with broker_rt.sessions() as session:
        media = session.get(MediaEntry, first)
        for step in ledger.steps_of(session, first):  # a failed item, retried by its owner
            ledger.mark_failed(step, "MediaRejected", "corrupt", "Damaged.")
        media.state = "failed"
        session.commit()
        from kiln.processing.retry import retry_media

        assert retry_media(broker_rt, session, media) == ["medium", "thumbnail", "metadata"]
    assert _depths(broker_rt)["image.retry"].messages == 1


@pytest.mark.skipif(not _reachable("127.0.0.1", 6379), reason="no Redis on 127.0.0.1:6379")
def test_queue_depth_from_redis(tmp_path, db_url, images):
    db = 10 + uuid.uuid4().int % 5
    settings = make_settings(tmp_path / "redis-data", db_url, broker_url=f"redis://127.0.0.1:6379/{db}")
    runtime = build_runtime(settings)
    try:
        app = runtime.dispatcher.app  # type: ignore[attr-defined]
        with app.connection_for_write() as conn:
            for name in ("image.new", "image.retry", "image.reprocess"):
                conn.default_channel.queue_purge(name)
        make_user(runtime, "alice")
        submit(runtime, "alice", images["plain"])
        depths = _depths(runtime)
        assert depths["image.new"].messages == 1 and depths["image.new"].broker == "ok"
        assert depths["image.reprocess"].messages == 0  # Redis has no key for an empty queue
    finally:
        with runtime.dispatcher.app.connection_for_write() as conn:  # type: ignore[attr-defined]
            for name in ("image.new", "image.retry", "image.reprocess"):
                conn.default_channel.queue_purge(name)
        runtime.close()


def test_an_unreachable_broker_shows_unknown_instead_of_failing(tmp_path, db_url, images):
    settings = make_settings(tmp_path / "down-data", db_url, broker_url="redis://127.0.0.1:9/0")
    runtime = build_runtime(settings)
    try:
        make_user(runtime, "root", admin=True)
        depths = _depths(runtime)
        assert {lane.broker for lane in depths.values()} == {"unknown"}
        assert all(lane.messages is None for lane in depths.values())
        page = login(runtime, "root").get("/admin/processing")
        assert page.status_code == 200 and "unknown" in page.text
    finally:
        runtime.close()
