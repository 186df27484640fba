"""A report as rows: the shape the CSV file and the spreadsheet's sheets share. Pure.

Every figure becomes one row of `view, key, measure, value`: the view is the figure's place in
the report (e.g. `outputs.by_activity`), the key names the row within it (e.g.
`activity=garden; title=Garden`), the measure is the column (e.g. `minutes`). Long rows like
these are what a commissioner's analyst can filter and pivot without knowing the report's
nesting, and they carry every number the JSON does. The report's front matter (scheme, period,
checkpoint, parameters) comes first, as rows of the view `report`. In the CSV file a figure is
written as it is, and text that a spreadsheet would take for a formula (an activity titled
`=HYPERLINK(...)`) is neutralised (`timebank.spreadsheets`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from timebank.spreadsheets import safe_cell

from .document import is_number

HEADER = ("view", "key", "measure", "value")
KEY_FIELDS = frozenset(
    {
        "activity",
        "title",
        "month",
        "form",
        "subform",
        "area",
        "contribution",
        "mode",
        "voluntariness",
        "relation",
        "answer",
        "partner",
        "agency",
        "funder",
        "outcome",
        "lens",
        "stakeholder",
        "series",
        "year",
        "method",
        "proxy_code",
        "id",
        "source",
        "horizon",
        "question",
        "sensitivity",
        "entry",
        "code",
    }
)
FRONT = ("report", "format_version", "scheme", "period", "checkpoint", "parameters", "catalogue")


def rows(report: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """Every figure of the report as (view, key, measure, value)."""
    for name in FRONT:
        if name in report:
            yield from _rows("report", name, report[name])
    for name, value in report.items():
        if name not in FRONT:
            yield from _rows(name, "", value)


def _rows(view: str, key: str, value: Any) -> Iterator[tuple[str, str, str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list):
                yield from _rows(f"{view}.{k}", key, v)
            else:
                yield view, key, k, _text(v)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                named = [f"{k}={_text(item[k])}" for k in item if k in KEY_FIELDS]
                row_key = "; ".join(named) or str(i)
                measures = {k: v for k, v in item.items() if k not in KEY_FIELDS}
                yield from _rows(view, f"{key}; {row_key}" if key else row_key, measures)
            else:
                yield view, key, str(i), _text(item)
    else:
        yield view, key, "value", _text(value)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows(report):
        writer.writerow([cell if is_number(cell) else safe_cell(cell) for cell in row])
    return out.getvalue()
