"""Pages for commissioners: the dashboard of a scheme's valued-contribution report for a period
(hours and credits first, then each valuation lens apart, charts with their figures as tables,
the equality view, and where every figure came from), its charts as images, and downloads.

Every figure is the API's own report (`GET /schemes/{scheme}/reports`), read as JSON; the pages
add no arithmetic of their own beyond layout. No member is identified anywhere here.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from api.problems import Problem
from timebank import offload

from . import commissioner_downloads
from .commissioner_report import ROLES, Choice, choice_of, helpers, matrix, report_of
from .visit import Visit, page

BASE = "/s/{scheme}/commission"
CHARTS = ("hours-by-month", "hours-by-form", "hours-by-area", "wrong-pocket")


def chart_titles(v: Visit) -> dict[str, str]:
    return {
        "hours-by-month": v._("Hours by month"),
        "hours-by-form": v._("Hours by co-production form"),
        "hours-by-area": v._("Hours by service area"),
        "wrong-pocket": v._("Who pays, who benefits (central values)"),
    }


def _equality(report: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    by_question = (report.get("equality") or {}).get("by_question") or {}
    return [
        (str(q), [r for r in rows if isinstance(r, dict)])
        for q, rows in by_question.items()
        if isinstance(rows, list)
    ]


async def dashboard(v: Visit) -> Response:
    choice = choice_of(v, v.request.query_params)
    context: dict[str, Any] = {"choice": choice, "titles": chart_titles(v), **helpers()}
    try:
        report = await report_of(v, choice)
    except Problem as p:
        return v.problem(p, "commissioner/dashboard.html", report=None, **context)
    from valuation.reports.charts import charts  # matplotlib loads only when a page needs it

    drawn = [c.name for c in charts(report) if c.name in CHARTS]
    return v.render(
        "commissioner/dashboard.html",
        report=report,
        charts=drawn,
        matrix=matrix(report),
        equality=_equality(report),
        **context,
    )


async def chart_png(v: Visit) -> Response:
    name = str(v.request.path_params["chart"])
    if name not in CHARTS:
        raise Problem(404, v._("No such chart."), field="chart")
    choice: Choice = choice_of(v, v.request.query_params)
    report = await report_of(v, choice)
    png = await offload.run(_chart_png, report, name)
    if png is None:
        raise Problem(404, v._("There is nothing to draw for this period."), field="chart")
    return Response(
        png, 200, media_type="image/png", headers={"Cache-Control": "private, max-age=300"}
    )


def _chart_png(report: dict[str, Any], name: str) -> bytes | None:
    """In a worker process: the chart `name` of `report` as a PNG, None if it has nothing to
    draw. matplotlib draws in Python (80-140 ms a chart of a 24-month report), holding the
    interpreter lock: a thread would hold every other request up as long."""
    from valuation.reports.charts import charts

    found = [c for c in charts(report) if c.name == name]
    return found[0].png() if found else None


def routes() -> list[BaseRoute]:
    return [
        page(BASE, dashboard, roles=ROLES),
        page(BASE + "/charts/{chart}.png", chart_png, roles=ROLES),
        *commissioner_downloads.routes(),
    ]
