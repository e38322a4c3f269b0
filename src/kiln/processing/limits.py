"""Enforcing time and memory limits on processing, and telling whether a worker is still alive."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from kiln.mediatypes.base import MediaRejected, TransientFailure

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


def run_external(args: Sequence[str], *, timeout: float, memory_mb: int, cwd: Path | None = None,
                 what: str = "The converter") -> subprocess.CompletedProcess[bytes]:
    """Run an external program with a memory cap, killed with SIGKILL when it overruns ``timeout``.

    Exit codes become MediaRejected (the input is bad); a time-out becomes MediaRejected too, since
    a program that takes too long will take too long again.
    """

    def limit_child() -> None:  # runs in the child between fork and exec
        os.setsid()
        if memory_mb > 0:
            resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024, memory_mb * 1024 * 1024))

    proc = subprocess.Popen(list(args), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=limit_child)  # noqa: PLW1509
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise MediaRejected(f"{what} took longer than {timeout:g} s on this file and was stopped.",
                            code="timeout") from None
    if proc.returncode < 0 and -proc.returncode == signal.SIGKILL:
        raise TransientFailure(f"{what} was killed (probably out of memory).", code="out_of_memory")
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise MediaRejected(f"{what} could not read this file ({tail[0][:200]}).", code="corrupt")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
