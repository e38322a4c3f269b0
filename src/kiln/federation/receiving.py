"""What other servers' activities do to local things (``kiln.federation.inbox.process`` calls these, in
the background, after the request that brought the activity was answered):

- ``Create{Note}`` replying to a local item, or to a comment on one, becomes a comment whose author is
  the remote actor (``Comment.remote_actor_id``; its body is the Note's HTML after the comments'
  allow-list); ``Update{Note}`` edits it, ``Delete`` takes it away, and a ``Delete`` of the actor
  itself takes all of theirs;
- ``Create`` of a post that replies to nothing, from an actor someone here follows, is kept as a remote
  post (kiln.federation.posts); ``Update`` and ``Delete`` of it edit and remove it;
- ``Like`` becomes a favourite and ``Announce`` a boost (``RemoteReaction``, counted on the item), and
  ``Undo`` takes either back;
- ``Flag`` becomes a report in the moderation queue.

Every decision is taken against the item as it is *now*, not as it was when the activity arrived: an
item made private, removed, or with comments turned off meanwhile accepts nothing. Each handler
returns the outcome kept on the ``InboxActivity`` row (``kiln federation`` and tests read it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.db.base import rowcount, utcnow
from kiln.errors import NotFound
from kiln.federation import actors, moderation, posts
from kiln.federation.models import URI_MAX, InboxActivity, RemoteActor, RemoteReaction
from kiln.media.models import MediaEntry, MediaState
from kiln.media.text import html_text, sanitise_html
from kiln.media.visibility import visible
from kiln.moderation.models import REPORT_TEXT_MAX, Report
from kiln.social import comments
from kiln.social.models import COMMENT_MAX, Comment, Follow, Notification
from kiln.social.notify import notify

if TYPE_CHECKING:
    from kiln.runtime import Runtime

NOTE_TYPES = ("Note", "Article", "Page")
_ITEM = re.compile(r"/u/[A-Za-z0-9_.\-]{1,30}/m/(\d{1,10})")
_COMMENT = re.compile(r"/m/(\d{1,10})/comments/(\d{1,10})")
# The counter each kind of reaction moves on the item.
_COUNTERS = {"like": "favourite_count", "announce": "boost_count"}


def uri(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= URI_MAX else ""


def _host(address: str) -> str:
    return moderation.host_of(address)


def open_to_others(media: MediaEntry | None) -> bool:
    """Whether other servers may do anything to ``media``: processed, seen by anyone with its link
    (public or unlisted), not removed, its owner not banned (the one visibility rule, asked as an
    anonymous visitor)."""
    return (media is not None and media.state == MediaState.PROCESSED and visible(media, None)
            and not media.owner.banned_now and not media.owner.pending_approval)


def local_item(rt: Runtime, session: Session, address: str) -> MediaEntry | None:
    """The item one of Kiln's own Note ids (an item's page address) names, if others may see it."""
    base = rt.settings.link_base()
    if not address.startswith(base):
        return None
    found = _ITEM.fullmatch(address[len(base):])
    media = session.get(MediaEntry, int(found.group(1))) if found else None
    return media if open_to_others(media) else None


def _local_comment(rt: Runtime, session: Session, address: str) -> Comment | None:
    """A comment named by its permalink here, or a remote reply kept here by its Note id."""
    base = rt.settings.link_base()
    if address.startswith(base):
        found = _COMMENT.fullmatch(address[len(base):])
        return session.get(Comment, int(found.group(2))) if found else None
    return session.scalar(select(Comment).where(Comment.remote_uri == address))


def _actor(session: Session, row: InboxActivity) -> RemoteActor | None:
    return session.scalar(select(RemoteActor).where(RemoteActor.uri == row.actor_uri))


# Replies -------------------------------------------------------------------------------------------

def _note(row: InboxActivity, types: tuple[str, ...] = NOTE_TYPES) -> dict[str, Any] | None:
    """The Note (or another of ``types``) an activity carries when it is the sender's own, on the
    sender's server."""
    note = row.payload.get("object")
    if not isinstance(note, dict) or note.get("type") not in types or not uri(note.get("id")):
        return None
    author = uri(note.get("attributedTo")) or row.actor_uri
    if author != row.actor_uri or _host(uri(note["id"])) != _host(row.actor_uri):
        return None
    return note


def _clean_content(note: dict[str, Any]) -> str | None:
    """The Note's HTML after the allow-list, or None when nothing (or too much) is left."""
    content = note.get("content")
    if not isinstance(content, str):
        return None
    clean = str(sanitise_html(content)).strip()
    text = html_text(clean)
    return clean if text and len(text) <= COMMENT_MAX and len(clean) <= COMMENT_MAX * 4 else None


def create(rt: Runtime, session: Session, row: InboxActivity) -> str:
    note = _note(row, posts.POST_TYPES)
    if note is None:
        return "ignored"
    target = uri(note.get("inReplyTo"))
    if not target:  # a post of theirs: kept when someone here follows them (kiln.federation.posts)
        return posts.keep(rt, session, row, note)
    if note.get("type") not in NOTE_TYPES:
        return "ignored"
    parent = _local_comment(rt, session, target)
    media = session.get(MediaEntry, parent.media_id) if parent is not None else local_item(rt, session, target)
    if media is None or not open_to_others(media):
        return "unknown_object"
    if not media.comments_enabled or not media.owner.comments_enabled:
        return "comments_off"
    actor = _actor(session, row)
    if actor is None:
        return "unknown_actor"
    # Replies are one level deep: a reply to a reply joins its thread, first, so that the blocks asked
    # are those of everyone it reaches (as comments.post does for local replies): the thread's author,
    # the author of the comment replied to, and the item's owner.
    top = session.get(Comment, parent.parent_id) if parent is not None and parent.parent_id is not None else parent
    if parent is not None and (top is None or top.media_id != media.id):
        return "unknown_object"
    reached: set[int | None] = {media.owner_id}
    if top is not None and parent is not None:
        reached |= {top.author_id, parent.author_id}
    if any(moderation.blocks(session, user_id, actor.id) for user_id in reached):
        return "blocked"
    if session.scalar(select(Comment.id).where(Comment.remote_uri == uri(note["id"]))) is not None:
        return "duplicate"
    body = _clean_content(note)
    if body is None:
        return "empty_or_too_long"
    parent = top
    if parent is not None and (parent.deleted is not None or parent.held):
        return "unknown_object"
    comment = Comment(media_id=media.id, author_id=None, remote_actor_id=actor.id, remote_uri=uri(note["id"]),
                      parent_id=parent.id if parent is not None else None, body=body,
                      held=_must_hold(rt, session, actor) or silenced(session, actor.uri))
    # The same Note delivered twice at once: the second run fails on remote_uri's uniqueness, and its
    # retry finds the first (no savepoint here: committing one would ring this session's bells early).
    session.add(comment)
    session.flush()
    if not comment.held:
        session.execute(update(MediaEntry).where(MediaEntry.id == media.id)
                        .values(comment_count=MediaEntry.comment_count + 1, updated=MediaEntry.updated))
        comments.tell(session, media, comment, parent)
    return "commented"


def silenced(session: Session, address: str) -> bool:
    """An actor on a silenced server: its replies wait for a moderator, its likes and follows tell nobody."""
    return moderation.rule_for(session, address) == "silence"


def _must_hold(rt: Runtime, session: Session, actor: RemoteActor) -> bool:
    """``hold_first_comments`` applies to remote authors as to new accounts."""
    needed = rt.settings.hold_first_comments
    if needed <= 0:
        return False
    approved = session.scalar(select(func.count()).select_from(Comment).where(
        Comment.remote_actor_id == actor.id, Comment.held.is_(False)))
    return (approved or 0) < needed


def _their_comment(session: Session, row: InboxActivity, address: str) -> Comment | None:
    actor = _actor(session, row)
    if actor is None or not address:
        return None
    return session.scalar(select(Comment).where(Comment.remote_uri == address, Comment.remote_actor_id == actor.id))


def edit(rt: Runtime, session: Session, row: InboxActivity) -> str:
    note = _note(row, posts.POST_TYPES)
    if note is None:
        return "ignored"
    kept = posts.theirs(session, row, uri(note["id"]))
    if kept is not None:
        return posts.edit(rt, session, kept, note)
    comment = _their_comment(session, row, uri(note["id"]))
    if comment is None or comment.deleted is not None:
        return "unknown_object"
    media = session.get(MediaEntry, comment.media_id)
    if not open_to_others(media):
        return "unknown_object"
    body = _clean_content(note)
    if body is None:
        return "empty_or_too_long"
    comment.body, comment.edited = body, utcnow()
    return "edited"


def remove(rt: Runtime, session: Session, row: InboxActivity) -> str:
    """``Delete`` of one of their replies, or of the actor itself (all their replies and reactions go,
    and they stop following anyone here)."""
    address = uri(row.payload.get("object"))
    if address and address == row.actor_uri:
        return _forget_actor(session, row)
    kept = posts.theirs(session, row, address)
    if kept is not None:
        session.delete(kept)
        return "post_deleted"
    comment = _their_comment(session, row, address)
    if comment is None:
        return "unknown_object"
    if comment.deleted is None:
        comments.drop(session, session.get(MediaEntry, comment.media_id), comment)  # type: ignore[arg-type]
    return "deleted"


def _forget_actor(session: Session, row: InboxActivity) -> str:
    actor = _actor(session, row)
    if actor is None:
        return "unknown_actor"
    forget(session, actor)
    return "actor_deleted"


def forget(session: Session, actor: RemoteActor) -> None:
    """Take away everything ``actor`` left here: replies, likes and boosts (counts kept right), their
    posts, their follows and the follows of them (an account deleted elsewhere, a domain blocked)."""
    # Newest first: replies go before the comments they answer (a parent left with no reply goes too).
    for comment in list(session.scalars(select(Comment).where(Comment.remote_actor_id == actor.id,
                                                              Comment.deleted.is_(None))
                                        .order_by(Comment.id.desc()))):
        media = session.get(MediaEntry, comment.media_id)
        if media is not None and session.get(Comment, comment.id) is not None:
            comments.drop(session, media, comment)
            session.flush()
    for reaction in list(session.scalars(select(RemoteReaction).where(RemoteReaction.actor_id == actor.id))):
        _uncount(session, reaction.media_id, reaction.kind)
        session.delete(reaction)
    session.execute(delete(Follow).where(Follow.follower_uri == actor.uri))
    session.execute(delete(Follow).where(Follow.followee_uri == actor.uri))
    posts.forget(session, actor)


# Likes and boosts ----------------------------------------------------------------------------------

def _uncount(session: Session, media_id: int, kind: str) -> None:
    column = getattr(MediaEntry, _COUNTERS[kind])
    session.execute(update(MediaEntry).where(MediaEntry.id == media_id)
                    .values({column: column - 1, "updated": MediaEntry.updated}))


def react(rt: Runtime, session: Session, row: InboxActivity) -> str:
    """``Like`` (a favourite) or ``Announce`` (a boost) of a local item: counted once per actor, and
    its owner told (once while the notification is unread)."""
    kind = "like" if row.type == "Like" else "announce"
    media = local_item(rt, session, uri(row.payload.get("object")))
    actor = _actor(session, row)
    if media is None:
        return "unknown_object"
    if actor is None:
        return "unknown_actor"
    if moderation.blocks(session, media.owner_id, actor.id):
        return "blocked"
    if session.get(RemoteReaction, (media.id, actor.id, kind)) is not None:
        return "duplicate"
    session.add(RemoteReaction(media_id=media.id, actor_id=actor.id, kind=kind,
                               activity_uri=uri(row.payload.get("id")) or None))
    session.flush()  # two at once: the second fails on the key and its retry finds the first
    column = getattr(MediaEntry, _COUNTERS[kind])
    session.execute(update(MediaEntry).where(MediaEntry.id == media.id)
                    .values({column: column + 1, "updated": MediaEntry.updated}))
    type_ = "favourite" if kind == "like" else "boost"
    told = session.scalar(select(Notification.id).where(
        Notification.user_id == media.owner_id, Notification.type == type_, Notification.media_id == media.id,
        Notification.remote_actor_id == actor.id, Notification.read.is_(None)))
    if told is None and not silenced(session, actor.uri):
        notify(session, media.owner, type_, media_id=media.id, remote_actor_id=actor.id)
    return "liked" if kind == "like" else "boosted"


def unreact(session: Session, row: InboxActivity, undone: dict[str, Any]) -> str:
    """``Undo`` of a ``Like`` or ``Announce`` (given whole, or found by its id)."""
    kind = "like" if undone.get("type") == "Like" else "announce"
    actor = _actor(session, row)
    if actor is None:
        return "unknown_actor"
    query = select(RemoteReaction).where(RemoteReaction.actor_id == actor.id, RemoteReaction.kind == kind)
    activity_id, target = uri(undone.get("id")), uri(undone.get("object"))
    found = None
    if activity_id:
        found = session.scalar(query.where(RemoteReaction.activity_uri == activity_id))
    if found is None and target:
        found = next((r for r in session.scalars(query) if _names_item(session, r.media_id, target)), None)
    if found is None:
        return "unknown_object"
    media_id = found.media_id
    if rowcount(session.execute(delete(RemoteReaction).where(
            RemoteReaction.media_id == media_id, RemoteReaction.actor_id == actor.id,
            RemoteReaction.kind == kind))) > 0:
        _uncount(session, media_id, kind)
    return "unliked" if kind == "like" else "unboosted"


def _names_item(session: Session, media_id: int, address: str) -> bool:
    found = _ITEM.search(address)
    return found is not None and int(found.group(1)) == media_id


# Reports -------------------------------------------------------------------------------------------

def flag(rt: Runtime, session: Session, row: InboxActivity) -> str:
    """``Flag``: a report from another server's moderators (or one of its people) about local items,
    comments or accounts. Each named thing that others may see makes one open case in the queue
    (category "other", the Flag's text kept); a report of an account with some of its items names
    the items. Anything private, removed or unknown is passed over."""
    from kiln.moderation.reports import Target, find_target

    actor = _actor(session, row)
    if actor is None:
        return "unknown_actor"
    named = row.payload.get("object")
    addresses = [uri(a) for a in (named if isinstance(named, list) else [named])][:50]
    targets: list[Target] = []
    people: list[Target] = []
    for address in filter(None, addresses):
        media = local_item(rt, session, address)
        comment = _local_comment(rt, session, address) if media is None else None
        name = actors.username_of(rt.settings, address) if media is None and comment is None else None
        try:
            if media is not None:
                targets.append(find_target(session, "media", media.id))
            elif comment is not None and comment.deleted is None and open_to_others(
                    session.get(MediaEntry, comment.media_id)):
                targets.append(find_target(session, "comment", comment.id))
            elif name is not None:
                people.append(find_target(session, "user", actors.local_actor(session, name).id))
        except NotFound:  # gone, or not to be seen
            continue
    chosen = targets or people
    if not chosen:
        return "unknown_object"
    content = row.payload.get("content")
    text = html_text(content)[:REPORT_TEXT_MAX] if isinstance(content, str) else ""
    for target in chosen:
        open_already = session.scalar(select(Report.id).where(
            Report.remote_reporter_id == actor.id, Report.state == "open", Report.target_type == target.type,
            Report.target_id == target.id))
        if open_already is None:
            owner: User | None = target.owner
            session.add(Report(reporter_id=None, remote_reporter_id=actor.id, target_type=target.type,
                               target_id=target.id, target_owner_id=owner.id if owner else None, category="other",
                               text=text, snapshot={**target.snapshot(), "from": actor.handle}, state="open",
                               resolution=""))
    return "reported"
