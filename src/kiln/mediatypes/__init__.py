"""The registry of media kinds. A file's kind is decided from its content, never its name alone.

Kinds come from the plugin manager (the ``kiln_media_kinds`` hook; the six built-in kinds are entry
points in pyproject.toml, as a third-party kind would be). They are asked in the order of their
``order`` (then name); the first whose ``identify`` recognises the file wins. Text art comes last
(90), because almost anything without NUL bytes decodes as text. The file's *name* is used only
to refuse a mismatch: a file whose extension belongs to one kind but whose content is another
("a text document named .mp4") is refused, since a name that lies is a classic way in for hostile
files.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from pathlib import Path, PurePath
from typing import Any

from kiln.config import Settings
from kiln.i18n import N_, Label, gettext
from kiln.mediatypes.base import (
    ExtraStep,
    Identified,
    MediaKind,
    MediaRejected,
    StepContext,
    StepDef,
    StepResult,
    needs_name,
)

HEAD_BYTES = 64 * 1024

# Kinds that share containers: a sound-only .mp4 is audio, an Ogg Theora .ogg is video.
SHARED_CONTAINERS = frozenset({"audio", "video"})
# Names a browser or a web server would treat as a page or a program, whatever the content: a PNG
# with HTML appended, named x.html, is refused rather than published under that name.
ACTIVE_SUFFIXES = frozenset({
    ".html", ".htm", ".xhtml", ".shtml", ".xml", ".svg", ".svgz", ".php", ".phtml", ".php3", ".php4",
    ".php5", ".phar", ".js", ".mjs", ".jsp", ".asp", ".aspx", ".cgi", ".pl", ".py", ".rb", ".sh", ".exe",
    ".bat", ".cmd", ".com", ".scr", ".msi", ".dll", ".jar", ".swf", ".hta", ".vbs", ".ps1",
})


# What every kind has (base.MediaKind); checked when the registry is built, so a plugin's kind that
# lacks one fails at start with its name rather than on some later upload.
KIND_MEMBERS = ("name", "label", "formats", "order", "file_extensions", "mime_extensions", "served_types",
                "inline_types", "settings_section", "identify", "steps", "run_step")


@cache
def kinds() -> dict[str, MediaKind]:
    """Every registered kind by name, in the order they are asked (built once per process)."""
    from kiln.plugins import plugin_manager

    hook = plugin_manager().hook
    found: dict[str, MediaKind] = {}
    for provided in hook.kiln_media_kinds():
        for kind in provided:
            missing = [member for member in KIND_MEMBERS if not hasattr(kind, member)]
            if missing:
                raise RuntimeError(f"The media kind {kind!r} lacks {', '.join(missing)} (see docs/plugins.md).")
            if kind.name in found:
                raise RuntimeError(f"Two plugins provide a media kind named {kind.name!r}.")
            found[kind.name] = kind
    ordered = sorted(found.values(), key=lambda k: (k.order, k.name))
    return {k.name: _with_extra_steps(k, [s for answer in hook.kiln_processing_steps(kind=k.name) for s in answer])
            for k in ordered}


def __getattr__(name: str) -> Any:
    if name == "KIND_MODULES":  # the kinds' names in order (the processing lanes are named after them)
        return tuple(kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_kind(name: str) -> MediaKind:
    return kinds()[name]


def kind_dir(kind: MediaKind) -> Path:
    """The folder of the kind's package: its display.html lives there (a plugin's kind too)."""
    inner = kind._kind if isinstance(kind, _KindWithExtraSteps) else kind
    return Path(inspect.getfile(type(inner))).parent


def kind_template(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """Jinja's loader for "kinds/<kind>/display.html" (web/templating.py)."""
    kind_name, _, file = name.partition("/")
    kind = kinds().get(kind_name)
    if kind is None or file != "display.html":
        return None
    path = kind_dir(kind) / file
    mtime = path.stat().st_mtime
    return path.read_text(encoding="utf-8"), str(path), lambda: path.stat().st_mtime == mtime


def served_types() -> dict[str, str]:
    """Extension -> Content-Type of every file Kiln serves: the union of the kinds' ``served_types``."""
    return _served()[0]


def inline_types() -> frozenset[str]:
    """The extensions a browser may show inline: the union of the kinds' ``inline_types``."""
    return _served()[1]


@cache
def _served() -> tuple[dict[str, str], frozenset[str]]:
    types: dict[str, str] = {}
    inline: set[str] = set()
    for kind in kinds().values():
        for ext, content_type in kind.served_types.items():
            if types.setdefault(ext, content_type) != content_type:
                raise RuntimeError(f"Kinds disagree on the type of {ext} files: {types[ext]} and {content_type}.")
        for ext in kind.inline_types:
            if ext not in kind.served_types or not kind.served_types[ext].startswith(INLINE_PREFIXES) \
                    or "svg" in kind.served_types[ext]:
                raise RuntimeError(f"The {kind.name} kind may not show {ext} files inline.")
            inline.add(ext)
    return types, frozenset(inline)


INLINE_PREFIXES = ("image/", "video/", "audio/")  # nothing that is a page or runs a script


class _KindWithExtraSteps:
    """A kind plus the steps plugins add to it (``kiln_processing_steps``); everything else is the kind's."""

    def __init__(self, kind: MediaKind, extra: list[ExtraStep]) -> None:
        self._kind, self._extra = kind, extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kind, name)

    def steps(self, settings: Settings) -> list[StepDef]:
        own = self._kind.steps(settings)
        added = [step.definition(settings) for step in self._extra]
        names = [d.name for d in own + added]
        if len(set(names)) != len(names):
            raise RuntimeError(f"A plugin's step for the {self._kind.name} kind reuses a step name: {names}.")
        return own + added

    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        for extra in self._extra:
            if extra.definition(ctx.settings).name == step:
                return extra.run(ctx)
        return self._kind.run_step(step, ctx)


def _with_extra_steps(kind: MediaKind, extra: list[ExtraStep]) -> MediaKind:
    return kind if not extra else _KindWithExtraSteps(kind, extra)


def identify(path: Path, settings: Settings, filename: str | None = None, kind: str | None = None) -> Identified:
    """What the file at ``path`` is, or MediaRejected with a sentence its owner understands.

    ``filename`` is the name the file was uploaded with (checked against the content);
    ``kind`` restricts the question to one kind (a worker re-reading an original it already knows).
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head:
        raise MediaRejected("The file is empty (0 bytes). Choose the file again and re-upload it.", code="empty")
    suffix = PurePath(filename).suffix.lower() if filename else None
    candidates = [get_kind(kind)] if kind else list(kinds().values())
    for candidate in candidates:
        if needs_name(candidate) and suffix is not None and suffix not in candidate.file_extensions:
            continue
        found = candidate.identify(path, head, settings)
        if found is not None:
            _check_name(found, suffix)
            return found
    raise MediaRejected(
        "This file is %(what)s, which Kiln cannot publish. Kiln accepts: %(accepted)s.",
        code="unsupported", what=Label(describe(head)), accepted=accepted(),
    )


def _check_name(found: Identified, suffix: str | None) -> None:
    if not suffix:
        return
    if suffix in ACTIVE_SUFFIXES:
        raise MediaRejected(
            "Kiln does not accept files named %(suffix)s: a web page, script or program is never published, "
            "even when its content looks like media. Rename the file to match what it is.",
            code="type_mismatch", suffix=suffix,
        )
    claimed = next((k for k in kinds().values() if suffix in k.file_extensions), None)
    if claimed is None or claimed.name == found.kind or {claimed.name, found.kind} <= SHARED_CONTAINERS:
        return
    raise MediaRejected(
        "This file is named %(suffix)s but its content is %(what)s (%(mime_type)s), not %(wanted)s. "
        "Rename it to match its content, or choose the right file.",
        code="type_mismatch", suffix=suffix, what=_one_of(found.kind), mime_type=found.mime_type,
        wanted=_one_of(claimed.name),
    )


# "One item of this kind", inside a sentence; a kind from a plugin shows its label.
ONE_OF_KIND = {
    "image": N_("an image"),
    "audio": N_("an audio file"),
    "video": N_("a video"),
    "pdf": N_("a PDF document"),
    "model3d": N_("a 3D model"),
    "text": N_("a text document"),
}


def _one_of(kind: str) -> Label:
    return Label(ONE_OF_KIND.get(kind) or get_kind(kind).label)


def accepted() -> str:
    """The kinds and formats this site accepts, for messages and the upload form."""
    return "; ".join(f"{gettext(k.label)} ({gettext(k.formats)})" for k in kinds().values())


def describe(head: bytes) -> str:
    """A plain-words guess at what an unsupported file is, for error messages."""
    signatures = {
        b"%PDF": N_("a PDF document"),
        b"PK\x03\x04": N_("a ZIP archive (or an office document)"),
        b"#!": N_("a script"),
        b"\x7fELF": N_("a program"),
        b"MZ": N_("a Windows program"),
        b"<?php": N_("a PHP script"),
        b"#EXTM3U": N_("a media playlist"),
    }
    for magic, words in signatures.items():
        if head.startswith(magic):
            return words
    if head[4:8] == b"ftyp":
        return N_("a video or HEIF file of a kind Kiln does not read")
    sample = head[:4096]
    if b"\x00" not in sample:
        try:
            text = sample.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        lowered = text.lower()
        if "<html" in lowered or "<!doctype html" in lowered:
            return N_("a web page (HTML)")
        if "<svg" in lowered:
            return N_("an SVG drawing (which can carry scripts)")
        if text:
            return N_("a text file")
    return N_("a file of a type Kiln does not recognise")


def placeholder(picture: Path) -> str | None:
    """The blurred placeholder (blurhash) of a thumbnail, stored in ``media.info["blurhash"]``."""
    from kiln.mediatypes.image.still import placeholder as make

    return make(picture)


def placeholder_src(blurhash: str | None, width: int | None = None, height: int | None = None) -> str | None:
    """That placeholder drawn as a tiny PNG ``data:`` URI, for galleries (cached)."""
    from kiln.mediatypes.image.still import placeholder_src as draw

    return draw(blurhash, width, height)


def extension_for(mime_type: str) -> str:
    """The extension Kiln gives a stored original of this type."""
    for kind in kinds().values():
        if mime_type in kind.mime_extensions:
            return kind.mime_extensions[mime_type]
    return ".bin"
