"""Everything the audio kind asks ffmpeg to do, always through ``_ffmpeg.run_ffmpeg`` (the probed
demuxer forced, ``file`` protocol only, the job's own copy, time and memory limits, SIGKILL).

* :func:`decode_pcm` decodes the first audio stream to mono 16-bit PCM at a low rate, into a file
  in the work directory that numpy maps (never the whole sound in memory), and refuses a file
  whose sound stops well before the duration its header declares (a cut-off FLAC or M4A).
* :func:`transcode` makes the web rendition; :func:`extract_cover` the cover art as a PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from kiln.config import Settings
from kiln.mediatypes._ffmpeg import run_ffmpeg
from kiln.mediatypes.base import MediaRejected

DECODE_MEMORY_MB = 768
FULL_RATE = 16_000  # analysis sample rate for sound up to ten minutes long (spectrogram up to 8 kHz)
LOWEST_RATE = 2_000  # twelve hours at this rate is 173 MB of PCM in the work directory
MIN_SPEED = 10.0  # seconds of sound per second of wall time below which a run is stopped


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
    target = workdir / f"sound-{rate}.s16"
    run_ffmpeg(settings, ["-i", str(source), "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(rate),
                          "-c:a", "pcm_s16le", "-f", "s16le", "-y", str(target)],
               duration=duration, progress=progress, timeout=time_limit(settings, duration),
               memory_mb=DECODE_MEMORY_MB, what="The audio decoder", input_format=demuxer)
    count = target.stat().st_size // 2 if target.exists() else 0
    if count == 0:
        raise MediaRejected("No sound could be decoded from this file: it is damaged or empty.", code="corrupt")
    decoded = count / rate
    if duration > 0 and decoded < duration * 0.9 - 0.25:
        raise MediaRejected(
            f"This audio file is incomplete or damaged: its header says it lasts {clock(duration)}, but "
            f"only {clock(decoded)} of sound could be read. Upload the whole file again.", code="corrupt")
    return np.memmap(target, dtype="<i2", mode="r", shape=(count,))


def transcode(source: Path, demuxer: str, duration: float, channels: int, sample_rate: int, settings: Settings,
              target: Path, progress: Callable[[float], None]) -> None:
    """AAC-LC in an M4A with its index first (plays while it downloads), no tags or pictures."""
    audio = settings.audio
    stereo = channels >= 2
    bitrate = audio.bitrate_kbps if stereo else max(32, audio.bitrate_kbps // 2)
    args = ["-i", str(source), "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
            "-ac", "2" if stereo else "1", "-c:a", "aac", "-b:a", f"{bitrate}k"]
    if sample_rate > 48_000 or sample_rate < 8_000:
        args += ["-ar", "48000"]
    args += ["-movflags", "+faststart", "-f", "ipod", "-y", str(target)]
    run_ffmpeg(settings, args, duration=duration, progress=progress, timeout=time_limit(settings, duration),
               memory_mb=DECODE_MEMORY_MB, what="The audio converter", input_format=demuxer)


def extract_cover(source: Path, demuxer: str, stream_index: int, settings: Settings, target: Path) -> None:
    """Decode the attached picture (stream ``stream_index``) to a PNG."""
    run_ffmpeg(settings, ["-i", str(source), "-map", f"0:{stream_index}", "-frames:v", "1", "-an", "-sn", "-dn",
                          "-c:v", "png", "-f", "image2", "-update", "1", "-y", str(target)],
               duration=None, progress=lambda fraction: None, timeout=30.0, memory_mb=DECODE_MEMORY_MB,
               what="Reading the cover art", input_format=demuxer)
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
