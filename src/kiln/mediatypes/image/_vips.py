"""libvips, hardened: the only loaders it may run are the formats Kiln sniffs itself.

Importing this module configures libvips for the whole process (only the image kind uses it):

* ``block_untrusted_set(True)`` -- the ``VIPS_BLOCK_UNTRUSTED`` switch, which blocks loaders
  libvips itself considers unsafe for hostile input (ImageMagick, PDF, SVG, matrix, ...);
* stricter still, every loader is blocked and only the JPEG, PNG, WebP, GIF, TIFF and HEIF (for
  AVIF) loaders are re-enabled, so even a mistake elsewhere cannot make libvips guess a format;
* the operation cache is off: workers process each file once, and a cache keyed on file names
  could hand back a stale image when a work directory is reused;
* only its warnings and errors reach Python's logging (``_quiet``).

It also turns libvips errors into Kiln's two outcomes: :class:`MediaRejected` (the file is bad)
and :class:`TransientFailure` (the machine is short of memory or disk).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyvips

from kiln.mediatypes.base import MediaRejected, TransientFailure


@dataclass(frozen=True)
class Format:
    key: str  # "jpeg", ...
    label: str  # for people: "JPEG"
    mime_type: str
    loader: str  # pyvips operation nickname: reads the header (and the pixels when ``pixels`` is "vips")
    vips_class: str  # GType name of the loader family, for the block list
    pixels: str = "vips"  # who decodes: "vips", "heif" (pillow-heif) or "raw" (the embedded JPEG preview)
    extension: str = ""  # the extension Kiln gives a stored original


FORMATS: dict[str, Format] = {
    f.key: f
    for f in (
        Format("jpeg", "JPEG", "image/jpeg", "jpegload", "VipsForeignLoadJpeg", extension=".jpg"),
        Format("png", "PNG", "image/png", "pngload", "VipsForeignLoadPng", extension=".png"),
        Format("webp", "WebP", "image/webp", "webpload", "VipsForeignLoadWebp", extension=".webp"),
        Format("gif", "GIF", "image/gif", "gifload", "VipsForeignLoadNsgif", extension=".gif"),
        Format("tiff", "TIFF", "image/tiff", "tiffload", "VipsForeignLoadTiff", extension=".tif"),
        # libvips' HEIF loader decodes AV1 (AVIF) but has no HEVC decoder: HEIC pixels come from
        # pillow-heif, while libvips still reads the header (size after irot/imir, EXIF, n-pages).
        Format("avif", "AVIF", "image/avif", "heifload", "VipsForeignLoadHeif", extension=".avif"),
        Format("heic", "HEIC", "image/heic", "heifload", "VipsForeignLoadHeif", pixels="heif",
               extension=".heic"),
        # Camera RAW: the header is Kiln's own TIFF walk (raw.py); pixels are the largest embedded
        # JPEG preview, decoded by libvips' JPEG loader from memory.
        Format("dng", "DNG", "image/x-adobe-dng", "jpegload", "VipsForeignLoadJpeg", pixels="raw",
               extension=".dng"),
        Format("cr2", "CR2", "image/x-canon-cr2", "jpegload", "VipsForeignLoadJpeg", pixels="raw",
               extension=".cr2"),
        Format("nef", "NEF", "image/x-nikon-nef", "jpegload", "VipsForeignLoadJpeg", pixels="raw",
               extension=".nef"),
        Format("arw", "ARW", "image/x-sony-arw", "jpegload", "VipsForeignLoadJpeg", pixels="raw",
               extension=".arw"),
    )
}


def _harden() -> None:
    if hasattr(pyvips, "block_untrusted_set"):
        pyvips.block_untrusted_set(True)
    if hasattr(pyvips, "operation_block_set"):
        pyvips.operation_block_set("VipsForeignLoad", True)
        for vips_class in {fmt.vips_class for fmt in FORMATS.values()}:
            pyvips.operation_block_set(vips_class, False)
    pyvips.cache_set_max(0)


def _quiet() -> None:
    """Only libvips' warnings and errors reach Python's logging. pyvips hands every GLib message of
    libvips to Python, its chatter too ("threadpool completed with 2 workers": about 15 lines an image),
    each a call into Python from a libvips thread (which waits for the GIL) and, in a worker logging at
    INFO, a formatted line written out."""
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    glib, handler, callback = (getattr(pyvips, name, None) for name in ("glib_lib", "_log_handler_id",
                                                                          "_log_handler_cb"))
    if glib is None or handler is None or callback is None:
        return
    domain = b"VIPS"
    glib.g_log_remove_handler(domain, handler)
    wanted = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 1) | (1 << 0)  # error, critical, warning; fatal, recursion
    pyvips._log_handler_id = glib.g_log_set_handler(domain, wanted, callback, pyvips.ffi.NULL)


_harden()
_quiet()


def load(path: str, fmt: Format, **options: object) -> pyvips.Image:
    """Open ``path`` with the loader for ``fmt`` only. Pixels are decoded lazily, top to bottom.

    ``fail_on="truncated"`` makes a cut-off file an error instead of a grey-padded picture.
    """
    loader = getattr(pyvips.Image, fmt.loader)
    return loader(path, access="sequential", fail_on="truncated", **options)


def load_jpeg_buffer(data: bytes, **options: object) -> pyvips.Image:
    """A JPEG held in memory (a camera RAW's embedded preview), opened like :func:`load`."""
    return pyvips.Image.jpegload_buffer(data, access="sequential", fail_on="truncated", **options)


_TRANSIENT_WORDS = ("out of memory", "cannot allocate memory", "no space left", "disk quota")


@contextmanager
def translate_errors(fmt: Format) -> Iterator[None]:
    """Let no raw pyvips.Error, MemoryError or OSError escape a step."""
    try:
        yield
    except (MediaRejected, TransientFailure):
        raise
    except MemoryError as exc:
        raise TransientFailure("The server ran out of memory while processing this image.") from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise TransientFailure("The server's disk is full; this image will be retried.") from exc
        raise TransientFailure("The server could not read or write a working file.") from exc
    except pyvips.Error as exc:
        detail = f"{exc.message} {exc.detail}".lower()
        if any(word in detail for word in _TRANSIENT_WORDS):
            raise TransientFailure(
                "The server ran short of memory or disk while processing this image."
            ) from exc
        raise MediaRejected("This %(format)s file is damaged and cannot be read.", code="corrupt",
                            format=fmt.label) from exc
