"""The API describes itself: the OpenAPI document lists every endpoint of the table the app is
built from, every reference in it resolves, and the docs page and health check need no token."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema_rs
import pytest

from api.endpoints import Endpoint
from api.models import whole
from api.reports import MEDIA as REPORT_MEDIA
from api.routes import ENDPOINTS
from ledger import from_us
from partners.codes import ALPHABET, display, new_code
from tests.api.test_bad_input import Targets, claims_to_act_on
from tests.api.world import ACTIVITY, World, period
from tests.conftest import Clock
from timebank.activities import _CODE as activity_code
from timebank.matching import Offer, normalise_area, normalise_skills, offer_problems

pytestmark = pytest.mark.both_backends

METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


async def openapi(c: httpx.AsyncClient) -> dict[str, Any]:
    r = await c.get("/api/v1/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert isinstance(doc, dict)
    return doc


def refs(node: Any) -> list[str]:
    """Every "$ref" anywhere in a JSON document."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve at {part!r}"
        node = node[part]
    return node


async def test_openapi_lists_every_endpoint_with_its_method(app_client: httpx.AsyncClient) -> None:
    doc = await openapi(app_client)
    assert doc["openapi"].startswith("3.1")
    listed = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    wanted = {("/api/v1" + ep.path, ep.method.lower()) for ep in ENDPOINTS}
    assert listed == wanted
    assert len(wanted) == len(ENDPOINTS)  # no two endpoints share a method and path
    for ep in ENDPOINTS:
        op = doc["paths"]["/api/v1" + ep.path][ep.method.lower()]
        assert op["summary"] == ep.summary
        assert str(ep.status) in op["responses"]
        names = {(p["in"], p["name"]) for p in op["parameters"]}
        for part in ep.path.split("/"):
            if part.startswith("{"):
                assert ("path", part.strip("{}")) in names, ep.path
        assert (("header", "Idempotency-Key") in names) == (ep.method != "GET")
        if ep.query is not None:
            for field, info in ep.query.model_fields.items():
                assert ("query", info.alias or field) in names, (ep.path, field)
        if ep.csv:
            assert "text/csv" in op["requestBody"]["content"]
        elif ep.body is not None:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/" + ep.body.__name__)
        else:
            assert "requestBody" not in op, ep.path
        problem = op["responses"]["422"]["content"]["application/problem+json"]["schema"]
        assert resolve(doc, problem["$ref"])["properties"]["field"]


async def test_openapi_declares_bearer_security(app_client: httpx.AsyncClient) -> None:
    doc = await openapi(app_client)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]
    for ops in doc["paths"].values():
        for op in ops.values():
            assert "401" in op["responses"]  # every operation needs a token
            assert op.get("security", doc["security"]) == [{"bearer": []}]


async def test_every_body_and_response_reference_resolves_in_components(
    app_client: httpx.AsyncClient,
) -> None:
    doc = await openapi(app_client)
    seen = 0
    for path, ops in doc["paths"].items():
        assert set(ops) <= METHODS, path
        for op in ops.values():
            bodies = [op.get("requestBody", {}), *op["responses"].values()]
            for body in bodies:
                for media in body.get("content", {}).values():
                    schema = media["schema"]
                    if "$ref" in schema:
                        assert schema["$ref"].startswith("#/components/schemas/"), schema
                        target = resolve(doc, schema["$ref"])
                        assert isinstance(target, dict) and target
                        seen += 1
    assert seen > len(ENDPOINTS)
    # and the references inside the components resolve too
    for ref in refs(doc["components"]):
        assert ref.startswith("#/components/schemas/"), ref
        resolve(doc, ref)
    # every request model is a component and forbids unknown fields
    schemas = doc["components"]["schemas"]
    for ep in ENDPOINTS:
        if ep.body is not None:
            assert schemas[ep.body.__name__]["additionalProperties"] is False


async def test_every_reference_anywhere_in_openapi_resolves(
    app_client: httpx.AsyncClient,
) -> None:
    doc = await openapi(app_client)
    broken = []
    for ref in refs(doc):
        try:
            resolve(doc, ref)
        except AssertionError:
            broken.append(ref)
    assert broken == []


async def test_docs_page_lists_every_path_without_a_token(app_client: httpx.AsyncClient) -> None:
    r = await app_client.get("/api/v1/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "<script" not in page.lower()
    for ep in ENDPOINTS:
        row = f"<td><code>{ep.method}</code></td><td><code>{html.escape('/api/v1' + ep.path)}"
        assert row in page, (ep.method, ep.path)
        assert html.escape(ep.summary) in page
    assert "href=/api/v1/openapi.json" in page


async def test_health_needs_no_token_but_the_api_does(
    app_client: httpx.AsyncClient, world: World
) -> None:
    r = await app_client.get("/api/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await app_client.get("/api/v1/schemes")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "authorization"
    r = await app_client.get("/api/v1/schemes", headers={"Authorization": "Bearer tb_nope"})
    assert r.status_code == 401
    r = await app_client.get("/api/v1/schemes", headers=world.admin)
    assert sorted(s["id"] for s in r.json()["items"]) == ["m2m", "taff"]


async def test_every_problem_type_resolves_to_a_page_that_explains_it(
    app_client: httpx.AsyncClient, world: World
) -> None:
    from api.problem_types import CODES

    index = await app_client.get("/api/v1/problems")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    for code in CODES:
        r = await app_client.get(f"/api/v1/problems/{code}")
        assert r.status_code == 200 and f"<code>{code}</code>" in r.text, code
        assert f"id={code}" in index.text
    refused = await app_client.get(
        "/api/v1/schemes/taff/claims/nope", headers=world.as_("taff", "coordinator")
    )
    page = await app_client.get(refused.json()["type"])  # a real problem's type, followed
    assert page.status_code == 200 and "not_found" in page.text
    assert (await app_client.get("/api/v1/problems/made_up")).status_code == 404


# ---- the document is as strict as the server ------------------------------------------------

V1 = "/api/v1"


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A JSON Schema 2020-12 validator for `schema`, its references into the document's
    components resolved (the document is the root it is read against)."""
    return jsonschema_rs.Draft202012Validator(schema | {"components": doc["components"]})


def fits(doc: dict[str, Any], schema: dict[str, Any], value: str) -> bool:
    """Whether a path parameter's text `value` is one `schema` allows (an integer's as a
    number, as a client would send it)."""
    typed: Any = int(value) if schema.get("type") == "integer" and value.isdigit() else value
    return validator(doc, schema).is_valid(typed)


def path_schemas(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every path parameter's schema, by (the segment before it, its name): the same one on
    every operation that takes it."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, ops in doc["paths"].items():
        parts = path.split("/")
        for op in ops.values():
            for p in op["parameters"]:
                if p["in"] == "path":
                    key = (parts[parts.index("{" + p["name"] + "}") - 1], p["name"])
                    assert found.setdefault(key, p["schema"]) == p["schema"], (path, key)
    return found


# For each path parameter: values its schema allows that name nothing (so every operation
# answers 404, never 422, and nothing is written), and values it forbids. `STRICT` ones the
# server itself refuses with 422 naming the parameter; the rest name nothing that could exist,
# so they are 404s.
UNKNOWN_BUT_WELL_FORMED: dict[tuple[str, str], list[str]] = {
    ("schemes", "scheme"): ["no-such-scheme"],
    ("claims", "claim"): ["0" * 24],
    ("vouchers", "code"): [display(new_code())],
    ("activities", "code"): ["no-such-activity"],
    ("members", "member"): ["Nobody-9"],
    ("cards", "card"): ["no-such-card"],
    ("entries", "seq"): ["999999", str(10**15 - 1)],
    ("tokens", "token"): ["0" * 16],
    ("offers", "offer"): ["0" * 24],
    ("requests", "request"): ["0" * 24],
    ("partners", "partner"): ["no-such-partner"],
    ("agreements", "partner"): ["no-such-partner"],
}
MALFORMED: dict[tuple[str, str], list[str]] = {
    ("schemes", "scheme"): ["Taff", "t", "-taff"],
    ("claims", "claim"): ["0" * 23, "g" * 24],
    ("vouchers", "code"): ["ABCD-EFGH", "!!", "UUUU-UUUU-U", display(new_code()) + "0"],
    ("activities", "code"): ["Garden", "1st"],
    ("members", "member"): ["-M1", "M_1"],
    ("cards", "card"): ["c" * 41],
    ("entries", "seq"): ["0", str(10**15), "-1", "1.5", "one"],
    ("tokens", "token"): ["xyz"],
    ("offers", "offer"): ["nope"],
    ("requests", "request"): ["nope"],
    ("partners", "partner"): ["P-Taff"],
    ("agreements", "partner"): ["P-Taff"],
}
STRICT = {("vouchers", "code"), ("entries", "seq")}
PREFERRED = ("coordinator", "scheme-admin", "partner-staff", "member", "commissioner")


def caller(w: World, ep: Endpoint) -> dict[str, str]:
    """A token of a role `ep` allows: taff's, or the deployment admin's."""
    for role in PREFERRED:
        if role in ep.allow and "{scheme}" in ep.path:
            return w.as_("taff", role)
    return w.admin


async def answer(c: httpx.AsyncClient, ep: Endpoint, params: dict[str, str],
                 headers: dict[str, str]) -> tuple[int, str | None]:  # fmt: skip
    """The status and the problem's field for `ep` with these path parameters (no body)."""
    path = ep.path
    for name, value in params.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    r = await c.request(ep.method, V1 + path, headers=headers)
    field = r.json().get("field") if r.status_code >= 400 else None
    return r.status_code, field


def base_params(ep: Endpoint, targets: Targets) -> dict[str, str]:
    """Real values for every path parameter of `ep`."""
    real = {"scheme": "taff", "member": "M1", "claim": targets.pending, "code": targets.code,
            "seq": "1", "card": "taff-M1", "token": "0" * 16, "offer": "0" * 24,
            "request": "0" * 24, "partner": "p-taff"}  # fmt: skip
    return {p: real[p] for p in re.findall(r"\{(\w+)\}", ep.path)}


async def test_every_path_parameter_has_a_pattern_or_bounds_the_server_holds_to(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """For each path parameter: the schema bounds it; a value it allows is never answered 422
    for that parameter, on any operation that takes it (without a body); a value it forbids is
    refused (a 422 naming it where the server checks its form, else a 404: nothing has that
    name)."""
    doc = await openapi(app_client)
    schemas = path_schemas(doc)
    assert set(schemas) == set(UNKNOWN_BUT_WELL_FORMED) == set(MALFORMED)
    for key, schema in schemas.items():
        bounded = {"pattern", "maxLength"} & set(schema) or {"minimum", "maximum"} <= set(schema)
        assert bounded, (key, schema)
        for value in UNKNOWN_BUT_WELL_FORMED[key]:
            assert fits(doc, schema, value), (key, value)
        for value in MALFORMED[key]:
            assert not fits(doc, schema, value), (key, value)
    targets = await claims_to_act_on(app_client, world, clock)
    failures = []
    for ep in ENDPOINTS:
        if ep.body is not None or ep.csv:
            continue
        parts = ep.path.split("/")
        for name in re.findall(r"\{(\w+)\}", ep.path):
            key = (parts[parts.index("{" + name + "}") - 1], name)
            base = base_params(ep, targets)
            for value in UNKNOWN_BUT_WELL_FORMED[key]:
                status, field = await answer(app_client, ep, base | {name: value},
                                             caller(world, ep))  # fmt: skip
                if (status == 422 and field == name) or status >= 500:
                    failures.append(f"{ep.method} {ep.path} {name}={value!r}: {status}")
            for value in MALFORMED[key]:
                status, field = await answer(app_client, ep, base | {name: value},
                                             caller(world, ep))  # fmt: skip
                wanted = {(422, name)} if key in STRICT else {(422, name), (404, None)}
                if (status, field if status == 422 else None) not in wanted:
                    failures.append(f"{ep.method} {ep.path} {name}={value!r}: {status} {field}")
    assert failures == []


async def test_a_real_value_of_each_path_parameter_fits_its_schema(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """What the API gives out (ids, codes, sequence numbers) is what its document allows in."""
    doc = await openapi(app_client)
    schemas = path_schemas(doc)
    targets = await claims_to_act_on(app_client, world, clock)
    m1 = world.as_("taff", "member")
    body = {"skills": ["diy"], "area": "CF10"}
    offer = (await app_client.post(f"{V1}/schemes/taff/offers", json=body, headers=m1)).json()
    request = (await app_client.post(f"{V1}/schemes/taff/requests", json=body, headers=m1)).json()
    tokens = await app_client.get(f"{V1}/schemes/taff/tokens", headers=world.admin)
    entries = await app_client.get(f"{V1}/schemes/taff/members/M1/entries", headers=m1)
    real = {
        ("schemes", "scheme"): ["taff", "m2m"], ("claims", "claim"): [targets.pending],
        ("vouchers", "code"): [targets.code], ("activities", "code"): ["garden"],
        ("members", "member"): ["M1", "A1"], ("cards", "card"): ["taff-M1"],
        ("entries", "seq"): [str(e["seq"]) for e in entries.json()["items"]],
        ("tokens", "token"): [t["id"] for t in tokens.json()["items"]],
        ("offers", "offer"): [offer["id"]], ("requests", "request"): [request["id"]],
        ("partners", "partner"): ["p-taff"], ("agreements", "partner"): ["p-taff"],
    }  # fmt: skip
    assert set(real) == set(schemas)
    for key, values in real.items():
        assert values, key
        for value in values:
            assert fits(doc, schemas[key], value), (key, value)
    code = targets.code.replace("-", "")
    wrong_check = display(code[:-1] + next(s for s in ALPHABET if s != code[-1]))
    assert fits(doc, schemas[("vouchers", "code")], wrong_check)  # the form, not the check...
    r = await app_client.get(f"{V1}/schemes/taff/vouchers/{wrong_check}",
                             headers=world.as_("taff", "coordinator"))  # fmt: skip
    assert (r.status_code, r.json()["field"]) == (422, "code")  # ...as its description says
    assert "check symbol" in schemas[("vouchers", "code")]["description"]


# ---- skills, areas and proxy codes: the typed forms the server takes ---------------------------


def market_refuses(skills: list[str], area: str) -> set[str]:
    """The fields the market refuses an offer for, read as the server reads them: normalised,
    then checked (timebank.matching)."""
    offer = Offer("s", "o", "m", normalise_skills(skills), normalise_area(area), "", "", True, 0)
    return {name for name, _ in offer_problems(offer)}


def body_schema(doc: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    node = doc["components"]["schemas"][model]["properties"][field]
    assert isinstance(node, dict)
    return node


def characters() -> list[str]:
    """Every character of the Basic Multilingual Plane (where every letter with a case and
    every space is) but the surrogates, and one in 61 of the planes above it."""
    bmp = [n for n in range(0x10000) if not 0xD800 <= n < 0xE000]
    return [chr(n) for n in [*bmp, *range(0x10000, 0x110000, 61)]]


# The area characters the server reads as two or three letters (ß as SS, ﬀ as FF ...): it takes
# them, the document does not (an area of 40 of them would be too long once read).
LONGER_IN_CAPITALS = {c for c in characters() if len(c.upper()) > 1}


async def test_skill_and_area_patterns_take_what_the_market_takes_and_no_more(
    app_client: httpx.AsyncClient,
) -> None:
    """Character by character (`characters`) and for whole typed values, a skill or area fits
    the document's pattern exactly when the market takes it once normalised."""
    doc = await openapi(app_client)
    for model in ("OfferIn", "RequestIn"):
        assert body_schema(doc, model, "skills") == body_schema(doc, "OfferIn", "skills")
        assert body_schema(doc, model, "area") == body_schema(doc, "OfferIn", "area")
    skills, area = body_schema(doc, "OfferIn", "skills"), body_schema(doc, "OfferIn", "area")
    skill_rx, area_rx = re.compile(skills["items"]["pattern"]), re.compile(area["pattern"])
    wrong = []
    for c in characters():
        if bool(skill_rx.search(f"a{c}a")) == ("skills" in market_refuses([f"a{c}a"], "A")):
            wrong.append(f"skill a{c}a (U+{ord(c):04X})")
        takes = "area" not in market_refuses(["a"], f"A{c}A")
        if bool(area_rx.search(f"A{c}A")) != (takes and c not in LONGER_IN_CAPITALS):
            wrong.append(f"area A{c}A (U+{ord(c):04X})")
    assert wrong == []
    whole_skills = validator(doc, skills)
    whole_area = validator(doc, area)
    typed = [["diy"], [" Home  Repairs "], ["a_b c"], ["-x-"], ["___"], [" ", "diy"], [" "],
             ["é"], ["K9"], ["DIY", "diy"], ["x" * 40], ["a!"], ["\u00a0garden\u3000"]]  # fmt: skip
    for value in typed:
        assert whole_skills.is_valid(value) == ("skills" not in market_refuses(value, "A")), value
    for text in ["CF10", " cf10 ", "CF 10", "CF-10", "-CF10", "CF10-", "A", "  ", "a\u00a0b",
                 "C F", "\u0131", "A--B", "A\tB", "é", "CF10!"]:  # fmt: skip
        assert whole_area.is_valid(text) == ("area" not in market_refuses(["a"], text)), text


async def test_typed_skills_areas_and_proxy_codes_the_document_allows_are_taken(
    app_client: httpx.AsyncClient, world: World
) -> None:
    """Over HTTP: what fits the document is taken (201), what does not is refused (422 naming
    the field); a proxy code's pattern is the activities' own."""
    doc = await openapi(app_client)
    m1, co = world.as_("taff", "member"), world.as_("taff", "coordinator")
    skills, area = body_schema(doc, "OfferIn", "skills"), body_schema(doc, "OfferIn", "area")
    for body, status, field in (
        ({"skills": [" Home  Repairs", "DIY"], "area": " cf10 "}, 201, None),
        ({"skills": ["garden_work"], "area": "CF10 1AA"}, 201, None),
        ({"skills": ["é"], "area": "CF10"}, 422, "skills"),
        ({"skills": ["diy"], "area": "-CF10"}, 422, "area"),
    ):
        fits_doc = validator(doc, skills).is_valid(body["skills"])
        fits_doc = fits_doc and validator(doc, area).is_valid(body["area"])
        assert fits_doc == (status == 201), body
        r = await app_client.post(f"{V1}/schemes/taff/offers", json=body, headers=m1)
        assert r.status_code == status, r.text
        assert status == 201 or r.json()["field"] == field
    typed = {"skills": [" Home  Repairs"], "area": " cf10 "}
    made = await app_client.post(f"{V1}/schemes/taff/requests", headers=m1, json=typed)
    assert made.status_code == 201 and made.json()["skills"] == ["home-repairs"]
    proxy = body_schema(doc, "ActivityIn", "proxy_code")
    assert proxy["pattern"] == whole(activity_code)
    for code, status in (("gardener-2", 201), ("Gardener", 422), ("2nd", 422)):
        assert validator(doc, proxy).is_valid(code) == (status == 201)
        activity = ACTIVITY | {"code": f"p{status}-{len(code)}", "proxy_code": code}
        r = await app_client.post(f"{V1}/schemes/taff/activities", json=activity, headers=co)
        assert r.status_code == status, r.text
        assert status == 201 or r.json()["field"] == "proxy_code"


# ---- response shapes: the document's schemas against real responses -----------------------------


def success_schema(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    """The JSON schema an operation's success answers with, references resolved once."""
    responses = doc["paths"][V1 + path][method]["responses"]
    ok = next(v for k, v in responses.items() if k.startswith("2"))
    schema = ok["content"]["application/json"]["schema"]
    assert isinstance(schema, dict)
    return schema


def holds(doc: dict[str, Any], schema: dict[str, Any], body: Any) -> list[str]:
    """Why `body` does not fit `schema` (nothing: it fits); and its top-level keys must be
    the schema's properties, every one of them."""
    errors = [f"{e.instance_path}: {e.message}" for e in validator(doc, schema).iter_errors(body)]
    target = resolve(doc, schema["$ref"]) if "$ref" in schema else schema
    if "properties" in target and set(target["properties"]) != set(body):
        errors.append(f"keys {sorted(body)} are not {sorted(target['properties'])}")
    return errors


async def settled_world(c: httpx.AsyncClient, w: World, clock: Clock) -> Targets:
    """A confirmed claim and a voucher settled at taff's partner (so statements, books and
    receipts have something in them)."""
    targets = await claims_to_act_on(c, w, clock)
    r = await c.post(f"{V1}/schemes/taff/vouchers/{targets.code}/settle",
                     headers=w.as_("taff", "partner-staff"), json={"venue": "hall"})  # fmt: skip
    assert r.status_code == 200, r.text
    return targets


async def test_books_statement_receipt_keys_report_and_retirement_fit_their_schemas(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """Each answer of the real app, from a world with settled vouchers, validates against the
    schema the document gives for it (JSON Schema 2020-12), with exactly its properties."""
    doc = await openapi(app_client)
    await settled_world(app_client, world, clock)
    when = period(clock)
    span = {"start": when["from"], "end": when["to"]}
    co, ps, sa = (world.as_("taff", r) for r in ("coordinator", "partner-staff", "scheme-admin"))
    failures: dict[str, list[str]] = {}
    for path, headers, query in (
        ("/schemes/{scheme}/books", co, span),
        ("/schemes/{scheme}/partner/statement", ps, span),
        ("/schemes/{scheme}/members/{member}/entries/{seq}/receipt", co, None),
        ("/schemes/{scheme}/keys", co, None),
        ("/schemes/{scheme}/reports", co, when),
    ):
        real = path.replace("{scheme}", "taff").replace("{member}", "M1").replace("{seq}", "1")
        r = await app_client.get(V1 + real, headers=headers, params=query)
        assert r.status_code == 200, (path, r.text)
        failures[path] = holds(doc, success_schema(doc, path), r.json())
        if path.endswith("statement"):
            assert len(r.json()["rows"]) == 2  # one line and the total: rows are checked too
    r = await app_client.post(f"{V1}/schemes/taff/agreements/p-taff/retire", headers=sa)
    assert r.status_code == 201, r.text
    retire = "/schemes/{scheme}/agreements/{partner}/retire"
    failures[retire] = holds(doc, success_schema(doc, retire, "post"), r.json())
    assert failures == {path: [] for path in failures}


async def test_the_report_media_types_are_the_ones_served_and_its_csv_has_the_columns(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    doc = await openapi(app_client)
    ok = doc["paths"][V1 + "/schemes/{scheme}/reports"]["get"]["responses"]["200"]["content"]
    served = {media.split(";")[0] for media in REPORT_MEDIA.values()}
    assert set(ok) == {"application/json"} | served
    for media, entry in ok.items():
        assert entry["schema"], media
    csv_schema = ok["text/csv"]["schema"]
    r = await app_client.get(f"{V1}/schemes/taff/reports", headers=world.as_("taff", "coordinator"),
                             params=period(clock) | {"format": "csv"})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == "text/csv"
    assert next(csv.reader(io.StringIO(r.text))) == csv_schema["x-columns"]
    assert ", ".join(csv_schema["x-columns"]) in csv_schema["description"]


async def test_the_till_csv_component_names_the_columns_the_server_reads(
    app_client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """A till file with the document's columns is reconciled; one without any of them is
    refused naming that column."""
    doc = await openapi(app_client)
    body = doc["paths"][V1 + "/schemes/{scheme}/partner/reconciliations"]["post"]["requestBody"]
    till = resolve(doc, body["content"]["text/csv"]["schema"]["$ref"])
    columns = till["x-columns"]
    assert till["contentMediaType"] == "text/csv" and ", ".join(columns) in till["description"]
    targets = await settled_world(app_client, world, clock)
    when = from_us(clock()).isoformat()
    values = {"code": targets.code, "datetime": when, "offer": "swim", "venue": "hall"}
    ps = world.as_("taff", "partner-staff") | {"content-type": "text/csv"}
    url = f"{V1}/schemes/taff/partner/reconciliations"

    def file(names: list[str]) -> str:
        return ",".join(names) + "\n" + ",".join(values[n] for n in names) + "\n"

    r = await app_client.post(url, content=file(columns), headers=ps)
    assert r.status_code == 200 and r.json()["matched"] == 1, r.text
    for missing in columns:
        r = await app_client.post(url, content=file([c for c in columns if c != missing]),
                                  headers=ps)  # fmt: skip
        assert (r.status_code, r.json()["field"]) == (422, missing), r.text
    for ep in ENDPOINTS:  # every CSV the API reads is a component naming its columns
        if ep.csv:
            content = doc["paths"][V1 + ep.path]["post"]["requestBody"]["content"]["text/csv"]
            assert resolve(doc, content["schema"]["$ref"])["x-columns"], ep.path


async def test_no_schema_is_defined_elsewhere_or_empty_and_every_schema_is_valid(
    app_client: httpx.AsyncClient,
) -> None:
    """Every success answer has a media type with a schema that says something; nothing says
    "defined elsewhere"; every schema in the document is valid JSON Schema 2020-12."""
    doc = await openapi(app_client)
    assert "elsewhere" not in json.dumps(doc).lower()
    assert "JsonObject" not in doc["components"]["schemas"]
    empty = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if not status.startswith("2"):
                    continue
                content = response.get("content") or {}
                if not content:
                    empty.append(f"{method} {path} {status}: no content")
                for media, entry in content.items():
                    schema = entry.get("schema") or {}
                    target = resolve(doc, schema["$ref"]) if "$ref" in schema else schema
                    if not target or set(target) <= {"title", "description"}:
                        empty.append(f"{method} {path} {status} {media}: empty schema")
            for p in op["parameters"]:
                assert jsonschema_rs.meta.is_valid(p["schema"]), (path, p)
    assert empty == []
    for name, schema in doc["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema | {"components": doc["components"]}), name
