"""A copy of an original without camera data, GPS or other personal metadata, for owners who
publish their originals.

JPEG and PNG are rewritten losslessly: the compressed pixels are copied byte for byte and only
metadata segments are dropped (JPEG keeps JFIF, the ICC profile, the Adobe colour marker and a
minimal EXIF holding just the orientation, so the picture still shows upright). Other formats are
re-encoded at full size through the rendition pipeline, which keeps nothing but the ICC profile.
"""

from __future__ import annotations

import struct
from pathlib import Path

from kiln.mediatypes.base import MediaRejected

# PNG chunks that carry pixels, colour or animation; everything else (eXIf, tEXt, iTXt, zTXt,
# tIME, private chunks) is dropped.
PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
            b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def strip_jpeg(data: bytes, orientation: int | None) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise MediaRejected("This JPEG file is damaged and cannot be read.", code="corrupt")
    out = bytearray(b"\xff\xd8")
    if orientation and orientation != 1:
        out += _orientation_only_exif(orientation)
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise MediaRejected("This JPEG file is damaged and cannot be read.", code="corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the compressed pixels follow, copied as they are
            out += data[pos:]
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[pos:pos + 2]
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segment = data[pos:pos + 2 + length]
        if _keep_jpeg_segment(marker, segment[4:]):
            out += segment
        pos += 2 + length
    raise MediaRejected("This JPEG file is damaged and cannot be read.", code="corrupt")


def _keep_jpeg_segment(marker: int, body: bytes) -> bool:
    if marker == 0xE0:  # APP0: JFIF
        return body.startswith(b"JFIF\x00")
    if marker == 0xE2:  # APP2: ICC profile (not MPF, which can carry more images and their EXIF)
        return body.startswith(b"ICC_PROFILE\x00")
    if marker == 0xEE:  # APP14: Adobe, needed to decode CMYK/YCCK correctly
        return body.startswith(b"Adobe")
    # Other APPn (EXIF, XMP, IPTC...) and comments go; tables, frame headers and restart intervals
    # (the image itself) stay.
    return not (0xE1 <= marker <= 0xEF or marker == 0xFE)


def _orientation_only_exif(orientation: int) -> bytes:
    """An APP1 EXIF segment with one tag, Orientation, so viewers still turn the picture upright."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff + ifd
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def strip_png(data: bytes) -> bytes:
    if not data.startswith(PNG_SIGNATURE):
        raise MediaRejected("This PNG file is damaged and cannot be read.", code="corrupt")
    out = bytearray(PNG_SIGNATURE)
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise MediaRejected("This PNG file is damaged and cannot be read.", code="corrupt")
        if kind in PNG_KEEP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    raise MediaRejected("This PNG file is damaged and cannot be read.", code="corrupt")


def strip_file(source: Path, dest_dir: Path, fmt_key: str, orientation: int | None) -> Path:
    """Write a metadata-free copy of ``source`` into ``dest_dir`` and return its path; LookupError
    for formats without a lossless way (the caller re-encodes those)."""
    data = source.read_bytes()
    if fmt_key == "jpeg":
        out, suffix = strip_jpeg(data, orientation), ".jpg"
    elif fmt_key == "png":
        out, suffix = strip_png(data), ".png"
    else:
        raise LookupError(fmt_key)
    path = dest_dir / f"original-stripped{suffix}"
    path.write_bytes(out)
    return path
