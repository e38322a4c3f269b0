"""Every extension point Kiln offers, in one place (pluggy hooks; docs/plugins.md explains each).

A plugin is any module or object with functions named after these hooks and marked with
:data:`hookimpl`; a package makes it known through an entry point in the group ``kiln``::

    [project.entry-points.kiln]
    foo = "kiln_foo"

Kiln's own media kinds register exactly this way (see ``pyproject.toml``). Hooks that return
something are called for every plugin and their non-``None`` answers collected in a list, in no
promised order (Kiln sorts where order matters). A plugin's exception in ``kiln_media_published``,
``kiln_media_deleted`` or ``kiln_media_page_block`` is logged and never breaks the caller; an
exception in the other hooks is a broken install and stops Kiln where it starts.

``tests/test_plugins.py`` fails when a hook here has no section in ``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from kiln.config import Settings
    from kiln.media.models import MediaEntry
    from kiln.mediatypes.base import ExtraStep, MediaKind
    from kiln.runtime import Runtime

PROJECT = "kiln"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)  # plugins write ``@hookimpl`` on their hook functions


@hookspec
def kiln_media_kinds() -> Sequence[MediaKind]:
    """The media kinds this plugin provides (objects fulfilling ``kiln.mediatypes.base.MediaKind``).

    Called once, when the registry is first needed. Kinds are asked to identify a file in the order
    of their ``order`` (then name); two kinds with the same ``name`` are an error. The kind's
    package directory holds its ``display.html``, its part of the media page.
    """


@hookspec
def kiln_processing_steps(kind: str) -> Sequence[ExtraStep]:
    """Extra processing steps for items of the kind named ``kind`` (``kiln.mediatypes.base.ExtraStep``).

    Called once per kind when the registry is built. Each step's ``definition(settings)`` gives
    its :class:`~kiln.mediatypes.base.StepDef` (run after the kind's own steps, in the order
    returned) and ``run(ctx)`` makes its files; both follow the rules of a kind's own steps.
    Return an empty list (or nothing) for kinds the plugin does not extend.
    """


@hookspec
def kiln_media_page_block(place: str, media: MediaEntry, settings: Settings) -> str | None:
    """An HTML fragment for the named ``place`` of the media page (``templates/media.html``).

    Places: ``after_display`` (under the kind's own display), ``details`` (after the licence and
    download lines), ``actions`` (after the owner's Edit/Delete line, shown to everyone). A ``str``
    is escaped; return ``markupsafe.Markup`` to insert HTML as it is, after escaping anything that
    came from people yourself (``Markup("<b>{}</b>").format(value)`` does). ``None`` adds nothing.
    Called while the page renders, for every viewer who may see the item (pages for visitors are
    cached): keep it fast and free of I/O. An exception is logged and the block left out.
    """


@hookspec
def kiln_media_published(media_id: int, kind: str, runtime: Runtime) -> None:
    """An item became visible for the first time (its processing finished).

    Called after the transaction that published it committed, in the process that finished the
    processing (a worker, or the web process when processing runs inline); never inside a
    transaction. Open your own session with ``runtime.sessions()`` to read the item. Called once per
    item, except that two workers finishing its last steps at the same moment may both call it: make
    it idempotent. Nothing records or retries it (not yet an outbox effect); an exception is logged.
    """


@hookspec
def kiln_media_deleted(media_id: int, kind: str, owner_id: int, runtime: Runtime) -> None:
    """An item was deleted: its row is gone (the commit is done) and its files are being removed.

    Called after the commit, in the process that deleted it; an exception is logged, not raised.
    """


@hookspec
def kiln_register_commands(cli: click.Group) -> None:
    """Add commands or groups to the ``kiln`` command: ``cli.add_command(...)`` or ``@cli.command()``.

    Called once when ``kiln.cli`` is imported. Use ``kiln.cli.pass_kiln`` to get the
    data directory, settings and runtime, as Kiln's own commands do.
    """
