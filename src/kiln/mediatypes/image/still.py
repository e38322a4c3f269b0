"""Web renditions from a still picture another kind made (a video frame, a PDF page, a waveform,
a rendered 3D model, text drawn in a monospace font).

Other kinds write a PNG or JPEG of their picture into the work directory and call
:func:`render_still` for each rendition they publish, so every kind's ``thumbnail`` and ``medium``
follow the same rules as images: never enlarged, web formats, no metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiln.config import Settings
from kiln.mediatypes.base import MediaRejected, ProducedFile
from kiln.mediatypes.image.pipeline import Encoding, render
from kiln.mediatypes.image.sniff import read_header, sniff


def render_still(still: Path, params: Mapping[str, Any], workdir: Path, name: str, settings: Settings) -> ProducedFile:
    """Write rendition ``name`` of the picture ``still`` (PNG/JPEG/WebP) from its spec's ``params``:
    fitting a ``size`` square, encoded at ``jpeg_quality`` / ``webp_quality`` (the image settings'
    when the spec does not name them). ``settings`` gives only the decoding limits, never the bytes."""
    with still.open("rb") as fh:
        fmt = sniff(fh.read(64))
    if fmt is None:
        raise MediaRejected("The picture made from this file could not be read.", code="internal")
    header = read_header(still, fmt, settings.image)
    encoding = encoding_of(params)
    return render(still, header, int(params["size"]), encoding, workdir, name, settings.image)


def still_params(settings: Settings, size: int) -> dict[str, Any]:
    """What shapes a still rendition's bytes, for a kind's spec: the box and both qualities."""
    return {"size": size, "jpeg_quality": settings.image.jpeg_quality, "webp_quality": settings.image.webp_quality}


def encoding_of(params: Mapping[str, Any]) -> Encoding:
    return Encoding(jpeg_quality=int(params["jpeg_quality"]), webp_quality=int(params["webp_quality"]))


def placeholder(picture: Path) -> str | None:
    """A blurhash of ``picture`` (a small rendition): a ~30-character string galleries paint as a
    blurred preview before the thumbnail arrives. None when the picture cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(picture) as image:
            image.draft("RGB", (64, 64))
            small = image.convert("RGB")
            small.thumbnail((64, 64))
            x, y = (4, 3) if small.width >= small.height else (3, 4)
            return _encode(small, x, y)
    except (OSError, UnidentifiedImageError, ValueError):
        return None


_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i)) % 83] for i in range(1, length + 1))


def _encode(small: Any, x: int, y: int) -> str:
    """The blurhash of an RGB picture, as the reference encoder makes it (woltapp/blurhash, whose C
    code ``blurhash.encode`` runs), with numpy: the reference computes a cosine and a power per pixel
    and component, and the package first copies the pixels through Python lists: ~2.5 ms for a
    64x48 picture, against ~0.1 ms here."""
    import math

    import numpy as np

    rgb = np.asarray(small, dtype=np.float64) / 255.0
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    height, width = linear.shape[:2]
    cos_x = np.cos(np.pi * np.outer(np.arange(x), np.arange(width)) / width)
    cos_y = np.cos(np.pi * np.outer(np.arange(y), np.arange(height)) / height)
    by_row = (cos_y @ linear.reshape(height, width * 3)).reshape(y, width, 3)
    factors = np.einsum("iq,jqc->jic", cos_x, by_row) * (2.0 / (width * height))
    factors[0, 0] /= 2  # the mean colour is not doubled
    flat = factors.reshape(-1, 3)
    dc, ac = flat[0], flat[1:]
    hash_ = _base83((x - 1) + (y - 1) * 9, 1)
    if len(ac):
        quantised = int(max(0, min(82, math.floor(float(np.abs(ac).max()) * 166 - 0.5))))
        maximum = (quantised + 1) / 166
        hash_ += _base83(quantised, 1)
    else:
        maximum = 1.0
        hash_ += _base83(0, 1)

    def srgb(value: float) -> int:
        v = max(0.0, min(1.0, value))
        return int(v * 12.92 * 255 + 0.5) if v <= 0.0031308 else int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)

    hash_ += _base83((srgb(dc[0]) << 16) + (srgb(dc[1]) << 8) + srgb(dc[2]), 4)
    quant = np.clip(np.floor(np.copysign(np.sqrt(np.abs(ac / maximum)), ac) * 9 + 9.5), 0, 18).astype(int)
    for r, g, b in quant:
        hash_ += _base83(int(r) * 19 * 19 + int(g) * 19 + int(b), 2)
    return hash_


@lru_cache(maxsize=4096)
def placeholder_src(blurhash: str | None, width: int | None = None, height: int | None = None) -> str | None:
    """The blurred placeholder as a ``data:`` URI of a tiny PNG (8 px on the long side, a few hundred
    bytes): galleries put it behind each thumbnail so the grid paints at once, with no JavaScript
    and nothing inline a Content-Security-Policy would block (``img-src data:`` must be allowed).
    The browser's smooth scaling does the blurring. None for a missing or invalid blurhash.
    Cached: a gallery page asks for the same few dozen again and again."""
    import base64
    import io

    import blurhash as codec

    if not blurhash or not codec.is_valid_blurhash(blurhash):
        return None
    if width and height and height > width:
        w, h = max(1, round(8 * width / height)), 8
    elif width and height:
        w, h = 8, max(1, round(8 * height / width))
    else:
        w, h = 8, 6
    try:
        picture = codec.decode(blurhash, w, h)
    except (ValueError, codec.BlurhashDecodeError):
        return None
    out = io.BytesIO()
    picture.save(out, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
