"""Audio fixtures, generated with the ffmpeg bundled in imageio-ffmpeg from lavfi sources.

Every sample is one to two seconds long so the whole set is made in well under a second.
``make_all`` gives files that must process; ``make_hostile`` gives files that must end refused at
upload or failed with a reason (truncated copies of each format, a FLAC declaring 100 hours, a text
file named .mp3, an HLS playlist named .mp3, an MP3 header followed by garbage, ...).
"""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg

TITLE = "Kiln test tone"
ARTIST = "The Sine Waves"
ALBUM = "Lavfi Sessions"


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    *args], check=True)


def _tone(seconds: float, channels: int, rate: int = 44100) -> list[str]:
    """A lavfi input: a 440 Hz sine (mono), or 440 Hz left and 660 Hz right (stereo), with beeps."""
    if channels == 1:
        return ["-f", "lavfi", "-i", f"sine=f=440:beep_factor=4:d={seconds}:sample_rate={rate}"]
    return ["-f", "lavfi", "-i", f"sine=f=440:beep_factor=4:d={seconds}:sample_rate={rate}",
            "-f", "lavfi", "-i", f"sine=f=660:d={seconds}:sample_rate={rate}",
            "-filter_complex", "[0:a][1:a]amerge=inputs=2[a]", "-map", "[a]"]


TAGS = ["-metadata", f"title={TITLE}", "-metadata", f"artist={ARTIST}", "-metadata", f"album={ALBUM}"]


def make_cover(directory: Path) -> Path:
    cover = directory / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=c=0xC03020:s=96x96", "-frames:v", "1", str(cover))
    return cover


def make_all(directory: Path) -> dict[str, Path]:
    """Good samples: MP3 (with ID3 tags, bare, and VBR without a Xing header), FLAC, WAV, AIFF, Ogg Opus,
    Ogg Vorbis, M4A with cover."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {name: directory / f"{name}.{ext}" for name, ext in [
        ("mp3", "mp3"), ("mp3_bare", "mp3"), ("mp3_vbr", "mp3"), ("flac", "flac"), ("wav", "wav"), ("aiff", "aiff"),
        ("opus", "opus"), ("vorbis", "ogg"), ("m4a_cover", "m4a")]}
    _ffmpeg(*_tone(2, 2), "-c:a", "libmp3lame", "-b:a", "64k", *TAGS, str(out["mp3"]))
    _ffmpeg(*_tone(1.5, 1, 22050), "-c:a", "libmp3lame", "-b:a", "32k", "-id3v2_version", "0",
            "-write_id3v1", "0", "-write_xing", "0", str(out["mp3_bare"]))
    # Variable bitrate without a Xing header: quiet first frames make a header-based guess of the
    # duration far too long (2 s of sound, guessed as ~2.9 s, which would fail the cut-off check).
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono:d=1", "-f", "lavfi", "-i", "anoisesrc=d=1:a=0.5:r=44100",
            "-filter_complex", "[0][1]concat=n=2:v=0:a=1", "-c:a", "libmp3lame", "-q:a", "0", "-write_xing", "0",
            "-id3v2_version", "0", str(out["mp3_vbr"]))
    _ffmpeg(*_tone(1.5, 1), "-c:a", "flac", *TAGS, str(out["flac"]))
    _ffmpeg(*_tone(1, 1, 16000), "-c:a", "pcm_s16le", str(out["wav"]))
    _ffmpeg(*_tone(1, 2, 22050), "-c:a", "pcm_s16be", str(out["aiff"]))
    _ffmpeg(*_tone(2, 2, 48000), "-c:a", "libopus", "-b:a", "48k", *TAGS, str(out["opus"]))
    _ffmpeg(*_tone(1, 1), "-c:a", "vorbis", "-strict", "-2", "-ac", "2", str(out["vorbis"]))
    cover = make_cover(directory)
    _ffmpeg(*_tone(2, 1), "-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:a", "aac",
            "-b:a", "64k", "-c:v", "png", "-disposition:v:0", "attached_pic", *TAGS, str(out["m4a_cover"]))
    cover.unlink()
    return out


def make_hostile(directory: Path) -> dict[str, Path]:
    """Files that must never process: each must be refused at upload or fail with a reason."""
    directory.mkdir(parents=True, exist_ok=True)
    good = make_all(directory / "good")
    out: dict[str, Path] = {}
    for name, path in good.items():  # the first half of every sample format
        cut = directory / f"truncated_{name}{path.suffix}"
        data = path.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        out[f"truncated_{name}"] = cut
    out["long_flac"] = _declare_long_flac(good["flac"], directory / "hundred_hours.flac")
    text = directory / "song.mp3"
    text.write_text("Not a song at all, only words.\n" * 20)
    out["text_mp3"] = text
    playlist = directory / "playlist.mp3"  # an HLS playlist naming another local file (REFERENCE.md 4)
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nfile:{good['mp3'].resolve()}\n#EXT-X-ENDLIST\n")
    out["hls_playlist_mp3"] = playlist
    garbage = directory / "garbage.mp3"
    noise = random.Random(5).randbytes(8000)
    garbage.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + noise)
    out["mp3_garbage"] = garbage
    bare_garbage = directory / "sync.mp3"
    bare_garbage.write_bytes(b"\xff\xfb\x90\x64" + noise)
    out["mp3_sync_garbage"] = bare_garbage
    return out


def _declare_long_flac(flac: Path, target: Path) -> Path:
    """A copy of ``flac`` whose STREAMINFO says it holds 100 hours of samples."""
    data = bytearray(flac.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO is the first block
    info = 8  # the block body: min/max block (4), min/max frame (6), then rate|channels|bps|total (8)
    packed = int.from_bytes(data[info + 10: info + 18], "big")
    rate = packed >> 44
    total = 100 * 3600 * rate
    packed = (packed & ~((1 << 36) - 1)) | total
    data[info + 10: info + 18] = struct.pack(">Q", packed)
    target.write_bytes(bytes(data))
    return target
