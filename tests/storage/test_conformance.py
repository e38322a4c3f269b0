"""The storage contract, run against every backend on a real server: local, Swift and S3."""

from __future__ import annotations

import hashlib
import io
import os
import time

import httpx
import pytest

from kiln.config import load_settings
from kiln.storage import open_store
from kiln.storage.base import (
    InvalidKey,
    NoSuchFile,
    Storage,
    StorageError,
    clean_component,
    clean_key,
    copy_to_local,
    unique_key,
)
from tests.storage.conftest import backend_config

BACKENDS = ["local", "swift", "s3"]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):  # type: ignore[no-untyped-def]
    config = backend_config(request.param, tmp_path)
    settings = load_settings(data_dir=tmp_path / "data", storage={"backends": {"b": config}})
    return request.param, settings


@pytest.fixture
def public(backend) -> Storage:  # type: ignore[no-untyped-def]
    return open_store(backend[1], "b", "public")


@pytest.fixture
def private(backend) -> Storage:  # type: ignore[no-untyped-def]
    return open_store(backend[1], "b", "originals")


class Exploding(io.RawIOBase):
    """Gives some bytes, then fails like a dropped upload."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError("connection reset")
        n = min(self.left, size if size > 0 else 65536)
        self.left -= n
        return b"x" * n


def test_components_are_cleaned_like_the_seed_says():
    assert clean_key(["../../../etc/", "passwd"]) == ["etc", "passwd"]
    assert clean_component("héllo wörld.jpg") == "hello_world.jpg"
    for bad in ("", "..", "/", "   ", "\x00"):
        with pytest.raises(InvalidKey):
            clean_component(bad)
    with pytest.raises(InvalidKey):
        clean_key("a/b")  # a string is not a list of components


def test_roundtrip_streaming_and_metadata(public: Storage):
    payload = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, not a multiple of the chunk size
    key = ["entries", "1", "medium.jpg"]
    assert not public.exists(key)
    assert public.save(key, io.BytesIO(payload)) == len(payload)
    assert public.exists(key) and public.size(key) == len(payload)
    assert abs(public.modified(key) - time.time()) < 120  # clocks of this machine and the store agree
    with public.open(key) as fh:
        got = b"".join(iter(lambda: fh.read(100_000), b""))
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    public.save(key, io.BytesIO(b"replaced"))
    with public.open(key) as fh:
        assert fh.read() == b"replaced"


def test_byte_ranges(public: Storage):
    key = ["r", "video.mp4"]
    public.save(key, io.BytesIO(bytes(range(256)) * 10))
    with public.open(key, start=10, end=19) as fh:
        assert fh.read() == bytes(range(10, 20))
    with public.open(key, start=2550) as fh:
        assert fh.read() == bytes(range(246, 256))


def test_missing_files_and_deletes(public: Storage):
    with pytest.raises(NoSuchFile):
        public.open(["nope", "x.jpg"])
    with pytest.raises(NoSuchFile):
        public.size(["nope", "x.jpg"])
    with pytest.raises(NoSuchFile):
        public.modified(["nope", "x.jpg"])
    public.delete(["nope", "x.jpg"])  # deleting what is not there is fine
    for name in ("a.jpg", "b.jpg"):
        public.save(["entries", "7", name], io.BytesIO(b"1"))
    public.save(["entries", "70", "c.jpg"], io.BytesIO(b"1"))
    assert sorted(map(tuple, public.iter_keys(["entries", "7"]))) == [("entries", "7", "a.jpg"),
                                                                      ("entries", "7", "b.jpg")]
    public.delete(["entries", "7", "a.jpg"])
    assert not public.exists(["entries", "7", "a.jpg"])
    public.delete_dir(["entries", "7"])
    assert list(public.iter_keys(["entries", "7"])) == []
    assert public.exists(["entries", "70", "c.jpg"])  # a sibling with a longer name is untouched


def test_hostile_keys_stay_inside_the_store(public: Storage, private: Storage):
    public.save(["../../../etc/", "passwd"], io.BytesIO(b"safe"))
    assert ["etc", "passwd"] in list(public.iter_keys())
    assert not private.exists(["etc", "passwd"])
    with pytest.raises(InvalidKey):
        public.save(["..", ""], io.BytesIO(b"x"))


def test_a_failed_upload_leaves_nothing_behind(public: Storage):
    key = ["broken", "upload.bin"]
    with pytest.raises((OSError, StorageError)):
        public.save(key, Exploding(2 * 1024 * 1024))
    assert not public.exists(key)


def test_public_urls_serve_the_bytes_and_private_stores_have_none_or_signed_ones(backend, public, private):
    kind, _settings = backend
    public.save(["u", "pic.jpg"], io.BytesIO(b"picture-bytes"))
    private.save(["u", "original.jpg"], io.BytesIO(b"secret"))
    url = public.url(["u", "pic.jpg"])
    if kind != "local":  # local public files are served by Kiln itself (see tests of the web app)
        assert httpx.get(url).content == b"picture-bytes"
        # Browsers seek in video with Range requests; the object store answers them itself.
        part = httpx.get(url, headers={"Range": "bytes=8-12"})
        assert part.status_code == 206 and part.content == b"bytes"
        # The same address in the private store's container/bucket, unsigned, is refused.
        guessed = url.split("?")[0].replace("-public/", "-originals/").replace("pic.jpg", "original.jpg")
        assert "-originals/" in guessed and httpx.get(guessed).status_code in (400, 401, 403)
    try:
        signed = private.url(["u", "original.jpg"])
    except StorageError:
        return
    assert "Signature" in signed or "signature" in signed
    assert httpx.get(signed).content == b"secret"


def test_copy_to_local(public: Storage, tmp_path):
    public.save(["c", "f.bin"], io.BytesIO(b"abc" * 1000))
    dest = copy_to_local(public, ["c", "f.bin"], tmp_path / "copy.bin")
    assert dest.read_bytes() == b"abc" * 1000


def test_unique_keys(public: Storage):
    key = ["u", "same name.jpg"]
    assert unique_key(public, key) == ["u", "same_name.jpg"]
    public.save(key, io.BytesIO(b"first"))
    other = unique_key(public, key)
    assert other[:-1] == ["u"] and other[-1].endswith("-same_name.jpg") and not public.exists(other)
