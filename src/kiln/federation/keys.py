"""Each account's key pair for HTTP Signatures, made on first need (an account that never federates
never gets one) and kept in ``actor_keys``."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.federation import signatures
from kiln.federation.models import ActorKey, InstanceKey


def key_of(session: Session, user: User) -> ActorKey:
    """The account's key pair, made now if it has none (two requests at once: the first one's stays).
    Flushes; the caller commits."""
    return kept_pair(session, ActorKey, user.id, user_id=user.id)


Pair = TypeVar("Pair", ActorKey, InstanceKey)


def kept_pair(session: Session, model: type[Pair], ident: int, **columns: int) -> Pair:
    """The key pair kept in ``model``'s row ``ident``, made and added now if there is none (two
    processes at once: the first one's stays, the second reads it). Flushes; the caller commits."""
    row = session.get(model, ident)
    if row is not None:
        return row
    private = signatures.new_private_key()
    made = model(**columns, public_pem=signatures.public_pem(private), private_pem=signatures.private_pem(private))
    try:
        with session.begin_nested():
            session.add(made)
    except IntegrityError:
        row = session.get(model, ident)
        assert row is not None
        return row
    return made
