"""What a notification says, in the reader's language: a plain sentence (API, mail) and the same
sentence with links (the notifications page). Everything a list needs is loaded in two queries,
whatever its length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.i18n import _, interpolate
from kiln.media.models import MediaEntry
from kiln.social.models import Collection, Notification

COLLECTION_PATH = "/c/{id}"  # the collection page (kiln.web.collections)
REQUESTS_PATH = "/account/follow-requests"  # follow requests from other servers (kiln.web.follow_requests)


@dataclass
class Described:
    notification: Notification
    text: str  # the sentence, plain
    html: Markup  # the sentence with links to the people and things it names
    url: str  # where it leads (a path; mail adds the site's address)


def _sentence(type_: str) -> str:
    """The sentence of a type, with %(actor)s, %(title)s and %(collection)s where they go."""
    if type_ == "comment":
        return _("%(actor)s commented on %(title)s")
    if type_ == "reply":
        return _("%(actor)s replied to your comment on %(title)s")
    if type_ == "favourite":
        return _("%(actor)s favourited %(title)s")
    if type_ == "follow":
        return _("%(actor)s started following you")
    if type_ == "boost":
        return _("%(actor)s boosted %(title)s")
    if type_ == "follow_request":
        return _("%(actor)s asks to follow you")
    if type_ == "invite":
        return _("%(actor)s invited you to add your media to the collection %(collection)s")
    if type_ == "warning":
        return _("A warning from the moderators: %(reason)s")
    if type_ == "report_outcome":
        return _("The moderators have dealt with your report: %(outcome)s")
    return _("Your upload %(title)s could not be processed; the processing panel says why")


def _removed_sentence(n: Notification) -> str:
    """What the moderators removed (kiln.moderation.removal), with their reason."""
    if n.comment_id:
        return _("The moderators removed your comment on %(title)s: %(reason)s")
    if n.collection_id:
        return _("The moderators removed your collection %(collection)s: %(reason)s")
    return _("The moderators removed %(title)s: %(reason)s")


def outcome_text(outcome: str) -> str:
    """What became of a report, said to its reporter (the moderators' reason is not: it may name others)."""
    if outcome == "dismissed":
        return _("no rule was broken, so nothing was done")
    if outcome == "removed":
        return _("the content was removed")
    if outcome in ("warned", "revoked", "banned"):
        return _("action was taken against the account")
    return _("it is closed")


def describe(session: Session, rows: Sequence[Notification]) -> list[Described]:
    """Each notification's sentence and link, for a page of them (media and collections in one query each)."""
    media_ids = {n.media_id for n in rows if n.media_id}
    collection_ids = {n.collection_id for n in rows if n.collection_id}
    media: dict[int, tuple[str, str]] = {}
    if media_ids:
        media = {mid: (title, owner) for mid, title, owner in session.execute(
            select(MediaEntry.id, MediaEntry.title, User.username).join(User, User.id == MediaEntry.owner_id)
            .where(MediaEntry.id.in_(media_ids)))}
    collections: dict[int, str] = {}
    if collection_ids:
        # A Result has keys(): dict() would take it for a mapping, so build the dict from its rows.
        collections = {cid: title for cid, title in session.execute(
            select(Collection.id, Collection.title).where(Collection.id.in_(collection_ids)))}
    return [_one(n, media, collections) for n in rows]


def _one(n: Notification, media: dict[int, tuple[str, str]], collections: dict[int, str]) -> Described:
    actor, remote = n.actor, n.remote_actor
    if remote is not None:  # someone on another server: named as people write them there, linked there
        actor_name, actor_url = remote.handle, remote.link
    else:
        actor_name = (actor.display_name or actor.username) if actor else _("someone")
        actor_url = f"/u/{actor.username}" if actor else ""
    title, owner = media.get(n.media_id or 0, (_("an item"), ""))
    media_url = f"/u/{owner}/m/{n.media_id}" if owner else ""
    collection = collections.get(n.collection_id or 0, _("a collection"))
    collection_url = COLLECTION_PATH.format(id=n.collection_id) if n.collection_id else ""
    if n.type in ("comment", "reply") and n.comment_id and media_url:
        # The permalink finds the page of the thread that shows it (it may no longer be the first).
        url = f"/m/{n.media_id}/comments/{n.comment_id}"
    elif n.type == "follow":
        url = actor_url if actor_url and remote is None else "/notifications"
    elif n.type == "follow_request":
        url = REQUESTS_PATH
    elif n.type == "invite":
        url = collection_url or "/notifications"
    elif n.type == "failed":
        url = "/panel"
    elif n.type == "report_outcome":
        url = "/reports/mine"
    elif n.type == "removed" and n.collection_id:
        url = collection_url
    else:
        url = media_url or "/notifications"
    sentence = _removed_sentence(n) if n.type == "removed" else _sentence(n.type)
    reason = str((n.extra or {}).get("reason", ""))  # a warning's or a removal's (kiln.moderation)
    outcome = outcome_text(str((n.extra or {}).get("outcome", "")))  # a report's (kiln.moderation.reports)
    plain: dict[str, Any] = {"actor": actor_name, "title": title, "collection": collection, "reason": reason,
                             "outcome": outcome}
    text = interpolate(sentence, plain)

    def link(label: str, href: str) -> Markup:
        return Markup('<a href="{}">{}</a>').format(href, label) if href else escape(label)

    if remote is not None and actor_url:  # a link to elsewhere, marked so
        actor_link = Markup('<a href="{}" rel="nofollow ugc noopener">{}</a>').format(actor_url, actor_name)
    else:
        actor_link = link(actor_name, actor_url)
    linked = {"actor": actor_link, "title": link(title, media_url),
              "collection": link(collection, collection_url), "reason": escape(reason), "outcome": escape(outcome)}
    html = Markup(interpolate(str(escape(sentence)), linked))
    return Described(n, text, html, url)


def describe_json(d: Described, base: str) -> dict[str, Any]:
    n = d.notification
    actor = n.actor.username if n.actor else n.remote_actor.handle if n.remote_actor else None
    return {"id": n.id, "type": n.type, "read": n.read is not None, "created": n.created.isoformat(),
            "actor": actor, "media_id": n.media_id, "comment_id": n.comment_id,
            "collection_id": n.collection_id, "message": d.text, "url": base + d.url}
