"""A receipt for one of the member's ledger entries: shown, verified on the server against the
scheme's public keys, and offered as a JSON file that verifies offline."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from ledger import RecordError, parse_receipt, receipt_problem

from .member_common import MEMBERS, M, me
from .visit import Visit, page

RECEIPT = M + "/entries/{seq}/receipt"


async def _receipt(v: Visit) -> dict[str, Any]:
    seq = str(v.request.path_params["seq"])
    found = await v.act("GET", RECEIPT, me(v) | {"seq": seq})
    receipt: dict[str, Any] = found.model_dump(mode="json")
    return receipt


def _problem(receipt: dict[str, Any], keys: list[Any]) -> str | None:
    """Why the receipt does not verify against `keys` (the scheme's own), or None."""
    try:
        parsed = parse_receipt(receipt)
    except (RecordError, KeyError, TypeError) as exc:
        return str(exc)
    return receipt_problem(parsed, keys)


async def show(v: Visit) -> Response:
    receipt = await _receipt(v)
    keys = await v.services.bank.ledger.public_keys(v.scheme)
    problem = _problem(receipt, keys)
    entry = receipt["entry"]
    account = f"member:{v.who.member}"
    change = sum(int(amount) for who, amount in entry.get("postings", []) if who == account)
    return v.render(
        "member/receipt.html",
        receipt=receipt,
        entry=entry,
        change=change,
        problem=problem,
        pretty=json.dumps(receipt, indent=2),
    )


async def download(v: Visit) -> Response:
    receipt = await _receipt(v)
    seq = receipt["entry"].get("seq", "")
    if not isinstance(seq, int):
        raise Problem(500, v._("The receipt has no entry number."), field="seq")
    name = f"receipt-{v.scheme}-{seq}.json"
    return Response(
        json.dumps(receipt, indent=2) + "\n",
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/me/receipts/{seq}", show, roles=MEMBERS),
        page("/s/{scheme}/me/receipts/{seq}/download", download, roles=MEMBERS),
    ]
