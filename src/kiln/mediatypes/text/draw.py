"""Drawing text as a picture in the vendored DejaVu Sans Mono (fonts/, with its licence), light grey on
near-black like a terminal. The font has the box-drawing and block glyphs of scene art, and every
server draws the same pictures, whatever fonts it has installed."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path(__file__).with_name("fonts") / "DejaVuSansMono.ttf"
INK, PAPER = 210, 18  # grey levels
GLYPH_MARGIN = 2
MIN_COLUMNS = 20  # a picture of a two-word note is still a readable shape


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: one glyph per character, every advance the same, as in a terminal.
    return ImageFont.truetype(str(FONT), size, layout_engine=ImageFont.Layout.BASIC)


@cache
def _glyph(char: str, size: int) -> Image.Image:
    """One character drawn once as a mask, with room on both sides for glyphs wider than their cell
    (blocks, box lines): art repeats a few characters thousands of times, and pasting a cached mask
    is several times faster than laying out each line."""
    font = _font(size)
    ascent, descent = font.getmetrics()
    mask = Image.new("L", (math.ceil(font.getlength("M")) + 2 * GLYPH_MARGIN, ascent + descent), 0)
    ImageDraw.Draw(mask).text((GLYPH_MARGIN, 0), char, font=font, fill=255)
    return mask


def draw_text(rows: list[str], out: Path, font_size: int, min_height_ratio: float = 0.0) -> Path:
    """Write a greyscale PNG of ``rows`` (tabs already expanded) to ``out``; lines touch, as art expects.

    ``min_height_ratio`` pads a short text's picture below, to at least that fraction of its width, so a
    one-line note still makes a page-like thumbnail rather than a sliver."""
    font = _font(font_size)
    ascent, descent = font.getmetrics()
    line_height, cell = ascent + descent, font.getlength("M")
    pad = font_size // 2
    columns = max(MIN_COLUMNS, *(len(row) for row in rows))
    width = math.ceil(columns * cell) + 2 * pad
    size = (width, max(len(rows) * line_height + 2 * pad, round(width * min_height_ratio)))
    picture = Image.new("L", size, PAPER)
    for number, row in enumerate(rows):
        top = pad + number * line_height
        for column, char in enumerate(row):
            if not char.isspace():
                picture.paste(INK, (round(pad + column * cell) - GLYPH_MARGIN, top), _glyph(char, font_size))
    picture.save(out, "PNG", compress_level=1)
    return out
