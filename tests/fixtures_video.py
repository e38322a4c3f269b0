"""Video files for the tests and the benchmark, generated with the bundled ffmpeg from its lavfi
sources (test pattern + sine tone). Nothing is downloaded; every sample is 1 s, small and quick.

``make_all`` writes the good samples, ``make_hostile`` the files that must end refused or failed.
The HLS playlist points at a private file outside the upload (``secret_for``): tests assert its
marker never shows up anywhere Kiln writes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SECRET_MARKER = "KILN-SECRET-7f3a9c"  # the title of the private file the playlist points at
PATTERN = "testsrc=size={w}x{h}:rate={fps}:duration={seconds}"
TONE = "sine=frequency=440:sample_rate=44100:duration={seconds}"
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   timeout=120)


def lavfi(w: int = 320, h: int = 240, fps: int = 15, seconds: float = 1.0, audio: bool = True) -> list[str]:
    args = ["-f", "lavfi", "-i", PATTERN.format(w=w, h=h, fps=fps, seconds=seconds)]
    if audio:
        args += ["-f", "lavfi", "-i", TONE.format(seconds=seconds)]
    return args


def make_landscape(directory: Path, name: str = "landscape.mp4", seconds: float = 1.0, w: int = 320,
                   h: int = 240, fps: int = 15) -> Path:
    """H.264/AAC MP4 with sound."""
    path = directory / name
    ffmpeg(*lavfi(w, h, fps, seconds), *H264, "-c:a", "aac", "-b:a", "64k", str(path))
    return path


def make_silent(directory: Path) -> Path:
    """H.264 MP4 with no audio stream at all."""
    path = directory / "silent.mp4"
    ffmpeg(*lavfi(audio=False), *H264, str(path))
    return path


def make_phone_portrait(directory: Path) -> Path:
    """What an iPhone writes when held upright: HEVC in a QuickTime .mov (brand "qt  ", hvc1 tag),
    frames stored landscape (320x180) with a display matrix rotating them 90 degrees."""
    stored = directory / "portrait-stored.mov"
    ffmpeg(*lavfi(320, 180), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
           "-pix_fmt", "yuv420p", "-tag:v", "hvc1", "-c:a", "aac", "-b:a", "64k", "-f", "mov", str(stored))
    path = directory / "portrait.mov"
    ffmpeg("-display_rotation:v:0", "90", "-i", str(stored), "-c", "copy", "-f", "mov", str(path))
    stored.unlink()
    return path


def make_hlg(directory: Path) -> Path:
    """HDR as recent iPhones record it: 10-bit HEVC tagged BT.2020 primaries with the HLG transfer."""
    path = directory / "hdr.mov"
    ffmpeg(*lavfi(audio=False), "-vf", "format=yuv420p10le", "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
           "-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc",
           "-tag:v", "hvc1", "-f", "mov", str(path))
    return path


def make_webm(directory: Path) -> Path:
    """VP8 + Opus in WebM, as browsers record it."""
    path = directory / "clip.webm"
    ffmpeg(*lavfi(), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
           "-c:a", "libopus", "-b:a", "48k", str(path))
    return path


def make_avi(directory: Path) -> Path:
    """MPEG-4 part 2 + MP3 in AVI, the old camcorder way."""
    path = directory / "camcorder.avi"
    ffmpeg(*lavfi(), "-c:v", "mpeg4", "-q:v", "5", "-c:a", "libmp3lame", "-b:a", "64k", str(path))
    return path


def make_all(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "landscape_mp4": make_landscape(directory),
        "portrait_phone_mov": make_phone_portrait(directory),
        "silent_mp4": make_silent(directory),
        "webm": make_webm(directory),
        "avi": make_avi(directory),
    }


# Hostile ------------------------------------------------------------------------------------------
def secret_for(directory: Path) -> Path:
    """The private file (another user's video, in the lab finding) the hostile playlist points at."""
    return directory / "private" / "secret.ts"


def make_playlist(directory: Path) -> Path:
    """A ~150-byte HLS playlist named .mp4 whose one segment is a local file outside the upload."""
    secret = secret_for(directory)
    secret.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(*lavfi(160, 120, audio=False), *H264, "-metadata", f"title={SECRET_MARKER}",
           "-metadata", f"comment={SECRET_MARKER}", "-f", "mpegts", str(secret))
    path = directory / "playlist.mp4"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n")
    return path


def make_gap(directory: Path, name: str, gap_seconds: float) -> Path:
    """A tiny MP4 whose two frames are ``gap_seconds`` apart: it declares that long a duration."""
    path = directory / name
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=1", "-frames:v", "2", "-vf",
           f"setpts=N*{gap_seconds}/TB", "-fps_mode", "passthrough", "-video_track_timescale", "1000",
           *H264, str(path))
    return path


def truncate(source: Path, directory: Path, name: str, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    path = directory / name
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_hostile(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    good = directory / "good"
    good.mkdir(exist_ok=True)
    text = directory / "notes.mp4"
    text.write_text("These are my holiday notes, not a video.\n" * 20)
    return {
        "hls_playlist_named_mp4": make_playlist(directory),
        "ten_hours_declared": make_gap(directory, "ten-hours.mp4", 10 * 3600),
        "truncated_mp4": truncate(make_landscape(good), directory, "truncated.mp4"),
        "truncated_mov": truncate(make_phone_portrait(good), directory, "truncated.mov"),
        "truncated_webm": truncate(make_webm(good), directory, "truncated.webm"),
        "truncated_avi": truncate(make_avi(good), directory, "truncated.avi"),
        "text_named_mp4": text,
    }
