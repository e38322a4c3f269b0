"""Receiving: what a remote actor (tests/federation/peer.py, signing with apsig over real HTTP on
127.0.0.1) does to alice's items through the inboxes: a reply becomes a comment shown on the page, in
the API and to the moderators, attributed to the remote account with a link; Update edits it, Delete
removes it; Like and Announce are counted and told, Undo takes them back; Flag opens a case; a Delete
of the actor takes everything of theirs. Private items, items with comments off, and an item made
private between the request and its processing accept nothing (kiln.federation.receiving)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from kiln.federation import inbox
from kiln.federation.models import InboxActivity, RemoteReaction
from kiln.media.models import MediaEntry
from kiln.moderation.models import Report
from kiln.social.models import Comment, Follow, Notification
from tests.federation.peer import Peer
from tests.federation.test_follow import follow_activity, post
from tests.federation.test_publish import upload

pytestmark = pytest.mark.db
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def page(media_id: int) -> str:
    return f"http://testserver/u/alice/m/{media_id}"


def reply(peer: Peer, n: int, in_reply_to: str, content: str = "<p>Lovely <b>light</b>!</p>") -> dict[str, Any]:
    note = {"id": f"{peer.base}/notes/{n}", "type": "Note", "attributedTo": peer.actor_id, "inReplyTo": in_reply_to,
            "content": content, "to": [PUBLIC]}
    return {"id": f"{peer.base}/notes/{n}/activity", "type": "Create", "actor": peer.actor_id, "object": note}


def outcome(rt, activity_id: str) -> str:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return session.scalars(select(InboxActivity.outcome).where(InboxActivity.activity_uri == activity_id)).one()


def deliver(fed, rt, peer: Peer, activity: dict[str, Any], path: str = "/inbox") -> str:  # type: ignore[no-untyped-def]
    """Post a signed activity; what processing made of it."""
    answer = post(fed, peer, activity, path=path)
    assert answer.status_code == 202, answer.text
    return outcome(rt, activity["id"])


def counts(rt, media_id: int) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        assert media is not None
        return media.comment_count, media.favourite_count, media.boost_count


def notifications(rt) -> list[tuple[str, int | None]]:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return [(n.type, n.remote_actor_id) for n in session.scalars(select(Notification).order_by(Notification.id))]


def test_a_reply_becomes_a_comment_edited_and_deleted_from_afar(fed, fed_rt, peer, tmp_path):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    hostile = '<p>Nice <script>alert(1)</script><a href="javascript:alert(2)" onclick="x()">pic</a>' \
              '<img src=x onerror=alert(3)><span class="h-card"><a href="https://e.example/@bo">@bo</a></span></p>'
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id), hostile)) == "commented"
    assert counts(fed_rt, media_id)[0] == 1

    with fed_rt.sessions() as session:
        comment = session.scalars(select(Comment)).one()
        assert comment.author_id is None and comment.remote_uri == f"{peer.base}/notes/1"
        assert comment.remote_actor is not None and comment.remote_actor.handle == "@rita@127.0.0.1"
        comment_id = comment.id
    html = fed.get(f"/u/alice/m/{media_id}").text
    assert "@rita@127.0.0.1" in html and f'href="{peer.base}/@rita" rel="nofollow ugc noopener"' in html
    for active in ("<script>alert", "javascript:", "onclick", "onerror", "<img src=x"):
        assert active not in html
    assert 'href="https://e.example/@bo" rel="nofollow ugc noopener"' in html

    listed = fed.get(f"/api/v1/media/{media_id}/comments").json()["items"]
    (item,) = listed
    assert item["author"] == "@rita@127.0.0.1" and item["author_name"] == "Rita Remote" and item["remote"] is True
    assert item["author_url"] == f"{peer.base}/@rita" and "<script" not in item["body_html"]

    # The owner hears of it, named and linked as elsewhere.
    assert [t for t, remote in notifications(fed_rt) if remote] == ["comment"]

    # A reply to that reply joins its thread; a reply to a local comment permalink too.
    assert deliver(fed, fed_rt, peer, reply(peer, 2, f"{peer.base}/notes/1")) == "commented"
    with fed_rt.sessions() as session:
        second = session.scalars(select(Comment).where(Comment.remote_uri == f"{peer.base}/notes/2")).one()
        assert second.parent_id == comment_id
    assert deliver(fed, fed_rt, peer, reply(peer, 3, f"http://testserver/m/{media_id}/comments/{comment_id}")) \
        == "commented"
    assert counts(fed_rt, media_id)[0] == 3
    # The same Note again is kept once.
    again = reply(peer, 1, page(media_id))
    again["id"] += "-again"
    assert deliver(fed, fed_rt, peer, again) == "duplicate"

    # Update edits it; Delete (as a Tombstone) takes it away.
    update_activity = reply(peer, 3, page(media_id), "<p>Edited: <em>golden</em> light</p>")
    update_activity.update(id=f"{peer.base}/notes/3/update", type="Update")
    assert deliver(fed, fed_rt, peer, update_activity) == "edited"
    assert "<em>golden</em> light" in fed.get(f"/u/alice/m/{media_id}").text
    gone = {"id": f"{peer.base}/notes/3/delete", "type": "Delete", "actor": peer.actor_id,
            "object": {"id": f"{peer.base}/notes/3", "type": "Tombstone"}}
    assert deliver(fed, fed_rt, peer, gone) == "deleted"
    assert counts(fed_rt, media_id)[0] == 2


def test_a_note_in_someone_elses_name_is_not_kept(fed, fed_rt, peer, tmp_path):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    forged = reply(peer, 1, page(media_id))
    forged["object"]["attributedTo"] = "https://elsewhere.example/users/mallory"
    assert deliver(fed, fed_rt, peer, forged) == "ignored"
    elsewhere = reply(peer, 2, page(media_id))
    elsewhere["object"]["id"] = "https://elsewhere.example/notes/2"
    assert deliver(fed, fed_rt, peer, elsewhere) == "ignored"
    # Nor someone else's edit or deletion of a reply.
    assert deliver(fed, fed_rt, peer, reply(peer, 3, page(media_id))) == "commented"
    with fed_rt.sessions() as session:
        session.execute(update(Comment).values(remote_actor_id=None))  # as if another actor had written it
        session.commit()
    gone = {"id": f"{peer.base}/del/1", "type": "Delete", "actor": peer.actor_id, "object": f"{peer.base}/notes/3"}
    assert deliver(fed, fed_rt, peer, gone) == "unknown_object"


def test_likes_and_boosts_are_counted_told_and_undone(fed, fed_rt, peer, tmp_path):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    like = {"id": f"{peer.base}/likes/1", "type": "Like", "actor": peer.actor_id, "object": page(media_id)}
    boost = {"id": f"{peer.base}/boosts/1", "type": "Announce", "actor": peer.actor_id, "object": page(media_id),
             "to": [PUBLIC]}
    assert deliver(fed, fed_rt, peer, like) == "liked"
    assert deliver(fed, fed_rt, peer, {**like, "id": f"{peer.base}/likes/2"}) == "duplicate"
    assert deliver(fed, fed_rt, peer, boost) == "boosted"
    assert counts(fed_rt, media_id) == (0, 1, 1)
    assert [t for t, remote in notifications(fed_rt) if remote] == ["favourite", "boost"]
    assert "1 favourite" in fed.get(f"/u/alice/m/{media_id}").text

    # Undo by the Like's id; Undo with the Announce embedded.
    undo = {"id": f"{peer.base}/undo/1", "type": "Undo", "actor": peer.actor_id, "object": f"{peer.base}/likes/1"}
    assert deliver(fed, fed_rt, peer, undo) == "unliked"
    undo = {"id": f"{peer.base}/undo/2", "type": "Undo", "actor": peer.actor_id, "object": boost}
    assert deliver(fed, fed_rt, peer, undo) == "unboosted"
    assert counts(fed_rt, media_id) == (0, 0, 0)
    # Liking again is counted again, and the unread notification is not repeated.
    assert deliver(fed, fed_rt, peer, {**like, "id": f"{peer.base}/likes/3"}) == "liked"
    assert [t for t, remote in notifications(fed_rt) if remote] == ["favourite", "boost"]


def test_nothing_is_accepted_about_private_or_closed_items(fed, fed_rt, peer, tmp_path):
    hidden = upload(fed_rt, tmp_path, "Secret", visibility="private")
    closed = upload(fed_rt, tmp_path, "Closed")
    with fed_rt.sessions() as session:
        session.execute(update(MediaEntry).where(MediaEntry.id == closed).values(comments_enabled=False))
        session.commit()
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(hidden))) == "unknown_object"
    assert deliver(fed, fed_rt, peer, reply(peer, 2, page(closed))) == "comments_off"
    like = {"id": f"{peer.base}/likes/1", "type": "Like", "actor": peer.actor_id, "object": page(hidden)}
    assert deliver(fed, fed_rt, peer, like) == "unknown_object"
    assert deliver(fed, fed_rt, peer, reply(peer, 3, "http://testserver/u/alice/m/999999")) == "unknown_object"
    with fed_rt.sessions() as session:
        assert session.scalars(select(Comment)).all() == [] and session.scalars(select(RemoteReaction)).all() == []
    assert counts(fed_rt, hidden) == (0, 0, 0)


def test_an_item_made_private_before_processing_refuses_the_like_and_reply(fed, fed_rt, peer, tmp_path):
    """The race: the activity was verified and recorded while the item was public; by the time it is
    processed the owner made it private. Processing asks again and refuses."""
    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert post(fed, peer, follow_activity(peer)).status_code == 202  # the peer is a known, verified actor
    rows = []
    with fed_rt.sessions() as session:
        for activity in (reply(peer, 1, page(media_id)),
                         {"id": f"{peer.base}/likes/1", "type": "Like", "actor": peer.actor_id,
                          "object": page(media_id)}):
            row = InboxActivity(activity_uri=activity["id"], actor_uri=peer.actor_id, type=activity["type"],
                                payload=activity)
            session.add(row)
            session.flush()
            rows.append(row.id)
        session.execute(update(MediaEntry).where(MediaEntry.id == media_id).values(visibility="private"))
        session.commit()
    with fed_rt.sessions() as session:
        for row_id in rows:
            inbox.process(fed_rt, session, {"id": row_id})
        session.commit()
        assert [session.get(InboxActivity, r).outcome for r in rows] == ["unknown_object", "unknown_object"]
    assert counts(fed_rt, media_id) == (0, 0, 0)


def test_a_flag_opens_a_case_in_the_moderation_queue(fed, fed_rt, peer, tmp_path):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    hidden = upload(fed_rt, tmp_path, "Secret", visibility="private")
    flag = {"id": f"{peer.base}/flags/1", "type": "Flag", "actor": peer.actor_id,
            "object": ["http://testserver/u/alice", page(media_id), page(hidden)],
            "content": "Spam <b>everywhere</b>"}
    assert deliver(fed, fed_rt, peer, flag) == "reported"
    assert deliver(fed, fed_rt, peer, {**flag, "id": f"{peer.base}/flags/2"}) == "reported"
    with fed_rt.sessions() as session:
        (report,) = session.scalars(select(Report)).all()  # the item (not the private one), once
        assert (report.target_type, report.target_id, report.reporter_id) == ("media", media_id, None)
        assert report.remote_reporter is not None and report.remote_reporter.handle == "@rita@127.0.0.1"
        assert report.text == "Spam everywhere" and report.state == "open"
    only_private = {**flag, "id": f"{peer.base}/flags/3", "object": [page(hidden)]}
    assert deliver(fed, fed_rt, peer, only_private) == "unknown_object"


def test_a_remote_follower_is_told_and_a_deleted_actor_takes_everything_with_it(fed, fed_rt, peer, tmp_path):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    assert [t for t, remote in notifications(fed_rt) if remote] == ["follow"]
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id))) == "commented"
    assert deliver(fed, fed_rt, peer, reply(peer, 2, f"{peer.base}/notes/1")) == "commented"
    like = {"id": f"{peer.base}/likes/1", "type": "Like", "actor": peer.actor_id, "object": page(media_id)}
    assert deliver(fed, fed_rt, peer, like) == "liked"
    assert counts(fed_rt, media_id) == (2, 1, 0)

    gone = {"id": f"{peer.base}/actor#delete", "type": "Delete", "actor": peer.actor_id, "object": peer.actor_id}
    assert deliver(fed, fed_rt, peer, gone) == "actor_deleted"
    assert counts(fed_rt, media_id) == (0, 0, 0)
    with fed_rt.sessions() as session:
        assert session.scalars(select(Comment)).all() == []
        assert session.scalars(select(Follow).where(Follow.follower_uri.is_not(None))).all() == []


def test_old_processed_activities_are_pruned_but_a_live_follow_is_kept(fed, fed_rt, peer, tmp_path):
    import datetime as dt

    from kiln.db.base import utcnow

    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    assert deliver(fed, fed_rt, peer, {"id": f"{peer.base}/likes/1", "type": "Like", "actor": peer.actor_id,
                                       "object": page(media_id)}) == "liked"
    assert inbox.prune(fed_rt) == 0  # all recent
    later = utcnow() + dt.timedelta(days=fed_rt.settings.federation.keep_activities_days + 1)
    assert inbox.prune(fed_rt, now=later) == 1  # the Like (its id lives on with the favourite)
    with fed_rt.sessions() as session:
        assert session.scalars(select(InboxActivity.type)).all() == ["Follow"]
    # Undo of the Like by its id still works, then the follow ends and its Follow may go too.
    undo = {"id": f"{peer.base}/undo/1", "type": "Undo", "actor": peer.actor_id, "object": f"{peer.base}/likes/1"}
    assert deliver(fed, fed_rt, peer, undo) == "unliked"
    undo = {"id": f"{peer.base}/undo/2", "type": "Undo", "actor": peer.actor_id, "object": f"{peer.base}/follows/1"}
    assert deliver(fed, fed_rt, peer, undo) == "unfollowed"
    assert inbox.prune(fed_rt, now=later) == 3


def test_moderators_remove_a_remote_reply_like_any_comment(fed, fed_rt, peer, tmp_path):
    from kiln.moderation import removal
    from kiln.moderation.models import AuditEntry

    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id), "<p>Buy pills</p>")) == "commented"
    with fed_rt.sessions() as session:
        comment = session.scalars(select(Comment)).one()
        removal.remove_comment(session, None, comment, reason="spam", via="cli")
        session.commit()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "comment.remove")).one()
        assert entry.target_label == "@rita@127.0.0.1"
    html = fed.get(f"/u/alice/m/{media_id}").text
    assert "Buy pills" not in html and "Removed by the moderators" in html
