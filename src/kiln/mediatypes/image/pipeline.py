"""Making one downscaled rendition: shrink-on-load, upright, 8-bit, ICC kept, nothing else kept."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import pyvips

from kiln.config import ImageSettings
from kiln.mediatypes.base import ProducedFile
from kiln.mediatypes.image._vips import translate_errors
from kiln.mediatypes.image.decode import open_image
from kiln.mediatypes.image.sniff import Header

# Bump when the pixels or encodings this module produces change: it is part of every rendition's
# fingerprint, so existing renditions are remade.
ALGORITHM_VERSION = 1


@dataclass(frozen=True)
class Encoding:
    jpeg_quality: int
    webp_quality: int


def render(
    source: Path, header: Header, box: int, encoding: Encoding, out_dir: Path, name: str,
    settings: ImageSettings,
) -> ProducedFile:
    """Write ``name`` (fitting in a ``box`` x ``box`` square, never enlarged) into ``out_dir``.

    Opaque results are JPEG; results with real transparency are WebP. The only metadata kept is
    the colour profile: no EXIF, GPS, XMP or IPTC.
    """
    with translate_errors(header.fmt):
        image = open_image(source, header, box, out_dir, settings)
        image = image.thumbnail_image(box, height=box, size="down")  # also turns it upright
        image = _displayable(image)
        data, mime_type, suffix = _encode(image, encoding)
        path = out_dir / f"{name}{suffix}"
        path.write_bytes(data)
    return ProducedFile(name=name, path=path, mime_type=mime_type, width=image.width, height=image.height)


_GREY = {"b-w", "grey16"}


def _displayable(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB (or 8-bit grey), at most one alpha band: what every browser shows right.

    CMYK was already turned into sRGB by ``thumbnail_image`` (with the embedded profile, or
    libvips' built-in CMYK profile when there is none).
    """
    grey = image.interpretation in _GREY
    target = "b-w" if grey else "srgb"
    if image.interpretation != target or image.format != "uchar":
        # An interpretation libvips cannot convert keeps its numbers, cast below.
        with contextlib.suppress(pyvips.Error):
            image = image.colourspace(target)
    if image.format == "ushort":
        image = (image >> 8).cast("uchar")
    elif image.format != "uchar":
        image = image.cast("uchar")
    colour_bands = 1 if grey else 3
    alpha = image.hasalpha()
    wanted = colour_bands + (1 if alpha else 0)
    if image.bands > wanted:
        image = image.extract_band(0, n=wanted)
    elif image.bands < colour_bands:  # e.g. a 2-band image that is not grey + alpha
        image = image.extract_band(0).colourspace("b-w")
    return image.copy(interpretation="b-w" if image.bands <= 2 else "srgb")


def _encode(image: pyvips.Image, encoding: Encoding) -> tuple[bytes, str, str]:
    keep = pyvips.ForeignKeep.ICC
    if image.hasalpha():
        # Decide on the small result, held in memory so it is not computed twice.
        image = image.copy_memory()
        if image.extract_band(image.bands - 1).min() < 255:
            data = image.webpsave_buffer(Q=encoding.webp_quality, keep=keep, effort=4)
            return data, "image/webp", ".webp"
        image = image.extract_band(0, n=image.bands - 1)  # alpha present but fully opaque
    data = image.jpegsave_buffer(Q=encoding.jpeg_quality, keep=keep, optimize_coding=True)
    return data, "image/jpeg", ".jpg"
