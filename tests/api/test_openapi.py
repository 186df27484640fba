"""The API describes itself: the OpenAPI document lists every endpoint of the table the app is
built from, every reference in it resolves, and the docs page and health check need no token."""

from __future__ import annotations

import html
from typing import Any

import httpx
import pytest

from api.routes import ENDPOINTS
from tests.api.world import World

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
