"""The scheme's activity catalogue: list, add (every classification as a choice from its
vocabulary in `timebank.activities`), and retire."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from timebank.activities import (
    CoForm,
    Contribution,
    CoSubform,
    Mode,
    RelationToPaidWork,
    ServiceArea,
    Voluntariness,
)

from .coordinator_common import STAFF, base, choice
from .visit import Visit, page

A = "/schemes/{scheme}/activities"
ENUMS: dict[str, type[StrEnum]] = {
    "form": CoForm,
    "contribution": Contribution,
    "area": ServiceArea,
    "mode": Mode,
    "voluntariness": Voluntariness,
    "relation": RelationToPaidWork,
}


def _options(kind: type[StrEnum]) -> list[tuple[str, str]]:
    return [(str(e.value), str(e.value)) for e in kind]


def _context(v: Visit) -> dict[str, Any]:
    return {
        "choices": {
            "form": _options(CoForm),
            "subform": [("", v._("None")), *_options(CoSubform)],
            "contribution": _options(Contribution),
            "area": _options(ServiceArea),
            "mode": _options(Mode),
            "voluntariness": _options(Voluntariness),
            "relation": _options(RelationToPaidWork),
            "safeguarding_check": [("no", v._("No")), ("yes", v._("Yes"))],
        }
    }


async def activities(v: Visit) -> Response:
    found = await v.act("GET", A)
    return v.render("coordinator/activities.html", activities=found.items, **_context(v))


async def add(v: Visit) -> Response:
    try:
        body: dict[str, Any] = {name: v.field(name) for name in ("code", "title", "proxy_code")}
        body |= {name: choice(v, kind, name) for name, kind in ENUMS.items()}
        body["subform"] = choice(v, CoSubform, "subform") if v.field("subform") else None
        body["safeguarding_check"] = v.field("safeguarding_check") == "yes"
        added = await v.act("POST", A, body=body, key=v.field("key"))
    except Problem as p:
        found = await v.act("GET", A)
        return v.problem(p, "coordinator/activities.html", activities=found.items, **_context(v))
    return v.redirect(f"{base(v)}/activities", v._("%(title)s is added.", title=added.title))


async def retire(v: Visit) -> Response:
    code = v.request.path_params["code"]
    done = await v.act("POST", A + "/{code}/retire", {"code": code}, key=v.field("key"))
    notice = v._("%(title)s is retired: no new hours can be logged to it.", title=done.title)
    return v.redirect(f"{base(v)}/activities", notice)


def routes() -> list[BaseRoute]:
    return [
        page("/s/{scheme}/coordinate/activities", activities, roles=STAFF),
        page("/s/{scheme}/coordinate/activities", add, roles=STAFF, methods=("POST",)),
        page(
            "/s/{scheme}/coordinate/activities/{code}/retire",
            retire,
            roles=STAFF,
            methods=("POST",),
        ),
    ]
