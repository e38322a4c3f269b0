"""Recognising an image from its first bytes, and reading its header without decoding pixels."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pyvips

from kiln.config import ImageSettings
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.image import raw
from kiln.mediatypes.image._vips import FORMATS, Format, load, translate_errors

ANIMATED = ("gif", "webp")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF

# ISO BMFF brands (ftyp) of still pictures. Plain "mif1"/"msf1" say "HEIF" without naming the
# codec: the codec configuration box in the header (av1C or hvcC) then decides.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1"}


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
    if head[4:8] == b"ftyp":
        return _heif(head)
    if head[:4] in _TIFF_MAGICS:
        return FORMATS["tiff"]  # or a camera RAW: read_header looks at the whole first directory
    return None


def _heif(head: bytes) -> Format | None:
    (size,) = struct.unpack_from(">I", head, 0)
    if not 16 <= size <= min(len(head), 4096) or size % 4:
        return None
    brands = {head[8:12]} | {head[i:i + 4] for i in range(16, size, 4)}
    if brands & _AVIF_BRANDS:
        return FORMATS["avif"]
    if brands & _HEIC_BRANDS:
        return FORMATS["heic"]
    if brands & _HEIF_BRANDS:
        if b"av1C" in head:
            return FORMATS["avif"]
        if b"hvcC" in head:
            return FORMATS["heic"]
        raise MediaRejected("This HEIF picture uses a codec Kiln does not read; Kiln reads HEIC (HEVC) and "
                            "AVIF (AV1) pictures.", code="unsupported")
    return None


@dataclass(frozen=True)
class Header:
    fmt: Format
    stored_width: int
    stored_height: int
    orientation: int  # EXIF orientation 1..8 (anything else reads as 1)
    frames: int
    bands: int
    exif: bytes | None
    preview: raw.Preview | None = None  # camera RAW: the embedded JPEG the pixels come from (None: LibRaw)
    sensor: tuple[int, int] | None = None  # camera RAW: the sensor picture's declared size

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
    # Only GIF and WebP frames play as an animation; the pages of a TIFF or the other pictures in
    # a HEIF file are never shown, so they do not count.
    frames = image.get("n-pages") if image.get_typeof("n-pages") and fmt.key in ANIMATED else 1
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
    """Read and check the header. Raises MediaRejected for damaged headers and pixel bombs.

    A TIFF is checked for being a camera RAW: passing one as a TIFF
    would publish its thumbnail-sized first picture.
    """
    if fmt.key == "tiff":
        fmt = _camera_raw(path, fmt)
    if fmt.pixels == "raw":
        header = _raw_header(path, fmt, limits)
    else:
        with translate_errors(fmt):
            header = header_of(load(str(path), fmt), fmt)
    check_limits(header, limits)
    return header


def _camera_raw(path: Path, fmt: Format) -> Format:
    with translate_errors(fmt):
        camera = raw.family(path)
    if camera == "raw":
        raise MediaRejected(
            "This is a camera RAW file of a make Kiln does not read. Kiln reads DNG, CR2, NEF and "
            "ARW RAW files; export it as DNG or JPEG and upload that.",
            code="unsupported",
        )
    return FORMATS[camera] if camera else fmt


def _raw_header(path: Path, fmt: Format, limits: ImageSettings) -> Header:
    """The embedded preview when it is big enough for the medium rendition (or as big as the
    sensor); otherwise the sensor data, which LibRaw will decode (``preview`` is then None)."""
    with translate_errors(fmt):
        camera = raw.read(path, fmt.label, fmt.key)
    preview, sensor = camera.preview, camera.sensor
    if preview is not None and (
        sensor is None or max(preview.width, preview.height) >= min(limits.medium_size, max(sensor))
    ):
        width, height = preview.width, preview.height
    else:
        assert sensor is not None  # raw.read refuses files with neither
        preview, (width, height) = None, sensor
    return Header(fmt=fmt, stored_width=width, stored_height=height, orientation=camera.orientation,
                  frames=1, bands=3, exif=None, preview=preview, sensor=sensor)


def check_limits(header: Header, limits: ImageSettings) -> None:
    w, h = header.width, header.height
    if w < 1 or h < 1:
        raise MediaRejected("This %(format)s file declares no pixels.", code="corrupt", format=header.fmt.label)
    if w * h > limits.max_pixels:
        raise MediaRejected(
            "This image is %(width)s\u00d7%(height)s pixels; Kiln accepts images up to %(megapixels)s megapixels.",
            code="too_large", width=str(w), height=str(h), megapixels=_megapixels(limits.max_pixels),
        )
    if max(w, h) > limits.max_side:
        raise MediaRejected(
            "This image is %(width)s\u00d7%(height)s pixels; Kiln accepts images up to %(max)s pixels on a side.",
            code="too_large", width=str(w), height=str(h), max=str(limits.max_side),
        )
    if header.frames > limits.max_frames:
        raise MediaRejected(
            "This animation has %(frames)s frames; Kiln accepts animations of up to %(max)s frames.",
            code="too_large", frames=str(header.frames), max=str(limits.max_frames),
        )
    if header.frames * w * h > limits.max_animation_pixels:
        raise MediaRejected(
            "This animation is %(frames)s frames of %(width)s\u00d7%(height)s pixels, too much to show: Kiln "
            "accepts animations of up to %(megapixels)s megapixels in all frames together.",
            code="too_large", frames=str(header.frames), width=str(w), height=str(h),
            megapixels=_megapixels(limits.max_animation_pixels),
        )


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")
