"""The base of every error Kiln shows to a person.

Each error carries a stable ``code`` (for scripts and tests) and a ``message`` written for the
person who caused it. Routes map ``status`` to the HTTP response; nothing shows a traceback.
"""

from __future__ import annotations


class KilnError(Exception):
    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


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
