"""The public ledger page of a scheme: its latest signed checkpoint and public keys, for anyone
auditing it, with no sign-in (both are published anyway: in every bundle and receipt)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from ledger import NotFound

from .visit import Visit, page


async def ledger_page(v: Visit) -> Response:
    bank = v.services.bank
    try:
        scheme = await bank.scheme(v.scheme)
    except NotFound:
        raise Problem(404, v._("No such scheme."), field="scheme") from None
    checkpoints = await bank.ledger.checkpoints(v.scheme)
    keys = await bank.ledger.public_keys(v.scheme)
    return v.render(
        "public/ledger.html",
        scheme_record=scheme,
        checkpoint=checkpoints[-1] if checkpoints else None,
        keys=keys,
        size=await bank.ledger.size(v.scheme),
    )


def routes() -> list[BaseRoute]:
    return [page("/s/{scheme}/ledger", ledger_page, roles=None)]
