"""Profile pictures: square WebP renditions of an uploaded picture, upright, centre-cropped, with no
metadata (no EXIF, no GPS). The picture is recognised from its content and checked against the same
limits as an image upload (kiln.social.profiles calls this; only this package touches pyvips)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyvips

from kiln.config import ImageSettings
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.image._vips import translate_errors
from kiln.mediatypes.image.decode import open_image
from kiln.mediatypes.image.sniff import read_header, sniff


def square_avatars(source: Path, sizes: Sequence[int], workdir: Path, limits: ImageSettings,
                   quality: int = 82) -> dict[int, bytes]:
    """WebP bytes of a ``size`` x ``size`` square for each size. Raises MediaRejected for anything
    that is not a readable picture."""
    with source.open("rb") as fh:
        fmt = sniff(fh.read(64))
    if fmt is None:
        raise MediaRejected("This file is not a picture. Choose a JPEG, PNG, WebP, GIF or HEIC file.",
                            code="not_an_image")
    header = read_header(source, fmt, limits)
    biggest = max(sizes)
    with translate_errors(header.fmt):
        image = open_image(source, header, biggest * 2, workdir, limits)
        # One sequential read into a square at the biggest size, then everything else in memory.
        square = image.thumbnail_image(biggest, height=biggest, crop="centre").copy_memory()
        square = square.autorot()
        if square.interpretation not in ("srgb", "b-w"):
            square = square.colourspace("srgb")
        out: dict[int, bytes] = {}
        for size in sizes:
            small = square if size == biggest else square.resize(size / square.width)
            out[size] = small.webpsave_buffer(Q=quality, keep=pyvips.ForeignKeep.NONE)
    return out
