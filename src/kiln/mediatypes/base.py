"""The contract every kind of media (image, video, audio, ...) fulfils.

A kind is recognised from a file's *content* (never its name), declares the processing steps
that turn an original into renditions, and runs one step at a time on a local copy of the
original. Steps never touch storage or the database: they write files into their work
directory and return what they made; the processing service stores it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kiln.config import Settings
from kiln.errors import KilnError


class MediaRejected(KilnError):
    """Permanent: this file will never process (unsupported, corrupt, hostile, too large)."""

    code = "unsupported"
    status = 415


class TransientFailure(KilnError):
    """Temporary: trying again later may succeed (out of memory, disk full, storage down)."""

    code = "transient"
    status = 503


@dataclass(frozen=True)
class Identified:
    """What a kind learned about a file from its header, without decoding it."""

    kind: str
    mime_type: str
    width: int | None = None
    height: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenditionSpec:
    """A named output and every parameter that shapes its bytes.

    A step renders each output from its spec's ``params`` alone (never from Settings), so the
    fingerprint recorded with a rendition says exactly how its bytes were made. ``optional``: the
    step may legitimately make no such file for some originals (no animation for a still GIF, no
    rung taller than the video); a missing optional output is not stale.
    """

    name: str
    params: Mapping[str, Any]
    optional: bool = False

    def fingerprint(self) -> str:
        blob = json.dumps({"name": self.name, **self.params}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class StepDef:
    """One unit of processing work. Steps run in the order declared."""

    name: str
    renditions: tuple[RenditionSpec, ...] = ()
    required: bool = True

    def fingerprint(self) -> str:
        parts = ",".join(spec.fingerprint() for spec in self.renditions) or self.name
        return hashlib.sha256(f"{self.name}:{parts}".encode()).hexdigest()[:16]

    def spec(self, name: str) -> RenditionSpec:
        """The spec of output ``name`` (KeyError when the step makes no such output)."""
        for spec in self.renditions:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class ProducedFile:
    """A rendition a step wrote into its work directory."""

    name: str
    path: Path
    mime_type: str
    width: int | None = None
    height: int | None = None


@dataclass
class StepResult:
    files: list[ProducedFile] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    """Everything a step may use.

    ``source`` is the job's own local copy of the original. ``earlier`` maps rendition names made
    earlier in the same run to their local files, so a step may derive from them (a thumbnail
    from the medium image) instead of decoding the original again.
    """

    source: Path
    workdir: Path
    settings: Settings
    identified: Identified
    earlier: dict[str, ProducedFile] = field(default_factory=dict)
    # The running step's outputs: name -> spec. A step renders from these params only, and makes only
    # these: a reprocess of a step that gained an output since (a new size) names only what is missing.
    specs: Mapping[str, RenditionSpec] = field(default_factory=dict)
    report_progress: Callable[[float], None] = lambda fraction: None


class MediaKind(Protocol):
    """One kind of media. Besides these members a kind package holds ``display.html``, the part of
    the media page that shows it (rendered with ``media`` and a ``rendition(name)`` lookup).

    A kind is registered through the ``kiln_media_kinds`` hook (kiln/hookspecs.py). Optional
    capabilities are the small protocols below (:class:`NeedsName`, :class:`ChecksCurrent`,
    :class:`StripsMetadata`); the engine asks ``isinstance(kind, ...)``, and the conformance suite
    checks the signatures of those a kind has.
    """

    name: str
    label: str
    formats: str  # for people: "JPEG, PNG, WebP, ..."
    order: int  # kinds are asked in this order (then by name); text, which catches almost anything, is 90
    file_extensions: frozenset[str]  # names people give such files, lower case with the dot
    mime_extensions: Mapping[str, str]  # MIME type identified -> extension of the stored original
    # Files of this kind Kiln serves (renditions and published originals): extension -> Content-Type.
    # web/files.py serves exactly the union of these, and contrib/nginx/kiln.conf must say the same.
    served_types: Mapping[str, str]
    # Of those, the extensions a browser may show inline (pictures, video, sound: never HTML, SVG,
    # PDF or anything that runs); everything else is sent as a download.
    inline_types: frozenset[str]
    settings_section: str | None  # the section of kiln.toml (and of Settings) it reads; None: none

    def identify(self, path: Path, head: bytes, settings: Settings) -> Identified | None:
        """Return what the file is if it belongs to this kind, None if it does not.

        ``head`` is the first 64 KiB. Raise :class:`MediaRejected` when the file is of this kind
        but must be refused (truncated header, pixel bomb, ...), with a message for its owner.
        """
        ...

    def steps(self, settings: Settings) -> list[StepDef]:
        """The steps, in order, with the rendition specs the current settings ask for."""
        ...

    def run_step(self, step: str, ctx: StepContext) -> StepResult:
        """Run one step. Raise MediaRejected (permanent) or TransientFailure (retry)."""
        ...


@runtime_checkable
class NeedsName(Protocol):
    """Content alone cannot tell (plain text): the kind is asked only when the upload's name carries
    one of its ``file_extensions``. A kind has this capability when ``needs_name`` is True."""

    needs_name: bool


@runtime_checkable
class ChecksCurrent(Protocol):
    """Reprocessing asks whether a stored rendition would come out the same under a new spec."""

    def is_current(self, spec: RenditionSpec, stored_params: Mapping[str, Any], identified: Identified) -> bool: ...


@runtime_checkable
class StripsMetadata(Protocol):
    """The kind can publish its original without camera data and other private metadata."""

    def strip_metadata(self, source: Path, workdir: Path, settings: Settings) -> ProducedFile: ...


CAPABILITIES: tuple[type, ...] = (NeedsName, ChecksCurrent, StripsMetadata)


def needs_name(kind: object) -> bool:
    return isinstance(kind, NeedsName) and kind.needs_name is True


class ExtraStep(Protocol):
    """A processing step a plugin adds to a kind (the ``kiln_processing_steps`` hook)."""

    def definition(self, settings: Settings) -> StepDef:
        """Its name and rendition specs under these settings; the name must differ from the kind's steps."""
        ...

    def run(self, ctx: StepContext) -> StepResult:
        """Make its files, as a kind's ``run_step`` does."""
        ...


class PlansSteps(Protocol):
    """Anything that declares steps under settings: a kind (what :func:`output_spec` needs of it)."""

    def steps(self, settings: Settings) -> list[StepDef]: ...


def output_spec(ctx: StepContext, kind: PlansSteps, name: str) -> RenditionSpec:
    """The spec of output ``name`` for this run: the one the processing service handed the step
    (``ctx.specs``); a step called directly (tests, tools) gets the one the current settings give."""
    if name in ctx.specs:
        return ctx.specs[name]
    for definition in kind.steps(ctx.settings):
        for spec in definition.renditions:
            if spec.name == name:
                return spec
    raise KeyError(name)


def wanted(ctx: StepContext, name: str) -> bool:
    """Does this run make output ``name``? Every output, unless the processing service named only some
    (``ctx.specs``: a reprocess that makes only the outputs missing or stale, keeping the current ones);
    a step called directly (tests, tools) makes all of them."""
    return not ctx.specs or name in ctx.specs


# Every kind's gallery pictures: the thumbnail, and the same at twice its size for screens with two or
# more pixels to a CSS pixel (phones), which galleries offer through srcset when it exists.
THUMBNAIL_2X = "thumbnail_2x"
THUMBNAILS = ("thumbnail", THUMBNAIL_2X)


def thumbnail_specs(params: Mapping[str, Any], size: int) -> tuple[RenditionSpec, RenditionSpec]:
    """The specs of ``thumbnail`` (fitting ``size``) and ``thumbnail_2x`` (fitting twice it), shaped
    alike by ``params``; a kind puts both in the step that makes its thumbnail."""
    return (RenditionSpec("thumbnail", {**params, "size": size}),
            RenditionSpec(THUMBNAIL_2X, {**params, "size": 2 * size}))


def wanted_outputs(ctx: StepContext, kind: PlansSteps, names: tuple[str, ...]) -> dict[str, Mapping[str, Any]]:
    """The params of each of ``names`` this run makes (see :func:`wanted`), by name, in that order."""
    return {name: output_spec(ctx, kind, name).params for name in names if wanted(ctx, name)}
