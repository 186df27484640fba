"""Signing in and out, the language switch, and where each role lands."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from identity.auth import ApiRole

from .accounts import LANGUAGES, SESSION_SECONDS
from .book import SignInRefused
from .visit import LANG_COOKIE, SESSION_COOKIE, Visit, page

HOMES = {
    ApiRole.MEMBER: "/s/{scheme}/me",
    ApiRole.COORDINATOR: "/s/{scheme}/coordinate",
    ApiRole.SCHEME_ADMIN: "/s/{scheme}/coordinate",
    ApiRole.PARTNER_STAFF: "/s/{scheme}/till",
    ApiRole.COMMISSIONER: "/s/{scheme}/commission",
}


def home_of(v: Visit) -> str:
    assert v.account is not None
    where = HOMES.get(v.account.role)
    return where.format(scheme=v.account.scheme) if where else "/api/v1/docs"


async def root(v: Visit) -> Response:
    return v.redirect(home_of(v) if v.account else "/sign-in")


async def sign_in_form(v: Visit) -> Response:
    if v.account is not None:
        return v.redirect(home_of(v))
    return v.render("sign_in.html", next=_safe_next(v.request.query_params.get("next", "")))


async def sign_in(v: Visit) -> Response:
    login, target = v.field("login").lower(), _safe_next(v.field("next"))
    address = v.request.client.host if v.request.client else "?"
    try:
        cookie, account = await v.book.sign_in(login, v.field("password"), address)
    except SignInRefused as refused:
        if refused.throttled:
            message = v._("Too many attempts. Please wait 15 minutes and try again.")
            return v.problem(Problem(429, message, field="login"), "sign_in.html", next=target)
        message = v._("That login and password do not match.")
        return v.problem(Problem(401, message, field="password"), "sign_in.html", next=target)
    v.cookies.append((SESSION_COOKIE, cookie, SESSION_SECONDS))
    v.account = account
    return v.redirect(target or home_of(v))


async def sign_out(v: Visit) -> Response:
    await v.book.sign_out(v.request.cookies.get(SESSION_COOKIE, ""))
    v.cookies.append((SESSION_COOKIE, "", 0))
    return v.redirect("/sign-in", v._("You have signed out."))


async def language(v: Visit) -> Response:
    lang = v.field("lang")
    if lang not in LANGUAGES:
        raise Problem(422, v._("Choose English or Cymraeg."), field="lang")
    v.cookies.append((LANG_COOKIE, lang, 365 * 86400))
    if v.account is not None:
        await v.book.set_lang(v.account.login, lang)
    return v.redirect(_safe_next(v.field("next")) or "/")


def _safe_next(target: str) -> str:
    """Only a path on this site (never `//elsewhere` or a full URL)."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok and len(target) < 500 else ""


def routes() -> list[BaseRoute]:
    return [
        page("/", root, roles=None),
        page("/sign-in", sign_in_form, roles=None),
        page("/sign-in", sign_in, roles=None, methods=("POST",)),
        page("/sign-out", sign_out, roles=frozenset(ApiRole), methods=("POST",)),
        page("/language", language, roles=None, methods=("POST",)),
    ]
