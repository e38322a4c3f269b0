"""Reprocessing: stale renditions after a settings change, throttled admission, retries, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.accounts import services as accounts
from kiln.errors import InvalidInput, NotFound
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.mediatypes import get_kind
from kiln.mediatypes.base import Identified, MediaRejected, RenditionSpec, StepDef
from kiln.processing import ledger
from kiln.processing import reprocess as rp
from kiln.processing.dispatch import InlineDispatcher
from kiln.processing.service import process_media
from kiln.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.fixtures_images import photo

pytestmark = pytest.mark.db

# name -> displayed size. With thumbnails going from 180 to 240 px:
SIZES = {
    "big": (1600, 1200),  # thumbnail 180x135 -> 240x180: stale
    "mid": (200, 150),  # was shrunk to 180x135, now fits whole at 200x150: stale
    "small": (120, 90),  # fits in both: same bytes, not stale
    "edge": (180, 100),  # as large as the old box: that thumbnail came from the medium: stale
}
STALE_NAMES = {"big", "mid", "edge"}


@pytest.fixture(scope="module")
def sized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sized")
    out = {}
    for seed, (name, size) in enumerate(SIZES.items(), start=10):
        out[name] = folder / f"{name}.jpg"
        photo(*size, seed=seed).save(out[name], quality=88)
    return out


def inline_runtime(settings) -> Runtime:  # type: ignore[no-untyped-def]
    holder: dict[str, Runtime] = {}
    runtime = build_runtime(settings, dispatcher=InlineDispatcher(lambda i: process_media(holder["rt"], i)))
    holder["rt"] = runtime
    return runtime


@pytest.fixture
def resized(rt: Runtime, db_url: str) -> Iterator[Runtime]:
    """The same site after its thumbnail size changed from 180 to 240 px (processing inline)."""
    settings = make_settings(rt.settings.data_dir, db_url, image={"thumbnail_size": 240})
    runtime = inline_runtime(settings)
    yield runtime
    runtime.close()


def upload(rt: Runtime, files: dict[str, Path]) -> dict[str, int]:
    with rt.sessions() as session:
        user = accounts.get_user(session, "alice") if _has_alice(session) else accounts.create_user(
            session, "alice", "a@example.com", "correct horse", verified=True)
        session.commit()
        ids = {}
        for name, path in files.items():
            with path.open("rb") as fh:
                ids[name] = media_service.submit(rt, session, user, fh, path.name, media_service.MediaFields()).id
    return ids


def _has_alice(session) -> bool:  # type: ignore[no-untyped-def]
    from kiln.accounts.models import User

    return session.query(User).filter_by(username="alice").first() is not None


def renditions(rt: Runtime, media_id: int) -> dict[str, dict]:  # type: ignore[type-arg]
    """Each rendition's row and file: key, size, fingerprint, and the file's mtime."""
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        out = {}
        for r in media.renditions:
            path = rt.stores.public.local_path(r.key)
            out[r.name] = {"key": list(r.key), "width": r.width, "height": r.height,
                           "fingerprint": r.spec_fingerprint, "spec": dict(r.spec),
                           "mtime": path.stat().st_mtime_ns if path.exists() else None}
        return out


def states(rt: Runtime, media_id: int) -> dict[str, str]:
    with rt.sessions() as session:
        return {s.name: s.state for s in ledger.steps_of(session, media_id)}


# is_current ------------------------------------------------------------------------------------
def test_image_is_current_only_when_neither_size_shrinks_the_picture():
    kind = get_kind("image")
    params = dict(version=1, jpeg_quality=82, webp_quality=80, format="jpeg, or webp when transparent", keep="icc")
    new = RenditionSpec("thumbnail", {**params, "size": 240})
    medium = RenditionSpec("medium", {**params, "size": 1600})

    def pic(w: int, h: int) -> Identified:
        return Identified("image", "image/jpeg", w, h)

    old = {**params, "size": 180}
    assert kind.is_current(new, old, pic(120, 90))
    assert kind.is_current(new, old, pic(90, 179))  # displayed size: portrait counts its height
    assert not kind.is_current(new, old, pic(200, 150))  # the old thumbnail was shrunk
    assert not kind.is_current(new, old, pic(180, 100))  # thumbnail as large as the old box
    assert kind.is_current(medium, {**params, "size": 1280}, pic(1280, 960))  # the medium may equal it
    assert not kind.is_current(medium, {**params, "size": 1280}, pic(1281, 960))
    assert not kind.is_current(new, {}, pic(120, 90))  # made before specs were stored
    assert not kind.is_current(new, {**old, "jpeg_quality": 90}, pic(120, 90))  # other bytes
    assert not kind.is_current(new, {**old, "version": 0}, pic(120, 90))
    assert not kind.is_current(new, old, Identified("image", "image/jpeg"))  # size unknown


# stale -----------------------------------------------------------------------------------------
def test_changing_the_thumbnail_size_remakes_exactly_the_affected_thumbnails(rt, resized, sized, images,
                                                                             monkeypatch):
    ids = upload(rt, {**sized, "alpha": images["alpha_png"]})  # alpha: 400x300, a WebP thumbnail
    assert {states(rt, i)["thumbnail"] for i in ids.values()} == {"done"}
    before = {name: renditions(rt, i) for name, i in ids.items()}
    assert before["big"]["thumbnail"]["width"] == 180 and before["small"]["thumbnail"]["width"] == 120

    # Nothing is stale under the settings the items were made with.
    assert rp.stale(rt)["stale"] == [] and rp.stale(rt)["same_output"] == []

    affected = STALE_NAMES | {"alpha"}
    report = rp.stale(resized)
    assert report["kinds"]["image"]["items"] == len(ids)
    assert report["kinds"]["image"]["steps"] == {
        "medium": {"stale": 0, "same_output": 0},
        "thumbnail": {"stale": len(affected), "same_output": 1},
        "metadata": {"stale": 0, "same_output": 0},
    }
    assert sorted(report["stale"]) == sorted((ids[n], "thumbnail") for n in affected)
    assert report["same_output"] == [(ids["small"], "thumbnail")]
    assert rp.stale(resized, "image") == report

    # The real run remakes only those, and never runs any other step.
    kind = get_kind("image")
    real, calls = kind.run_step, []
    monkeypatch.setattr(kind, "run_step", lambda step, ctx: calls.append(step) or real(step, ctx))
    result = rp.apply_stale(resized, report)
    assert sorted(result["media_ids"]) == sorted(ids[n] for n in affected)
    assert result["recorded"] == 1 and result["busy"] == []
    assert calls == ["thumbnail"] * len(affected)

    after = {name: renditions(rt, i) for name, i in ids.items()}
    new_fp = RenditionSpec("thumbnail", dict(kind.steps(resized.settings)[1].renditions[0].params)).fingerprint()
    for name in affected:
        old, new = before[name]["thumbnail"], after[name]["thumbnail"]
        assert new["key"] != old["key"] and new["key"][-1].startswith(f"thumbnail-{new_fp[:10]}")
        assert not rt.stores.public.exists(old["key"])  # the old file is gone
        assert new["fingerprint"] == new_fp and new["spec"]["size"] == 240
    assert (after["big"]["thumbnail"]["width"], after["big"]["thumbnail"]["height"]) == (240, 180)
    assert (after["mid"]["thumbnail"]["width"], after["mid"]["thumbnail"]["height"]) == (200, 150)
    assert after["alpha"]["thumbnail"]["key"][-1].endswith(".webp")
    # The small picture's file is untouched; only its record has the new spec.
    small_old, small_new = before["small"]["thumbnail"], after["small"]["thumbnail"]
    assert small_new["key"] == small_old["key"] and small_new["mtime"] == small_old["mtime"]
    assert small_new["fingerprint"] == new_fp and small_new["spec"]["size"] == 240
    # Media renditions are untouched everywhere.
    for name in ids:
        assert after[name]["medium"] == before[name]["medium"]
        assert states(rt, ids[name]) == {"medium": "done", "thumbnail": "done", "metadata": "done"}
    # Nothing is left to do.
    again = rp.stale(resized)
    assert again["stale"] == [] and again["same_output"] == []


def test_engine_skips_a_reprocess_whose_output_would_not_change(rt, resized, sized, monkeypatch):
    ids = upload(rt, {"small": sized["small"], "mid": sized["mid"]})
    before = {n: renditions(rt, i) for n, i in ids.items()}
    kind = get_kind("image")
    real, calls = kind.run_step, []
    monkeypatch.setattr(kind, "run_step", lambda step, ctx: calls.append(step) or real(step, ctx))
    result = rp.request(resized, ids.values(), ["thumbnail"])
    assert result["steps"] == 2 and sorted(result["media_ids"]) == sorted(ids.values())
    assert calls == ["thumbnail"]  # only the mid picture was remade
    after = {n: renditions(rt, i) for n, i in ids.items()}
    assert after["small"]["thumbnail"]["key"] == before["small"]["thumbnail"]["key"]
    assert after["small"]["thumbnail"]["mtime"] == before["small"]["thumbnail"]["mtime"]
    assert after["small"]["thumbnail"]["spec"]["size"] == 240
    assert after["mid"]["thumbnail"]["key"] != before["mid"]["thumbnail"]["key"]
    assert rp.stale(resized)["stale"] == []


def test_an_item_from_before_the_2x_thumbnail_gets_only_that(rt, sized, monkeypatch):
    """A site made before ``thumbnail_2x`` existed: its thumbnail step is stale, and the reprocess makes
    the missing size alone, leaving the thumbnail's file, record and placeholder as they were."""
    ids = upload(rt, {"big": sized["big"]})
    media_id = ids["big"]
    kind = get_kind("image")
    thumbnail_step = kind.steps(rt.settings)[1]
    with rt.sessions() as session:  # as the older Kiln left it: no 2x row, the step made without it
        media = session.get(MediaEntry, media_id)
        gone = media.rendition("thumbnail_2x")
        rt.stores.public.delete(list(gone.key))
        session.delete(gone)
        row = next(s for s in ledger.steps_of(session, media_id) if s.name == "thumbnail")
        row.fingerprint = StepDef("thumbnail", thumbnail_step.renditions[:1]).fingerprint()
        blurhash = media.info["blurhash"]
        session.commit()
    before = renditions(rt, media_id)
    assert "thumbnail_2x" not in before

    report = rp.stale(rt)
    assert report["stale"] == [(media_id, "thumbnail")]
    real, asked = kind.run_step, []
    monkeypatch.setattr(kind, "run_step", lambda step, ctx: asked.append((step, sorted(ctx.specs))) or real(step, ctx))
    rp.apply_stale(rt, report)
    assert asked == [("thumbnail", ["thumbnail_2x"])]
    after = renditions(rt, media_id)
    assert after["thumbnail"] == before["thumbnail"]  # same file, same mtime, same record
    sharp = after["thumbnail_2x"]
    assert (sharp["width"], sharp["height"]) == (360, 270) and sharp["spec"]["size"] == 360
    assert sharp["fingerprint"] == thumbnail_step.spec("thumbnail_2x").fingerprint()
    assert states(rt, media_id)["thumbnail"] == "done" and rp.stale(rt)["stale"] == []
    with rt.sessions() as session:
        assert session.get(MediaEntry, media_id).info["blurhash"] == blurhash

    # Asked for by name, the step makes all its outputs again.
    asked.clear()
    rp.request(rt, [media_id], ["thumbnail"])
    assert asked == [("thumbnail", ["thumbnail", "thumbnail_2x"])]


def test_items_not_processed_are_not_stale_and_old_renditions_without_a_spec_are(rt, resized, sized):
    ids = upload(rt, {"small": sized["small"], "big": sized["big"]})
    with rt.sessions() as session:
        # Made before specs were stored: an empty spec can never be proven current.
        session.get(MediaEntry, ids["small"]).rendition("thumbnail").spec = {}
        session.get(MediaEntry, ids["big"]).state = "failed"
        session.commit()
    report = rp.stale(resized)
    assert report["stale"] == [(ids["small"], "thumbnail")] and report["same_output"] == []
    assert report["kinds"]["image"]["items"] == 1


# throttling ------------------------------------------------------------------------------------
def test_reprocessing_is_let_in_one_item_at_a_time_while_uploads_ring_at_once(queued_rt, images):
    ids = list(upload(queued_rt, {f"p{n}": images["plain"] for n in range(3)}).values())
    for media_id in ids:
        assert process_media(queued_rt, media_id) == "processed"
    assert queued_rt.settings.processing.reprocess_concurrency == 1
    bells = queued_rt.dispatcher.rung
    bells.clear()

    result = rp.request(queued_rt, ids, ["thumbnail", "medium"])
    assert result["media_ids"] == ids and result["steps"] == 6
    assert bells == [(ids[0], "image", "reprocess")]
    assert states(queued_rt, ids[0])["thumbnail"] == "queued"
    assert states(queued_rt, ids[1])["thumbnail"] == "pending"

    # A fresh upload meanwhile is rung at once, on its own lane.
    fresh = upload(queued_rt, {"fresh": images["plain"]})["fresh"]
    assert bells[-1] == (fresh, "image", "new")

    assert process_media(queued_rt, ids[0]) == "processed"  # finishing lets the next one in
    assert bells[-1] == (ids[1], "image", "reprocess")
    assert len([b for b in bells if b[2] == "reprocess"]) == 2
    assert process_media(queued_rt, ids[1]) == "processed"
    assert process_media(queued_rt, ids[2]) == "processed"
    assert [b[0] for b in bells if b[2] == "reprocess"] == ids
    assert all(s == "done" for i in ids for s in states(queued_rt, i).values())


def test_request_refuses_unknown_ids_and_steps(rt, images):
    media_id = upload(rt, {"p": images["plain"]})["p"]
    with pytest.raises(NotFound, match="no media with id 999"):
        rp.request(rt, [media_id, 999], ["thumbnail"])
    with pytest.raises(InvalidInput, match="no step called 'poster'"):
        rp.request(rt, [media_id], ["poster"])
    with pytest.raises(NotFound, match="no media kind called 'hologram'"):
        rp.stale(rt, "hologram")
    assert states(rt, media_id)["thumbnail"] == "done"


# failed ----------------------------------------------------------------------------------------
def test_failed_steps_are_retried_now(rt, images, monkeypatch):
    kind = get_kind("image")
    real = kind.run_step

    def broken(step, ctx):  # type: ignore[no-untyped-def]
        if step == "thumbnail":
            raise MediaRejected("The thumbnail encoder refused this file.", code="unsupported")
        return real(step, ctx)

    published = upload(rt, {"ok": images["plain"]})["ok"]
    monkeypatch.setattr(kind, "run_step", broken)
    never = upload(rt, {"bad": images["tiff"]})["bad"]
    rp.request(rt, [published], ["thumbnail"])  # a reprocess that fails leaves the item published
    with rt.sessions() as session:
        assert session.get(MediaEntry, never).state == "failed"
        assert session.get(MediaEntry, published).state == "processed"
    assert states(rt, published)["thumbnail"] == "failed"

    report = rp.failed(rt)
    assert sorted(report["failed"]) == sorted([(published, "thumbnail"), (never, "thumbnail")])
    assert report["kinds"]["image"] == {"items": 2, "steps": {"medium": 0, "thumbnail": 2, "metadata": 0}}
    assert "refused" in report["errors"][never]

    monkeypatch.setattr(kind, "run_step", real)  # the bug is fixed
    result = rp.retry_failed(rt)
    assert sorted(result["media_ids"]) == sorted([published, never]) and result["reason"] == "retry"
    assert result["steps"] == 2
    with rt.sessions() as session:
        assert session.get(MediaEntry, never).state == "processed"
    assert all(s == "done" for i in (published, never) for s in states(rt, i).values())
    assert rp.failed(rt)["failed"] == []


def test_retry_rings_the_retry_lane_at_once(queued_rt, images):
    media_id = upload(queued_rt, {"p": images["plain"]})["p"]
    with queued_rt.sessions() as session:
        step = {s.name: s for s in ledger.steps_of(session, media_id)}["medium"]
        ledger.mark_failed(step, "MediaRejected", "corrupt", "Damaged.")
        session.commit()
    queued_rt.dispatcher.rung.clear()
    rp.retry_failed(queued_rt)
    assert queued_rt.dispatcher.rung == []  # the item is still queued, not failed or published
    process_media(queued_rt, media_id)
    assert rp.failed(queued_rt)["failed"] == [(media_id, "medium")]
    rp.retry_failed(queued_rt)
    assert queued_rt.dispatcher.rung == [(media_id, "image", "retry")]
    assert process_media(queued_rt, media_id) == "processed"


# available and bulk ----------------------------------------------------------------------------
def test_available_for_an_item_and_a_kind(rt, resized, sized):
    ids = upload(rt, {"big": sized["big"], "small": sized["small"]})
    item = rp.available(resized, ids["big"])
    assert item["state"] == "processed" and item["kind"] == "image"
    assert [(s["step"], s["renditions"], s["state"], s["stale"]) for s in item["steps"]] == [
        ("medium", ["medium", "animated"], "done", False), ("thumbnail", ["thumbnail", "thumbnail_2x"], "done", True),
        ("metadata", [], "done", False)]
    small = {s["step"]: s for s in rp.available(resized, ids["small"])["steps"]}
    assert small["thumbnail"]["stale"] is False and small["thumbnail"]["spec_changed"] is True
    assert not any(s["stale"] or s["spec_changed"] for s in rp.available(rt, ids["big"])["steps"])

    kind = rp.available(resized, "image")
    assert kind["items"] == {"processed": 2}
    by_step = {s["step"]: s for s in kind["steps"]}
    assert by_step["thumbnail"] == {"step": "thumbnail", "renditions": ["thumbnail", "thumbnail_2x"],
                                    "states": {"done": 2},
                                    "stale": 1, "same_output": 1}
    assert by_step["medium"]["stale"] == 0
    with pytest.raises(NotFound, match="no media with id 999"):
        rp.available(rt, 999)


def test_bulk_reprocesses_a_step_of_every_item_in_a_state(rt, images, sized, monkeypatch):
    ids = upload(rt, {"a": images["plain"], "b": sized["big"]})
    plan = rp.bulk(rt, "image", "processed", "medium", dry_run=True)
    assert plan["media_ids"] == sorted(ids.values()) and plan["requested"] is None
    kind = get_kind("image")
    real, calls = kind.run_step, []
    monkeypatch.setattr(kind, "run_step", lambda step, ctx: calls.append(step) or real(step, ctx))
    done = rp.bulk(rt, "image", "processed", "medium")
    # Both steps are requested; the 640x480 picture fits in the medium box, so its medium would come
    # out byte for byte the same and the engine skips it: only the big one is remade.
    assert done["requested"]["steps"] == 2 and calls == ["medium"]
    assert all(states(rt, i)["medium"] == "done" for i in ids.values())
    with pytest.raises(InvalidInput, match="not 'queued'"):
        rp.bulk(rt, "image", "queued", "medium")
    with pytest.raises(InvalidInput, match="no step called"):
        rp.bulk(rt, "image", "processed", "nope")


# the command line ------------------------------------------------------------------------------


def test_cli_stale_counts_first_then_remakes_only_those(kiln, sized):
    kiln("adduser", "alice", "--email", "a@example.com", "--password", "correct horse", "--admin")
    items = json.loads(kiln("addmedia", "alice", *(str(p) for p in sized.values()), "--wait", "--json").stdout)
    ids = dict(zip(sized, (i["id"] for i in items), strict=True))
    assert "0 items to reprocess" in kiln("reprocess", "stale", "--dry-run").stdout

    (kiln.data / "kiln.toml").write_text("[image]\nthumbnail_size = 240\n")
    dry = kiln("reprocess", "stale", "--dry-run").stdout
    assert dry.splitlines()[:3] == [
        "medium: 0 of 4 image items are stale",
        "thumbnail: 3 of 4 image items are stale; 1 more already matches the new settings "
        "(its record is updated, nothing is remade)",
        "metadata: 0 of 4 image items are stale",
    ]
    assert "3 items to reprocess." in dry and "Dry run: nothing was changed." in dry
    report = json.loads(kiln("reprocess", "stale", "--dry-run", "--json").stdout)["report"]
    assert sorted(m for m, _ in report["stale"]) == sorted(ids[n] for n in STALE_NAMES)

    # Declining the prompt changes nothing.
    declined = kiln("reprocess", "stale", input="n\n", ok=False)
    assert declined.exit_code == 1 and "Reprocess 3 items?" in declined.stderr
    assert "3 items to reprocess." in kiln("reprocess", "stale", "--dry-run").stdout

    done = kiln("reprocess", "stale", "--yes", "--wait")
    assert "Recorded the new settings on 1 step whose output would not change." in done.stdout
    assert "Requested 3 steps on 3 items on the reprocess lane." in done.stdout
    assert "Steps: 3 done, 0 failed." in done.stdout
    assert "Reprocessing" in done.stderr  # the progress bar
    assert "0 items to reprocess." in kiln("reprocess", "stale", "--dry-run").stdout
    shown = json.loads(kiln("media", "show", str(ids["big"]), "--json").stdout)
    assert shown["renditions"]["thumbnail"]["width"] == 240

    available = kiln("reprocess", "available", str(ids["big"])).stdout
    assert available.startswith(f"media {ids['big']} (image, processed)")
    assert "thumbnail" in available and "stale" not in available
    listing = kiln("reprocess", "available", "image").stdout
    assert listing.startswith("image: 4 items (processed 4)")
    data = json.loads(kiln("reprocess", "available", "image", "--json").stdout)
    assert {s["step"]: s["stale"] for s in data["steps"]} == {"medium": 0, "thumbnail": 0, "metadata": 0}


def test_cli_run_failed_bulk_and_refusals(kiln, images):
    kiln("adduser", "alice", "--email", "a@example.com", "--password", "correct horse", "--admin")
    media_id = json.loads(kiln("addmedia", "alice", str(images["plain"]), "--wait", "--json").stdout)[0]["id"]

    ran = kiln("reprocess", "run", str(media_id), "thumbnail", "--wait")
    assert "Requested 1 step on 1 item on the reprocess lane." in ran.stdout
    assert "Steps: 1 done, 0 failed." in ran.stdout
    out = json.loads(kiln("reprocess", "run", str(media_id), "all", "--wait", "--json").stdout)
    assert out["requested"]["steps"] == 3 and out["outcome"]["done"] == 3

    assert "No failed steps." in kiln("reprocess", "failed").stdout

    bulk = kiln("reprocess", "bulk", "--kind", "image", "--state", "processed", "--step", "medium", "--dry-run")
    assert bulk.stdout.splitlines() == ["medium: 1 image item is processed.",
                                        "Dry run: nothing was changed."]
    bulk = kiln("reprocess", "bulk", "--kind", "image", "--state", "processed", "--step", "all", "--yes", "--wait")
    assert "Requested 3 steps on 1 item" in bulk.stdout and "Steps: 3 done, 0 failed." in bulk.stdout

    for args, message in [
        (("available", "999"), "There is no media with id 999."),
        (("available", "hologram"), "There is no media kind called 'hologram'. Kinds: "),
        (("run", "999", "thumbnail"), "There is no media with id 999."),
        (("run", str(media_id), "poster"), "The image kind has no step called 'poster'. "
                                           "Steps: medium, thumbnail, metadata (or all)."),
        (("stale", "--kind", "hologram"), "There is no media kind called 'hologram'"),
        (("failed", "--kind", "hologram"), "There is no media kind called 'hologram'"),
        (("bulk", "--kind", "hologram", "--state", "processed", "--step", "all"), "no media kind called 'hologram'"),
    ]:
        result = kiln("reprocess", *args, ok=False)
        assert result.exit_code == 1 and message in result.stderr, (args, result.output)
    usage = kiln("reprocess", "bulk", "--kind", "image", "--step", "all", ok=False)
    assert usage.exit_code == 2 and "--state" in usage.stderr
    usage = kiln("reprocess", "bulk", "--kind", "image", "--state", "queued", "--step", "all", ok=False)
    assert usage.exit_code == 2


def test_cli_failed_retries_with_wait(kiln, images, monkeypatch):
    kiln("adduser", "alice", "--email", "a@example.com", "--password", "correct horse", "--admin")
    kind = get_kind("image")
    real = kind.run_step

    def broken(step, ctx):  # type: ignore[no-untyped-def]
        if step == "metadata":
            raise MediaRejected("The metadata reader refused this file.", code="unsupported")
        return real(step, ctx)

    monkeypatch.setattr(kind, "run_step", broken)
    result = kiln("addmedia", "alice", str(images["plain"]), "--wait", "--json")
    media_id = json.loads(result.stdout)[0]["id"]
    assert json.loads(result.stdout)[0]["state"] == "failed"
    dry = kiln("reprocess", "failed", "--dry-run").stdout
    assert "image: 1 item with failed steps (metadata 1)" in dry
    assert f"media {media_id}: The metadata reader refused this file." in dry
    still_broken = kiln("reprocess", "failed", "--yes", "--wait", ok=False)
    assert still_broken.exit_code == 1 and "Steps: 0 done, 1 failed." in still_broken.stdout
    monkeypatch.setattr(kind, "run_step", real)
    fixed = kiln("reprocess", "failed", "--yes", "--wait")
    assert "Requested 1 step on 1 item on the retry lane." in fixed.stdout
    assert json.loads(kiln("media", "show", str(media_id), "--json").stdout)["state"] == "processed"
