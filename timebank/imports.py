"""Reading members and historic hours from CSV: every line checked before anything is written.

Problems are reported by line number and field. Each row gets a stable idempotency key (its
content and how many identical rows came before it), so importing the same file twice writes
nothing the second time. Pure: parsing and checking only; `service.TimeBank` does the writing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date

from .schemes import Member, Role, member_problems

MAX_ROWS = 50_000
MEMBER_COLUMNS = ("id", "display_name", "roles", "contact", "card_number")
HOURS_COLUMNS = ("member", "activity", "date", "minutes", "receiver", "note")


@dataclass(frozen=True, slots=True)
class LineProblem:
    line: int  # 1 is the header
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class HoursRow:
    line: int
    key: str  # idempotency key
    member: str
    activity: str
    day: date
    minutes: int
    receiver: str | None
    note: str


class ImportRefused(ValueError):
    """The file has problems; nothing was written."""

    def __init__(self, problems: list[LineProblem]) -> None:
        super().__init__(f"{len(problems)} problems, first at line {problems[0].line}")
        self.problems = problems


def _rows(text: str, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise ImportRefused([LineProblem(1, c, "missing column") for c in missing])
    out = []
    for n, row in enumerate(reader, start=2):
        if n - 1 > MAX_ROWS:
            raise ImportRefused([LineProblem(n, "", f"more than {MAX_ROWS} rows")])
        out.append((n, {k.strip(): (v or "").strip() for k, v in row.items() if k}))
    return out


def _keys(prefix: str, rows: list[tuple[int, dict[str, str]]]) -> list[str]:
    seen: Counter[str] = Counter()
    keys = []
    for _, row in rows:
        content = "\x1f".join(f"{k}={row[k]}" for k in sorted(row))
        seen[content] += 1
        digest = hashlib.sha256(f"{content}\x1e{seen[content]}".encode()).hexdigest()[:32]
        keys.append(f"{prefix}:{digest}")
    return keys


def parse_members(scheme: str, text: str) -> list[Member]:
    """Members from CSV (`id,display_name,roles,contact,card_number`; roles `;`-separated)."""
    problems: list[LineProblem] = []
    members: list[Member] = []
    ids: dict[str, int] = {}
    for line, row in _rows(text, ("id", "display_name")):
        try:
            roles = frozenset(Role(r.strip()) for r in row.get("roles", "").split(";") if r.strip())
        except ValueError:
            problems.append(
                LineProblem(line, "roles", "roles are member, coordinator, scheme-admin")
            )
            continue
        m = Member(scheme, row["id"], row["display_name"], roles or frozenset({Role.MEMBER}),
                   row.get("contact", ""), row.get("card_number", ""))  # fmt: skip
        problems += [LineProblem(line, f, msg) for f, msg in member_problems(m)]
        if m.id in ids:
            problems.append(LineProblem(line, "id", f"the same id as line {ids[m.id]}"))
        ids.setdefault(m.id, line)
        members.append(m)
    if problems:
        raise ImportRefused(problems)
    return members


def parse_hours(text: str) -> list[HoursRow]:
    """Historic hours from CSV (`member,activity,date,minutes[,receiver,note]`)."""
    rows = _rows(text, ("member", "activity", "date", "minutes"))
    problems: list[LineProblem] = []
    out: list[HoursRow] = []
    for (line, row), key in zip(rows, _keys("import", rows), strict=True):
        try:
            day = date.fromisoformat(row["date"])
        except ValueError:
            problems.append(LineProblem(line, "date", "a date as YYYY-MM-DD"))
            continue
        if not row["minutes"].isdigit():
            problems.append(LineProblem(line, "minutes", "a whole number of minutes"))
            continue
        for field_name in ("member", "activity"):
            if not row[field_name]:
                problems.append(LineProblem(line, field_name, "required"))
        out.append(HoursRow(line, key, row["member"], row["activity"], day, int(row["minutes"]),
                            row.get("receiver") or None, row.get("note", "")))  # fmt: skip
    if problems:
        raise ImportRefused(problems)
    return out
