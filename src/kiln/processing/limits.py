"""Enforcing time and memory limits on processing, and telling whether a worker is still alive."""

from __future__ import annotations

import os
import resource
import signal
import socket
import threading

HOST = socket.gethostname()


def lease_owner() -> str:
    """Who is running a step: host, process and thread, so a dead process can be recognised."""
    return f"{HOST}:{os.getpid()}:{threading.get_ident()}"


def owner_is_dead(owner: str | None) -> bool:
    """True only when the owner ran on this host and its process no longer exists."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != HOST or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def apply_memory_limit(megabytes: int) -> None:
    """Cap this process's address space: an allocation past it fails (MemoryError), not the machine."""
    if megabytes <= 0:
        return
    limit = megabytes * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def kill_self() -> None:
    """Used by the lease keeper when a step overruns its time limit inside a worker process: the
    pool replaces the process, and the sweeper records the overrun from the lapsed lease."""
    os.kill(os.getpid(), signal.SIGKILL)
