"""One request to a page: who is signed in, in which language, the form they posted; and the
`Page` route that checks sign-in, role, scheme and CSRF before a page's handler runs."""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import quote, unquote

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message

from api.endpoints import Services
from api.models import holds_nul
from api.problems import Problem
from identity.auth import ApiRole, Principal

from . import bridge, i18n, refusals, render
from .accounts import Account, Session
from .book import AccountBook

log = logging.getLogger("timebank.web")
SESSION_COOKIE = "tb_session"
CSRF_COOKIE = "tb_csrf"  # for forms shown before sign-in (double-submit)
LANG_COOKIE = "tb_lang"
NOTICE_COOKIE = "tb_notice"  # what the last action did, shown once by the page it led to
MAX_FORM_FIELDS = 1000
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
# A whole form: an upload at its limit, base64-encoded (the import's confirmation carries the
# file back that way), and the form's other fields. Without it, fields each under the part
# limit add up without bound, and any visitor could post gigabytes to the sign-in form.
MAX_FORM_BYTES = MAX_UPLOAD_BYTES * 4 // 3 + 1024 * 1024


@dataclass(frozen=True)
class WebConfig:
    cookie_secure: bool | None = None  # None: Secure when the request came over HTTPS


class State(TypedDict):
    """What the app's lifespan yields for pages (Starlette's lifespan state, read per request
    from `request.state`): the API's services, the sign-in book, the pages' settings."""

    services: Services
    book: AccountBook
    web_config: WebConfig


@dataclass
class Visit:
    request: Request
    services: Services
    book: AccountBook
    config: WebConfig
    account: Account | None
    session: Session | None
    lang: str
    form: FormData = field(default_factory=FormData)
    csrf: str = ""
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)

    @property
    def who(self) -> Principal:
        assert self.account is not None, "only pages behind sign-in ask who is visiting"
        return self.account.principal()

    @property
    def scheme(self) -> str:
        return str(self.request.path_params.get("scheme", ""))

    def _(self, message: str, **values: Any) -> str:
        """A Python-side string in the visitor's language (`%(name)s` placeholders)."""
        text = i18n.translations(self.lang).gettext(message)
        return text % values if values else text

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def fields(self, name: str) -> list[str]:
        return [v.strip() for v in self.form.getlist(name) if isinstance(v, str)]

    def upload(self, name: str) -> UploadFile | None:
        value = self.form.get(name)
        return value if isinstance(value, UploadFile) else None

    async def act(
        self, method: str, path: str, params: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        """An API endpoint, as this visitor (see `web.bridge.act`); the scheme is filled in.
        A refusal's messages come back in the visitor's language (`web.refusals`)."""
        full = {"scheme": self.scheme, **(params or {})} if "{scheme}" in path else params
        try:
            return await bridge.act(self.services, self.who, method, path, full, **kw)
        except Problem as p:
            raise refusals.translated(self.lang, p) from None

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        base: dict[str, Any] = {
            "lang": self.lang,
            "account": self.account,
            "csrf": self.csrf,
            "scheme": self.scheme,
            "path": self.request.url.path,
            "form_key": uuid.uuid4().hex,
            "form": self.form,
            "errors": {},
            "notice": self._notice(),
        }
        response = render.page(self.lang, template, base | context, status)
        self.set_cookies(response)
        return response

    def redirect(self, url: str, notice: str = "") -> Response:
        """303 to `url`; `notice` goes in a cookie, never the URL: it may name a person, and a
        URL ends up in access logs, history and Referer headers (and a notice taken from the
        URL would let any link put words in the app's mouth)."""
        if notice:
            self.cookies.append((NOTICE_COOKIE, quote(notice[:500], safe=""), 300))
        response = RedirectResponse(url, 303)
        self.set_cookies(response)
        return response

    def _notice(self) -> str:
        """The notice left by the last action (once: its cookie is cleared as it is shown)."""
        notice = unquote(self.request.cookies.get(NOTICE_COOKIE, ""))
        if notice:
            self.cookies.append((NOTICE_COOKIE, "", 0))
        return notice

    def problem(self, p: Problem, template: str = "problem.html", **context: Any) -> Response:
        """A refusal as a page: the form again (when given) with the field's message."""
        errors = {e.get("field", ""): e.get("message", "") for e in p.errors} or {
            p.field or "": p.detail
        }
        return self.render(template, p.status, problem=p, errors=errors, **context)

    def set_cookies(self, response: Response) -> None:
        secure = self.config.cookie_secure
        if secure is None:
            secure = self.request.url.scheme == "https"
        for name, value, max_age in self.cookies:
            response.set_cookie(
                name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax"
            )


Handler = Callable[[Visit], Awaitable[Response]]


def page(
    path: str,
    handler: Handler,
    *,
    roles: frozenset[ApiRole] | None,
    methods: tuple[str, ...] = ("GET",),
) -> Route:
    """A page route. `roles` None: anyone may see it; else a signed-in account of one of those
    roles, in the scheme of the path (any other scheme: 404, as in the API)."""

    async def run(request: Request) -> Response:
        state = request.state  # the lifespan's `State`
        services: Services = state.services
        book: AccountBook = state.book
        config: WebConfig = state.web_config
        found = await book.session(request.cookies.get(SESSION_COOKIE, ""))
        account, session = found if found else (None, None)
        lang = i18n.choose(
            account.lang if account else "",
            request.cookies.get(LANG_COOKIE, ""),
            request.headers.get("accept-language", ""),
        )
        v = Visit(request, services, book, config, account, session, lang)
        v.csrf = session.csrf if session else _visitor_csrf(request, v)  # refusals' forms too
        if roles is not None:
            if account is None:
                return _to_sign_in(request, v)
            if account.role not in roles:
                return v.problem(Problem(403, v._("This page is not for your role."), field="role"))
            if "scheme" in request.path_params and account.scheme != v.scheme:
                return v.problem(Problem(404, v._("No such page."), field="scheme"))
        if request.method == "POST":
            try:
                v.form = await _bounded(request, MAX_FORM_BYTES).form(
                    max_files=4, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_UPLOAD_BYTES
                )
            except Exception:  # malformed multipart or over the limits
                return v.problem(
                    Problem(413, v._("The form was too large or malformed."), field="body")
                )
            if not _same_origin(request) or not _same_token(v.field("csrf"), v.csrf):
                return v.problem(
                    Problem(403, v._("The form had expired. Please try again."), field="csrf")
                )
        nul = _field_with_nul(request, v.form)
        if nul is not None:
            message = v._("“%(field)s” must not contain the NUL character.") % {"field": nul}
            return v.problem(Problem(422, message, field=nul))  # crafted: no browser sends it
        try:
            return await handler(v)
        except Problem as p:
            return v.problem(p)

    return Route(path, run, methods=list(methods))


def _field_with_nul(request: Request, form: FormData) -> str | None:
    """The first path parameter, query parameter or form field whose text holds U+0000."""
    texts = [*request.path_params.items(), *request.query_params.multi_items(), *form.multi_items()]
    return next((k for k, value in texts if holds_nul(k) or holds_nul(value)), None)


class _FormTooLarge(Exception):
    pass


def _bounded(request: Request, limit: int) -> Request:
    """`request`, whose body raises `_FormTooLarge` once it is over `limit` bytes: declared
    (Content-Length) or as it arrives (chunked), before it is read whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _FormTooLarge
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise _FormTooLarge
        return message

    return Request(request.scope, receive)


def _to_sign_in(request: Request, v: Visit) -> Response:
    if request.method != "GET":
        return v.problem(Problem(401, v._("Please sign in again."), field="session"))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/sign-in?next=" + quote(target, safe=""), 303)


def _same_token(sent: str, expected: str) -> bool:
    """The form's CSRF token is the visit's, compared in constant time; any other text (not
    ASCII, say, which `compare_digest` refuses to compare as str) is simply a wrong token."""
    return hmac.compare_digest(sent.encode(), expected.encode())


def _visitor_csrf(request: Request, v: Visit) -> str:
    """Before sign-in, a random token in a cookie that forms echo back (double-submit)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32 or len(token) > 64:
        token = secrets.token_urlsafe(32)
        v.cookies.append((CSRF_COOKIE, token, None))
    return token


def _same_origin(request: Request) -> bool:
    """A browser's Origin header, when sent, must be this site's own."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
