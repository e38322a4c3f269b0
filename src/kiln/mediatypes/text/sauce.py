"""SAUCE records: the 128-byte trailer that scene art editors (ACiDDraw, PabloDraw, ...) append after
a DOS end-of-file mark (0x1A), naming the piece's title, author, group and date, and, for ANSI art,
the width it was drawn for. Layout: "SAUCE00", title 35, author 20, group 20, date CCYYMMDD, file
size 4, data type 1, file type 1, TInfo1..4 (2 each, little-endian), comments 1, flags 1, font 22.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

RECORD = 128
CHARACTER = 1  # data type of text art; its file types 0-2 are ASCII, ANSI and ANSiMation
TEXT_FILE_TYPES = (0, 1, 2)
MAX_WIDTH = 1000


def read_sauce(raw: bytes) -> dict[str, Any] | None:
    """The record's people-facing fields (empty ones left out), or None when the file has none."""
    if len(raw) < RECORD or not raw[-RECORD:].startswith(b"SAUCE00"):
        return None
    record = raw[-RECORD:]

    def text(start: int, end: int) -> str:
        return record[start:end].decode("cp437").replace("\x00", " ").strip()

    found: dict[str, Any] = {"title": text(7, 42), "author": text(42, 62), "group": text(62, 82)}
    with contextlib.suppress(ValueError):
        found["date"] = dt.datetime.strptime(record[82:90].decode("ascii"), "%Y%m%d").date().isoformat()
    width = int.from_bytes(record[96:98], "little")
    if record[94] == CHARACTER and record[95] in TEXT_FILE_TYPES and 0 < width <= MAX_WIDTH:
        found["width"] = width
    return {key: value for key, value in found.items() if value}
