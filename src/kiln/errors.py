"""The base of every error Kiln shows to a person.

Each error carries a stable ``code`` (for scripts and tests) and a sentence for the person who caused
it: an English msgid marked with ``N_`` and its parameters, said in the reader's language each time
``message`` is read (``kiln.i18n``); ``str(error)`` is the English sentence, for logs. Routes map
``status`` to the HTTP response; nothing shows a traceback.
"""

from __future__ import annotations

from typing import Any

from kiln import i18n


class KilnError(Exception):
    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, **params: Any) -> None:
        self.msgid, self.params = message, params
        with i18n.use_locale(i18n.SOURCE):
            super().__init__(i18n.interpolate(message, params))
        if code:
            self.code = code

    @property
    def message(self) -> str:
        """The sentence in the current language."""
        return i18n.translate(self.msgid, self.params)

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def stored(self) -> dict[str, Any]:
        """The msgid and parameters as JSON, so a sentence stored now (a processing failure) can be
        said later in the language of whoever reads it (``kiln.i18n.say_stored``)."""
        return {"msgid": self.msgid, "params": {k: i18n.to_json(v) for k, v in self.params.items()}}


class InvalidInput(KilnError):
    code = "invalid"
    status = 422


class NotFound(KilnError):
    code = "not_found"
    status = 404


class PermissionDenied(KilnError):
    code = "forbidden"
    status = 403


class NotAuthenticated(KilnError):
    code = "not_authenticated"
    status = 401


class Conflict(KilnError):
    code = "conflict"
    status = 409
