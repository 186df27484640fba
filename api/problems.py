"""RFC 9457 problem details: every refusal is `application/problem+json` naming the field.

Domain errors (`ledger.LedgerError` and its kinds, the time bank's `Forbidden`, CSV import
refusals) map to one status each here, so routes never build error responses themselves.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from identity.refusals import Forbidden, Throttled, Unauthenticated
from ledger import LedgerError
from timebank.imports import ImportRefused

MEDIA_TYPE = "application/problem+json"

STATUS = {
    "invalid_request": 422,
    "not_found": 404,
    "conflict": 409,
    "floor_breached": 409,
    "not_yet_due": 409,
    "idempotency_conflict": 409,
    "key_unavailable": 503,
    "forbidden": 403,
}
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    503: "Unavailable",
}


class Problem(Exception):
    """A refusal raised by the API layer itself (auth, body size, media type, bad cursor)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str = "",
        field: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or TITLES.get(status, "error").lower().replace(" ", "_")
        self.field = field
        self.errors = errors or ([{"field": field, "message": detail}] if field else [])
        self.headers = headers or {}  # e.g. Retry-After with a 429


def problem_response(p: Problem) -> Response:
    body: dict[str, Any] = {
        "type": f"/api/v1/problems/{p.code}",
        "title": TITLES.get(p.status, "Error"),
        "status": p.status,
        "detail": p.detail,
        "code": p.code,
    }
    if p.field is not None:
        body["field"] = p.field
    if p.errors:
        body["errors"] = p.errors
    headers = dict(p.headers)
    if p.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="timebank"'
    return Response(json.dumps(body), p.status, headers, MEDIA_TYPE)


def from_exception(exc: Exception) -> Problem:
    """The problem a domain or validation exception stands for."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, LedgerError):
        return Problem(STATUS.get(exc.code, 409), exc.message, code=exc.code, field=exc.field)
    if isinstance(exc, Unauthenticated):
        return Problem(401, exc.detail, field=exc.field)
    if isinstance(exc, Throttled):
        wait = {"Retry-After": str(exc.retry_after)}
        return Problem(429, exc.detail, field=exc.field, headers=wait)
    if isinstance(exc, Forbidden):
        return Problem(403, exc.detail, code="forbidden", field=exc.field)
    if isinstance(exc, ValidationError):
        return _validation_problem(exc)
    if isinstance(exc, ImportRefused):
        errors = [
            {"line": str(p.line), "field": p.field, "message": p.message} for p in exc.problems
        ]
        first = exc.problems[0]
        return Problem(
            422,
            f"the file was not imported: {exc}",
            code="import_refused",
            field=first.field or None,
            errors=errors,
        )
    raise exc


def _validation_problem(exc: ValidationError) -> Problem:
    errors = []
    for e in exc.errors(include_url=False)[:20]:
        where = ".".join(str(part) for part in e["loc"]) or "body"
        errors.append({"field": where, "message": e["msg"]})
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return Problem(
        422,
        f"{first['field']}: {first['message']}",
        code="invalid_request",
        field=first["field"],
        errors=errors,
    )


async def handle(_request: Request, exc: Exception) -> Response:
    """Starlette exception handler for every exception `from_exception` knows."""
    return problem_response(from_exception(exc))


async def handle_http(_request: Request, exc: Exception) -> Response:
    """Starlette's own HTTP errors (unknown path, wrong method) as problem+json."""
    status = getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "") or TITLES.get(status, "error"))
    return problem_response(Problem(status, detail))
