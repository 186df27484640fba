"""What the commissioner pages share: the period and valuation choices a form gives, the report
fetched through the API for them, and its figures shaped for reading (no member is named: the
report itself holds only aggregates, and the pages show nothing else)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from api.endpoints import Services
from api.problems import Problem
from api.reports import READERS
from identity.auth import Principal
from ledger import from_us

from . import bridge
from .visit import Visit

REPORTS = "/schemes/{scheme}/reports"
VALUATION = ("deadweight", "attribution", "displacement", "drop_off")
FORMATS = ("json", "csv", "xlsx", "html", "pdf")
ROLES = READERS  # commissioners, and the staff the API lets read reports too


@dataclass(frozen=True)
class Choice:
    """A period (`from`, `to`) and the optional valuation parameters, as typed."""

    start: str
    end: str
    valuation: dict[str, str]

    def query(self, fmt: str = "json") -> dict[str, str]:
        """The report endpoint's query for this choice."""
        given = {k: v for k, v in self.valuation.items() if v}
        return {"from": self.start, "to": self.end, "format": fmt} | given

    def as_link(self) -> str:
        """The choice as a URL query string (for chart images and links)."""
        return urlencode({"from": self.start, "to": self.end} | self.valuation)

    def fields(self) -> dict[str, str]:
        return {"from": self.start, "to": self.end} | self.valuation


def default_period(v: Visit) -> tuple[str, str]:
    """The last twelve months to today (the bank's clock)."""
    today = from_us(v.services.bank.clock()).date()
    return (today - timedelta(days=365)).isoformat(), today.isoformat()


def choice_of(v: Visit, source: Mapping[str, Any]) -> Choice:
    """The choice in a form (query string or posted), defaults where a field is left empty."""

    def get(name: str) -> str:
        value = source.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    start, end = default_period(v)
    return Choice(get("from") or start, get("to") or end, {k: get(k) for k in VALUATION})


def check(v: Visit, choice: Choice) -> None:
    """Refuse a choice the report cannot be made for, naming the field (before any work)."""
    for name, value in (("from", choice.start), ("to", choice.end)):
        try:
            date.fromisoformat(value)
        except ValueError:
            raise Problem(422, v._("Give the date as YYYY-MM-DD."), field=name) from None
    if choice.end < choice.start:
        raise Problem(422, v._("The period ends before it starts."), field="to")
    for name, value in choice.valuation.items():
        if value and not _fraction(value):
            raise Problem(422, v._("Give a number from 0 to 1."), field=name)


def _fraction(text: str) -> bool:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return False
    return d.is_finite() and Decimal(0) <= d <= Decimal(1)


def _normal(choice: Choice) -> Choice:
    """Fractions written as the API wants them ("0.25", at most four places; "1" for one)."""
    out = {}
    for name, value in choice.valuation.items():
        if value:
            d = Decimal(value).quantize(Decimal("0.0001")).normalize()
            value = "1" if d == 1 else format(d, "f")
        out[name] = value
    return Choice(choice.start, choice.end, out)


async def fetch(
    services: Services, who: Principal, scheme: str, choice: Choice, fmt: str = "json"
) -> Response:
    """The report endpoint's response for `choice`, as `who` (same checks as the API)."""
    found = await bridge.act(
        services, who, "GET", REPORTS, {"scheme": scheme}, query=_normal(choice).query(fmt)
    )
    assert isinstance(found, Response)
    return found


async def report_of(v: Visit, choice: Choice) -> dict[str, Any]:
    check(v, choice)
    response = await fetch(v.services, v.who, v.scheme, choice)
    made = json.loads(bytes(response.body))
    assert isinstance(made, dict)
    return made


def number(value: Any) -> str:
    """A figure of the report with thousands separators, its own digits kept ("-" if none)."""
    if value is None:
        return "\u2013"
    try:
        return format(Decimal(str(value)), ",")
    except InvalidOperation:
        return str(value)


def credits(minutes: Any) -> str:
    """Credits (one an hour) from minutes, to two places."""
    if not isinstance(minutes, int):
        return "\u2013"
    return number((Decimal(minutes) / 60).quantize(Decimal("0.01")))


def matrix(report: dict[str, Any]) -> dict[str, Any]:
    """The wrong-pocket matrix (lens C): funders as rows, agencies as columns, central values."""
    lens_c = (report.get("lenses") or {}).get("C") or {}
    cells = [r for r in lens_c.get("matrix") or [] if isinstance(r, dict)]
    funders = list(dict.fromkeys(str(r.get("funder")) for r in cells))
    agencies = list(dict.fromkeys(str(r.get("agency")) for r in cells))
    grid = {(str(r.get("funder")), str(r.get("agency"))): r.get("central") for r in cells}
    rows = [(f, [grid.get((f, a)) for a in agencies]) for f in funders]
    return {"agencies": agencies, "rows": rows, "currency": lens_c.get("currency", "")}


def helpers() -> dict[str, Callable[[Any], str]]:
    return {"number": number, "credits": credits}
