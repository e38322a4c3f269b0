"""Text art: ``.txt``, ``.nfo``, ``.asc``, ``.diz`` and ``.ans`` files, in any common encoding.

Content alone cannot tell a text file from a file of a kind Kiln does not know, so this kind is asked
only for uploads named with one of its extensions (``needs_name``), and last. It then refuses, with a
sentence saying why, anything that is not plain text: binary data, web pages, SVG, scripts, media
playlists (see decode.py), files over ``text.max_bytes``, with more than ``text.max_lines`` lines or
a line longer than ``text.max_columns``.

Renditions:

* ``text``: the decoded text as UTF-8 (``text/plain; charset=utf-8``), line ends ``\\n``, ANSI escape
  sequences removed; the page links to it.
* ``medium``: a picture of the first ``text.picture_lines`` lines in a monospace font (draw.py);
  ``thumbnail``: a picture of the top of the text, about as tall as it is wide. Both go through the
  image rules (``render_still``).
* ``info``: ``encoding`` (as detected: utf-8, ascii, cp437, iso-8859-1, utf-16, ...), ``lines``,
  ``columns``, ``ansi`` (escape sequences were removed), ``sauce`` (title, author, group, date and
  width from a SAUCE record, see sauce.py; null without one) and ``text``: the first ``text.page_text_bytes``
  of the decoded text, with ``text_truncated``. The media page shows it in a ``<pre>``. It is kept in
  the entry rather than read from the rendition because a page is rendered from the database alone
  (renditions may live in an object store), Jinja escapes it, and text art is small: most ``.nfo``
  files are a few KiB, so the page shows them whole while a 1 MiB text still costs the page little.
* Publishing the original "without camera data" leaves out a SAUCE record (``strip_metadata``).
"""

from __future__ import annotations

from pathlib import Path

from kiln.config import Settings
from kiln.hookspecs import hookimpl
from kiln.i18n import N_
from kiln.mediatypes.base import (
    THUMBNAILS,
    Identified,
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
from kiln.mediatypes.text.decode import Decoded, read_text
from kiln.mediatypes.text.draw import FONT, draw_text

__all__ = ["KIND", "TextKind"]

ALGORITHM_VERSION = 1
THUMBNAIL_LINES = [8, 40]  # fewest and most lines in the thumbnail picture
THUMBNAIL_SHAPE = 0.6  # a thumbnail is at least this tall for its width (short texts are padded)


class TextKind:
    name = "text"
    label = N_("Text document")
    order = 90  # asked last: almost anything named .txt decodes as text
    served_types = {".txt": "text/plain; charset=utf-8", ".jpg": "image/jpeg", ".webp": "image/webp"}
    inline_types = frozenset({".jpg", ".webp"})
    settings_section = "text"
    formats = N_("plain text and text art: .txt, .nfo, .asc, .diz, .ans")
    file_extensions = frozenset({".txt", ".nfo", ".asc", ".diz", ".ans"})
    mime_extensions = {"text/plain": ".txt"}
    needs_name = True

    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        decoded = read_text(path, settings.text)
        return Identified(kind=self.name, mime_type="text/plain",
                          extra={"encoding": decoded.encoding, "lines": decoded.lines, "columns": decoded.columns})

    def steps(self, settings: Settings) -> list[StepDef]:
        text, image = settings.text, settings.image
        drawn = {"version": ALGORITHM_VERSION, "font": FONT.name, "font_size": text.font_size,
                 "tab_size": text.tab_size, "jpeg_quality": image.jpeg_quality, "webp_quality": image.webp_quality}
        return [
            StepDef("text", (RenditionSpec("text", {"version": ALGORITHM_VERSION, "charset": "utf-8",
                                                    "page_text_bytes": text.page_text_bytes}),)),
            StepDef("medium", (RenditionSpec("medium", {**drawn, "size": image.medium_size,
                                                        "lines": text.picture_lines}),)),
            StepDef("thumbnail", thumbnail_specs({**drawn, "lines": THUMBNAIL_LINES, "shape": THUMBNAIL_SHAPE},
                                                 image.thumbnail_size)),
        ]

    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        settings = ctx.settings
        decoded = read_text(ctx.source, settings.text)
        if step == "text":
            return self._text(decoded, ctx)
        params = output_spec(ctx, self, step).params if step in ("medium", "thumbnail") else {}
        rows = [row.expandtabs(int(params.get("tab_size", 8))) for row in decoded.text.split("\n")]
        if step == "medium":
            picture = draw_text(rows[: int(params["lines"])], ctx.workdir / "medium-text.png",
                                int(params["font_size"]))
            return StepResult(files=[render_still(picture, params, ctx.workdir, "medium",
                                                  settings)])
        if step == "thumbnail":
            fewest, most = THUMBNAIL_LINES
            # Character cells are about twice as tall as wide: columns / 2 lines make a square-ish picture.
            count = max(fewest, min(most, decoded.columns // 2))
            picture = draw_text(rows[:count], ctx.workdir / "thumbnail-text.png", int(params["font_size"]),
                                min_height_ratio=THUMBNAIL_SHAPE)
            return StepResult(files=[render_still(picture, shaped, ctx.workdir, name, settings)
                                     for name, shaped in wanted_outputs(ctx, self, THUMBNAILS).items()])
        raise ValueError(f"The text kind has no step called {step!r}.")

    def strip_metadata(self, source: Path, workdir: Path, settings: Settings) -> ProducedFile:
        """The original for publishing "without camera data": its bytes up to the DOS end-of-file mark,
        leaving out the SAUCE record after it (title, author, group, date). Only in encodings where
        byte 0x1A can be nothing else; other files are published as they are."""
        data = source.read_bytes()
        if read_text(source, settings.text).encoding not in ("utf-16", "utf-32"):
            data = data.split(b"\x1a", 1)[0]
        out = workdir / "original-stripped.txt"
        out.write_bytes(data)
        return ProducedFile(name="original", path=out, mime_type="text/plain")

    @staticmethod
    def _text(decoded: Decoded, ctx: StepContext) -> StepResult:
        data = decoded.text.encode("utf-8") + b"\n"
        out = ctx.workdir / "text.txt"
        out.write_bytes(data)
        limit = int(output_spec(ctx, KIND, "text").params["page_text_bytes"])
        shown = data[:limit].decode("utf-8", "ignore")  # never ends in half a character
        return StepResult(
            files=[ProducedFile(name="text", path=out, mime_type="text/plain; charset=utf-8")],
            metadata={"encoding": decoded.encoding, "lines": decoded.lines, "columns": decoded.columns,
                      "ansi": decoded.ansi, "sauce": decoded.sauce, "text": shown.rstrip("\n"),
                      "text_truncated": len(data) > limit},
        )


KIND = TextKind()


@hookimpl
def kiln_media_kinds() -> list[TextKind]:
    """Registered through the entry point ``text`` in pyproject.toml, as a plugin's kind would be."""
    return [KIND]
