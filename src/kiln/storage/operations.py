"""Operator tasks over whole stores: check access, collect garbage, migrate to another backend."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from kiln.config import Settings
from kiln.errors import InvalidInput, KilnError
from kiln.storage import STORE_NAMES, Stores, open_store
from kiln.storage.assignments import assign
from kiln.storage.base import CHUNK, Key, NoSuchFile, Storage

Progress = Callable[[int], None]


def checksum(store: Storage, key: Key) -> str:
    digest = hashlib.sha256()
    with store.open(key) as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# check -----------------------------------------------------------------------------------------

@dataclass
class CheckResult:
    store: str
    backend: str
    ok: bool
    message: str


def check(settings: Settings, stores: Stores) -> list[CheckResult]:
    """Write, read back and delete a probe object in every store, on its current backend and on
    every other configured backend (so a migration target is known good before it is used)."""
    results = []
    current = stores.assignments()
    for store in STORE_NAMES:
        backends = [current[store].backend] + [b for b in settings.storage.backends
                                               if b != current[store].backend]
        for backend in backends:
            key = ["kiln-check", uuid.uuid4().hex]
            try:
                target = open_store(settings, backend, store)
                target.save(key, io.BytesIO(b"kiln storage check"))
                with target.open(key) as fh:
                    ok = fh.read() == b"kiln storage check"
                target.delete(key)
                results.append(CheckResult(store, backend, ok, "read, write and delete work" if ok
                                           else "the probe came back different"))
            except KilnError as exc:
                results.append(CheckResult(store, backend, False, exc.message))
            except Exception as exc:  # credentials, DNS, TLS...: report, never crash the check
                results.append(CheckResult(store, backend, False, f"{type(exc).__name__}: {exc}"))
    return results


# migrate ----------------------------------------------------------------------------------------

@dataclass
class MigrationReport:
    store: str
    source: str
    target: str
    objects: int = 0
    copied: int = 0
    already_there: int = 0
    bytes_copied: int = 0
    deleted_old: int = 0
    switched: bool = False


def _copy_verified(source: Storage, target: Storage, key: list[str]) -> tuple[bool, int]:
    """Copy one object unless the target already has identical bytes; verify size and SHA-256."""
    size = source.size(key)
    try:
        if target.size(key) == size and checksum(target, key) == checksum(source, key):
            return False, 0
    except NoSuchFile:
        pass
    with source.open(key) as fh:
        target.save(key, fh)
    if target.size(key) != size or checksum(target, key) != checksum(source, key):
        raise KilnError("The copy of %(key)s differs from the original; nothing was switched.",
                        code="migration_mismatch", key="/".join(key))
    return True, size


def migrate(settings: Settings, sessions: sessionmaker[Session], stores: Stores, store: str, target: str, *,
            dry_run: bool = False, delete_old: bool = False, progress: Progress | None = None,
            on_total: Callable[[int], None] | None = None) -> MigrationReport:
    """Copy every object of ``store`` to the ``target`` backend, verify each, then switch the store.

    While it copies, every process writes new objects to both backends (mirroring), so nothing is
    missed. It can be interrupted at any point and run again: verified copies are not redone, and
    until the switch the old backend remains the one that is read.
    """
    if store not in STORE_NAMES:
        raise InvalidInput("Unknown store '%(store)s'; stores are %(stores)s.", store=store,
                           stores=", ".join(STORE_NAMES))
    current = stores.assignments()[store]
    if target not in settings.storage.backends and target != "local":
        raise InvalidInput("No backend named '%(backend)s' in [storage.backends]; configured: %(configured)s.",
                           backend=target, configured=", ".join(settings.storage.backends))
    report = MigrationReport(store, current.backend, target)
    if current.backend == target and not current.migrating_to:
        raise InvalidInput("The %(store)s store is already on '%(backend)s'.", store=store, backend=target)
    source_store = open_store(settings, current.backend, store)
    target_store = open_store(settings, target, store)
    keys = list(source_store.iter_keys())
    report.objects = len(keys)
    if on_total:
        on_total(len(keys))
    if dry_run:
        return report
    with sessions() as session:  # from now on every process mirrors writes to the target
        assign(session, store, current.backend, target)
        session.commit()
    stores.refresh()
    _wait_for_everyone(stores)
    for key in _keys_then_stragglers(source_store, keys):
        copied, size = _copy_verified(source_store, target_store, key)
        report.copied += copied
        report.already_there += not copied
        report.bytes_copied += size
        if progress:
            progress(1)
    with sessions() as session:
        assign(session, store, target, None)
        session.commit()
    stores.refresh()
    report.switched = True
    if delete_old:
        _wait_for_everyone(stores)
        for key in source_store.iter_keys():
            source_store.delete(key)
            report.deleted_old += 1
    return report


def _keys_then_stragglers(source: Storage, keys: list[list[str]]) -> Iterable[list[str]]:
    """Everything listed at the start, then anything written before mirroring reached every process."""
    yield from keys
    seen = {tuple(k) for k in keys}
    for key in source.iter_keys():
        if tuple(key) not in seen:
            yield key


def _wait_for_everyone(stores: Stores) -> None:
    """Processes re-read the assignment every `ttl` seconds; give them that long to follow."""
    import time

    time.sleep(stores.ttl + 0.5)
