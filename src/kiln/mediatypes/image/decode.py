"""Opening any supported image as a lazy libvips image, whoever decodes its pixels.

* JPEG, PNG, WebP, GIF, TIFF and AVIF: libvips' own loaders (with shrink-on-load where the
  format has one: JPEG DCT scaling, libwebp scaling).
* HEIC: pillow-heif (libheif + libde265), since the libvips wheel has no HEVC decoder. libheif
  applies the HEIF transformations (``irot``, ``imir``, ``clap``), so the pixels arrive upright and
  the EXIF orientation an iPhone also writes must not be applied a second time.
* Camera RAW: the largest embedded JPEG preview (see raw.py), read from memory by libvips' JPEG
  loader, turned upright with the orientation of the RAW's first directory; or, for files without
  a big enough preview, the sensor data decoded by LibRaw in a limited child (_libraw.py).

Callers check the header's limits before calling :func:`open_image`.
"""

from __future__ import annotations

from pathlib import Path

import pyvips

from kiln.config import ImageSettings
from kiln.i18n import N_
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.external import run_external
from kiln.mediatypes.image import _libraw as _libraw_child
from kiln.mediatypes.image import raw
from kiln.mediatypes.image._vips import FORMATS, load, load_jpeg_buffer
from kiln.mediatypes.image.sniff import Header


def open_image(source: Path, header: Header, box: int | None, workdir: Path, settings: ImageSettings) -> pyvips.Image:
    """``source`` as a libvips image; with ``box``, decoded no larger than needed for that box.
    ``workdir`` receives intermediate files (LibRaw's output).

    Call inside ``translate_errors(header.fmt)``.
    """
    fmt = header.fmt
    options = shrink_on_load(header, box) if box else {}
    if fmt.pixels == "heif":
        return _heic(source, header)
    if fmt.pixels == "raw" and header.preview is None:
        image = _libraw(source, header, box, workdir, settings)
        orientation = 1  # LibRaw turned it upright
    elif fmt.pixels == "raw" and header.preview is not None:
        image = load_jpeg_buffer(raw.preview_bytes(source, header.preview), **options)
        orientation = header.orientation
    else:
        return load(str(source), fmt, **options)
    image = image.copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return image


def _libraw(source: Path, header: Header, box: int | None, workdir: Path, settings: ImageSettings) -> pyvips.Image:
    """Demosaic the sensor data in a child process; at half size when that still fills ``box``."""
    half = box is not None and max(header.stored_width, header.stored_height) >= 2 * box
    out = workdir / f"sensor-{'half' if half else 'full'}.tif"
    if not out.is_file():
        run_external(_libraw_child.command(source, out, half), timeout=settings.raw_seconds,
                     memory_mb=settings.raw_memory_mb, what=N_("The camera RAW decoder"))
    return load(str(out), FORMATS["tiff"])


def shrink_on_load(header: Header, box: int) -> dict[str, object]:
    """Let the decoder skip detail the rendition cannot show (JPEG DCT scaling, libwebp scaling).

    Picks the largest factor in 2, 4, 8 that still leaves at least ``box`` pixels on the long side,
    so the final resize shrinks by less than 2x (more only past 16x, as 1/8 is JPEG's limit).
    PNG, GIF, TIFF, AVIF and HEIC have no such decoder shortcut.
    """
    factor = max(header.stored_width, header.stored_height) / box
    shrink = next((k for k in (8, 4, 2) if factor >= k), 1)
    if shrink == 1:
        return {}
    if header.fmt.loader == "jpegload":  # JPEG, and camera RAW previews
        return {"shrink": shrink}
    if header.fmt.key == "webp":
        return {"scale": 1 / shrink}
    return {}


def _heic(source: Path, header: Header) -> pyvips.Image:
    import numpy as np
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(str(source), convert_hdr_to_8bit=True)
        width, height = heif.size
        bands = len(heif.mode)
        if (width, height) != (header.stored_width, header.stored_height) or bands not in (1, 3, 4):
            raise MediaRejected("This HEIC file is damaged and cannot be read.", code="corrupt")
        if heif.stride == width * bands:
            pixels = heif.data  # the usual case: no copy
        else:  # rows padded for alignment: drop the padding
            rows = np.frombuffer(heif.data, dtype=np.uint8).reshape(height, heif.stride)
            pixels = np.ascontiguousarray(rows[:, : width * bands]).data
        icc = heif.info.get("icc_profile")
    except (ValueError, RuntimeError, EOFError, SyntaxError) as exc:  # what libheif's errors become
        raise MediaRejected("This HEIC file is damaged and cannot be read.", code="corrupt") from exc
    image = pyvips.Image.new_from_memory(pixels, width, height, bands, "uchar")
    image = image.copy(interpretation="b-w" if bands == 1 else "srgb")
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(icc))
    return image
