"""Recognising audio files from their bytes, and refusing cut-off ones before ffmpeg sees them.

:func:`sniff` decides the container from magic bytes (MP3 by its ID3 tag or by two MPEG audio
frames in a row, FLAC, Ogg Vorbis/Opus/FLAC, WAV, AIFF, M4A). :func:`check_complete` reads the
structure that tells whether the file was cut short: an MP3 whose last frame runs past the end, a
WAV or AIFF whose sound chunk is longer than the file, an Ogg stream that stops without its end
page. (FLAC and M4A are checked by the decoder: see ``decode.py``.)
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiln.mediatypes.base import MediaRejected

CUT_OFF = ("This audio file is incomplete: it ends in the middle of its sound data (probably cut off "
           "during download or upload). Upload the whole file again.")


@dataclass(frozen=True)
class Format:
    key: str  # our name for it
    label: str  # for people
    mime_type: str
    demuxer: str  # the only ffmpeg demuxer allowed to read it
    extension: str  # of the stored original
    audio_only_check: bool = False  # an MP4 whose brand does not say "audio": the probe must find no video


FORMATS = {f.key: f for f in [
    Format("mp3", "MP3", "audio/mpeg", "mp3", ".mp3"),
    Format("flac", "FLAC", "audio/flac", "flac", ".flac"),
    Format("ogg", "Ogg", "audio/ogg", "ogg", ".ogg"),
    Format("wav", "WAV", "audio/wav", "wav", ".wav"),
    Format("aiff", "AIFF", "audio/aiff", "aiff", ".aiff"),
    Format("m4a", "M4A", "audio/mp4", "mov", ".m4a"),
    Format("mp4", "MP4 audio", "audio/mp4", "mov", ".m4a", audio_only_check=True),
]}

AUDIO_BRANDS = {b"M4A ", b"M4B "}
OTHER_MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"dash", b"avc1", b"3gp4",
                    b"3gp5", b"3gp6", b"MSNV", b"f4a ", b"F4A "}
TRAILING_TAGS = (b"TAG", b"APETAGEX", b"LYRICSBEGIN", b"ID3")
OGG_AUDIO_CODECS = (b"\x01vorbis", b"OpusHead", b"\x7fFLAC")


def sniff(path: Path, head: bytes) -> Format | None:
    """The audio format of the file at ``path`` (first bytes ``head``), or None if it is not audio.

    Raises MediaRejected for a file that declares itself audio but cannot be (an ID3 tag followed by
    no MPEG audio, DRM-protected iTunes audio).
    """
    if head.startswith(b"ID3"):
        return _after_id3(path, head)
    if head.startswith(b"fLaC"):
        return FORMATS["flac"]
    if head.startswith(b"OggS"):
        return FORMATS["ogg"] if _ogg_audio(head) else None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return FORMATS["wav"]
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return FORMATS["aiff"]
    if head[4:8] == b"ftyp":
        return _mp4(head)
    if _mpeg_frames_at(head, 0, count=2, whole=True):
        return FORMATS["mp3"]
    return None


def _after_id3(path: Path, head: bytes) -> Format:
    """An ID3v2 tag (often holding cover art, so longer than ``head``) comes before MP3 or FLAC."""
    offset = 0
    with path.open("rb") as fh:
        while True:  # some files carry several tags in a row
            fh.seek(offset)
            tag = fh.read(10)
            if len(tag) < 10 or not tag.startswith(b"ID3"):
                break
            size = (tag[6] & 0x7F) << 21 | (tag[7] & 0x7F) << 14 | (tag[8] & 0x7F) << 7 | (tag[9] & 0x7F)
            offset += 10 + size + (10 if tag[5] & 0x10 else 0)  # footer flag
        fh.seek(offset)
        window = fh.read(8192)
    if window.startswith(b"fLaC"):
        return FORMATS["flac"]
    skip = len(window) - len(window.lstrip(b"\x00"))  # padding some taggers leave
    if _mpeg_frames_at(window, skip, count=2):
        return FORMATS["mp3"]
    raise MediaRejected("This file starts like an MP3 (it has an ID3 tag), but no MPEG audio follows the tag: "
                        "it is damaged or not an audio file.", code="corrupt")


def _ogg_audio(head: bytes) -> bool:
    """The first Ogg page carries the identification packet of the first stream."""
    if len(head) < 28:
        return False
    segments = head[26]
    body = head[27 + segments: 27 + segments + 8]
    return body.startswith(OGG_AUDIO_CODECS)


def _mp4(head: bytes) -> Format | None:
    brand = head[8:12]
    if brand == b"M4P ":
        raise MediaRejected("This is copy-protected (DRM) iTunes audio, which only its buyer's players can play. "
                            "Kiln cannot publish it.", code="unsupported")
    if brand in AUDIO_BRANDS:
        return FORMATS["m4a"]
    size = int.from_bytes(head[:4], "big")
    compatible = {head[i:i + 4] for i in range(16, min(size, len(head), 64), 4)}
    if AUDIO_BRANDS & compatible:
        return FORMATS["m4a"]
    if brand in OTHER_MP4_BRANDS:
        return FORMATS["mp4"]  # audio only if the probe finds no video stream
    return None


# MPEG audio frames -------------------------------------------------------------------------------
_BITRATES = {  # kbit/s by (MPEG-1?, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(data: bytes | mmap.mmap, at: int) -> int:
    """The length of the MPEG audio frame whose header starts at ``at``, or 0 if none does."""
    return _mpeg_header(data, at)[0]


def _mpeg_header(data: bytes | mmap.mmap, at: int) -> tuple[int, int, int]:
    """(frame length in bytes, samples it holds, sample rate) of the frame at ``at``, or zeros."""
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return 0, 0, 0
    b1, b2 = data[at + 1], data[at + 2]
    version, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return 0, 0, 0
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _RATES[version][rate_index]
    padding = (b2 >> 1) & 1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4, 384, rate
    if layer == 3 and not mpeg1:
        return 72 * bitrate // rate + padding, 576, rate
    return 144 * bitrate // rate + padding, 1152, rate


def _mpeg_frames_at(data: bytes, at: int, count: int, whole: bool = False) -> bool:
    """``count`` + 1 frame headers in a row, each where the one before ends (one alone is too easily
    matched by chance). Frames running past ``data`` count when the first ``count`` were found,
    unless ``whole``: a file with no ID3 tag has only its frames to go by, and short text in UTF-16
    (it starts FF FE) reads as one MPEG frame header, so every frame must lie inside ``data``."""
    for _ in range(count):
        length = _mpeg_frame(data, at)
        if not length:
            return False
        at += length
        if at + 4 > len(data):
            return not whole
    return bool(_mpeg_frame(data, at))


# Completeness --------------------------------------------------------------------------------------
def check_complete(path: Path, fmt: Format) -> float | None:
    """Raise MediaRejected when the file's own structure shows it was cut short.

    For an MP3 every frame is visited, so its true duration in seconds is returned (a header's
    guess from the first frame's bitrate can be far off for variable bitrates); None otherwise.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        if fmt.key == "wav":
            _check_chunks(fh, size, b"data", little=True, first=12)
        elif fmt.key == "aiff":
            _check_chunks(fh, size, b"SSND", little=False, first=12)
        elif fmt.key == "ogg":
            _check_ogg_end(fh, size)
        elif fmt.key == "mp3" and size:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _check_mp3_end(data)
    return None


def _check_chunks(fh: BinaryIO, size: int, wanted: bytes, little: bool, first: int) -> None:
    offset = first
    while offset + 8 <= size:
        fh.seek(offset)
        header = fh.read(8)
        length = int.from_bytes(header[4:8], "little" if little else "big")
        if header[:4] == wanted:
            if length not in (0, 0xFFFFFFFF) and offset + 8 + length > size:  # 0/-1: "unknown" (streamed)
                raise MediaRejected(CUT_OFF, code="corrupt")
            return
        offset += 8 + length + (length & 1)
    raise MediaRejected("This audio file holds no sound data (its data chunk is missing).", code="corrupt")


def _check_ogg_end(fh: BinaryIO, size: int) -> None:
    """The last page must be whole and flagged end-of-stream."""
    tail_start = max(0, size - 65_536 - 282)
    fh.seek(tail_start)
    tail = fh.read()
    at = tail.rfind(b"OggS")
    while at >= 0:
        if at + 27 <= len(tail) and tail[at + 4] == 0:  # a page header (version 0), not sound data
            segments = tail[at + 26]
            table = tail[at + 27: at + 27 + segments]
            end = at + 27 + segments + sum(table)
            if len(table) == segments and end == len(tail) and tail[at + 5] & 0x04:
                return
            if end <= len(tail):  # a whole page, but the stream does not end here
                break
        at = tail.rfind(b"OggS", 0, at)
    raise MediaRejected(CUT_OFF, code="corrupt")


def _check_mp3_end(data: mmap.mmap) -> float | None:
    """Walk the frames from the first; the last one must end within the file (trailing tags are
    fine). Returns the seconds of sound the frames hold, or None when the walk lost step before
    the end (junk inside the music: the count would be too short to trust)."""
    at = 0
    while data[at:at + 3] == b"ID3" and at + 10 <= len(data):
        tag = data[at:at + 10]
        at += 10 + ((tag[6] & 0x7F) << 21 | (tag[7] & 0x7F) << 14 | (tag[8] & 0x7F) << 7 | (tag[9] & 0x7F))
    while at < len(data) and data[at] == 0:
        at += 1
    end = len(data)
    seconds = 0.0
    while at < end:
        length, samples, rate = _mpeg_header(data, at)
        if not length:  # a trailing tag (ID3v1, APE, Lyrics) is not a cut; junk is not either
            trailing = data[at:at + 8].startswith(TRAILING_TAGS) or end - at < 4096
            return seconds if trailing else None
        if at + length > end:
            raise MediaRejected(CUT_OFF, code="corrupt")
        seconds += samples / rate
        at += length
    return seconds


# Ogg comments --------------------------------------------------------------------------------------
def ogg_tags(head: bytes) -> dict[str, str]:
    """The Vorbis comments (TITLE=..., ARTIST=...) of an Ogg Vorbis or Opus stream, from its first
    pages; ffmpeg keeps them on the stream, where the probe does not look. Empty when not found."""
    packets: list[bytes] = []
    current = b""
    at = 0
    while len(packets) < 2 and head.startswith(b"OggS", at) and at + 27 <= len(head):
        segments = head[at + 26]
        table = head[at + 27: at + 27 + segments]
        body = at + 27 + segments
        for length in table:
            current += head[body: body + length]
            body += length
            if length < 255:
                packets.append(current)
                current = b""
        at = body
    if len(packets) < 2:
        return {}
    comment = packets[1]
    for magic in (b"OpusTags", b"\x03vorbis"):
        if comment.startswith(magic):
            return _vorbis_comments(comment[len(magic):])
    return {}


def _vorbis_comments(data: bytes) -> dict[str, str]:
    tags: dict[str, str] = {}
    try:
        vendor = int.from_bytes(data[:4], "little")
        at = 4 + vendor
        count = int.from_bytes(data[at: at + 4], "little")
        at += 4
        for _ in range(min(count, 200)):
            length = int.from_bytes(data[at: at + 4], "little")
            entry = data[at + 4: at + 4 + length].decode("utf-8", "replace")
            at += 4 + length
            key, sep, value = entry.partition("=")
            if sep and len(tags) < 50:
                tags.setdefault(key.lower(), value[:500])
    except (IndexError, ValueError):
        pass
    return tags
