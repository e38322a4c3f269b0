"""Local accounts answer posts from elsewhere (kiln.federation.posts): the answer is kept here, shown
under the post, and sent to the post's author as a signed ``Create{Note}`` whose ``inReplyTo`` is the
post's id (after the commit, through the outbox). On another Kiln it becomes a comment on the item;
Mastodon and PixelFed show it as a reply. A favourite is sent as ``Like`` (taken back: ``Undo{Like}``);
on another Kiln it counts among the item's favourites."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, NotFound, PermissionDenied
from kiln.federation import actors, delivery, moderation
from kiln.federation.models import RemotePost, RemotePostComment, RemotePostFavourite
from kiln.media.text import render_markdown
from kiln.social.models import COMMENT_MAX

if TYPE_CHECKING:
    from kiln.runtime import Runtime


def get_post(session: Session, post_id: int, viewer: User | None) -> RemotePost:
    """A post kept from elsewhere, for a logged-in reader (nobody else: Kiln is not their mirror)."""
    post = session.get(RemotePost, post_id)
    if post is None or viewer is None:
        raise NotFound("There is no such post.")
    return post


def answers(session: Session, post: RemotePost) -> list[RemotePostComment]:
    return list(session.scalars(select(RemotePostComment).where(RemotePostComment.post_id == post.id)
                                .order_by(RemotePostComment.id)))


def note_id(rt: Runtime, post: RemotePost, answer: RemotePostComment) -> str:
    return f"{rt.settings.link_base()}/remote/posts/{post.id}#answer-{answer.id}"


def note(rt: Runtime, author: User, post: RemotePost, answer: RemotePostComment) -> dict[str, Any]:
    me = actors.actor_id(rt.settings, author.username)
    address = note_id(rt, post, answer)
    return {"id": address, "type": "Note", "attributedTo": me, "inReplyTo": post.uri,
            "content": str(render_markdown(answer.body)), "published": answer.created.isoformat(),
            "to": [actors.PUBLIC], "cc": [post.actor.uri, f"{me}/followers"], "url": address,
            "tag": [{"type": "Mention", "href": post.actor.uri, "name": post.actor.handle}]}


def answer(rt: Runtime, session: Session, author: User, post: RemotePost, body: str) -> RemotePostComment:
    """Keep ``author``'s answer and send it to the post's author. The caller commits."""
    text = (body or "").strip()
    if not text:
        raise InvalidInput("Write something first.", code="empty")
    if len(text) > COMMENT_MAX:
        raise InvalidInput("A comment may be at most %(n)s characters long.", code="too_long", n=COMMENT_MAX)
    if not author.is_active:
        raise PermissionDenied("Confirm your email address before you comment.", code="not_verified")
    if moderation.rule_for(session, post.actor.uri) == "block" or moderation.blocks(session, author.id,
                                                                                     post.actor_id):
        raise PermissionDenied("You cannot answer this account.", code="blocked")
    row = RemotePostComment(post_id=post.id, author_id=author.id, body=text)
    session.add(row)
    session.flush()
    document = note(rt, author, post, row)
    me = document["attributedTo"]
    activity = {"@context": actors.AS_CONTEXT, "id": f"{document['id']}-create", "type": "Create", "actor": me,
                "published": document["published"], "to": document["to"], "cc": document["cc"], "object": document}
    delivery.deliver_later(session, author, post.actor.inbox, activity)
    return row


def favourited(session: Session, user: User | None, post_ids: list[int]) -> set[int]:
    """Which of these posts ``user`` favourited (one query)."""
    if user is None or not post_ids:
        return set()
    return set(session.scalars(select(RemotePostFavourite.post_id).where(
        RemotePostFavourite.user_id == user.id, RemotePostFavourite.post_id.in_(post_ids))))


def favourite(rt: Runtime, session: Session, user: User, post: RemotePost, on: bool) -> bool:
    """Favourite (``on``) or take it back; the author's server is sent ``Like`` or ``Undo{Like}`` after
    the commit. Again: nothing changes, nothing is sent. Returns whether it is favourited now. The
    caller commits."""
    row = session.get(RemotePostFavourite, (user.id, post.id))
    me = actors.actor_id(rt.settings, user.username)
    if on and row is None:
        if not user.is_active:
            raise PermissionDenied("Confirm your email address before you favourite things.", code="not_verified")
        if moderation.rule_for(session, post.actor.uri) == "block" or moderation.blocks(session, user.id,
                                                                                         post.actor_id):
            raise PermissionDenied("You cannot answer this account.", code="blocked")
        row = RemotePostFavourite(user_id=user.id, post_id=post.id, activity_uri=f"{me}#likes/{secrets.token_hex(8)}")
        session.add(row)
        like = {"@context": actors.AS_CONTEXT, "id": row.activity_uri, "type": "Like", "actor": me,
                "object": post.uri}
        delivery.deliver_later(session, user, post.actor.inbox, like)
    elif not on and row is not None:
        undo = {"@context": actors.AS_CONTEXT, "id": f"{row.activity_uri}/undo", "type": "Undo", "actor": me,
                "object": {"id": row.activity_uri, "type": "Like", "actor": me, "object": post.uri}}
        if moderation.rule_for(session, post.actor.uri) != "block":
            delivery.deliver_later(session, user, post.actor.inbox, undo)
        session.delete(row)
    return on
