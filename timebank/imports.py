"""Reading members and historic hours from CSV: every line checked before anything is written.

Problems are reported by line number and field. Each row gets a stable idempotency key (its
content and how many identical rows came before it), so importing the same file twice writes
nothing the second time. Pure: parsing and checking only; `service.TimeBank` does the writing.

TimeOverflow (github.com/coopdevs/timeoverflow) exports, as read from its source:

* Members, "Users" report (`app/decorators/report/member_decorator.rb`, headers from
  `config/locales/en.yml`): `N,Name,Email,Phone,Alternative Phone,Created,Last login,Locale,
  Balance` (older versions stop after `Alternative Phone` or `Last login`; `Locale` has no
  English label, so Rails shows the humanised attribute name). `N` is the member number
  (`member_uid`): our id becomes `to-<N>`; Email and phones become the contact. `Created`,
  `Last login`, `Locale` and `Balance` are not imported (balances come from the transfers).
  Only active members are exported. The export carries no roles, so everyone comes in as a
  member; coordinators are set up here.
* Transfers, "All transfers" report (`app/decorators/report/transfer_decorator.rb`):
  `Date,From,To,Post,Quantity`, newest first. `Date` is Rails' `created_at.to_s`
  (`2024-03-05 14:22:01 +0100`, or `... UTC`); its calendar day is the day imported. `From`
  and `To` come from `TransfersHelper#accounts_from_movements`: a member as `Name (N)`, the
  bank's own account as the organisation's name, otherwise "The user isn't active" or "The
  user no longer exists". `Quantity` is `seconds_to_hm(seconds, 0)`: `H:MM` with the seconds
  dropped, or `0`. `From` is the account debited (the member who was helped and pays the
  hours), `To` the account credited (the member who did the work), so `To` becomes our
  `member` and `From` our `receiver`, which keeps every balance as it was. The export has no
  reason column and no category: the note is the post's title, if any.
* Lines whose `From` or `To` is not a member (the organisation's account, an inactive or
  deleted member) are refused as line problems: there is no member to give or take the hours.
  Headers are the English ones; an export made in another language is refused by column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from .schemes import Member, Role, member_problems

MAX_ROWS = 50_000
MAX_COLUMNS = 64  # fields in one line: the widest file read here has 9 columns
MAX_NOTE = 1000  # characters, as a claim's note in the API
MEMBER_COLUMNS = ("id", "display_name", "roles", "contact", "card_number")
HOURS_COLUMNS = ("member", "activity", "date", "minutes", "receiver", "note")
TO_MEMBER_COLUMNS = (
    "N",
    "Name",
    "Email",
    "Phone",
    "Alternative Phone",
    "Created",
    "Last login",
    "Locale",
    "Balance",
)
TO_TRANSFER_COLUMNS = ("Date", "From", "To", "Post", "Quantity")
TO_INACTIVE = "The user isn't active"
TO_DELETED = "The user no longer exists"
_TO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?: \d{2}:\d{2}:\d{2} (?:UTC|[+-]\d{4}))?", re.ASCII)
_TO_QUANTITY = re.compile(r"(\d{1,6}):([0-5]\d)", re.ASCII)
_TO_NUMBER = re.compile(r"\d{1,30}", re.ASCII)  # so that `to-<N>` is a valid member id
_TO_MEMBER = re.compile(r"(.*) \((\d{1,30})\)", re.ASCII | re.DOTALL)
_T = TypeVar("_T")


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

    def __reduce__(self) -> tuple[type[ImportRefused], tuple[list[LineProblem]]]:
        return (ImportRefused, (self.problems,))  # so it crosses from a worker process whole


def csv_records(text: str) -> list[tuple[int, list[str]]]:
    """The file's non-blank CSV records, each with the line it starts on (the header is 1).

    Linear in the file, and bounded: more than MAX_ROWS records, a record of more than
    MAX_COLUMNS fields, or a field over csv's limit (131,072 characters) is refused with its line.
    So is a quoted field running over several lines: in these files that is an unbalanced
    quote swallowing the lines after it, never a value anyone meant."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    out: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for record in reader:
            if reader.line_num > line:
                why = (
                    f"a quoted field runs from line {line} to {reader.line_num}: "
                    "is a closing quote missing?"
                )
                raise ImportRefused([LineProblem(line, "", why)])
            if len(record) > MAX_COLUMNS:
                why = f"{len(record)} fields: a line has at most {MAX_COLUMNS}"
                raise ImportRefused([LineProblem(line, "", why)])
            if record:
                if len(out) > MAX_ROWS:
                    raise ImportRefused([LineProblem(line, "", f"more than {MAX_ROWS} rows")])
                out.append((line, record))
            line = reader.line_num + 1
    except csv.Error as exc:  # a field past csv's limit, say
        raise ImportRefused([LineProblem(line, "", f"unreadable CSV: {exc}")]) from None
    return out


def _header_problems(header: list[str], required: tuple[str, ...]) -> list[LineProblem]:
    counts = Counter(header)
    return [LineProblem(1, c, "missing column") for c in required if c not in counts] + [
        LineProblem(1, c, "the same column twice") for c in sorted(counts) if counts[c] > 1
    ]


def _rows(text: str, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """The file's lines as (line number, {column: value}); the header, a line with more fields
    than columns, or one csv cannot read is refused with its number."""
    records = csv_records(text)
    header = [h.strip() for h in records[0][1]] if records and records[0][0] == 1 else []
    problems = _header_problems(header, required)
    if problems:
        raise ImportRefused(problems)
    out = []
    for n, fields in records[1:]:
        if any(f.strip() for f in fields[len(header) :]):  # empty extra fields are harmless
            message = f"{len(fields)} fields but {len(header)} columns (quote commas)"
            raise ImportRefused([LineProblem(n, "", message)])
        values = [f.strip() for f in fields[: len(header)]]
        values += [""] * (len(header) - len(values))
        out.append((n, dict(zip(header, values, strict=True))))
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
    return [m for _, m in parse_members_at(scheme, text)]


def parse_members_at(scheme: str, text: str) -> list[tuple[int, Member]]:
    """`parse_members`, each member with the line it was read from."""
    problems: list[LineProblem] = []
    members: list[tuple[int, Member]] = []
    ids: dict[str, int] = {}
    for line, row in _rows(text, ("id", "display_name")):
        try:
            roles = frozenset(Role(r.strip()) for r in row.get("roles", "").split(";") if r.strip())
        except ValueError:
            problems.append(
                LineProblem(line, "roles", "roles are member, coordinator, scheme-admin")
            )
            continue
        m = Member(
            scheme,
            row["id"],
            row["display_name"],
            roles or frozenset({Role.MEMBER}),
            row.get("contact", ""),
            row.get("card_number", ""),
        )
        problems += [LineProblem(line, f, msg) for f, msg in member_problems(m)]
        if m.id in ids:
            problems.append(LineProblem(line, "id", f"the same id as line {ids[m.id]}"))
        ids.setdefault(m.id, line)
        members.append((line, m))
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
        if not re.fullmatch(r"[0-9]{1,5}", row["minutes"]):
            problems.append(LineProblem(line, "minutes", "a whole number of minutes"))
            continue
        for field_name in ("member", "activity"):
            if not row[field_name]:
                problems.append(LineProblem(line, field_name, "required"))
        if len(row.get("note", "")) > MAX_NOTE:
            problems.append(LineProblem(line, "note", f"at most {MAX_NOTE} characters"))
        out.append(
            HoursRow(
                line,
                key,
                row["member"],
                row["activity"],
                day,
                int(row["minutes"]),
                row.get("receiver") or None,
                row.get("note", ""),
            )
        )
    if problems:
        raise ImportRefused(problems)
    return out


def hours_csv(rows: list[HoursRow]) -> str:
    """`rows` as an hours CSV (`HOURS_COLUMNS`), in their order, for `TimeBank.import_hours`.

    `parse_hours` of the result gives back the same rows and keys; its line n is `rows[n - 2]`.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HOURS_COLUMNS)
    for r in rows:
        writer.writerow(
            [r.member, r.activity, r.day.isoformat(), r.minutes, r.receiver or "", r.note]
        )
    return out.getvalue()


def source_lines(problems: list[LineProblem], rows: list[HoursRow]) -> list[LineProblem]:
    """Problems found in `hours_csv(rows)`, renumbered to the lines `rows` were read from."""
    return [
        LineProblem(rows[p.line - 2].line, p.field, p.message) if 2 <= p.line < len(rows) + 2 else p
        for p in problems
    ]


def parse_timeoverflow_members(scheme_id: str, text: str) -> list[Member]:
    """Members from TimeOverflow's "Users" CSV export (see the module's notes)."""
    return [m for _, m in parse_timeoverflow_members_at(scheme_id, text)]


def parse_timeoverflow_members_at(scheme_id: str, text: str) -> list[tuple[int, Member]]:
    """`parse_timeoverflow_members`, each member with the export's line it was read from."""
    rows, problems = _export_rows(text, TO_MEMBER_COLUMNS, ("N", "Name"))
    members: list[tuple[int, Member]] = []
    ids: dict[str, int] = {}
    for line, row in rows:
        m = _to_member(scheme_id, row)
        problems += [LineProblem(line, f, msg) for f, msg in _to_member_problems(m, row["N"])]
        if m.id in ids:
            problems.append(LineProblem(line, "N", f"the same member number as line {ids[m.id]}"))
        ids.setdefault(m.id, line)
        members.append((line, m))
    if problems:
        raise ImportRefused(problems)
    return members


def parse_timeoverflow_transfers(text: str, *, activity: str) -> list[HoursRow]:
    """Hours from TimeOverflow's "All transfers" CSV export, all booked to `activity`.

    Rows come oldest first (TimeOverflow lists newest first), so a replay passes through the
    balances members really had; `HoursRow.line` is still the export's line. Keys are those
    `parse_hours(hours_csv(rows))` gives, so re-importing the same export writes nothing.
    """
    if not activity or activity != activity.strip():
        raise ImportRefused([LineProblem(0, "activity", "an activity code")])
    rows, problems = _export_rows(text, TO_TRANSFER_COLUMNS, TO_TRANSFER_COLUMNS)
    mapped: list[tuple[int, dict[str, str]]] = []
    for line, row in rows:
        fields, found = _transfer_fields(row, activity)
        problems += [LineProblem(line, f, msg) for f, msg in found]
        if fields is not None:
            mapped.append((line, fields))
    if problems:
        raise ImportRefused(problems)
    mapped.sort(key=lambda lr: (lr[1]["date"], -lr[0]))
    keys = _keys("import", mapped)
    return [_hours_row(line, key, f) for (line, f), key in zip(mapped, keys, strict=True)]


def _records(text: str) -> list[list[str]]:
    """The non-blank CSV records of `text`, header first (see `csv_records`)."""
    return [record for _, record in csv_records(text)]


def _export_rows(
    text: str, known: tuple[str, ...], required: tuple[str, ...]
) -> tuple[list[tuple[int, dict[str, str]]], list[LineProblem]]:
    """Rows keyed by header, after the header is checked; and lines of the wrong width."""
    records = _records(text)
    header = [h.strip() for h in records[0]] if records else []
    bad = [LineProblem(1, c, "missing column") for c in required if c not in header]
    bad += [
        LineProblem(1, h, f"not a column of this export ({', '.join(known)})")
        for h in header
        if h not in known
    ]
    bad += [
        LineProblem(1, h, "a second column of this name")
        for i, h in enumerate(header)
        if h in header[:i]
    ]
    if bad:
        raise ImportRefused(bad)
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[LineProblem] = []
    for line, record in enumerate(records[1:], start=2):
        if len(record) != len(header):
            problems.append(LineProblem(line, "", f"{len(record)} fields, not {len(header)}"))
            continue
        rows.append((line, {h: v.strip() for h, v in zip(header, record, strict=True)}))
    return rows, problems


def _to_member(scheme_id: str, row: dict[str, str]) -> Member:
    contacts = (row.get(c, "") for c in ("Email", "Phone", "Alternative Phone"))
    return Member(
        scheme_id,
        f"to-{row['N']}",
        row["Name"],
        frozenset({Role.MEMBER}),
        "; ".join(c for c in contacts if c),
    )


def _to_member_problems(m: Member, number: str) -> list[tuple[str, str]]:
    out = [
        ("Name" if f == "display_name" else f, msg) for f, msg in member_problems(m) if f != "id"
    ]
    if not _TO_NUMBER.fullmatch(number):
        out.insert(0, ("N", "a TimeOverflow member number (digits)"))
    return out


def _transfer_fields(
    row: dict[str, str], activity: str
) -> tuple[dict[str, str] | None, list[tuple[str, str]]]:
    """One transfer as the columns of our hours CSV, or why it cannot be."""
    found: list[tuple[str, str]] = []
    day = _attempt(found, "Date", _to_day, row["Date"])
    minutes = _attempt(found, "Quantity", _to_minutes, row["Quantity"])
    helped = _attempt(found, "From", _to_member_id, row["From"])
    helper = _attempt(found, "To", _to_member_id, row["To"])
    if helper is not None and helper == helped:
        found.append(("To", "the same member as From"))
    if found or day is None or minutes is None or helped is None or helper is None:
        return None, found
    note = " ".join(row["Post"].split())
    if len(note) > MAX_NOTE:
        return None, [("Post", f"at most {MAX_NOTE} characters")]
    return {
        "member": helper,
        "activity": activity,
        "date": day.isoformat(),
        "minutes": str(minutes),
        "receiver": helped,
        "note": note,
    }, []


def _attempt(
    found: list[tuple[str, str]], field: str, parse: Callable[[str], _T], text: str
) -> _T | None:
    try:
        return parse(text)
    except ValueError as e:
        found.append((field, str(e)))
        return None


def _to_day(text: str) -> date:
    m = _TO_DATE.fullmatch(text)
    try:
        if m:
            return date.fromisoformat(m[1])
    except ValueError:
        pass
    raise ValueError("a TimeOverflow date, like 2024-03-05 14:22:01 +0100")


def _to_minutes(text: str) -> int:
    if text == "0":
        raise ValueError("no time to import (TimeOverflow shows under a minute as 0)")
    m = _TO_QUANTITY.fullmatch(text)
    if not m:
        raise ValueError("hours and minutes, like 1:30")
    return int(m[1]) * 60 + int(m[2])


def _to_member_id(text: str) -> str:
    if text == TO_INACTIVE:
        raise ValueError(
            "an inactive member: the export does not say who; reactivate them in TimeOverflow "
            "and export again, or leave the line out"
        )
    if text == TO_DELETED:
        raise ValueError("a deleted member: the export does not say who; leave the line out")
    m = _TO_MEMBER.fullmatch(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a member (shown as 'Name (number)'): most likely the time bank's "
            "own account, which has no counterpart here; leave the line out or move the hours "
            "to a member in TimeOverflow"
        )
    return f"to-{m[2]}"


def _hours_row(line: int, key: str, f: dict[str, str]) -> HoursRow:
    return HoursRow(
        line,
        key,
        f["member"],
        f["activity"],
        date.fromisoformat(f["date"]),
        int(f["minutes"]),
        f["receiver"] or None,
        f["note"],
    )


@dataclass(frozen=True, slots=True)
class PreviewLine:
    """One line of a file as an import would read it: its values, and what is wrong with it
    (nothing, when it would be imported)."""

    line: int
    values: dict[str, str]
    problems: tuple[LineProblem, ...] = ()


def _numbered(text: str) -> list[tuple[int, list[str]]]:
    """The file's non-blank records, numbered as `_rows` numbers them (the header is 1)."""
    records = csv_records(text)
    return records if records and records[0][0] == 1 else [(1, []), *records]


def _preview_rows(text: str, required: tuple[str, ...]) -> list[PreviewLine]:
    """Every line of the file with its values; a line of the wrong width keeps its problem
    instead of stopping the reading. The header's problems refuse the whole file."""
    records = _numbered(text)
    header = [h.strip() for h in records[0][1]] if records else []
    doubled = sorted({h for h in header if header.count(h) > 1})
    missing = [c for c in required if c not in header]
    if missing or doubled:
        raise ImportRefused(
            [LineProblem(1, c, "missing column") for c in missing]
            + [LineProblem(1, c, "the same column twice") for c in doubled]
        )
    out: list[PreviewLine] = []
    for n, fields in records[1:]:
        values = [f.strip() for f in fields[: len(header)]]
        values += [""] * (len(header) - len(values))
        row = dict(zip(header, values, strict=True))
        if any(f.strip() for f in fields[len(header) :]):
            message = f"{len(fields)} fields but {len(header)} columns (quote commas)"
            out.append(PreviewLine(n, row, (LineProblem(n, "", message),)))
        else:
            out.append(PreviewLine(n, row))
    return out


def preview_members(scheme: str, text: str) -> list[PreviewLine]:
    """`parse_members`' checks line by line, without refusing the file for one bad line."""
    out: list[PreviewLine] = []
    ids: dict[str, int] = {}
    for p in _preview_rows(text, ("id", "display_name")):
        found = list(p.problems)
        if not found:
            row = p.values
            try:
                names = [r.strip() for r in row.get("roles", "").split(";") if r.strip()]
                roles = frozenset(Role(r) for r in names) or frozenset({Role.MEMBER})
                m = Member(
                    scheme,
                    row["id"],
                    row["display_name"],
                    roles,
                    row.get("contact", ""),
                    row.get("card_number", ""),
                )
                found += [LineProblem(p.line, f, msg) for f, msg in member_problems(m)]
            except ValueError:
                found.append(
                    LineProblem(p.line, "roles", "roles are member, coordinator, scheme-admin")
                )
            if row["id"] in ids:
                found.append(LineProblem(p.line, "id", f"the same id as line {ids[row['id']]}"))
            ids.setdefault(row["id"], p.line)
        out.append(PreviewLine(p.line, p.values, tuple(found)))
    return out


def preview_hours(text: str) -> list[PreviewLine]:
    """`parse_hours`' checks line by line, without refusing the file for one bad line."""
    out: list[PreviewLine] = []
    for p in _preview_rows(text, ("member", "activity", "date", "minutes")):
        found = list(p.problems)
        if not found:
            row = p.values
            try:
                date.fromisoformat(row["date"])
            except ValueError:
                found.append(LineProblem(p.line, "date", "a date as YYYY-MM-DD"))
            if not re.fullmatch(r"[0-9]{1,5}", row["minutes"]):
                found.append(LineProblem(p.line, "minutes", "a whole number of minutes"))
            found += [
                LineProblem(p.line, f, "required") for f in ("member", "activity") if not row[f]
            ]
            if len(row.get("note", "")) > MAX_NOTE:
                found.append(LineProblem(p.line, "note", f"at most {MAX_NOTE} characters"))
        out.append(PreviewLine(p.line, p.values, tuple(found)))
    return out


def keep_lines(text: str, lines: set[int]) -> str:
    """The file with its header and only the given lines (numbered as `PreviewLine.line`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for n, record in _numbered(text):
        if n == 1 or n in lines:
            writer.writerow(record)
    return out.getvalue()


# ---- what a worker process gives back to the event loop --------------------------------------
# The writing imports parse in a worker process. What comes back is unpickled by the process
# pool's thread holding the interpreter lock, so 50,000 dataclasses held every request for
# seconds: the worker gives back the parsed rows as JSON bytes instead, in chunks of PACK rows,
# which the loop turns back into rows a chunk at a time, letting other requests in between.

PACK = 1000  # rows a chunk


def _chunks(rows: list[list[object]]) -> list[bytes]:
    return [json.dumps(rows[i : i + PACK]).encode() for i in range(0, len(rows), PACK)]


def pack_hours(rows: list[HoursRow]) -> list[bytes]:
    """`rows` as JSON chunks, for `unpack_hours`."""
    return _chunks(
        [
            [r.line, r.key, r.member, r.activity, r.day.isoformat(), r.minutes, r.receiver, r.note]
            for r in rows
        ]
    )


def unpack_hours(chunk: bytes) -> list[HoursRow]:
    return [
        HoursRow(line, key, member, activity, date.fromisoformat(day), minutes, receiver, note)
        for line, key, member, activity, day, minutes, receiver, note in json.loads(chunk)
    ]


def pack_members(members: list[tuple[int, Member]]) -> list[bytes]:
    """`members` (each with its line) as JSON chunks, for `unpack_members`."""
    return _chunks(
        [
            [
                line,
                m.scheme,
                m.id,
                m.display_name,
                sorted(r.value for r in m.roles),
                m.contact,
                m.card_number,
                m.attributes,
                m.erased,
            ]
            for line, m in members
        ]
    )


def unpack_members(chunk: bytes) -> list[tuple[int, Member]]:
    return [
        (
            line,
            Member(
                scheme,
                member_id,
                name,
                frozenset(Role(r) for r in roles),
                contact,
                card,
                attributes,
                erased,
            ),
        )
        for line, scheme, member_id, name, roles, contact, card, attributes, erased in json.loads(
            chunk
        )
    ]


def pack_problems(problems: list[LineProblem]) -> list[bytes]:
    """`problems` as JSON chunks, for `unpack_problems`: a refused file may have 100,000."""
    return _chunks([[p.line, p.field, p.message] for p in problems])


def unpack_problems(chunk: bytes) -> list[LineProblem]:
    return [LineProblem(line, field, message) for line, field, message in json.loads(chunk)]


class PackedRefusal(Exception):
    """`ImportRefused` as it crosses from a worker process: its problems packed."""

    def __init__(self, problems: list[bytes]) -> None:
        super().__init__(f"{len(problems)} chunks of problems")
        self.problems = problems

    def __reduce__(self) -> tuple[type[PackedRefusal], tuple[list[bytes]]]:
        return (PackedRefusal, (self.problems,))


def _packing_refusals(parse: Callable[[], list[bytes]]) -> list[bytes]:
    try:
        return parse()
    except ImportRefused as refused:
        raise PackedRefusal(pack_problems(refused.problems)) from None


def packed_hours(text: str) -> list[bytes]:
    """In a worker process: `parse_hours`, packed; its `ImportRefused` is a `PackedRefusal`."""
    return _packing_refusals(lambda: pack_hours(parse_hours(text)))


def packed_members(scheme: str, text: str) -> list[bytes]:
    """In a worker process: `parse_members_at`, packed (refusals as in `packed_hours`)."""
    return _packing_refusals(lambda: pack_members(parse_members_at(scheme, text)))


def packed_timeoverflow_members(scheme_id: str, text: str) -> list[bytes]:
    """In a worker process: `parse_timeoverflow_members_at`, packed (as `packed_members`)."""
    return _packing_refusals(lambda: pack_members(parse_timeoverflow_members_at(scheme_id, text)))


def timeoverflow_hours_csv(text: str, *, activity: str) -> tuple[str, bytes]:
    """In a worker process: the transfers export as an hours CSV (`hours_csv`), and the export's
    line of each of its rows (an array of ints, for `line_map`); refusals as in
    `packed_hours`."""
    try:
        rows = parse_timeoverflow_transfers(text, activity=activity)
    except ImportRefused as refused:
        raise PackedRefusal(pack_problems(refused.problems)) from None
    return hours_csv(rows), array("q", (r.line for r in rows)).tobytes()


def line_map(lines: bytes | None) -> Callable[[int], int]:
    """The export's line of `hours_csv(rows)`'s line n, given `timeoverflow_hours_csv`'s lines
    (None: the file's own numbers), as `source_lines` renumbers."""
    if lines is None:
        return lambda n: n
    at = array("q")
    at.frombytes(lines)
    return lambda n: at[n - 2] if 2 <= n < len(at) + 2 else n
