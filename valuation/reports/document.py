"""A report as a document: its title, statement, headline and every view as a table. Pure.

What the XLSX, HTML and PDF renderers share. The views are found, not listed: every list of
rows and every group of figures the report holds becomes a `Table` (`views`), so a section the
engine adds later is rendered by every format without a change there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .outputs import hours

FRONT = ("report", "format_version", "scheme", "period", "checkpoint", "parameters", "catalogue")
SPECIAL = ("headline", "caveats", "assumptions", "sources")  # each has a place of its own
HEADLINE_FIRST = ("hours", "minutes", "credits_issued", "credits_redeemed")
LABELS = {
    "hours": "Hours given",
    "minutes": "Minutes given",
    "credits_issued": "Credits issued",
    "credits_redeemed": "Credits redeemed",
    "unique_members": "Members who gave hours",
    "participations": "Participations (confirmed claims)",
}
_NUMBER = re.compile(r"-?(0|[1-9]\d{0,14})(\.\d{1,10})?")
_WORD = re.compile(r"[^A-Za-z0-9]+")
_LENS = re.compile(r"\b(lens )([a-z])\b")


@dataclass(frozen=True, slots=True)
class Table:
    """One view of a report: where it is (`path`), a heading, column names and rows of plain
    values (str, int, float, bool or None)."""

    path: tuple[str, ...]
    heading: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def label(key: str) -> str:
    """A report key for reading: `by_activity` -> `By activity`, `value.low` -> `Value low`."""
    words = " ".join(key.replace("_", " ").replace(".", " ").split())
    words = _LENS.sub(lambda m: m.group(1) + m.group(2).upper(), words)
    return words[:1].upper() + words[1:]


def is_number(value: Any) -> bool:
    """An int, or a decimal figure written as a string (money, hours, shares)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value) is not None
    )


def text(value: Any) -> str:
    """A value as a reader sees it in a table cell; a range as its central value and ends."""
    if value is None:
        return "\u2013"  # an en dash
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_range(value):
        return f"{value['central']} (low {value['low']}, high {value['high']})"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(text(v) for v in value)
    return str(value)


def is_range(value: Any) -> bool:
    """A money range: {low, central, high}."""
    return isinstance(value, dict) and set(value) == {"low", "central", "high"}


def title(report: dict[str, Any]) -> str:
    scheme = report.get("scheme") or {}
    name = scheme.get("name") or scheme.get("id") or "scheme"
    kind = label(str(report.get("report") or "report"))
    return f"{kind} report: {name}"


def statement(report: dict[str, Any]) -> list[str]:
    """The front matter as sentences: scheme, period, checkpoint, catalogue, parameters."""
    s, p = report.get("scheme") or {}, report.get("period") or {}
    cp, cat = report.get("checkpoint") or {}, report.get("catalogue") or {}
    params = report.get("parameters") or {}
    out = []
    if s:
        said = ", ".join(str(s[k]) for k in s if k not in ("name", "id"))
        out.append(f"Scheme: {s.get('name', '')} ({s.get('id', '')}){', ' if said else ''}{said}.")
    if p:
        out.append(f"Period: {p.get('from', '')} to {p.get('to', '')}.")
    if cp:
        out.append(
            f"Computed from the ledger at the signed checkpoint of size {cp.get('size')}, "
            f"Merkle root {cp.get('root')}, made {cp.get('time')} (key {cp.get('key_id')})."
        )
    if cat:
        out.append(f"Valuation catalogue version {cat.get('version')}, hash {cat.get('hash')}.")
    base = params.get("price_base")
    money = f"{base} prices" if base else "each value in its own price year"
    if "currency" in params:
        out.append(f"Money values are in {params['currency']}, {money}.")
    if params:
        given = ", ".join(f"{k} = {'not set' if v is None else text(v)}" for k, v in params.items())
        out.append(f"Parameters: {given}.")
    out.extend(
        f"{label(k)}: {v}."
        for k, v in report.items()
        if k not in FRONT and _scalar(v) and v not in (None, "")
    )
    if "format_version" in report:
        out.append(f"Report format version {report['format_version']}.")
    return out


def headline(report: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(label, as read, value) for each headline figure: hours and credits first."""
    head = report.get("headline") or {}
    keys = [k for k in HEADLINE_FIRST if k in head] + [k for k in head if k not in HEADLINE_FIRST]
    out = []
    for k in keys:
        v = head[k]
        shown = text(v)  # a range: "central (low .., high ..)"
        if k.startswith("credits_") and isinstance(v, int) and not isinstance(v, bool):
            shown = f"{hours(v)} credits ({v} minutes)"
        out.append((LABELS.get(k, label(k)), shown, v))
    return out


def views(report: dict[str, Any], skip: tuple[str, ...] = FRONT + SPECIAL) -> list[Table]:
    """Every view of `report` (all but the sections named in `skip`, and the single values the
    statement gives) as a table."""
    return [
        t
        for k, v in report.items()
        if k not in skip and not _scalar(v)
        for t in tables_in(v, (k,), (label(k),))
    ]


def _scalar(v: Any) -> bool:
    return not isinstance(v, dict | list)


def _flat(v: Any) -> bool:
    """A value that fits in one cell: a scalar or a list of scalars."""
    return _scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v))


def _record(v: Any) -> bool:
    """A dict that fits in one row: flat values, or dicts of them (a range: low, central, high)."""
    return isinstance(v, dict) and all(
        _flat(x) or (isinstance(x, dict) and all(_flat(y) for y in x.values())) for x in v.values()
    )


def _range(v: Any) -> bool:
    """A dict of single values (a range: low, central, high): shown inline, as one figure."""
    return isinstance(v, dict) and bool(v) and all(_flat(x) for x in v.values())


def _cells(item: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in item.items():
        if isinstance(v, dict):
            yield from _cells(v, f"{prefix}{k}.")
        elif isinstance(v, list):
            flat = all(_scalar(x) for x in v)
            yield f"{prefix}{k}", ("; ".join(map(str, v)) if flat else json.dumps(v)) or None
        else:
            yield f"{prefix}{k}", v


def _records(path: tuple[str, ...], heading: str, items: list[tuple[str | None, Any]]) -> Table:
    keyed = any(name is not None for name, _ in items)
    rows = [
        dict(_cells(v)) if isinstance(v, dict) else {} if v is None else {"value": v}
        for _, v in items
    ]
    columns = list(dict.fromkeys(c for r in rows for c in r))
    lead = ("item",) if keyed else ()
    body = [
        ((name,) if keyed else ()) + tuple(r.get(c) for c in columns)
        for (name, _), r in zip(items, rows, strict=True)
    ]
    return Table(path, heading, lead + tuple(columns), tuple(body))


def tables_in(value: Any, path: tuple[str, ...], words: tuple[str, ...]) -> Iterator[Table]:
    heading = " \u203a ".join(words)  # a single right-pointing angle quotation mark
    if isinstance(value, list):
        yield _records(path, heading, [(None, v) for v in value])
        return
    if not isinstance(value, dict):
        yield Table(path, heading, ("value",), ((value,),))
        return
    if value and all(v is None or (_record(v) and v) for v in value.values()):
        yield _records(path, heading, [(k, v) for k, v in value.items()])  # e.g. shares
        return
    own = any(_scalar(v) for v in value.values())
    here = {k: v for k, v in value.items() if _scalar(v) or (own and (_flat(v) or _range(v)))}
    if here:
        yield Table(path, heading, ("measure", "value"), tuple(_cells(here)))
    for k, v in value.items():
        if k not in here:
            named = label(k)
            if isinstance(v, dict) and isinstance(v.get("title"), str):
                named = f"{k}: {v['title']}"
            yield from tables_in(v, (*path, k), (*words, named))


def anchor(path: tuple[str, ...]) -> str:
    return "v-" + _WORD.sub("-", ".".join(path)).strip("-").lower()
