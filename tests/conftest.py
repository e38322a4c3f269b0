"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when KILN_TEST_DATABASE_URL is set),
settings in a temporary data directory, a runtime that processes inline, and a web client.

Contracts for tests (scripts/test.sh runs the suite on several xdist workers, then the tests marked
``db`` a second time on PostgreSQL):

- Mark ``db`` every test whose outcome could differ between SQLite and PostgreSQL: see the marker's
  description in pyproject.toml.
- Passwords are hashed with cheap Argon2id costs, set through Kiln's own settings (the environment
  below, inherited by `kiln serve` subprocesses); a test about hashing itself is marked
  ``deployed_password_costs`` and gets Kiln's defaults.
- A test owns its ports (``free_port()``), folders (``tmp_path``), databases (``db_url``,
  ``fresh_database``) and Swift containers (a random prefix): workers run side by side.
- Generated files shared by many tests come from the session fixtures below (``images``,
  ``samples``, ``hostile``), made once per run for all workers; tests must not change them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from kiln.app import create_app
from kiln.config import Settings, load_settings
from kiln.db.base import import_all_models
from kiln.db.migrate import upgrade
from kiln.processing.dispatch import InlineDispatcher, RecordingDispatcher
from kiln.processing.service import process_media
from kiln.runtime import Runtime, build_runtime

PG_URL = os.environ.get("KILN_TEST_DATABASE_URL")
BASE_URL = "http://testserver"
# Argon2id at its lowest costs: ~1 ms a hash instead of ~0.1 s (KILN_SECURITY__* are Kiln's settings).
CHEAP_PASSWORD_COSTS = {"KILN_SECURITY__PASSWORD_TIME_COST": "1", "KILN_SECURITY__PASSWORD_MEMORY_KIB": "1024"}
for _name, _value in CHEAP_PASSWORD_COSTS.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(autouse=True)
def _deployed_password_costs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests marked ``deployed_password_costs`` build their settings with Kiln's default costs."""
    if request.node.get_closest_marker("deployed_password_costs"):
        for name in CHEAP_PASSWORD_COSTS:
            monkeypatch.delenv(name, raising=False)


@contextmanager
def fresh_database(folder: Path) -> Iterator[str]:
    """A new, migrated database: a SQLite file in ``folder``, or a new PostgreSQL database."""
    if PG_URL:
        name = f"kiln_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_URL.rsplit("/", 1)[0] + "/" + name
        try:
            upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        url = f"sqlite:///{folder / 'kiln.db'}"
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate once per session; each test then gets a copy (SQLite) or a truncated database (PostgreSQL)."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
def db_url(migrated_db: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        yield migrated_db
        engine = create_engine(migrated_db)
        tables = ", ".join(f'"{t.name}"' for t in import_all_models().metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        path = tmp_path / "kiln.db"
        shutil.copy(migrated_db.removeprefix("sqlite:///"), path)
        yield f"sqlite:///{path}"


def make_settings(data_dir: Path, db_url: str, **overrides: object) -> Settings:
    return load_settings(data_dir=data_dir, database_url=db_url, base_url=BASE_URL, **overrides)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path / "data", db_url)


def inline_runtime(settings: Settings) -> Iterator[Runtime]:
    """A Runtime whose processing runs inline when the bell rings (for fixtures to yield from)."""
    holder: dict[str, Runtime] = {}
    inline = InlineDispatcher(lambda media_id: process_media(holder["rt"], media_id))
    runtime = build_runtime(settings, dispatcher=inline)
    holder["rt"] = runtime
    yield runtime
    runtime.close()


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    """Processing runs inline when the bell rings, so an upload is processed when submit returns."""
    yield from inline_runtime(settings)


@pytest.fixture
def queued_rt(settings: Settings) -> Iterator[Runtime]:
    """A runtime whose bells are only recorded: tests run the workers by hand."""
    runtime = build_runtime(settings, dispatcher=RecordingDispatcher())
    yield runtime
    runtime.close()


@pytest.fixture
def kiln(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``kiln(*args, ok=True, input=None)``: the `kiln` command in-process (click's runner), on this
    test's database and data directory (``kiln.data``); asserts exit code 0 unless ``ok=False``."""
    from click.testing import CliRunner

    from kiln.cli import main

    monkeypatch.setenv("KILN_DATABASE_URL", db_url)
    monkeypatch.setenv("KILN_BASE_URL", "http://kiln.test")
    runner = CliRunner()

    def run(*args: str, ok: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
        result = runner.invoke(main, ["--data", str(tmp_path / "data"), *args], input=input,
                               catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run.data = tmp_path / "data"  # type: ignore[attr-defined]
    return run


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt.settings, rt), base_url=BASE_URL) as test_client:
        yield test_client


# Helpers used across test modules ---------------------------------------------------------------

def mails(settings: Settings) -> list[dict[str, str]]:
    out = []
    for path in sorted(settings.mail_dir.glob("*.eml")):
        msg = message_from_bytes(path.read_bytes())
        out.append({"to": msg["To"], "subject": msg["Subject"], "body": msg.get_payload(decode=True).decode()})
    return out


def last_link(settings: Settings, path: str) -> str:
    """The newest mailed link to ``path`` (e.g. /auth/verify), as a path with query."""
    for mail in reversed(mails(settings)):
        found = re.search(re.escape(BASE_URL + path) + r"\?token=[\w-]+", mail["body"])
        if found:
            return found.group(0).removeprefix(BASE_URL)
    raise AssertionError(f"no mail with a {path} link")


def csrf(client: TestClient, path: str = "/auth/login") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def register(client: TestClient, settings: Settings, username: str = "alice", verify: bool = True) -> None:
    token = csrf(client, "/auth/register")
    resp = client.post("/auth/register", data={"username": username, "email": f"{username}@example.com",
                                               "password": "correct horse", "csrf_token": token})
    assert resp.status_code == 200, resp.text  # followed the redirect to the front page
    if verify:
        assert client.get(last_link(settings, "/auth/verify")).status_code == 200


def form_post(client: TestClient, path: str, data: dict[str, str], files=None, page: str | None = None):  # type: ignore[no-untyped-def]
    data = {**data, "csrf_token": csrf(client, page or path)}
    return client.post(path, data=data, files=files)


def _fixture_module(kind: str):  # type: ignore[no-untyped-def]
    from importlib import import_module

    return import_module("tests.fixtures_images" if kind == "image" else f"tests.fixtures_{kind}")


def made_for_the_run(tmp_path_factory: pytest.TempPathFactory, name: str,
                     make: Callable[[Path], dict[str, Path]]) -> dict[str, Path]:
    """``make(folder)``, run once per test run however many xdist workers ask: the first one makes the
    files under a lock in the folder the workers share and lists them; the others wait and read the list."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "made"
    shared.mkdir(exist_ok=True)
    listing = shared / f"{name}.json"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not listing.exists():
            (shared / name).mkdir(exist_ok=True)
            made = make(shared / name)
            listing.write_text(json.dumps({key: str(path) for key, path in made.items()}))
        return {key: Path(path) for key, path in json.loads(listing.read_text()).items()}


def _made_once(tmp_path_factory: pytest.TempPathFactory, maker: str):  # type: ignore[no-untyped-def]
    """``get(kind)``: ``tests/fixtures_<kind>.py``'s ``maker`` run once per test run per kind."""
    made: dict[str, dict[str, Path]] = {}

    def get(kind: str) -> dict[str, Path]:
        if kind not in made:
            made[kind] = made_for_the_run(tmp_path_factory, f"{maker}-{kind}",
                                          getattr(_fixture_module(kind), maker))
        return made[kind]

    return get


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``samples(kind)``: that kind's good fixture files (``make_all``), made once."""
    return _made_once(tmp_path_factory, "make_all")


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``hostile(kind)``: files of that kind that must end refused or failed (``make_hostile``), made once."""
    return _made_once(tmp_path_factory, "make_hostile")


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every generated image fixture (see tests/fixtures_images.py), made once per test run."""
    from tests.fixtures_images import make_everything

    return made_for_the_run(tmp_path_factory, "images", make_everything)
