"""Moderation across servers: administrators block or silence a whole domain; people block remote
accounts (docs/moderation.md).

- **Block a domain** (and its subdomains): its inboxes' requests are refused (403) before any key is
  fetched, activities already recorded from it are dropped when processed, everything its accounts
  left here (replies, likes, boosts) goes, its followers are removed, and nothing is delivered there.
- **Silence a domain**: its replies wait for a moderator (Held comments), and its likes, boosts and
  follows notify nobody.
- **A person blocks a remote account**: its replies to their items and comments, its likes, boosts and
  follows of them are refused, and its follow of them ends.

Each change is recorded in the audit log.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, KilnError, NotFound
from kiln.federation.models import DOMAIN_BLOCK_KINDS, DomainBlock, RemoteActor, RemoteBlock
from kiln.moderation import audit
from kiln.social.models import Follow

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class DomainBlocked(KilnError):
    code = "domain_blocked"
    status = 403


def host_of(address: str) -> str:
    """The host of an address as blocks name it: lower case, no trailing dot, IDNA-encoded."""
    from kiln.federation.fetch import normal_host

    try:
        return normal_host(urlsplit(address).hostname or "")
    except ValueError:
        return ""


def clean_domain(text: str) -> str:
    """A domain as admins may write it (``social.example``, ``https://social.example/``, ``@x@social.example``)."""
    value = (text or "").strip().lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    value = value.rsplit("@", 1)[-1].strip("/").strip(".")
    try:
        value = value.encode("idna").decode("ascii") if value else value
    except UnicodeError:
        value = ""
    if not _DOMAIN.fullmatch(value):
        raise InvalidInput("Write a domain name, such as social.example.", code="bad_domain")
    return value


def _suffixes(host: str) -> list[str]:
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


def rule_for(session: Session, address: str) -> str | None:
    """"block", "silence" or None for the server of ``address`` (an actor id, a key id, an inbox)."""
    host = host_of(address)
    if not host:
        return None
    kinds = set(session.scalars(select(DomainBlock.kind).where(DomainBlock.domain.in_(_suffixes(host)))))
    return "block" if "block" in kinds else "silence" if "silence" in kinds else None


def check_accepted(session: Session, address: str) -> None:
    """DomainBlocked (403) when ``address`` is on a blocked server."""
    if rule_for(session, address) == "block":
        raise DomainBlocked("This site does not accept activities from %(host)s.", host=host_of(address)[:200])


def actors_of(session: Session, domain: str) -> list[RemoteActor]:
    return [a for a in session.scalars(select(RemoteActor)) if domain in _suffixes(host_of(a.uri))]


def block_domain(session: Session, admin: User | None, text: str, kind: str = "block", reason: str = "",
                 via: str = "web") -> tuple[DomainBlock, int]:
    """Block or silence a domain (changing an earlier decision about it); returns the row and how many of
    its accounts had their things removed (a block only). The caller commits."""
    from kiln.federation.receiving import forget

    if kind not in DOMAIN_BLOCK_KINDS:
        raise InvalidInput("Choose block or silence.", code="bad_kind")
    domain = clean_domain(text)
    row = session.get(DomainBlock, domain)
    if row is None:
        row = DomainBlock(domain=domain, kind=kind, reason=reason[:2000])
        session.add(row)
    row.kind, row.reason = kind, reason[:2000]
    purged = 0
    if kind == "block":
        for actor in actors_of(session, domain):
            forget(session, actor)
            purged += 1
    audit.record(session, admin, f"federation.{kind}_domain", "site", None, target_label=domain, reason=reason,
                 details={"accounts_cleared": purged}, via=via)
    return row, purged


def unblock_domain(session: Session, admin: User | None, text: str, via: str = "web") -> None:
    domain = clean_domain(text)
    row = session.get(DomainBlock, domain)
    if row is None:
        raise NotFound("%(domain)s is neither blocked nor silenced.", domain=domain)
    session.delete(row)
    audit.record(session, admin, "federation.unblock_domain", "site", None, target_label=domain, via=via)


def domain_blocks(session: Session) -> list[DomainBlock]:
    return list(session.scalars(select(DomainBlock).order_by(DomainBlock.domain)))


# People's blocks of remote accounts ---------------------------------------------------------------

def blocks(session: Session, user_id: int | None, actor_id: int) -> bool:
    """Whether the local account ``user_id`` blocks the remote actor ``actor_id``."""
    return user_id is not None and session.get(RemoteBlock, (user_id, actor_id)) is not None


def find_actor(session: Session, text: str) -> RemoteActor:
    """A remote account Kiln has met, by its address or as ``@name@host``."""
    value = (text or "").strip()
    if value.startswith("@") or ("@" in value and "://" not in value):
        name, _, host = value.lstrip("@").partition("@")
        found = next((a for a in session.scalars(select(RemoteActor).where(RemoteActor.username == name))
                      if host_of(a.uri) == host_of(f"https://{host}/")), None)
    else:
        found = session.scalar(select(RemoteActor).where(RemoteActor.uri == value[:2000]))
    if found is None:
        raise NotFound("Kiln has not met %(who)s: nothing of theirs is here.", who=value[:200])
    return found


def block_remote(session: Session, user: User, actor: RemoteActor) -> bool:
    """``user`` blocks ``actor`` (its follow of them ends); True when new. The caller commits."""
    session.execute(delete(Follow).where(Follow.followee_id == user.id, Follow.follower_uri == actor.uri))
    if blocks(session, user.id, actor.id):
        return False
    session.add(RemoteBlock(user_id=user.id, actor_id=actor.id))
    return True


def unblock_remote(session: Session, user: User, actor: RemoteActor) -> bool:
    row = session.get(RemoteBlock, (user.id, actor.id))
    if row is None:
        return False
    session.delete(row)
    return True


def blocked_by(session: Session, user: User) -> list[RemoteActor]:
    return list(session.scalars(select(RemoteActor).join(RemoteBlock, RemoteBlock.actor_id == RemoteActor.id)
                                .where(RemoteBlock.user_id == user.id).order_by(RemoteActor.uri)))
