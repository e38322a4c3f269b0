"""A Kiln app with federation on and private addresses allowed (the test peer listens on 127.0.0.1),
and one account, alice, with a verified address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kiln.app import create_app
from kiln.runtime import Runtime
from tests.conftest import BASE_URL, inline_runtime, make_settings, register
from tests.federation import peer as peer_kit

AP = "application/activity+json"


@pytest.fixture(autouse=True)
def _fresh_key_failures() -> Iterator[None]:
    """Keys that failed in another test (at a port used again) are asked again."""
    from kiln.federation import remote

    remote.forget_failures()
    yield
    remote.forget_failures()


@pytest.fixture
def fed_rt(tmp_path: Path, db_url: str) -> Iterator[Runtime]:
    settings = make_settings(tmp_path / "data", db_url, federation={"allow_private_addresses": True})
    yield from inline_runtime(settings)


@pytest.fixture
def fed(fed_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(fed_rt.settings, fed_rt), base_url=BASE_URL) as client:
        register(client, fed_rt.settings, "alice")
        client.cookies.clear()  # the tests speak as other servers do: no login
        yield client


@pytest.fixture
def peer() -> Iterator[peer_kit.Peer]:
    with peer_kit.serve() as remote:
        yield remote
