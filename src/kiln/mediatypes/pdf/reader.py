"""Asking the pdfium child process (``_child.py``) about a PDF, and turning its answers into facts or
sentences a user understands.

pdfium is a large C++ parser; a hostile PDF can crash it or make it loop. It therefore never runs
in the web process or the worker: every question goes to a fresh child with an address-space cap
and a time limit (``run_external``), on the job's own copy of the file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.config import Settings
from kiln.i18n import N_
from kiln.mediatypes.base import MediaRejected
from kiln.mediatypes.external import run_external

CHILD = Path(__file__).with_name("_child.py")
POINTS_PER_INCH = 72


@dataclass(frozen=True)
class Probe:
    pages: int
    encrypted: bool
    version: str | None
    width_pt: float
    height_pt: float
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DrawnPage:
    number: int
    path: Path
    width: int
    height: int
    text: str = ""  # the page's text layer (empty for scans)


def _child(settings: Settings, *args: object, timeout: float, what: str,
           on_line: Callable[[bytes], None] | None = None) -> bytes:
    command = [sys.executable, "-I", str(CHILD), *(str(a) for a in args)]
    return run_external(command, timeout=timeout, memory_mb=settings.document.memory_mb, what=what,
                        on_line=on_line).stdout


def probe(path: Path, settings: Settings) -> Probe:
    """Page count, first page size and metadata, or MediaRejected; nothing is drawn."""
    doc = settings.document
    out = _child(settings, "probe", path, doc.max_pages, doc.max_page_inches * POINTS_PER_INCH,
                 timeout=doc.probe_seconds, what=N_("The PDF reader"))
    try:
        answer: dict[str, Any] = json.loads(out)
    except ValueError:
        raise MediaRejected("This PDF could not be read.", code="corrupt") from None
    if "refused" in answer:
        raise _refusal(answer, settings)
    return Probe(pages=answer["pages"], encrypted=answer["encrypted"], version=answer["version"],
                 width_pt=answer["width_pt"], height_pt=answer["height_pt"], metadata=answer["metadata"])


def _refusal(answer: dict[str, Any], settings: Settings) -> MediaRejected:
    code = answer["refused"]
    if code == "encrypted":
        return MediaRejected("This PDF is protected by a password, so Kiln cannot show its pages. Save a copy "
                             "without the password and upload that.", code="encrypted")
    if code == "too_many_pages":
        return MediaRejected("This PDF has %(pages)s pages; Kiln accepts documents of up to %(max)s pages.",
                             code="too_large", pages=answer["pages"], max=settings.document.max_pages)
    if code == "page_size":
        width, height = (answer[k] / POINTS_PER_INCH for k in ("width_pt", "height_pt"))
        if width <= 0 or height <= 0:
            return MediaRejected("Page %(page)s of this PDF has no size, so it cannot be shown.",
                                 code="corrupt", page=answer["page"])
        return MediaRejected("Page %(page)s of this PDF measures %(width)s\u00d7%(height)s inches; "
                             "Kiln accepts pages of up to %(max)s inches a side.", code="too_large",
                             page=answer["page"], width=round(width), height=round(height),
                             max=settings.document.max_page_inches)
    if code == "no_pages":
        return MediaRejected("This PDF has no pages.", code="corrupt")
    if code == "corrupt_page":
        return MediaRejected("Page %(page)s of this PDF is damaged.", code="corrupt", page=answer["page"])
    return MediaRejected("This PDF is damaged and cannot be read.", code="corrupt")


def draw_pages(path: Path, outdir: Path, first: int, last: int, box: tuple[int, int], fmt: str, quality: int,
               settings: Settings, progress: Callable[[int], None] = lambda done: None) -> list[DrawnPage]:
    """Draw pages ``first``..``last`` (1-based) into ``outdir``, fitting ``box``; ``progress(pages done)``
    is called as the child reports each finished page."""
    outdir.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if fmt == "png" else ".jpg"
    answers: list[dict[str, Any]] = []

    def on_line(line: bytes) -> None:
        if line.startswith(b"{"):
            answers.append(json.loads(line))
            progress(len(answers))

    timeout = settings.document.probe_seconds + settings.document.seconds_per_page * (last - first + 1)
    _child(settings, "render", path, outdir, first, last, box[0], box[1], fmt, quality,
           timeout=timeout, what=N_("The PDF renderer"), on_line=on_line)
    if answers and "refused" in answers[0]:
        raise _refusal(answers[0], settings)
    drawn = [DrawnPage(a["page"], outdir / f"page-{a['page']}{suffix}", a["width"], a["height"], a.get("text", ""))
             for a in answers]
    if not drawn:
        raise MediaRejected("No page of this PDF could be drawn.", code="corrupt")
    return drawn


def strip(path: Path, out: Path, settings: Settings) -> None:
    """Write to ``out`` a copy of the PDF's pages without its document metadata (see _child.py)."""
    answer = json.loads(_child(settings, "strip", path, out, timeout=settings.document.probe_seconds
                               + settings.document.seconds_per_page, what=N_("The PDF reader")) or b"{}")
    if "refused" in answer:
        raise _refusal(answer, settings)
