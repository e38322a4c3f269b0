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


def test_messages_are_taken_oldest_first_by_a_rename_beside_the_queue(channel):
    chan, folder = channel
    for n in range(3):
        chan._put("image.new", {"n": n})
    chan._put("video.new", {"n": "video"})
    assert [chan._get("image.new")["n"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(Empty):
        chan._get("image.new")
    assert chan._get("video.new") == {"n": "video"}
    assert not os.listdir(folder) and not os.listdir(folder.parent / "taken")  # read, then deleted


def test_an_idle_consumer_is_woken_by_a_message_not_by_polling(tmp_path):
    """The consumer waits on a watch of the folder: with polling set to a minute, a message put
    from another thread still reaches it at once (in seconds, where polling would take the minute)."""
    import threading
    import time

    folder = tmp_path / "messages"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(tmp_path),
               "polling_interval": 60}
    got: list[object] = []
    with Connection(queue_files.register(), transport_options=options) as consumer, \
            Connection(queue_files.register(), transport_options=options) as producer:
        queue = consumer.SimpleQueue("image.new")
        queue.consumer.channel.basic_qos(0, 1, False)

        def put_soon() -> None:
            time.sleep(0.5)  # the consumer is asleep on the folder by now
            producer.SimpleQueue("image.new").put({"n": 1})

        threading.Thread(target=put_soon, daemon=True).start()
        started = time.monotonic()
        message = queue.get(block=True, timeout=30)
        got.append(message.payload)
        message.ack()
        waited = time.monotonic() - started
    assert got == [{"n": 1}]
    assert waited < 20, f"woken after {waited:.1f} s: the watch did not wake it"


def test_a_message_taken_by_a_consumer_that_died_is_cleaned_away(tmp_path):
    import subprocess

    taken = tmp_path / "taken"
    taken.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (taken / f"{dead.pid}-123_abc.image.new.msg").write_text("{}")
    (taken / f"{os.getpid()}-124_abd.image.new.msg").write_text("{}")  # its reader is alive: reading it
    assert queue_files.clean_taken(tmp_path) == 1
    assert os.listdir(taken) == [f"{os.getpid()}-124_abd.image.new.msg"]
