"""Still images: JPEG, PNG, WebP, GIF and TIFF.

Pixels go through libvips (shrink-on-load, streaming, little memory); EXIF is read with Pillow.
This package is the only place in Kiln that imports either library.

Renditions:

* ``medium`` fits in ``image.medium_size`` and ``thumbnail`` in ``image.thumbnail_size``; neither is
  ever enlarged. Both are upright (EXIF orientation applied), 8-bit sRGB or grey, keep the colour
  profile and nothing else (no EXIF, GPS, XMP, IPTC). Opaque pictures are JPEG; pictures with real
  transparency are WebP. An animated GIF or WebP gives a still of its first frame.
* The thumbnail is made from the medium when one was made earlier in the run and is big enough.
* ``metadata`` reports the displayed size, readable camera EXIF and the GPS position.
"""

from __future__ import annotations

from pathlib import Path

from kiln.config import Settings
from kiln.mediatypes.base import (
    Identified,
    MediaRejected,
    RenditionSpec,
    StepContext,
    StepDef,
    StepResult,
    TransientFailure,
)
from kiln.mediatypes.image.exif import read_exif
from kiln.mediatypes.image.pipeline import ALGORITHM_VERSION, Encoding, render
from kiln.mediatypes.image.sniff import Header, read_header, sniff

__all__ = ["KIND", "ImageKind"]

HEAD_BYTES = 64 * 1024


class ImageKind:
    name = "image"
    label = "Image"

    # Recognising ---------------------------------------------------------------------------------
    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        fmt = sniff(head)
        if fmt is None:
            return None
        header = read_header(path, fmt, settings.image)
        return Identified(
            kind=self.name,
            mime_type=fmt.mime_type,
            width=header.width,
            height=header.height,
            extra={"format": fmt.key, "orientation": header.orientation, "frames": header.frames},
        )

    # Planning -----------------------------------------------------------------------------------
    def steps(self, settings: Settings) -> list[StepDef]:
        image = settings.image
        common = {
            "version": ALGORITHM_VERSION,
            "jpeg_quality": image.jpeg_quality,
            "webp_quality": image.webp_quality,
            "format": "jpeg, or webp when transparent",
            "keep": "icc",
        }
        return [
            StepDef("medium", (RenditionSpec("medium", {**common, "size": image.medium_size}),)),
            StepDef("thumbnail", (RenditionSpec("thumbnail", {**common, "size": image.thumbnail_size}),)),
            StepDef("metadata"),
        ]

    # Running ------------------------------------------------------------------------------------
    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        image = ctx.settings.image
        encoding = Encoding(jpeg_quality=image.jpeg_quality, webp_quality=image.webp_quality)
        if step == "medium":
            header = self._header(ctx.source, ctx.settings)
            return StepResult(
                files=[render(ctx.source, header, image.medium_size, encoding, ctx.workdir, "medium")]
            )
        if step == "thumbnail":
            source = self._thumbnail_source(ctx)
            header = self._header(source, ctx.settings)
            return StepResult(
                files=[render(source, header, image.thumbnail_size, encoding, ctx.workdir, "thumbnail")]
            )
        if step == "metadata":
            header = self._header(ctx.source, ctx.settings)
            exif, gps = read_exif(header.exif, ctx.source if header.fmt.key == "tiff" else None)
            return StepResult(
                metadata={
                    "width": header.width,
                    "height": header.height,
                    "format": header.fmt.key,
                    "frames": header.frames,
                    "exif": exif,
                    "gps": gps,
                }
            )
        raise ValueError(f"The image kind has no step called {step!r}.")

    def _thumbnail_source(self, ctx: StepContext) -> Path:
        """The medium made earlier in this run is much cheaper to shrink than the original.

        It is used only when it is at least as large as the thumbnail asked for; otherwise (tiny
        medium setting, or no medium this run) the original is used.
        """
        medium = ctx.earlier.get("medium")
        if medium is None or not medium.path.is_file():
            return ctx.source
        if max(medium.width or 0, medium.height or 0) < ctx.settings.image.thumbnail_size:
            return ctx.source
        return medium.path

    @staticmethod
    def _header(path: Path, settings: Settings) -> Header:
        try:
            with path.open("rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError as exc:
            raise TransientFailure("The server could not read its working copy of this image.") from exc
        fmt = sniff(head)
        if fmt is None:
            raise MediaRejected("This file is not an image Kiln can read.", code="unsupported")
        return read_header(path, fmt, settings.image)


KIND = ImageKind()
