"""Reconciling a partner's till CSV with the ledger's settled vouchers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.model import to_us
from partners.codes import ALPHABET, check_symbol, display, new_code
from partners.model import Offer, Voucher, VoucherState
from partners.reconcile import (
    TillRecord,
    digest,
    parse_till_csv,
    reconcile,
    records_digest,
)
from timebank.imports import MAX_ROWS, ImportRefused, LineProblem

NOON = to_us(datetime(2026, 1, 10, 12, tzinfo=UTC))
HOUR = 3_600_000_000
DAY = 24 * HOUR


def voucher(code: str, at_us: int = NOON, offer: str = "cinema", venue: str = "keppoch-st",
            minutes: int = 60) -> Voucher:  # fmt: skip
    return Voucher("taff", code, "T1", "gate", offer, minutes, 1, at_us + DAY,
                   VoucherState.SETTLED, venue, 2, at_us)  # fmt: skip


def till(code: str, at_us: int = NOON, offer: str = "cinema", venue: str = "keppoch-st",
         line: int = 2) -> TillRecord:  # fmt: skip
    return TillRecord(line, code, at_us, offer, venue)


def problems(text: str) -> list[LineProblem]:
    with pytest.raises(ImportRefused) as refused:
        parse_till_csv(text)
    return refused.value.problems


# Parsing


def test_a_till_file_is_read_with_codes_normalised_and_times_in_utc() -> None:
    a, b, c = new_code(), new_code(), new_code()
    text = (
        "code,datetime,offer,venue,cashier\n"
        f"{display(a).lower()},2026-01-10T12:00:00,cinema,keppoch-st,Ann\n"
        "\n"
        f" {b} ,2026-01-10T13:00:00+01:00,cinema,annexe,Bo\n"
        f"{c},2026-01-10 12:00:00Z,class,annexe,\n"
    )
    records = parse_till_csv(text)
    assert records == [
        TillRecord(2, a, NOON, "cinema", "keppoch-st"),
        TillRecord(4, b, NOON, "cinema", "annexe"),  # line numbers count the blank line
        TillRecord(5, c, NOON, "class", "annexe"),
    ]


def test_every_line_is_checked_and_problems_are_reported_by_line_and_field() -> None:
    good, bad_check = new_code(), new_code()
    wrong = bad_check[:8] + ALPHABET[(ALPHABET.index(bad_check[8]) + 1) % 32]
    text = (
        "code,datetime,offer,venue\n"
        f"{good},2026-01-10T12:00:00,cinema,keppoch-st\n"
        f"{wrong},2026-01-10T12:00:00,cinema,keppoch-st\n"
        f"{new_code()},10/01/2026 12:00,cinema,keppoch-st\n"
        f"{new_code()},2026-01-10,cinema,keppoch-st\n"
        f"{new_code()},2026-01-10T12:00:00,,Keppoch St\n"
        f"{new_code()},2026-01-10T12:00:00\n"
        f"{display(good)},2026-01-11T09:00:00,cinema,keppoch-st\n"
    )
    assert [(p.line, p.field) for p in problems(text)] == [
        (3, "code"),  # a wrong check symbol
        (4, "datetime"),  # not ISO 8601
        (5, "datetime"),  # a date without a time
        (6, "offer"),
        (6, "venue"),
        (7, ""),  # a missing field
        (8, "code"),  # the same code again
    ]
    assert problems(text)[-1].message == "the same code as line 2"


def test_a_missing_column_is_a_problem_on_the_header() -> None:
    found = problems("code,datetime,venue\nX,2026-01-10T12:00:00,keppoch-st\n")
    assert found == [LineProblem(1, "offer", "missing column")]
    assert [p.field for p in problems("")] == ["code", "datetime", "offer", "venue"]


def test_a_column_named_twice_is_refused() -> None:
    found = problems("code,datetime,offer,venue,code\n")
    assert [(p.line, p.field) for p in found] == [(1, "code")]


def test_more_than_the_row_limit_is_refused() -> None:
    row = f"{new_code()},2026-01-10T12:00:00,cinema,keppoch-st\n"
    found = problems("code,datetime,offer,venue\n" + row * (MAX_ROWS + 1))
    assert found == [LineProblem(MAX_ROWS + 2, "", f"more than {MAX_ROWS} rows")]


def test_the_digest_is_the_same_for_the_same_records_however_written() -> None:
    a, b = new_code(), new_code()
    one = f"code,datetime,offer,venue\n{a},2026-01-10T12:00:00,cinema,x\n{b},2026-01-10T13:00,c,y\n"
    two = (f"venue,offer,datetime,code\r\n\r\ny,c,2026-01-10T14:00:00+01:00,{display(b).lower()}"
           f"\r\nx,cinema,2026-01-10T12:00:00Z,{display(a)}\r\n")  # fmt: skip
    assert digest(one) == digest(two) == records_digest(parse_till_csv(one))
    assert len(digest(one)) == 64 and int(digest(one), 16) >= 0
    three = one.replace("cinema", "class")
    assert digest(three) != digest(one)


# Reconciling


def test_each_category_is_found_and_mismatches_say_which_fields_differ() -> None:
    ok, moved, late, unknown, missing = (new_code() for _ in range(5))
    records = [
        till(ok, NOON + HOUR, line=2),
        till(moved, offer="class", venue="annexe", line=3),
        till(late, NOON + 2 * DAY, line=4),
        till(unknown, line=5),
    ]
    ledger = [voucher(ok), voucher(moved, minutes=120), voucher(late), voucher(missing, NOON - 1)]
    r = reconcile(records, ledger)
    assert [(m.record.code, m.voucher.code) for m in r.matched] == [(ok, ok)]
    assert [(m.record.code, m.fields) for m in r.mismatches] == [
        (moved, ("offer", "venue")),
        (late, ("datetime",)),
    ]
    assert [t.code for t in r.on_till_not_ledger] == [unknown]
    assert [v.code for v in r.on_ledger_not_till] == [missing]
    t = r.totals
    assert (t.matched.count, t.matched.minutes) == (1, 60)
    assert (t.mismatches.count, t.mismatches.minutes) == (2, 180)
    assert (t.on_till_not_ledger.count, t.on_till_not_ledger.minutes) == (1, None)
    assert (t.on_ledger_not_till.count, t.on_ledger_not_till.minutes) == (1, 60)


def test_till_only_minutes_are_counted_at_the_offers_credits_when_offers_are_given() -> None:
    cinema = Offer("gate", "cinema", "Cinema ticket", 1, 750, datetime(2025, 1, 1).date())
    priced = [till(new_code(), line=2), till(new_code(), line=3)]
    unpriced = [till(new_code(), offer="swim")]
    for records, minutes in ((priced, 120), (unpriced, None)):
        r = reconcile(records, [], offers={"cinema": cinema})
        assert r.totals.on_till_not_ledger.minutes == minutes


@pytest.mark.parametrize("offset", [DAY, -DAY])
def test_times_exactly_the_tolerance_apart_match(offset: int) -> None:
    code = new_code()
    assert len(reconcile([till(code, NOON + offset)], [voucher(code)]).matched) == 1


@pytest.mark.parametrize("offset", [DAY + 1, -DAY - 1])
def test_times_a_microsecond_beyond_the_tolerance_do_not_match(offset: int) -> None:
    code = new_code()
    r = reconcile([till(code, NOON + offset)], [voucher(code)])
    assert not r.matched and r.mismatches[0].fields == ("datetime",)


def test_the_tolerance_can_be_narrowed() -> None:
    code = new_code()
    records, ledger = [till(code, NOON + 2 * HOUR)], [voucher(code)]
    assert reconcile(records, ledger, tolerance=timedelta(hours=2)).matched
    assert reconcile(records, ledger, tolerance=timedelta(hours=1)).mismatches
    with pytest.raises(ValueError, match="negative"):
        reconcile(records, ledger, tolerance=timedelta(seconds=-1))


def test_only_settled_vouchers_with_distinct_codes_are_reconciled() -> None:
    code = new_code()
    pending = Voucher("taff", code, "T1", "gate", "cinema", 60, 1, NOON)
    with pytest.raises(ValueError, match="not settled"):
        reconcile([], [pending])
    with pytest.raises(ValueError, match="twice"):
        reconcile([], [voucher(code), voucher(code)])
    with pytest.raises(ValueError, match="twice"):
        reconcile([till(code, line=2), till(code, line=3)], [])


def test_a_parsed_file_reconciles_against_the_ledger() -> None:
    a, b = new_code(), new_code()
    text = f"code,datetime,offer,venue\n{display(a)},2026-01-10T13:30:00+01:00,cinema,keppoch-st\n"
    r = reconcile(parse_till_csv(text), [voucher(a), voucher(b)])
    assert [m.record.code for m in r.matched] == [a]
    assert [v.code for v in r.on_ledger_not_till] == [b]


codes = st.text(ALPHABET, min_size=8, max_size=8).map(lambda body: body + check_symbol(body))
offers = st.sampled_from(["cinema", "class"])
venues = st.sampled_from(["keppoch-st", "annexe"])
times = st.integers(NOON - 3 * DAY, NOON + 3 * DAY)


@given(
    ledger_side=st.dictionaries(codes, st.tuples(times, offers, venues, st.integers(1, 6))),
    till_side=st.dictionaries(codes, st.tuples(times, offers, venues)),
    shared=st.lists(st.tuples(times, offers, venues), max_size=10),
    hours=st.integers(0, 72),
)
def test_every_voucher_and_till_record_lands_in_exactly_one_category_and_totals_add_up(
    ledger_side: dict[str, tuple[int, str, str, int]],
    till_side: dict[str, tuple[int, str, str]],
    shared: list[tuple[int, str, str]],
    hours: int,
) -> None:
    # Make some ledger codes appear on the till too, so every category is exercised.
    for code, fields in zip(list(ledger_side), shared, strict=False):
        till_side[code] = fields
    ledger = [voucher(c, at, o, v, n * 60) for c, (at, o, v, n) in ledger_side.items()]
    records = [till(c, at, o, v, line=n) for n, (c, (at, o, v)) in enumerate(till_side.items(), 2)]
    r = reconcile(records, ledger, tolerance=timedelta(hours=hours))

    till_codes = ([m.record.code for m in r.matched] + [m.record.code for m in r.mismatches]
                  + [t.code for t in r.on_till_not_ledger])  # fmt: skip
    ledger_codes = ([m.voucher.code for m in r.matched] + [m.voucher.code for m in r.mismatches]
                    + [v.code for v in r.on_ledger_not_till])  # fmt: skip
    assert sorted(till_codes) == sorted(till_side)
    assert sorted(ledger_codes) == sorted(ledger_side)
    for m in r.mismatches:
        assert m.fields and m.record.code == m.voucher.code
    t = r.totals
    assert t.matched.count + t.mismatches.count + t.on_till_not_ledger.count == len(records)
    assert t.matched.count + t.mismatches.count + t.on_ledger_not_till.count == len(ledger)
    assert (t.matched.minutes or 0) + (t.mismatches.minutes or 0) + (
        t.on_ledger_not_till.minutes or 0
    ) == sum(v.minutes for v in ledger)
