"""Cells that are safe to open in a spreadsheet, for every CSV and XLSX file the app writes
(reports, partners' statements): text that came from people (a member's name, an activity's
title, a partner's, a scheme's) never becomes a formula.

A spreadsheet takes a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return)
for a formula, and a formula can run a command (DDE: `+cmd|' /C calc'!A0`) or send data away
(`=HYPERLINK(...)`): OWASP's "CSV injection". So:

- in CSV, such text gets a leading single quote (`'=HYPERLINK(...)`), which spreadsheets show
  as text;
- in XLSX, text is always written as a string cell, never a formula, and such text is marked
  quote-prefixed (as if typed with a leading `'`), so editing it does not turn it into one;
  characters XML cannot carry (control characters) become U+FFFD instead of breaking the file.

Numbers (int, float, Decimal) are written as they are: -2 is a number, not a formula.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# what XML 1.0 cannot hold (openpyxl refuses them), and U+FFFE/U+FFFF
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _numeric(value: Any) -> bool:
    """A number object (not `valuation.reports.document.is_number`, which also takes decimal
    strings: the reports decide that for themselves)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def looks_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_START)


def safe_cell(value: Any) -> str:
    """A CSV cell as text: None is empty, a number as it is, any other value as text with a
    leading single quote if a spreadsheet would take it for a formula."""
    if value is None:
        return ""
    text = str(value)
    if _numeric(value):
        return text
    return "'" + text if looks_like_formula(text) else text


def xml_text(text: str) -> str:
    """`text` with the characters an XLSX file (XML) cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def put_cell(ws: Any, row: int, column: int, value: Any) -> Any:
    """Write `value` into an openpyxl worksheet's cell and return the cell: None, booleans and
    numbers as they are; anything else as a text cell, never a formula (quote-prefixed if it
    looks like one)."""
    if value is None or isinstance(value, bool) or _numeric(value):
        return ws.cell(row=row, column=column, value=value)
    text = xml_text(str(value))
    cell = ws.cell(row=row, column=column)
    cell.value = text
    cell.data_type = "s"  # openpyxl would make a formula of text starting with "="
    if looks_like_formula(text):
        cell.quotePrefix = True
    return cell
