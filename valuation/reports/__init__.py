"""Valued-contribution reports: make one from the database, render it, verify it.

report = await make_report(bank, "taff-housing", date(2026, 1, 1), date(2026, 3, 31))
data = render(report, "csv")
assert await verify_report(bank, report) == []   # recomputed: every number matches
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from ledger import InvalidRequest
from timebank.books import Books, scheme_books_sql
from timebank.service import TimeBank

from ..catalogue import Catalogue
from .catalogues import catalogue_by_hash, scheme_catalogue
from .compare import differences
from .engine import Parameters, build
from .facts import Facts
from .gather import as_of_us, gather
from .tables import to_csv

FORMATS = ("json", "csv", "xlsx", "html", "pdf")
DECIMAL_PARAMETERS = (
    "productivity",
    "oncost",
    "deadweight",
    "displacement",
    "attribution",
    "drop_off",
    "what_if_hours_per_week",
)


async def make_report(
    bank: TimeBank,
    scheme: str,
    start: date,
    end: date,
    params: Parameters | None = None,
    *,
    size: int | None = None,
    catalogue: Catalogue | None = None,
    as_of_us: int | None = None,
) -> dict[str, Any]:
    """The report of `scheme` for the days `start`..`end`, at the checkpoint of `size` (None:
    the ledger's head, checkpointed now if it has grown since the last checkpoint), valued with
    `catalogue` (None: the scheme's latest version, else the shipped one), with what was
    recorded up to `as_of_us` (None: now)."""
    facts, books, catalogue = await report_inputs(
        bank, scheme, start, end, size=size, catalogue=catalogue, as_of_us=as_of_us
    )
    return build(facts, books, params or Parameters(), catalogue)


async def report_inputs(
    bank: TimeBank,
    scheme: str,
    start: date,
    end: date,
    *,
    size: int | None = None,
    catalogue: Catalogue | None = None,
    as_of_us: int | None = None,
) -> tuple[Facts, Books, Catalogue]:
    """What `make_report` reads before it builds (the same arguments): the facts at the
    checkpoint, the books and the catalogue. `build(facts, books, params, catalogue)` is pure,
    so a server can build it in a worker process."""
    facts = await gather(bank, scheme, start, end, size=size, as_of_us=as_of_us)
    books = await scheme_books_sql(bank.ledger, scheme, start, end, size=facts.checkpoint.size)
    return facts, books, catalogue or await scheme_catalogue(bank, scheme)


def render(report: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return (json.dumps(report, indent=1, ensure_ascii=False) + "\n").encode()
    if fmt == "csv":
        return to_csv(report).encode()
    # The document formats load matplotlib, openpyxl or fpdf2 (a second or so): only when asked,
    # so the CLI, the server and the JSON and CSV reports start without them.
    if fmt == "xlsx":
        from .xlsx import to_xlsx

        return to_xlsx(report)
    if fmt == "html":
        from .html import to_html

        return to_html(report).encode()
    if fmt == "pdf":
        from .pdf import to_pdf

        return to_pdf(report)
    raise InvalidRequest(f"a report's format is one of {', '.join(FORMATS)}", field="format")


def parameters_of(report: dict[str, Any]) -> Parameters:
    """The parameters a report states it was run with."""
    given = dict(report["parameters"])
    for name in DECIMAL_PARAMETERS:
        if given.get(name) is not None:
            given[name] = Decimal(given[name])
    return Parameters(**given)


async def verify_report(bank: TimeBank, report: dict[str, Any]) -> list[str]:
    """Recompute `report` from the database at the checkpoint it names, with the parameters it
    states; the differences (empty when every number matches)."""
    try:
        scheme = report["scheme"]["id"]
        start = date.fromisoformat(report["period"]["from"])
        end = date.fromisoformat(report["period"]["to"])
        size = int(report["checkpoint"]["size"])
        params = parameters_of(report)
        wanted = report["catalogue"]["hash"]
        as_of = as_of_us(report["as_of"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"not a report this engine wrote: {exc}", field="report") from None
    catalogue = await catalogue_by_hash(bank, scheme, wanted)
    if catalogue is None:
        return [
            f"$.catalogue.hash: the report was valued with {wanted}, which neither this "
            "engine nor the scheme holds"
        ]
    again = await make_report(
        bank, scheme, start, end, params, size=size, catalogue=catalogue, as_of_us=as_of
    )
    return differences(again, report)
