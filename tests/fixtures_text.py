"""Text fixtures, written by code: text in several encodings, cp437 scene art with box drawing and a
SAUCE record, ANSI art, and the files the text kind must refuse.

``make_all`` gives files that must process; ``make_hostile`` files that must end refused or failed.
"""

from __future__ import annotations

from pathlib import Path

UTF8 = "Kiln ☃ publishes text\n\nCafé, naïve, Zoë — “quotes” and ✓ marks.\n\tA tabbed line.\n"
LATIN1 = "Ça été un très bon café à Noël.\nGrüße aus Köln, Straße 5.\n¿Dónde está el niño?\n"
UTF16 = "UTF-16 with a byte-order mark\r\n╔═══╗ boxes survive\r\n"
ASCII_ART = "\n".join([
    r"   _  ___ _      ",
    r"  | |/ (_) |_ __ ",
    r"  | ' /| | | '_ \ ",
    r"  | . \| | | | | |",
    r"  |_|\_\_|_|_| |_|",
])


def sauce(title: str, author: str, group: str, date: str, file_type: int, width: int) -> bytes:
    """A DOS end-of-file mark and a 128-byte SAUCE record (data type 1: character art)."""
    record = (b"SAUCE00" + title.encode("cp437").ljust(35) + author.encode("cp437").ljust(20)
              + group.encode("cp437").ljust(20) + date.encode() + (0).to_bytes(4, "little")
              + bytes([1, file_type]) + width.to_bytes(2, "little") + bytes(6) + bytes(2) + bytes(22))
    assert len(record) == 128
    return b"\x1a" + record


SAUCE = sauce("Kiln scene art", "Ada", "Kiln Crew", "20240229", 0, 78)


def scene_nfo() -> bytes:
    """78-column cp437 art: a double-line frame, shaded blocks and a title, then DOS EOF and SAUCE."""
    width = 76
    rows = ["╔" + "═" * width + "╗"]
    rows += ["║" + ("░▒▓█" * 19) + "║"]
    rows += ["║" + "K I L N   ─   T E X T   A R T".center(width) + "║"]
    rows += ["║" + " " * width + "║"] * 3
    rows += ["║" + ("█▄▀ " * 19) + "║"]
    rows += ["╚" + "═" * width + "╝"]
    return ("\r\n".join(rows) + "\r\n").encode("cp437") + SAUCE


def ansi_art() -> bytes:
    """Colours (SGR), cursor-forward moves and a row of 60 half blocks with no line end, which a 40-column
    terminal (the width its SAUCE record gives) wraps, as ANSI editors write them."""
    return (b"\x1b[0m\x1b[1;33m\xdb\xdb\xdb\x1b[10C\x1b[0;36mKILN\x1b[0m\r\n"
            b"\x1b[44m\xb0\xb1\xb2\x1b[0m plain\r\n" + b"\xdf" * 60
            + sauce("Kiln ANSI", "Ada", "", "20240230", 1, 40))


def make_all(directory: Path) -> dict[str, Path]:
    files = {
        "utf8.txt": UTF8.encode("utf-8"),
        "scene.nfo": scene_nfo(),
        "latin1.txt": LATIN1.encode("latin-1"),
        "utf16.txt": b"\xff\xfe" + UTF16.encode("utf-16-le"),
        "ascii.asc": ASCII_ART.encode("ascii"),
        "ansi.ans": ansi_art(),
        "file_id.diz": ("▄▄ KILN v1.0 ▄▄\r\n░ text art ░\r\n═══════════════\r\n").encode("cp437"),
    }
    out = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        out[name.split(".")[0]] = path
    return out


def make_hostile(directory: Path) -> dict[str, Path]:
    utf16 = b"\xff\xfe" + UTF16.encode("utf-16-le")
    files = {
        "binary.txt": bytes(range(256)) * 16,
        "html.txt": b"<!DOCTYPE html>\n<html><body><script>alert(document.cookie)</script></body></html>\n",
        "svg.txt": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>\n',
        "playlist.txt": b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n",
        "script.txt": b"#!/bin/sh\nrm -rf ~\n",
        "long_line.txt": b"x" * 5000 + b"\n",
        "many_lines.txt": b"line\n" * 6000,
        "controls.txt": b"ring the bell\x07\x07 and back\x08space\n",
        "truncated_utf16.txt": utf16[:-3],
        "truncated_utf8.txt": UTF8.encode("utf-8")[: UTF8.encode("utf-8").index("“".encode()) + 1],
        "whitespace.txt": b" \r\n\t\r\n",
    }
    out = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        out[name.split(".")[0]] = path
    return out
