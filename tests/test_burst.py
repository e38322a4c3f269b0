"""A burst of uploads after a quiet spell (issue 13, item 2): 50 at once from 5 people, against the app
under uvicorn with its real pool (20 connections) and threads. Each answers 202 within seconds, each
makes one item: no request needs two pooled connections, and none waits on a connection while holding
a thread that the request holding that connection needs (the pool used to run dry: 500s after 30 s).
bench/bench_burst.py runs the same against `kiln serve` and measures it."""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.media.models import MediaEntry
from kiln.processing.dispatch import RecordingDispatcher
from kiln.runtime import build_runtime
from tests.conftest import make_settings
from tests.servers import uvicorn_serving

pytestmark = pytest.mark.db

PEOPLE, UPLOADS, ROUNDS = 5, 50, 2


def picture(number: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (number * 5 % 256, 90, 160)).save(out, "PNG")
    return out.getvalue()


async def burst(url: str, tokens: list[str], first: int) -> list[tuple[int, float, str]]:
    async def one(client: httpx.AsyncClient, number: int) -> tuple[int, float, str]:
        started = time.monotonic()
        try:
            response = await client.post(url + "/api/v1/media",
                                         headers={"Authorization": f"Bearer {tokens[number % PEOPLE]}"},
                                         files={"file": (f"p{number}.png", picture(number), "image/png")},
                                         data={"title": f"Burst {number}"})
        except httpx.TimeoutException:
            return 0, time.monotonic() - started, "no answer in 20 s"
        return response.status_code, time.monotonic() - started, response.text[:200]

    limits = httpx.Limits(max_connections=UPLOADS)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:
        return await asyncio.gather(*(one(client, first + n) for n in range(UPLOADS)))


def test_fifty_uploads_at_once_after_a_quiet_spell_are_all_accepted_once(tmp_path: Path, db_url: str):
    rt = build_runtime(make_settings(tmp_path / "data", db_url), dispatcher=RecordingDispatcher())
    tokens = []
    with rt.sessions() as session:
        for n in range(PEOPLE):
            user = accounts.create_user(session, f"person{n}", f"person{n}@example.com", "correct horse",
                                        verified=True)
            session.flush()
            tokens.append(accounts.create_api_token(session, user, "burst", "write"))
        session.commit()
    try:
        with uvicorn_serving(create_app(rt.settings, rt)) as url:
            for round_number in range(ROUNDS):
                rt.stores.refresh()  # as after a quiet spell: the store assignments are due to be read
                answers = asyncio.run(burst(url, tokens, round_number * UPLOADS))
                statuses = Counter(status for status, _took, _text in answers)
                assert statuses == {202: UPLOADS}, (statuses, [a for a in answers if a[0] != 202][:3])
                slowest = max(took for _status, took, _text in answers)
                assert slowest < 10, f"the slowest upload took {slowest:.1f} s"
        with rt.sessions() as session:
            titles = session.scalars(select(MediaEntry.title)).all()
            per_person = dict(session.execute(select(MediaEntry.owner_id, func.count())
                                              .group_by(MediaEntry.owner_id)).all())
        assert sorted(titles) == sorted(f"Burst {n}" for n in range(ROUNDS * UPLOADS))  # each once
        assert sorted(per_person.values()) == [ROUNDS * UPLOADS // PEOPLE] * PEOPLE
        assert len(rt.dispatcher.rung) == ROUNDS * UPLOADS  # type: ignore[attr-defined]
    finally:
        rt.close()
