"""Kiln on several hosts (issue #19), on the rig of tests/rig: a services host (PostgreSQL, Redis, Swift),
two web hosts behind an nginx host and two worker hosts, each a set of Linux namespaces with its own
network cable, host name, processes and data directory.

Uploads go through nginx by the API; the test then cuts a worker host's cable mid-batch, and separately
kills every process of a worker host mid-batch: every item still ends processed, each step done once. A
web host killed mid-upload loses that upload alone, and its client gets an error at once. A worker
started with --multi-host on a configuration that cannot work across hosts refuses, saying why.

Needs root and `ip netns`: without them the test fails (it never skips). It is PostgreSQL inside the rig
whatever the suite runs on, so it is not marked ``db`` (it runs once, in the SQLite run).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.media.models import MediaEntry, Rendition
from kiln.processing.hosts import WorkerHost
from kiln.processing.models import ProcessingStep, WorkState
from tests.e2e.test_brokers import SITECUSTOMIZE, small_jpeg
from tests.fixtures_pdf import A4, document
from tests.rig.network import Host
from tests.rig.site import SWEEP_INTERVAL, Rig, kiln_toml, rig

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
STEP_DELAY = 1.0  # seconds each image step sleeps on the worker hosts, so a cut or a kill lands mid-step
SETTLE = 120.0  # seconds a batch may take to settle on this loaded machine


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    hooks = tmp_path_factory.mktemp("hooks")
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)  # the image kind's steps sleep STEP_DELAY
    flags = tmp_path_factory.mktemp("flags")
    env = {"PYTHONPATH": str(hooks), "KILN_E2E_STEP_DELAY": str(STEP_DELAY), "KILN_E2E_FLAGS": str(flags)}
    started = time.monotonic()
    with rig(worker_env=env) as running:
        print(f"\nrig up in {time.monotonic() - started:.1f} s at {running.url}")
        yield running


@pytest.fixture(scope="module")
def token(site: Rig) -> dict[str, str]:
    made = site.kiln(site.web[0], "adduser", "tess", "--email", "tess@example.org", "--password", PASSWORD,
                     "--admin", log="adduser.log")
    assert made.wait(120) == 0, (site.web[0].folder / "adduser.log").read_text()
    resp = httpx.post(site.url + "/api/v1/tokens", json={"username": "tess", "password": PASSWORD}, timeout=30)
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def upload(site: Rig, token: dict[str, str], path: Path) -> int:
    with path.open("rb") as fh:
        resp = httpx.post(site.url + "/api/v1/media", headers=token, files={"file": (path.name, fh)}, timeout=60)
    assert resp.status_code == 202, resp.text
    return int(resp.json()["id"])


def settle(site: Rig, ids: list[int], timeout: float = SETTLE) -> dict[int, str]:
    """Wait until every item is processed or failed; their states."""
    deadline = time.monotonic() + timeout
    while True:
        with Session(site.db) as session:
            states = dict(session.execute(select(MediaEntry.id, MediaEntry.state).where(MediaEntry.id.in_(ids))).all())
            if all(states.get(i) in ("processed", "failed") for i in ids):
                return states
            if time.monotonic() > deadline:
                steps = session.execute(select(ProcessingStep.media_id, ProcessingStep.name, ProcessingStep.state,
                                               ProcessingStep.attempts, ProcessingStep.lease_owner)
                                        .where(ProcessingStep.media_id.in_(ids),
                                               ProcessingStep.state != WorkState.DONE)).all()
                logs = "\n".join(f"--- {h.name} ---\n{(h.folder / 'worker.log').read_text(errors='replace')[-3000:]}"
                                 for h in site.workers)
                raise AssertionError(f"not settled after {timeout:.0f} s: {states}\nsteps: {steps}\n{logs}")
        time.sleep(0.3)


def running_on(site: Rig, host: Host, ids: list[int], timeout: float = 60) -> list[tuple[int, str]]:
    """Wait until both processes of ``host`` are early in an item of these, so that losing the
    host loses running steps (what the test checks are taken back and done again); the steps it holds
    then. (A bell the host took and never began is rung again by the sweeper once it is seen silent.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A group of an image's three steps takes 3 x STEP_DELAY from its claim: one claimed within 2 x
        # STEP_DELAY still has a step to run when the host is lost.
        recent = utcnow() - dt.timedelta(seconds=STEP_DELAY * 2)
        with Session(site.db) as session:
            held = session.execute(select(ProcessingStep.media_id, ProcessingStep.name).where(
                ProcessingStep.media_id.in_(ids), ProcessingStep.state == WorkState.RUNNING,
                ProcessingStep.started > recent, ProcessingStep.lease_owner.like(f"{host.name}:%"))).all()
        # Both processes busy: two items held (an image's steps are claimed and run as one group).
        if len({media_id for media_id, _ in held}) >= 2:
            return [(media_id, name) for media_id, name in held]
        time.sleep(0.02)
    raise AssertionError(f"{host.name} never held two of {ids} at once")


def check_done_once(site: Rig, ids: list[int]) -> None:
    """Every item processed with one rendition row per name, every step done, every rendition in Swift."""
    with Session(site.db) as session:
        states = dict(session.execute(select(MediaEntry.id, MediaEntry.state).where(MediaEntry.id.in_(ids))).all())
        assert set(states.values()) == {"processed"}, states
        twice = session.execute(select(Rendition.media_id, Rendition.name, func.count()).group_by(
            Rendition.media_id, Rendition.name).having(func.count() > 1)).all()
        assert not twice, f"renditions made twice: {twice}"
        undone = session.execute(select(ProcessingStep.media_id, ProcessingStep.name, ProcessingStep.state).where(
            ProcessingStep.media_id.in_(ids), ProcessingStep.state != WorkState.DONE)).all()
        assert not undone, undone
        names = {media_id: sorted(name for m, name in session.execute(
            select(Rendition.media_id, Rendition.name).where(Rendition.media_id.in_(ids))) if m == media_id)
            for media_id in ids}
    assert all(found == ["medium", "thumbnail", "thumbnail_2x"] for found in names.values()), names


def heartbeats(site: Rig) -> dict[str, list[str]]:
    with Session(site.db) as session:
        rows = session.execute(select(WorkerHost.host, WorkerHost.id)).all()
    out: dict[str, list[str]] = {}
    for host, worker in rows:
        out.setdefault(host, []).append(worker)
    return out


def admin_page(site: Rig) -> str:
    """/admin/processing through nginx, logged in by the form (its CSRF token checked by whichever web
    host gets the post: they share secret.key)."""
    with httpx.Client(base_url=site.url, timeout=30, follow_redirects=True) as browser:
        form = browser.get("/auth/login").text
        found = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert found, form[:500]
        resp = browser.post("/auth/login", data={"username": "tess", "password": PASSWORD,
                                                 "csrf_token": found.group(1)})
        assert resp.status_code == 200, resp.text[:500]
        page = browser.get("/admin/processing")
        assert page.status_code == 200, page.text[:500]
        return page.text


def bring_back(site: Rig, host: Host) -> None:
    """A worker host restarted (after a cut or a power cut): fresh processes, cable in."""
    host.kill()
    host.reconnect()
    host.boot()
    site.start_worker(host)


def images(folder: Path, prefix: str, count: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [small_jpeg(folder, f"{prefix}-{n}.jpg", seed=len(prefix) * 100 + n, size=(320, 240))
            for n in range(count)]


# The tests, in order: each leaves every host running ----------------------------------------------------

def test_a_mixed_batch_goes_through_nginx_to_both_worker_hosts_and_is_served_from_swift(
        site: Rig, token: dict[str, str], samples, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pdf = tmp_path / "leaflet.pdf"
    pdf.write_bytes(document([A4], title="Leaflet"))
    files = [*images(tmp_path, "mixed", 6), samples("audio")["mp3"], pdf]
    ids = [upload(site, token, path) for path in files]
    states = settle(site, ids)
    assert set(states.values()) == {"processed"}, states

    beats = heartbeats(site)
    assert {h.name for h in site.workers} <= set(beats), beats
    # Both worker hosts took part: each one's log shows tasks it finished.
    for host in site.workers:
        assert "succeeded in" in (host.folder / "worker.log").read_text(errors="replace"), host.name
    page = admin_page(site)
    for host in site.workers:
        assert f'data-worker="{beats[host.name][0]}"' in page
    assert "Silent: the host may be down or cut off." not in page

    # The renditions are Swift's objects: the API links straight to the services host's object store.
    for media_id in ids:
        item = httpx.get(f"{site.url}/api/v1/media/{media_id}", timeout=30).json()
        for name, rendition in item["renditions"].items():
            assert rendition["url"].startswith(f"{site.swift}/v1/AUTH_test/kiln-public/"), (name, rendition)
        thumb = item["renditions"].get("thumbnail")
        if thumb:
            got = httpx.get(thumb["url"], timeout=30)
            assert got.status_code == 200 and "x-trans-id" in got.headers  # Swift's proxy answered
            assert got.content[:3] == b"\xff\xd8\xff" and len(got.content) == thumb["bytes"]


def assert_done_again(site: Rig, ids: list[int], held: list[tuple[int, str]]) -> None:
    """Every step the lost host held was tried again (attempts >= 2)."""
    with Session(site.db) as session:
        attempts = {(m, n): a for m, n, a in session.execute(
            select(ProcessingStep.media_id, ProcessingStep.name, ProcessingStep.attempts).where(
                ProcessingStep.media_id.in_(ids)))}
    assert all(attempts[step] >= 2 for step in held), (held, attempts)


def test_a_worker_host_cut_off_mid_batch_loses_nothing_and_duplicates_nothing(
        site: Rig, token: dict[str, str], tmp_path: Path) -> None:
    cut, other = site.workers
    ids = [upload(site, token, path) for path in images(tmp_path, "cut", 10)]
    held = running_on(site, cut, ids)
    cut.cut()
    started = time.monotonic()
    try:
        settle(site, ids)
        took = time.monotonic() - started
        check_done_once(site, ids)
        assert_done_again(site, ids, held)  # what the cut host held was taken back and done by the other
        assert "Silent: the host may be down or cut off." in admin_page(site)
        # Taken back after three silent sweeps, not when the leases lapse (60 s, renewed every 20 s).
        assert took < 40, f"the batch took {took:.1f} s to settle after the cut"
    finally:
        bring_back(site, cut)
    print(f"\ncut {cut.name} holding {held}; settled {took:.1f} s later on {other.name}")


def test_a_worker_host_killed_mid_batch_loses_nothing_and_duplicates_nothing(
        site: Rig, token: dict[str, str], tmp_path: Path) -> None:
    survivor, killed = site.workers
    ids = [upload(site, token, path) for path in images(tmp_path, "kill", 10)]
    held = running_on(site, killed, ids)
    killed.kill()  # every process of the host, at once
    started = time.monotonic()
    try:
        settle(site, ids)
        took = time.monotonic() - started
        check_done_once(site, ids)
        assert_done_again(site, ids, held)
        assert took < 40, f"the batch took {took:.1f} s to settle after the kill"
    finally:
        bring_back(site, killed)
    print(f"\nkilled {killed.name} holding {held}; settled {took:.1f} s later on {survivor.name}")


def _slow_upload(site: Rig, token: dict[str, str], name: str, outcome: dict[str, object],
                 stop: threading.Event) -> None:
    """An upload that sends 64 KiB every 0.1 s until ``stop`` is set, then the rest of a JPEG."""
    photo = small_jpeg(Path(outcome["folder"]), name, seed=7, size=(320, 240)).read_bytes()  # type: ignore[arg-type]
    boundary = "rigboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{name}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    # JPEG comment segments after the start marker, sent slowly, make the file long; the picture follows.
    comment = b"\0" * 60000
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment

    def body() -> Iterator[bytes]:
        yield head + photo[:2]
        while not stop.is_set():
            yield segment
            time.sleep(0.1)
        yield photo[2:] + f"\r\n--{boundary}--\r\n".encode()

    started = time.monotonic()
    try:
        resp = httpx.post(site.url + "/api/v1/media", content=body(), timeout=30,
                          headers={**token, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        outcome["status"], outcome["text"] = resp.status_code, resp.text
    except httpx.HTTPError as exc:
        outcome["error"] = repr(exc)
    outcome["seconds"] = time.monotonic() - started


def connections(host: Host) -> int:
    """How many requests this web host is receiving now (TCP connections to its port)."""
    return len(host.check(["ss", "-Htn", "state", "established", "( sport = :6543 )"]).splitlines())


def test_a_web_host_killed_mid_upload_loses_that_upload_alone(site: Rig, token: dict[str, str],
                                                              tmp_path: Path) -> None:
    with Session(site.db) as session:
        before = session.scalar(select(func.count()).select_from(MediaEntry))
    stop = threading.Event()
    outcomes: list[dict[str, object]] = []
    threads = []
    for n in range(2):  # nginx sends the second to the other web host (round robin)
        outcomes.append({"folder": str(tmp_path)})
        thread = threading.Thread(target=_slow_upload, args=(site, token, f"slow-{n}.jpg", outcomes[n], stop))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 30
        while sum(connections(h) for h in site.web) < n + 1:
            assert time.monotonic() < deadline, "the upload never reached a web host"
            time.sleep(0.1)
    assert [connections(h) for h in site.web] == [1, 1]
    victim, survivor = site.web
    time.sleep(0.5)
    victim.kill()
    try:
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(60)
        lost, kept = (outcomes[0], outcomes[1]) if "error" in outcomes[0] or outcomes[0].get("status") != 202 \
            else (outcomes[1], outcomes[0])
        # The cut upload ends at once with an error: a 502 from nginx, or the connection closed.
        assert "error" in lost or lost["status"] == 502, lost
        assert float(lost["seconds"]) < 20, lost  # type: ignore[arg-type]
        print(f"\nthe upload cut by the kill: {lost.get('status') or lost.get('error')} after "
              f"{float(lost['seconds']):.1f} s")  # type: ignore[arg-type]
        assert kept.get("status") == 202, kept
        media_id = int(re.search(r'"id":\s*(\d+)', str(kept["text"])).group(1))  # type: ignore[union-attr]
        assert settle(site, [media_id]) == {media_id: "processed"}
        # nginx sends the next upload to the web host left.
        extra = upload(site, token, small_jpeg(tmp_path, "after.jpg", seed=9))
        assert settle(site, [extra]) == {extra: "processed"}
        with Session(site.db) as session:
            assert session.scalar(select(func.count()).select_from(MediaEntry)) == before + 2
    finally:
        victim.boot()
        site.start_web(victim)


def test_an_upload_is_answered_while_the_broker_hangs(site: Rig, token: dict[str, str], tmp_path: Path) -> None:
    """Redis stops answering on open connections (SIGSTOP: what a host cut off without its connections
    being closed looks like): the bell rung after the upload's commit gives up within seconds, the
    upload is answered, and the item waits in the ledger for the sweeper to ring it again."""
    photo = small_jpeg(tmp_path, "while-hung.jpg", seed=11)
    site.services.check(["pkill", "-STOP", "-x", "redis-server"])
    try:
        started = time.monotonic()
        media_id = upload(site, token, photo)
        took = time.monotonic() - started
    finally:
        site.services.check(["pkill", "-CONT", "-x", "redis-server"])
    assert took < 20, f"the upload took {took:.1f} s with the broker hung"
    with Session(site.db) as session:
        assert session.get(MediaEntry, media_id) is not None


def test_a_worker_started_on_a_configuration_that_cannot_work_across_hosts_refuses(site: Rig) -> None:
    host = site.workers[0]
    services, proxy = site.services.address, site.proxy.address
    local = kiln_toml(services, proxy).split("[storage]")[0]  # the stores are the default: local folders
    other_broker = kiln_toml(services, proxy).replace(":6379/0", ":6379/1")
    tries = {
        "local": (site.data(host, "data-local", local), ["--multi-host"]),
        "broker": (site.data(host, "data-broker", other_broker), []),
    }
    procs = {name: site.kiln(host, "worker", *flags, data=data, log=f"refused-{name}.log")
             for name, (data, flags) in tries.items()}
    said = {}
    for name, proc in procs.items():
        assert proc.wait(120) != 0, f"the {name} worker started"
        said[name] = (host.folder / f"refused-{name}.log").read_text(errors="replace")
    assert ("--multi-host needs stores every host reaches: queue, originals, public is a folder on this "
            "machine. Give it a Swift or S3 backend in [storage] of " in said["local"]), said["local"][-2000:]
    assert (f"uses the broker redis://{services}:6379/0; this host would use redis://{services}:6379/1. "
            "Every host must use the same one" in said["broker"]), said["broker"][-2000:]


def test_the_same_site_on_rabbitmq_loses_nothing_when_a_worker_host_is_cut_off(
        site: Rig, token: dict[str, str], tmp_path: Path) -> None:
    """The whole site moves to the services host's RabbitMQ (every host restarted with the new
    kiln.toml, as an operator would), takes a batch, and a worker host is cut off mid-batch: every item
    is still processed once. RabbitMQ's unacknowledged deliveries are not what saves the work (the cut
    host's connection stays open on the broker's side for minutes); the ledger is, as with Redis."""
    site.broker = "rabbitmq"
    for host in [*site.web, *site.workers]:
        host.kill()
    time.sleep(SWEEP_INTERVAL * 4)  # the killed hosts' heartbeats fall silent: no stale broker to refuse
    for host in [*site.web, *site.workers]:
        host.boot()
    for host in site.web:
        site.start_web(host)
    for host in site.workers:
        site.start_worker(host)
    recent = utcnow() - dt.timedelta(seconds=SWEEP_INTERVAL * 3)
    with Session(site.db) as session:
        brokers = set(session.scalars(select(WorkerHost.broker).where(WorkerHost.last_beat > recent)))
    assert len(brokers) == 1 and brokers.pop().startswith("amqp://"), brokers
    cut, other = site.workers
    ids = [upload(site, token, path) for path in images(tmp_path, "rabbit", 8)]
    held = running_on(site, cut, ids)
    cut.cut()
    started = time.monotonic()
    try:
        settle(site, ids)
        took = time.monotonic() - started
        check_done_once(site, ids)
        assert_done_again(site, ids, held)
        assert took < 40, f"the batch took {took:.1f} s to settle after the cut"
    finally:
        bring_back(site, cut)
    print(f"\nRabbitMQ: cut {cut.name} holding {held}; settled {took:.1f} s later on {other.name}")
