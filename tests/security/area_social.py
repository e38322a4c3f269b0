"""The matrix's entries for following, the timeline, notifications, unsubscribe and profile settings
(kiln.web.social, kiln.web.notifications, kiln.web.profile_pages).

{username} and {name} are the owner (olivia): following yourself is refused (422), everyone else
may follow her. {notification_id} is one of the owner's notifications: marking it read as someone
else changes nothing (the id is ignored), so it answers like marking one's own."""

from __future__ import annotations

from kiln.accounts.models import User
from kiln.social import notify
from kiln.social.notify_mail import unsubscribe_token
from tests.security.conftest import USERNAMES, World
from tests.security.matrix_kit import GET_LOGGED_IN, Case, E, body, form, png


def setup(world: World) -> None:
    with world.rt.sessions() as session:
        owner = session.get(User, world.users["owner"])
        row = notify.notify(session, owner, "follow", actor_id=world.users["other"])  # type: ignore[arg-type]
        session.commit()
        assert row is not None
        world.ids["notification_id"] = row.id
    world.ids["person"] = USERNAMES["owner"]
    world.ids["unsubscribe"] = unsubscribe_token(world.rt.settings, world.users["owner"], "favourite")


def _token(w: World) -> dict[str, object]:
    return {"params": {"token": w.ids["unsubscribe"]}}


PERSON = {"name": "person"}
CASES: list[Case] = [
    # Following and the timeline (pages)
    Case("GET", "/u/{username}/followers", E(200)),
    Case("GET", "/u/{username}/following", E(200)),
    Case("POST", "/u/{username}/follow", E(303, anon=401, owner=422, unverified=403),
         note="the owner cannot follow herself; an unverified address may not follow"),
    Case("POST", "/u/{username}/unfollow", E(303, anon=401)),
    Case("GET", "/timeline", GET_LOGGED_IN),
    # Following and profiles (API)
    Case("PUT", "/api/v1/users/{name}/follow", E(200, anon=401, read_tokens=403, owner=422, token_write_owner=422,
                                                  unverified=403),
         ids=PERSON, note="following the owner"),
    Case("DELETE", "/api/v1/users/{name}/follow", E(200, anon=401, read_tokens=403), ids=PERSON),
    Case("GET", "/api/v1/users/{name}/followers", E(200), ids=PERSON),
    Case("GET", "/api/v1/users/{name}/following", E(200), ids=PERSON),
    Case("GET", "/api/v1/users/{name}", E(200), ids=PERSON),
    Case("GET", "/api/v1/timeline", E(200, anon=401)),
    # Notifications
    Case("GET", "/notifications", GET_LOGGED_IN),
    Case("GET", "/notifications/{notification_id}/open", E(404, anon=303, owner=303),
         note="the owner's notification: marked read, then where it leads"),
    Case("POST", "/notifications/{notification_id}/read", E(303, anon=401),
         note="the owner's: for anyone else the id is ignored"),
    Case("POST", "/notifications/read", E(303, anon=401)),
    Case("POST", "/account/notifications", E(303, anon=401), send=form(mail_comment="digest")),
    Case("GET", "/unsubscribe", E(200), send=_token, note="a valid token: no login needed"),
    Case("GET", "/unsubscribe", E(422), send=lambda w: {"params": {"token": "forged.token"}}, note="a forged token"),
    Case("POST", "/unsubscribe", E(200), send=_token, note="one-click: no login, no form token"),
    Case("GET", "/api/v1/notifications", E(200, anon=401)),
    Case("GET", "/api/v1/notifications/count", E(200, anon=401)),
    Case("POST", "/api/v1/notifications/read", E(200, anon=401, read_tokens=403), send=body(all=True)),
    # Profile settings on the account page
    Case("POST", "/account/avatar", E(303, anon=401), send=png),
    Case("POST", "/account/avatar/delete", E(303, anon=401)),
    Case("POST", "/account/links", E(303, anon=401), send=form(label="Site", url="https://example.com")),
    Case("POST", "/account/comments", E(303, anon=401), send=form(comments_enabled="true")),
]
