"""The embedded queue never hands a consumer half a message (kombu's own filesystem transport can)."""

from __future__ import annotations

import os
from queue import Empty

import pytest
from kombu import Connection

from kiln.processing import queue_files


@pytest.fixture
def channel(tmp_path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "messages"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(tmp_path), "store_processed": False}
    with Connection(queue_files.register(), transport_options=options) as conn:
        assert isinstance(conn.transport, queue_files.Transport)
        yield conn.default_channel, folder


def test_a_message_is_written_whole_under_its_final_name(channel, monkeypatch):
    chan, folder = channel
    renamed = []
    real_replace = os.replace

    def replace(src, dst):  # type: ignore[no-untyped-def]
        # At the moment of the rename the whole message is already in the temporary file, and
        # nothing under a name the consumer would take exists yet.
        assert os.path.basename(src).startswith(".") and os.path.getsize(src) > 20
        assert not [n for n in os.listdir(folder) if n.endswith(".image.new.msg")]
        renamed.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    chan._put("image.new", {"body": "x" * 1000})
    assert len(renamed) == 1 and renamed[0].endswith(".image.new.msg")
    assert chan._get("image.new") == {"body": "x" * 1000}


def test_the_consumer_skips_a_message_still_being_written(channel):
    chan, folder = channel
    (folder / ".part-0123").write_bytes(b'{"bo')  # a writer is half-way through
    with pytest.raises(Empty):
        chan._get("image.new")
    chan._put("image.new", {"n": 1})
    assert chan._get("image.new") == {"n": 1}
    assert (folder / ".part-0123").exists()
