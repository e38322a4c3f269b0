"""The ffmpeg layer shared by the video and audio kinds: a safe probe and a safe ffmpeg run.

Untrusted media reach ffmpeg only through these two functions, which stop the attacks seen in
the lab (REFERENCE.md section 4) in three ways at once:

* **Container allowlist.** :func:`probe` opens the file with a demuxer allowlist and refuses any
  container not on it, so an HLS playlist or concat script named ``x.mp4`` never gets a demuxer
  that follows references. :func:`run_ffmpeg` forces the probed demuxer with ``-f`` and repeats
  the allowlist with ``-format_whitelist``.
* **``file`` protocol only**, on the job's own local copy: inputs must be existing local files and
  are opened as ``file:PATH`` with ``-protocol_whitelist file``.
* **Limits.** The probe runs in a child process (``_probe_child.py``) with a time and memory cap,
  so a demuxer crash or hang cannot take the web process with it; ffmpeg runs under a memory cap
  and is SIGKILLed at its time limit. Callers check duration, frame rate and pixel counts from the
  probe before anything is decoded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from kiln.config import Settings
from kiln.i18n import N_, Label
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.external import ffmpeg_binary, run_external

PROBE_TIMEOUT = 20.0
PROBE_MEMORY_MB = 1024
PROBE_MAX_PIXELS = 8192 * 8192  # the child decodes one keyframe for its rotation only below this

# Demuxers media kinds may ask for. Anything else (hls, concat, image2, lavfi, tty, ...) is never
# opened, whatever a kind asks for.
KNOWN_FORMATS = frozenset({"mov", "matroska", "avi", "mpegts", "ogg", "mp3", "flac", "wav", "aiff", "aac",
                           "asf", "flv", "mpeg"})

_CHILD = Path(__file__).with_name("_probe_child.py")


@dataclass(frozen=True)
class Stream:
    """One stream as the container declares it."""

    index: int
    type: str  # "video" | "audio" | "subtitle" | "data" | "attachment"
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: int | None = None
    rotation: int = 0  # 0/90/180/270, from the display matrix
    sar: float = 1.0  # sample (pixel) aspect ratio: 4/3 for an anamorphic 1440x1080 HDV frame
    hdr: bool = False  # PQ or HLG transfer (phones record HLG): needs tone mapping for SDR output
    sample_rate: int | None = None
    channels: int | None = None
    attached_pic: bool = False  # cover art in audio files

    @property
    def display_size(self) -> tuple[int, int] | None:
        """Width and height as shown: non-square pixels stretched square, then rotated."""
        if not self.width or not self.height:
            return None
        width = max(1, round(self.width * self.sar))
        if self.rotation in (90, 270):
            return self.height, width
        return width, self.height


@dataclass(frozen=True)
class Probe:
    """What a container declares. ``format`` is the allowlisted demuxer name that read it ("mov");
    ``duration`` is in seconds, 0.0 when the container does not declare one."""

    format: str
    duration: float
    bit_rate: int | None
    streams: tuple[Stream, ...]
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def video(self) -> Stream | None:
        """The first real video stream (not cover art)."""
        return next((s for s in self.streams if s.type == "video" and not s.attached_pic), None)

    @property
    def audio(self) -> Stream | None:
        return next((s for s in self.streams if s.type == "audio"), None)

    @property
    def cover(self) -> Stream | None:
        """Cover art attached to an audio file (a video stream holding one picture)."""
        return next((s for s in self.streams if s.type == "video" and s.attached_pic), None)


def probe(path: Path, settings: Settings, formats: frozenset[str], what: str) -> Probe:
    """Read the container header of ``path`` (a local file) without decoding it.

    Raises MediaRejected with a readable sentence when the file is damaged, is not one of
    ``formats`` (demuxer names, e.g. ``{"mov", "matroska"}``), or makes the demuxer crash or
    overrun its limits. ``what`` names the file for people ("This video").
    """
    allowed = sorted(formats & KNOWN_FORMATS)
    if not allowed or not path.is_file():
        raise MediaRejected("%(what)s is not a file Kiln can read.", code="unsupported", what=Label(what))
    done = run_external([sys.executable, "-I", str(_CHILD), ",".join(allowed), str(PROBE_MAX_PIXELS),
                         str(path.resolve())],
                        timeout=PROBE_TIMEOUT, memory_mb=PROBE_MEMORY_MB,
                        what=N_("Reading the header of this file"))
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise MediaRejected("%(what)s could not be read: it is damaged or not a media file.",
                            code="corrupt", what=Label(what)) from None
    if "error" in data:
        raise MediaRejected("%(what)s could not be read: it is damaged, incomplete or not in a supported "
                            "format (%(formats)s).", code="corrupt", what=Label(what), formats=_names(allowed))
    names = str(data.get("format", "")).split(",")
    fmt = next((name for name in names if name in allowed), None)
    if fmt is None:
        raise MediaRejected("%(what)s is in a container Kiln does not accept (%(container)s).", code="unsupported",
                            what=Label(what), container=names[0])
    streams = tuple(Stream(**{k: v for k, v in s.items() if k in Stream.__dataclass_fields__})
                    for s in data.get("streams", []))
    return Probe(format=fmt, duration=float(data.get("duration") or 0.0), bit_rate=data.get("bit_rate"),
                 streams=streams, tags=dict(data.get("tags") or {}))


def run_ffmpeg(settings: Settings, args: Sequence[str], *, duration: float | None,
               progress: Callable[[float], None], timeout: float, memory_mb: int, what: str,
               input_format: str | None = None) -> float:
    """Run ffmpeg with ``args`` (inputs and outputs, without the program name).

    Every ``-i PATH`` must name an existing local file; it is opened as ``file:PATH`` with only the
    ``file`` protocol and, when ``input_format`` is given (the probe's ``format``), that demuxer
    forced; otherwise the demuxer must be one of :data:`KNOWN_FORMATS`. ``progress`` receives the
    fraction (0..1) of ``duration`` written so far, from ffmpeg's ``-progress`` reports. ffmpeg is
    SIGKILLed after ``timeout`` seconds; errors become MediaRejected / TransientFailure.

    Returns the seconds of media written (ffmpeg's last ``out_time``), so callers can tell a file
    cut short from a whole one.
    """
    command = [ffmpeg_binary(settings), "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats",
               "-progress", "pipe:1", *_guard_inputs(args, input_format)]
    total = duration * 1_000_000 if duration and duration > 0 else None
    written = [0]

    def on_line(line: bytes) -> None:
        key, _, value = line.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            written[0] = max(written[0], int(value))
            if total:
                progress(min(1.0, max(0.0, int(value) / total)))
        elif key == "progress" and value == "end":
            progress(1.0)

    run_external(command, timeout=timeout, memory_mb=memory_mb, what=what, on_line=on_line)
    return written[0] / 1_000_000


def has_encoder(settings: Settings, name: str) -> bool:
    """Whether the configured ffmpeg was built with encoder ``name`` (a host's own ffmpeg may lack
    libsvtav1, say)."""
    return name in _encoders(ffmpeg_binary(settings))


@cache
def _encoders(binary: str) -> frozenset[str]:
    try:
        done = subprocess.run([binary, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    lines = done.stdout.split("------", 1)[-1].splitlines()
    return frozenset(parts[1] for parts in (line.split() for line in lines) if len(parts) > 1)


def _guard_inputs(args: Sequence[str], input_format: str | None) -> list[str]:
    if input_format is not None and input_format not in KNOWN_FORMATS:
        raise ValueError(f"{input_format!r} is not an allowed input format")
    guarded: list[str] = []
    items = list(args)
    for position, arg in enumerate(items):
        if position > 0 and items[position - 1] == "-i":
            source = Path(arg)
            if not source.is_absolute() or not source.is_file():
                raise ValueError(f"ffmpeg inputs must be local files, not {arg!r}")
            guarded[-1:] = ["-protocol_whitelist", "file", "-format_whitelist", ",".join(sorted(KNOWN_FORMATS))]
            if input_format is not None:
                guarded += ["-f", input_format]
            guarded += ["-i", "file:" + str(source)]
            continue
        if arg in ("-f", "-protocol_whitelist", "-format_whitelist") and "-i" in items[position + 1:position + 4]:
            raise ValueError(f"run_ffmpeg sets {arg} for inputs itself")
        guarded.append(arg)
    return guarded


def _names(formats: Sequence[str]) -> str:
    readable = {"mov": "MP4/QuickTime", "matroska": "WebM/Matroska", "avi": "AVI", "mpegts": "MPEG-TS",
                "ogg": "Ogg", "mp3": "MP3", "flac": "FLAC", "wav": "WAV", "aiff": "AIFF", "aac": "AAC",
                "asf": "WMA/ASF", "flv": "FLV", "mpeg": "MPEG"}
    return ", ".join(readable.get(name, name) for name in formats)
