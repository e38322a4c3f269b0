"""An id in a URL names one thing for good: deleting the newest item (or token) and making a new one
never hands out the old id, so old links answer 404 instead of showing someone else's upload."""

from __future__ import annotations

import pytest

from tests.test_api import make_user, token_for

pytestmark = pytest.mark.db


def test_a_deleted_items_id_and_url_are_never_reused(client, rt, images):
    make_user(rt)
    make_user(rt, "bob")
    alice, bob = token_for(client), token_for(client, "bob")

    def upload(auth):  # type: ignore[no-untyped-def]
        with images["plain"].open("rb") as fh:
            return client.post("/api/v1/media", headers=auth, files={"file": ("p.jpg", fh)}).json()["id"]

    old = upload(alice)
    assert client.delete(f"/api/v1/media/{old}", headers=alice).status_code == 204
    new = upload(bob)
    assert new > old
    assert client.get(f"/api/v1/media/{old}").status_code == 404
    assert client.get(f"/u/alice/m/{old}").status_code == 404
    assert client.get(f"/u/bob/m/{old}").status_code == 404


def test_a_revoked_tokens_id_is_never_reused(rt):
    from sqlalchemy import select

    from kiln.accounts import services as accounts
    from kiln.accounts.models import ApiToken

    make_user(rt)
    with rt.sessions() as session:
        user = accounts.get_user(session, "alice")
        accounts.create_api_token(session, user, "one", "read")
        session.commit()
        first = session.scalars(select(ApiToken)).one()
        old_id = first.id
        session.delete(first)
        session.commit()
        accounts.create_api_token(session, user, "two", "read")
        session.commit()
        (second,) = session.scalars(select(ApiToken)).all()
        assert second.id > old_id
