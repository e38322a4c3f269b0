"""Comments held for a moderator (``hold_first_comments``, kiln.social.comments.must_hold): the queue,
approving (the comment is shown, counted and its notifications sent, as if posted now) and rejecting
(it is deleted). Each decision is audited in the caller's transaction; the caller commits."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from kiln.accounts.models import User
from kiln.errors import InvalidInput, NotFound, PermissionDenied
from kiln.media.models import MediaEntry
from kiln.moderation import audit
from kiln.moderation.people import REASON_MAX, may_moderate
from kiln.social import comments
from kiln.social.models import Comment

QUEUE_LIMIT = 200


def queue(session: Session, limit: int = QUEUE_LIMIT) -> list[Comment]:
    """Held comments, oldest first, with their item and its owner loaded."""
    return list(session.scalars(select(Comment).options(joinedload(Comment.media).joinedload(MediaEntry.owner))
                                .where(Comment.held.is_(True)).order_by(Comment.id).limit(limit)))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Comment).where(Comment.held.is_(True))) or 0


def _held(session: Session, actor: User | None, comment_id: int) -> Comment:
    if actor is not None and not may_moderate(actor):
        raise PermissionDenied("Only moderators and administrators can do this.", code="not_moderator")
    comment = session.get(Comment, comment_id)
    if comment is None or not comment.held:
        raise NotFound("There is no such comment waiting for approval. Another moderator may have decided it "
                       "already.", code="not_held")
    return comment


def approve(session: Session, actor: User | None, comment_id: int, *, via: str = "web") -> Comment:
    comment = _held(session, actor, comment_id)
    media = comment.media
    comment.held = False
    comments._count(session, media.id, +1)
    parent = session.get(Comment, comment.parent_id) if comment.parent_id is not None else None
    comments.tell(session, media, comment, parent)
    audit.record(session, actor, "comment.approve", "comment", comment.id,
                 target_label=comment.author.username if comment.author else "", details={"media_id": media.id},
                 via=via)
    return comment


def reject(session: Session, actor: User | None, comment_id: int, *, reason: str = "", via: str = "web") -> None:
    comment = _held(session, actor, comment_id)
    text = reason.strip()
    if len(text) > REASON_MAX:
        raise InvalidInput("A reason can have at most %(max)s characters.", code="reason_too_long", max=REASON_MAX)
    audit.record(session, actor, "comment.reject", "comment", comment.id,
                 target_label=comment.author.username if comment.author else "", reason=text,
                 details={"media_id": comment.media_id, "body": comment.body[:2000]}, via=via)
    parent = session.get(Comment, comment.parent_id) if comment.parent_id is not None else None
    session.delete(comment)
    session.flush()
    if parent is not None and parent.deleted is not None and not session.scalar(
            select(func.count()).select_from(Comment).where(Comment.parent_id == parent.id)):
        session.delete(parent)  # a placeholder kept only for replies: none are left
