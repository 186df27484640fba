"""Pages for coordinators and scheme admins: the queue of claims to check (confirm or reject many
at once), a claim's detail and its reversal, and burn-out flags. The members, activities, group
session and import pages are in the `coordinator_*` modules; `routes` gathers them all."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem

from . import coordinator_activities, coordinator_import, coordinator_members
from .coordinator_common import STAFF, base, claim_status, every
from .visit import Visit, page

CLAIM = "/schemes/{scheme}/claims/{claim}"


async def _pending(v: Visit) -> list[Any]:
    """Pending claims, oldest first (the API lists them in the order they were logged)."""
    return await every(v, "/schemes/{scheme}/claims", {}, status="pending")


async def queue(v: Visit) -> Response:
    return v.render("coordinator/queue.html", claims=await _pending(v), results=[])


async def decide(v: Visit) -> Response:
    """Confirm or reject each chosen claim, each with its own idempotency key (the form's key
    and the claim's id), so a re-sent form decides nothing twice; then what happened to each."""
    action, chosen, reason = v.field("action"), v.fields("claim"), v.field("reason")
    try:
        if action not in ("confirm", "reject"):
            raise Problem(422, v._("Choose Confirm or Reject."), field="action")
        if not chosen:
            raise Problem(422, v._("Choose at least one claim."), field="claim")
        if action == "reject" and not reason:
            raise Problem(422, v._("Give a reason for rejecting."), field="reason")
    except Problem as p:
        return v.problem(p, "coordinator/queue.html", claims=await _pending(v), results=[])
    results: list[tuple[str, bool, str]] = []
    for claim in dict.fromkeys(chosen):
        body = {"reason": reason} if action == "reject" else None
        try:
            await v.act(
                "POST",
                CLAIM + "/" + action,
                {"claim": claim},
                body=body,
                key=f"{v.field('key')}:{claim}",
            )
        except Problem as p:
            results.append((claim, False, p.detail))
            continue
        done = v._("Confirmed.") if action == "confirm" else v._("Rejected.")
        results.append((claim, True, done))
    return v.render("coordinator/queue.html", claims=await _pending(v), results=results)


async def claim_page(v: Visit) -> Response:
    claim = await v.act("GET", CLAIM, {"claim": v.request.path_params["claim"]})
    return v.render("coordinator/claim.html", claim=claim, state=claim_status(claim))


async def reverse(v: Visit) -> Response:
    claim_id = v.request.path_params["claim"]
    reason = v.field("reason")
    try:
        if not reason:
            raise Problem(422, v._("Give a reason for reversing."), field="reason")
        await v.act(
            "POST",
            CLAIM + "/reverse",
            {"claim": claim_id},
            body={"reason": reason},
            key=v.field("key"),
        )
    except Problem as p:
        claim = await v.act("GET", CLAIM, {"claim": claim_id})
        return v.problem(p, "coordinator/claim.html", claim=claim, state=claim_status(claim))
    return v.redirect(f"{base(v)}/claims/{claim_id}", v._("The claim is reversed."))


async def burnout(v: Visit) -> Response:
    q = v.request.query_params
    form = {"hours_per_week": q.get("hours_per_week", "20"), "weeks": q.get("weeks", "3")}
    try:
        for name, text in form.items():
            if not text.isdigit():
                raise Problem(422, v._("A whole number."), field=name)
        found = await v.act(
            "GET", "/schemes/{scheme}/burnout", query={k: int(t) for k, t in form.items()}
        )
    except Problem as p:
        return v.problem(p, "coordinator/burnout.html", members=None, values=form)
    return v.render("coordinator/burnout.html", members=found.members, values=form)


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/coordinate", queue, roles=STAFF),
        page("/s/{scheme}/coordinate", decide, roles=STAFF, methods=("POST",)),
        page("/s/{scheme}/coordinate/claims/{claim}", claim_page, roles=STAFF),
        page("/s/{scheme}/coordinate/claims/{claim}", reverse, roles=STAFF, methods=("POST",)),
        page("/s/{scheme}/coordinate/burnout", burnout, roles=STAFF),
        *coordinator_members.routes(),
        *coordinator_activities.routes(),
        *coordinator_import.routes(),
    ]
