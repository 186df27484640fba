"""Reconciling a partner's till records with the vouchers the ledger shows as settled.

Pure: no I/O. The till's CSV has a header and the columns `code,datetime,offer,venue` (others
are ignored): the voucher code as typed or scanned, when it was taken (ISO 8601; without an
offset it is UTC), and our ids of the offer and venue. Every line is checked before anything is
returned; problems are `LineProblem`s by line number (the line a record starts on; 1 is the
header) and all of them are raised together in one `ImportRefused`.

Each till record and each settled voucher lands in exactly one category: matched (same code,
offer and venue, times within the tolerance), a mismatch (same code, but the offer, venue or
time differs), on the till but not the ledger, or on the ledger but not the till.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger import to_us
from timebank.imports import ImportRefused, LineProblem, csv_records

from .codes import normalise
from .model import Offer, Voucher, VoucherState, id_problem

COLUMNS = ("code", "datetime", "offer", "venue")
BAD_CODE = "not a voucher code (XXXX-XXXX-C): a symbol is wrong, missing or extra"
BAD_TIME = "a date and time in ISO 8601: 2026-01-05T14:30:00 (UTC) or with an offset, +01:00"


@dataclass(frozen=True, slots=True)
class TillRecord:
    line: int  # where it was read; not part of the digest
    code: str  # canonical (`codes.normalise`)
    at_us: int  # microseconds since the epoch, UTC
    offer: str
    venue: str


@dataclass(frozen=True, slots=True)
class Match:
    record: TillRecord
    voucher: Voucher


@dataclass(frozen=True, slots=True)
class Mismatch:
    record: TillRecord
    voucher: Voucher
    fields: tuple[str, ...]  # which differ, of "offer", "venue", "datetime" (till's columns)


@dataclass(frozen=True, slots=True)
class Tally:
    count: int
    minutes: int | None  # the ledger's minutes; None for till records when offers are unknown


@dataclass(frozen=True, slots=True)
class Totals:
    matched: Tally
    mismatches: Tally
    on_till_not_ledger: Tally
    on_ledger_not_till: Tally


@dataclass(frozen=True, slots=True)
class Reconciliation:
    matched: tuple[Match, ...]  # in till order
    mismatches: tuple[Mismatch, ...]  # in till order
    on_till_not_ledger: tuple[TillRecord, ...]  # in till order
    on_ledger_not_till: tuple[Voucher, ...]  # by settling time, then code
    totals: Totals


def parse_till_csv(text: str) -> list[TillRecord]:
    """A till's records (see the module's notes); raises `ImportRefused` with every problem."""
    records = _records(text)
    if not records:
        raise ImportRefused([LineProblem(1, c, "missing column") for c in COLUMNS])
    header_line, header = records[0]
    names = [h.strip().lower() for h in header]
    bad = [LineProblem(header_line, c, "missing column") for c in COLUMNS if c not in names]
    bad += [
        LineProblem(header_line, h, "a second column of this name")
        for i, h in enumerate(names)
        if h in COLUMNS and h in names[:i]
    ]
    if bad:
        raise ImportRefused(bad)
    where = {c: names.index(c) for c in COLUMNS}
    problems: list[LineProblem] = []
    out: list[TillRecord] = []
    first_seen: dict[str, int] = {}
    for line, fields in records[1:]:
        if len(fields) != len(names):
            problems.append(LineProblem(line, "", f"{len(fields)} fields, not {len(names)}"))
            continue
        row = {c: fields[i].strip() for c, i in where.items()}
        found: list[LineProblem] = []
        code = normalise(row["code"])
        if code is None:
            found.append(LineProblem(line, "code", BAD_CODE))
        elif code in first_seen:
            found.append(LineProblem(line, "code", f"the same code as line {first_seen[code]}"))
        else:
            first_seen[code] = line
        at_us = _moment(row["datetime"])
        if at_us is None:
            found.append(LineProblem(line, "datetime", BAD_TIME))
        for column in ("offer", "venue"):
            problem = id_problem(row[column], column)
            if problem:
                found.append(LineProblem(line, *problem))
        if found or code is None or at_us is None:
            problems += found
            continue
        out.append(TillRecord(line, code, at_us, row["offer"], row["venue"]))
    if problems:
        raise ImportRefused(problems)
    return out


def digest(text: str) -> str:
    """sha256 (hex) of the till file's records, normalised: the same records give the same
    digest however the codes and times were written and in whatever order the lines came."""
    return records_digest(parse_till_csv(text))


def records_digest(records: Sequence[TillRecord]) -> str:
    canonical = "\n".join(
        f"{r.code},{r.at_us},{r.offer},{r.venue}" for r in sorted(records, key=_content)
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def reconcile(
    records: Sequence[TillRecord],
    settled: Sequence[Voucher],
    *,
    tolerance: timedelta = timedelta(hours=24),
    offers: Mapping[str, Offer] | None = None,
) -> Reconciliation:
    """The till's records against the partner's settled vouchers (of one scheme: codes are
    unique only within a scheme). Times match when at most `tolerance` apart, edges included.

    Till-only records carry no minutes; with `offers` (by id) they are counted at the offer's
    credits, otherwise their minutes total is None.
    """
    if tolerance < timedelta(0):
        raise ValueError("a negative tolerance")
    slack = tolerance // timedelta(microseconds=1)
    ledger: dict[str, tuple[Voucher, int]] = {}
    for v in settled:
        if v.state is not VoucherState.SETTLED or v.settled_us is None:
            raise ValueError(f"voucher {v.code} is not settled")
        if v.code in ledger:
            raise ValueError(f"voucher code {v.code} twice: reconcile one scheme at a time")
        ledger[v.code] = (v, v.settled_us)
    matched: list[Match] = []
    mismatches: list[Mismatch] = []
    till_only: list[TillRecord] = []
    seen: set[str] = set()
    for r in sorted(records, key=lambda r: (r.line, r.code)):
        if r.code in seen:
            raise ValueError(f"till code {r.code} twice")
        seen.add(r.code)
        if r.code not in ledger:
            till_only.append(r)
            continue
        v, settled_us = ledger[r.code]
        fields = tuple(
            name
            for name, differs in (
                ("offer", r.offer != v.offer),
                ("venue", r.venue != v.venue),
                ("datetime", abs(r.at_us - settled_us) > slack),
            )
            if differs
        )
        if fields:
            mismatches.append(Mismatch(r, v, fields))
        else:
            matched.append(Match(r, v))
    left = sorted((at, code) for code, (_, at) in ledger.items() if code not in seen)
    ledger_only = [ledger[code][0] for _, code in left]
    till_minutes = None
    if offers is not None and all(r.offer in offers for r in till_only):
        till_minutes = sum(offers[r.offer].credits * 60 for r in till_only)
    totals = Totals(
        Tally(len(matched), sum(m.voucher.minutes for m in matched)),
        Tally(len(mismatches), sum(m.voucher.minutes for m in mismatches)),
        Tally(len(till_only), till_minutes),
        Tally(len(ledger_only), sum(v.minutes for v in ledger_only)),
    )
    return Reconciliation(
        tuple(matched), tuple(mismatches), tuple(till_only), tuple(ledger_only), totals
    )


def _records(text: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on (bounded: see `csv_records`)."""
    return [(line, r) for line, r in csv_records(text) if any(f.strip() for f in r)]


def _moment(text: str) -> int | None:
    """ISO 8601 date and time, naive taken as UTC, as microseconds; None if it is not one."""
    if "T" not in text.upper() and " " not in text:  # a date alone is not a time of sale
        return None
    try:
        moment = datetime.fromisoformat(text)
        return to_us(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError):
        return None


def _content(r: TillRecord) -> tuple[str, int, str, str]:
    return (r.code, r.at_us, r.offer, r.venue)
