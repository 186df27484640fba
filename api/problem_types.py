"""The pages a problem's `type` names (`/api/v1/problems/{code}`): what each code means, why a
request gets it, and what to do. Every code the API answers with has one."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .headers import DOCUMENT_CSP
from .problems import STATUS, TITLES, Problem, problem_response

# code -> (status, what it means and what to do)
EXPLAINED: dict[str, tuple[int, str]] = {
    "bad_request": (
        400,
        "The request itself is malformed: a header sent twice (Authorization, "
        "Idempotency-Key, Content-Type), say. `field` names the header.",
    ),
    "not_signed_in": (
        401,
        "No bearer token, or one that is unknown, revoked or expired. Send "
        "`Authorization: Bearer <token>` with a live token.",
    ),
    "not_allowed": (
        403,
        "The caller's role may not do this, or may do it only to their own "
        "records. `field` says which check refused it (`role`, `member`, `by`).",
    ),
    "forbidden": (
        403,
        "A rule of the scheme refuses it for this person: nobody confirms their "
        "own hours; only a scheme admin erases a coordinator.",
    ),
    "not_found": (
        404,
        "No such scheme, member, claim, voucher or entry, or one the caller may "
        "not see: another scheme's or another member's things answer exactly as if "
        "they did not exist. `field` names the identifier.",
    ),
    "method_not_allowed": (405, "The path exists but not with this method."),
    "conflict": (
        409,
        "The request clashes with the state it found: a claim already decided "
        '(the message says its state, e.g. "claim ... is rejected"), a voucher '
        "already settled, an offer with no vouchers left, a partner's monthly cap "
        "reached. Read the thing again before deciding anything else.",
    ),
    "floor_breached": (
        409,
        "The entry would take an account below its floor: a member without "
        "enough credits, or hours already spent. `field` names the member.",
    ),
    "not_yet_due": (409, "Too early: a reservation is expired only once its time has passed."),
    "idempotency_conflict": (
        409,
        "This Idempotency-Key was used before for a different "
        "request. Use a new key for a new request; resend the same body "
        "to get the first answer again.",
    ),
    "request_too_large": (413, "The body is over its limit: 64 KiB of JSON, 8 MiB of CSV."),
    "unsupported_media_type": (415, "Send JSON as `application/json` and files as `text/csv`."),
    "invalid_request": (
        422,
        "A field is missing, of the wrong type, out of range, or a key "
        "appears twice in one JSON object. `field` names it; `errors` lists "
        "every one.",
    ),
    "import_refused": (
        422,
        "The CSV file has problems; nothing was written. `errors` lists "
        "each with its line (the header is line 1) and column.",
    ),
    "too_many_requests": (
        429,
        "Too many failed attempts from this address; wait for the "
        "number of seconds in Retry-After.",
    ),
    "unavailable": (
        503,
        "The service cannot write now (its signing key is not available); "
        "nothing was written. Retry later with the same Idempotency-Key.",
    ),
    "key_unavailable": (
        503,
        "The ledger's signing key is not available to this process; "
        "nothing was written. Retry later with the same Idempotency-Key.",
    ),
}
# Every code a response can carry: the domain's (problems.STATUS) and the API's own (TITLES).
CODES = sorted({*STATUS, *(t.lower().replace(" ", "_") for t in TITLES.values()), "import_refused"})
assert set(CODES) <= set(EXPLAINED), sorted(set(CODES) - set(EXPLAINED))

_STYLE = "body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<meta name=viewport content='width=device-width'><style>{_STYLE}</style>{body}</html>",
        headers={"content-security-policy": DOCUMENT_CSP},
    )


def _one(code: str) -> str:
    status, text = EXPLAINED[code]
    return (
        f"<h2 id={code}><code>{code}</code> ({status} {html.escape(TITLES[status])})</h2>"
        f"<p>{html.escape(text)}</p>"
    )


async def problem_type(request: Request) -> Response:
    code = request.path_params["code"]
    if code not in EXPLAINED:
        return problem_response(Problem(404, f"no problem type {code!r}", field="code"))
    return _page(
        code,
        f"<h1>Problem: <code>{code}</code></h1>{_one(code)}"
        "<p><a href=/api/v1/problems>Every problem type</a></p>",
    )


async def problem_types(_request: Request) -> Response:
    return _page(
        "Problem types",
        "<h1>Problem types</h1><p>Every refusal is "
        "<code>application/problem+json</code>; its <code>type</code> is one of these "
        "pages.</p>" + "".join(_one(c) for c in EXPLAINED),
    )


ROUTES = [  # under the API's mount, /api/v1
    Route("/problems", problem_types),
    Route("/problems/{code}", problem_type),
]
