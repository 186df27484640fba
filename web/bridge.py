"""Pages act through the API's own endpoints: found by method and path, authorised with the
same scheme and role checks, their input validated by the same models, their handler run.

So a page can do nothing its user's API token could not, and no rule lives in the app.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from api.endpoints import Call, Endpoint, Services
from api.models import NUL, holds_nul
from api.problems import Problem, from_exception
from api.routes import ENDPOINTS
from identity.auth import Principal

_BY_ROUTE = {(ep.method, ep.path): ep for ep in ENDPOINTS}


def endpoint(method: str, path: str) -> Endpoint:
    found = _BY_ROUTE.get((method, path))
    assert found is not None, f"no API endpoint {method} {path}"
    return found


async def act(
    services: Services,
    who: Principal,
    method: str,
    path: str,
    params: dict[str, str] | None = None,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    key: str = "",
) -> Any:
    """Run the endpoint `method path` (as written in the API, e.g. "/schemes/{scheme}/claims")
    for `who`; its result, or `Problem` for any refusal (never a half-done write).

    `key` is the form's idempotency key: a form posted twice (a double tap, a retry after a
    dropped connection) has the one effect. `body` is a dict for JSON endpoints, text for CSV.
    """
    ep = endpoint(method, path)
    params = params or {}
    try:
        await ep.authorise(services, who, params.get("scheme", ""))
        q = ep.query.model_validate(query or {}) if ep.query is not None else None
        if ep.csv:
            if holds_nul(body):
                raise Problem(422, f"the file {NUL}", field="body")
            b: Any = body
        elif ep.body is not None:  # as the API reads it: JSON text (dates, enums as strings)
            b = ep.body.model_validate_json(json.dumps(body or {}, default=str))
        else:
            b = None
        scoped = f"client:{who.member or who.token_id}:{key}" if key else f"auto:{uuid.uuid4()}"
        call = Call(
            services, who, params.get("scheme", ""), params, q, b, scoped if ep.writes else ""
        )
        return await ep.handler(call)
    except Problem:
        raise
    except Exception as exc:  # domain refusals become problems; anything else is a real 500
        raise from_exception(exc) from None
