"""The conformance suite every media kind passes (STYLE: pluggable parts get one shared suite).

For each kind in the registry:

* the kind fulfils the contract (names, extensions, served types, a display template, a ``thumbnail``)
  and the optional capabilities it has (``NeedsName``, ``ChecksCurrent``, ``StripsMetadata``) have
  the protocol's signature;
* every good sample its fixture module makes, uploaded through the real upload form, ends
  processed with a thumbnail, a blurred placeholder and a media page that shows it;
* every hostile file its fixture module makes ends refused at upload (a 4xx with a sentence) or
  failed with a reason, within the time limit for its kind, and never as a server error.

A kind without fixtures fails here: adding a kind means adding ``tests/fixtures_<kind>.py``.
"""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import pytest
from tests.conftest import csrf, register

from kiln.config import Settings
from kiln.media.models import MediaEntry
from kiln.mediatypes import kind_dir, kinds
from kiln.mediatypes.base import CAPABILITIES, THUMBNAIL_2X, RenditionSpec

KINDS = sorted(kinds())
# Seconds allowed to decide one hostile file (issue #6: 30 s for images, 120 s for video).
DECIDE_WITHIN = {"video": 120.0, "audio": 120.0}
DEFAULT_DECIDE_WITHIN = 30.0


def upload(client, path: Path):  # type: ignore[no-untyped-def]
    files = [("file", (path.name, path.read_bytes(), "application/octet-stream"))]
    return client.post("/upload", data={"csrf_token": csrf(client, "/upload")}, files=files,
                       follow_redirects=False)


def entry_for(rt, name: str) -> MediaEntry | None:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        entry = session.query(MediaEntry).filter_by(original_name=name).order_by(MediaEntry.id.desc()).first()
        if entry is not None:
            session.expunge(entry)
        return entry


def test_every_kind_is_registered() -> None:
    assert sorted(["image", "video", "audio", "pdf", "model3d", "text"]) == KINDS, (
        "a kind package failed to import or is missing"
    )


@pytest.mark.parametrize("name", KINDS)
def test_kind_fulfils_the_contract(name: str, settings) -> None:  # type: ignore[no-untyped-def]
    kind = kinds()[name]
    assert kind.name == name and kind.label and kind.formats
    assert kind.file_extensions and all(ext.startswith(".") and ext == ext.lower() for ext in kind.file_extensions)
    assert kind.mime_extensions and all(ext.startswith(".") for ext in kind.mime_extensions.values())
    assert (kind_dir(kind) / "display.html").is_file(), "each kind has its own part of the media page"
    assert isinstance(kind.order, int)
    assert kind.served_types and all(ext.startswith(".") and ext == ext.lower() and "/" in content_type
                                     for ext, content_type in kind.served_types.items())
    assert kind.inline_types <= set(kind.served_types), "only a type it serves can be shown inline"
    assert kind.settings_section is None or kind.settings_section in Settings.model_fields
    steps = kind.steps(settings)
    assert len({s.name for s in steps}) == len(steps), "step names are unique"
    outputs = [spec.name for step in steps for spec in step.renditions]
    assert "thumbnail" in outputs, "galleries need a thumbnail from every kind"
    thumbnail_step = next(step for step in steps if "thumbnail" in {spec.name for spec in step.renditions})
    sizes = {spec.name: spec.params.get("size") for spec in thumbnail_step.renditions}
    assert sizes.get(THUMBNAIL_2X) == 2 * settings.image.thumbnail_size == 2 * sizes["thumbnail"], \
        "the thumbnail's step also makes it at twice the size (galleries' srcset)"
    assert all(isinstance(spec, RenditionSpec) and spec.fingerprint() for step in steps for spec in step.renditions)


@pytest.mark.parametrize("name", KINDS)
def test_optional_capabilities_have_their_protocols_signature(name: str) -> None:
    kind = kinds()[name]
    for capability in CAPABILITIES:
        declared = [*vars(capability).get("__annotations__", {}), *vars(capability)]
        members = sorted({m for m in declared if not m.startswith("_")})
        present = [m for m in members if hasattr(kind, m)]
        if not present:
            continue
        assert isinstance(kind, capability), f"{name} has {present} but not all of {capability.__name__}"
        for member in present:
            wanted = getattr(capability, member, None)
            if callable(wanted):
                got = inspect.signature(getattr(kind, member))
                assert list(got.parameters) == list(inspect.signature(wanted).parameters)[1:], (
                    f"{name}.{member}{got} does not match {capability.__name__}")


def test_kinds_are_asked_in_a_stable_order() -> None:
    assert list(kinds()) == ["image", "video", "audio", "pdf", "model3d", "text"]


def test_no_two_kinds_claim_the_same_extension() -> None:
    seen: dict[str, str] = {}
    for name, kind in kinds().items():
        for ext in kind.file_extensions:
            assert ext not in seen, f"{ext} is claimed by both {seen[ext]} and {name}"
            seen[ext] = name


@pytest.mark.parametrize("name", KINDS)
def test_every_sample_is_published_with_a_thumbnail_and_a_page(name, client, settings, rt, samples):  # type: ignore[no-untyped-def]
    register(client, settings)
    files = samples(name)
    assert files, f"tests/fixtures_{name}.py made no samples"
    problems = []
    for label, path in files.items():
        resp = upload(client, path)
        if resp.status_code >= 400:
            problems.append(f"{label}: refused at upload ({resp.status_code})")
            continue
        entry = entry_for(rt, path.name)
        if entry is None or entry.kind != name or entry.state != "processed":
            problems.append(f"{label}: {entry and (entry.kind, entry.state, entry.error_message)}")
            continue
        thumb = next((r for r in entry.renditions if r.name == "thumbnail"), None)
        if thumb is None or not thumb.width or not thumb.height:
            problems.append(f"{label}: no thumbnail with a size")
            continue
        sharp = next((r for r in entry.renditions if r.name == THUMBNAIL_2X), None)
        if sharp is None or max(sharp.width or 0, sharp.height or 0) < max(thumb.width, thumb.height):
            problems.append(f"{label}: no thumbnail_2x at least as large as the thumbnail")
        served = client.get(rt.stores.public.url(thumb.key))
        if served.status_code != 200 or not served.headers["content-type"].startswith("image/"):
            problems.append(f"{label}: thumbnail served as {served.status_code} {served.headers.get('content-type')}")
        if not (entry.info or {}).get("blurhash"):
            problems.append(f"{label}: no blurred placeholder")
        page = client.get(f"/u/alice/m/{entry.id}")
        if page.status_code != 200 or entry.title not in page.text:
            problems.append(f"{label}: media page {page.status_code}")
        gallery = client.get("/u/alice")
        if f'href="/u/alice/m/{entry.id}"' not in gallery.text:
            problems.append(f"{label}: missing from the gallery")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", KINDS)
def test_every_hostile_file_ends_refused_or_failed_with_a_reason(name, client, settings, rt, hostile):  # type: ignore[no-untyped-def]
    register(client, settings)
    files = hostile(name)
    assert files, f"tests/fixtures_{name}.py made no hostile files"
    limit = DECIDE_WITHIN.get(name, DEFAULT_DECIDE_WITHIN)
    problems = []
    for label, path in files.items():
        started = time.monotonic()
        resp = upload(client, path)
        took = time.monotonic() - started
        if took > limit:
            problems.append(f"{label}: took {took:.1f} s to decide (limit {limit:.0f} s)")
        if resp.status_code >= 500:
            problems.append(f"{label}: server error {resp.status_code}")
            continue
        if resp.status_code >= 400:
            message = re.sub(r"<[^>]+>", " ", resp.text)
            if not re.search(r"[A-Za-z]{3,}[^.]*\.", message):
                problems.append(f"{label}: refused without a sentence")
            continue
        entry = entry_for(rt, path.name)
        if entry is None:
            problems.append(f"{label}: accepted ({resp.status_code}) but no media entry exists")
        elif entry.state != "failed" or not entry.error_message:
            problems.append(f"{label}: ended {entry.state!r} as {entry.kind} ({entry.error_message!r})")
    assert not problems, "\n".join(problems)
