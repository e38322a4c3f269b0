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
from typing import Any, Protocol

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
    """A named output and every parameter that shapes its bytes."""

    name: str
    params: Mapping[str, Any]

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
    report_progress: Callable[[float], None] = lambda fraction: None


class MediaKind(Protocol):
    """One kind of media. Besides these members a kind package holds ``display.html``, the part of
    the media page that shows it (rendered with ``media`` and a ``rendition(name)`` lookup).

    Optional members the engine looks for: ``needs_name`` (True when content alone cannot tell,
    as with plain text: the upload's name must then carry one of ``file_extensions``),
    ``is_current(spec, stored_params, identified)`` for reprocessing, and
    ``strip_metadata(source, workdir, settings)`` for publishing originals without camera data.
    """

    name: str
    label: str
    formats: str  # for people: "JPEG, PNG, WebP, ..."
    file_extensions: frozenset[str]  # names people give such files, lower case with the dot
    mime_extensions: Mapping[str, str]  # MIME type identified -> extension of the stored original

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
