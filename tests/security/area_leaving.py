"""The matrix's entries for leaving (kiln.web.leaving): the export zip and deleting one's account.

Everyone logged in may download their own data (a read token is enough: it only reads). Deleting
needs the password: the world's people must stay, so every case here sends a wrong one, and each
role that may try is refused with ``wrong_password`` (403); a read-only token is refused before
that. The real deletions are in tests/test_leaving.py."""

from __future__ import annotations

from tests.security.matrix_kit import Case, E, body, form

CASES: list[Case] = [
    Case("GET", "/api/v1/account/export", E(200, anon=401), note="each role's own data"),
    Case("DELETE", "/api/v1/account", E(403, anon=401), send=body(password="not the password"),
         note="a wrong password: refused (read tokens: read-only)"),
    Case("POST", "/account/delete", E(403, anon=401), send=form(password="not the password"),
         note="a wrong password: the account page again, with the sentence"),
]
