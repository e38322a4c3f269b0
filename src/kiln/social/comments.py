"""Comments on media: Markdown, sanitised when shown (``kiln.media.text.render_markdown``), replies one
level deep, edited and deleted by their author, deleted by the item's owner and by moderators and
admins.

Who may comment: a logged-in, verified ("active") account with the ``commenter`` privilege, on a
processed item it may see, when neither the item (``MediaEntry.comments_enabled``) nor its owner's
account (``User.comments_enabled``) has comments turned off, and at most
``security.comments_per_user_per_hour`` times an hour.

With ``hold_first_comments`` set to N, the comments of an account with fewer than N approved comments
are held (``Comment.held``): shown only to their author ("waiting for approval") and to moderators
(kiln.moderation.held), not counted, nobody notified, until a moderator approves them.

``MediaEntry.comment_count`` counts the comments shown (replies included, placeholders not). It is
changed by an SQL increment in the transaction that adds or removes the row, so two comments posted
at once both count; ``media.updated`` (the item's own edits) is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from kiln.accounts.models import User
from kiln.accounts.throttle import HOUR, Throttle
from kiln.db.base import utcnow
from kiln.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from kiln.i18n import N_
from kiln.media.models import MediaEntry, MediaState
from kiln.media.text import render_markdown, sanitise_html
from kiln.media.visibility import visible
from kiln.runtime import Runtime
from kiln.social import blocks
from kiln.social.models import COMMENT_MAX, Comment
from kiln.social.notify import notify
from kiln.typed import clean_typed

PER_PAGE = 50  # top-level comments per page, each with all its replies
NO_SUCH_COMMENT = N_("There is no such comment. It may have been deleted.")


def refusal(media: MediaEntry, user: User | None) -> PermissionDenied | NotAuthenticated | None:
    """Why ``user`` may not comment on ``media`` (which they can see), or None when they may."""
    if media.state != MediaState.PROCESSED or not media.comments_enabled or not media.owner.comments_enabled:
        return PermissionDenied("Comments are turned off for this item.", code="comments_off")
    if user is None:
        return NotAuthenticated("Log in to comment.")
    if not user.is_active:
        return PermissionDenied("Confirm your email address before you comment.", code="not_verified")
    if not user.has("commenter"):
        return PermissionDenied("Your account may not comment.", code="not_commenter")
    return None


def check_visible(media: MediaEntry, user: User | None) -> None:
    if not visible(media, user):
        raise NotFound("There is no such media. It may have been deleted.")


def clean_body(body: str) -> str:
    text = clean_typed(body or "").strip()
    if not text:
        raise InvalidInput("Write something first: the comment is empty.", code="empty_comment")
    if len(text) > COMMENT_MAX:
        raise InvalidInput("A comment can be at most %(max)s characters long; this one has %(length)s.",
                           code="comment_too_long", max=COMMENT_MAX, length=len(text))
    return text


def get_comment(session: Session, media: MediaEntry, comment_id: int, viewer: User | None = None) -> Comment:
    """A comment of ``media`` that is still shown (a placeholder counts as gone); a held one only for
    its author and moderators."""
    comment = session.get(Comment, comment_id)
    if comment is None or comment.media_id != media.id or comment.deleted is not None:
        raise NotFound(NO_SUCH_COMMENT)
    if comment.held and not (viewer is not None and (viewer.id == comment.author_id or moderates(viewer))):
        raise NotFound(NO_SUCH_COMMENT)
    return comment


def moderates(user: User) -> bool:
    return user.has("moderator") or user.is_admin


def must_hold(rt: Runtime, session: Session, user: User) -> bool:
    """Whether a new comment of ``user`` waits for a moderator (``hold_first_comments``)."""
    needed = rt.settings.hold_first_comments
    if needed <= 0 or moderates(user):
        return False
    approved = session.scalar(select(func.count()).select_from(Comment).where(
        Comment.author_id == user.id, Comment.held.is_(False)))
    return (approved or 0) < needed


def held_of(session: Session, media: MediaEntry, user: User | None) -> list[Comment]:
    """``user``'s own comments on ``media`` that wait for a moderator, oldest first."""
    if user is None:
        return []
    return list(session.scalars(select(Comment).where(Comment.media_id == media.id, Comment.author_id == user.id,
                                                      Comment.held.is_(True)).order_by(Comment.id)))


def tell(session: Session, media: MediaEntry, comment: Comment, parent: Comment | None) -> None:
    """Notify the parent's author and the item's owner of a comment now shown (the owner hears once).
    The author may be on another server (a reply received by federation)."""
    replied_to = parent.author if parent is not None else None
    author, remote = comment.author_id, comment.remote_actor_id
    if replied_to is not None:
        notify(session, replied_to, "reply", actor_id=author, remote_actor_id=remote, media_id=media.id,
               comment_id=comment.id)
    if replied_to is None or replied_to.id != media.owner_id:
        notify(session, media.owner, "comment", actor_id=author, remote_actor_id=remote, media_id=media.id,
               comment_id=comment.id)


def body_html(comment: Comment) -> Markup:
    """A comment's body as pages show it: Markdown rendered, or a remote reply's HTML, both through the
    one allow-list (kiln.media.text)."""
    if comment.remote_actor_id is not None:
        return sanitise_html(comment.body)
    return render_markdown(comment.body)


def _count(session: Session, media_id: int, delta: int) -> None:
    # updated=updated: the column's onupdate would otherwise stamp the item as edited.
    session.execute(update(MediaEntry).where(MediaEntry.id == media_id)
                    .values(comment_count=MediaEntry.comment_count + delta, updated=MediaEntry.updated))


def post(rt: Runtime, session: Session, user: User | None, media: MediaEntry, body: str,
         parent_id: int | None = None) -> Comment:
    """Add a comment (a reply when ``parent_id`` is given; a reply to a reply joins its thread) and
    tell the item's owner and the parent's author. Commits."""
    check_visible(media, user)
    refused = refusal(media, user)
    if refused is not None:
        raise refused
    assert user is not None
    blocks.check_may_interact(session, user, media.owner_id, media.owner.username, "comment")
    text = clean_body(body)
    parent = None
    if parent_id is not None:
        parent = session.get(Comment, parent_id)
        if parent is not None and parent.parent_id is not None:
            parent = session.get(Comment, parent.parent_id)
        if parent is None or parent.media_id != media.id or parent.deleted is not None or parent.held:
            raise NotFound("The comment you replied to is gone. It may have been deleted.", code="no_parent")
        if parent.author is not None:
            blocks.check_may_interact(session, user, parent.author.id, parent.author.username, "reply")
    throttle = Throttle(rt.settings.security, rt.sessions)
    key = f"comment-user:{user.id}"
    throttle.check(key, N_("You have posted many comments in a short time."))
    throttle.hit(key, rt.settings.security.comments_per_user_per_hour, HOUR)
    comment = Comment(media_id=media.id, author_id=user.id, parent_id=parent.id if parent else None, body=text,
                      held=must_hold(rt, session, user))
    session.add(comment)
    session.flush()
    if not comment.held:  # a held one is counted and told when a moderator approves it
        _count(session, media.id, +1)
        tell(session, media, comment, parent)
    session.commit()
    return comment


def check_author(comment: Comment, user: User | None) -> None:
    if user is None or comment.author_id != user.id:
        raise PermissionDenied("Only its author can edit a comment.", code="not_author")
    if not user.is_active or not user.has("commenter"):
        raise PermissionDenied("Your account may not comment.", code="not_commenter")


def edit(session: Session, user: User | None, media: MediaEntry, comment: Comment, body: str) -> Comment:
    check_visible(media, user)
    check_author(comment, user)
    comment.body = clean_body(body)
    comment.edited = utcnow()
    session.commit()
    return comment


def may_delete(comment: Comment | None, media: MediaEntry, user: User | None) -> bool:
    """The author, the item's owner, moderators and admins (``comment`` None: anyone's comment here)."""
    if user is None:
        return False
    author = comment.author_id if comment is not None else None
    return user.id in (author, media.owner_id) or user.has("moderator") or user.is_admin


def delete(session: Session, user: User | None, media: MediaEntry, comment: Comment) -> None:
    """Remove a comment. One that has replies stays as a placeholder ("deleted comment") so the thread
    still reads; the last reply going takes its deleted parent with it. Commits."""
    check_visible(media, user)
    if not may_delete(comment, media, user):
        raise PermissionDenied("Only its author, the owner of the item and moderators can delete a comment.",
                               code="not_author")
    drop(session, media, comment)
    session.commit()


def drop(session: Session, media: MediaEntry, comment: Comment) -> None:
    """Take a comment away, whoever asked (``delete`` checks who may; a remote author's ``Delete`` is
    checked by its signature). The caller commits."""
    if comment.held:  # never shown nor counted: simply gone
        session.delete(comment)
        return
    has_replies = comment.parent_id is None and session.scalar(
        select(func.count()).select_from(Comment).where(Comment.parent_id == comment.id)) != 0
    parent = session.get(Comment, comment.parent_id) if comment.parent_id is not None else None
    if has_replies:
        comment.deleted, comment.body = utcnow(), ""
    else:
        session.delete(comment)
        session.flush()
        if parent is not None and parent.deleted is not None and parent.removed is None and session.scalar(
                select(func.count()).select_from(Comment).where(Comment.parent_id == parent.id)) == 0:
            session.delete(parent)
    _count(session, media.id, -1)


def page_of(session: Session, comment: Comment) -> int | None:
    """The ``before`` cursor of the media page's comment page that shows ``comment`` (None: the first)."""
    top = comment.parent_id or comment.id
    newer = select(Comment.id).where(Comment.media_id == comment.media_id, Comment.parent_id.is_(None),
                                     Comment.held.is_(False), Comment.id > top)
    page = (session.scalar(select(func.count()).select_from(newer.subquery())) or 0) // PER_PAGE
    if page == 0:
        return None
    return session.scalar(newer.order_by(Comment.id.desc()).offset(page * PER_PAGE - 1).limit(1))


@dataclass
class Thread:
    """One page of a media item's comments: top-level comments newest first, each with its replies
    (oldest first, as a conversation reads); ``next_cursor`` fetches the page of older ones."""

    comments: list[Comment] = field(default_factory=list)
    replies: dict[int, list[Comment]] = field(default_factory=dict)
    next_cursor: int | None = None


def thread(session: Session, media: MediaEntry, before: int | None = None, per_page: int = PER_PAGE,
           viewer: User | None = None) -> Thread:
    """At most two queries whatever the number of comments: the page's top-level comments, then all
    their replies (authors joined in both; their privileges are not loaded). The comments of people
    hidden from ``viewer`` (kiln.social.blocks) are left out, with the replies to them, except on the
    viewer's own media, where they may have to delete them."""
    if media.comment_count <= 0:  # nothing shown: no placeholder can be left either
        return Thread()
    if viewer is not None and viewer.id == media.owner_id:
        viewer = None
    options = (joinedload(Comment.author).lazyload(User.privileges),)
    query = select(Comment).options(*options).where(Comment.media_id == media.id, Comment.parent_id.is_(None),
                                                    Comment.held.is_(False))
    query = blocks.leave_out(session, viewer, query, func.coalesce(Comment.author_id, 0))
    if before is not None:
        query = query.where(Comment.id < before)
    rows = list(session.scalars(query.order_by(Comment.id.desc()).limit(per_page + 1)))
    page = rows[:per_page]
    out = Thread(page, {c.id: [] for c in page}, page[-1].id if len(rows) > per_page else None)
    if page:
        replies = session.scalars(blocks.leave_out(session, viewer, select(Comment).options(*options).where(
            Comment.parent_id.in_(out.replies), Comment.held.is_(False)), func.coalesce(Comment.author_id, 0))
            .order_by(Comment.id))
        for reply in replies:
            out.replies[reply.parent_id].append(reply)  # type: ignore[index]
    return out
