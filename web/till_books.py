"""The partner's books at the till: today's redemptions, a statement for any period (and its
CSV), and reconciling the till's own CSV export with the vouchers the ledger shows as settled.

Every figure comes from the API (`/partner/statement`, `/partner/reconciliations`)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from identity.auth import ApiRole
from ledger import from_us
from timebank.spreadsheets import safe_cell

from .visit import Visit, page

TILL = frozenset({ApiRole.PARTNER_STAFF})
STATEMENT = "/schemes/{scheme}/partner/statement"
RECONCILE = "/schemes/{scheme}/partner/reconciliations"
CATEGORIES = ("matched", "mismatches", "on_till_not_ledger", "on_ledger_not_till")


def today(v: Visit) -> date:
    """Today by the ledger's clock (UTC), the day statements count settlements in."""
    return from_us(v.services.bank.clock()).date()


async def _statement(v: Visit, start: str, end: str) -> dict[str, Any]:
    found = await v.act("GET", STATEMENT, query={"start": start, "end": end})
    data: dict[str, Any] = found.model_dump()
    return data


async def today_page(v: Visit) -> Response:
    day = today(v).isoformat()
    return v.render("till/today.html", day=day, statement=await _statement(v, day, day))


def _period(v: Visit) -> tuple[str, str]:
    """The period asked for (`?start=&end=`), by default this month to today."""
    now = today(v)
    q = v.request.query_params
    start = q.get("start", now.replace(day=1).isoformat()).strip()
    end = q.get("end", now.isoformat()).strip()
    return start, end


async def statement_page(v: Visit) -> Response:
    start, end = _period(v)
    try:
        found = await _statement(v, start, end)
    except Problem as p:
        errors = {e.get("field", ""): e.get("message", "") for e in p.errors}
        return v.render(
            "till/statement.html",
            p.status,
            start=start,
            end=end,
            statement=None,
            errors=errors or {"start": p.detail},
        )
    return v.render("till/statement.html", start=start, end=end, statement=found)


async def statement_csv(v: Visit) -> Response:
    """The statement's rows as CSV (one a venue and offer, then the total), safe to open in a
    spreadsheet: a cell that would start a formula is prefixed with a single quote
    (`timebank.spreadsheets`)."""
    start, end = _period(v)
    found = await _statement(v, start, end)
    rows: list[dict[str, Any]] = found["rows"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(rows[0]) if rows else []
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row[c]) for c in columns])
    name = f"statement-{found['partner']}-{found['start']}-{found['end']}.csv"
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


async def reconcile_page(v: Visit) -> Response:
    if v.request.method == "GET":
        return v.render("till/reconcile.html", result=None, line_problems=[], filename="")
    upload = v.upload("file")
    if upload is None or not upload.filename:
        return _upload_refused(v, 422, v._("Choose the CSV file your till exported."))
    raw = await upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        message = v._("The file is not UTF-8 text. Export it from the till as CSV (UTF-8).")
        return _upload_refused(v, 422, message)
    try:
        result = await v.act("POST", RECONCILE, body=text, key=v.field("key"))
    except Problem as p:
        lines = [e for e in p.errors if "line" in e]
        if not lines:
            return _upload_refused(v, p.status, p.detail)
        message = v._("The file was not used. Its problems are listed below, by line.")
        return _upload_refused(v, p.status, message, lines)
    return v.render(
        "till/reconcile.html", result=result, line_problems=[], filename=upload.filename
    )


def _upload_refused(
    v: Visit, status: int, message: str, lines: list[dict[str, str]] | None = None
) -> Response:
    return v.render(
        "till/reconcile.html",
        status,
        result=None,
        errors={"file": message},
        line_problems=lines or [],
        filename="",
    )


def routes() -> list[BaseRoute]:
    base = "/s/{scheme}/till"
    return [
        page(base + "/today", today_page, roles=TILL),
        page(base + "/statement", statement_page, roles=TILL),
        page(base + "/statement.csv", statement_csv, roles=TILL),
        page(base + "/reconcile", reconcile_page, roles=TILL, methods=("GET", "POST")),
    ]
