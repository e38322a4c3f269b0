"""Video: MP4 and QuickTime (including iPhone HEVC .mov), WebM/Matroska, AVI, MPEG-TS, Ogg Theora.

The container is recognised from its first bytes (sniff.py), then its header is read by the
sandboxed probe (``_ffmpeg.probe``) with that one demuxer allowed. Duration, frame rate and frame
size are checked against ``[video]`` limits before anything is decoded. A file with no real video
stream (sound only, or sound with cover art) is not video: ``identify`` returns None and the audio
kind takes it.

Steps and renditions:

* ``metadata``: duration, frame rate, codecs, container, displayed size (after rotation), has_audio.
* ``poster``: one keyframe, drawn into ``medium`` (the player's poster), ``thumbnail`` and
  ``thumbnail_2x`` (twice the thumbnail size, for sharp galleries on phones).
* ``video-<h>`` for each rung of ``video.heights`` (the short side: 720 is 1280x720, or 720x1280
  upright): H.264/AAC MP4 with faststart, never upscaled (rungs above the source collapse into
  one rendition at the source size, made by the tallest), upright, aspect kept, even sides, live
  progress. Only the tallest rung's step is required: it always makes a file.
* ``video-av1`` (when ``video.av1``): SVT-AV1/AAC MP4 at the tallest rung; optional, so a failure
  there does not fail the item.

``strip_metadata`` publishes the original without its tags (where it was filmed), streams copied.
"""

from __future__ import annotations

from pathlib import Path

from kiln.config import Settings
from kiln.hookspecs import hookimpl
from kiln.i18n import N_
from kiln.mediatypes._ffmpeg import Probe, has_encoder, probe
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
from kiln.mediatypes.video.sniff import Container, sniff
from kiln.mediatypes.video.transcode import (
    Target,
    frames_declared,
    ladder_size,
    poster,
    time_limit,
    transcode,
    without_metadata,
)

__all__ = ["KIND", "VideoKind"]

ALGORITHM_VERSION = 1


class VideoKind:
    name = "video"
    label = N_("Video")
    order = 20
    # .vtt: the owner's captions (kiln.media.captions), fetched by the player, never shown as a page.
    served_types = {".mp4": "video/mp4", ".webm": "video/webm", ".jpg": "image/jpeg", ".webp": "image/webp",
                    ".vtt": "text/vtt; charset=utf-8"}
    inline_types = frozenset(served_types) - {".vtt"}
    settings_section = "video"
    formats = N_("MP4, MOV (incl. iPhone HEVC), WebM, MKV, AVI, MPEG-TS, OGV, 3GP")
    file_extensions = frozenset({".mp4", ".m4v", ".mov", ".qt", ".webm", ".mkv", ".avi", ".ts", ".mts", ".m2ts",
                                 ".ogv", ".3gp", ".3g2"})
    mime_extensions = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm",
                       "video/x-matroska": ".mkv", "video/x-msvideo": ".avi", "video/mp2t": ".ts",
                       "video/ogg": ".ogv", "video/3gpp": ".3gp"}

    # Recognising ---------------------------------------------------------------------------------
    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        container = sniff(head)
        if container is None:
            return None
        found = probe(path, settings, frozenset({container.demuxer}), N_("This video file"))
        stream = found.video
        if stream is None:
            return None  # sound only (or sound with cover art): the audio kind's
        display = stream.display_size
        if display is None:
            raise MediaRejected("This %(format)s file does not say how large its picture is, so Kiln "
                                "cannot safely read it.", code="corrupt", format=container.label)
        self._check_limits(found, container, settings)
        return Identified(kind=self.name, mime_type=container.mime_type, width=display[0], height=display[1],
                          extra=self._facts(found, container))
    @staticmethod
    def _check_limits(found: Probe, container: Container, settings: Settings) -> None:
        limits, stream = settings.video, found.video
        assert stream is not None and stream.width and stream.height
        length = frames_declared(found.duration, stream.fps, stream.frames)
        if length > limits.max_duration_seconds:
            raise MediaRejected(
                "This video declares a length of %(length)s; this site accepts videos up to %(limit)s.",
                code="too_long", length=_clock(length), limit=_clock(limits.max_duration_seconds))
        if stream.width * stream.height > limits.max_pixels:
            raise MediaRejected(
                "This video's frames are %(width)sx%(height)s pixels; this site accepts up to "
                "%(megapixels)s megapixels per frame.", code="too_large", width=str(stream.width),
                height=str(stream.height), megapixels=round(limits.max_pixels / 1e6))
        if stream.fps and stream.fps > limits.max_fps:
            raise MediaRejected("This video declares %(fps)s frames per second; this site accepts up to %(max)s.",
                                code="too_large", fps=round(stream.fps), max=limits.max_fps)

    @staticmethod
    def _facts(found: Probe, container: Container) -> dict[str, object]:
        stream, audio = found.video, found.audio
        assert stream is not None
        return {
            "demuxer": found.format,
            "container": container.label,
            # The longest the header implies (an AVI cut short still declares its frame count).
            "duration": round(frames_declared(found.duration, stream.fps, stream.frames), 3),
            "fps": round(stream.fps, 3) if stream.fps else None,
            "video_codec": stream.codec,
            "audio_codec": audio.codec if audio else None,
            "has_audio": audio is not None,
            "rotation": stream.rotation,
            "hdr": stream.hdr,
            "bit_rate": found.bit_rate,
        }

    # Planning -----------------------------------------------------------------------------------
    def steps(self, settings: Settings) -> list[StepDef]:
        video, image = settings.video, settings.image
        still = {"version": ALGORITHM_VERSION, "jpeg_quality": image.jpeg_quality, "webp_quality": image.webp_quality,
                 "frame": "keyframe near 10%"}
        encode = {"version": ALGORITHM_VERSION, "container": "mp4+faststart", "audio": "aac",
                  "audio_kbps": video.audio_bitrate_kbps}
        steps = [
            StepDef("metadata"),
            StepDef("poster", (RenditionSpec("medium", {**still, "size": image.medium_size}),
                               *thumbnail_specs(still, image.thumbnail_size))),
        ]
        ladder = rungs(settings)
        for rung in ladder:
            spec = {**encode, "codec": "h264", "short_side": rung, "crf": video.crf, "preset": video.preset}
            # The tallest rung always makes a file (at the source size when the source is smaller);
            # a lower rung above the source makes none, so only the tallest is required.
            steps.append(StepDef(f"video-{rung}", (RenditionSpec(f"video-{rung}", spec, optional=rung != ladder[0]),),
                                 required=rung == ladder[0]))
        if video.av1:
            spec = {**encode, "codec": "av1", "short_side": ladder[0], "crf": video.av1_crf,
                    "preset": video.av1_preset}
            steps.append(StepDef("video-av1", (RenditionSpec("video-av1", spec),), required=False))
        return steps

    # Running ------------------------------------------------------------------------------------
    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        facts = ctx.identified.extra
        display = (ctx.identified.width or 0, ctx.identified.height or 0)
        if step == "metadata":
            return StepResult(metadata={"width": display[0], "height": display[1],
                                        **{k: v for k, v in facts.items() if k != "demuxer"}})
        if step == "poster":
            return self._poster(ctx)
        if step.startswith("video-"):
            return self._transcode(step, ctx, display)
        raise ValueError(f"The video kind has no step called {step!r}.")

    def _poster(self, ctx: StepContext) -> StepResult:
        """One keyframe, drawn large enough for every output this run makes; the thumbnails are shrunk
        from the medium when it is made (a reprocess may make only a missing thumbnail size)."""
        outputs = wanted_outputs(ctx, self, ("medium", *THUMBNAILS))
        still = ctx.workdir / "poster.png"
        facts = ctx.identified.extra
        box = max(int(params["size"]) for params in outputs.values())
        poster(ctx.source, str(facts["demuxer"]), float(facts["duration"] or 0), box, still, ctx.settings,
               hdr=bool(facts.get("hdr")))
        files = []
        source = still
        for name, params in outputs.items():
            files.append(render_still(source, params, ctx.workdir, name, ctx.settings))
            if name == "medium" and max(files[-1].width or 0, files[-1].height or 0) >= box:
                source = files[-1].path
        return StepResult(files=files)

    def _transcode(self, step: str, ctx: StepContext, display: tuple[int, int]) -> StepResult:
        settings, facts = ctx.settings, ctx.identified.extra
        ladder = rungs(settings)
        codec = "av1" if step == "video-av1" else "h264"
        rung = max(ladder) if codec == "av1" else int(step.removeprefix("video-"))
        size = ladder_size(display, rung, ladder if codec == "h264" else [rung])
        if size is None:  # the source is smaller than this rung: a taller rung already has it
            return StepResult()
        if codec == "av1" and not has_encoder(settings, "libsvtav1"):
            raise MediaRejected("This server's ffmpeg cannot make AV1 video (it has no libsvtav1 encoder); "
                                "the H.264 versions play everywhere.", code="unsupported")
        target = Target(size[0], size[1], codec, hdr=bool(facts.get("hdr")))
        duration = float(facts.get("duration") or 0.0)
        out = ctx.workdir / f"{step}.mp4"
        step_limit = settings.processing.policy(self.name).step_time_limit
        limit = time_limit(duration, target, settings, step_limit)
        try:
            transcode(ctx.source, str(facts["demuxer"]), target, bool(facts.get("has_audio")), out,
                      duration=duration, params=output_spec(ctx, self, step).params, settings=settings,
                      timeout=limit, progress=ctx.report_progress)
        except MediaRejected as exc:
            if exc.code != "timeout" or limit < step_limit - 5:
                raise
            raise MediaRejected(  # the site's step limit, not the file, stopped it: say so
                "Converting this %(duration)s video to %(height)sp took longer than this site allows "
                "for one step (%(limit)s) and was stopped. The site's administrator can raise "
                "[processing.kinds.video] step_time_limit.", code="timeout", duration=_clock(duration),
                height=str(min(size)), limit=_clock(step_limit)) from exc
        return StepResult(files=[ProducedFile(name=step, path=out, mime_type="video/mp4", width=target.width,
                                              height=target.height)])

    def strip_metadata(self, source: Path, workdir: Path, settings: Settings) -> ProducedFile:
        """A copy of the original for publishing, without its tags (phones store where the video was
        taken): the streams are copied bit for bit, so nothing is re-encoded."""
        with source.open("rb") as fh:
            found = self.identify(source, fh.read(64 * 1024), settings)
        if found is None:
            raise MediaRejected("This file is no longer a video Kiln can read.", code="unsupported")
        out = workdir / f"original-stripped{self.mime_extensions.get(found.mime_type, '.mp4')}"
        without_metadata(source, str(found.extra["demuxer"]), found.mime_type, out, settings)
        return ProducedFile(name="original", path=out, mime_type=found.mime_type, width=found.width,
                            height=found.height)


def rungs(settings: Settings) -> list[int]:
    """The ladder's short sides, tallest first, without repeats."""
    return sorted({h for h in settings.video.heights if h >= 2}, reverse=True) or [720]


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


KIND = VideoKind()


@hookimpl
def kiln_media_kinds() -> list[VideoKind]:
    """Registered through the entry point ``video`` in pyproject.toml, as a plugin's kind would be."""
    return [KIND]
