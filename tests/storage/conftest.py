"""Storage backends for the conformance suite: local disk, and a real OpenStack Swift (with its S3
API) on 127.0.0.1. CI starts Swift (`.ci/run`); set KILN_REQUIRE_SWIFT=1 to fail rather than skip
when it is not running."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

SWIFT_URL = os.environ.get("KILN_TEST_SWIFT_URL", "http://127.0.0.1:8080")


def swift_running() -> bool:
    try:
        return httpx.get(SWIFT_URL + "/info", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def backend_config(kind: str, tmp_path) -> dict:  # type: ignore[no-untyped-def]
    if kind == "local":
        return {"type": "local", "path": str(tmp_path / "media")}
    if not swift_running():
        message = (f"Swift is not running at {SWIFT_URL}: start it with "
                   "../shared/services/swift.sh start /tmp/kiln-swift 8080")
        if os.environ.get("KILN_REQUIRE_SWIFT"):
            pytest.fail(message)
        pytest.skip(message)
    prefix = "t" + uuid.uuid4().hex[:12]
    if kind == "swift":
        return {"type": "swift", "auth_url": SWIFT_URL + "/auth/v1.0", "user": "test:tester", "key": "testing",
                "prefix": prefix}
    return {"type": "s3", "endpoint_url": SWIFT_URL, "access_key": "test:tester", "secret_key": "testing",
            "prefix": prefix}


@pytest.fixture(params=["swift", "s3"])
def remote_rt(request, tmp_path, db_url):  # type: ignore[no-untyped-def]
    """A runtime whose every store is on Swift, or on S3 (Swift's S3 API), processing inline."""
    from tests.conftest import inline_runtime, make_settings

    config = backend_config(request.param, tmp_path)
    settings = make_settings(tmp_path / "data", db_url, storage={
        "backends": {"remote": config}, "queue": "remote", "originals": "remote", "public": "remote"})
    yield from inline_runtime(settings)
