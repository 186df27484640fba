"""Routes for a scheme's ledger as auditors see it: signed checkpoints and public keys."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from identity.auth import ALL_SCHEME_ROLES, STAFF, ApiRole
from ledger import Checkpoint, NotFound, from_us, key_json
from timebank.books import scheme_books

from .endpoints import Call, Endpoint
from .models import BooksOut, CheckpointOut, JsonObject, LedgerKey, Page, Query


def _out(call: Call, cp: Checkpoint) -> CheckpointOut:
    return CheckpointOut(
        ledger=call.scheme,
        size=cp.size,
        root=cp.root.hex(),
        time=from_us(cp.time_us).isoformat(),
        key_id=cp.key_id,
        signature=cp.signature.hex(),
    )


async def make_checkpoint(call: Call) -> CheckpointOut:
    """A signed checkpoint of the ledger as it stands (on demand; also made on a schedule)."""
    ledger = call.bank.ledger
    size = await ledger.size(call.scheme)
    cp = await ledger.checkpoint(call.scheme, idempotency_key=f"checkpoint:{size}")
    return _out(call, cp)


async def latest_checkpoint(call: Call) -> CheckpointOut:
    found = await call.bank.ledger.checkpoints(call.scheme)
    if not found:
        raise NotFound("no checkpoint yet", field="checkpoint")
    return _out(call, found[-1])


async def public_keys(call: Call) -> Page[JsonObject]:
    keys = await call.bank.ledger.public_keys(call.scheme)
    return Page(items=[JsonObject(**key_json(k)) for k in keys], next_cursor=None)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/schemes/{scheme}/checkpoints",
        make_checkpoint,
        "Sign a checkpoint",
        STAFF | {ApiRole.ADMIN},
        response=CheckpointOut,
        status=201,
        tag="ledger",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/checkpoints/latest",
        latest_checkpoint,
        "Show the latest signed checkpoint",
        ALL_SCHEME_ROLES | {ApiRole.ADMIN},
        response=CheckpointOut,
        tag="ledger",
    ),
    Endpoint(
        "GET",
        "/schemes/{scheme}/keys",
        public_keys,
        "List the ledger's public keys",
        ALL_SCHEME_ROLES | {ApiRole.ADMIN},
        response=Page[LedgerKey],
        tag="ledger",
    ),
]


class BooksQuery(Query):
    start: date
    end: date


async def books(call: Call) -> JsonObject:
    """The scheme's books for a period: issued - redeemed - expired - reversed = outstanding,
    with what each member and each partner holds at the close."""
    q: BooksQuery = call.query
    found = await scheme_books(call.bank.ledger, call.scheme, q.start, q.end)
    body = asdict(found)
    body["start"], body["end"] = q.start.isoformat(), q.end.isoformat()
    return JsonObject.model_validate(body)


ENDPOINTS.append(
    Endpoint(
        "GET",
        "/schemes/{scheme}/books",
        books,
        "Show the scheme's books for a period",
        STAFF | {ApiRole.COMMISSIONER},
        query=BooksQuery,
        response=BooksOut,
        tag="ledger",
    )
)
