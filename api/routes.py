"""Every endpoint of the API, in the order Starlette tries them (the busiest first), and the
API as a router of its own, mounted at `/api/v1` beside the app's pages."""

from __future__ import annotations

import json
from typing import TypedDict

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from . import (
    claims,
    imports,
    ledger,
    members,
    offers,
    partners,
    problem_types,
    reports,
    schemes,
    vouchers,
)
from .endpoints import Endpoint, Services
from .headers import DOCUMENT_CSP
from .openapi import docs_page, document

PREFIX = "/api/v1"

ENDPOINTS: list[Endpoint] = [
    *claims.ENDPOINTS,
    *vouchers.ENDPOINTS,
    *schemes.ENDPOINTS,
    *members.ENDPOINTS,
    *ledger.ENDPOINTS,
    *imports.ENDPOINTS,
    *offers.ENDPOINTS,
    *partners.ENDPOINTS,
    *reports.ENDPOINTS,
]


class State(TypedDict):
    """What the app's lifespan must yield for the API (Starlette's lifespan state)."""

    services: Services


_HEALTH = b'{"status":"ok"}'


async def _health(_request: Request) -> Response:
    return Response(_HEALTH, 200, media_type="application/json")


def api_mount(version: str) -> Mount:
    """The API under `/api/v1`: health first (load balancers ask it most often), every
    endpoint, the OpenAPI document and its docs page, the problem types."""
    doc = document(ENDPOINTS, version)
    body = json.dumps(doc)

    async def openapi(_request: Request) -> Response:
        return Response(body, 200, media_type="application/json")

    async def docs(_request: Request) -> Response:
        return HTMLResponse(docs_page(doc), headers={"content-security-policy": DOCUMENT_CSP})

    return Mount(
        PREFIX,
        routes=[
            Route("/health", _health),
            *(ep.route() for ep in ENDPOINTS),
            Route("/openapi.json", openapi),
            Route("/docs", docs),
            *problem_types.ROUTES,
        ],
    )
