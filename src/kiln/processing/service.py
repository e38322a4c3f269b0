"""Running a media item's due steps, and the finishing check that decides it is processed.

Safe to run twice: each step is claimed before it runs, and a run that finds nothing due only
re-checks whether the item is finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, joinedload, lazyload

from kiln import plugins
from kiln.db.base import utcnow
from kiln.errors import KilnError
from kiln.i18n import Nn_
from kiln.media.models import MediaEntry, MediaState
from kiln.mediatypes import extension_for, get_kind, identify
from kiln.mediatypes.base import MediaRejected, StepContext, StepDef
from kiln.processing import ledger, originals, run
from kiln.processing.limits import HOST, lease_owner, owner_is_dead
from kiln.processing.models import ProcessingStep, WorkState
from kiln.runtime import Runtime
from kiln.search.upkeep import index_now
from kiln.social.notify import notify
from kiln.storage.base import StorageError, copy_to_local

log = logging.getLogger(__name__)


def process_media(rt: Runtime, media_id: int) -> str | None:
    """Run every due step of one media item, then the finishing check. Returns the item's state."""
    owner = lease_owner()
    with rt.sessions() as session:
        media = session.scalars(_media_query(), {"media_id": media_id}).unique().first()
        if media is None:
            return None
        steps = ledger.steps_of(session, media_id)
        _recover_dead(rt, session, media, steps)
        now = utcnow()
        due = [step for step in steps if ledger.is_due(step, now)]
        reprocessing = any(step.reason == "reprocess" for step in due)
        state = _run_due(rt, session, media, steps, due, owner) if due else finish_check(rt, session, media_id)
    if reprocessing:
        from kiln.processing.admission import admit_reprocess

        admit_reprocess(rt)
    return state


@cache
def _media_query() -> Select[MediaEntry]:
    """The item, built once. Its renditions are needed (joined: one query for both, none for a first run's
    item, which has none); its tags are not, nor its owner but to tell of a failure (loaded then)."""
    return (select(MediaEntry).where(MediaEntry.id == bindparam("media_id"))
            .options(joinedload(MediaEntry.renditions), lazyload(MediaEntry.tags), lazyload(MediaEntry.owner)))


def _recover_dead(rt: Runtime, session: Session, media: MediaEntry, steps: list[ProcessingStep]) -> None:
    """A step still 'running' under a process of this host that died (killed, crashed): count the
    attempt and schedule a retry with backoff, instead of waiting for its lease to lapse."""
    policy = rt.settings.processing.policy(media.kind)
    dead = [step for step in steps if step.state == WorkState.RUNNING and owner_is_dead(step.lease_owner)]
    for step in dead:
        ledger.schedule_retry(step, policy, "WorkerLost", "worker_lost",
                              KilnError("The worker processing this file stopped unexpectedly."))
    if dead:
        session.commit()


def _run_due(rt: Runtime, session: Session, media: MediaEntry, steps: list[ProcessingStep],
             due: list[ProcessingStep], owner: str) -> str | None:
    """Claim, run and record the due steps in groups (run.py), the last group's transaction settling
    the item. Returns the item's state."""
    kind = get_kind(media.kind)
    policy = rt.settings.processing.policy(media.kind)
    defs = {d.name: d for d in kind.steps(rt.settings)}
    groups = [due] if policy.batch_steps else [[step] for step in due]
    workdir: Path | None = None
    ctx: StepContext | None = None
    early: originals.EarlyLink | None = None
    try:
        for index, group in enumerate(groups):
            claimed = _claim(rt, session, media, group, defs, owner)
            if not claimed:
                continue
            if ctx is None:  # the working copy of the original, once this worker has work
                workdir = _work_folder(rt)
                store = rt.stores.by_name(media.original_store)
                source = copy_to_local(store, media.original_key,
                                       workdir / ("original" + extension_for(media.mime_type)))
                ctx = StepContext(source=source, workdir=workdir, settings=rt.settings,
                                  identified=identify(source, rt.settings, kind=media.kind))
            if index == len(groups) - 1:  # this run may publish the item: its original moves meanwhile
                early = originals.start_link(rt, media)
            outcomes = run.run_steps(rt, media, claimed, defs, ctx, owner)
            stored = run.store_outputs(rt, media, outcomes)
            state = _commit_outcomes(rt, session, media, steps, claimed, outcomes, stored, owner,
                                     settle=index == len(groups) - 1, early=early)
            if index == len(groups) - 1:
                return state
    except run.MediaGone:
        pass  # deleted while it was processed (its other steps went with it), or taken back
    except MediaRejected as exc:  # the original itself no longer identifies: permanent for all steps
        rejected = exc
        _settle_all(session, due, lambda s: ledger.mark_failed(s, "MediaRejected", rejected.code, rejected))
    except StorageError as exc:
        code = exc.code
        _settle_all(session, due, lambda s: ledger.schedule_retry(
            s, policy, "StorageError", code, KilnError("The original could not be read from storage.")))
    finally:
        if early is not None:
            early.undo()  # unless the publishing commit took it
        if workdir is not None:
            _empty(workdir)
    return finish_check(rt, session, media.id)


_work = threading.local()


def _work_folder(rt: Runtime) -> Path:
    """This thread's work folder in the workbench, empty. One per thread, kept from item to item and
    emptied after each: a folder made and removed per item cost more than a small image's steps on a
    disk mounted with ``discard`` (removing a folder waited on the journal). Named
    ``work-HOST-PID-RANDOM``: the sweeper removes those of processes that died (``clean_workbench``)."""
    folder: Path | None = getattr(_work, "folder", None)
    if folder is not None and (_work.pid != os.getpid() or folder.parent != rt.settings.workbench_dir
                               or not _empty(folder)):
        folder = None  # another process (a fork), another site, or a folder that cannot be emptied
    if folder is None:
        rt.settings.workbench_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"work-{HOST}-{os.getpid()}-", dir=rt.settings.workbench_dir))
        _work.folder, _work.pid = folder, os.getpid()
    return folder


def _empty(folder: Path) -> bool:
    """Remove everything in ``folder`` (the steps' files, the working copy), keeping the folder. Returns
    whether it is empty now."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        return not any(folder.iterdir())
    except OSError:
        return False


def _claim(rt: Runtime, session: Session, media: MediaEntry, group: list[ProcessingStep],
           defs: dict[str, StepDef], owner: str) -> list[ProcessingStep]:
    """Claim the group's steps in one statement and commit; returns those to run. A step the kind no
    longer has is skipped; one whose earlier attempts all died mid-step fails here."""
    policy = rt.settings.processing.policy(media.kind)
    for step in group:
        if step.name not in defs:  # a step the kind no longer has
            ledger.mark_skipped(step)
    wanted = [step for step in group if step.name in defs]
    claimed = ledger.claim_steps(session, media, wanted, owner, rt.settings.processing.lease_seconds) if wanted else []
    runnable = []
    for step in claimed:
        if step.attempts > policy.max_attempts:  # the previous attempts all died mid-step
            ledger.mark_failed(step, "WorkerLost", "worker_lost",
                               KilnError(Nn_("Processing this file stopped the worker %(n)s time; Kiln gave up.",
                                             "Processing this file stopped the worker %(n)s times; Kiln gave up."),
                                         n=step.attempts - 1))
        else:
            runnable.append(step)
    session.commit()
    return runnable


def _commit_outcomes(rt: Runtime, session: Session, media: MediaEntry, steps: list[ProcessingStep],
                     claimed: list[ProcessingStep], outcomes: list[run.Outcome], stored: list[list[str]],
                     owner: str, *, settle: bool, early: originals.EarlyLink | None = None) -> str | None:
    """One transaction: the lease check, every outcome and (``settle``) the item's new state. What
    needs storage is done before it: the check that the renditions not made now are stored, and the
    link of the original into the originals store when the item is about to be published (``early``:
    started while the steps ran)."""
    made = {produced.name for outcome in outcomes for produced, *_ in outcome.stored}
    present = moved = False
    if settle:
        defs = get_kind(media.kind).steps(rt.settings)
        present = _renditions_present(rt, media, defs, made)
        if present and _publishes(media, steps, outcomes, defs):
            moved = early.take() if early is not None else originals.link_original(rt, media)
    ids = [step.id for step in claimed]
    try:
        with session.no_autoflush:  # asked before the steps' new states are written
            held = ledger.still_holds(session, ids, owner)
        if not held:
            session.rollback()
            for key in stored:
                rt.stores.public.delete(key)
            ledger.release(session, ids, owner)  # the steps still held are due again at once
            session.commit()
            log.warning("a step of media %s was taken back while it ran (its host fell silent or its lease "
                        "lapsed); this run's results were dropped for the worker that runs it again", media.id)
            raise run.MediaGone()  # nothing more of this item for this worker
        replaced = run.record(rt, session, media, outcomes)
        first_publication = _settle(rt, session, media, present, moved, steps, set(ids)) if settle else False
        if media.state == MediaState.PROCESSED:
            index_now(rt, session, media.id)  # its search entry commits with it
        kind, state = media.kind, media.state
        session.commit()
    except SQLAlchemyError:
        if run.current_token(rt, media.id) is not None:
            raise
        _discard(rt, session, media.id, stored)  # deleted between the last check and the commit
        raise run.MediaGone() from None
    for key in replaced:  # the rows point at the new files now: the old ones can go
        rt.stores.public.delete(key)
    if settle:
        return _after_settle(rt, session, media, kind, state, first_publication, moved)
    return state


def _publishes(media: MediaEntry, steps: list[ProcessingStep], outcomes: list[run.Outcome],
               defs: Iterable[StepDef]) -> bool:
    """Whether these outcomes are about to publish an item whose original still waits in the queue
    store: every outcome a success, every other step done (or not required)."""
    if media.original_store != "queue":
        return False
    if any(outcome.result is None and not outcome.current for outcome in outcomes):
        return False  # a failure or a retry
    required = {d.name for d in defs if d.required}
    ran = {outcome.step.id for outcome in outcomes}
    return all(step.state in (WorkState.DONE, WorkState.SKIPPED) or
               (step.state == WorkState.FAILED and step.name not in required)
               for step in steps if step.id not in ran)


def _discard(rt: Runtime, session: Session, media_id: int, stored: list[list[str]]) -> None:
    session.rollback()
    for key in stored:
        rt.stores.public.delete(key)
    log.info("media %s was deleted while it was processed; its new files were removed", media_id)


def clean_workbench(rt: Runtime) -> int:
    """Remove the work directories of this host's processes that died mid-step (a SIGKILL skips the
    ``finally`` that removes them), so a file that keeps killing its worker cannot fill the disk; and
    the half-received uploads of web processes that died mid-upload.

    A work folder is named ``work-HOST-PID-RANDOM`` (``media-ID-HOST-PID-RANDOM`` before), an upload
    ``upload-HOST-PID-RANDOM`` (the random part has no dash).
    """
    removed = 0
    try:
        entries = list(rt.settings.workbench_dir.iterdir())
    except FileNotFoundError:
        return 0
    for path in entries:
        head, _, rest = path.name.partition("-")
        if head == "media" and path.is_dir():
            rest = rest.split("-", 1)[-1]
        elif not (head == "upload" and path.is_file()) and not (head == "work" and path.is_dir()):
            continue
        parts = rest.rsplit("-", 2)
        if len(parts) != 3:
            continue
        host, pid, _random = parts
        if host == HOST and pid.isdigit() and owner_is_dead(f"{host}:{pid}"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def _settle_all(session: Session, steps: list[ProcessingStep], settle: Callable[[ProcessingStep], object]) -> None:
    for step in steps:
        session.refresh(step)
        if step.state not in ledger.FINAL:
            settle(step)
    session.commit()


def finish_check(rt: Runtime, session: Session, media_id: int) -> str | None:
    """Decide the item's state from what is actually stored, not from counters (when no step of it
    was due: a second bell, the sweeper's ring of an unsettled item, a step that failed before it ran).
    """
    media = session.get(MediaEntry, media_id, populate_existing=True)
    if media is None:
        return None
    present = _renditions_present(rt, media, get_kind(media.kind).steps(rt.settings))
    first_publication = _settle(rt, session, media, present)
    kind, state = media.kind, media.state
    session.commit()
    return _after_settle(rt, session, media, kind, state, first_publication, moved=False)


def _settle(rt: Runtime, session: Session, media: MediaEntry, present: bool, moved: bool = False,
            steps: list[ProcessingStep] | None = None, held: set[int] | frozenset[int] = frozenset()) -> bool:
    """The item's state from its steps and whether its renditions are ``present``, in the caller's
    transaction. ``moved``: the original is already linked into the originals store. ``steps``: the
    item's steps as read by the caller, of which it holds ``held`` (just written); any other that
    was not final is read again, as all are without ``steps``. Returns whether this publishes the item
    for the first time.

    An item that was published once stays published when a later reprocess fails: its earlier
    renditions still serve, and the failure shows in the panels.
    """
    query = select(ProcessingStep).where(ProcessingStep.media_id == media.id)
    if steps is None:
        steps = list(session.scalars(query.order_by(ProcessingStep.position)
                                     .execution_options(populate_existing=True)))
    else:
        unsettled = [s.id for s in steps if s.id not in held and s.state not in ledger.FINAL]
        if unsettled:  # another worker may have run them meanwhile
            session.execute(query.where(ProcessingStep.id.in_(unsettled)).execution_options(populate_existing=True))
    defs = {d.name: d for d in get_kind(media.kind).steps(rt.settings)}
    failed = [s for s in steps if s.state == WorkState.FAILED and defs.get(s.name, StepDef(s.name)).required]
    if failed and media.published is None:
        if media.state != MediaState.FAILED:  # the owner hears of it once, in this same transaction
            notify(session, media.owner, "failed", media_id=media.id, extra={"code": failed[0].error_code})
        ledger.media_failed(media, failed[0])
    elif all(s.state in ledger.FINAL for s in steps) and present:
        first_publication = media.published is None
        ledger.media_published(media)
        if moved and media.original_store == "queue":
            media.original_store = "originals"
        if first_publication:  # to followers on other servers, after this transaction commits
            from kiln.federation import publishing

            with session.no_autoflush:  # it reads only follows: the item's changes are flushed once, later
                publishing.on_published(session, rt.settings, media)
        return first_publication
    elif media.published is None and any(s.state != WorkState.QUEUED for s in steps):
        ledger.media_processing(media)
    return False


def _after_settle(rt: Runtime, session: Session, media: MediaEntry, kind: str, state: str,
                  first_publication: bool, moved: bool) -> str:
    """After the settling commit: the original leaves the queue store (``moved``: it was linked into
    the originals store before that commit), and plugins hear of the publication. An original not
    yet in the originals store is moved now: copy, commit, delete, so a crash leaves a spare copy,
    never none."""
    if state == MediaState.PROCESSED and media.original_store == "queue":
        moved = originals.link_original(rt, media) or originals.copy_original(rt, media)
        media.original_store = "originals"
        session.commit()
    if moved and media.original_store == "originals":
        rt.stores.queue.delete(list(media.original_key))
    if first_publication and state == MediaState.PROCESSED:  # after the commit: plugins see it published
        plugins.notify("kiln_media_published", media_id=media.id, kind=kind, runtime=rt)
    return state


def _renditions_present(rt: Runtime, media: MediaEntry, defs: Iterable[StepDef],
                        made: frozenset[str] | set[str] = frozenset()) -> bool:
    """Every output a required step must make is stored: ``made`` were stored by this run; the others are
    looked for in the public store."""
    for definition in defs:
        if not definition.required:
            continue
        for spec in definition.renditions:
            if spec.optional or spec.name in made:
                continue
            rendition = media.rendition(spec.name)
            if rendition is None or not rt.stores.public.exists(rendition.key):
                log.warning("media %s lacks rendition %s", media.id, spec.name)
                return False
    return True
