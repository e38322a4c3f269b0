"""Recognising a video container from its first bytes, before ffmpeg sees the file.

The result only chooses which single demuxer the probe may use: a file that looks like an MP4
is opened with the MP4/QuickTime demuxer and nothing else, so a playlist or script named
``.mp4`` never reaches a demuxer that follows references.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Container:
    demuxer: str  # the one ffmpeg demuxer allowed to read it
    mime_type: str
    label: str  # for people


# ISO base media brands that are pictures (the image kind) or sound only (the audio kind).
NOT_VIDEO_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
                    b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
# QuickTime files from before the ftyp box start straight with one of these atoms.
QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
TS_PACKET = 188
M2TS_PACKET = 192


def sniff(head: bytes) -> Container | None:
    if len(head) < 12:
        return None
    box = head[4:8]
    if box == b"ftyp":
        brand = head[8:12]
        if brand in NOT_VIDEO_BRANDS:
            return None
        if brand == b"qt  ":
            return Container("mov", "video/quicktime", "QuickTime")
        if brand.startswith((b"3gp", b"3g2")):
            return Container("mov", "video/3gpp", "3GP")
        return Container("mov", "video/mp4", "MP4")
    if box in QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return Container("mov", "video/quicktime", "QuickTime")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return Container("matroska", "video/webm", "WebM")
        return Container("matroska", "video/x-matroska", "Matroska")
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return Container("avi", "video/x-msvideo", "AVI")
    if len(head) > 2 * TS_PACKET and head[0] == head[TS_PACKET] == head[2 * TS_PACKET] == 0x47:
        return Container("mpegts", "video/mp2t", "MPEG-TS")
    if len(head) > 2 * M2TS_PACKET + 4 and head[4] == head[M2TS_PACKET + 4] == head[2 * M2TS_PACKET + 4] == 0x47:
        return Container("mpegts", "video/mp2t", "AVCHD/Blu-ray (M2TS)")  # 4-byte timecode per packet
    if head.startswith(b"OggS") and b"\x80theora" in head:
        return Container("ogg", "video/ogg", "Ogg Theora")
    return None
