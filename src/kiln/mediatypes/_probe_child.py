"""Read a media file's container header with PyAV and print what it declares as JSON.

Run only as a child process by :func:`kiln.mediatypes._ffmpeg.probe` (``python -I this_file ...``),
under a time and memory limit, so a file that crashes or hangs the demuxer takes down nothing but
this process. It imports nothing from Kiln, which keeps its start-up short.

    python -I _probe_child.py FORMATS MAX_PIXELS FILE

FORMATS is a comma-separated demuxer allowlist (``mov,matroska``); only the ``file`` protocol is
allowed, so a playlist or reference file cannot make the demuxer open anything else. The header is
all that is read, except for one keyframe of the first video stream (to learn its display rotation,
which PyAV exposes only on frames), decoded only when the stream declares at most MAX_PIXELS.
"""

from __future__ import annotations

import json
import sys
from typing import Any

PROBE_BYTES = 5_000_000  # bytes ffmpeg may read to find the streams
ANALYZE_MICROSECONDS = 5_000_000
HDR_TRANSFERS = {16, 18}  # AVCOL_TRC_SMPTE2084 (PQ, HDR10/Dolby Vision), AVCOL_TRC_ARIB_STD_B67 (HLG, iPhone)
MAX_PACKETS = 64  # packets read looking for the first keyframe


def main(formats: str, max_pixels: int, path: str) -> dict[str, Any]:
    import av

    av.logging.set_level(None)
    options = {"format_whitelist": formats, "protocol_whitelist": "file", "probesize": str(PROBE_BYTES),
               "analyzeduration": str(ANALYZE_MICROSECONDS)}
    try:
        container = av.open("file:" + path, container_options=options)
    except (av.FFmpegError, OSError, ValueError) as exc:
        return {"error": str(exc)[:300]}
    with container:
        streams = [_stream(s) for s in container.streams]
        duration = container.duration / 1_000_000 if container.duration else None
        if not duration:
            declared = [s.duration * s.time_base for s in container.streams if s.duration and s.time_base]
            duration = float(max(declared)) if declared else None
        rotation = 0
        first = next((s for s in container.streams.video if not _attached(s)), None)
        if first is not None and 0 < (first.codec_context.width or 0) * (first.codec_context.height or 0) <= max_pixels:
            rotation = _rotation(container, first)
        for entry in streams:
            if entry["index"] == (first.index if first is not None else -1):
                entry["rotation"] = rotation
        return {
            "format": container.format.name,
            "duration": duration,
            "bit_rate": container.bit_rate or None,
            "tags": {str(k): str(v)[:500] for k, v in list(container.metadata.items())[:50]},
            "streams": streams,
        }


def _attached(stream: Any) -> bool:
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _stream(stream: Any) -> dict[str, Any]:
    ctx = stream.codec_context
    rate, sar = None, 1.0
    if stream.type == "video":
        found = stream.average_rate or stream.guessed_rate
        rate = float(found) if found else None
        aspect = stream.sample_aspect_ratio
        sar = float(aspect) if aspect and 0.01 < float(aspect) < 100 else 1.0
    return {
        "index": stream.index,
        "type": stream.type,
        "codec": ctx.name if ctx is not None else "unknown",
        "width": getattr(ctx, "width", None) or None,
        "height": getattr(ctx, "height", None) or None,
        "fps": rate,
        "frames": stream.frames or None,
        "rotation": 0,
        "sar": sar,
        "hdr": stream.type == "video" and getattr(ctx, "color_trc", None) in HDR_TRANSFERS,
        "sample_rate": getattr(ctx, "sample_rate", None) or None,
        "channels": getattr(ctx, "channels", None) or None,
        "attached_pic": _attached(stream),
    }


def _rotation(container: Any, stream: Any) -> int:
    """The display rotation (0/90/180/270) from the first keyframe; 0 if none decodes quickly."""
    import av

    stream.codec_context.skip_frame = "NONKEY"
    stream.codec_context.thread_count = 1
    try:
        for count, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return int(round(frame.rotation / 90)) * 90 % 360
            if count >= MAX_PACKETS:
                break
    except (av.FFmpegError, ValueError):
        pass
    return 0

if __name__ == "__main__":
    formats_arg, pixels_arg, file_arg = sys.argv[1:4]
    try:
        result = main(formats_arg, int(pixels_arg), file_arg)
    except Exception as exc:  # anything the demuxer throws is "cannot read", reported as data
        result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    sys.stdout.write(json.dumps(result))
