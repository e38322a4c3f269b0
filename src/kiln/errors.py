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

    def __init__(self, message: str | tuple[str, str], *, code: str | None = None, n: int | None = None,
                 **params: Any) -> None:
        """A ``message`` with plural forms (``Nn_(singular, plural)``) is picked by ``n`` (also its
        ``%(n)s`` parameter) with ``ngettext`` in the reader's language."""
        self.plural: str | None = None
        if isinstance(message, tuple):
            message, self.plural = message
        if n is not None:
            params = {"n": n, **params}  # a sentence without plural forms may still say %(n)s
        self.msgid, self.params, self.n = message, params, n
        with i18n.use_locale(i18n.SOURCE):
            super().__init__(self.message)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        """The sentence in the current language."""
        if self.plural is not None and self.n is not None:
            return i18n.translate_plural(self.msgid, self.plural, self.n, self.params)
        return i18n.translate(self.msgid, self.params)

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def stored(self) -> dict[str, Any]:
        """The msgid and parameters as JSON, so a sentence stored now (a processing failure) can be
        said later in the language of whoever reads it (``kiln.i18n.say_stored``)."""
        stored: dict[str, Any] = {"msgid": self.msgid, "params": {k: i18n.to_json(v) for k, v in self.params.items()}}
        if self.plural is not None and self.n is not None:
            stored["plural"], stored["n"] = self.plural, self.n
        return stored


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
