"""Each account's key pair for HTTP Signatures, made on first need (an account that never federates
never gets one) and kept in ``actor_keys``."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.federation import signatures
from kiln.federation.models import ActorKey


def key_of(session: Session, user: User) -> ActorKey:
    """The account's key pair, made now if it has none (two requests at once: the first one's stays).
    Flushes; the caller commits."""
    row = session.get(ActorKey, user.id)
    if row is not None:
        return row
    private = signatures.new_private_key()
    made = ActorKey(user_id=user.id, public_pem=signatures.public_pem(private),
                    private_pem=signatures.private_pem(private))
    try:
        with session.begin_nested():
            session.add(made)
    except IntegrityError:
        row = session.get(ActorKey, user.id)
        assert row is not None
        return row
    return made
