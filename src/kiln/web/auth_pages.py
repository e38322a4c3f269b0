"""Registration, email verification, login, logout, password reset and the account page."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from kiln import i18n
from kiln.accounts import services as accounts
from kiln.accounts import signup
from kiln.accounts.models import ApiToken
from kiln.accounts.throttle import Throttled
from kiln.errors import InvalidInput, KilnError, NotFound
from kiln.i18n import N_, _
from kiln.media.licenses import is_known
from kiln.typed import clean_typed
from kiln.web.deps import (
    DB,
    RT,
    SESSION_COOKIE,
    ClientIP,
    CurrentUser,
    LoggedIn,
    RowId,
    Throttles,
    check_csrf,
    flash,
    secure_cookies,
)
from kiln.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
Text = Annotated[str, Form()]
OptText = Annotated[str, Form()]


def _safe_next(target: str | None) -> str:
    """Only local paths, so a login link cannot send people to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_response(request: Request, rt, token: str, target: str) -> Response:
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=secure_cookies(request),
                        max_age=accounts.SESSION_DAYS * 86400)
    return response


def _with_retry_after(exc: KilnError, response: Response) -> Response:
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _register_page(request: Request, rt, *, status: int = 200, invite: str = "", **context: object) -> Response:
    """The sign-up page says which mode is on (kiln.accounts.signup); ``invite``: the code of the link
    it was opened with, carried in the form."""
    return render(request, "register.html", status=status, mode=rt.settings.registration,
                  question=rt.settings.registration_question, invite=invite, **{"form": {}, **context})


@router.get("/auth/register", response_class=HTMLResponse)
def register_form(request: Request, session: DB, rt: RT, user: CurrentUser,
                  invite: Annotated[str, Query(max_length=100)] = "") -> Response:
    if not invite or rt.settings.registration not in ("invite", "approval"):
        return _register_page(request, rt)
    try:
        signup.usable_invite(session, invite)
        response = _register_page(request, rt, invite=invite)
    except KilnError as exc:
        response = _register_page(request, rt, status=exc.status, invite_error=exc.message)
    # An invite's state changes without moving the site's change counter: never kept by a cache.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@router.post("/auth/register")
def register(request: Request, session: DB, rt: RT, throttle: Throttles, ip: ClientIP, username: Text, email: Text,
             password: Text, answer: Annotated[str, Form(max_length=10_000)] = "",
             invite: Annotated[str, Form(max_length=100)] = "") -> Response:
    if rt.settings.registration == "closed":
        return _register_page(request, rt, status=403)
    try:
        throttle.registration(ip)
        joined = signup.register(session, rt.settings, username=username, email=email, password=password,
                                 answer=answer, invite_code=invite)
        user = joined.user
        token = None if joined.pending else accounts.start_session(session, user)
        session.commit()
    except KilnError as exc:
        session.rollback()
        return _with_retry_after(exc, _register_page(request, rt, status=exc.status, error=exc.message, invite=invite,
                                                     form={"username": username, "email": email, "answer": answer}))
    if token is None:  # approval mode: nothing to log in to until a moderator says yes
        return _register_page(request, rt, requested=user.email)
    # With a link to confirm, the notice on every page says so (base.html): one message, not two.
    if not rt.settings.require_email_verification:
        flash(request, i18n.interpolate(_("Welcome, %(name)s. Your account is ready: you can upload now."),
                                        {"name": user.username}), "success")
    return _login_response(request, rt, token, "/")


@router.get("/auth/verify", response_class=HTMLResponse)
def verify(request: Request, session: DB, user: CurrentUser, token: str = "") -> Response:
    """Each outcome says what is true and offers the next step (verify.html): confirmed (go upload or
    log in), confirmed already, or a bad link (a new link for the logged-in person it can help)."""
    try:
        verified = accounts.verify_email(session, token)
        session.commit()
    except accounts.AlreadyConfirmed as exc:
        session.rollback()
        return render(request, "verify.html", confirmed_before=True,
                      theirs=user is not None and user.id == exc.user.id)
    except KilnError as exc:
        session.rollback()
        return render(request, "verify.html", status=exc.status, code=exc.code, message=exc.message)
    flash(request, i18n.interpolate(_("Thank you, %(name)s: your email address is confirmed."),
                                    {"name": verified.username}), "success")
    return RedirectResponse("/upload" if user else "/auth/login?next=/upload", status_code=303)


@router.post("/auth/resend")
def resend(request: Request, session: DB, rt: RT, user: LoggedIn,
           next: Annotated[str, Form()] = "/account") -> Response:
    """Mail a new confirmation link and go back to the page the button was on. The "resent" flash is
    shown inside the confirmation notice (_confirm_notice.html), which stays on the page anyway."""
    if user.has("active"):
        flash(request, _("Your email address is already confirmed. There is nothing more to do."))
    else:
        accounts.send_verification(session, rt.settings.link_base(), rt.settings.site_name, user)
        session.commit()
        flash(request, i18n.interpolate(_("We sent a new confirmation link to %(email)s."), {"email": user.email}),
              "resent")
    return RedirectResponse(_safe_next(next), status_code=303)


@router.get("/login", include_in_schema=False)
@router.get("/register", include_in_schema=False)
def typed_address(request: Request) -> Response:
    """The addresses people type (``/login``, ``/register``) lead to the pages, whose address is under
    ``/auth/`` as MediaGoblin's was; the query (``next``) goes along, checked there."""
    page = "/auth/login" if request.url.path == "/login" else "/auth/register"
    return RedirectResponse(page + (f"?{request.url.query}" if request.url.query else ""), status_code=308)


@router.get("/auth/login", response_class=HTMLResponse)
def login_form(request: Request, user: CurrentUser, next: str = "/") -> Response:
    return render(request, "login.html", next=_safe_next(next))


@router.post("/auth/login")
def login(request: Request, session: DB, rt: RT, throttle: Throttles, ip: ClientIP, username: Text, password: Text,
          next: Annotated[str, Form()] = "/") -> Response:
    try:
        throttle.before_login(username, ip)
        try:
            user = accounts.authenticate(session, username, password)
        except accounts.BadCredentials:
            throttle.login_failed(username, ip)  # unknown names count too, so both look alike
            raise
        throttle.login_succeeded(username)
        token = accounts.start_session(session, user)
        session.commit()
    except KilnError as exc:
        session.rollback()
        return _with_retry_after(exc, render(request, "login.html", status=exc.status, error=exc.message,
                                             next=_safe_next(next), username=username))
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a fresh session id at every login
        accounts.end_session(session, old)
        session.commit()
    return _login_response(request, rt, token, next)


@router.post("/auth/logout")
def logout(request: Request, session: DB) -> Response:
    if token := request.cookies.get(SESSION_COOKIE):
        accounts.end_session(session, token)
        session.commit()
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/auth/forgot", response_class=HTMLResponse)
def forgot_form(request: Request, user: CurrentUser) -> Response:
    return render(request, "forgot.html")


@router.post("/auth/forgot")
def forgot(request: Request, session: DB, rt: RT, throttle: Throttles, ip: ClientIP, email: Text) -> Response:
    try:
        throttle.reset_mail(email, ip)
    except Throttled as exc:
        return _with_retry_after(exc, render(request, "forgot.html", status=exc.status, error=exc.message))
    accounts.request_reset(session, rt.settings.link_base(), rt.settings.site_name, email)
    session.commit()
    return render(request, "forgot.html", sent=True)


@router.get("/auth/reset", response_class=HTMLResponse)
def reset_form(request: Request, user: CurrentUser, token: str = "") -> Response:
    return render(request, "reset.html", token=token)


@router.post("/auth/reset")
def reset(request: Request, session: DB, token: Text, password: Text) -> Response:
    try:
        user = accounts.reset_password(session, token, password)
        session.commit()
    except KilnError as exc:
        session.rollback()
        return render(request, "reset.html", status=exc.status, token=token, error=exc.message,
                      link_failed=isinstance(exc, accounts.BadToken))
    flash(request, i18n.interpolate(_("Your password is changed, %(name)s. Every login and API token of your "
                                      "account was ended; log in with the new password."),
                                    {"name": user.username}), "success")
    return RedirectResponse("/auth/login", status_code=303)


# The account page ------------------------------------------------------------------------------

@router.get("/account", response_class=HTMLResponse)
def account(request: Request, session: DB, user: LoggedIn) -> Response:
    return _account_page(request, session, user)


def _account_page(request: Request, session: DB, user: LoggedIn, status: int = 200, **context: object) -> Response:
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)).all()
    return render(request, "account.html", status=status, tokens=tokens, **context)


@router.post("/account/password")
def change_password(request: Request, session: DB, user: LoggedIn, current: Text, password: Text,
                    revoke_tokens: Annotated[bool, Form()] = False) -> Response:
    if not accounts.check_password(user, current):
        return _account_page(request, session, user, status=400, error=_("Your current password is wrong."))
    try:
        revoked = accounts.set_password(session, user, password, revoke_tokens=revoke_tokens)
        token = accounts.start_session(session, user)
        session.commit()
    except KilnError as exc:
        session.rollback()
        return _account_page(request, session, user, status=exc.status, error=exc.message)
    flash(request, _("Your password is changed. Other devices were logged out and your API tokens were revoked.")
          if revoked else _("Your password is changed. Other devices were logged out."), "success")
    return _login_response(request, request.app.state.runtime, token, "/account")


@router.post("/account/email")
def change_email(request: Request, session: DB, rt: RT, user: LoggedIn, current: Text, email: Text) -> Response:
    if not accounts.check_password(user, current):
        return _account_page(request, session, user, status=400, error=_("Your current password is wrong."))
    try:
        address = accounts.clean_email(email)
        signup.check_email_domain(rt.settings, address)
        accounts.send_verification(session, rt.settings.link_base(), rt.settings.site_name, user,
                                   email=address)
        session.commit()
    except KilnError as exc:
        session.rollback()
        return _account_page(request, session, user, status=exc.status, error=exc.message)
    flash(request, i18n.interpolate(_("We sent a link to %(email)s. Your address changes when you open it."),
                                    {"email": address}))
    return RedirectResponse("/account", status_code=303)


@router.post("/account/profile")
def change_profile(request: Request, session: DB, user: LoggedIn, default_license: OptText = "",
                   display_name: OptText = "", bio: OptText = "") -> Response:
    if not is_known(default_license):
        raise InvalidInput("Choose a licence from the list.", code="bad_license")
    user.default_license = default_license
    user.display_name = clean_typed(display_name).strip()[:100] or user.username
    user.bio = bio[:2000]
    session.commit()
    flash(request, _("Profile saved."), "success")
    return RedirectResponse("/account", status_code=303)


@router.post("/account/language")
def change_language(request: Request, session: DB, user: LoggedIn, locale: OptText = "",
                    next: OptText = "/account") -> Response:
    """The language menu (and the account page's choice) for a logged-in person: kept on the account,
    so pages and mail follow it on every device. An empty choice means "my browser's language"."""
    chosen = i18n.normalize(locale) if locale else None
    if locale and chosen is None:
        raise InvalidInput(N_("Choose a language from the list."), code="bad_locale")
    user.locale = chosen
    session.commit()
    i18n.set_current(chosen or i18n.choose(accept_language=request.headers.get("accept-language"),
                                           default=request.app.state.runtime.settings.default_locale))
    flash(request, _("Language saved."), "success")
    response = RedirectResponse(_safe_next(next), status_code=303)
    if chosen:
        response.set_cookie(i18n.LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax",
                            secure=secure_cookies(request))
    else:
        response.delete_cookie(i18n.LANG_COOKIE)
    return response


@router.post("/account/tokens")
def create_token(request: Request, session: DB, user: LoggedIn, name: OptText = "",
                 scope: OptText = "write") -> Response:
    token = accounts.create_api_token(session, user, name or _("API token"), scope)
    session.commit()
    return _account_page(request, session, user, new_token=token)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, session: DB, user: LoggedIn, token_id: RowId) -> Response:
    with contextlib.suppress(NotFound):
        accounts.revoke_api_token(session, user, token_id)
    session.commit()
    flash(request, _("Token revoked."))
    return RedirectResponse("/account", status_code=303)
