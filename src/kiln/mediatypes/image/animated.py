"""Animated GIF and WebP keep moving on their page: an ``animated`` WebP rendition.

Animated WebP is what every current browser plays in a plain ``<img>`` (no player, no JavaScript,
no audio track to strip), libvips writes it straight from the decoded frames, and it is several
times smaller than the GIF. The frame count and the pixels of all frames together were checked
from the header before this runs (sniff.check_limits); the still ``medium`` and ``thumbnail``
show the first frame.
"""

from __future__ import annotations

from pathlib import Path

import pyvips

from kiln.mediatypes.base import ProducedFile
from kiln.mediatypes.image._vips import load, translate_errors
from kiln.mediatypes.image.decode import shrink_on_load
from kiln.mediatypes.image.pipeline import _displayable
from kiln.mediatypes.image.sniff import Header


def render_animation(source: Path, header: Header, box: int, quality: int, out_dir: Path) -> ProducedFile | None:
    """Write ``animated.webp`` fitting a ``box`` square (never enlarged), or return None for a still."""
    if header.frames < 2:
        return None
    with translate_errors(header.fmt):
        image = load(str(source), header.fmt, n=-1, **shrink_on_load(header, box))
        delays = image.get("delay") if image.get_typeof("delay") else None
        image = image.thumbnail_image(box, height=box, size="down")  # frame by frame (page-height)
        frame_height = image.get("page-height") if image.get_typeof("page-height") else image.height
        image = _displayable(image).copy()
        image.set_type(pyvips.GValue.gint_type, "page-height", frame_height)
        if delays:  # browsers play GIF delays of 0 and 10 ms as 100 ms; the WebP says so outright
            image.set_type(pyvips.GValue.array_int_type, "delay", [int(d) if d > 10 else 100 for d in delays])
        data = image.webpsave_buffer(Q=quality, keep=pyvips.ForeignKeep.NONE, effort=2, min_size=False)
        path = out_dir / "animated.webp"
        path.write_bytes(data)
    return ProducedFile(name="animated", path=path, mime_type="image/webp", width=image.width,
                        height=frame_height)
