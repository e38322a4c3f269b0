"""What the video kind asks ffmpeg to do: a poster frame and the web transcode ladder.

Everything goes through :func:`kiln.mediatypes._ffmpeg.run_ffmpeg`, with the demuxer the probe
found forced, the ``file`` protocol only, a memory cap and a time limit that grows with the
video's declared duration (so a file that lies about its length is stopped, not waited for).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.config import Settings
from kiln.i18n import N_
from kiln.mediatypes._ffmpeg import run_ffmpeg
from kiln.mediatypes.base import MediaRejected

POSTER_TIMEOUT = 60.0
# Seconds of work allowed per second of 720p video (x264 veryfast does ~2.6 s per second on two
# busy cores, so this leaves a wide margin), scaled by frame area; AV1 is slower still.
WORK_PER_SECOND = {"h264": 2.0, "av1": 6.0}
BASE_SECONDS = 60.0
AREA_720P = 1280 * 720
# HDR (PQ/HLG, BT.2020) to SDR BT.709 on the already shrunk frames, so it costs little: without it
# an iPhone's HLG video comes out grey and flat in every browser.
TONEMAP = ("zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
           "zscale=t=bt709:m=bt709:r=tv,format=yuv420p")


@dataclass(frozen=True)
class Target:
    """One rung of the ladder: the output size and the codec."""

    width: int
    height: int
    codec: str  # "h264" | "av1"
    hdr: bool = False  # the source is HDR (PQ/HLG): tone-map to SDR BT.709


def ladder_size(display: tuple[int, int], rung: int, rungs: list[int]) -> tuple[int, int] | None:
    """The output size of ladder rung ``rung`` (a short side: 720 means 1280x720 or 720x1280) for
    a video shown at ``display``, or None when this rung is skipped.

    Never upscales: rungs at or above the video's own short side collapse into one rendition at
    the source size, made by the tallest such rung; the others are skipped. Both sides are even
    (H.264 in 4:2:0 needs it) and the aspect ratio is kept.
    """
    width, height = display
    short = min(width, height)
    at_or_above = [r for r in rungs if r >= short]
    if rung >= short:
        if rung != max(at_or_above):
            return None
        rung = short
    rung -= rung % 2
    if rung < 2:
        return None
    if width >= height:
        return _even_other(rung, width, height), rung
    return rung, _even_other(rung, height, width)


def _even_other(short_out: int, long_in: int, short_in: int) -> int:
    """ffmpeg's ``scale=-2`` rounding: the nearest even number to short_out * long_in / short_in."""
    return max(2, (short_out * long_in + short_in) // (2 * short_in) * 2)


def time_limit(duration: float, target: Target, settings: Settings, step_limit: float) -> float:
    """Seconds this transcode may take: proportional to the declared duration and frame area,
    never more than the step's own limit (so the step fails cleanly before its worker is killed)."""
    seconds = duration if duration > 0 else settings.video.max_duration_seconds
    area = max(1.0, target.width * target.height / AREA_720P)
    allowed = BASE_SECONDS + seconds * WORK_PER_SECOND[target.codec] * area
    return max(10.0, min(allowed, step_limit - 5))


def transcode(source: Path, demuxer: str, target: Target, has_audio: bool, out: Path, *, duration: float,
              params: Mapping[str, Any], settings: Settings, timeout: float,
              progress: Callable[[float], None]) -> float:
    """Write ``out``: an MP4 with its index first (+faststart, plays while downloading), square
    pixels upright, no metadata, chapters or subtitles. Returns the seconds of media written."""
    args = transcode_args(source, target, has_audio, out, params, settings)
    written = run_ffmpeg(settings, args, duration=duration, progress=progress, timeout=timeout,
                         memory_mb=settings.video.memory_mb, what=N_("The video converter"), input_format=demuxer)
    if not out.is_file() or out.stat().st_size == 0:
        raise MediaRejected("No picture could be decoded from this video: it is damaged or empty.", code="corrupt")
    if duration > 0 and written < duration * 0.9 - 0.25:
        raise MediaRejected(
            "This video is incomplete or damaged: its header says it lasts %(duration)s s, but only "
            "%(written)s s could be read. Upload the whole file again.", code="corrupt",
            duration=round(duration, 1), written=round(written, 1))
    return written


def transcode_args(source: Path, target: Target, has_audio: bool, out: Path, params: Mapping[str, Any],
                   settings: Settings) -> list[str]:
    """The ffmpeg arguments (without the program) for one rendition; the benchmark runs the same.

    The encoding (``preset``, ``crf``, ``audio_kbps``) comes from the rendition's spec ``params``;
    ``settings`` gives only the duration limit, which identify already enforced."""
    video = settings.video
    args = ["-i", str(source), "-map", "0:v:0"]
    if has_audio:
        args += ["-map", "0:a:0"]
    args += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
             "-vf", f"scale={target.width}:{target.height},setsar=1" + (f",{TONEMAP}" if target.hdr else ""),
             "-pix_fmt", "yuv420p",
             # Keep the source's frame timing: never duplicate frames to fill gaps (a file with
             # two frames hours apart stays two frames).
             "-fps_mode", "vfr"]
    if target.hdr:
        args += ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
    if target.codec == "av1":
        args += ["-c:v", "libsvtav1", "-preset", str(params["preset"]), "-crf", str(params["crf"])]
    else:
        args += ["-c:v", "libx264", "-preset", str(params["preset"]), "-crf", str(params["crf"]), "-profile:v", "high"]
    if has_audio:
        args += ["-c:a", "aac", "-b:a", f"{params['audio_kbps']}k", "-ac", "2"]
    args += ["-t", f"{video.max_duration_seconds:g}", "-movflags", "+faststart", "-f", "mp4", "-y", str(out)]
    return args


def poster(source: Path, demuxer: str, duration: float, box: int, out: Path, settings: Settings,
           hdr: bool = False) -> None:
    """Write a PNG of one keyframe, about a tenth of the way in (the first frame is often black),
    shrunk to fit ``box``, upright and with square pixels. Only keyframes are decoded."""
    at = min(duration * 0.1, 10.0) if duration > 2 else 0.0
    for seek in ([at, 0.0] if at else [0.0]):
        args = ["-skip_frame", "nokey", "-ss", f"{seek:.3f}", "-i", str(source), "-map", "0:v:0", "-an", "-sn",
                "-dn", "-frames:v", "1",
                "-vf", f"scale=trunc(iw*sar/2)*2:ih,setsar=1,scale=w='min(iw,{box})':h='min(ih,{box})'"
                ":force_original_aspect_ratio=decrease" + (f",{TONEMAP}" if hdr else ""),
                "-c:v", "png", "-f", "image2", "-update", "1", "-y", str(out)]
        run_ffmpeg(settings, args, duration=None, progress=lambda fraction: None, timeout=POSTER_TIMEOUT,
                   memory_mb=settings.video.memory_mb, what=N_("Taking a picture from this video"),
                   input_format=demuxer)
        if out.is_file() and out.stat().st_size > 0:
            return
    raise MediaRejected("No picture could be decoded from this video: it is damaged or empty.", code="corrupt")


# The muxer that writes a container back as the same kind of file it was read from.
MUXERS = {"video/mp4": "mp4", "video/quicktime": "mov", "video/3gpp": "3gp", "video/webm": "webm",
          "video/x-matroska": "matroska", "video/x-msvideo": "avi", "video/mp2t": "mpegts", "video/ogg": "ogg"}


def without_metadata(source: Path, demuxer: str, mime_type: str, out: Path, settings: Settings) -> None:
    """Copy the picture and sound streams, untouched, into a new file of the same type without
    tags, chapters, data tracks or subtitles: phones record where a video was taken (QuickTime
    ``\xa9xyz`` / ``location`` tags and per-frame metadata tracks). The display rotation is kept.
    """
    args = ["-i", str(source), "-map", "0:v", "-map", "0:a?", "-c", "copy", "-map_metadata", "-1",
            "-map_chapters", "-1", "-dn", "-sn"]
    muxer = MUXERS[mime_type]
    if muxer in ("mp4", "mov", "3gp"):
        args += ["-movflags", "+faststart"]
    args += ["-f", muxer, "-y", str(out)]
    run_ffmpeg(settings, args, duration=None, progress=lambda fraction: None, timeout=POSTER_TIMEOUT * 5,
               memory_mb=settings.video.memory_mb, what=N_("Removing the location from this video"),
               input_format=demuxer)
    if not out.is_file() or out.stat().st_size == 0:
        raise MediaRejected("This video could not be copied without its metadata.", code="corrupt")


def frames_declared(duration: float, fps: float | None, frames: int | None) -> float:
    """The longest length the header implies, from the container duration or frames / rate."""
    implied = frames / fps if frames and fps else 0.0
    return max(duration, implied if math.isfinite(implied) else 0.0)
