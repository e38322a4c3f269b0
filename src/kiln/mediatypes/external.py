"""Running external decoders and encoders (ffmpeg, ...) safely on untrusted files.

Every program a kind runs goes through :func:`run_external`: its own session (so the whole
process group can be killed), an address-space cap, SIGKILL on overrun (SIGTERM lets ffmpeg run
on for seconds), and exit codes translated into errors a user can read.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from kiln.config import Settings
from kiln.i18n import N_, Label
from kiln.mediatypes.base import MediaRejected, TransientFailure


def ffmpeg_binary(settings: Settings) -> str:
    """The configured ffmpeg, or the static one shipped in the imageio-ffmpeg wheel."""
    if settings.tools.ffmpeg:
        return settings.tools.ffmpeg
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_external(args: Sequence[str], *, timeout: float, memory_mb: int, cwd: Path | None = None,
                 what: str = N_("The converter"),
                 on_line: Callable[[bytes], None] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run an external program with a memory cap, killed with SIGKILL when it overruns ``timeout``.

    Exit codes become MediaRejected (the input is bad); a time-out becomes MediaRejected too, since
    a program that takes too long will take too long again.

    With ``on_line``, standard output is streamed: each line is passed to ``on_line`` as it arrives
    (ffmpeg's ``-progress pipe:1`` reports), and the result's ``stdout`` is empty. Only the last
    lines of standard error are kept, so a chatty program cannot fill memory.
    """

    def limit_child() -> None:  # runs in the child between fork and exec
        os.setsid()
        if memory_mb > 0:
            resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024, memory_mb * 1024 * 1024))

    proc = subprocess.Popen(list(args), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=limit_child)  # noqa: PLW1509
    if on_line is not None:
        out, err, timed_out = b"", *_stream(proc, timeout, on_line)
    else:
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            timed_out = True
    if timed_out:
        raise MediaRejected("%(what)s took longer than %(seconds)s s on this file and was stopped.",
                            code="timeout", what=Label(what), seconds=timeout) from None
    if proc.returncode < 0 and -proc.returncode == signal.SIGKILL:
        raise TransientFailure("%(what)s was killed (probably out of memory).", code="out_of_memory",
                               what=Label(what))
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise MediaRejected("%(what)s could not read this file (%(detail)s).", code="corrupt", what=Label(what),
                            detail=tail[0][:200])
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _stream(proc: subprocess.Popen[bytes], timeout: float, on_line: Callable[[bytes], None]) -> tuple[bytes, bool]:
    """Feed ``proc``'s output lines to ``on_line`` until it exits; SIGKILL its group at ``timeout``
    (or when ``on_line`` raises). Returns the tail of its standard error and whether it timed out."""
    assert proc.stdout is not None and proc.stderr is not None
    tail: deque[bytes] = deque(maxlen=64)
    errors = proc.stderr
    reader = threading.Thread(target=lambda: tail.extend(errors), daemon=True)
    reader.start()
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    started = time.monotonic()
    timer.start()
    try:
        for line in proc.stdout:
            on_line(line)
    except BaseException:
        kill()
        raise
    finally:
        proc.stdout.close()
        proc.wait()
        timer.cancel()
        reader.join(timeout=5)
    # On a busy machine the timer may fire late, after the program ended past its limit: still an overrun.
    return b"".join(tail), expired.is_set() or time.monotonic() - started > timeout
