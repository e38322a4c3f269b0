"""Running a media kind's steps directly, as the processing service does, for the kinds' own tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.config import Settings
from kiln.mediatypes import HEAD_BYTES
from kiln.mediatypes.base import Identified, MediaKind, ProducedFile, StepContext


def identify(kind: MediaKind, path: Path, settings: Settings) -> Identified | None:
    return kind.identify(path, path.read_bytes()[:HEAD_BYTES], settings)


def run_all(kind: MediaKind, path: Path, settings: Settings, workdir: Path,
            progress: Callable[[float], None] | None = None) -> tuple[dict[str, ProducedFile], dict[str, Any]]:
    """Every step in order, earlier renditions fed forward; returns (renditions, merged metadata)."""
    workdir.mkdir(parents=True, exist_ok=True)
    found = identify(kind, path, settings)
    assert found is not None, f"{path.name} is not {kind.name}"
    ctx = StepContext(source=path, workdir=workdir, settings=settings, identified=found,
                      report_progress=progress or (lambda fraction: None))
    metadata: dict[str, Any] = {}
    for step in kind.steps(settings):
        result = kind.run_step(step.name, ctx)
        for produced in result.files:
            ctx.earlier[produced.name] = produced
        metadata.update(result.metadata)
    return ctx.earlier, metadata
