"""The embedded queue: kombu's filesystem transport, with messages written atomically.

kombu writes each message straight under its final name, and a consumer polling the folder may
move and read it before the writer has finished: it then reads an empty or half-written file, and
the JSON error stops the worker's consumer (every later upload stays queued). Here a message is
written under a temporary name the consumer ignores, then renamed into place in one step.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = "kilnfs"


class Channel(filesystem.Channel):
    # kombu's filesystem Channel names the second parameter "payload", its base "message"; kombu passes both
    # positionally.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        # A name starting with a dot: the consumer only takes files named "<stamp>.<queue>.msg".
        temporary = os.path.join(self.data_folder_out, f".part-{uuid.uuid4().hex}")
        try:
            with open(temporary, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to the queue folder {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> str:
    """Make ``kilnfs://`` name this transport (in every process that builds the Celery app)."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
    # A host part, though nothing connects to it: without one kombu warns "No hostname was supplied".
    return f"{SCHEME}://localhost/"
