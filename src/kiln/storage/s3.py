"""S3 and S3-compatible object stores (AWS, MinIO, Ceph, Swift's S3 API), through boto3."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kiln.storage.base import CountingReader, Key, NoSuchFile, StorageError, clean_key

# Multipart above 16 MiB, in 16 MiB parts: memory stays bounded whatever the file's size.
TRANSFER = TransferConfig(multipart_threshold=16 * 1024**2, multipart_chunksize=16 * 1024**2,
                          max_concurrency=4, use_threads=True)


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3Storage:
    is_local = False

    def __init__(self, name: str, *, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str = "us-east-1", access_key: str | None = None, secret_key: str | None = None,
                 public_url: str | None = None, url_expires: int = 3600, addressing_style: str = "path",
                 public: bool = False) -> None:
        self.name = name
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_url = public_url.rstrip("/") if public_url else None
        self.url_expires = url_expires
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": addressing_style}, signature_version="s3v4",
                          retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60),
        )
        # Without a public_url (a bucket the operator made public, or a CDN in front of it), even the
        # public store is served by signed URLs: anonymous access differs too much between S3s.
        self.url_expires = url_expires if public_url or not public else max(url_expires, 7 * 86400)
        self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if not _missing(exc):
                raise StorageError("The %(store)s store cannot reach bucket %(bucket)s: %(error)s",
                                   store=self.name, bucket=self.bucket, error=str(exc)) from exc
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as create_exc:
                raise StorageError("The %(store)s store could not create bucket %(bucket)s.",
                                   store=self.name, bucket=self.bucket) from create_exc
        except BotoCoreError as exc:
            raise StorageError("The %(store)s store is unreachable: %(error)s", store=self.name,
                               error=str(exc)) from exc

    def _object(self, key: Key) -> str:
        path = "/".join(clean_key(key))
        return f"{self.prefix}/{path}" if self.prefix else path

    def _call(self, what: str, key: Key, fn, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            if _missing(exc):
                raise NoSuchFile("No stored file at %(key)s.", key="/".join(key)) from exc
            raise StorageError("The %(store)s store failed to %(action)s %(key)s: %(error)s", store=self.name,
                               action=what, key="/".join(key), error=str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError("The %(store)s store is unreachable (%(action)s): %(error)s", store=self.name,
                               action=what, error=str(exc)) from exc

    def exists(self, key: Key) -> bool:
        try:
            self._call("check", key, self.client.head_object, Bucket=self.bucket, Key=self._object(key))
        except NoSuchFile:
            return False
        return True

    def open(self, key: Key, start: int | None = None, end: int | None = None) -> BinaryIO:
        extra = {}
        if start is not None or end is not None:
            extra["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        response = self._call("read", key, self.client.get_object, Bucket=self.bucket, Key=self._object(key),
                              **extra)
        return io.BufferedReader(_Stream(response["Body"]))

    def save(self, key: Key, source: BinaryIO) -> int:
        counter = CountingReader(source)
        self._call("write", key, self.client.upload_fileobj, counter, self.bucket, self._object(key),
                   Config=TRANSFER)
        return counter.count

    def delete(self, key: Key) -> None:
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=self._object(key))

    def delete_dir(self, key: Key) -> None:
        # One DELETE per object: the batch call needs Content-MD5 on some S3-compatible stores
        # (Swift's s3api) that current botocore no longer sends. A media item has few files.
        for found in list(self.iter_keys(key)):
            self.delete(found)

    def size(self, key: Key) -> int:
        head = self._call("check", key, self.client.head_object, Bucket=self.bucket, Key=self._object(key))
        return int(head["ContentLength"])

    def modified(self, key: Key) -> float:
        head = self._call("check", key, self.client.head_object, Bucket=self.bucket, Key=self._object(key))
        return float(head["LastModified"].timestamp())

    def url(self, key: Key) -> str:
        if self.public_url:
            return self.public_url + "/" + quote(self._object(key))
        return str(self._call("sign", key, self.client.generate_presigned_url, "get_object",
                              Params={"Bucket": self.bucket, "Key": self._object(key)},
                              ExpiresIn=self.url_expires))

    def local_path(self, key: Key) -> Path:
        raise StorageError("The %(store)s store is not on this machine.", store=self.name)

    def iter_keys(self, prefix: Key = ()) -> Iterator[list[str]]:
        start = self._object(prefix) + "/" if prefix else (self.prefix + "/" if self.prefix else "")
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.prefix) + 1:] if self.prefix else item["Key"]
                    yield name.split("/")
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("The %(store)s store could not list its files: %(error)s", store=self.name,
                               error=str(exc)) from exc


class _Stream(io.RawIOBase):
    """A readable file over a botocore streaming body, usable with `with`."""

    def __init__(self, body) -> None:
        self.body = body

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self.body.read(None if size is None or size < 0 else size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()
