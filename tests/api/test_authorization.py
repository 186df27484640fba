"""The authorisation matrix: every route x every role x own scheme / another scheme.

`MATRIX` is the specification, written out here independently of the routes' own `allow` sets:
for each route, which roles may call it in their own scheme. On another scheme's path every
scheme role gets 404, exactly as for a scheme that does not exist, so one scheme never learns
another's data, nor whether it exists. Each request is a real one: path ids are real ids of the
scheme in the path, and bodies are valid, so an allowed call succeeds (2xx) rather than failing
validation, and a refusal is the authorisation check's, not the input's.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette

from api.routes import ENDPOINTS
from partners.codes import display, new_code
from tests.api.world import ACTIVITY, ASHE_ADDITION, LIFT, OFFER, SCHEMES, World, bearer

pytestmark = pytest.mark.both_backends

ADMIN, SA, CO, MEM, PS, COM = (
    "admin", "scheme-admin", "coordinator", "member", "partner-staff", "commissioner",
)  # fmt: skip
ROLES = (ADMIN, SA, CO, MEM, PS, COM)
SCHEME_ROLES = (SA, CO, MEM, PS, COM)
GHOST = "ghost"  # a scheme that does not exist
DAY = "2025-12-31"  # the world's clock reads 2026-01-01
OTHER = {"taff": "m2m", "m2m": "taff"}
CODE = {"taff": ACTIVITY["code"], "m2m": LIFT["code"]}

# Y: allowed. o: allowed on the caller's own records only (another member's: 403, field
# "member"; a record named by its own id, another member's claim or voucher: 404, exactly as for
# one that does not exist). .: refused for the role (403, field "role").
# A person's token acts as one member: "member" is M1; staff act on M2's records. Partner staff
# act for their scheme's partner, p-<scheme>: its vouchers, statement and agreement (another
# partner's: see the tests of partner staff below). /partners... is outside any scheme.
MATRIX = """
                                                       admin  s-adm  coord  membr  p-stf  comm
GET  /me                                                 Y      Y      Y      Y      Y      Y
POST /schemes                                            Y      .      .      .      .      .
GET  /schemes                                            Y      Y      Y      Y      Y      Y
GET  /schemes/{scheme}                                   Y      Y      Y      Y      Y      Y
POST /schemes/{scheme}/tokens                            .      Y      Y      .      .      .
GET  /schemes/{scheme}/tokens                            Y      Y      .      .      .      .
POST /schemes/{scheme}/tokens/{token}/revoke             Y      Y      .      .      .      .
POST /schemes/{scheme}/members                           Y      Y      Y      .      .      .
GET  /schemes/{scheme}/members                           .      Y      Y      .      .      .
GET  /schemes/{scheme}/members/{member}                  .      Y      Y      o      .      .
GET  /schemes/{scheme}/cards/{card}                      .      Y      Y      .      .      .
GET  /schemes/{scheme}/members/{member}/balance          .      Y      Y      o      .      .
GET  /schemes/{scheme}/members/{member}/entries          .      Y      Y      o      .      .
GET  /schemes/{scheme}/members/{member}/entries/{seq}/receipt
                                                         .      Y      Y      o      .      .
POST /schemes/{scheme}/members/{member}/erase            .      Y      Y      o      .      .
GET  /schemes/{scheme}/activities                        .      Y      Y      Y      Y      Y
POST /schemes/{scheme}/activities                        .      Y      Y      .      .      .
POST /schemes/{scheme}/activities/{code}/retire          .      Y      Y      .      .      .
POST /schemes/{scheme}/claims                            .      Y      Y      Y      .      .
POST /schemes/{scheme}/claims/group                      .      Y      Y      .      .      .
GET  /schemes/{scheme}/claims                            .      Y      Y      o      .      .
GET  /schemes/{scheme}/claims/{claim}                    .      Y      Y      o      .      .
POST /schemes/{scheme}/claims/{claim}/confirm            .      Y      Y      o      .      .
POST /schemes/{scheme}/claims/{claim}/reject             .      Y      Y      .      .      .
POST /schemes/{scheme}/claims/{claim}/reverse            .      Y      Y      .      .      .
GET  /schemes/{scheme}/burnout                           .      Y      Y      .      .      .
POST /schemes/{scheme}/checkpoints                       Y      Y      Y      .      .      .
GET  /schemes/{scheme}/checkpoints/latest                Y      Y      Y      Y      Y      Y
GET  /schemes/{scheme}/keys                              Y      Y      Y      Y      Y      Y
POST /schemes/{scheme}/imports/members                   .      Y      Y      .      .      .
POST /schemes/{scheme}/imports/hours                     .      Y      Y      .      .      .
POST /schemes/{scheme}/imports/timeoverflow-members      .      Y      Y      .      .      .
POST /schemes/{scheme}/imports/timeoverflow-transfers    .      Y      Y      .      .      .
POST /schemes/{scheme}/offers                            .      Y      Y      o      .      .
GET  /schemes/{scheme}/offers                            .      Y      Y      Y      .      .
POST /schemes/{scheme}/offers/{offer}/withdraw           .      Y      Y      o      .      .
POST /schemes/{scheme}/requests                          .      Y      Y      o      .      .
GET  /schemes/{scheme}/requests                          .      Y      Y      Y      .      .
POST /schemes/{scheme}/requests/{request}/close          .      Y      Y      o      .      .
GET  /schemes/{scheme}/requests/{request}/matches        .      Y      Y      Y      .      .
GET  /schemes/{scheme}/needs                             .      Y      Y      .      .      .
GET  /schemes/{scheme}/books                             .      Y      Y      .      .      Y
POST /partners                                           Y      .      .      .      .      .
POST /partners/{partner}/venues                          Y      .      .      .      .      .
POST /partners/{partner}/offers                          Y      .      .      .      .      .
POST /schemes/{scheme}/partner/venues                    .      .      .      .      Y      .
POST /schemes/{scheme}/partner/offers                    .      .      .      .      Y      .
POST /schemes/{scheme}/agreements                        Y      Y      .      .      .      .
GET  /schemes/{scheme}/agreements                        Y      Y      Y      .      Y      .
POST /schemes/{scheme}/agreements/{partner}/retire       Y      Y      .      .      .      .
GET  /schemes/{scheme}/partner-offers                    .      Y      Y      Y      Y      Y
GET  /schemes/{scheme}/partner/statement                 .      Y      Y      .      Y      .
POST /schemes/{scheme}/partner/reconciliations           .      .      .      .      Y      .
POST /schemes/{scheme}/partner/keys                      .      .      .      .      Y      .
POST /schemes/{scheme}/vouchers                          .      Y      Y      o      .      .
GET  /schemes/{scheme}/vouchers/{code}                   .      Y      Y      o      Y      .
GET  /schemes/{scheme}/vouchers/{code}/qr                .      Y      Y      o      Y      .
POST /schemes/{scheme}/vouchers/{code}/settle            .      .      .      .      Y      .
POST /schemes/{scheme}/vouchers/{code}/void              .      Y      Y      o      Y      .
GET  /schemes/{scheme}/reports                           .      Y      Y      .      .      Y
POST /schemes/{scheme}/outcomes                          .      Y      Y      .      .      .
POST /schemes/{scheme}/imports/outcomes                  .      Y      Y      .      .      .
POST /schemes/{scheme}/costs                             .      Y      Y      .      .      .
POST /schemes/{scheme}/ratings                           .      Y      Y      Y      .      .
POST /schemes/{scheme}/catalogues                        .      Y      .      .      .      .
GET  /schemes/{scheme}/catalogues                        .      Y      Y      .      .      Y
"""

Route = tuple[str, str]


def _parse(text: str) -> dict[Route, dict[str, str]]:
    table: dict[Route, dict[str, str]] = {}
    words: list[str] = []
    for line in text.strip().splitlines()[1:]:  # the first line is the heading
        words += line.split()
        if len(words) == 2 + len(ROLES):  # a long path puts the marks on the next line
            method, path, *marks = words
            assert all(m in "Yo." for m in marks), line
            assert (method, path) not in table, f"{method} {path} twice"
            table[(method, path)] = dict(zip(ROLES, marks, strict=True))
            words = []
    assert not words, f"a row without its marks: {words}"
    return table


TABLE = _parse(MATRIX)


@dataclass(frozen=True)
class Expect:
    status: int | None  # None: any 2xx
    field: str | None = None  # the problem's `field`

    def __str__(self) -> str:
        return "2xx" if self.status is None else f"{self.status} field={self.field}"


OK = Expect(None)
ROLE_REFUSED = Expect(403, "role")
NOT_YOURS = Expect(403, "member")
# Another member's claim or voucher, asked for by its id: as if it did not exist.
HIDDEN: dict[tuple[str, str], Expect] = {
    ("GET", "/schemes/{scheme}/claims/{claim}"): Expect(404, "claim"),
    ("POST", "/schemes/{scheme}/claims/{claim}/confirm"): Expect(404, "claim"),
    ("GET", "/schemes/{scheme}/vouchers/{code}"): Expect(404, "code"),
    ("GET", "/schemes/{scheme}/vouchers/{code}/qr"): Expect(404, "code"),
    ("POST", "/schemes/{scheme}/vouchers/{code}/void"): Expect(404, "code"),
}

# The role may make the call, but the scheme's own rules refuse it (not an authorisation matter):
# (method, path, scheme, role) -> what comes back instead of 2xx.
P = "/schemes/{scheme}"
SCHEME_RULES: dict[tuple[str, str, str, str], Expect] = {
    # person-to-person: every hour needs the member helped, and a group session names none
    **{("POST", P + "/claims/group", "m2m", r): Expect(422, "receiver") for r in (SA, CO)},
    # TimeOverflow's transfers move hours between members; a time-credit scheme has no receiver
    **{
        ("POST", P + "/imports/timeoverflow-transfers", "taff", r): Expect(422, "receiver")
        for r in (SA, CO)
    },
    # time credits: only a coordinator confirms, and nobody their own hours (its member's own
    # claim is the only one a member is party to)
    ("POST", P + "/claims/{claim}/confirm", "taff", MEM): Expect(403, "by"),
}


def expected(route: Route, scheme: str, role: str, mine: bool) -> Expect:
    """What `role`, in `scheme` itself, gets from `route`; `mine`: on the caller's own record."""
    mark = TABLE[route][role]
    if mark == ".":
        return ROLE_REFUSED
    if mark == "o" and not mine:
        return HIDDEN.get(route, NOT_YOURS)
    return SCHEME_RULES.get((*route, scheme, role), OK)


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    csv: str | None = None
    query: dict[str, str] | None = None


@dataclass(frozen=True)
class Target:
    scheme: str  # the scheme in the path
    role: str  # the caller's
    mine: bool  # a member acting on their own record (else another member's)
    fresh: bool  # the call should succeed: give it state of its own to use up

    @property
    def owner(self) -> str:
        """Whose record the request is about: the member's own (M1), else M2's."""
        return "M1" if self.role == MEM and self.mine else "M2"


class Ctx:
    """Makes the state a request needs, through the API, as the scheme's own people."""

    def __init__(self, client: httpx.AsyncClient, world: World) -> None:
        self.client = client
        self.world = world
        self._count = itertools.count(1)
        self._made: dict[tuple[object, ...], str] = {}

    def n(self) -> int:
        return next(self._count)

    def headers(self, scheme: str, role: str) -> dict[str, str]:
        return self.world.admin if role == ADMIN else self.world.as_(scheme, role)

    def person(self, scheme: str, member: str) -> dict[str, str]:
        return self.world.members[(scheme, member)]

    async def post(
        self, url: str, headers: dict[str, str], json: Any = None, status: int = 201
    ) -> dict[str, Any]:
        r = await self.client.post("/api/v1" + url, json=json, headers=headers)
        assert r.status_code == status, f"setting up: POST {url} -> {r.status_code} {r.text}"
        body = r.json()
        assert isinstance(body, dict)
        return body

    async def once(
        self, t: Target, key: tuple[object, ...], make: Callable[[], Awaitable[str]]
    ) -> str:
        """A new object when the call should succeed (it may use it up), else a shared one."""
        if t.fresh:
            return await make()
        if (t.scheme, *key) not in self._made:
            self._made[(t.scheme, *key)] = await make()
        return self._made[(t.scheme, *key)]

    async def claim(
        self, scheme: str, member: str, receiver: str | None = None, *, confirmed: bool = False
    ) -> dict[str, Any]:
        """A claim logged by `member` (M1 or M2) for 15 minutes; person-to-person, for the
        member helped `receiver` (default C1)."""
        body: dict[str, Any] = {"activity": CODE[scheme], "date": DAY, "minutes": 15}
        if scheme == "m2m":
            body["receiver"] = receiver or "C1"
        claim = await self.post(f"/schemes/{scheme}/claims", self.person(scheme, member), body)
        if confirmed:
            claim = await self.post(
                f"/schemes/{scheme}/claims/{claim['id']}/confirm",
                self.headers(scheme, CO), status=200,
            )  # fmt: skip
        return claim

    async def entry(self, scheme: str, member: str) -> str:
        """The sequence number of a ledger entry that moved `member`'s hours."""
        key = ("entry", scheme, member)
        if key not in self._made:
            claim = await self.claim(scheme, member, confirmed=True)
            self._made[key] = str(claim["entry_seq"])
        return self._made[key]

    async def checkpoint(self, scheme: str) -> None:
        if ("checkpoint", scheme) not in self._made:
            await self.entry(scheme, "M2")
            await self.post(f"/schemes/{scheme}/checkpoints", self.world.admin)
            self._made[("checkpoint", scheme)] = "made"

    async def earn(self, scheme: str, member: str, minutes: int) -> None:
        """`member` earns `minutes`: a claim of theirs (a day of its own) that C1 confirms."""
        day = date.fromisoformat(DAY) - timedelta(days=self.n())
        body: dict[str, Any] = {"activity": CODE[scheme], "date": day.isoformat(),
                                "minutes": minutes}  # fmt: skip
        if scheme == "m2m":
            body["receiver"] = "A1"
        claim = await self.post(f"/schemes/{scheme}/claims", self.person(scheme, member), body)
        await self.post(f"/schemes/{scheme}/claims/{claim['id']}/confirm",
                        self.headers(scheme, CO), status=200)  # fmt: skip

    async def voucher(self, scheme: str, member: str) -> str:
        """A pending voucher of `member`'s for p-<scheme>'s swim (after earning its credit)."""
        await self.earn(scheme, member, 60)
        body = {"partner": f"p-{scheme}", "offer": "swim"}
        made = await self.post(f"/schemes/{scheme}/vouchers", self.person(scheme, member), body)
        return str(made["code"])

    async def settled(self, scheme: str) -> None:
        """p-<scheme> takes a credit: a voucher of M2's settled at its till."""
        code = await self.voucher(scheme, "M2")
        await self.post(f"/schemes/{scheme}/vouchers/{code}/settle", self.headers(scheme, PS),
                        {"venue": "hall"}, status=200)  # fmt: skip

    async def offer(self, scheme: str, member: str) -> str:
        body = {"skills": ["gardening"], "area": "CF10"}
        made = await self.post(f"/schemes/{scheme}/offers", self.person(scheme, member), body)
        return str(made["id"])

    async def help_request(self, scheme: str, member: str) -> str:
        body = {"skills": ["gardening"], "area": "CF10"}
        made = await self.post(f"/schemes/{scheme}/requests", self.person(scheme, member), body)
        return str(made["id"])


Builder = Callable[[Ctx, Target], Awaitable[Req]]
BUILDERS: dict[Route, Builder] = {}


def builds(method: str, path: str) -> Callable[[Builder], Builder]:
    def register(f: Builder) -> Builder:
        BUILDERS[(method, path)] = f
        return f

    return register


def _no_params(*routes: Route) -> None:
    async def empty(_ctx: Ctx, _t: Target) -> Req:
        return Req()

    for route in routes:
        BUILDERS[route] = empty


_no_params(
    ("GET", "/me"), ("GET", "/schemes"), ("GET", P), ("GET", P + "/tokens"),
    ("GET", P + "/members"), ("GET", P + "/activities"), ("GET", P + "/burnout"),
    ("POST", P + "/checkpoints"), ("GET", P + "/keys"), ("GET", P + "/offers"),
    ("GET", P + "/requests"), ("GET", P + "/needs"), ("GET", P + "/agreements"),
    ("GET", P + "/partner-offers"), ("GET", P + "/catalogues"),
)  # fmt: skip


@builds("POST", "/schemes")
async def _new_scheme(ctx: Ctx, t: Target) -> Req:
    return Req(json={"id": f"new-{ctx.n()}", "name": "New", "model": "time-credits"})


@builds("POST", P + "/tokens")
async def _new_token(ctx: Ctx, t: Target) -> Req:
    return Req(json={"role": "member", "member": "M2", "label": f"t{ctx.n()}"})


@builds("POST", P + "/tokens/{token}/revoke")
async def _revoke(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        body = {"role": "commissioner", "label": "spare"}
        maker = ctx.world.as_(t.scheme, SA)
        return str((await ctx.post(f"/schemes/{t.scheme}/tokens", maker, body))["id"])

    return Req({"token": await ctx.once(t, ("token",), make)})


@builds("POST", P + "/members")
async def _new_member(ctx: Ctx, t: Target) -> Req:
    return Req(json={"id": f"N{ctx.n()}", "display_name": "New member"})


for _path in ("", "/balance", "/entries"):

    @builds("GET", P + "/members/{member}" + _path)
    async def _member(ctx: Ctx, t: Target) -> Req:
        return Req({"member": t.owner})


@builds("GET", P + "/cards/{card}")
async def _card(ctx: Ctx, t: Target) -> Req:
    return Req({"card": f"{t.scheme}-{t.owner}"})


@builds("GET", P + "/members/{member}/entries/{seq}/receipt")
async def _receipt(ctx: Ctx, t: Target) -> Req:
    return Req({"member": t.owner, "seq": await ctx.entry(t.scheme, t.owner)})


@builds("POST", P + "/members/{member}/erase")
async def _erase(ctx: Ctx, t: Target) -> Req:
    if t.role == MEM:  # erasing M1 revokes the member's token: the matrix asks it last
        return Req({"member": t.owner})

    async def make() -> str:
        member = f"E{ctx.n()}"
        body = {"id": member, "display_name": "To be erased"}
        await ctx.post(f"/schemes/{t.scheme}/members", ctx.world.admin, body)
        return member

    return Req({"member": await ctx.once(t, ("erasable",), make)})


@builds("POST", P + "/activities")
async def _new_activity(ctx: Ctx, t: Target) -> Req:
    return Req(json=ACTIVITY | {"code": f"act-{ctx.n()}"})


@builds("POST", P + "/activities/{code}/retire")
async def _retire(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        code = f"act-{ctx.n()}"
        body = ACTIVITY | {"code": code}
        await ctx.post(f"/schemes/{t.scheme}/activities", ctx.headers(t.scheme, CO), body)
        return code

    return Req({"code": await ctx.once(t, ("activity",), make)})


@builds("POST", P + "/claims")
async def _log(ctx: Ctx, t: Target) -> Req:
    body: dict[str, Any] = {"activity": CODE[t.scheme], "date": DAY, "minutes": 15}
    if t.scheme == "m2m":
        body["receiver"] = "M2"
    return Req(json=body)


@builds("POST", P + "/claims/group")
async def _group(ctx: Ctx, t: Target) -> Req:
    return Req(json={"members": ["M2"], "activity": CODE[t.scheme], "date": DAY, "minutes": 15})


@builds("GET", P + "/claims")
async def _list_claims(ctx: Ctx, t: Target) -> Req:
    return Req(query={"member": t.owner})


@builds("GET", P + "/claims/{claim}")
async def _get_claim(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:  # M2's claim helps C1, not M1: M1 is no party to it
        return str((await ctx.claim(t.scheme, t.owner))["id"])

    return Req({"claim": await ctx.once(t, ("claim", t.owner), make)})


@builds("POST", P + "/claims/{claim}/confirm")
async def _confirm(ctx: Ctx, t: Target) -> Req:
    # a member's own: in m2m, M2's hours that helped M1 (M1 confirms); in taff, M1's own hours
    # another's: M2's hours that helped C1
    own = t.role == MEM and t.mine
    member, receiver = ("M2", "M1") if own and t.scheme == "m2m" else (t.owner, None)

    async def make() -> str:
        return str((await ctx.claim(t.scheme, member, receiver))["id"])

    return Req({"claim": await ctx.once(t, ("pending", member, receiver), make)})


@builds("POST", P + "/claims/{claim}/reject")
async def _reject(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        return str((await ctx.claim(t.scheme, "M2"))["id"])

    claim = await ctx.once(t, ("pending", "M2", None), make)
    return Req({"claim": claim}, json={"reason": "not this time"})


@builds("POST", P + "/claims/{claim}/reverse")
async def _reverse(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        return str((await ctx.claim(t.scheme, "M2", confirmed=True))["id"])

    claim = await ctx.once(t, ("confirmed", "M2"), make)
    return Req({"claim": claim}, json={"reason": "logged in error"})


@builds("GET", P + "/checkpoints/latest")
async def _latest(ctx: Ctx, t: Target) -> Req:
    await ctx.checkpoint(t.scheme)
    return Req()


@builds("GET", P + "/reports")
async def _report(ctx: Ctx, t: Target) -> Req:
    return Req(query={"from": "2025-01-01", "to": DAY, "format": "csv"})


@builds("POST", P + "/outcomes")
async def _outcome(ctx: Ctx, t: Target) -> Req:
    return Req(json={"id": f"o{ctx.n()}", "outcome": "hmt-wellby", "start": "2025-01-01",
                     "end": DAY, "people": 4, "evidence": "survey",
                     "evidence_note": "ONS4, n=4", "change": "0.1"})  # fmt: skip


@builds("POST", P + "/imports/outcomes")
async def _import_outcomes(ctx: Ctx, t: Target) -> Req:
    row = f"i{ctx.n()},expert-patient-diverted-ae,2025-01-01,{DAY},3,admin-data,ED records"
    return Req(csv=f"id,outcome,from,to,people,evidence,evidence_note\n{row}\n")


@builds("POST", P + "/costs")
async def _cost(ctx: Ctx, t: Target) -> Req:
    return Req(json={"id": f"c{ctx.n()}", "funder": "COUNCIL", "kind": "cash",
                     "start": "2025-01-01", "end": DAY, "amount": "1000.00",
                     "price_year": "2025/26"})  # fmt: skip


@builds("POST", P + "/catalogues")
async def _catalogue(ctx: Ctx, t: Target) -> Req:
    return Req(json={"version": f"local.{ctx.n()}", "content": ASHE_ADDITION})


@builds("POST", P + "/ratings")
async def _rating(ctx: Ctx, t: Target) -> Req:
    return Req(json={"id": f"r{ctx.n()}", "subject": "service", "subject_id": CODE[t.scheme],
                     "score": 4, "day": DAY})  # fmt: skip


@builds("POST", P + "/imports/members")
async def _import_members(ctx: Ctx, t: Target) -> Req:
    return Req(csv=f"id,display_name\nI{ctx.n()},Imported\n")


@builds("POST", P + "/imports/hours")
async def _import_hours(ctx: Ctx, t: Target) -> Req:
    receiver = "C1" if t.scheme == "m2m" else ""
    return Req(csv=f"member,activity,date,minutes,receiver,note\n"
                   f"M2,{CODE[t.scheme]},{DAY},15,{receiver},import {ctx.n()}\n")  # fmt: skip


@builds("POST", P + "/imports/timeoverflow-members")
async def _import_to_members(ctx: Ctx, t: Target) -> Req:
    return Req(csv=f"N,Name,Email\n{ctx.n()},Ann,ann@example.org\n")


@builds("POST", P + "/imports/timeoverflow-transfers")
async def _import_to_transfers(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        r = await ctx.client.post(
            f"/api/v1/schemes/{t.scheme}/imports/timeoverflow-members",
            content=b"N,Name\n9001,Ann\n9002,Bob\n",
            headers=ctx.headers(t.scheme, CO) | {"content-type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        return "imported"

    await ctx.once(Target(t.scheme, CO, True, False), ("to-members",), make)
    text = (f"Date,From,To,Post,Quantity\n"
            f"{DAY} 10:00:00 UTC,Ann (9001),Bob (9002),Post {ctx.n()},0:15\n")  # fmt: skip
    return Req(csv=text, query={"activity": CODE[t.scheme]})


@builds("POST", P + "/offers")
async def _new_offer(ctx: Ctx, t: Target) -> Req:
    return Req(json={"member": t.owner, "skills": ["cooking"], "area": "CF11"})


@builds("POST", P + "/requests")
async def _new_request(ctx: Ctx, t: Target) -> Req:
    return Req(json={"member": t.owner, "skills": ["cooking"], "area": "CF11"})


@builds("POST", P + "/offers/{offer}/withdraw")
async def _withdraw(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        return await ctx.offer(t.scheme, t.owner)

    return Req({"offer": await ctx.once(t, ("offer", t.owner), make)})


@builds("POST", P + "/requests/{request}/close")
async def _close(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        return await ctx.help_request(t.scheme, t.owner)

    return Req({"request": await ctx.once(t, ("request", t.owner), make)})


@builds("GET", P + "/requests/{request}/matches")
async def _matches(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        return await ctx.help_request(t.scheme, "M2")

    return Req({"request": await ctx.once(Target(t.scheme, CO, True, False), ("open",), make)})


@builds("GET", P + "/books")
async def _books(ctx: Ctx, t: Target) -> Req:
    return Req(query={"start": DAY, "end": "2026-01-01"})


@builds("POST", "/partners")
async def _new_partner(ctx: Ctx, t: Target) -> Req:
    return Req(json={"id": f"p-new-{ctx.n()}", "name": "New", "sector": "private"})


@builds("POST", "/partners/{partner}/venues")
async def _new_venue(ctx: Ctx, t: Target) -> Req:
    return Req({"partner": f"p-{t.scheme}"}, json={"id": f"v{ctx.n()}", "name": "A venue"})


@builds("POST", "/partners/{partner}/offers")
async def _new_partner_offer(ctx: Ctx, t: Target) -> Req:
    return Req({"partner": f"p-{t.scheme}"}, json=OFFER | {"id": f"o{ctx.n()}"})


@builds("POST", P + "/partner/venues")
async def _own_venue(ctx: Ctx, t: Target) -> Req:
    return Req(json={"id": f"v{ctx.n()}", "name": "A venue"})


@builds("POST", P + "/partner/offers")
async def _own_offer(ctx: Ctx, t: Target) -> Req:
    return Req(json=OFFER | {"id": f"o{ctx.n()}"})


@builds("POST", P + "/agreements")
async def _agree(ctx: Ctx, t: Target) -> Req:
    return Req(json={"partner": f"p-{t.scheme}", "offers": ["swim"], "venues": ["hall"],
                     "starts": "2020-01-01"})  # fmt: skip


@builds("POST", P + "/agreements/{partner}/retire")
async def _retire_credits(ctx: Ctx, t: Target) -> Req:
    if t.fresh:  # the partner must hold something to retire
        await ctx.settled(t.scheme)
    return Req({"partner": f"p-{t.scheme}"})


@builds("GET", P + "/partner/statement")
async def _statement(ctx: Ctx, t: Target) -> Req:
    return Req(query={"start": DAY, "end": "2026-01-01", "partner": f"p-{t.scheme}"})


@builds("POST", P + "/partner/reconciliations")
async def _reconcile(ctx: Ctx, t: Target) -> Req:
    return Req(csv="code,datetime,offer,venue\n")


@builds("POST", P + "/partner/keys")
async def _key(ctx: Ctx, t: Target) -> Req:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Req(json={"public_key": raw.hex()})


@builds("POST", P + "/vouchers")
async def _take_voucher(ctx: Ctx, t: Target) -> Req:
    if t.fresh:
        await ctx.earn(t.scheme, t.owner, 60)
    return Req(json={"partner": f"p-{t.scheme}", "offer": "swim", "member": t.owner})


for _path in ("", "/qr", "/void"):

    @builds("GET" if _path != "/void" else "POST", P + "/vouchers/{code}" + _path)
    async def _a_voucher(ctx: Ctx, t: Target) -> Req:
        async def make() -> str:
            return await ctx.voucher(t.scheme, t.owner)

        return Req({"code": await ctx.once(t, ("voucher", t.owner), make)})


@builds("POST", P + "/vouchers/{code}/settle")
async def _settle(ctx: Ctx, t: Target) -> Req:
    async def make() -> str:
        return await ctx.voucher(t.scheme, "M2")

    return Req({"code": await ctx.once(t, ("voucher", "M2"), make)}, json={"venue": "hall"})


async def send(
    client: httpx.AsyncClient,
    route: Route,
    scheme: str,
    req: Req,
    headers: dict[str, str],
) -> httpx.Response:
    method, path = route
    url = "/api/v1" + path.format(scheme=scheme, **req.params)
    if req.csv is not None:
        return await client.request(
            method, url, params=req.query, content=req.csv.encode(),
            headers=headers | {"content-type": "text/csv"},
        )  # fmt: skip
    return await client.request(method, url, params=req.query, json=req.json, headers=headers)


def mismatch(r: httpx.Response, want: Expect) -> bool:
    if want.status is None:
        return not 200 <= r.status_code < 300
    if r.status_code != want.status:
        return True
    if r.headers.get("content-type") != "application/problem+json":
        return True
    return bool(r.json().get("field") != want.field)


def hidden(r: httpx.Response, scheme: str) -> tuple[int, str, str]:
    """A response with the scheme's id in it blanked: what may differ between two schemes."""
    return (r.status_code, r.headers.get("content-type", ""),
            r.text.replace(f"'{scheme}'", "'<scheme>'"))  # fmt: skip


def report(who: str, route: Route, r: httpx.Response, want: str) -> str:
    url = r.request.url.raw_path.decode()
    return f"  {who:26} {route[0]:4} {url}: want {want}, got {r.status_code} {r.text[:160]}"


# ---- the matrix ----------------------------------------------------------------------------


def test_the_table_covers_exactly_the_apps_routes() -> None:
    routes = {(ep.method, ep.path) for ep in ENDPOINTS}
    assert set(TABLE) == routes, (
        f"routes without a row: {sorted(routes - set(TABLE))}; "
        f"rows without a route: {sorted(set(TABLE) - routes)}"
    )
    assert set(BUILDERS) == routes, f"routes without a request: {sorted(routes - set(BUILDERS))}"


@pytest.mark.parametrize("route", list(TABLE), ids=[f"{m} {p}" for m, p in TABLE])
async def test_each_role_gets_exactly_what_the_table_says(
    app_client: httpx.AsyncClient, world: World, route: Route
) -> None:
    ctx = Ctx(app_client, world)
    build = BUILDERS[route]
    wrong: list[str] = []
    in_scheme = "{scheme}" in route[1]
    if in_scheme:
        # another scheme's path, with that scheme's real ids: 404, the same as no scheme at all
        ghosts: list[tuple[int, str, str]] = []
        for scheme in SCHEMES:
            for role in SCHEME_ROLES:
                req = await build(ctx, Target(scheme, role, True, False))
                headers = ctx.headers(OTHER[scheme], role)
                r = await send(app_client, route, scheme, req, headers)
                g = await send(app_client, route, GHOST, req, headers)
                ghosts.append(hidden(g, GHOST))
                who = f"{role} of {OTHER[scheme]}"
                if r.status_code != 404 or r.json().get("field") != "scheme":
                    wrong.append(report(who, route, r, "404 field=scheme"))
                elif hidden(r, scheme) != hidden(g, GHOST):
                    wrong.append(report(who, route, r, f"the same as for no scheme: {g.text}"))
        # the deployment admin sees every scheme, but not one that does not exist
        req = await build(ctx, Target("taff", ADMIN, True, False))
        g = await send(app_client, route, GHOST, req, world.admin)
        if hidden(g, GHOST) != ghosts[0]:
            wrong.append(report("admin", route, g, f"as for anyone: {ghosts[0]}"))
    # each role in its own scheme (the admin in each); a member acts on another member's record
    # (M2's) before their own (M1's), since erasing themselves ends their token
    for scheme in SCHEMES if in_scheme else ("taff",):
        for role in ROLES:
            both = role == MEM and TABLE[route][role] != "."  # "Y": anyone's record, too
            for mine in (False, True) if both else (True,):
                want = expected(route, scheme, role, mine)
                req = await build(ctx, Target(scheme, role, mine, want is OK))
                r = await send(app_client, route, scheme, req, ctx.headers(scheme, role))
                if mismatch(r, want):
                    who = f"{role} of {scheme}" + ("" if mine else " (M2's)")
                    wrong.append(report(who, route, r, str(want)))
    assert not wrong, "\n" + "\n".join(wrong)


# ---- who is asking -------------------------------------------------------------------------


class EachFromAnAddressOfItsOwn(httpx.ASGITransport):
    """Sends each request from a new client address, so that the throttle on failed
    authentications (429 after identity.tokens.MAX_FAILURES from one address: see
    tests/reliability/test_attackers_tokens.py) never answers before the check under test."""

    def __init__(self, app: Starlette) -> None:
        super().__init__(app=app)
        self._sent = itertools.count(1)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        n = next(self._sent)
        self.client = (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 40000)
        return await super().handle_async_request(request)


async def test_requests_without_a_good_token_are_401_before_anything_else(
    app: Starlette, app_client: httpx.AsyncClient, world: World
) -> None:
    spare = await Ctx(app_client, world).post(
        "/schemes/taff/tokens",
        world.as_("taff", SA),
        {"role": "member", "member": "M2", "label": "lost"},
    )
    revoked_token = str(spare["token"])
    assert (await app_client.get("/api/v1/me", headers=bearer(revoked_token))).status_code == 200
    revoke = f"/api/v1/schemes/taff/tokens/{spare['id']}/revoke"
    assert (await app_client.post(revoke, headers=world.as_("taff", SA))).status_code == 200
    good = world.as_("taff", MEM)["Authorization"]
    token_id = good.split("_")[1]
    bad: dict[str, dict[str, str]] = {
        "no token": {},
        "empty": {"Authorization": ""},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "bearer, no token": {"Authorization": "Bearer "},
        "unknown id": bearer(f"tb_{'0' * 16}_{'A' * 43}"),
        "wrong secret": bearer(f"tb_{token_id}_{'A' * 43}"),
        "truncated": {"Authorization": good[:-1]},
        "revoked": bearer(revoked_token),
    }
    params = {"token": "0" * 16, "member": "M1", "card": "taff-M1", "seq": "1", "code": "garden",
              "claim": "0" * 24, "offer": "x", "request": "x", "partner": "p-taff"}  # fmt: skip
    wrong: list[str] = []
    many = httpx.AsyncClient(transport=EachFromAnAddressOfItsOwn(app), base_url="http://tb.test")
    for method, path in TABLE:
        for scheme in ("taff", GHOST):  # the token is checked before the scheme
            url = "/api/v1" + path.format(scheme=scheme, **params)
            for name, headers in bad.items():
                r = await many.request(method, url, headers=headers)
                if (
                    r.status_code != 401
                    or r.json().get("field") != "authorization"
                    or r.headers.get("content-type") != "application/problem+json"
                    or "Bearer" not in r.headers.get("www-authenticate", "")
                ):
                    wrong.append(report(name, (method, path), r, "401 field=authorization"))
    await many.aclose()
    assert not wrong, "\n" + "\n".join(wrong)


async def test_an_erased_members_tokens_stop_working(
    app_client: httpx.AsyncClient, world: World
) -> None:
    m2 = world.members[("taff", "M2")]
    assert (await app_client.get("/api/v1/me", headers=m2)).status_code == 200
    erase = "/api/v1/schemes/taff/members/M2/erase"
    assert (await app_client.post(erase, headers=world.as_("taff", CO))).status_code == 200
    r = await app_client.get("/api/v1/schemes/taff/members/M2/balance", headers=m2)
    assert r.status_code == 401, r.text


# ---- one scheme never sees another -------------------------------------------------------


async def test_me_and_the_scheme_list_show_only_the_callers_scheme(
    app_client: httpx.AsyncClient, world: World
) -> None:
    wrong: list[str] = []
    for scheme in SCHEMES:
        for role in SCHEME_ROLES:
            headers = world.as_(scheme, role)
            me = (await app_client.get("/api/v1/me", headers=headers)).json()
            listed = (await app_client.get("/api/v1/schemes", headers=headers)).json()
            ids = [s["id"] for s in listed["items"]]
            partner = f"p-{scheme}" if role == PS else None
            if (me["role"], me["scheme"], me["partner"]) != (role, scheme, partner) or ids != [
                scheme
            ]:
                wrong.append(f"  {role} of {scheme}: /me {me}, /schemes {ids}")
    listed = (await app_client.get("/api/v1/schemes", headers=world.admin)).json()
    if sorted(s["id"] for s in listed["items"]) != sorted(SCHEMES):
        wrong.append(f"  admin: /schemes {listed}")
    assert not wrong, "\n" + "\n".join(wrong)


async def test_another_schemes_ids_are_not_found_like_ids_that_never_existed(
    app: Starlette, app_client: httpx.AsyncClient, world: World
) -> None:
    """In taff's own paths, m2m's real ids (claims, offers, requests, tokens, cards, activities,
    vouchers, partners) are as unknown as made-up ones of the same shape, and nothing of m2m's
    changes."""
    ctx = Ctx(app_client, world)
    claim = str((await ctx.claim("m2m", "M2", "M1"))["id"])
    confirmed = str((await ctx.claim("m2m", "M1", "C1", confirmed=True))["id"])
    offer = await ctx.offer("m2m", "M2")
    request = await ctx.help_request("m2m", "M2")
    token = await ctx.post("/schemes/m2m/tokens", world.as_("m2m", SA), {"role": "commissioner"})
    code = await ctx.voucher("m2m", "M2")
    await ctx.settled("m2m")  # p-m2m holds a credit of m2m's
    reason = {"reason": "because"}
    venue = {"venue": "hall"}
    probes: list[tuple[Route, str, dict[str, Any] | None]] = [
        (("GET", P + "/vouchers/{code}"), code, None),
        (("GET", P + "/vouchers/{code}/qr"), code, None),
        (("POST", P + "/vouchers/{code}/void"), code, None),
        (("POST", P + "/vouchers/{code}/settle"), code, venue),
        (("POST", P + "/agreements/{partner}/retire"), "p-m2m", None),
        (("GET", P + "/claims/{claim}"), claim, None),
        (("POST", P + "/claims/{claim}/confirm"), claim, None),
        (("POST", P + "/claims/{claim}/reject"), claim, reason),
        (("POST", P + "/claims/{claim}/reverse"), confirmed, reason),
        (("POST", P + "/offers/{offer}/withdraw"), offer, None),
        (("POST", P + "/requests/{request}/close"), request, None),
        (("GET", P + "/requests/{request}/matches"), request, None),
        (("POST", P + "/tokens/{token}/revoke"), str(token["id"]), None),
        (("GET", P + "/cards/{card}"), "m2m-M1", None),
        (("POST", P + "/activities/{code}/retire"), "lift", None),
    ]
    wrong: list[str] = []
    made_up_code = display(new_code())  # well-formed: not refused as a typo
    for role in (ADMIN, SA, CO, MEM, PS):
        headers = ctx.headers("taff", role)
        for route, real, body in probes:
            if TABLE[route][role] != "Y":
                continue
            made_up = "zzz-M1" if real.startswith("m2m") else "z" * len(real)
            made_up = made_up_code if real == code else made_up
            seen = []
            for ident in (real, made_up):
                url = "/api/v1" + re.sub(r"\{(?!scheme)\w+\}", ident, route[1])
                url = url.format(scheme="taff")
                r = await app_client.request(route[0], url, json=body, headers=headers)
                seen.append((r, hidden(r, ident)))
            (r, real_seen), (_, made_up_seen) = seen
            if r.status_code != 404 or real_seen != made_up_seen:
                wrong.append(report(role, route, r, f"as for {made_up}: {made_up_seen}"))
    # m2m's things are as they were
    m2m = "/api/v1/schemes/m2m"
    coordinator = world.as_("m2m", CO)
    got = (await app_client.get(f"{m2m}/claims/{claim}", headers=coordinator)).json()
    assert got["status"] == "pending", got
    got = (await app_client.get(f"{m2m}/claims/{confirmed}", headers=coordinator)).json()
    assert got["reversal_seq"] is None, got
    offers = (await app_client.get(f"{m2m}/offers", headers=coordinator)).json()["items"]
    assert [o["active"] for o in offers if o["id"] == offer] == [True]
    requests = (await app_client.get(f"{m2m}/requests", headers=coordinator)).json()["items"]
    assert [q["open"] for q in requests if q["id"] == request] == [True]
    me = await app_client.get("/api/v1/me", headers=bearer(str(token["token"])))
    assert me.status_code == 200, me.text
    codes = [a for a in (await app_client.get(f"{m2m}/activities", headers=coordinator)).json()[
        "items"] if a["code"] == "lift"]  # fmt: skip
    assert [a["retired"] for a in codes] == [False]
    got = (await app_client.get(f"{m2m}/vouchers/{code}", headers=coordinator)).json()
    assert got["state"] == "pending", got
    held = await app.state.services.bank.ledger.account("m2m", "partner:p-m2m")
    assert held.balance == 60
    assert not wrong, "\n" + "\n".join(wrong)


async def test_lists_in_a_scheme_hold_nothing_of_another(
    app_client: httpx.AsyncClient, world: World
) -> None:
    ctx = Ctx(app_client, world)
    claim = str((await ctx.claim("m2m", "M2", "M1"))["id"])
    offer = await ctx.offer("m2m", "M2")
    request = await ctx.help_request("m2m", "M2")
    await ctx.post("/schemes/m2m/members", world.admin, {"id": "ONLY-M2M", "display_name": "X"})
    foreign = {claim, offer, request, "ONLY-M2M", "lift", "m2m", "p-m2m"}
    wrong: list[str] = []
    for path, role in (("/claims", SA), ("/offers", SA), ("/requests", SA), ("/members", SA),
                       ("/activities", COM), ("/tokens", SA), ("/needs", CO), ("/claims", MEM),
                       ("/offers", MEM), ("/requests", MEM), ("/agreements", SA),
                       ("/agreements", PS), ("/partner-offers", MEM),
                       ("/partner-offers", PS)):  # fmt: skip
        r = await app_client.get(f"/api/v1/schemes/taff{path}", headers=world.as_("taff", role))
        assert r.status_code == 200, r.text
        text = r.text
        leaked = sorted(f for f in foreign if f in text)
        schemes = {i.get("scheme") for i in r.json()["items"] if "scheme" in i}
        if leaked or schemes - {"taff"}:
            wrong.append(f"  {role} GET taff{path}: {leaked} {schemes} in {text[:200]}")
    assert not wrong, "\n" + "\n".join(wrong)


# ---- a member in their own scheme ----------------------------------------------------------


async def test_a_member_sees_only_their_own_records(
    app_client: httpx.AsyncClient, world: World
) -> None:
    ctx = Ctx(app_client, world)
    wrong: list[str] = []
    for scheme in SCHEMES:
        theirs = str((await ctx.claim(scheme, "M2", confirmed=True))["id"])
        seq = await ctx.entry(scheme, "M2")
        base = f"/api/v1/schemes/{scheme}"
        for url, params in (
            (f"{base}/members/M2", None),
            (f"{base}/members/M2/balance", None),
            (f"{base}/members/M2/entries", None),
            (f"{base}/members/M2/entries/{seq}/receipt", None),
            (f"{base}/claims/{theirs}", None),
            (f"{base}/claims", {"member": "M2"}),
        ):
            for role, headers in ((MEM, world.as_(scheme, MEM)),
                                  ("M2", world.members[(scheme, "M2")])):  # fmt: skip
                r = await app_client.get(url, params=params, headers=headers)
                hidden_claim = url.endswith(theirs) and role != "M2"  # as if there were none
                want = Expect(None) if role == "M2" else NOT_YOURS
                want = Expect(404, "claim") if hidden_claim else want
                if mismatch(r, want):
                    wrong.append(report(f"{role} of {scheme}", ("GET", url), r, str(want)))
                made_up = "0" * len(theirs)
                if hidden_claim:  # the same answer, word for word, as for a made-up id
                    g = await app_client.get(f"{base}/claims/{made_up}", headers=headers)
                    if r.text != g.text.replace(made_up, theirs):
                        wrong.append(report(f"{role} of {scheme}", ("GET", url), r, g.text))
    assert not wrong, "\n" + "\n".join(wrong)


async def test_a_refusal_for_the_role_reads_as_english(
    app_client: httpx.AsyncClient, world: World
) -> None:
    r = await app_client.post("/api/v1/schemes/taff/claims/group", headers=world.admin, json={})
    assert r.status_code == 403 and r.json()["detail"] == "an admin may not log a group session"
    r = await app_client.post("/api/v1/schemes", headers=world.as_("taff", MEM), json={})
    assert r.status_code == 403 and r.json()["detail"].startswith("a member may not ")


# ---- holes found and closed: each was once open --------------------------------------------


async def test_a_coordinator_cannot_make_a_scheme_admin_by_csv_import(
    app_client: httpx.AsyncClient, world: World
) -> None:
    co = world.as_("taff", CO)
    body = {"id": "X1", "display_name": "Made", "roles": ["scheme-admin"]}
    r = await app_client.post("/api/v1/schemes/taff/members", json=body, headers=co)
    assert (r.status_code, r.json().get("field")) == (403, "roles"), r.text
    r = await app_client.post(
        "/api/v1/schemes/taff/imports/members",
        content=b"id,display_name,roles\nX2,Imported,scheme-admin\n",
        headers=co | {"content-type": "text/csv"},
    )
    assert r.status_code in (403, 422), r.text
    r = await app_client.get("/api/v1/schemes/taff/members/X2", headers=co)
    assert r.status_code == 404, r.text


async def test_no_new_token_acts_as_an_erased_member(
    app_client: httpx.AsyncClient, world: World
) -> None:
    co = world.as_("taff", CO)
    r = await app_client.post("/api/v1/schemes/taff/members/M2/erase", headers=co)
    assert r.status_code == 200, r.text
    body = {"role": "member", "member": "M2"}
    r = await app_client.post("/api/v1/schemes/taff/tokens", json=body, headers=co)
    assert r.status_code in (403, 404, 409, 422), r.text


async def test_only_a_scheme_admin_erases_a_coordinator_or_scheme_admin(
    app_client: httpx.AsyncClient, world: World
) -> None:
    co = world.as_("taff", CO)
    r = await app_client.post("/api/v1/schemes/taff/members/A1/erase", headers=co)
    assert (r.status_code, r.json().get("field")) == (403, "by"), r.text
    r = await app_client.get("/api/v1/me", headers=world.as_("taff", "scheme-admin"))
    assert r.status_code == 200, r.text  # A1's token still works
    r = await app_client.post(
        "/api/v1/schemes/taff/members/C1/erase", headers=world.as_("taff", "scheme-admin")
    )
    assert r.status_code == 200 and r.json()["erased"] is True, r.text


# ---- partner staff act only for their own partner ------------------------------------------


async def second_partner(ctx: Ctx, scheme: str = "taff") -> dict[str, str]:
    """p-two: another partner agreed with `scheme` (venue hall, offer swim); its staff's token."""
    admin = ctx.world.admin
    await ctx.post("/partners", admin, {"id": "p-two", "name": "Two", "sector": "private"})
    await ctx.post("/partners/p-two/venues", admin, {"id": "hall", "name": "Two's hall"})
    await ctx.post("/partners/p-two/offers", admin, OFFER)
    await ctx.post(
        f"/schemes/{scheme}/agreements",
        admin,
        {"partner": "p-two", "offers": ["swim"], "venues": ["hall"], "starts": "2020-01-01"},
    )
    made = await ctx.post(f"/schemes/{scheme}/tokens", admin,
                          {"role": PS, "partner": "p-two", "label": "two's till"})  # fmt: skip
    return bearer(str(made["token"]))


async def test_partner_staff_see_only_their_own_partners_vouchers(
    app: Starlette, app_client: httpx.AsyncClient, world: World
) -> None:
    """A voucher for p-taff is, to p-two's staff, as unknown as a code never issued: to look
    up, to show as a QR code, to void and to settle; and the other way round."""
    ctx = Ctx(app_client, world)
    two = await second_partner(ctx)
    taffs = await ctx.voucher("taff", "M1")
    await ctx.earn("taff", "M2", 60)
    made = await ctx.post("/schemes/taff/vouchers", ctx.person("taff", "M2"),
                          {"partner": "p-two", "offer": "swim"})  # fmt: skip
    twos = str(made["code"])
    never = display(new_code())
    wrong: list[str] = []
    for headers, theirs in ((two, taffs), (world.as_("taff", PS), twos)):
        for method, suffix, body in (("GET", "", None), ("GET", "/qr", None),
                                     ("POST", "/void", None),
                                     ("POST", "/settle", {"venue": "hall"})):  # fmt: skip
            seen = []
            for code in (theirs, never):
                url = f"/api/v1/schemes/taff/vouchers/{code}{suffix}"
                r = await app_client.request(method, url, json=body, headers=headers)
                seen.append((r, hidden(r, code)))
            (r, real_seen), (_, never_seen) = seen
            if mismatch(r, Expect(404, "code")) or real_seen != never_seen:
                wrong.append(report(PS, (method, "/vouchers/{code}" + suffix), r,
                                    f"as for a code never issued: {never_seen}"))  # fmt: skip
    assert not wrong, "\n" + "\n".join(wrong)
    coordinator = world.as_("taff", CO)
    for code in (taffs, twos):
        got = await app_client.get(f"/api/v1/schemes/taff/vouchers/{code}", headers=coordinator)
        assert got.json()["state"] == "pending", got.text
    ledger = app.state.services.bank.ledger
    assert [(await ledger.account("taff", f"partner:{p}")).balance
            for p in ("p-taff", "p-two")] == [0, 0]  # fmt: skip
    # each partner's own staff do see and settle theirs
    for headers, code in ((world.as_("taff", PS), taffs), (two, twos)):
        r = await app_client.get(f"/api/v1/schemes/taff/vouchers/{code}", headers=headers)
        assert r.status_code == 200, r.text
        r = await app_client.post(f"/api/v1/schemes/taff/vouchers/{code}/settle",
                                  json={"venue": "hall"}, headers=headers)  # fmt: skip
        assert r.status_code == 200 and r.json()["state"] == "posted", r.text


async def test_a_signed_settle_of_another_partners_voucher_is_404_like_an_unknown_code(
    app_client: httpx.AsyncClient, world: World
) -> None:
    """A signature is checked only on the caller's own partner's vouchers: a bad one on
    another's must not tell that code apart from one never issued (once it did: 422)."""
    ctx = Ctx(app_client, world)
    two = await second_partner(ctx)
    taffs = await ctx.voucher("taff", "M1")
    header = {"Signature": f"keyid={'0' * 16}, sig={'A' * 86}=="}
    for code in (taffs, display(new_code())):
        r = await app_client.post(f"/api/v1/schemes/taff/vouchers/{code}/settle",
                                  json={"venue": "hall"}, headers=two | header)  # fmt: skip
        assert (r.status_code, r.json().get("field")) == (404, "code"), r.text


async def test_partner_staff_see_only_their_own_partners_agreements(
    app_client: httpx.AsyncClient, world: World
) -> None:
    ctx = Ctx(app_client, world)
    two = await second_partner(ctx)
    url = "/api/v1/schemes/taff/agreements"
    for headers, partners in ((two, ["p-two"]), (world.as_("taff", PS), ["p-taff"]),
                              (world.as_("taff", CO), ["p-taff", "p-two"]),
                              (world.as_("taff", SA), ["p-taff", "p-two"]),
                              (world.admin, ["p-taff", "p-two"])):  # fmt: skip
        r = await app_client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert [a["partner"] for a in r.json()["items"]] == partners, r.text
        assert {a["scheme"] for a in r.json()["items"]} == {"taff"}
    r = await app_client.get("/api/v1/schemes/m2m/agreements", headers=world.as_("m2m", PS))
    assert [a["partner"] for a in r.json()["items"]] == ["p-m2m"], r.text


async def test_partner_staff_statements_are_their_own_partners(
    app_client: httpx.AsyncClient, world: World
) -> None:
    ctx = Ctx(app_client, world)
    two = await second_partner(ctx)
    await ctx.settled("taff")  # p-taff takes a credit
    url = "/api/v1/schemes/taff/partner/statement"
    period = {"start": DAY, "end": "2026-01-01"}
    own = (await app_client.get(url, params=period, headers=two)).json()
    assert (own["partner"], own["vouchers"], own["minutes"]) == ("p-two", 0, 0), own
    taffs = await app_client.get(url, params=period, headers=world.as_("taff", PS))
    assert (taffs.json()["partner"], taffs.json()["vouchers"]) == ("p-taff", 1), taffs.text
    # asking for p-taff's, p-two's staff never see p-taff's figures
    r = await app_client.get(url, params=period | {"partner": "p-taff"}, headers=two)
    assert r.status_code in (200, 404), r.text
    assert '"p-taff"' not in r.text and r.json().get("vouchers", 0) == 0, r.text


async def test_partner_staff_asking_for_another_partners_statement_get_404(
    app_client: httpx.AsyncClient, world: World
) -> None:
    ctx = Ctx(app_client, world)
    two = await second_partner(ctx)
    r = await app_client.get(
        "/api/v1/schemes/taff/partner/statement",
        headers=two,
        params={"start": DAY, "end": "2026-01-01", "partner": "p-taff"},
    )
    assert (r.status_code, r.json().get("field")) == (404, "partner"), r.text


async def test_partner_staff_add_venues_offers_and_keys_only_to_their_own_partner(
    app_client: httpx.AsyncClient, world: World
) -> None:
    ctx = Ctx(app_client, world)
    two = await second_partner(ctx)
    base = "/schemes/taff/partner"
    venue = await ctx.post(f"{base}/venues", two, {"id": "annexe", "name": "Annexe"})
    offer = await ctx.post(f"{base}/offers", two, OFFER | {"id": "gym"})
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = await ctx.post(f"{base}/keys", two, {"public_key": raw.hex()})
    assert [venue["partner"], offer["partner"], key["partner"]] == ["p-two"] * 3
    # p-taff's own paths stay the admin's: its staff no more than p-two's
    for headers in (two, world.as_("taff", PS)):
        r = await app_client.post("/api/v1/partners/p-taff/venues", headers=headers,
                                  json={"id": "x", "name": "X"})  # fmt: skip
        assert (r.status_code, r.json().get("field")) == (403, "role"), r.text
