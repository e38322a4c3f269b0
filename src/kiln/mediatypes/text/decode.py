"""Reading a text file: refusing what is not plain text, finding its encoding, tidying it for display.

The encoding is decided in this order, deliberately, because detectors guess badly on short texts
and on DOS-era art:

1. a byte-order mark (UTF-8, UTF-16, UTF-32);
2. UTF-8, if the bytes are valid UTF-8 (reported as ``ascii`` when they are all 7-bit);
3. code page 437 (the IBM PC character set of scene ``.nfo``/``.diz``/``.ans`` art) when most bytes above
   0x7F fall in its box-drawing and block range 0xB0-0xDF and some repeat in runs (``═══``, ``███``),
   as drawn lines do and words in other encodings do not;
4. Windows-1252 / ISO 8859-1 when every non-ASCII character it gives is a Western European letter or
   common punctuation, and such letters are a minority among the letters: charset-normalizer tends to
   call French or German Latin-1 text ``cp1250`` and turn ``è`` into ``č``;
5. otherwise charset-normalizer's best guess (Cyrillic, Greek, CJK, ...).

Then: ANSI escape sequences are removed (cursor-forward moves become spaces, colours are dropped) and
ANSI art is wrapped at its width (80, or its SAUCE record's) as a terminal would; everything after a
DOS end-of-file mark (0x1A, where the SAUCE record lives) is ignored, and line ends become ``\\n``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.config import TextSettings
from kiln.i18n import N_, Size
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.text.sauce import read_sauce

BOMS = ((b"\xef\xbb\xbf", "utf-8-sig", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32-be", "utf-32"), (b"\xff\xfe", "utf-16-le", "utf-16"),
        (b"\xfe\xff", "utf-16-be", "utf-16"))
HIGH_BYTES = bytes(range(0x80, 0x100))
BOX_BYTES = bytes(range(0xB0, 0xE0))
LETTER, ASCII_LETTER = re.compile(r"[^\W\d_]"), re.compile(r"[A-Za-z]")
ANSI_WIDTH = 80  # the terminal ANSI art is drawn for, unless its SAUCE record says otherwise
WESTERN = set("ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿŒœŠšŽžŸƒ"
              "¡¢£¤¥¦§¨©ª«¬\xad®¯°±²³´µ¶·¸¹º»¼½¾¿×÷€‚„…†‡ˆ‰‹›‘’“”•–—˜™\xa0")
ALLOWED_CONTROLS = set("\t\n\r\f\x1b")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
CURSOR_FORWARD = re.compile(r"\x1b\[(\d*)C")
ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")
NOT_TEXT = (
    (re.compile(r"#EXTM3U|#EXT-X-", re.I),
     N_("This file is a media playlist, not a text document, so Kiln does not publish it."), "playlist"),
    (re.compile(r"<\?php|\A\s*#!", re.I),
     N_("This file is a script, not a text document, so Kiln does not publish it."), "script"),
    (re.compile(r"<svg\b", re.I),
     N_("This file is an SVG drawing (which can carry scripts), not a text document, so Kiln does not publish it."),
     "svg"),
    (re.compile(r"<(!doctype\s+html|html|head|body|script|iframe|object|embed|meta|form|style)\b", re.I),
     N_("This file is a web page (HTML), not a text document, so Kiln does not publish it."), "html"),
)


@dataclass(frozen=True)
class Decoded:
    text: str  # line ends are \n, escape sequences removed, tabs kept
    encoding: str  # as people know it: utf-8, ascii, cp437, windows-1252, utf-16, ...
    lines: int
    columns: int  # the longest line, tabs expanded
    ansi: bool  # escape sequences were removed
    sauce: dict[str, Any] | None  # the SAUCE record's title, author, group, date, width (sauce.py)


def read_text(path: Path, settings: TextSettings) -> Decoded:
    """The file's text, or MediaRejected with a sentence saying why it is not acceptable text."""
    size = path.stat().st_size
    if size > settings.max_bytes:
        raise MediaRejected("This text file is %(size)s; Kiln accepts text files of up to %(limit)s.",
                            code="too_large", size=Size(size), limit=Size(settings.max_bytes))
    raw = path.read_bytes()
    text, encoding = _decode(raw)
    eof = text.find("\x1a")
    if eof >= 0:
        text = text[:eof]
    bad = CONTROL.search(text)
    if bad:
        raise MediaRejected("This file contains binary data (byte %(byte)s at character %(position)s), not text. "
                            "Kiln publishes plain text files only.", code="binary",
                            byte=format(ord(bad.group()), "#04x"), position=bad.start())
    _refuse_disguised(text)
    sauce = read_sauce(raw)
    ansi = "\x1b" in text
    if ansi:
        text = CURSOR_FORWARD.sub(lambda m: " " * min(int(m.group(1) or 1), settings.max_columns), text)
        text = ESCAPE.sub("", text).replace("\x1b", "")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").rstrip("\n")
    if ansi:  # a terminal wraps at its width: rows drawn full width carry no line end
        text = _wrap(text, (sauce or {}).get("width", ANSI_WIDTH))
    rows = text.split("\n")
    if not text.strip():
        raise MediaRejected("This text file has no visible text.", code="empty")
    if len(rows) > settings.max_lines:
        raise MediaRejected("This text file has %(lines)s lines; Kiln accepts up to %(max)s.",
                            code="too_large", lines=len(rows), max=settings.max_lines)
    columns = max(len(row.expandtabs(settings.tab_size)) for row in rows)
    if columns > settings.max_columns:
        raise MediaRejected("This text file has a line %(columns)s characters long; Kiln accepts lines of up to "
                            "%(max)s characters.", code="too_large", columns=columns, max=settings.max_columns)
    return Decoded(text=text, encoding=encoding, lines=len(rows), columns=columns, ansi=ansi, sauce=sauce)


def _wrap(text: str, width: int) -> str:
    return "\n".join(row[i:i + width] for row in text.split("\n") for i in range(0, max(len(row), 1), width))


def _decode(raw: bytes) -> tuple[str, str]:
    for bom, codec, name in BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(codec).removeprefix("\ufeff"), name
            except UnicodeDecodeError:
                raise MediaRejected("This file starts like %(encoding)s text but is not valid %(encoding)s "
                                    "(it may be cut off or damaged).",
                                    code="binary", encoding=name.upper()) from None
    raw = raw.split(b"\x1a", 1)[0]  # DOS end of file: a SAUCE record (with NUL bytes) may follow
    if b"\x00" in raw:
        raise MediaRejected("This file contains binary data (NUL bytes), not text. Kiln publishes plain text "
                            "files only.", code="binary")
    try:
        return raw.decode("utf-8"), "ascii" if raw.isascii() else "utf-8"
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(raw) - 3:
            raise MediaRejected("This UTF-8 text ends in the middle of a character: it was probably cut off. "
                                "Upload the complete file.", code="corrupt") from None
    if _looks_like_cp437_art(raw):
        return raw.decode("cp437"), "cp437"
    try:
        western = raw.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if western is not None and _looks_western(western):
        return western, "windows-1252" if re.search(rb"[\x80-\x9f]", raw) else "iso-8859-1"
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise MediaRejected("Kiln could not tell which character set this text file uses; save it as UTF-8 "
                            "and upload it again.", code="encoding")
    return str(best), best.encoding.replace("_", "-")


def _looks_like_cp437_art(raw: bytes) -> bool:
    high = len(raw) - len(raw.translate(None, HIGH_BYTES))
    box = len(raw) - len(raw.translate(None, BOX_BYTES))
    if not high or box < high / 2:
        return False
    return re.search(rb"([\xb0-\xdf])\1\1", raw) is not None


def _looks_western(text: str) -> bool:
    """Accented letters sprinkled among plain ones, all of them Western European: French, German,
    Spanish... Text in Cyrillic or Greek single-byte encodings decodes to Latin-1 letters too, but then
    nearly every letter is non-ASCII."""
    if not all(ch in WESTERN for ch in set(text) if ord(ch) > 0x7F):
        return False
    letters = len(LETTER.findall(text))
    return letters - len(ASCII_LETTER.findall(text)) <= 0.3 * letters


def _refuse_disguised(text: str) -> None:
    start = text[:4096]
    for pattern, sentence, code in NOT_TEXT:
        if pattern.search(start):
            raise MediaRejected(sentence, code=code)
