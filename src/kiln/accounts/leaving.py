"""Deleting an account: the person's media (rows, renditions and originals in every store), their
collections, favourites, follows, notifications, login sessions and tokens go; the comments they
wrote on other people's media stay as "deleted comment" placeholders so the threads still read; the
username is held back for ``Settings.username_hold_days`` before anyone can register it again.

Everything in the database changes in one transaction, audited (``user.delete``); the files are
deleted only after it commits, never inside it. A crash in between leaves files no row points at,
which ``kiln storage gc`` finds and removes.

Who may: the person themselves, confirming with their password; an admin (on another account that
is not an admin's); a ``kiln`` command on the server (``actor`` None).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from kiln import plugins
from kiln.accounts import services as accounts
from kiln.accounts.models import ApiToken, EmailToken, HeldUsername, LoginSession, User
from kiln.db.base import utcnow
from kiln.errors import PermissionDenied
from kiln.media.models import MediaEntry, Rendition
from kiln.moderation import audit
from kiln.runtime import Runtime
from kiln.social.models import Collection, Comment, Favourite, Follow, Notification
from kiln.storage import STORE_NAMES
from kiln.storage.base import StorageError

log = logging.getLogger(__name__)


class WrongPassword(PermissionDenied):
    code = "wrong_password"


@dataclass
class Deleted:
    """What a deletion did (the CLI and the API say it)."""

    username: str
    media: int = 0
    comments: int = 0  # comments on other people's media left as placeholders
    collections: int = 0
    held_until: dt.datetime | None = None
    files_left: int = 0  # files that could not be deleted now (``kiln storage gc`` will)


def check_may_delete(actor: User | None, user: User, password: str | None) -> None:
    """The person themselves with their password, an admin on someone else (not an admin), or a
    command on the server."""
    if actor is None:
        return
    if actor.id == user.id:
        if not password or not accounts.check_password(user, password):
            raise WrongPassword("The password is wrong, so your account was not deleted.")
        return
    if not actor.is_admin:
        raise PermissionDenied("Only administrators can delete someone else's account.", code="not_admin")
    if user.is_admin:
        raise PermissionDenied("An administrator's account cannot be deleted from here: take away admin first.",
                               code="is_admin")


def _files_of(session: Session, user_id: int) -> tuple[list[tuple[str, list[str]]], list[dict[str, object]]]:
    """Every stored file of the person's media: (store name, key); and each item's facts for the
    ``kiln_media_deleted`` hook."""
    files: list[tuple[str, list[str]]] = []
    facts: list[dict[str, object]] = []
    for media_id, kind, store, key in session.execute(
            select(MediaEntry.id, MediaEntry.kind, MediaEntry.original_store, MediaEntry.original_key)
            .where(MediaEntry.owner_id == user_id)):
        files.append((store, list(key)))
        facts.append({"media_id": media_id, "kind": kind, "owner_id": user_id})
    for key in session.scalars(select(Rendition.key).join(MediaEntry, MediaEntry.id == Rendition.media_id)
                               .where(MediaEntry.owner_id == user_id)):
        files.append(("public", list(key)))
    return files, facts


def _leave_placeholders(session: Session, user_id: int) -> int:
    """The person's comments on other people's media become placeholders, without author or text;
    each item's comment count drops by the comments it no longer shows. Returns how many."""
    shown = (select(Comment.media_id, func.count()).join(MediaEntry, MediaEntry.id == Comment.media_id)
             .where(Comment.author_id == user_id, Comment.deleted.is_(None), MediaEntry.owner_id != user_id)
             .group_by(Comment.media_id))
    counts = Counter({media_id: int(n) for media_id, n in session.execute(shown)})
    for media_id, n in counts.items():
        # updated=updated: the column's onupdate would otherwise stamp the item as edited.
        session.execute(update(MediaEntry).where(MediaEntry.id == media_id)
                        .values(comment_count=MediaEntry.comment_count - n, updated=MediaEntry.updated))
    session.execute(update(Comment).where(Comment.author_id == user_id, Comment.deleted.is_(None))
                    .values(deleted=utcnow(), body="", author_id=None))
    session.execute(update(Comment).where(Comment.author_id == user_id).values(author_id=None))
    return sum(counts.values())


def _drop_favourites(session: Session, user_id: int) -> None:
    favourited = select(Favourite.media_id).where(Favourite.user_id == user_id)
    session.execute(update(MediaEntry).where(MediaEntry.id.in_(favourited), MediaEntry.owner_id != user_id)
                    .values(favourite_count=MediaEntry.favourite_count - 1, updated=MediaEntry.updated))
    session.execute(delete(Favourite).where(Favourite.user_id == user_id))


def _delete_rows(rt: Runtime, session: Session, actor: User | None, user: User, *, reason: str,
                 via: str) -> tuple[Deleted, list[tuple[str, list[str]]], list[dict[str, object]]]:
    """Every row change of a deletion, in the caller's transaction; returns what was done, the files
    to delete once it commits, and each item's facts for the ``kiln_media_deleted`` hook."""
    done = Deleted(username=user.username)
    from kiln.federation import delivery  # federation builds on accounts, not the reverse

    delivery.account_deleted(session, rt.settings, user)  # before the follows go: who to tell elsewhere
    files, media_facts = _files_of(session, user.id)
    if user.avatar:
        files += [("public", list(key)) for key in user.avatar.values()]
    done.media = len(media_facts)
    done.comments = _leave_placeholders(session, user.id)
    _drop_favourites(session, user.id)
    done.collections = int(session.scalar(select(func.count()).select_from(Collection)
                                          .where(Collection.owner_id == user.id)) or 0)
    session.execute(delete(Collection).where(Collection.owner_id == user.id))
    session.execute(delete(Notification).where(or_(Notification.user_id == user.id,
                                                   Notification.actor_id == user.id)))
    session.execute(delete(Follow).where(or_(Follow.follower_id == user.id, Follow.followee_id == user.id)))
    for model in (LoginSession, ApiToken, EmailToken):
        session.execute(delete(model).where(model.user_id == user.id))
    session.execute(delete(MediaEntry).where(MediaEntry.owner_id == user.id))  # renditions, steps: cascade
    done.held_until = _hold(session, user.username, rt.settings.username_hold_days)
    audit.record(session, actor, "user.delete", "user", user.id, target_label=user.username, reason=reason,
                 details={"media": done.media, "comments": done.comments, "collections": done.collections,
                          "self": actor is not None and actor.id == user.id,
                          "held_until": done.held_until.isoformat() if done.held_until else None}, via=via)
    session.delete(user)
    return done, files, media_facts


def delete_account(rt: Runtime, session: Session, actor: User | None, user: User, *, password: str | None = None,
                   reason: str = "", via: str) -> Deleted:
    """Delete ``user`` and everything they put in (see the module's docstring). Commits, then
    deletes the files."""
    check_may_delete(actor, user, password)
    try:
        done, files, media_facts = _delete_rows(rt, session, actor, user, reason=reason, via=via)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    done.files_left = _after_commit(rt, files, media_facts)
    return done


def _hold(session: Session, username: str, days: int) -> dt.datetime | None:
    if days <= 0:
        return None
    until = utcnow() + dt.timedelta(days=days)
    held = session.get(HeldUsername, username)
    if held is None:
        session.add(HeldUsername(username=username, until=until))
    else:
        held.until = max(held.until, until)
    return until


def _after_commit(rt: Runtime, files: list[tuple[str, list[str]]], media_facts: list[dict[str, object]]) -> int:
    """The files, now that no row points at them (as ``kiln.media.services.delete`` does for one
    item). A store that fails now leaves its files for ``kiln storage gc``: the account is deleted
    whatever happens here. Returns how many deletions failed."""
    failed = 0
    for facts in media_facts:
        plugins.notify("kiln_media_deleted", runtime=rt, **facts)
    for store_name, key in files:
        try:
            rt.stores.by_name(store_name).delete(key)
        except (StorageError, OSError) as exc:
            failed += 1
            log.warning("could not delete %s from the %s store (kiln storage gc will): %s", key, store_name, exc)
    for facts in media_facts:
        for store_name in STORE_NAMES:
            try:
                rt.stores.by_name(store_name).delete_dir(["entries", str(facts["media_id"])])
            except (StorageError, OSError) as exc:
                failed += 1
                log.warning("could not empty entries/%s in the %s store: %s", facts["media_id"], store_name, exc)
    return failed

