"""Renditions from specs: every output has a spec, steps render from its params alone, and changing a
setting that changes an output's bytes makes exactly that output stale (processing/current.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from kiln.config import Settings, load_settings
from kiln.mediatypes import get_kind
from kiln.mediatypes.base import Identified, StepContext
from kiln.mediatypes.video.transcode import Target, transcode_args
from kiln.processing import reprocess as rp
from kiln.processing.current import STALE, outputs_status, step_status
from kiln.runtime import Runtime
from tests.conftest import make_settings
from tests.test_reprocess import inline_runtime, renditions, states, upload

# Big enough that no size change leaves a picture whole (the image kind's is_current would say "same").
BIG = {"width": 4000, "height": 3000}

# (kind, settings section, field, new value) -> the outputs whose bytes change.
CASES: list[tuple[str, str, str, Any, set[str]]] = [
    ("image", "image", "thumbnail_size", 240, {"thumbnail", "thumbnail_2x"}),
    ("image", "image", "medium_size", 1600, {"medium"}),
    ("image", "image", "jpeg_quality", 90, {"medium", "thumbnail", "thumbnail_2x"}),
    ("image", "image", "webp_quality", 90, {"medium", "thumbnail", "thumbnail_2x", "animated"}),
    ("image", "image", "animation_size", 480, {"animated"}),
    ("video", "video", "crf", 28, {"video-720", "video-360"}),
    ("video", "video", "preset", "slow", {"video-720", "video-360"}),
    ("video", "video", "audio_bitrate_kbps", 96, {"video-720", "video-360"}),
    ("video", "image", "thumbnail_size", 240, {"thumbnail", "thumbnail_2x"}),
    ("video", "image", "medium_size", 1600, {"medium"}),
    ("audio", "audio", "bitrate_kbps", 192, {"audio"}),
    ("audio", "audio", "spectrogram_width", 512, {"spectrogram"}),
    ("audio", "audio", "waveform_peaks", 500, {"peaks", "waveform", "thumbnail", "thumbnail_2x", "medium"}),
    ("audio", "image", "thumbnail_size", 240, {"thumbnail", "thumbnail_2x"}),
    ("pdf", "document", "page_width", 800, {"page-1", "page-2", "page-3"}),
    ("pdf", "image", "medium_size", 1600, {"medium"}),
    ("pdf", "image", "jpeg_quality", 90, {"medium", "thumbnail", "thumbnail_2x", "page-1", "page-2", "page-3"}),
    ("text", "text", "font_size", 20, {"medium", "thumbnail", "thumbnail_2x"}),
    ("text", "text", "picture_lines", 30, {"medium"}),
    ("text", "text", "page_text_bytes", 4096, {"text"}),
    ("text", "text", "tab_size", 4, {"medium", "thumbnail", "thumbnail_2x"}),
    ("model3d", "model3d", "supersample", 3, {"medium", "thumbnail", "thumbnail_2x"}),
    ("model3d", "image", "thumbnail_size", 240, {"thumbnail", "thumbnail_2x"}),
]


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(data_dir=tmp_path / "data", **overrides)


def _stored(kind_name: str, settings: Settings, present: set[str] | None = None) -> dict[str, SimpleNamespace]:
    """Renditions as processing under ``settings`` recorded them (``present``: optional outputs made)."""
    out = {}
    for definition in get_kind(kind_name).steps(settings):
        for spec in definition.renditions:
            if spec.optional and present is not None and spec.name not in present:
                continue
            out[spec.name] = SimpleNamespace(spec_fingerprint=spec.fingerprint(), spec=dict(spec.params))
    return out


def _stale_outputs(kind_name: str, settings: Settings, stored: dict[str, SimpleNamespace]) -> set[str]:
    kind = get_kind(kind_name)
    identified = Identified(kind_name, "x/y", **BIG)
    stale = set()
    for definition in kind.steps(settings):
        statuses = outputs_status(kind, definition, stored, identified)
        stale |= {name for name, status in statuses.items() if status == STALE}
        done = SimpleNamespace(state="done", fingerprint=definition.fingerprint())
        assert (step_status(kind, definition, done, stored, identified) == STALE) == bool(
            {n for n, s in statuses.items() if s == STALE})
    return stale


@pytest.mark.parametrize(("kind_name", "section", "field", "value", "expected"), CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_each_setting_makes_exactly_its_outputs_stale(tmp_path, kind_name, section, field, value, expected):
    before = _settings(tmp_path)
    present = {"animated", "page-2", "page-3", "video-360"}  # an animated GIF, a 3-page document, a 720p video
    stored = _stored(kind_name, before, present)
    assert _stale_outputs(kind_name, before, stored) == set()  # unchanged settings: nothing stale
    after = _settings(tmp_path, **{section: {field: value}})
    assert _stale_outputs(kind_name, after, stored) == expected


def test_missing_optional_outputs_are_not_stale(tmp_path):
    settings = _settings(tmp_path)
    still = _stored("image", settings, present=set())  # a still GIF: no animation
    assert "animated" not in still
    assert _stale_outputs("image", settings, still) == set()
    assert _stale_outputs("image", _settings(tmp_path, image={"animation_size": 480}), still) == set()
    short = _stored("pdf", settings, present=set())  # a one-page document
    assert _stale_outputs("pdf", settings, short) == set()


def test_the_animated_output_has_an_optional_spec(tmp_path):
    medium = get_kind("image").steps(_settings(tmp_path, image={"animation_size": 333}))[0]
    spec = medium.spec("animated")
    assert spec.optional and spec.params["size"] == 333
    assert not medium.spec("medium").optional


# Params, not settings, drive the bytes ---------------------------------------------------------
@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("specs")
    out = {"jpeg": folder / "photo.jpg", "gif": folder / "moving.gif", "still_gif": folder / "still.gif"}
    Image.new("RGB", (400, 300), (200, 120, 40)).save(out["jpeg"], quality=90)
    frames = [Image.new("RGB", (200, 150), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(out["gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (200, 150), (0, 90, 200)).save(out["still_gif"])
    return out


def _ctx(source: Path, workdir: Path, settings: Settings, spec_settings: Settings, step: str) -> StepContext:
    kind = get_kind("image")
    definition = next(d for d in kind.steps(spec_settings) if d.name == step)
    workdir.mkdir(parents=True, exist_ok=True)
    found = Identified("image", "image/jpeg")
    return StepContext(source=source, workdir=workdir, settings=settings, identified=found,
                       specs={spec.name: spec for spec in definition.renditions})


def test_steps_render_from_the_spec_not_the_settings(tmp_path, pictures):
    spec_settings = _settings(tmp_path, image={"thumbnail_size": 64, "animation_size": 40})
    other = _settings(tmp_path, image={"thumbnail_size": 300, "animation_size": 150})  # changed after the spec
    made = get_kind("image").run_step("thumbnail", _ctx(pictures["jpeg"], tmp_path / "t", other, spec_settings,
                                                        "thumbnail")).files[0]
    assert max(made.width or 0, made.height or 0) == 64
    files = {f.name: f for f in get_kind("image").run_step(
        "medium", _ctx(pictures["gif"], tmp_path / "m", other, spec_settings, "medium")).files}
    assert max(files["animated"].width or 0, files["animated"].height or 0) == 40


def test_video_encoding_follows_the_spec(tmp_path):
    settings = _settings(tmp_path, video={"crf": 30, "preset": "slow", "audio_bitrate_kbps": 64})
    spec = get_kind("video").steps(_settings(tmp_path))[2].renditions[0]
    args = transcode_args(Path("in.mp4"), Target(64, 48, "h264"), True, Path("out.mp4"), spec.params, settings)
    assert args[args.index("-crf") + 1] == "23" and args[args.index("-preset") + 1] == "veryfast"
    assert args[args.index("-b:a") + 1] == "128k"


# End to end: reprocess stale notices the animation size ----------------------------------------
@pytest.fixture
def smaller_animation(rt: Runtime, db_url: str) -> Iterator[Runtime]:
    settings = make_settings(rt.settings.data_dir, db_url, image={"animation_size": 100})
    runtime = inline_runtime(settings)
    yield runtime
    runtime.close()


def test_reprocess_stale_remakes_the_animation_when_its_size_changes(rt, smaller_animation, pictures):
    ids = upload(rt, {"gif": pictures["gif"], "still": pictures["still_gif"], "jpeg": pictures["jpeg"]})
    before = {name: renditions(rt, i) for name, i in ids.items()}
    assert before["gif"]["animated"]["width"] == 200
    assert "animated" not in before["still"]
    assert rp.stale(rt)["stale"] == []

    report = rp.stale(smaller_animation)
    assert report["stale"] == [(ids["gif"], "medium")]  # the still and the JPEG have no animation
    rp.apply_stale(smaller_animation, report)
    for media_id in ids.values():
        rp.settle(smaller_animation, media_id, limit=60)
    after = renditions(smaller_animation, ids["gif"])
    assert after["animated"]["width"] == 100
    assert after["animated"]["fingerprint"] != before["gif"]["animated"]["fingerprint"]
    assert after["medium"]["fingerprint"] == before["gif"]["medium"]["fingerprint"]
    assert states(smaller_animation, ids["gif"])["medium"] == "done"
    assert rp.stale(smaller_animation)["stale"] == []
    assert {n: r["key"] for n, r in renditions(smaller_animation, ids["still"]).items()} == \
        {n: r["key"] for n, r in before["still"].items()}


def test_a_rerun_deletes_outputs_the_kind_no_longer_makes(rt, pictures, monkeypatch):
    media_id = upload(rt, {"gif": pictures["gif"]})["gif"]
    old = renditions(rt, media_id)["animated"]
    kind = get_kind("image")
    real = kind.run_step

    def no_animation(step, ctx):  # type: ignore[no-untyped-def]
        result = real(step, ctx)
        result.files = [f for f in result.files if f.name != "animated"]
        return result

    monkeypatch.setattr(kind, "run_step", no_animation)
    monkeypatch.setattr(kind, "is_current", lambda *args: False)  # the small GIF would be skipped as unchanged
    rp.request(rt, [media_id], ["medium"])
    rp.settle(rt, media_id, limit=60)
    assert "animated" not in renditions(rt, media_id)
    assert not rt.stores.public.exists(old["key"])
    assert rp.stale(rt)["stale"] == []  # optional: its absence is not stale
