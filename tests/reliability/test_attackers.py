"""Attackers (1 of 3): the app's pages as an attacker meets them. Every page route x every role
(member, coordinator, scheme admin, partner staff, commissioner, signed out) x own scheme /
another scheme; CSRF on every form; the security headers on every response, API included.

The lists are derived from the app's own routing table (`create_app(...).routes`), and the
page matrix below must have exactly one row per page route and method: a new page without a
row fails `test_the_page_matrix_covers_exactly_the_apps_page_routes`; a new API route without
a row in the API's matrix fails
`test_every_api_route_of_the_app_is_in_the_api_matrix_or_public`.

The rule (web/visit.py `page`): a page with roles needs a signed-in account (signed out: a GET
is sent to /sign-in?next=<the page>, a POST gets 401); an account of another role gets 403
whatever the scheme in the path; an account of the right role gets 404 on another scheme's
path, exactly as on a scheme that does not exist. Pages without roles are public.

Proven elsewhere and not repeated here:

- tests/api/test_authorization.py: the API's matrix (its table must equal the routes of
  api.routes.ENDPOINTS: `test_the_table_covers_exactly_the_apps_routes`), every route x every
  role x own scheme / another scheme with that scheme's real ids / a scheme that does not
  exist; every 401 shape on every route (a revoked token among them).
- tests/web/test_signin.py: the session cookie's flags, a wrong Origin and a forged token on
  one form, throttling seen by a user, headers on four paths.
- tests/reliability/test_attackers_tokens.py: throttling of bearer tokens and sign-ins, token
  expiry and revocation, session expiry and revocation.
- tests/reliability/test_attackers_logs.py: no secret or personal data in the logs or URLs.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from api.routes import ENDPOINTS
from tests.api.conftest import app, app_client, db_path  # noqa: F401  (fixtures)
from tests.api.test_authorization import CODE, DAY, GHOST, OTHER, Ctx
from tests.api.world import ACTIVITY, SCHEMES, World
from tests.conftest import Clock, snapshot
from tests.reliability.conftest import Figures
from tests.web.conftest import PASSWORD, Pages, login_of, world  # noqa: F401  (fixtures)
from web.book import AccountBook

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]  # about 25 s on SQLite

MEM, CO, SA, PS, COM, OUT = (
    "member", "coordinator", "scheme-admin", "partner-staff", "commissioner", "signed-out",
)  # fmt: skip
ROLES = (MEM, CO, SA, PS, COM)
COLUMNS = (*ROLES, OUT)
JOB_MAKERS = (CO, SA, COM)  # roles whose pages start background jobs (imports, downloads)
S = "/s/{scheme}"

# Y: allowed (2xx or 3xx). .: another role's page (403). o: the visitor's own job only
# (anyone else's: 404, as for no job at all). P: public, on any scheme's path.
# In the last column, S: sign in first (a GET is sent to /sign-in?next=..., a POST gets 401).
PAGE_MATRIX = """
                                                      membr coord s-adm p-stf comm  out
GET  /                                                  Y     Y     Y     Y     Y     Y
GET  /sign-in                                           Y     Y     Y     Y     Y     Y
POST /sign-in                                           Y     Y     Y     Y     Y     Y
POST /sign-out                                          Y     Y     Y     Y     Y     S
POST /language                                          Y     Y     Y     Y     Y     Y
GET  /s/{scheme}/ledger                                 P     P     P     P     P     P
GET  /s/{scheme}/me                                     Y     .     .     .     .     S
GET  /s/{scheme}/me/log                                 Y     .     .     .     .     S
POST /s/{scheme}/me/log                                 Y     .     .     .     .     S
GET  /s/{scheme}/me/claims                              Y     .     .     .     .     S
GET  /s/{scheme}/me/received                            Y     .     .     .     .     S
POST /s/{scheme}/me/received                            Y     .     .     .     .     S
GET  /s/{scheme}/me/data                                Y     .     .     .     .     S
GET  /s/{scheme}/me/data/download                       Y     .     .     .     .     S
POST /s/{scheme}/me/data/erase                          Y     .     .     .     .     S
GET  /s/{scheme}/me/offers                              Y     .     .     .     .     S
GET  /s/{scheme}/me/vouchers                            Y     .     .     .     .     S
POST /s/{scheme}/me/vouchers                            Y     .     .     .     .     S
GET  /s/{scheme}/me/vouchers/{code}                     Y     .     .     .     .     S
GET  /s/{scheme}/me/vouchers/{code}/qr                  Y     .     .     .     .     S
GET  /s/{scheme}/me/receipts/{seq}                      Y     .     .     .     .     S
GET  /s/{scheme}/me/receipts/{seq}/download             Y     .     .     .     .     S
GET  /s/{scheme}/coordinate                             .     Y     Y     .     .     S
POST /s/{scheme}/coordinate                             .     Y     Y     .     .     S
GET  /s/{scheme}/coordinate/claims/{claim}              .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/claims/{claim}              .     Y     Y     .     .     S
GET  /s/{scheme}/coordinate/burnout                     .     Y     Y     .     .     S
GET  /s/{scheme}/coordinate/members                     .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/members                     .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/cards                       .     Y     Y     .     .     S
GET  /s/{scheme}/coordinate/members/{member}            .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/members/{member}            .     Y     Y     .     .     S
GET  /s/{scheme}/coordinate/group                       .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/group                       .     Y     Y     .     .     S
GET  /s/{scheme}/coordinate/activities                  .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/activities                  .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/activities/{code}/retire    .     Y     Y     .     .     S
GET  /s/{scheme}/coordinate/import                      .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/import                      .     Y     Y     .     .     S
POST /s/{scheme}/coordinate/import/run                  .     Y     Y     .     .     S
GET  /s/{scheme}/till                                   .     .     .     Y     .     S
POST /s/{scheme}/till                                   .     .     .     Y     .     S
GET  /s/{scheme}/till/v/{code}                          .     .     .     Y     .     S
POST /s/{scheme}/till/v/{code}/settle                   .     .     .     Y     .     S
POST /s/{scheme}/till/v/{code}/void                     .     .     .     Y     .     S
GET  /s/{scheme}/till/today                             .     .     .     Y     .     S
GET  /s/{scheme}/till/statement                         .     .     .     Y     .     S
GET  /s/{scheme}/till/statement.csv                     .     .     .     Y     .     S
GET  /s/{scheme}/till/reconcile                         .     .     .     Y     .     S
POST /s/{scheme}/till/reconcile                         .     .     .     Y     .     S
GET  /s/{scheme}/commission                             .     Y     Y     .     Y     S
GET  /s/{scheme}/commission/charts/{chart}.png          .     Y     Y     .     Y     S
GET  /s/{scheme}/commission/downloads                   .     Y     Y     .     Y     S
POST /s/{scheme}/commission/downloads                   .     Y     Y     .     Y     S
GET  /s/{scheme}/jobs/{job}                             o     o     o     o     o     S
GET  /s/{scheme}/jobs/{job}/download                    o     o     o     o     o     S
"""

PageRoute = tuple[str, str]


def _parse(text: str) -> dict[PageRoute, dict[str, str]]:
    table: dict[PageRoute, dict[str, str]] = {}
    for line in text.strip().splitlines()[1:]:
        method, path, *marks = line.split()
        assert len(marks) == len(COLUMNS) and all(m in "Y.oPS" for m in marks), line
        assert (method, path) not in table, f"{method} {path} twice"
        table[(method, path)] = dict(zip(COLUMNS, marks, strict=True))
    return table


PAGES = _parse(PAGE_MATRIX)
# Routes that end the visitor's session or data: asked last, each in a session of its own.
LAST = (("POST", S + "/me/data/erase"), ("POST", "/sign-out"))


def api_routes(asgi: Starlette) -> list[Route]:
    """The API's routes from the app's routing table, their paths in full (under the mount)."""
    mounts = [r for r in asgi.routes if isinstance(r, Mount) and r.path.startswith("/api/")]
    assert mounts, "the API is mounted"
    return [Route(m.path + r.path, r.endpoint, methods=list(r.methods or ()))
            for m in mounts for r in m.routes if isinstance(r, Route)]  # fmt: skip


def page_routes(asgi: Starlette) -> set[PageRoute]:
    """Every (method, path) of the app's pages, from its routing table (not the API's)."""
    found = set()
    for route in asgi.routes:
        if isinstance(route, Route) and not route.path.startswith("/api/"):
            found |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
    return found


# ---- what each visit should get ------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    status: int | None  # None: any 2xx or 3xx (not a bounce to sign in)
    text: str = ""  # in the page: the refusal's own message

    def __str__(self) -> str:
        return "2xx/3xx" if self.status is None else f"{self.status} {self.text!r}"


ALLOWED = Expect(None)
ROLE = Expect(403, "This page is not for your role.")
HIDDEN = Expect(404, "No such page.")
NO_JOB = Expect(404, "No such job.")
SIGN_IN_POST = Expect(401, "Please sign in again.")
SIGN_IN_GET = Expect(303, "/sign-in?next=")

# Allowed for the role, but the scheme's own rules refuse it (not an authorisation matter).
SCHEME_RULES: dict[tuple[str, str, str], Expect] = {
    # time credits: hours help the scheme, not a member, so a member has no help to confirm
    ("POST", S + "/me/received", "taff"): Expect(403, "You can confirm only help you received."),
    # person-to-person: every hour needs the member helped, and a group session names none
    ("POST", S + "/coordinate/group", "m2m"): Expect(422, "receiver"),
}


def expected(route: PageRoute, scheme: str, role: str, own: bool, own_job: bool) -> Expect:
    mark = PAGES[route][role]
    if mark == "P" or (mark == "Y" and role == OUT):
        return ALLOWED
    if mark == "S":
        return SIGN_IN_GET if route[0] == "GET" else SIGN_IN_POST
    if mark == ".":
        return ROLE  # the role is checked before the scheme: nothing about either leaks
    if not own and "{scheme}" in route[1]:
        return HIDDEN
    if mark == "o" and not own_job:
        return NO_JOB
    return SCHEME_RULES.get((*route, scheme), ALLOWED)


# ---- the state requests need ---------------------------------------------------------------


@dataclass
class Req:
    params: dict[str, str] = field(default_factory=dict)
    form: dict[str, str | list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] | None = None
    session: str | None = None  # a login: send from a session of its own ("" signed out)


class Setup:
    """Real ids in each scheme, made through the API as the scheme's own people, and a
    finished background job for each login whose pages make jobs."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.ids: dict[str, dict[str, str]] = {}
        self.jobs: dict[tuple[str, str], str] = {}  # (scheme, role) -> job id
        self._n = itertools.count(1)

    def n(self) -> int:
        return next(self._n)

    async def make(self, db_url: str, clock: Clock) -> None:
        ctx = self.ctx
        for scheme in SCHEMES:
            x = {"seq": await ctx.entry(scheme, "M1"), "voucher": await ctx.voucher(scheme, "M1")}
            x["claim"] = str((await ctx.claim(scheme, "M2"))["id"])
            x["own claim"] = str((await ctx.claim(scheme, "M1"))["id"])
            x["confirmed"] = str((await ctx.claim(scheme, "M2", confirmed=True))["id"])
            code = f"spare-{scheme}"
            await ctx.post(f"/schemes/{scheme}/activities", ctx.headers(scheme, CO),
                           ACTIVITY | {"code": code})  # fmt: skip
            x["activity"] = code
            self.ids[scheme] = x
        book = await AccountBook.open(db_url, clock)
        try:
            for scheme in SCHEMES:
                for role in JOB_MAKERS:
                    job = uuid.uuid4().hex
                    await book.start_job({
                        "id": job, "login": login_of(scheme, role), "scheme": scheme,
                        "kind": "report", "state": "done", "done": 1, "total": 1, "message": "",
                        "result": b"done", "media_type": "text/plain", "filename": "job.txt",
                        "created_us": clock(),
                    })  # fmt: skip
                    self.jobs[(scheme, role)] = job
        finally:
            await book.close()

    def job_of(self, scheme: str, role: str) -> tuple[str, bool]:
        """The job a role visits: its own if its pages make jobs, else the commissioner's."""
        if role in JOB_MAKERS:
            return self.jobs[(scheme, role)], True
        return self.jobs[(scheme, COM)], False


Builder = Callable[[Setup, str, str, bool], Awaitable[Req]]
BUILDERS: dict[PageRoute, Builder] = {}


def builds(*routes: PageRoute) -> Callable[[Builder], Builder]:
    def register(f: Builder) -> Builder:
        for route in routes:
            BUILDERS[route] = f
        return f

    return register


@builds(*[r for r in PAGES if r[0] == "GET" and "{" not in r[1].replace("{scheme}", "")])
async def _plain(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req()


@builds(("GET", S + "/me/vouchers/{code}"), ("GET", S + "/me/vouchers/{code}/qr"),
        ("GET", S + "/till/v/{code}"))  # fmt: skip
async def _voucher(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"code": s.ids[scheme]["voucher"]})


@builds(("GET", S + "/me/receipts/{seq}"), ("GET", S + "/me/receipts/{seq}/download"))
async def _receipt(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"seq": s.ids[scheme]["seq"]})


@builds(("GET", S + "/coordinate/claims/{claim}"))
async def _claim(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"claim": s.ids[scheme]["claim"]})


@builds(("GET", S + "/coordinate/members/{member}"))
async def _member(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"member": "M2"})


@builds(("GET", S + "/commission/charts/{chart}.png"))
async def _chart(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"chart": "hours-by-month"})


@builds(("GET", S + "/jobs/{job}"), ("GET", S + "/jobs/{job}/download"))
async def _job(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"job": s.job_of(scheme, role)[0]})


@builds(("POST", "/sign-in"))
async def _sign_in(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    login = login_of(scheme, MEM if role == OUT else role)
    form: dict[str, str | list[str]] = {"login": login, "password": PASSWORD, "next": ""}
    return Req(
        form=form, session=("" if role == OUT else login_of(scheme, role)) if fresh else None
    )


@builds(("POST", "/sign-out"))
async def _sign_out(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(session=login_of(scheme, role) if fresh and role != OUT else None)


@builds(("POST", "/language"))
async def _language(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"lang": "en", "next": "/"})


def _hours(scheme: str, receiver: str) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {"activity": CODE[scheme], "date": DAY, "minutes": "15",
                                        "note": ""}  # fmt: skip
    if scheme == "m2m":
        form["receiver"] = receiver
    return form


@builds(("POST", S + "/me/log"))
async def _log(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form=_hours(scheme, "M2"))


@builds(("POST", S + "/me/received"))
async def _received(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    claim = s.ids[scheme]["own claim"]  # M1's own hours: not help they received
    if fresh and scheme == "m2m":  # M2's hours that helped M1, for M1 to confirm
        claim = str((await s.ctx.claim(scheme, "M2", "M1"))["id"])
    return Req(form={"claim": claim})


@builds(("POST", S + "/me/data/erase"))
async def _erase(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"confirm": "ERASE"}, session=f"{scheme}-m2" if fresh else None)


@builds(("POST", S + "/me/vouchers"))
async def _take(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    if fresh:
        await s.ctx.earn(scheme, "M1", 60)
    return Req(form={"partner": f"p-{scheme}", "offer": "swim"})


@builds(("POST", S + "/coordinate"))
async def _decide(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"action": "confirm", "claim": [s.ids[scheme]["claim"]], "reason": ""})


@builds(("POST", S + "/coordinate/claims/{claim}"))
async def _reverse(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"claim": s.ids[scheme]["confirmed"]}, form={"reason": "logged in error"})


@builds(("POST", S + "/coordinate/members"))
async def _add_member(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"id": f"N{s.n()}", "display_name": "New member", "role": "member",
                     "contact": "", "card_number": ""})  # fmt: skip


@builds(("POST", S + "/coordinate/cards"))
async def _find(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"card": f"{scheme}-M2"})


@builds(("POST", S + "/coordinate/members/{member}"))
async def _log_for(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"member": "M2"}, form=_hours(scheme, "C1"))


@builds(("POST", S + "/coordinate/group"))
async def _group(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"members": ["M2"], "activity": CODE[scheme], "date": DAY, "minutes": "15",
                     "note": ""})  # fmt: skip


@builds(("POST", S + "/coordinate/activities"))
async def _add_activity(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    form: dict[str, str | list[str]] = {k: str(v) for k, v in ACTIVITY.items()}
    return Req(form=form | {"code": f"act-{s.n()}", "voluntariness": "voluntary",
                            "safeguarding_check": "no"})  # fmt: skip


@builds(("POST", S + "/coordinate/activities/{code}/retire"))
async def _retire(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req({"code": s.ids[scheme]["activity"]})


@builds(("POST", S + "/coordinate/import"))
async def _preview(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    csv = f"id,display_name\nI{s.n()},Imported\n".encode()
    return Req(form={"kind": "members"}, files={"file": ("people.csv", csv, "text/csv")})


@builds(("POST", S + "/coordinate/import/run"))
async def _run_import(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    csv = f"id,display_name\nR{s.n()},Imported\n".encode()
    return Req(form={"kind": "members", "data": base64.b64encode(csv).decode()})


@builds(("POST", S + "/till"))
async def _till(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"code": s.ids[scheme]["voucher"]})


@builds(("POST", S + "/till/v/{code}/settle"), ("POST", S + "/till/v/{code}/void"))
async def _at_the_till(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    code = await s.ctx.voucher(scheme, "M2") if fresh else s.ids[scheme]["voucher"]
    return Req({"code": code}, form={"venue": "hall"})


@builds(("POST", S + "/till/reconcile"))
async def _reconcile(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(files={"file": ("till.csv", b"code,datetime,offer,venue\n", "text/csv")})


@builds(("POST", S + "/commission/downloads"))
async def _download(s: Setup, scheme: str, role: str, fresh: bool) -> Req:
    return Req(form={"format": "csv", "from": "2025-01-01", "to": DAY})


# ---- visiting ------------------------------------------------------------------------------


class Forms(HTMLParser):
    """The CSRF token of every <form method=post> in a page (None: the form has none)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str | None] = []
        self._open = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._open = (a.get("method") or "get").lower() == "post"
            if self._open:
                self.tokens.append(None)
        elif tag == "input" and self._open and a.get("name") == "csrf":
            self.tokens[-1] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = False


def post_form_tokens(html: str) -> list[str | None]:
    parser = Forms()
    parser.feed(html)
    return parser.tokens


SECURITY_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "",
    "cross-origin-opener-policy": "same-origin",
}


def missing_headers(r: httpx.Response, https: bool = False) -> list[str]:
    """The security headers `r` lacks (api/headers.py), HSTS over HTTPS only."""
    gone = [h for h, part in SECURITY_HEADERS.items() if part not in r.headers.get(h, "\0")
            or h not in r.headers]  # fmt: skip
    if https != ("strict-transport-security" in r.headers):
        gone.append("strict-transport-security" if https else "HSTS over plain HTTP")
    return gone


@dataclass
class Visitor:
    pages: Pages
    csrf: str


class Site:
    """Visitors of the app (one cookie jar each) and what every response showed."""

    def __init__(self, asgi: Starlette) -> None:
        self.app = asgi
        self.clients: list[httpx.AsyncClient] = []
        self.responses = 0
        self.forms = 0
        self.wrong: list[str] = []
        self.jobs: list[tuple[Visitor, str]] = []  # the background jobs started, by whom

    async def visitor(self, login: str) -> Visitor:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                   base_url="http://tb.test")  # fmt: skip
        self.clients.append(client)
        pages = Pages(client)
        if login:
            await pages.sign_in(login)
        page = await client.get("/s/taff/ledger")  # any page shows the visitor's CSRF token
        tokens = post_form_tokens(page.text)
        assert tokens and tokens[0], page.text[:500]
        return Visitor(pages, tokens[0])

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def send(self, who: Visitor, route: PageRoute, scheme: str, req: Req,
                   csrf: str | None = None, headers: dict[str, str] | None = None,
                   ) -> httpx.Response:  # fmt: skip
        """The request, with the visitor's CSRF token (or `csrf`) on a POST; every response's
        headers and forms are checked on the way."""
        method, path = route
        url = path.format(scheme=scheme, **req.params)
        if method == "GET":
            r = await who.pages.client.get(url, headers=headers)
        else:
            token = who.csrf if csrf is None else csrf
            data = req.form | ({"csrf": token} if token else {}) | {"key": uuid.uuid4().hex}
            r = await who.pages.client.post(url, data=data, files=req.files, headers=headers)
        self.responses += 1
        if gone := missing_headers(r):
            self.wrong.append(f"  {method} {url}: no {gone}")
        if r.headers.get("content-type", "").startswith("text/html"):
            for found in post_form_tokens(r.text):
                self.forms += 1
                if found != who.csrf:
                    self.wrong.append(f"  {method} {url}: a post form with CSRF token {found!r}")
        if r.status_code == 303 and "/jobs/" in r.headers.get("location", ""):
            self.jobs.append((who, r.headers["location"]))
        return r


def mismatch(r: httpx.Response, want: Expect) -> bool:
    if want.status is None:
        bounced = r.headers.get("location", "").startswith("/sign-in?next=")
        return not 200 <= r.status_code < 400 or bounced
    if r.status_code != want.status:
        return True
    if want is SIGN_IN_GET:
        target = r.request.url.raw_path.decode()
        return bool(r.headers.get("location") != "/sign-in?next=" + quote(target, safe=""))
    return want.text not in r.text


def report(who: str, route: PageRoute, r: httpx.Response, want: Expect) -> str:
    url = r.request.url.raw_path.decode()
    text = r.text if "html" not in r.headers.get("content-type", "") else _message(r.text)
    return f"  {who:28} {route[0]:4} {url}: want {want}, got {r.status_code} {text[:160]}"


def _message(html: str) -> str:
    """A page's error message(s), for reports."""
    parts = html.split('class="error"')[1:]
    return " | ".join(p.split(">", 1)[1].split("<", 1)[0] for p in parts) or html[-300:]


def ordered(routes: list[PageRoute]) -> list[PageRoute]:
    return sorted(routes, key=lambda r: (r in LAST, LAST.index(r) if r in LAST else 0))


@pytest.fixture
async def site(app: Starlette) -> AsyncIterator[Site]:  # noqa: F811
    made = Site(app)
    yield made
    await made.close()


# ---- the page matrix -----------------------------------------------------------------------


def test_the_page_matrix_covers_exactly_the_apps_page_routes(
    app: Starlette,  # noqa: F811
) -> None:
    routes = page_routes(app)
    assert set(PAGES) == routes, (
        f"page routes without a row: {sorted(routes - set(PAGES))}; "
        f"rows without a page route: {sorted(set(PAGES) - routes)}"
    )
    assert set(BUILDERS) == routes, f"without a request: {sorted(routes - set(BUILDERS))}"


PUBLIC_API = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
    ("GET", "/api/v1/problems"),
    ("GET", "/api/v1/problems/{code}"),
}


def test_every_api_route_of_the_app_is_in_the_api_matrix_or_public(
    app: Starlette,  # noqa: F811
    figures: Figures,
) -> None:
    """The API's matrix (tests/api/test_authorization.py) is checked against
    api.routes.ENDPOINTS; here ENDPOINTS against the app's routing table, so a route added to
    the app some other way cannot escape it. Only the three public routes need no token."""
    from tests.api.test_authorization import TABLE

    routed = {(m, r.path) for r in api_routes(app) for m in r.methods or () if m != "HEAD"}
    matrix = {(method, "/api/v1" + path) for method, path in TABLE}
    figures(api_routes=len(routed), in_the_api_matrix=len(matrix), public=len(PUBLIC_API),
            page_routes=len(page_routes(app)))  # fmt: skip
    assert routed - PUBLIC_API == matrix, (
        f"without a matrix row: {sorted(routed - PUBLIC_API - matrix)}; "
        f"rows without a route: {sorted(matrix - routed)}"
    )


async def test_each_role_gets_exactly_what_the_page_matrix_says_on_every_page(
    app: Starlette,  # noqa: F811
    app_client: httpx.AsyncClient,  # noqa: F811
    world: World,  # noqa: F811
    db_url: str,
    clock: Clock,
    site: Site,
    figures: Figures,
) -> None:
    setup = Setup(Ctx(app_client, world))
    await setup.make(db_url, clock)
    visitors = {(scheme, role): await site.visitor(login_of(scheme, role))
                for scheme in SCHEMES for role in ROLES}  # fmt: skip
    visitors |= {(scheme, OUT): await site.visitor("") for scheme in SCHEMES}
    wrong = site.wrong
    checked = 0
    for route in ordered(sorted(page_routes(app))):
        build = BUILDERS[route]
        in_scheme = "{scheme}" in route[1]
        for scheme in SCHEMES if in_scheme else ("taff",):
            # another scheme's page, with that scheme's real ids: as for no scheme at all
            for role in ROLES if in_scheme else ():
                who, there = visitors[(scheme, role)], OTHER[scheme]
                want = expected(route, there, role, own=False, own_job=True)
                r = await site.send(who, route, there, await build(setup, there, role, False))
                checked += 1
                if mismatch(r, want):
                    wrong.append(report(f"{role} of {scheme}", route, r, want))
                elif want is HIDDEN:
                    g = await site.send(who, route, GHOST, await build(setup, there, role, False))
                    if (g.status_code, _message(g.text)) != (r.status_code, _message(r.text)):
                        wrong.append(report(f"{role} of {scheme}", route, g, want))
            # each role on its own scheme's page
            for role in COLUMNS:
                own_job = "{job}" not in route[1] or setup.job_of(scheme, role)[1]
                want = expected(route, scheme, role, own=True, own_job=own_job)
                req = await build(setup, scheme, role, want is ALLOWED)
                who = visitors[(scheme, role)]
                if req.session is not None:
                    who = await site.visitor(req.session)
                r = await site.send(who, route, scheme, req)
                checked += 1
                if mismatch(r, want):
                    wrong.append(report(f"{role} of {scheme}", route, r, want))
                if "{job}" in route[1] and role in JOB_MAKERS:  # another login's job
                    other = setup.jobs[(scheme, COM if role != COM else CO)]
                    r = await site.send(who, route, scheme, Req({"job": other}))
                    checked += 1
                    if mismatch(r, NO_JOB):
                        wrong.append(report(f"{role} of {scheme}", route, r, NO_JOB))
    await _wait_for_jobs(site)
    figures(page_routes=len(PAGES), roles=len(COLUMNS), schemes=len(SCHEMES),
            requests_checked=checked, responses_with_headers=site.responses,
            post_forms_with_csrf=site.forms)  # fmt: skip
    assert not wrong, "\n" + "\n".join(wrong)


async def _wait_for_jobs(site: Site) -> None:
    """The background jobs the pages started run to their end before the app stops."""
    for who, url in site.jobs:
        for _ in range(300):
            r = await who.pages.client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            if "Working on it" not in r.text:
                break
            await asyncio.sleep(0.05)


# ---- CSRF ----------------------------------------------------------------------------------


def post_routes(asgi: Starlette) -> list[PageRoute]:
    return sorted(r for r in page_routes(asgi) if r[0] == "POST")


def allowed_role(route: PageRoute) -> str:
    """A role that may post to `route` (signed out if anyone may)."""
    marks = PAGES[route]
    if marks[OUT] == "Y":
        return OUT
    return next(r for r in ROLES if marks[r] in "YP" or (marks[r] == "o" and r in JOB_MAKERS))


def succeeds_in(route: PageRoute) -> str:
    """A scheme whose own rules let the route's request succeed."""
    return next(s for s in SCHEMES if (*route, s) not in SCHEME_RULES)


async def test_every_post_page_refuses_a_forged_or_cross_site_form_and_changes_nothing(
    app: Starlette,  # noqa: F811
    app_client: httpx.AsyncClient,  # noqa: F811
    world: World,  # noqa: F811
    db_url: str,
    clock: Clock,
    site: Site,
    figures: Figures,
) -> None:
    """Each POST page, from a visitor allowed to post it, with a form that would succeed but
    for its CSRF token (none, a made-up one, another visitor's) or a foreign Origin: 403
    "the form had expired", and not one row of the database changed; then the same forms,
    genuine, all go through (so each refusal was the CSRF check's)."""
    setup = Setup(Ctx(app_client, world))
    await setup.make(db_url, clock)
    attacker = await site.visitor(login_of("taff", CO))  # a session of the attacker's own
    forged: dict[str, tuple[str | None, dict[str, str] | None]] = {
        "no token": ("", None),
        "made-up token": ("A" * 43, None),
        "a token not in ASCII": ("é" * 43, None),  # compare_digest refuses such str: was a 500
        "another session's token": (attacker.csrf, None),
        "foreign Origin": (None, {"origin": "https://evil.example"}),
        "opaque Origin": (None, {"origin": "null"}),
        "foreign Origin, same path": (None, {"origin": "http://tb.test.evil.example"}),
    }
    routes = post_routes(app)
    prepared = []
    for route in ordered(routes):  # each with the state to succeed, made before the snapshot
        role, scheme = allowed_role(route), succeeds_in(route)
        req = await BUILDERS[route](setup, scheme, role, True)
        who = await site.visitor(req.session if req.session is not None else
                                 ("" if role == OUT else login_of(scheme, role)))  # fmt: skip
        prepared.append((route, role, scheme, req, who))
    before = snapshot(db_url)
    wrong = site.wrong
    sent = 0
    for route, role, scheme, req, who in prepared:
        for name, (csrf, headers) in forged.items():
            r = await site.send(who, route, scheme, req, csrf=csrf, headers=headers)
            sent += 1
            want = Expect(403, "The form had expired. Please try again.")
            if mismatch(r, want):
                wrong.append(report(f"{role}: {name}", route, r, want))
    after = snapshot(db_url)
    changed = sorted(t for t in before if before[t] != after.get(t))
    # the control: the same forms with their own token and no foreign Origin go through
    for route, role, scheme, req, who in prepared:
        r = await site.send(who, route, scheme, req)
        if mismatch(r, ALLOWED):
            wrong.append(report(f"{role}: the genuine form", route, r, ALLOWED))
    await _wait_for_jobs(site)
    figures(post_routes=len(routes), forgeries_per_route=len(forged), refused_requests=sent,
            tables_changed=len(changed), genuine_forms_accepted=len(prepared))  # fmt: skip
    assert not wrong, "\n" + "\n".join(wrong)
    assert not changed, f"refused forms changed {changed}"


async def test_no_get_page_changes_anything(
    app: Starlette,  # noqa: F811
    app_client: httpx.AsyncClient,  # noqa: F811
    world: World,  # noqa: F811
    db_url: str,
    clock: Clock,
    site: Site,
    figures: Figures,
) -> None:
    """A link or an image on another site can make a signed-in browser GET any page: every GET
    page, as a role allowed to see it, leaves every row of the database as it was."""
    setup = Setup(Ctx(app_client, world))
    await setup.make(db_url, clock)
    await setup.ctx.checkpoint("taff")  # a receipt signs one on demand otherwise (the ledger's)
    routes = sorted(r for r in page_routes(app) if r[0] == "GET")
    visits = []
    for route in routes:
        role = allowed_role(route)
        visits.append((route, await site.visitor("" if role == OUT else login_of("taff", role)),
                       await BUILDERS[route](setup, "taff", role, False)))  # fmt: skip
    before = snapshot(db_url)
    for route, who, req in visits:
        r = await site.send(who, route, "taff", req)
        assert r.status_code < 400, report("", route, r, ALLOWED)
    after = snapshot(db_url)
    changed = sorted(t for t in before if before[t] != after.get(t))
    figures(get_routes=len(routes), tables_changed=len(changed))
    assert not site.wrong, "\n" + "\n".join(site.wrong)
    assert not changed, f"GET pages changed {changed}"


# ---- security headers ----------------------------------------------------------------------


def _static_files() -> list[str]:
    import web.routes

    return sorted(p.name for p in Path(web.routes.STATIC).iterdir() if p.is_file())


async def test_every_response_carries_the_security_headers(
    app: Starlette,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    """Every route of the routing table (the API's with no token and with one, the pages
    signed out), the static files, the docs, and every kind of error: 401, 403, 404, 405, 413,
    415, 422, 429 and a 500 from an unexpected exception; HSTS over HTTPS only."""
    params = {"scheme": "taff", "member": "M1", "card": "taff-M1", "seq": "1", "code": "garden",
              "claim": "0" * 24, "offer": "x", "request": "x", "partner": "p-taff",
              "token": "0" * 16, "job": "0" * 32, "chart": "hours-by-month"}  # fmt: skip
    seen: dict[str, int] = {}
    wrong: list[str] = []

    async def check(client: httpx.AsyncClient, method: str, url: str, https: bool = False,
                    **kw: Any) -> None:  # fmt: skip
        r = await client.request(method, url, **kw)
        seen[str(r.status_code)] = seen.get(str(r.status_code), 0) + 1
        if gone := missing_headers(r, https):
            wrong.append(f"  {method} {url} -> {r.status_code}: no {gone}")

    routes = [r for r in app.routes if isinstance(r, Route)] + api_routes(app)
    assert any(isinstance(r, Mount) for r in app.routes)  # the static files: below
    admin = world.admin
    for https in (False, True):
        base = "https://tb.test" if https else "http://tb.test"
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base) as c:
            for route in routes:
                url = route.path.format(**params)
                for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                    await check(c, method, url, https)  # signed out, no token
                    if route.path.startswith("/api/v1/") and route.path != "/api/v1/health":
                        await check(c, method, url, https, headers=admin)
                if "GET" in (route.methods or ()):
                    await check(c, "HEAD", url, https)
            for name in _static_files():
                await check(c, "GET", f"/static/{name}", https)
            await check(c, "GET", "/static/nothing.css", https)  # 404 from the static files
            await check(c, "GET", "/no/such/page", https)  # 404
            await check(c, "DELETE", "/api/v1/schemes", https, headers=admin)  # 405
            await check(c, "POST", "/api/v1/schemes", https, headers=admin,
                        content=b"x" * 70_000)  # 413 # fmt: skip
            await check(c, "POST", "/api/v1/schemes", https, headers=admin,
                        content=b"{}")  # 415 # fmt: skip
            await check(c, "POST", "/api/v1/schemes", https, headers=admin, json={})  # 422
            await check(c, "GET", "/api/v1/schemes/taff/members",
                        https, headers=world.as_("taff", MEM))  # 403 # fmt: skip
            await check(c, "GET", "/api/v1/schemes/taff/reports", https,
                        headers=world.as_("taff", COM),
                        params={"from": "2025-01-01", "to": DAY, "format": "html"})  # fmt: skip

    # a throttled address (429), from an address of its own
    transport = httpx.ASGITransport(app=app, client=("192.0.2.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://tb.test") as c:
        for _ in range(30):
            r = await c.get("/api/v1/me", headers={"Authorization": "Bearer guess"})
        assert r.status_code == 429
        await check(c, "GET", "/api/v1/me", headers={"Authorization": "Bearer guess"})

    # a 500: an unexpected exception in the API and in a page
    from identity.tokens import TokenBook

    async def boom(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("an unexpected failure")

    monkeypatch.setattr(TokenBook, "authenticate", boom)
    monkeypatch.setattr(AccountBook, "session", boom)
    for https in (False, True):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        base = "https://tb.test" if https else "http://tb.test"
        async with httpx.AsyncClient(transport=transport, base_url=base) as c:
            for url in ("/api/v1/me", "/sign-in"):
                r = await c.get(url, headers=admin)
                assert r.status_code == 500, r.text
                await check(c, "GET", url, https, headers=admin)
    figures(routes=len(routes), api_endpoints=len(ENDPOINTS), static_files=len(_static_files()),
            responses_by_status=dict(sorted(seen.items())))  # fmt: skip
    assert {"401", "403", "404", "405", "413", "415", "422", "429", "500"} <= set(seen), seen
    assert not wrong, "\n" + "\n".join(wrong)
