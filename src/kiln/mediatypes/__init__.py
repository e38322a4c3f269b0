"""The registry of media kinds. A file's kind is decided from its content, never its name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from kiln.config import Settings
from kiln.mediatypes.base import Identified, MediaKind, MediaRejected

HEAD_BYTES = 64 * 1024

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/tiff": ".tif",
}


@cache
def kinds() -> dict[str, MediaKind]:
    from kiln.mediatypes.image import KIND as image

    return {image.name: image}


def get_kind(name: str) -> MediaKind:
    return kinds()[name]


def identify(path: Path, settings: Settings) -> Identified:
    """What the file at ``path`` is, or MediaRejected with a sentence its owner understands."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head:
        raise MediaRejected("The file is empty (0 bytes). Choose the file again and re-upload it.", code="empty")
    for kind in kinds().values():
        found = kind.identify(path, head, settings)
        if found is not None:
            return found
    accepted = ", ".join(kind.label.lower() + "s" for kind in kinds().values())
    raise MediaRejected(
        f"This file is {describe(head)}, which Kiln cannot publish. Kiln accepts {accepted} "
        f"(JPEG, PNG, WebP, GIF, TIFF).",
        code="unsupported",
    )


def describe(head: bytes) -> str:
    """A plain-words guess at what an unsupported file is, for error messages."""
    signatures = {
        b"%PDF": "a PDF document",
        b"PK\x03\x04": "a ZIP archive (or an office document)",
        b"#!": "a script",
        b"\x7fELF": "a program",
        b"<?php": "a PHP script",
        b"#EXTM3U": "a media playlist",
    }
    for magic, words in signatures.items():
        if head.startswith(magic):
            return words
    if head[4:8] == b"ftyp":
        return "a video or HEIF file"
    sample = head[:4096]
    if b"\x00" not in sample:
        try:
            text = sample.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if text and "<html" in text.lower():
            return "a web page (HTML)"
        if text:
            return "a text file"
    return "not a recognised image"


def extension_for(mime_type: str) -> str:
    return EXTENSIONS.get(mime_type, ".bin")
