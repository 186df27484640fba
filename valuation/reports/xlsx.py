"""A report as an Excel workbook: a Summary sheet, one sheet per view, and every figure as long
rows. Pure: report in, .xlsx bytes out.

The Summary states the report (scheme, period, checkpoint, catalogue, parameters), its headline
(hours and credits first, unmonetised) and its caveats. Each view (`html.views`: every list of
rows and group of figures the report holds) gets a sheet named by its place in the report
(`outputs.by_activity`), header row bold and frozen. "All figures" is the CSV's long form
(`tables.rows`), for pivoting. A figure is written as a number when it is an int or a decimal
string, so it sums in a spreadsheet; everything else is text, never a formula, whoever named the
activity or partner (`timebank.spreadsheets`). The same report writes the same bytes: the
workbook's dates are the checkpoint's time.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from timebank.spreadsheets import put_cell, xml_text

from . import tables
from .document import Table, headline, is_number, is_range, label, statement, title, views

MAX_NAME = 31
_BAD = re.compile(r"[\[\]:*?/\\]")
BOLD = Font(bold=True)
EPOCH = datetime(2000, 1, 1)
# figures under these names are names, not quantities: "2026.10" stays text, never 2026.1
TEXT_KEYS = frozenset(
    {
        "version",
        "id",
        "code",
        "hash",
        "root",
        "key_id",
        "signature",
        "proxy_code",
        "based_on",
        "soc_version",
    }
)


def to_xlsx(report: dict[str, Any]) -> bytes:
    """The report as an .xlsx workbook."""
    wb = Workbook()
    when = _when(report)
    wb.properties.creator = "timebank"
    wb.properties.title = xml_text(title(report))
    wb.properties.created = when
    wb.properties.modified = when
    _summary(wb.active, report)
    used = {"Summary", "All figures"}
    for t in views(report, skip=(*tables.FRONT, "headline", "caveats")):
        _sheet(wb.create_sheet(sheet_name(t.path, used)), t)
    _sheet(
        wb.create_sheet("All figures"),
        Table(("all",), "All figures", tables.HEADER, tuple(tables.rows(report))),
    )
    buf = io.BytesIO()
    # ExcelWriter, not wb.save: save stamps the workbook "modified" now
    ExcelWriter(wb, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED)).save()
    return _fixed_times(buf.getvalue(), when)


def sheet_name(path: tuple[str, ...], used: set[str]) -> str:
    """A sheet name for a view: the longest tail of its dotted path that fits Excel's 31
    characters, made unique among `used` (and added to it)."""
    parts = [_BAD.sub("-", p) for p in path]
    name = parts[-1][:MAX_NAME]
    for i in range(len(parts)):
        tail = ".".join(parts[i:])
        if len(tail) <= MAX_NAME:
            name = tail
            break
    base, n = name, 1
    while name.lower() in {u.lower() for u in used}:
        n += 1
        suffix = f" ({n})"
        name = base[: MAX_NAME - len(suffix)] + suffix
    used.add(name)
    return name


def _when(report: dict[str, Any]) -> datetime:
    """The checkpoint's time (naive UTC, as openpyxl writes it), or a fixed date without one."""
    try:
        t = datetime.fromisoformat(str(report["checkpoint"]["time"]))
    except (KeyError, TypeError, ValueError):
        return EPOCH
    return t.astimezone(UTC).replace(tzinfo=None, microsecond=0) if t.tzinfo else t


def _fixed_times(data: bytes, when: datetime) -> bytes:
    """The same bytes for the same workbook: every zip member dated `when`."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def _value(v: Any, key: str) -> tuple[Any, str | None]:
    """A cell's value and number format: ints and decimal strings as numbers, the rest text
    (and a decimal string named by `key` as an identifier stays text)."""
    if v is None or isinstance(v, bool):
        return v, None
    if is_number(v) and not (isinstance(v, str) and key.rpartition(".")[2] in TEXT_KEYS):
        if isinstance(v, str):
            places = len(v.partition(".")[2])
            fmt = "#,##0." + "0" * places if places else None
            return (Decimal(v) if places else int(v)), fmt
        return v, None
    return str(v), None


def _put(ws: Any, row: int, col: int, v: Any, *, key: str = "", bold: bool = False) -> None:
    value, fmt = _value(v, key)
    cell = put_cell(ws, row, col, value)
    if fmt:
        cell.number_format = fmt
    if bold:
        cell.font = BOLD


def _sheet(ws: Any, t: Table) -> None:
    for j, c in enumerate(t.columns, start=1):
        _put(ws, 1, j, c, bold=True)
    named = t.columns.index("measure") if "measure" in t.columns else None
    for i, row in enumerate(t.rows, start=2):
        for j, (column, v) in enumerate(zip(t.columns, row, strict=True), start=1):
            key = str(row[named]) if column == "value" and named is not None else column
            _put(ws, i, j, v, key=key)
    ws.freeze_panes = "A2"
    _widths(ws, [t.columns, *t.rows])


def _widths(ws: Any, rows: list[tuple[Any, ...]]) -> None:
    widest: dict[int, int] = {}
    for row in rows:
        for j, v in enumerate(row, start=1):
            widest[j] = max(widest.get(j, 0), len("" if v is None else str(v)))
    for j, n in widest.items():
        ws.column_dimensions[get_column_letter(j)].width = min(max(n + 2, 8), 60)


def _summary(ws: Any, report: dict[str, Any]) -> None:
    """The statement, the front matter as label and value, the headline, the caveats."""
    ws.title = "Summary"
    put_cell(ws, 1, 1, title(report)).font = Font(bold=True, size=14)
    r = 2
    for sentence in statement(report):
        r += 1
        put_cell(ws, r, 1, sentence)
    r += 1
    for name, value in report.items():
        pairs = value.items() if isinstance(value, dict) else [(None, value)]
        if name in tables.FRONT or not isinstance(value, dict | list):
            for measure, v in pairs:
                if not isinstance(v, dict | list):
                    r += 1
                    _put(ws, r, 1, label(f"{name} {measure}" if measure else name))
                    _put(ws, r, 2, v, key=measure or name)
    r += 2
    for col, head in enumerate(("Headline", "Value (central)", "Low", "High"), start=1):
        _put(ws, r, col, head, bold=True)
    for name, shown, value in headline(report):
        r += 1
        _put(ws, r, 1, name)
        if is_range(value):
            for col, end in enumerate(("central", "low", "high"), start=2):
                _put(ws, r, col, value[end])
        else:
            _put(ws, r, 2, shown if isinstance(value, dict | list) else value)
    r += 2
    _put(ws, r, 1, "Caveats", bold=True)
    for caveat in report.get("caveats") or []:
        r += 1
        put_cell(ws, r, 1, str(caveat))
    for letter, width in zip("ABCD", (34, 70, 14, 14), strict=True):
        ws.column_dimensions[letter].width = width
