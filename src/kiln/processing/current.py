"""Is a stored output current? The one place that says, for the step runner and for reprocessing.

Every output a kind makes has a :class:`~kiln.mediatypes.base.RenditionSpec`; the spec's fingerprint
is recorded with the rendition. An output is

* ``FRESH`` when its recorded fingerprint is the current spec's (or it is optional and was not made);
* ``SAME_OUTPUT`` when the spec changed but the kind's ``is_current`` says the bytes would not;
* ``STALE`` otherwise: remaking it gives other bytes.

A step's status is the worst of its outputs' (``STALE`` over ``SAME_OUTPUT`` over ``FRESH``), its
own state when it is not done, or ``MISSING`` when the item has no row for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kiln.mediatypes.base import ChecksCurrent, Identified, MediaKind, StepDef
from kiln.processing.models import WorkState

FRESH = "fresh"  # made with the current spec
STALE = "stale"  # made with another spec, and the current one gives other bytes: remake it
SAME_OUTPUT = "same_output"  # made with another spec, but the current one gives the same bytes
MISSING = "missing"  # the item has no row for a step the kind has gained since


class StoredOutput(Protocol):
    """What the check reads of a stored rendition (a Rendition row, or a row of a query)."""

    @property
    def spec_fingerprint(self) -> str | None: ...

    @property
    def spec(self) -> Mapping[str, Any] | None: ...


def outputs_status(kind: MediaKind, definition: StepDef, renditions: Mapping[str, StoredOutput],
                   identified: Identified, *, asked: bool = False) -> dict[str, str]:
    """FRESH, SAME_OUTPUT or STALE for each output the step's specs declare, by output name.

    ``asked``: someone asked for the step to run again (``kiln reprocess run``, bulk), so a matching
    fingerprint is not enough: an output is left alone only when the kind says remaking it would give
    the same bytes (SAME_OUTPUT); otherwise it is STALE."""
    check = kind.is_current if isinstance(kind, ChecksCurrent) else None
    status: dict[str, str] = {}
    for spec in definition.renditions:
        stored = renditions.get(spec.name)
        if stored is None:  # an optional output the original does not give (a still GIF's animation)
            status[spec.name] = FRESH if spec.optional else STALE
        elif not asked and stored.spec_fingerprint == spec.fingerprint():
            status[spec.name] = FRESH
        elif check is not None and check(spec, stored.spec or {}, identified):
            status[spec.name] = SAME_OUTPUT
        else:
            status[spec.name] = STALE
    return status


def step_status(kind: MediaKind, definition: StepDef, step: Any, renditions: Mapping[str, StoredOutput],
                identified: Identified) -> str:
    """FRESH, STALE or SAME_OUTPUT for a done step (``step`` needs ``state`` and ``fingerprint``);
    otherwise the step's state, or MISSING when ``step`` is None."""
    if step is None:
        return MISSING
    if step.state != WorkState.DONE:
        return str(step.state)
    if not definition.renditions:  # a step that only reports metadata: its own fingerprint decides
        return FRESH if step.fingerprint == definition.fingerprint() else STALE
    statuses = set(outputs_status(kind, definition, renditions, identified).values())
    for worst in (STALE, SAME_OUTPUT):
        if worst in statuses:
            return worst
    return FRESH


def needs_work(status: str) -> bool:
    """The step must run again (its outputs would change, or it never ran)."""
    return status in (STALE, MISSING)
