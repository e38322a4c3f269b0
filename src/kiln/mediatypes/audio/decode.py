"""Everything the audio kind asks ffmpeg to do, always through ``_ffmpeg.run_ffmpeg`` (the probed
demuxer forced, ``file`` protocol only, the job's own copy, time and memory limits, SIGKILL).

* :func:`decode_pcm` decodes the first audio stream to mono 16-bit PCM at a low rate, into a file
  in the work directory that numpy maps (never the whole sound in memory), and refuses a file
  whose sound stops well before the duration its header declares (a cut-off FLAC or M4A). Later
  steps of the same run reuse the decoded file.
* :func:`transcode` makes the web rendition (copying MP3 and AAC sound browsers already play);
  :func:`extract_cover` the cover art as a PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from kiln.config import Settings
from kiln.i18n import N_
from kiln.mediatypes._ffmpeg import run_ffmpeg
from kiln.mediatypes.base import MediaRejected

DECODE_MEMORY_MB = 768
FULL_RATE = 16_000  # analysis sample rate for sound up to ten minutes long (spectrogram up to 8 kHz)
LOWEST_RATE = 2_000  # twelve hours at this rate is 173 MB of PCM in the work directory
MIN_SPEED = 10.0  # seconds of sound per second of wall time below which a run is stopped
# Workers already run one per core. Frame-threaded audio decoders (FLAC) only trade work between
# threads for locking: one thread halves the CPU time of decoding a FLAC here, and changes nothing for MP3.
ONE_THREAD = ("-threads", "1")
COPY_MAX_BITRATE = 330_000  # MP3 and AAC up to 320 kbit/s are published as they are, not re-encoded


def analysis_rate(duration: float) -> int:
    """The PCM sample rate used to draw a recording of ``duration`` seconds: 16 kHz up to ten
    minutes, then lower so the decoded file stays under ~10 million samples."""
    if duration <= 600:
        return FULL_RATE
    return max(LOWEST_RATE, int(FULL_RATE * 600 / duration) // 100 * 100)


def time_limit(settings: Settings, duration: float) -> float:
    """Seconds ffmpeg may take on ``duration`` seconds of sound, within the step's own limit."""
    step_limit = float(settings.processing.policy("audio").step_time_limit)
    return min(step_limit, 30.0 + duration / MIN_SPEED)


def decode_pcm(source: Path, demuxer: str, duration: float, settings: Settings, workdir: Path, rate: int,
               progress: Callable[[float], None]) -> np.ndarray:
    """The first audio stream of ``source``, mono int16 at ``rate`` Hz, memory-mapped from the work directory.

    Raises MediaRejected when less than 90% of the declared ``duration`` decodes (cut off), or
    when nothing decodes at all.
    """
    done = workdir / f"sound-{rate}.s16"
    if done.is_file():  # decoded and checked by an earlier step of this run (waveform, then spectrogram)
        progress(1.0)
        return np.memmap(done, dtype="<i2", mode="r", shape=(done.stat().st_size // 2,))
    target = workdir / f"sound-{rate}.s16.part"
    run_ffmpeg(settings, [*ONE_THREAD, "-i", str(source), "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1",
                          "-ar", str(rate), "-c:a", "pcm_s16le", "-f", "s16le", "-y", str(target)],
               duration=duration, progress=progress, timeout=time_limit(settings, duration),
               memory_mb=DECODE_MEMORY_MB, what=N_("The audio decoder"), input_format=demuxer)
    count = target.stat().st_size // 2 if target.exists() else 0
    if count == 0:
        raise MediaRejected("No sound could be decoded from this file: it is damaged or empty.", code="corrupt")
    decoded = count / rate
    if duration > 0 and decoded < duration * 0.9 - 0.25:
        raise MediaRejected(
            "This audio file is incomplete or damaged: its header says it lasts %(duration)s, but "
            "only %(decoded)s of sound could be read. Upload the whole file again.", code="corrupt",
            duration=clock(duration), decoded=clock(decoded))
    target.rename(done)
    return np.memmap(done, dtype="<i2", mode="r", shape=(count,))


def copyable(fmt_key: str, codec: str, channels: int, sample_rate: int, bit_rate: int | None) -> str | None:
    """The container to copy the original's sound into, when every browser already plays it (MP3,
    or AAC from an M4A/MP4) at a sensible size: "mp3", "m4a" or None (convert it)."""
    if channels > 2 or sample_rate > 48_000 or (bit_rate or 0) > COPY_MAX_BITRATE:
        return None
    if fmt_key == "mp3" and codec == "mp3":
        return "mp3"
    if fmt_key in ("m4a", "mp4") and codec == "aac":
        return "m4a"
    return None


def transcode(source: Path, demuxer: str, duration: float, channels: int, sample_rate: int, settings: Settings,
              workdir: Path, progress: Callable[[float], None], copy: str | None,
              bitrate_kbps: int) -> tuple[Path, str]:
    """The web rendition: the original's MP3 or AAC stream copied when ``copy`` says so, otherwise
    AAC-LC in M4A. Either way tags and pictures are left out, and an M4A has its index first (it
    plays while it downloads). Returns the file and its MIME type."""
    args = [*ONE_THREAD, "-i", str(source), "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1",
            "-map_chapters", "-1"]
    if copy == "mp3":
        target, mime = workdir / "audio.mp3", "audio/mpeg"
        args += ["-c:a", "copy", "-id3v2_version", "0", "-write_id3v1", "0", "-f", "mp3"]
    else:
        target, mime = workdir / "audio.m4a", "audio/mp4"
        if copy == "m4a":
            args += ["-c:a", "copy"]
        else:
            stereo = channels >= 2
            bitrate = bitrate_kbps if stereo else max(32, bitrate_kbps // 2)
            args += ["-ac", "2" if stereo else "1", "-c:a", "aac", "-aac_coder", "fast", "-b:a", f"{bitrate}k"]
            if sample_rate > 48_000 or sample_rate < 8_000:
                args += ["-ar", "48000"]
        args += ["-movflags", "+faststart", "-f", "ipod"]
    run_ffmpeg(settings, [*args, "-y", str(target)], duration=duration, progress=progress,
               timeout=time_limit(settings, duration), memory_mb=DECODE_MEMORY_MB, what=N_("The audio converter"),
               input_format=demuxer)
    return target, mime


MUXERS = {"mp3": "mp3", "flac": "flac", "ogg": "ogg", "wav": "wav", "aiff": "aiff", "m4a": "ipod", "mp4": "mp4"}


def without_tags(source: Path, fmt_key: str, demuxer: str, settings: Settings, target: Path) -> None:
    """The original's sound streams copied bit for bit into the same container, without tags,
    comments, chapters or pictures (for publishing the original "without metadata")."""
    args = ["-i", str(source), "-map", "0:a", "-c", "copy", "-map_metadata", "-1", "-map_metadata:s:a", "-1",
            "-map_chapters", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
    if fmt_key == "mp3":
        args += ["-id3v2_version", "0", "-write_id3v1", "0"]
    run_ffmpeg(settings, [*args, "-f", MUXERS[fmt_key], "-y", str(target)], duration=None,
               progress=lambda fraction: None, timeout=120.0, memory_mb=DECODE_MEMORY_MB,
               what=N_("Copying the recording"), input_format=demuxer)


def extract_cover(source: Path, demuxer: str, stream_index: int, settings: Settings, target: Path) -> None:
    """Decode the attached picture (stream ``stream_index``) to a PNG."""
    run_ffmpeg(settings, ["-i", str(source), "-map", f"0:{stream_index}", "-frames:v", "1", "-an", "-sn", "-dn",
                          "-c:v", "png", "-f", "image2", "-update", "1", "-y", str(target)],
               duration=None, progress=lambda fraction: None, timeout=30.0, memory_mb=DECODE_MEMORY_MB,
               what=N_("Reading the cover art"), input_format=demuxer)
    if not target.is_file() or target.stat().st_size == 0:
        raise MediaRejected("The cover art in this file could not be read.", code="corrupt")


def clock(seconds: float) -> str:
    """1:02:03, 4:05 or 0.8 s."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
