"""Profiles: the avatar, the links, the comment setting. Display name and bio live on the account
(kiln.web.auth_pages saves them).

An avatar's renditions are written to the public store under a fresh token before the row that
points at them commits, and the old ones are deleted after: no storage I/O inside a transaction, and
a crash in between leaves a stray file (``kiln storage gc``), never a profile pointing at nothing.
"""

from __future__ import annotations

import io
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput
from kiln.mediatypes.image.avatar import square_avatars
from kiln.typed import clean_typed

if TYPE_CHECKING:
    from kiln.runtime import Runtime

AVATAR_SIZES = (64, 256)
AVATAR_MAX_BYTES = 10 * 1024 * 1024
MAX_LINKS = 5
LINK_LABEL_MAX = 60
LINK_URL_MAX = 500


def avatar_key(user_id: int, token: str, size: int) -> list[str]:
    return ["avatars", str(user_id), token, f"{size}.webp"]


def set_avatar(rt: Runtime, session: Session, user: User, data: bytes) -> None:
    """Make the avatar's square renditions from an uploaded picture and put them on the profile.
    Ends the session's transaction first (the request's reads are done); commits."""
    if len(data) > AVATAR_MAX_BYTES:
        raise InvalidInput("This picture is larger than 10 MiB; choose a smaller one.", code="too_large")
    if not data:
        raise InvalidInput("Choose a picture to upload.", code="no_file")
    session.commit()  # nothing held while the picture is decoded and stored
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "avatar"
        source.write_bytes(data)
        squares = square_avatars(source, AVATAR_SIZES, Path(tmp), rt.settings.image)
    token = secrets.token_hex(8)  # letters and digits: the key is saved as it is written
    keys = {str(size): avatar_key(user.id, token, size) for size in AVATAR_SIZES}
    for size, key in keys.items():
        rt.stores.public.save(key, io.BytesIO(squares[int(size)]))
    old = dict(user.avatar or {})
    user.avatar = keys
    session.commit()
    _delete(rt, old)


def remove_avatar(rt: Runtime, session: Session, user: User) -> None:
    old = dict(user.avatar or {})
    user.avatar = None
    session.commit()
    _delete(rt, old)


def _delete(rt: Runtime, keys: dict[str, list[str]]) -> None:
    for key in keys.values():
        try:
            rt.stores.public.delete(list(key))
        except Exception:  # a stray file is `kiln storage gc`'s job, not a reason to fail the request
            continue


def clean_links(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Profile links from (label, URL) pairs: empty pairs dropped, http and https only, at most a few."""
    links: list[dict[str, str]] = []
    for label, url in pairs:
        label, url = clean_typed(label).strip(), clean_typed(url).strip()
        if not label and not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > LINK_URL_MAX:
            raise InvalidInput("Each link must be a web address starting with http:// or https://: “%(url)s” is not.",
                               code="bad_link", url=url[:100])
        links.append({"label": label[:LINK_LABEL_MAX] or parts.netloc, "url": url})
    if len(links) > MAX_LINKS:
        raise InvalidInput("A profile has at most %(n)s links.", code="too_many_links", n=MAX_LINKS)
    return links


def set_links(user: User, pairs: list[tuple[str, str]]) -> None:
    """The caller commits."""
    user.links = clean_links(pairs)


def set_comments_enabled(user: User, enabled: bool) -> None:
    user.comments_enabled = enabled
