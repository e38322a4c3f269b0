"""Issue #6, hostile uploads: every file of the generated corpus (tests/hostile/corpus.py), uploaded
through the real upload form with processing inline, ends refused at upload (a 4xx with a sentence)
or failed with a reason -- or, for the few cases that may legitimately publish (bit flips, a genuine
picture under a hostile name), processed into renditions that are valid web files.

Never: a 5xx, an exception, an item left unfinished, a decision slower than 30 s (images) / 120 s
(video, audio), more than 1 GiB of memory (peak RSS of this process, reset before each upload via
/proc/self/clear_refs, and the largest child process), a connection to the trap server, or the bytes of
a planted secret file anywhere in the data directory, the database or an error message.
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
import resource
import time
from pathlib import Path

import pytest

from kiln.media.models import MediaEntry
from tests.conftest import PG_URL, csrf, register
from tests.hostile.corpus import SECRET_BYTES, Case, make_corpus, plant_secret
from tests.hostile.trap import Trap, probe

GIB = 1024**3
DECIDE_WITHIN = {"video": 120.0, "audio": 120.0}
DEFAULT_DECIDE_WITHIN = 30.0
KINDS = ["image", "video", "audio", "pdf", "text", "model3d"]
DANGEROUS_NAME = re.compile(r"[/\x00-\x1f\u202a-\u202e\u2066-\u2069]")
SENTENCE = re.compile(r"[A-Za-z]{3,}[^.<>]*[.!?]")


def peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set size


def peak_rss() -> int:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert found
    return int(found.group(1)) * 1024


def children_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


@pytest.fixture
def trap():  # type: ignore[no-untyped-def]
    server = Trap().start()
    probe(server)  # the trap notices a connection...
    assert len(server.hits) == 1, "the trap server does not record connections"
    server.hits.clear()  # ...and starts the corpus with none
    yield server
    server.stop()


def upload(client, case: Case, token: str):  # type: ignore[no-untyped-def]
    files = [("file", (case.filename, case.path.read_bytes(), case.content_type))]
    return client.post("/upload", data={"csrf_token": token}, files=files, follow_redirects=False)


def newest(rt, after: int) -> MediaEntry | None:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        entry = session.query(MediaEntry).filter(MediaEntry.id > after).order_by(MediaEntry.id.desc()).first()
        if entry is not None:
            entry.renditions  # noqa: B018 -- load before detaching
            session.expunge(entry)
        return entry


def rendition_problem(data: bytes, mime: str) -> str | None:
    """None when ``data`` is a valid web file of type ``mime``, else what is wrong."""
    if SECRET_BYTES in data:
        return "holds the planted secret"
    if mime.startswith("image/"):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if im.format is None or im.format.lower() not in mime.replace("jpeg", "jpeg"):
                    return f"is {im.format}, labelled {mime}"
        except Exception as exc:  # noqa: BLE001 -- any decoder error means a broken rendition
            return f"does not decode ({exc})"
        return None
    if mime.startswith(("video/", "audio/")):
        import av

        try:
            with av.open(io.BytesIO(data)) as container:
                stream = (container.streams.video or container.streams.audio)[0]
                next(container.decode(stream))
        except Exception as exc:  # noqa: BLE001
            return f"does not decode ({exc})"
        return None
    if mime == "application/json":
        try:
            json.loads(data)
        except ValueError:
            return "is not JSON"
        return None
    magic = {"model/gltf-binary": b"glTF", "application/pdf": b"%PDF"}
    if mime in magic:
        return None if data.startswith(magic[mime]) else "wrong signature"
    if mime.startswith("text/") and mime != "text/html":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "is not UTF-8 text"
        return None if b"<script" not in data.lower() else "carries a script"
    return f"has an unexpected type {mime}"


def judge(case: Case, resp, entry: MediaEntry | None, rt) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """The outcome of one case and any problems with it."""
    if resp.status_code >= 500:
        return "server error", [f"answered {resp.status_code}"]
    if resp.status_code >= 400:
        text = re.sub(r"<[^>]+>", " ", resp.text)
        return "refused", [] if SENTENCE.search(text) and entry is None else [f"refused ({resp.status_code}) "
                                                                             "without a sentence or left an item"]
    if entry is None:
        return "lost", [f"accepted ({resp.status_code}) but no media item exists"]
    problems = []
    if SECRET_BYTES.decode() in (entry.error_message or ""):
        problems.append("the error message quotes the secret")
    if entry.state == "failed":
        return "failed", problems + ([] if entry.error_message else ["failed without a reason"])
    if entry.state != "processed":
        return entry.state, problems + [f"left {entry.state!r} after inline processing"]
    if not case.may_process or case.touches_secret:
        return "processed", problems + [f"processed as {entry.kind} ({entry.mime_type}) but must be refused or fail"]
    if entry.mime_type == case.content_type and case.group == "declared type":
        problems.append(f"took the declared type {case.content_type}")
    name = entry.original_name
    if case.group == "hostile name" and (len(name) > 255 or DANGEROUS_NAME.search(name)):
        problems.append(f"kept a dangerous name {name!r}")
    for rendition in entry.renditions:
        key = "/".join(rendition.key)
        if ".." in rendition.key or any(part in ("", ".") for part in rendition.key) or "php" in key:
            problems.append(f"rendition key {key!r}")
        with rt.stores.public.open(rendition.key) as fh:
            wrong = rendition_problem(fh.read(), rendition.mime_type)
        if wrong:
            problems.append(f"rendition {rendition.name} {wrong}")
    if not any(r.name == "thumbnail" for r in entry.renditions):
        problems.append("processed without a thumbnail")
    return "processed", problems


def leaked_into(settings) -> list[str]:  # type: ignore[no-untyped-def]
    places = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    if not PG_URL:
        places.append(Path(settings.database_url.removeprefix("sqlite:///")))
    return [str(p) for p in places if SECRET_BYTES in p.read_bytes()]


@pytest.mark.db
def test_every_hostile_upload_is_refused_or_fails_safely(client, settings, rt, samples, hostile, trap,  # type: ignore[no-untyped-def]
                                                         tmp_path):
    secret_text, secret_video = plant_secret(tmp_path / "elsewhere")
    # On PostgreSQL (the second run, for the text that reaches its columns) each sample is flipped once:
    # a second random flip exercises the decoders again, which are the same on both databases.
    cases = make_corpus(tmp_path / "corpus", {k: samples(k) for k in KINDS}, {k: hostile(k) for k in KINDS},
                        secret_text, secret_video, trap.url(), flips=1 if PG_URL else 2)
    assert len(cases) >= 200, f"the corpus holds only {len(cases)} files"
    only = os.environ.get("KILN_HOSTILE_GROUPS")  # e.g. "pixel bomb,animated bomb" for a quick scratch run
    if only:
        cases = [c for c in cases if c.group in only.split(",")]
    register(client, settings)
    token = csrf(client, "/upload")
    spent: collections.Counter[str] = collections.Counter()
    children_before = children_peak_rss()
    outcomes: dict[str, str] = {}
    problems: list[str] = []
    slowest = (0.0, "")
    top_rss = (0, "")
    last_id = 0
    started_all = time.monotonic()
    for case in cases:
        peak_rss_reset()
        started = time.monotonic()
        try:
            resp = upload(client, case, token)
        except Exception as exc:  # noqa: BLE001 -- an exception escaping the app is a crash
            outcomes[case.label] = "crash"
            problems.append(f"{case.label} [{case.group}]: raised {type(exc).__name__}: {exc}")
            continue
        took = time.monotonic() - started
        spent[case.group] += took
        rss = peak_rss()
        entry = newest(rt, last_id)
        if entry is not None:
            last_id = entry.id
        outcome, found = judge(case, resp, entry, rt)
        family = entry.kind if entry is not None else case.family
        limit = DECIDE_WITHIN.get(family, DEFAULT_DECIDE_WITHIN)
        if took > limit:
            found.append(f"took {took:.1f} s (limit {limit:.0f} s)")
        if rss > GIB:
            found.append(f"peak memory {rss / 2**20:.0f} MiB (limit 1024 MiB)")
        slowest = max(slowest, (took, case.label))
        top_rss = max(top_rss, (rss, case.label))
        if trap.hits:
            found.append(f"contacted the trap server: {trap.hits[:2]}")
            trap.hits.clear()
        outcomes[case.label] = outcome
        problems += [f"{case.label} [{case.group}, {case.filename!r}]: {p}" for p in found]
    children = children_peak_rss()
    if children > GIB and children > children_before:
        problems.append(f"a child process peaked at {children / 2**20:.0f} MiB (limit 1024 MiB)")
    problems += [f"the planted secret is in {place}" for place in leaked_into(settings)]

    by_group: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for case in cases:
        by_group[case.group][outcomes[case.label]] += 1
    summary = {
        "files": len(cases), "seconds": round(time.monotonic() - started_all, 1),
        "outcomes": dict(collections.Counter(outcomes.values())), "by_group": {g: dict(c) for g, c in by_group.items()},
        "seconds_by_group": {g: round(t, 1) for g, t in spent.items()},
        "slowest": [round(slowest[0], 2), slowest[1]], "peak_rss_mib": [top_rss[0] // 2**20, top_rss[1]],
        "children_peak_rss_mib": children // 2**20,
    }
    print("hostile corpus:", json.dumps(summary, indent=1))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
