"""Images: JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC/HEIF and camera RAW (DNG, CR2, NEF, ARW).

Pixels go through libvips (shrink-on-load, streaming, little memory), except HEIC, which
pillow-heif decodes (decode.py), and camera RAW, whose embedded JPEG preview is used (raw.py).
EXIF is read with Pillow. This package is the only place in Kiln that imports these libraries.

Renditions:

* ``medium`` fits in ``image.medium_size`` and ``thumbnail`` in ``image.thumbnail_size``; neither is
  ever enlarged. Both are upright (EXIF orientation applied), 8-bit sRGB or grey, keep the colour
  profile and nothing else (no EXIF, GPS, XMP, IPTC). Opaque pictures are JPEG; pictures with real
  transparency are WebP. An animated GIF or WebP gives a still of its first frame.
* ``thumbnail_2x`` fits twice ``image.thumbnail_size``, for sharp galleries on phones; it is made in
  the thumbnail step, from the same source. A reprocess of an item that lacks it makes only it.
* The thumbnails are made from the medium when one was made earlier in the run and is big enough.
* ``animated`` (animated GIF and WebP only), made by the medium step, is an animated WebP fitting
  ``image.animation_size``. Its spec is optional: a still makes no such file and is not stale for it.
* ``metadata`` reports the displayed size, readable camera EXIF and the GPS position.
"""

from __future__ import annotations

import logging
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
    TransientFailure,
    output_spec,
    thumbnail_specs,
    wanted_outputs,
)
from kiln.mediatypes.image import raw
from kiln.mediatypes.image._vips import FORMATS
from kiln.mediatypes.image.animated import render_animation
from kiln.mediatypes.image.exif import read_exif
from kiln.mediatypes.image.pipeline import ALGORITHM_VERSION, Encoding, render
from kiln.mediatypes.image.sniff import Header, read_header, sniff
from kiln.mediatypes.image.strip import strip_file

__all__ = ["KIND", "ImageKind"]

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024


class ImageKind:
    name = "image"
    label = N_("Image")
    order = 10
    served_types = {".jpg": "image/jpeg", ".webp": "image/webp", ".png": "image/png", ".gif": "image/gif"}
    inline_types = frozenset(served_types)
    settings_section = "image"
    formats = N_("JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC, camera RAW (DNG, CR2, NEF, ARW)")
    file_extensions = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".tif", ".tiff",
                                 ".avif", ".heic", ".heif", ".hif", ".dng", ".cr2", ".nef", ".nrw", ".arw"})
    mime_extensions = {fmt.mime_type: fmt.extension for fmt in FORMATS.values()}

    # Recognising ---------------------------------------------------------------------------------
    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        fmt = sniff(head)
        if fmt is None:
            return None
        header = read_header(path, fmt, settings.image)
        return Identified(
            kind=self.name,
            width=header.width,
            height=header.height,
            mime_type=header.fmt.mime_type,
            extra={"format": header.fmt.key, "orientation": header.orientation, "frames": header.frames},
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
        animated = {"version": ALGORITHM_VERSION, "format": "webp", "webp_quality": image.webp_quality,
                    "size": image.animation_size}
        return [
            StepDef("medium", (RenditionSpec("medium", {**common, "size": image.medium_size}),
                               RenditionSpec("animated", animated, optional=True))),
            StepDef("thumbnail", thumbnail_specs(common, image.thumbnail_size)),
            StepDef("metadata"),
        ]

    # Reprocessing -------------------------------------------------------------------------------
    def is_current(self, spec: RenditionSpec, stored_params: Mapping[str, Any], identified: Identified) -> bool:
        """Would ``spec`` give the same bytes as the rendition made with ``stored_params``?

        Only a change of size can leave the bytes alone, and only when the picture was never
        shrunk: its displayed size fits in both the old and the new box, so both runs copy the
        whole picture (upright, re-encoded with the same settings). Any other change, or a
        rendition stored before specs were recorded (``{}``), needs recomputing.

        The thumbnails are held to a stricter rule: the picture must be *smaller* than both boxes. When the
        picture is exactly as large as the box, the first run made the thumbnail from the medium
        (one more JPEG generation), while a run of the thumbnail step alone reads the original.
        """
        new, old = dict(spec.params), dict(stored_params or {})
        if "size" not in new or "size" not in old:
            return False
        new_size, old_size = new.pop("size"), old.pop("size")
        if new != old or not identified.width or not identified.height:
            return False
        if not isinstance(new_size, int) or not isinstance(old_size, int):
            return False
        long_side = max(identified.width, identified.height)
        if spec.name in THUMBNAILS:
            return long_side < min(new_size, old_size)
        return long_side <= min(new_size, old_size)

    # Running ------------------------------------------------------------------------------------
    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        image = ctx.settings.image  # decoding limits only: the bytes follow the specs' params
        if step == "medium":
            params = output_spec(ctx, self, "medium").params
            header = self._header(ctx.source, ctx.settings)
            files = [render(ctx.source, header, int(params["size"]), _encoding(params), ctx.workdir, "medium",
                            image)]
            if header.frames > 1:
                ctx.report_progress(0.3)
                files += self._animation(ctx, header, output_spec(ctx, self, "animated").params)
            return StepResult(files=files)
        if step == "thumbnail":
            files = []
            for name, params in wanted_outputs(ctx, self, THUMBNAILS).items():
                source = self._thumbnail_source(ctx, int(params["size"]))
                header = self._header(source, ctx.settings)
                files.append(render(source, header, int(params["size"]), _encoding(params), ctx.workdir, name, image))
            return StepResult(files=files)
        if step == "metadata":
            header = self._header(ctx.source, ctx.settings)
            if header.fmt.pixels == "raw":
                exif, gps = read_exif(raw.exif_prefix(ctx.source))
            else:
                exif, gps = read_exif(header.exif, ctx.source if header.fmt.key == "tiff" else None)
            metadata = {
                "width": header.width,
                "height": header.height,
                "format": header.fmt.key,
                "frames": header.frames,
                "exif": exif,
                "gps": gps,
            }
            if header.sensor:
                metadata["sensor_size"] = list(header.sensor)
            return StepResult(metadata=metadata)
        raise ValueError(f"The image kind has no step called {step!r}.")

    def strip_metadata(self, source: Path, workdir: Path, settings: Settings) -> ProducedFile:
        """A copy of the original for publishing, without camera data or GPS: lossless for JPEG and
        PNG (see strip.py); other formats are re-encoded at full size keeping only the ICC profile.
        Camera RAW is refused: its sensor data cannot be published without the camera's metadata,
        and a JPEG in its place would not be the original."""
        header = self._header(source, settings)
        if header.fmt.pixels == "raw":
            raise MediaRejected(
                "A camera RAW (%(format)s) original cannot be published without its camera data. "
                "Publish it as it is, or keep it private.",
                code="unsupported", format=header.fmt.label,
            )
        try:
            path = strip_file(source, workdir, header.fmt.key, header.orientation)
        except LookupError:
            encoding = Encoding(jpeg_quality=95, webp_quality=95)
            return render(source, header, max(header.width, header.height), encoding, workdir, "original-stripped",
                          settings.image)
        return ProducedFile(name="original", path=path, mime_type=header.fmt.mime_type, width=header.width,
                            height=header.height)

    @staticmethod
    def _animation(ctx: StepContext, header: Header, params: Mapping[str, Any]) -> list[ProducedFile]:
        """The animated rendition, or none when a later frame is damaged: the still first frame
        is published anyway, as browsers would show the frames before the damage."""
        try:
            made = render_animation(ctx.source, header, int(params["size"]), int(params["webp_quality"]),
                                    ctx.workdir)
        except MediaRejected as exc:
            log.warning("animation of %s left out: %s", ctx.source.name, exc.message)
            return []
        return [made] if made else []

    def _thumbnail_source(self, ctx: StepContext, size: int) -> Path:
        """The medium made earlier in this run is much cheaper to shrink than the original.

        It is used only when it is at least as large as the thumbnail asked for; otherwise (tiny
        medium setting, or no medium this run) the original is used.
        """
        medium = ctx.earlier.get("medium")
        if medium is None or not medium.path.is_file():
            return ctx.source
        if max(medium.width or 0, medium.height or 0) < size:
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


def _encoding(params: Mapping[str, Any]) -> Encoding:
    return Encoding(jpeg_quality=int(params["jpeg_quality"]), webp_quality=int(params["webp_quality"]))


KIND = ImageKind()


@hookimpl
def kiln_media_kinds() -> list[ImageKind]:
    """Registered through the entry point ``image`` in pyproject.toml, as a plugin's kind would be."""
    return [KIND]
