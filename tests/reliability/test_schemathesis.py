"""Hostile input (1 of 2): Schemathesis over the API's own OpenAPI document.

Schemathesis reads `/api/v1/openapi.json` and generates requests for every operation in it:
valid ones (positive) and ones the document forbids (negative: wrong types, missing fields,
out-of-range values, bad path and query parameters, no token). Each request carries a real
bearer token of a role the operation allows (or, now and then, of another role), and most hit
real ids (claims, vouchers, members, tokens, offers, requests, partners of the API tests'
world) or carry a body known to be good, so they get past 401 and 404 and reach the handlers.
Every response is checked by Schemathesis: never a 5xx; a documented status code and media
type; a body that matches the documented schema (problem+json for refusals); the documented
headers; negative data refused. Then a stateful run follows the document's links (a claim made
then read, confirmed, rejected, reversed; a voucher taken then shown, settled, voided; a member
added then read, erased).

In process (Schemathesis's ASGI transport, the app's lifespan on its event loop) on SQLite or a
database of its own on the PostgreSQL test server, and again, smaller, against a real
`timebank serve` over HTTP. The figures: requests sent, status codes seen, operations covered
(answered 2xx at least once), 5xx responses and schema violations (both must be zero).

SCHEMATHESIS_EXAMPLES (default 16) sets the examples per operation and mode in process,
SCHEMATHESIS_STATEFUL_RUNS (15) the scenarios per stateful suite, SCHEMATHESIS_LIVE_EXAMPLES (3)
the examples against the live server; 100, 60 and 15 run for about two and a half minutes.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks as sc
from schemathesis.python import asgi

from api.endpoints import Endpoint
from api.openapi import MAKERS
from api.routes import ENDPOINTS
from ledger import from_us, verify_database
from ledger.storage import sqlite_url
from main.asgi import Config, create_app
from tests.api import test_uvicorn
from tests.api.conftest import ADMIN
from tests.api.test_bad_input import Targets, claims_to_act_on, json_writes
from tests.api.test_imports_api import TO_MEMBERS
from tests.api.world import ACTIVITY, World, build, log_hours
from tests.conftest import SERVER_URL, Clock
from tests.reliability.conftest import Figures

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

V1 = "/api/v1"
OPENAPI = V1 + "/openapi.json"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "16"))
STATEFUL_RUNS = int(os.environ.get("SCHEMATHESIS_STATEFUL_RUNS", "15"))  # scenarios per suite
STATEFUL_SUITES = 3
TOKENLESS = 4  # requests without a token sent per operation (Schemathesis makes many more)
LIVE_EXAMPLES = int(os.environ.get("SCHEMATHESIS_LIVE_EXAMPLES", "3"))
SCHEME_ROLES = ("member", "coordinator", "scheme-admin", "partner-staff", "commissioner")
ALL_ROLES = ("admin", *SCHEME_ROLES)
CHECKS = [
    sc.not_a_server_error,
    sc.status_code_conformance,
    sc.content_type_conformance,
    sc.response_schema_conformance,
    sc.response_headers_conformance,
    sc.negative_data_rejection,
]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
BY_OPERATION: dict[tuple[str, str], Endpoint] = {(V1 + e.path, e.method): e for e in ENDPOINTS}


def endpoint(op: Operation) -> Endpoint:
    return BY_OPERATION[(op.path, op.method.upper())]


# ---- the world the requests act on ----------------------------------------------------------


class Posting:
    """`httpx.AsyncClient.post` over a blocking `requests` session (Schemathesis's ASGI client,
    whose event loop runs the app): for `tests.api.world.build` and friends."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session

    async def post(self, url: str, *, json: Any = None, headers: Any = None) -> requests.Response:
        return self.session.post(url, json=json, headers=headers)


@dataclass
class Ids:
    """Real things in taff for path parameters, and a good body for each write."""

    world: World
    targets: Targets  # a pending and a confirmed claim, a pending voucher
    clock: Clock
    pending: str = ""  # another pending claim, to reject
    code: str = ""  # another pending voucher, to void
    token: str = ""  # a token made to be revoked
    offer: str = ""
    request: str = ""

    def headers(self, role: str, scheme: str) -> dict[str, str]:
        """A fresh dict each time: Schemathesis adds to the headers it is given."""
        if role == "admin":
            return dict(self.world.admin)
        return dict(self.world.as_(scheme if scheme in ("taff", "m2m") else "taff", role))

    def path_choices(self, ep: Endpoint) -> list[dict[str, str]]:
        """Real path parameters for `ep` (several where several things fit); the things an
        operation retires, erases, revokes, rejects or voids are its own."""
        names = [p.strip("{}") for p in ep.path.split("/") if p.startswith("{")]
        if not names:
            return [{}]
        if names == ["scheme"]:
            return [{"scheme": "taff"}, {"scheme": "m2m"}]
        t, verb = self.targets, ep.path.rsplit("/", 1)[-1]
        claims = {"confirm": [t.pending], "reject": [self.pending], "reverse": [t.confirmed]}
        codes = {"settle": [t.code], "void": [self.code]}
        real: dict[str, list[str]] = {
            "scheme": ["taff"],
            "claim": claims.get(verb, [t.pending, t.confirmed, self.pending]),
            "code": ["spare"] if "/activities/" in ep.path
            else codes.get(verb, [t.code, self.code]),
            "member": ["E1"] if verb == "erase" else ["M1", "M2"],
            "card": ["taff-M1"], "seq": ["1", "2"], "token": [self.token],
            "offer": [self.offer], "request": [self.request], "partner": ["p-taff"],
        }  # fmt: skip
        out: list[dict[str, str]] = [{}]
        for name in names:
            out = [d | {name: v} for d in out for v in real[name]]
        return out

    def good(self, ep: Endpoint) -> Good | None:
        """A request the endpoint takes, or None."""
        if ep.csv:
            return CSV_BODIES.get(ep.path.rsplit("/", 1)[-1])
        for role, path, body in json_writes(self.clock):
            template = path.replace("/taff/", "/{scheme}/").replace("/p-taff/", "/{partner}/")
            template = template.replace("{pending}", "{claim}").replace("{confirmed}", "{claim}")
            if template == ep.path and ep.method == "POST":
                return Good(role.split(":")[-1].replace("M1", "member"), body)
        return None


@dataclass(frozen=True)
class Good:
    role: str
    body: Any
    scheme: str | None = None  # where it is good (None: wherever)
    query: dict[str, str] | None = None


CSV_BODIES = {
    "members": Good("coordinator", "id,display_name\nN7,Imported person\n"),
    "hours": Good("coordinator", "member,activity,date,minutes\nM2,garden,2025-12-20,60\n",
                  "taff"),
    "outcomes": Good("coordinator", "id,outcome,from,to,people,evidence,evidence_note,change\n"
                     "w9,hmt-wellby,2025-01-01,2025-12-31,4,survey,ONS4,0.1\n", "taff"),
    "reconciliations": Good("partner-staff", "code,datetime,offer,venue\n"),
    "timeoverflow-members": Good("coordinator", TO_MEMBERS, "m2m"),
    "timeoverflow-transfers": Good(
        "coordinator", "Date,From,To,Post,Quantity\n"
        "2025-12-20 09:00:00 UTC,Bob Smith (2),Ann Jones (1),Shopping,0:45\n", "m2m",
        {"activity": "lift"}),
}  # fmt: skip


async def make_ids(client: Any, world: World, clock: Clock) -> Ids:
    """A pending and a confirmed claim and a voucher (tests.api.test_bad_input); things to
    reject, void, retire, erase and revoke (a claim, a voucher, an activity, member E1, a
    token); a market offer and request."""
    ids = Ids(world, await claims_to_act_on(client, world, clock), clock)
    coordinator, m1 = world.as_("taff", "coordinator"), world.as_("taff", "member")
    day = (from_us(clock()).date() - timedelta(days=3)).isoformat()
    for path, body, who in (
        ("activities", ACTIVITY | {"code": "spare", "title": "Spare"}, coordinator),
        ("members", {"id": "E1", "display_name": "To be erased"}, coordinator),
        ("claims", {"activity": "garden", "date": day, "minutes": 30}, m1),
        ("vouchers", {"partner": "p-taff", "offer": "swim"}, m1),
        ("offers", {"skills": ["diy"], "area": "CF10", "availability": "weekends"}, m1),
        ("requests", {"skills": ["diy"], "area": "CF10", "when": "weekends"}, m1),
        ("tokens", {"role": "member", "member": "M2"}, world.as_("taff", "scheme-admin")),
    ):  # fmt: skip
        r = await client.post(f"{V1}/schemes/taff/{path}", json=body, headers=who)
        assert r.status_code == 201, r.text
        kept = {"claims": "pending", "vouchers": "code", "offers": "offer",
                "requests": "request", "tokens": "token"}.get(path)  # fmt: skip
        if kept:
            setattr(ids, kept, r.json().get("code") or r.json()["id"])
    return ids


# ---- running and tallying --------------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    covered: set[str] = field(default_factory=set)  # operations answered 2xx at least once
    server_errors: int = 0
    violations: int = 0
    failures: dict[tuple[str, str], str] = field(default_factory=dict)  # first of each kind
    skipped: int = 0  # generated without a token, beyond TOKENLESS per operation: not sent

    def record(self, case: Case, response: schemathesis.Response,
               headers: dict[str, str]) -> None:  # fmt: skip
        """Count `response` and check it; failures are kept, not raised, so one run finds
        them all."""
        self.sent += 1
        self.statuses[response.status_code] += 1
        if response.status_code < 300:
            self.covered.add(case.operation.label)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except schemathesis.errors.FailureGroup as group:
            for failure in group.exceptions:
                if response.status_code >= 500:
                    self.server_errors += 1
                else:
                    self.violations += 1
                key = (case.operation.label, failure.title)
                self.failures.setdefault(
                    key, f"{response.status_code} {failure.title}: {failure.message[:600]}\n"
                    f"  {case.as_curl_command(headers=headers)[:600]}",
                )  # fmt: skip

    def crashed(self, case: Case, exc: Exception, headers: dict[str, str]) -> None:
        """The app raised (Starlette sends a 500, then re-raises to an in-process caller)."""
        self.sent += 1
        self.statuses[500] += 1
        self.server_errors += 1
        where = traceback.extract_tb(exc.__traceback__)[-1]
        self.failures.setdefault(
            (case.operation.label, type(exc).__name__),
            f"500 {type(exc).__name__}: {str(exc)[:300]} at {where.filename}:{where.lineno}\n"
            f"  {case.as_curl_command(headers=headers)[:600]}",
        )  # fmt: skip

    def figures(self, operations: list[str]) -> dict[str, object]:
        return {
            "requests": self.sent, "operations": len(operations),
            "operations_answered_2xx": len(self.covered),
            "never_2xx": sorted(set(operations) - self.covered),
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": self.server_errors, "schema_violations": self.violations,
            "tokenless_not_sent": self.skipped,
            "failure_kinds": len(self.failures),
        }  # fmt: skip

    def report(self) -> str:
        return "\n".join(f"{op}: {text}" for (op, _), text in sorted(self.failures.items()))


Draw = tuple[Case, str]


def cases(op: Operation, ids: Ids,
          mode: schemathesis.GenerationMode) -> st.SearchStrategy[Draw]:  # fmt: skip
    """Cases for `op` with the role to send them as: mostly real path parameters and an
    allowed role, sometimes a good body, sometimes everything generated."""
    ep = endpoint(op)
    allowed = st.sampled_from(sorted(str(r) for r in ep.allow))
    roles = st.one_of(allowed, allowed, allowed, st.sampled_from(ALL_ROLES))
    branches: list[st.SearchStrategy[Draw]] = []
    good = ids.good(ep) if mode == POSITIVE else None
    for params in ids.path_choices(ep):
        fixed = params or None
        branches.append(st.tuples(op.as_strategy(mode, path_parameters=fixed), roles))
        if good is not None and good.scheme in (None, params.get("scheme")):
            made = op.as_strategy(mode, path_parameters=fixed, body=good.body, query=good.query)
            branches.append(st.tuples(made, st.just(good.role)))
    if ids.path_choices(ep) != [{}]:
        branches.append(st.tuples(op.as_strategy(mode), roles))
    return st.one_of(branches)


def order(schema: Any) -> list[Operation]:
    """Every operation; the ones that retire, erase, revoke or void things last, so the others
    meet those things alive."""
    ops = [result.ok() for result in schema.get_all_operations()]
    final = ("/retire", "/erase", "/revoke", "/void", "/withdraw", "/close", "/reverse")
    return sorted(ops, key=lambda op: op.path.endswith(final))


PREFERRED = ("member", "coordinator", "scheme-admin", "partner-staff", "commissioner", "admin")
PERIOD = {"reports": ("from", "to"), "books": ("start", "end"), "statement": ("start", "end")}


def known_good(op: Operation, ids: Ids) -> Iterator[Draw]:
    """For each real path: the requests a client would make (a good body; the period a report
    or statement needs, and a report in each of its formats), as a role the operation
    allows."""
    ep = endpoint(op)
    good = ids.good(ep)
    role = good.role if good else next(r for r in PREFERRED if r in ep.allow)
    if "/partner/" in ep.path and "partner-staff" in ep.allow:
        role = "partner-staff"
    last = ep.path.rsplit("/", 1)[-1]
    queries: list[dict[str, str] | None] = [None]
    if last in PERIOD:
        queries = [dict(zip(PERIOD[last], ("2025-01-01", "2025-12-31"), strict=True))]
    if last == "reports":
        queries += [
            queries[0] | {"format": f} for f in ("csv", "xlsx", "html", "pdf") if queries[0]
        ]
    for params in ids.path_choices(ep):
        for query in queries:
            if good is None:
                yield op.Case(path_parameters=params, query=query), role
            elif good.scheme in (None, params.get("scheme")):
                yield op.Case(path_parameters=params, body=good.body, query=good.query), role


def authorised(schema: Any, case: Case, headers: dict[str, str]) -> dict[str, str]:
    """`headers`, unless the case is about the token (Schemathesis negated it): then no token
    at all, since a wrong one would count towards the address's throttle (20 failures in 10
    minutes and every request from it is a 429)."""
    if not schema.is_security_param_negated(case):
        return headers
    if case.headers:
        case.headers.pop("Authorization", None)
    return {}


def fuzz(schema: Any, ids: Ids, tally: Tally, examples: int, **call: Any) -> list[str]:
    """Run every operation: first the requests a client would make, then generated ones,
    negative data first (it changes nothing), then positive; the operations' labels."""
    ops = order(schema)

    tokenless = Counter[str]()

    def send(case: Case, role: str) -> None:
        scheme = (case.path_parameters or {}).get("scheme", "taff")
        headers = authorised(schema, case, ids.headers(role, str(scheme)))
        if not headers:  # every tokenless request gets the same 401: a few per operation do
            tokenless[case.operation.label] += 1
            if tokenless[case.operation.label] > TOKENLESS:
                tally.skipped += 1
                return
        try:
            response = case.call(headers=dict(headers), **call)
        except Exception as exc:  # in process, a 500's exception reaches the caller
            tally.crashed(case, exc, headers)
            return
        tally.record(case, response, headers)

    for op in ops:
        for case, role in known_good(op, ids):
            send(case, role)
    for mode in (NEGATIVE, POSITIVE):
        for op in ops:

            @settings(max_examples=examples, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(draw=cases(op, ids, mode))
            def one(draw: Draw) -> None:
                send(*draw)

            one()
    return [op.label for op in ops]


# ---- in process -------------------------------------------------------------------------------


@pytest.fixture
async def loaded(db_url: str, db_path: Path, tmp_path: Path, clock: Clock) -> AsyncIterator[Any]:
    """The app's OpenAPI document loaded by Schemathesis from the app itself (whose lifespan
    then runs on Schemathesis's event loop); on leaving, the app is stopped and the ledger
    must verify."""
    app = create_app(Config(url=db_url, key_dir=tmp_path / "keys", bootstrap_admin=ADMIN,
                            schedule_seconds=0, clock=clock))  # fmt: skip
    try:
        yield schemathesis.openapi.from_asgi(OPENAPI, app)
    finally:
        asgi.shutdown_lifespans()
    report = await verify_database(
        db_url if SERVER_URL else sqlite_url(str(db_path), read_only=True)
    )
    assert report.ok, report.summary()


async def test_schemathesis_in_process_finds_no_5xx_and_every_response_matches_its_schema(
    loaded: Any, clock: Clock, figures: Figures
) -> None:
    schema = loaded
    started = time.monotonic()
    with asgi.get_client(schema.app) as session:
        poster = Posting(session)
        world = await build(poster)  # type: ignore[arg-type]
        ids = await make_ids(poster, world, clock)
        tally = Tally()
        operations = fuzz(schema, ids, tally, EXAMPLES, session=session)
    figures(**tally.figures(operations), seconds=round(time.monotonic() - started, 1))
    assert tally.failures == {}, tally.report()
    assert tally.statuses[429] == 0, "only real tokens, or none: the throttle never trips"
    assert len(tally.covered) >= len(operations) * 3 // 4, sorted(tally.covered)


# ---- stateful: the document's links -----------------------------------------------------------


async def test_schemathesis_stateful_runs_follow_the_links_with_no_5xx_and_no_schema_violation(
    loaded: Any, clock: Clock, figures: Figures
) -> None:
    """Claims, vouchers and members made and then acted on through the document's links."""
    linked = {
        name: target["operationId"]
        for ops in loaded.raw_schema["paths"].values()
        for op in ops.values()
        for response in op["responses"].values()
        for name, target in response.get("links", {}).items()
    }
    assert len(linked) >= 10, "the document links what is made to what acts on it"
    makers = [V1 + path for path in MAKERS]
    schema = loaded.include(path=makers, method="POST").include(operation_id=list(linked.values()))
    tally, steps, after_link = Tally(), Counter[str](), Counter[int]()
    with asgi.get_client(schema.app) as session:
        poster = Posting(session)
        world = await build(poster)  # type: ignore[arg-type]
        ids = await make_ids(poster, world, clock)
        await log_hours(poster, world, clock, [720] * 8)  # type: ignore[arg-type]
        made = Counter[str]()

        class Machine(schema.as_state_machine()):  # type: ignore[misc]
            def step(self, input: Any) -> Any:
                steps["followed a link" if input.transition else "started anew"] += 1
                output = super().step(input)
                if input.transition:
                    after_link[output.response.status_code] += 1
                return output

            def before_call(self, case: Case) -> None:
                """Everything in taff; what makes things makes them with a good body (a
                fresh member id each time), so that links have something to follow."""
                case.path_parameters = (case.path_parameters or {}) | {"scheme": "taff"}
                good = ids.good(endpoint(case.operation))
                maker = case.method == "POST" and case.operation.path.removeprefix(V1) in MAKERS
                if maker and case.meta and case.meta.generation.mode == POSITIVE:
                    assert good is not None
                    made[case.operation.path] += 1
                    n = made[case.operation.path]
                    case.body = good.body | ({"id": f"S{n}"} if "members" in case.path else {})

            def get_call_kwargs(self, case: Case) -> dict[str, Any]:
                """Makers as the role their good body is for, the rest as staff."""
                ep, good = endpoint(case.operation), ids.good(endpoint(case.operation))
                staff = ("coordinator", "partner-staff", "member")
                role = next(r for r in staff if r in ep.allow)
                if good is not None and ep.path in MAKERS:
                    role = good.role
                headers = authorised(schema, case, ids.headers(role, "taff"))
                return {"headers": headers, "session": session}

            def validate_response(self, response: Any, case: Case, *_: Any, **kwargs: Any) -> None:
                tally.record(case, response, kwargs["headers"])

        # Scenarios replay against an app whose state they changed, so Hypothesis may find a
        # replay drawing differently (Flaky) and stop: as Schemathesis's own runner does, carry
        # on with another suite of scenarios.
        cut_short = 0
        for seed in range(STATEFUL_SUITES):
            try:
                hypothesis.seed(seed)(Machine).run(settings=settings(
                    max_examples=STATEFUL_RUNS, stateful_step_count=8, deadline=None,
                    database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck)))  # fmt: skip
            except hypothesis.errors.Flaky:
                cut_short += 1
    followed = dict(sorted(after_link.items()))
    figures(links=len(linked), steps=dict(steps), statuses_after_a_link=followed,
            suites=STATEFUL_SUITES, suites_cut_short=cut_short,
            **tally.figures([op.label for op in order(schema)]))  # fmt: skip
    assert tally.failures == {}, tally.report()
    assert tally.statuses[429] == 0, "only real tokens, or none: the throttle never trips"
    assert steps["followed a link"] > 0


# ---- against a live server --------------------------------------------------------------------


async def test_schemathesis_against_a_live_server_finds_no_5xx_and_no_schema_violation(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    """`timebank serve` in a process of its own (tests.api.test_uvicorn), over real HTTP:
    fewer examples, the same checks; and the server logs no traceback."""
    monkeypatch.setattr(test_uvicorn, "ADMIN", ADMIN)  # the world's admin token is the server's
    db: Path | str = db_url if SERVER_URL else tmp_path / "live.db"
    server = test_uvicorn.Served(db, tmp_path / "server.log", tmp_path / "keys" if SERVER_URL
                                 else None)  # fmt: skip
    started = time.monotonic()
    tally = Tally()
    try:
        server.wait_healthy()
        clock = Clock()
        clock.now_us = time.time_ns() // 1000  # the server's clock is the real one
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
            world = await build(client)
            ids = await make_ids(client, world, clock)
        schema = schemathesis.openapi.from_url(server.base + OPENAPI)
        with requests.Session() as session:
            operations = fuzz(schema, ids, tally, LIVE_EXAMPLES, base_url=server.base,
                              session=session)  # fmt: skip
    finally:
        server.terminate()
    figures(**tally.figures(operations), seconds=round(time.monotonic() - started, 1))
    assert tally.failures == {}, tally.report() + "\n" + server.output()[-5000:]
    assert tally.statuses[429] == 0, "only real tokens, or none: the throttle never trips"
    assert "Traceback" not in server.output(), server.output()[-3000:]
    assert len(tally.covered) >= len(operations) * 3 // 4, sorted(tally.covered)
