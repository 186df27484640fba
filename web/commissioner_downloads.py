"""The commissioner's downloads: a report for a period in a chosen format (JSON, CSV, XLSX, HTML
or PDF), always made by a background job (`web.jobs`), whose page offers the file."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from api.reports import MEDIA

from . import jobs
from .commissioner_report import FORMATS, ROLES, check, choice_of, fetch
from .visit import Visit, page

PATH = "/s/{scheme}/commission/downloads"
MEDIA_TYPES = MEDIA | {"json": "application/json"}


def _formats(v: Visit) -> list[tuple[str, str]]:
    names = {
        "json": v._("JSON (for checking with timebank report verify)"),
        "csv": v._("CSV (comma-separated values)"),
        "xlsx": v._("Excel workbook (XLSX)"),
        "html": v._("Web page (HTML)"),
        "pdf": v._("PDF document"),
    }
    return [(f, names[f]) for f in FORMATS]


async def downloads(v: Visit) -> Response:
    source = v.form if v.request.method == "POST" else v.request.query_params
    choice = choice_of(v, source)
    fmt = v.field("format") or v.request.query_params.get("format", "") or "pdf"
    context: dict[str, Any] = {"choice": choice, "formats": _formats(v), "chosen": fmt}
    if v.request.method != "POST":
        return v.render("commissioner/downloads.html", **context)
    try:
        if fmt not in FORMATS:
            raise Problem(422, v._("Choose one of the formats."), field="format")
        check(v, choice)
    except Problem as p:
        return v.problem(p, "commissioner/downloads.html", **context)
    services, who, scheme = v.services, v.who, v.scheme
    done_message = v._("The report is ready.")
    start_message = v._("Making the report.")

    async def work(progress: jobs.Progress) -> tuple[bytes, str]:
        await progress(0, 2, start_message)
        response = await fetch(services, who, scheme, choice, fmt)
        await progress(2, 2, done_message)
        return bytes(response.body), done_message

    filename = f"{scheme}-{choice.start}-{choice.end}.{fmt}"
    url = await jobs.start(v, "report", filename, MEDIA_TYPES[fmt], work)
    return v.redirect(url)


def routes() -> list[BaseRoute]:
    return [page(PATH, downloads, roles=ROLES, methods=("GET", "POST"))]
