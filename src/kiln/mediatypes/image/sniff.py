"""Recognising an image from its first bytes, and reading its header without decoding pixels."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pyvips

from kiln.config import ImageSettings
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.image._vips import FORMATS, Format, load, translate_errors

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF

_TAG_NEW_SUBFILE_TYPE = 0x00FE
_TAG_SUB_IFDS = 0x014A
_TAG_DNG_VERSION = 0xC612


def sniff(head: bytes) -> Format | None:
    """The format ``head`` (the file's first bytes) starts like, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return FORMATS["jpeg"]
    if head.startswith(_PNG_MAGIC):
        return FORMATS["png"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FORMATS["webp"]
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return FORMATS["gif"]
    if head[:4] in _TIFF_MAGICS and not _looks_like_camera_raw(head):
        return FORMATS["tiff"]
    return None


def _looks_like_camera_raw(head: bytes) -> bool:
    """Camera RAW files (DNG, CR2, NEF, ARW, ...) are TIFF containers holding a small preview.

    Processing them as TIFF would publish that preview, so they are left for a future RAW kind.
    """
    if head[8:10] == b"CR":  # Canon CR2
        return True
    if head[:4] not in (b"II*\x00", b"MM\x00*") or len(head) < 8:
        return False
    order = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", head, 4)
    if ifd + 2 > len(head):
        return False
    (count,) = struct.unpack_from(order + "H", head, ifd)
    tags: dict[int, int] = {}
    for i in range(min(count, 512)):
        at = ifd + 2 + 12 * i
        if at + 12 > len(head):
            break
        tag, kind, n = struct.unpack_from(order + "HHI", head, at)
        value = struct.unpack_from(order + ("H" if kind == 3 else "I"), head, at + 8)[0] if n == 1 else 0
        tags[tag] = value
    if _TAG_DNG_VERSION in tags:
        return True
    # NEF, ARW, PEF, ...: the first directory is a reduced-resolution preview with the real
    # picture in a sub-directory.
    return tags.get(_TAG_NEW_SUBFILE_TYPE) == 1 and _TAG_SUB_IFDS in tags


@dataclass(frozen=True)
class Header:
    fmt: Format
    stored_width: int
    stored_height: int
    orientation: int  # EXIF orientation 1..8 (anything else reads as 1)
    frames: int
    bands: int
    exif: bytes | None

    @property
    def width(self) -> int:
        """Width as displayed, after the orientation is applied."""
        return self.stored_height if self.orientation >= 5 else self.stored_width

    @property
    def height(self) -> int:
        return self.stored_width if self.orientation >= 5 else self.stored_height


def header_of(image: pyvips.Image, fmt: Format) -> Header:
    """What a lazily opened image declares. Touches no pixels."""
    orientation = 1
    if image.get_typeof("orientation"):
        value = image.get("orientation")
        orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
    frames = image.get("n-pages") if image.get_typeof("n-pages") else 1
    exif = image.get("exif-data") if image.get_typeof("exif-data") else None
    return Header(
        fmt=fmt,
        stored_width=image.width,
        stored_height=image.height,
        orientation=orientation,
        frames=max(1, int(frames)),
        bands=image.bands,
        exif=bytes(exif) if exif else None,
    )


def read_header(path: Path, fmt: Format, limits: ImageSettings) -> Header:
    """Read and check the header. Raises MediaRejected for damaged headers and pixel bombs."""
    with translate_errors(fmt):
        header = header_of(load(str(path), fmt), fmt)
    check_limits(header, limits)
    return header


def check_limits(header: Header, limits: ImageSettings) -> None:
    w, h = header.width, header.height
    if w < 1 or h < 1:
        raise MediaRejected(f"This {header.fmt.label} file declares no pixels.", code="corrupt")
    if w * h > limits.max_pixels:
        raise MediaRejected(
            f"This image is {w}\u00d7{h} pixels; Kiln accepts images up to "
            f"{_megapixels(limits.max_pixels)} megapixels.",
            code="too_large",
        )
    if max(w, h) > limits.max_side:
        raise MediaRejected(
            f"This image is {w}\u00d7{h} pixels; Kiln accepts images up to "
            f"{limits.max_side} pixels on a side.",
            code="too_large",
        )


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")
