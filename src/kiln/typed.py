"""Text people typed, made safe to keep: characters that mean nothing in a title, a tag or a name
and that XML 1.0 forbids (C0 controls other than tab and newlines, U+FFFE, U+FFFF, lone surrogates)
are dropped. NUL among them: PostgreSQL cannot store it. A feed with one of them is not XML."""

from __future__ import annotations

import re

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def clean_typed(text: str) -> str:
    return _FORBIDDEN.sub("", text)
