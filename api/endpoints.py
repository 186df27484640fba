"""One place where every request is checked, in this order, before a route's handler runs:

1. who is asking (bearer token, else 401; 429 while the client's address has failed too often);
2. the scheme in the path (another scheme's, or none: 404, so existence never leaks);
3. the caller's role (403);
4. the input: query, headers and body against the endpoint's models (413, 415, 422).

An `Endpoint` also describes itself for the OpenAPI document, so the docs can't drift.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from identity.auth import ApiRole, Principal, a_role
from identity.tokens import TokenBook
from ledger import INTERNAL_KEYS, NotFound
from partners.service import Partners
from timebank.service import TimeBank

from .models import NUL, holds_nul
from .problems import Problem, from_exception, problem_response

MAX_JSON_BYTES = 64 * 1024
MAX_CSV_BYTES = 8 * 1024 * 1024
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
SINGLE_HEADERS = ("Authorization", "Idempotency-Key", "Content-Type")


@dataclass(frozen=True)
class Services:
    """What handlers work with: the time bank (and its ledger), partners and the token book."""

    bank: TimeBank
    tokens: TokenBook
    partners: Partners
    # Called with (scheme, member) after a member's erasure: the app disables their sign-ins.
    on_erase: tuple[Callable[[str, str], Awaitable[None]], ...] = ()


@dataclass
class Call:
    """One authorised, validated request, as a handler sees it."""

    services: Services
    who: Principal
    scheme: str  # "" for routes outside a scheme
    params: dict[str, str]
    query: Any
    body: Any
    idempotency_key: str  # scoped to the caller
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def client_key(self) -> str:
        """The Idempotency-Key as the client sent it ("" if none): what a partner signs."""
        return self.headers.get("idempotency-key", "")

    @property
    def bank(self) -> TimeBank:
        return self.services.bank


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /api/v1
    handler: Handler
    summary: str
    allow: frozenset[ApiRole]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a pydantic model type, for the docs
    status: int = 200
    csv: bool = False  # the body is a CSV file, not JSON
    # media types the success response may take besides JSON (a report as a file, a QR code);
    # with no `response` model, the only ones
    media: tuple[str, ...] = ()
    tag: str = ""
    writes: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "writes", self.method != "GET")

    def route(self) -> Route:
        """The Starlette route, under the API's mount (`/api/v1`): the services come from the
        app's lifespan state (`request.state.services`, see `State`)."""

        async def run(request: Request) -> Response:
            try:
                return await self._run(request, request.state.services)
            except Exception as exc:  # anything not a known refusal is re-raised: a real 500
                return problem_response(from_exception(exc))

        return Route(self.path, run, methods=[self.method])

    async def _run(self, request: Request, services: Services) -> Response:
        for name in SINGLE_HEADERS:  # two of them: which one counts is anybody's guess
            if len(request.headers.getlist(name)) > 1:
                raise Problem(400, f"send one {name} header", field=name.lower())
        client = request.client.host if request.client else ""
        who = await services.tokens.authenticate(request.headers.get("authorization"), client)
        scheme = request.path_params.get("scheme", "")
        for name, value in request.path_params.items():
            if holds_nul(value):
                raise Problem(422, NUL, field=name)
        await self.authorise(services, who, scheme)
        call = Call(
            services,
            who,
            scheme,
            dict(request.path_params),
            _query(request, self.query),
            await _body(request, self),
            _idempotency_key(request, who) if self.writes else "",
            dict(request.headers),
        )
        result = await self.handler(call)
        if isinstance(result, Response):
            return result
        text = result.model_dump_json() if isinstance(result, BaseModel) else json.dumps(result)
        return Response(text, self.status, media_type="application/json")

    async def authorise(self, services: Services, who: Principal, scheme: str) -> None:
        """The scheme in the path (404 if not the caller's), then the caller's role (403).
        The app's pages (`web.bridge`) call this too, so both are authorised alike."""
        if scheme:
            await _check_scheme(services.bank, who, scheme)
        if who.role not in self.allow:
            raise Problem(403, f"{a_role(who.role)} may not {self.summary.lower()}", field="role")


async def _check_scheme(bank: TimeBank, who: Principal, scheme: str) -> None:
    hidden = NotFound(f"no scheme {scheme!r}", field="scheme")
    if who.is_admin:
        try:
            await bank.scheme(scheme)
        except NotFound:
            raise hidden from None
    elif who.scheme != scheme:
        raise hidden


def _query(request: Request, model: type[BaseModel] | None) -> Any:
    params = request.query_params
    if model is None:
        if params:
            raise Problem(422, "this endpoint takes no query parameters", field=next(iter(params)))
        return None
    if len(params.multi_items()) != len(params):
        raise Problem(422, "each query parameter at most once", field="query")
    return model.model_validate(dict(params))


async def _body(request: Request, ep: Endpoint) -> Any:
    if not ep.writes:
        return None
    limit = MAX_CSV_BYTES if ep.csv else MAX_JSON_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"the body is over {limit} bytes", field="body")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise Problem(413, f"the body is over {limit} bytes", field="body")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ep.csv:
        if media not in ("text/csv", "text/plain"):
            raise Problem(415, "send the file as text/csv", field="content-type")
        try:
            text = bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Problem(422, "the file is not UTF-8 text", field="body") from None
        if holds_nul(text):
            raise Problem(422, f"the file {NUL}", field="body")
        return text
    if ep.body is None:
        if bytes(raw).strip() not in (b"", b"{}"):
            raise Problem(422, "this endpoint takes no body", field="body")
        return None
    if media != "application/json":
        raise Problem(415, "send the body as application/json", field="content-type")
    body = ep.body.model_validate_json(bytes(raw))
    _refuse_duplicate_keys(bytes(raw))  # the model took the last of two; the caller meant one
    return body


def _refuse_duplicate_keys(raw: bytes) -> None:
    """422 naming a key that appears twice in one JSON object (after the model has accepted
    the body, so its size and depth are already bounded)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                raise Problem(422, f"{key!r} appears twice in one object", field=key)
            seen[key] = value
        return seen

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):  # the model accepted it; never a 500 here
        raise Problem(422, "not a JSON body this API reads", field="body") from None


def _idempotency_key(request: Request, who: Principal) -> str:
    """The client's Idempotency-Key, scoped to the caller (the member they act as, else their
    token), so two callers' keys never meet; without one, a fresh key (a retry is not known)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return f"auto:{uuid.uuid4()}"
    if not _KEY.fullmatch(key):
        raise Problem(422, "1-200 printable ASCII characters", field="idempotency-key")
    if key.startswith(INTERNAL_KEYS):
        raise Problem(
            422, f"keys starting {INTERNAL_KEYS!r} are the ledger's own", field="idempotency-key"
        )
    return f"client:{who.member or who.token_id}:{key}"


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, default: Any) -> Any:
    """The position a cursor stands for, of the same JSON shape as `default`; 422 if forged."""
    if not cursor:
        return default
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise Problem(422, "not a cursor this API gave out", field="cursor") from None
    parts = value if isinstance(value, list) else [value]
    shapes = default if isinstance(default, list) else [default]
    if type(value) is not type(default) or [type(v) for v in parts] != [type(v) for v in shapes]:
        raise Problem(422, "not a cursor this API gave out", field="cursor")
    if any(isinstance(v, int) and not 0 <= v < 2**63 for v in parts) or holds_nul(parts):
        raise Problem(422, "not a cursor this API gave out", field="cursor")
    return value
