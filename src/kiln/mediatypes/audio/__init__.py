"""Audio: MP3, FLAC, Ogg Vorbis/Opus, WAV, AIFF and M4A/AAC.

Recognised from content (``sniff.py``), refused early when cut off or longer than
``audio.max_duration_seconds`` (the probe reads only headers), then decoded by ffmpeg in a
limited child process (``decode.py``) and drawn with numpy (``draw.py``).

Renditions:

* ``peaks`` (JSON: ``audio.waveform_peaks`` loudest-sample values 0..1, and the duration), which
  the player draws and seeks on; ``waveform``, the same as a transparent PNG for pages without
  JavaScript; ``thumbnail`` (and ``thumbnail_2x``, twice its size, for phones), the waveform as bars
  on a dark ground (the issue asks galleries to show the waveform, also for music with cover art).
* ``medium``: the cover art when the file carries one, otherwise a large waveform picture.
* ``audio``: what every current browser plays. An MP3, or AAC in M4A/MP4, up to 320 kbit/s and
  stereo is copied as it is (no second lossy generation, and instant); anything else becomes
  AAC-LC in M4A with its index first. AAC over Opus or MP3: Safari and iOS play it everywhere
  (Opus in Ogg is not dependable there), it sounds better than MP3 at the same bitrate, and it is
  the video ladder's audio codec; ffmpeg's ``fast`` AAC coder runs ~1.5x quicker than its default
  with no audible loss at 128 kbit/s.
* ``spectrogram``: frequencies over time, as MediaGoblin shows (optional: its failure leaves the
  item published).

Info keys: duration, container, audio_codec, sample_rate, channels, bit_rate, tags (title,
artist, album, ...), cover (true when cover art is shown as the medium), audio_copied (the
original's sound published without re-encoding) and spectrogram_max_hz.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiln.config import Settings
from kiln.hookspecs import hookimpl
from kiln.i18n import N_
from kiln.mediatypes._ffmpeg import Probe, probe
from kiln.mediatypes.audio import decode, draw
from kiln.mediatypes.audio.sniff import FORMATS, Format, check_complete, ogg_tags, sniff
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
    wanted,
    wanted_outputs,
)
from kiln.mediatypes.image.still import render_still

__all__ = ["KIND", "AudioKind"]

VERSION = 1  # bump when a drawing or encoding change alters renditions made with the same settings
WAVEFORM_SIZE = (1200, 120)  # the page's waveform picture
THUMB_STILL = (480, 360)  # drawn, then fitted into image.thumbnail_size
GROUND, BARS, PAGE_BARS = (28, 36, 48), (120, 190, 240), (60, 110, 170)
MAX_SAMPLE_RATE, MAX_CHANNELS = 768_000, 64
KEPT_TAGS = ("title", "artist", "album", "album_artist", "composer", "genre", "date", "track")


class AudioKind:
    name = "audio"
    label = N_("Audio")
    order = 30
    served_types = {".m4a": "audio/mp4", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg",
                    ".flac": "audio/flac", ".wav": "audio/wav", ".aiff": "audio/aiff", ".json": "application/json",
                    ".jpg": "image/jpeg", ".webp": "image/webp", ".png": "image/png", ".vtt": "text/vtt; charset=utf-8"}
    inline_types = frozenset(served_types) - {".json", ".vtt"}  # peaks and captions are data
    settings_section = "audio"
    formats = "MP3, FLAC, Ogg Vorbis, Opus, WAV, AIFF, M4A/AAC"
    file_extensions = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".wave", ".aif", ".aiff",
                                 ".aifc", ".m4a", ".m4b"})
    mime_extensions = {"audio/mpeg": ".mp3", "audio/flac": ".flac", "audio/ogg": ".ogg", "audio/wav": ".wav",
                       "audio/aiff": ".aiff", "audio/mp4": ".m4a"}

    # Recognising ---------------------------------------------------------------------------------
    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        fmt = sniff(path, head)
        if fmt is None:
            return None
        counted = check_complete(path, fmt)
        found = probe(path, settings, frozenset({fmt.demuxer}), what=N_("This audio file"))
        if counted:  # an MP3's frames, counted: exact where the header only estimates
            found = replace(found, duration=counted)
        if found.video is not None:
            return None  # a video (the video kind, asked first, decides about those)
        stream = found.audio
        if stream is None:
            raise MediaRejected("This file holds no sound.", code="corrupt")
        limit = settings.audio.max_duration_seconds
        if found.duration > limit:
            raise MediaRejected("This recording says it lasts %(duration)s; this site accepts audio up to %(limit)s.",
                                code="too_long", duration=decode.clock(found.duration), limit=decode.clock(limit))
        if found.duration <= 0:
            raise MediaRejected("This audio file does not say how long it is, so it cannot be checked safely.",
                                code="corrupt")
        if not 0 < (stream.sample_rate or 0) <= MAX_SAMPLE_RATE or not 0 < (stream.channels or 0) <= MAX_CHANNELS:
            raise MediaRejected("This audio file declares %(channels)s channels at %(rate)s Hz, "
                                "which no recording has: it is damaged.", code="corrupt",
                                channels=str(stream.channels), rate=str(stream.sample_rate))
        tags = ogg_tags(head) if fmt.key == "ogg" else {}
        return Identified(kind=self.name, mime_type=fmt.mime_type, extra=_facts(fmt, found, tags))

    # Planning -----------------------------------------------------------------------------------
    def steps(self, settings: Settings) -> list[StepDef]:
        audio, image = settings.audio, settings.image
        drawn = {"version": VERSION, "peaks": audio.waveform_peaks}
        return [
            StepDef("metadata"),
            StepDef("waveform", (
                RenditionSpec("peaks", drawn),
                RenditionSpec("waveform", {**drawn, "size": list(WAVEFORM_SIZE)}),
                *thumbnail_specs({**drawn, "jpeg_quality": image.jpeg_quality, "webp_quality": image.webp_quality},
                                 image.thumbnail_size),
            )),
            StepDef("medium", (RenditionSpec("medium", {
                **drawn, "size": image.medium_size, "jpeg_quality": image.jpeg_quality,
                "webp_quality": image.webp_quality, "picture": "cover art, else the waveform"}),)),
            StepDef("transcode", (RenditionSpec("audio", {
                "version": VERSION, "codec": "aac", "container": "m4a", "bitrate_kbps": audio.bitrate_kbps,
                "copied": "mp3 and aac up to 320 kbit/s"}),)),
            StepDef("spectrogram", (RenditionSpec("spectrogram", {
                "version": VERSION, "width": audio.spectrogram_width, "fft": draw.FFT_SIZE,
                "jpeg_quality": image.jpeg_quality, "webp_quality": image.webp_quality}),), required=False),
        ]

    # Running ------------------------------------------------------------------------------------
    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        facts = ctx.identified.extra
        if step == "metadata":
            return StepResult(metadata=_info(facts))
        if step == "waveform":
            return self._waveform(ctx)
        if step == "medium":
            return self._medium(ctx)
        if step == "transcode":
            copy = decode.copyable(facts["format"], facts["codec"], facts["channels"], facts["sample_rate"],
                                   facts["bit_rate"])
            target, mime = decode.transcode(ctx.source, facts["demuxer"], facts["duration"], facts["channels"],
                                            facts["sample_rate"], ctx.settings, ctx.workdir, ctx.report_progress,
                                            copy, int(output_spec(ctx, self, "audio").params["bitrate_kbps"]))
            return StepResult(files=[ProducedFile("audio", target, mime)], metadata={"audio_copied": bool(copy)})
        if step == "spectrogram":
            return self._spectrogram(ctx)
        raise ValueError(f"The audio kind has no step called {step!r}.")

    def strip_metadata(self, source: Path, workdir: Path, settings: Settings) -> ProducedFile:
        """A copy of the original for publishing without its tags (names, comments, cover art):
        the sound is copied bit for bit into the same container."""
        with source.open("rb") as fh:
            found = self.identify(source, fh.read(64 * 1024), settings)
        if found is None:
            raise MediaRejected("This file is no longer audio Kiln can read.", code="unsupported")
        facts = found.extra
        target = workdir / f"original-stripped{FORMATS[facts['format']].extension}"
        decode.without_tags(source, facts["format"], facts["demuxer"], settings, target)
        return ProducedFile(name="original", path=target, mime_type=found.mime_type)

    def _samples(self, ctx: StepContext, share: float = 0.8) -> tuple[Any, int]:
        facts = ctx.identified.extra
        rate = decode.analysis_rate(facts["duration"])
        samples = decode.decode_pcm(ctx.source, facts["demuxer"], facts["duration"], ctx.settings, ctx.workdir,
                                    rate, lambda fraction: ctx.report_progress(fraction * share))
        return samples, rate

    def _waveform(self, ctx: StepContext) -> StepResult:
        samples, _ = self._samples(ctx)
        values = draw.peaks(samples, int(output_spec(ctx, self, "peaks").params["peaks"]))
        peaks_file = ctx.workdir / "peaks.json"
        peaks_file.write_text(json.dumps({"version": VERSION, "duration": ctx.identified.extra["duration"],
                                          "peaks": values}, separators=(",", ":")))
        page = ctx.workdir / "waveform.png"
        draw.waveform_picture(values, *WAVEFORM_SIZE, PAGE_BARS, None, bar=2, gap=1).save(page, optimize=True)
        still = ctx.workdir / "waveform-still.png"
        draw.waveform_picture(values, *THUMB_STILL, BARS, GROUND, bar=4, gap=2).save(still, compress_level=1)
        files = [render_still(still, params, ctx.workdir, name, ctx.settings)
                 for name, params in wanted_outputs(ctx, self, THUMBNAILS).items()]
        ctx.report_progress(1.0)
        drawn = [ProducedFile("peaks", peaks_file, "application/json"),
                 ProducedFile("waveform", page, "image/png", *WAVEFORM_SIZE)]
        # A reprocess that lacks only a thumbnail size keeps the peaks and waveform it has.
        return StepResult(files=[made for made in drawn if wanted(ctx, made.name)] + files)

    def _medium(self, ctx: StepContext) -> StepResult:
        facts, settings = ctx.identified.extra, ctx.settings
        params = output_spec(ctx, self, "medium").params
        box = int(params["size"])
        cover = facts.get("cover")
        if cover and _fits(cover, settings):
            picture = ctx.workdir / "cover.png"
            decode.extract_cover(ctx.source, facts["demuxer"], cover["index"], settings, picture)
            return StepResult(files=[render_still(picture, params, ctx.workdir, "medium", settings)],
                              metadata={"cover": True})
        earlier = ctx.earlier.get("peaks")
        if earlier is not None and earlier.path.is_file():
            values = json.loads(earlier.path.read_text())["peaks"]
        else:
            values = draw.peaks(self._samples(ctx)[0], int(params["peaks"]))
        still = ctx.workdir / "medium-still.png"
        draw.waveform_picture(values, box, max(1, box * 3 // 8), BARS, GROUND, bar=6, gap=3).save(
            still, compress_level=1)
        return StepResult(files=[render_still(still, params, ctx.workdir, "medium", settings)],
                          metadata={"cover": False})

    def _spectrogram(self, ctx: StepContext) -> StepResult:
        samples, rate = self._samples(ctx)
        params = output_spec(ctx, self, "spectrogram").params
        width = int(params["width"])
        still = ctx.workdir / "spectrogram-still.png"
        draw.spectrogram_picture(samples, rate, width, max(64, width // 4)).save(still, compress_level=1)
        produced = render_still(still, {**params, "size": width}, ctx.workdir, "spectrogram", ctx.settings)
        ctx.report_progress(1.0)
        return StepResult(files=[produced], metadata={"spectrogram_max_hz": rate // 2})


def _facts(fmt: Format, found: Probe, stream_tags: dict[str, str]) -> dict[str, Any]:
    """What identify learned, kept in ``Identified.extra`` for the steps."""
    stream = found.audio
    assert stream is not None
    cover = found.cover
    tags = {**stream_tags, **{key.lower(): value for key, value in found.tags.items()}}
    return {
        "format": fmt.key,
        "demuxer": found.format,
        "duration": round(found.duration, 3),
        "codec": stream.codec.removesuffix("float"),  # the decoder's name: "mp3float" is MP3
        "sample_rate": stream.sample_rate,
        "channels": stream.channels,
        "bit_rate": found.bit_rate,
        "cover": {"index": cover.index, "width": cover.width, "height": cover.height} if cover else None,
        "tags": {key: tags[key][:200] for key in KEPT_TAGS if tags.get(key)},
    }


def _fits(cover: dict[str, Any], settings: Settings) -> bool:
    """Cover art is decoded only when its header declares a size the image rules accept."""
    width, height = cover.get("width") or 0, cover.get("height") or 0
    limits = settings.image
    return 0 < width <= limits.max_side and 0 < height <= limits.max_side and width * height <= limits.max_pixels


def _info(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts shown to people and by the API (``media.info``)."""
    return {
        "duration": facts["duration"],
        "container": FORMATS[facts["format"]].label,
        "audio_codec": facts["codec"],
        "sample_rate": facts["sample_rate"],
        "channels": facts["channels"],
        "bit_rate": facts["bit_rate"],
        "tags": facts["tags"],
    }


KIND = AudioKind()


@hookimpl
def kiln_media_kinds() -> list[AudioKind]:
    """Registered through the entry point ``audio`` in pyproject.toml, as a plugin's kind would be."""
    return [KIND]
