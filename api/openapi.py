"""The OpenAPI 3.1 document, built from the endpoint table, and a readable docs page."""

from __future__ import annotations

import html
import re
from collections import Counter
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from partners.reconcile import COLUMNS as TILL_COLUMNS
from timebank.imports import HOURS_COLUMNS, MEMBER_COLUMNS, TO_MEMBER_COLUMNS, TO_TRANSFER_COLUMNS
from valuation.reports.records import OUTCOME_COLUMNS
from valuation.reports.tables import HEADER as REPORT_COLUMNS

from .endpoints import Endpoint
from .models import (
    ActivityCode,
    CardNumber,
    DigestId,
    MemberId,
    PartnerId,
    Problem,
    Seq,
    Slug,
    TokenId,
    VoucherCode,
)

_PARAM = re.compile(r"\{(\w+)\}")
REF = "#/components/schemas/{model}"
# Operations that make something, the path parameter naming what they made, and the field of
# their response that holds it: each links to every operation under `<path>/{<parameter>}`
# (OpenAPI links, which stateful testers such as Schemathesis follow).
MAKERS = {
    "/schemes/{scheme}/claims": ("claim", "id"),
    "/schemes/{scheme}/vouchers": ("code", "code"),
    "/schemes/{scheme}/members": ("member", "id"),
}
# Each path parameter's schema, by the collection it names one of (the path segment before it)
# and its name: the types the server's own checks are written with (api.models).
PATH_PARAMETERS: dict[tuple[str, str], Any] = {
    ("schemes", "scheme"): Slug,
    ("claims", "claim"): DigestId,
    ("vouchers", "code"): VoucherCode,
    ("activities", "code"): ActivityCode,
    ("members", "member"): MemberId,
    ("cards", "card"): CardNumber,
    ("entries", "seq"): Seq,
    ("tokens", "token"): TokenId,
    ("offers", "offer"): DigestId,
    ("requests", "request"): DigestId,
    ("partners", "partner"): PartnerId,
    ("agreements", "partner"): PartnerId,
}
# The CSV files the API reads, by the last segment of their path: a component each, naming
# its columns (the constants the parsers read them by) in `x-columns`.
CSV_FILES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "reconciliations": (
        "TillCsv",
        TILL_COLUMNS,
        "A partner's till records: the voucher code "
        "as typed or scanned, when it was taken (ISO 8601; without an offset, "
        "UTC) and our ids of the offer and venue; other columns are ignored.",
    ),
    "members": (
        "MembersCsv",
        MEMBER_COLUMNS,
        "Members: id and display_name are needed; roles are ';'-separated.",
    ),
    "hours": (
        "HoursCsv",
        HOURS_COLUMNS,
        "Historic hours, each logged and confirmed: member, activity, date and minutes are needed.",
    ),
    "outcomes": ("OutcomesCsv", OUTCOME_COLUMNS, "Outcome records; change may be left out."),
    "timeoverflow-members": (
        "TimeOverflowMembersCsv",
        TO_MEMBER_COLUMNS,
        "TimeOverflow's users export, as it writes it.",
    ),
    "timeoverflow-transfers": (
        "TimeOverflowTransfersCsv",
        TO_TRANSFER_COLUMNS,
        "TimeOverflow's transfers export, as it writes it.",
    ),
}
# What each media type a success response may take besides JSON holds.
MEDIA_SCHEMAS: dict[str, dict[str, Any]] = {
    "text/csv": {
        "type": "string",
        "contentMediaType": "text/csv",
        "x-columns": list(REPORT_COLUMNS),
        "description": "the report as long rows, with a header line: "
        + ", ".join(REPORT_COLUMNS)
        + " (every figure of the JSON form, one a row)",
    },
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "description": "the report as a workbook: the same rows, a sheet a section",
    },
    "text/html": {
        "type": "string",
        "contentMediaType": "text/html",
        "description": "the report as one self-contained HTML document (no scripts)",
    },
    "application/pdf": {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/pdf",
        "description": "the report as a PDF document",
    },
    "image/svg+xml": {
        "type": "string",
        "contentMediaType": "image/svg+xml",
        "description": "the voucher's code as a QR code, an SVG image",
    },
}


def document(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    models: list[type[BaseModel]] = [Problem]
    for ep in endpoints:
        models += [m for m in (ep.body, ep.response) if m is not None and _is_model(m)]
    unique = list(dict.fromkeys(models))
    refs, defs = models_json_schema(
        [
            (m, "validation" if m is not None and m.__name__.endswith("In") else "serialization")
            for m in unique
        ],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = defs.get("$defs", {})
    schemas.update(_csv_components())
    ids = operation_ids(endpoints)
    for ep in endpoints:
        op = _operation(ep, {m: refs[(m, mode)] for (m, mode) in refs}, schemas)
        op["operationId"] = ids[ep]
        if ep.method == "POST" and ep.path in MAKERS:
            op["responses"][str(ep.status)]["links"] = _links(ep, endpoints, ids)
        paths.setdefault("/api/v1" + ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "timebank",
            "version": version,
            "description": "Time banking and co-delivery on a signed, append-only hour ledger. "
            "Every error is application/problem+json naming the field.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def operation_ids(endpoints: list[Endpoint]) -> dict[Endpoint, str]:
    """Each endpoint's operationId, unique as OpenAPI requires: its handler's name, or, for a
    handler that serves more than one path, the name and the path."""
    names = Counter(ep.handler.__name__ for ep in endpoints)
    return {
        ep: ep.handler.__name__
        if names[ep.handler.__name__] == 1
        else ep.handler.__name__ + "_" + "_".join(re.findall(r"\w+", ep.path))
        for ep in endpoints
    }


def _links(maker: Endpoint, endpoints: list[Endpoint], ids: dict[Endpoint, str]) -> dict[str, Any]:
    """Links from what `maker` made to every operation on it."""
    name, source = MAKERS[maker.path]
    under = f"{maker.path}/{{{name}}}"
    links = {}
    for ep in endpoints:
        if ep.path == under or ep.path.startswith(under + "/"):
            params = {p: f"$request.path.{p}" for p in _PARAM.findall(maker.path)}
            params[name] = f"$response.body#/{source}"
            links[ids[ep]] = {"operationId": ids[ep], "parameters": params}
    return links


def _is_model(m: Any) -> bool:
    return isinstance(m, type) and issubclass(m, BaseModel)


def path_parameters(path: str) -> list[dict[str, Any]]:
    """The path's parameters, each with its schema (`PATH_PARAMETERS`; a parameter not there
    is an error, so that none goes undescribed) and the schema's description."""
    parts = path.strip("/").split("/")
    params = []
    for before, part in pairwise(parts):
        if not part.startswith("{"):
            continue
        name = part.strip("{}")
        if (before, name) not in PATH_PARAMETERS:
            raise KeyError(f"{path}: no schema for the path parameter {name!r} (PATH_PARAMETERS)")
        schema = TypeAdapter(PATH_PARAMETERS[(before, name)]).json_schema()
        param = {"name": name, "in": "path", "required": True, "schema": schema}
        if "description" in schema:
            param["description"] = schema["description"]
        params.append(param)
    return params


def _csv_components() -> dict[str, Any]:
    return {
        name: {
            "type": "string",
            "contentMediaType": "text/csv",
            "x-columns": list(columns),
            "description": f"A CSV file (UTF-8) with a header line naming its columns: "
            f"{', '.join(columns)}. {about}",
        }
        for name, columns, about in CSV_FILES.values()
    }


def _csv_body(ep: Endpoint) -> dict[str, Any]:
    name = CSV_FILES[ep.path.rsplit("/", 1)[-1]][0]
    return {"$ref": REF.format(model=name)}


def _operation(ep: Endpoint, refs: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    params = path_parameters(ep.path)
    if ep.query is not None:
        schema = ep.query.model_json_schema(ref_template=REF)
        schemas.update(schema.get("$defs", {}))  # enums the parameters refer to
        for name, prop in schema.get("properties", {}).items():
            required = name in schema.get("required", [])
            params.append({"name": name, "in": "query", "required": required, "schema": prop})
    if ep.writes:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
                "description": (
                    "retry with the same key to get the same result, never a second write"
                ),
            }
        )
    problem = {"application/problem+json": {"schema": refs[Problem]}}
    ok: dict[str, Any] = {"description": "OK"}
    if _is_model(ep.response):
        ok["content"] = {"application/json": {"schema": refs[ep.response]}}
    for media in ep.media:
        bare = media.split(";")[0]
        ok.setdefault("content", {})[bare] = {"schema": MEDIA_SCHEMAS[bare]}
    responses: dict[str, Any] = {str(ep.status): ok}
    for status, why in (
        (401, "no valid token"),
        (403, "role not allowed"),
        (404, "not found, or another scheme's"),
        (409, "conflict"),
        (422, "invalid input"),
        (429, "too many failed authentications from this address: wait Retry-After seconds"),
    ):
        responses[str(status)] = {"description": why, "content": problem}
    if ep.writes:  # a write's body is bounded and typed (api.endpoints._body)
        for status, why in (
            (413, "the body is too large"),
            (415, "not a media type it takes"),
            (
                503,
                "the signing key is unavailable: nothing was written; "
                "retry with the same Idempotency-Key",
            ),
        ):
            responses[str(status)] = {"description": why, "content": problem}
    op: dict[str, Any] = {
        "operationId": ep.handler.__name__,
        "summary": ep.summary,
        "tags": [ep.tag] if ep.tag else [],
        "description": "Roles: " + ", ".join(sorted(ep.allow)),
        "parameters": params,
        "responses": responses,
    }
    if ep.csv:
        op["requestBody"] = {
            "required": True,
            "content": {"text/csv": {"schema": _csv_body(ep)}},
        }
    elif ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[ep.body]}},
        }
    return op


def docs_page(doc: dict[str, Any]) -> str:
    """A plain HTML page listing every operation: no scripts, nothing fetched from elsewhere."""
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(op['summary'])}</td>"
                f"<td>{html.escape(op['description'])}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>timebank API</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
        "td,th{padding:.3rem .6rem;text-align:left;vertical-align:top}"
        "tr:nth-child(even){background:#f3f3f3}</style></head><body>"
        "<h1>timebank API v1</h1><p>JSON under <code>/api/v1</code>, bearer tokens, "
        "<code>Idempotency-Key</code> on writes, errors as <code>application/problem+json"
        "</code>. The machine-readable document is <a href=/api/v1/openapi.json>openapi.json"
        "</a>.</p><table><thead><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>"
    )
