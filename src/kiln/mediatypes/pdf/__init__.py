"""PDF documents, read with pdfium (pypdfium2) in a separate, limited process (see reader.py).

Recognising: the file must *start* with ``%PDF-``. PDF readers accept up to 1 KiB of anything before
the header, which is exactly what PDF+HTML polyglots use, and no honest PDF writer puts bytes there;
so Kiln does not. A file that hides ``%PDF-`` behind other bytes, carries web-page markup where
browsers sniff (its first KiB or after its end), has no ``%%EOF`` near its end (cut off), needs a
password, declares more than ``document.max_pages`` pages or a page side longer than
``document.max_page_inches`` is refused at upload with a sentence saying so.

Renditions (all pictures: a user's PDF is never shown inline from Kiln's origin, since PDFs can
carry scripts and forms):

* ``medium``, ``thumbnail`` and ``thumbnail_2x`` (twice the thumbnail size): the first page, through
  the image rules (``render_still``); the thumbnails from the medium when it was made in the same run.
* ``page-1`` .. ``page-N``: the first ``document.pages_shown`` pages as JPEGs fitting
  ``document.page_width``, so the media page shows the document without JavaScript. The pages step
  reports progress page by page, and keeps their text layer in ``info["page_text"]`` (a list, one
  string per page, 64 KiB in all; null for scans), which the page offers below the pictures so the
  document can be read aloud, searched and copied from.
* ``metadata``: ``info`` gets ``pages``, ``pdf_version``, ``page_size_mm``, ``encrypted`` (true for
  documents locked with an owner password only: they open without one) and ``document`` (title,
  author, subject, keywords, creator, producer, created, modified, when present).
* Publishing the original "without camera data" gives the pages in a new document without that
  metadata (``strip_metadata``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kiln.config import Settings
from kiln.hookspecs import hookimpl
from kiln.i18n import N_
from kiln.mediatypes.base import (
    THUMBNAILS,
    Identified,
    MediaRejected,
    ProducedFile,
    RenditionSpec,
    StepContext,
    StepDef,
    StepResult,
    output_spec,
    thumbnail_specs,
    wanted_outputs,
)
from kiln.mediatypes.image.still import render_still
from kiln.mediatypes.pdf import reader

__all__ = ["KIND", "PdfKind"]

ALGORITHM_VERSION = 1
SNIFF_WINDOW = 1024  # PDF readers look this far for the header; browsers sniff about as far for HTML
MARKUP = (b"<html", b"<!doctype", b"<script", b"<body", b"<head", b"<svg", b"<iframe", b"<object", b"<embed")
METADATA_NAMES = {"Title": "title", "Author": "author", "Subject": "subject", "Keywords": "keywords",
                  "Creator": "creator", "Producer": "producer", "CreationDate": "created", "ModDate": "modified"}
MM_PER_POINT = 25.4 / 72
PAGE_TEXT_BYTES = 64 * 1024  # text of the pages shown kept for the page (screen readers, search engines)


class PdfKind:
    name = "pdf"
    label = N_("PDF document")
    order = 40
    served_types = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".webp": "image/webp"}
    inline_types = frozenset({".jpg", ".webp"})  # never the PDF, which can carry scripts
    settings_section = "document"
    formats = "PDF"
    file_extensions = frozenset({".pdf"})
    mime_extensions = {"application/pdf": ".pdf"}

    # Recognising ---------------------------------------------------------------------------------
    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        if not head.startswith(b"%PDF-"):
            if b"%PDF-" in head[:SNIFF_WINDOW] and b" obj" in head:
                raise MediaRejected("This file has something else in front of its PDF header (a trick used to "
                                    "disguise web pages as PDFs), so Kiln does not accept it.", code="polyglot")
            return None
        self._check_envelope(path, head)
        found = reader.probe(path, settings)
        return Identified(kind=self.name, mime_type="application/pdf",
                          extra={"pages": found.pages, "encrypted": found.encrypted})

    @staticmethod
    def _check_envelope(path: Path, head: bytes) -> None:
        """The cheap checks, before pdfium sees the file: markup where browsers sniff, and the end."""
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.seek(max(0, size - SNIFF_WINDOW))
            tail = fh.read()
        end = tail.rfind(b"%%EOF")
        after = tail[end:].lower() if end >= 0 else b""
        if any(tag in head[:SNIFF_WINDOW].lower() or tag in after for tag in MARKUP):
            raise MediaRejected("This PDF also contains a web page (HTML), a trick used to smuggle scripts, "
                                "so Kiln does not accept it.", code="polyglot")
        if end < 0:
            raise MediaRejected("This PDF is incomplete (its end is missing), probably cut off during the upload "
                                "or download. Upload the complete file.", code="corrupt")

    # Planning -----------------------------------------------------------------------------------
    def steps(self, settings: Settings) -> list[StepDef]:
        image, doc = settings.image, settings.document
        common = {"version": ALGORITHM_VERSION, "jpeg_quality": image.jpeg_quality,
                  "webp_quality": image.webp_quality, "page": 1}
        pages = {"version": ALGORITHM_VERSION, "count": doc.pages_shown, "width": doc.page_width,
                 "format": "jpeg", "quality": image.jpeg_quality}
        return [
            StepDef("medium", (RenditionSpec("medium", {**common, "size": image.medium_size}),)),
            StepDef("thumbnail", thumbnail_specs(common, image.thumbnail_size)),
            StepDef("metadata"),
            # Every page shown has a spec; later pages are optional: they exist only when the document has them.
            StepDef("pages", tuple(RenditionSpec(f"page-{n}", pages, optional=n > 1)
                                   for n in range(1, doc.pages_shown + 1))),
        ]

    # Running ------------------------------------------------------------------------------------
    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        settings = ctx.settings
        if step == "medium":
            return StepResult(files=[self._first_page(ctx, "medium", output_spec(ctx, self, "medium").params)])
        if step == "thumbnail":  # both sizes from one picture of the first page: the medium, or a fresh one
            outputs = wanted_outputs(ctx, self, THUMBNAILS)
            box = max(int(params["size"]) for params in outputs.values())
            medium = ctx.earlier.get("medium")
            if medium is not None and medium.path.is_file() and max(medium.width or 0, medium.height or 0) >= box:
                page = medium.path
            else:
                page = reader.draw_pages(ctx.source, ctx.workdir / "thumbnail-page", 1, 1, (box, box), "png", 0,
                                         settings)[0].path
            return StepResult(files=[render_still(page, params, ctx.workdir, name, settings)
                                     for name, params in outputs.items()])
        if step == "metadata":
            return StepResult(metadata=self._metadata(reader.probe(ctx.source, settings)))
        if step == "pages":
            return self._pages(ctx)
        raise ValueError(f"The PDF kind has no step called {step!r}.")

    def _first_page(self, ctx: StepContext, name: str, params: Mapping[str, Any]) -> ProducedFile:
        box = int(params["size"])
        drawn = reader.draw_pages(ctx.source, ctx.workdir / f"{name}-page", 1, 1, (box, box), "png", 0, ctx.settings)
        return render_still(drawn[0].path, params, ctx.workdir, name, ctx.settings)

    def _pages(self, ctx: StepContext) -> StepResult:
        params = output_spec(ctx, self, "page-1").params
        width = int(params["width"])
        count = min(int(params["count"]), reader.probe(ctx.source, ctx.settings).pages)
        drawn = reader.draw_pages(ctx.source, ctx.workdir / "pages", 1, count, (width, 2 * width),
                                  "jpeg", int(params["quality"]), ctx.settings,
                                  progress=lambda done: ctx.report_progress(done / count))
        files = [ProducedFile(name=f"page-{page.number}", path=page.path, mime_type="image/jpeg",
                              width=page.width, height=page.height) for page in drawn]
        return StepResult(files=files, metadata={"pages_shown": len(files), "page_text": _page_text(drawn)})

    def strip_metadata(self, source: Path, workdir: Path, settings: Settings) -> ProducedFile:
        """The original for publishing "without camera data": the same pages in a new document, without
        author, title, dates, software names, XMP, bookmarks and attachments."""
        out = workdir / "original-stripped.pdf"
        reader.strip(source, out, settings)
        return ProducedFile(name="original", path=out, mime_type="application/pdf")

    @staticmethod
    def _metadata(found: reader.Probe) -> dict[str, object]:
        document = {METADATA_NAMES[key]: _pdf_date(value) if key.endswith("Date") else value
                    for key, value in found.metadata.items() if key in METADATA_NAMES}
        return {
            "pages": found.pages,
            "pdf_version": found.version,
            "encrypted": found.encrypted,
            "page_size_mm": [round(found.width_pt * MM_PER_POINT), round(found.height_pt * MM_PER_POINT)],
            "document": {key: value for key, value in document.items() if value},
        }


def _page_text(drawn: list[reader.DrawnPage]) -> list[str] | None:
    """The text of the pages shown, one string per page, at most PAGE_TEXT_BYTES in all (later pages
    come back empty past that); None when the document has no text layer (a scan)."""
    texts, room = [], PAGE_TEXT_BYTES
    for page in drawn:
        kept = page.text.encode()[:room].decode("utf-8", "ignore")
        texts.append(kept)
        room -= len(kept.encode())
    return texts if any(texts) else None


def _pdf_date(value: str) -> str | None:
    """A PDF date (``D:20240229123000+01'00'``) as ISO 8601 (``2024-02-29T12:30:00``), or None."""
    found = re.match(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?", value.strip())
    if not found:
        return None
    year, month, day, hour, minute, second = (part or default for part, default in
                                              zip(found.groups(), ("", "01", "01", "00", "00", "00"), strict=True))
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}"


KIND = PdfKind()


@hookimpl
def kiln_media_kinds() -> list[PdfKind]:
    """Registered through the entry point ``pdf`` in pyproject.toml, as a plugin's kind would be."""
    return [KIND]
