"""The shared ffmpeg layer: the probe reads headers safely in a child process, and ffmpeg runs only
on local files through the ``file`` protocol, with progress, a time limit and SIGKILL."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from tests import fixtures_video as fx

from kiln.config import Settings
from kiln.mediatypes import _ffmpeg
from kiln.mediatypes._ffmpeg import probe, run_ffmpeg
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.external import run_external

VIDEO = frozenset({"mov", "matroska", "avi"})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("ffmpeg")
    return {**fx.make_all(directory / "good"), **fx.make_hostile(directory / "bad"),
            "secret": fx.secret_for(directory / "bad")}


def test_probe_reports_streams_codecs_and_rotation(files: dict[str, Path]) -> None:
    found = probe(files["landscape_mp4"], Settings(), VIDEO, "This video")
    assert found.format == "mov" and 0.9 < found.duration < 1.2
    assert found.video is not None and (found.video.codec, found.video.width, found.video.height) == ("h264", 320, 240)
    assert found.video.fps == pytest.approx(15) and found.video.rotation == 0
    assert found.audio is not None and found.audio.codec == "aac" and found.audio.sample_rate == 44100
    assert found.cover is None

    phone = probe(files["portrait_phone_mov"], Settings(), VIDEO, "This video")
    assert phone.video is not None and phone.video.codec == "hevc"
    assert phone.video.rotation == 90 and phone.video.display_size == (180, 320)
    assert phone.tags["major_brand"].strip() == "qt"

    assert probe(files["silent_mp4"], Settings(), VIDEO, "This video").audio is None
    assert probe(files["webm"], Settings(), VIDEO, "This video").format == "matroska"


def test_probe_refuses_containers_off_the_list(files: dict[str, Path]) -> None:
    with pytest.raises(MediaRejected) as caught:
        probe(files["webm"], Settings(), frozenset({"mov"}), "This video")
    assert caught.value.code == "corrupt" and "MP4/QuickTime" in caught.value.message
    with pytest.raises(MediaRejected):  # not a format any kind may ask for
        probe(files["landscape_mp4"], Settings(), frozenset({"hls", "concat"}), "This video")


def test_a_playlist_named_mp4_is_refused_without_reading_what_it_points_at(files: dict[str, Path]) -> None:
    # Even with every known container allowed, HLS is never opened.
    with pytest.raises(MediaRejected) as caught:
        probe(files["hls_playlist_named_mp4"], Settings(), _ffmpeg.KNOWN_FORMATS, "This video")
    assert caught.value.code == "corrupt"
    assert fx.SECRET_MARKER not in caught.value.message


def test_run_ffmpeg_will_not_open_a_playlist_even_when_asked(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(MediaRejected):
        run_ffmpeg(Settings(), ["-i", str(files["hls_playlist_named_mp4"]), "-c", "copy", str(out)],
                   duration=1.0, progress=lambda f: None, timeout=30, memory_mb=2048, what="The converter")
    assert not out.exists() or fx.SECRET_MARKER.encode() not in out.read_bytes()


@pytest.mark.parametrize("source", ["lavfi", "http://example.invalid/x.mp4", "relative.mp4", "/nonexistent/x.mp4"])
def test_run_ffmpeg_inputs_must_be_local_files(source: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        run_ffmpeg(Settings(), ["-i", source, str(tmp_path / "o.mp4")], duration=1.0, progress=lambda f: None,
                   timeout=10, memory_mb=2048, what="The converter")


def test_run_ffmpeg_reports_progress_and_forces_the_probed_format(files: dict[str, Path], tmp_path: Path) -> None:
    seen: list[float] = []
    out = tmp_path / "small.mp4"
    run_ffmpeg(Settings(), ["-i", str(files["landscape_mp4"]), "-vf", "scale=-2:120", "-c:v", "libx264",
                            "-preset", "ultrafast", "-c:a", "aac", str(out)],
               duration=1.0, progress=seen.append, timeout=60, memory_mb=2048, what="The converter",
               input_format="mov")
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    made = probe(out, Settings(), VIDEO, "The output")
    assert made.video is not None and made.video.height == 120
    with pytest.raises(MediaRejected):  # a WebM forced through the MP4 demuxer does not parse
        run_ffmpeg(Settings(), ["-i", str(files["webm"]), str(tmp_path / "x.mp4")], duration=1.0,
                   progress=lambda f: None, timeout=60, memory_mb=2048, what="The converter", input_format="mov")


def test_streaming_run_is_killed_at_its_time_limit(tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    script = (f"import time, pathlib\nprint('progress=continue', flush=True)\ntime.sleep(3)\n"
              f"pathlib.Path({str(marker)!r}).write_text('x')")
    lines: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(MediaRejected) as caught:
        run_external([sys.executable, "-c", script], timeout=0.5, memory_mb=0, what="The converter",
                     on_line=lines.append)
    assert time.monotonic() - started < 2.5 and caught.value.code == "timeout"
    assert lines == [b"progress=continue\n"]
    time.sleep(3)
    assert not marker.exists()


def test_streaming_run_keeps_only_the_tail_of_a_chatty_stderr() -> None:
    script = "import sys\nfor i in range(100000): sys.stderr.write(f'noise {i}\\n')\nsys.exit('last words')"
    with pytest.raises(MediaRejected) as caught:
        run_external([sys.executable, "-c", script], timeout=30, memory_mb=0, what="The converter",
                     on_line=lambda line: None)
    assert "last words" in caught.value.message


def test_probe_survives_a_crashing_or_hanging_child(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path],
                                                    tmp_path: Path) -> None:
    crash = tmp_path / "crash.py"
    crash.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setattr(_ffmpeg, "_CHILD", crash)
    with pytest.raises(MediaRejected):
        probe(files["landscape_mp4"], Settings(), VIDEO, "This video")
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(30)\n")
    monkeypatch.setattr(_ffmpeg, "_CHILD", hang)
    monkeypatch.setattr(_ffmpeg, "PROBE_TIMEOUT", 0.5)
    started = time.monotonic()
    with pytest.raises(MediaRejected) as caught:
        probe(files["landscape_mp4"], Settings(), VIDEO, "This video")
    assert caught.value.code == "timeout" and time.monotonic() - started < 3


def test_encoders_of_the_configured_ffmpeg_are_known() -> None:
    assert _ffmpeg.has_encoder(Settings(), "libx264") and _ffmpeg.has_encoder(Settings(), "aac")
    assert _ffmpeg.has_encoder(Settings(), "libsvtav1")  # the bundled build has it; AV1 renditions need it
    assert not _ffmpeg.has_encoder(Settings(), "no-such-encoder")
