"""What a browser may be handed from another server's file: a picture, a video or a sound it plays,
recognised from the bytes (the kinds' own sniffers), never from the name or the type the other server
declared. Anything else (SVG, HTML, a script, a document) is not served."""

from __future__ import annotations

from pathlib import Path

from kiln.mediatypes.base import MediaRejected

# Types browsers show inline, and the suffix the copy is kept under.
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
               "image/avif": ".avif"}
VIDEO_TYPES = {"video/mp4": ".mp4", "video/webm": ".webm", "video/ogg": ".ogv"}
AUDIO_TYPES = {"audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/flac": ".flac", "audio/wav": ".wav",
               "audio/mp4": ".m4a"}


def recognise(path: Path, head: bytes, declared: str = "") -> tuple[str, str, str] | None:
    """(kind, MIME type, suffix) of a file a browser may play or show, from its first bytes; None for
    anything else. ``declared`` (the kind the other server named) only decides whether an MP4 holding
    sound alone plays as audio; it never makes anything else acceptable."""
    from kiln.mediatypes.audio.sniff import sniff as sniff_audio
    from kiln.mediatypes.image.sniff import sniff as sniff_image
    from kiln.mediatypes.video.sniff import sniff as sniff_video

    try:
        picture = sniff_image(head)
        if picture is not None and picture.mime_type in IMAGE_TYPES:
            return "image", picture.mime_type, IMAGE_TYPES[picture.mime_type]
        container = sniff_video(head)
        if container is not None and container.mime_type in VIDEO_TYPES:
            if declared == "audio" and container.mime_type == "video/mp4":
                return "audio", "audio/mp4", AUDIO_TYPES["audio/mp4"]
            return "video", container.mime_type, VIDEO_TYPES[container.mime_type]
        sound = sniff_audio(path, head)
        if sound is not None and sound.mime_type in AUDIO_TYPES:
            return "audio", sound.mime_type, AUDIO_TYPES[sound.mime_type]
    except (MediaRejected, OSError, ValueError):
        return None
    return None
