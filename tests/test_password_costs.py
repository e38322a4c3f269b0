"""Password hashes cost what the site's settings say (``security.password_time_cost`` and
``password_memory_kib``); a hash stored with other costs is re-made when its owner next logs in."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import extract_parameters

from kiln.accounts import services as accounts
from kiln.processing.dispatch import RecordingDispatcher
from kiln.runtime import build_runtime
from tests.conftest import make_settings


def costs(password_hash: str) -> tuple[int, int]:
    found = extract_parameters(password_hash)
    return found.time_cost, found.memory_cost


def site(folder: Path, db_url: str, time_cost: int, memory_kib: int):  # type: ignore[no-untyped-def]
    settings = make_settings(folder, db_url, security={"password_time_cost": time_cost,
                                                       "password_memory_kib": memory_kib})
    return build_runtime(settings, dispatcher=RecordingDispatcher())


def test_hashes_use_the_sites_costs_and_are_remade_at_login_when_they_change(tmp_path, db_url):
    rt = site(tmp_path / "before", db_url, 1, 1024)
    with rt.sessions() as session:
        alice = accounts.create_user(session, "alice", "a@example.com", "correct horse", verified=True)
        session.commit()
        assert costs(alice.password_hash) == (1, 1024)
    rt.close()

    rt = site(tmp_path / "after", db_url, 2, 2048)  # the site raised its costs
    with rt.sessions() as session:
        assert costs(accounts.get_user(session, "alice").password_hash) == (1, 1024)  # untouched until a login
        with pytest.raises(accounts.BadCredentials):
            accounts.authenticate(session, "alice", "wrong horse")
        assert costs(accounts.get_user(session, "alice").password_hash) == (1, 1024)
        accounts.authenticate(session, "alice", "correct horse")
        session.commit()
        stored = accounts.get_user(session, "alice").password_hash
        assert costs(stored) == (2, 2048)
        assert accounts.authenticate(session, "alice", "correct horse").password_hash == stored
        # An unknown name is checked against a dummy hash of the same cost, so it takes as long.
        assert costs(accounts._DUMMY_HASH) == (2, 2048)
        with pytest.raises(accounts.BadCredentials):
            accounts.authenticate(session, "nobody", "correct horse")
    rt.close()


def test_the_defaults_are_argon2id_with_the_librarys_recommended_costs():
    from argon2 import PasswordHasher

    from kiln.config import SecuritySettings

    recommended = PasswordHasher()
    defaults = SecuritySettings()
    assert (defaults.password_time_cost, defaults.password_memory_kib) == (recommended.time_cost,
                                                                           recommended.memory_cost)
