"""A partner's statement: settled vouchers in the period, by venue and offer, at usual prices."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger.model import to_us
from partners.codes import new_code
from partners.model import Offer, Venue, Voucher, VoucherState
from partners.statements import credits_text, statement, statement_rows

SCHEME = "taff"
START, END = date(2026, 1, 1), date(2026, 1, 31)
OFFERS = {
    "cinema": Offer("gate", "cinema", "Cinema ticket", 1, 750, date(2025, 1, 1)),
    "class": Offer("gate", "class", "Art class", 2, 1_200, date(2025, 1, 1)),
}
VENUES = {
    "keppoch-st": Venue("gate", "keppoch-st", "The Gate, Keppoch Street"),
    "annexe": Venue("gate", "annexe", "The Gate annexe"),
}


def us(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return to_us(datetime(year, month, day, hour, minute, second, tzinfo=UTC))


def settled(at_us: int, offer: str = "cinema", venue: str | None = "keppoch-st", *,
            partner: str = "gate", scheme: str = SCHEME,
            state: VoucherState = VoucherState.SETTLED) -> Voucher:  # fmt: skip
    minutes = OFFERS[offer].credits * 60 if offer in OFFERS else 60
    return Voucher(scheme, new_code(), "T1", partner, offer, minutes, 1, at_us + 1, state,
                   venue, 2, at_us)  # fmt: skip


def test_the_period_runs_from_midnight_utc_to_the_last_microsecond_of_its_last_day() -> None:
    inside = [settled(us(2026, 1, 1)), settled(us(2026, 2, 1) - 1)]
    outside = [settled(us(2026, 1, 1) - 1), settled(us(2026, 2, 1))]
    s = statement("gate", SCHEME, START, END, inside + outside, OFFERS, VENUES)
    assert s.vouchers == 2 and s.minutes == 120 and s.credits == "2.00"


def test_a_one_day_period_counts_that_day_only() -> None:
    day = date(2026, 1, 15)
    vs = [settled(us(2026, 1, 14, 23, 59, 59)), settled(us(2026, 1, 15, 12)),
          settled(us(2026, 1, 16))]  # fmt: skip
    assert statement("gate", SCHEME, day, day, vs, OFFERS, VENUES).vouchers == 1


def test_only_this_partners_settled_vouchers_of_this_scheme_count() -> None:
    at = us(2026, 1, 10)
    vs = [settled(at), settled(at, partner="blues"), settled(at, scheme="other"),
          settled(at, state=VoucherState.PENDING), settled(at, state=VoucherState.VOIDED),
          settled(at, state=VoucherState.EXPIRED)]  # fmt: skip
    s = statement("gate", SCHEME, START, END, vs, OFFERS, VENUES)
    assert s.vouchers == 1 and s.usual_price_pence == 750


def test_totals_by_venue_and_offer_add_up_to_the_statement_totals() -> None:
    at = us(2026, 1, 10)
    vs = [settled(at), settled(at), settled(at, "class"), settled(at, "cinema", "annexe")]
    s = statement("gate", SCHEME, START, END, vs, OFFERS, VENUES)
    assert (s.vouchers, s.minutes, s.usual_price_pence) == (4, 300, 3 * 750 + 1_200)
    assert [(v.venue, v.name, v.vouchers, v.minutes, v.usual_price_pence) for v in s.venues] == [
        ("annexe", "The Gate annexe", 1, 60, 750),
        ("keppoch-st", "The Gate, Keppoch Street", 3, 240, 2 * 750 + 1_200),
    ]
    assert [(o.offer, o.title, o.vouchers, o.minutes, o.usual_price_pence) for o in s.offers] == [
        ("cinema", "Cinema ticket", 3, 180, 2_250),
        ("class", "Art class", 1, 120, 1_200),
    ]
    assert [(x.venue, x.offer, x.vouchers) for x in s.lines] == [
        ("annexe", "cinema", 1),
        ("keppoch-st", "cinema", 2),
        ("keppoch-st", "class", 1),
    ]
    for part in (s.venues, s.offers, s.lines):
        assert sum(x.vouchers for x in part) == s.vouchers
        assert sum(x.minutes for x in part) == s.minutes
        assert sum(x.usual_price_pence for x in part) == s.usual_price_pence


def test_an_empty_period_gives_zero_totals_and_a_total_row_only() -> None:
    s = statement("gate", SCHEME, START, END, [], OFFERS, VENUES)
    assert (s.vouchers, s.minutes, s.usual_price_pence, s.venues, s.lines) == (0, 0, 0, (), ())
    rows = statement_rows(s)
    assert len(rows) == 1 and rows[0]["row"] == "total" and rows[0]["credits"] == "0.00"


def test_csv_rows_are_one_per_venue_and_offer_then_a_total_all_with_the_same_columns() -> None:
    at = us(2026, 1, 10)
    s = statement("gate", SCHEME, START, END,
                  [settled(at), settled(at, "class"), settled(at, "cinema", "annexe")],
                  OFFERS, VENUES)  # fmt: skip
    rows = statement_rows(s)
    assert [r["row"] for r in rows] == ["line", "line", "line", "total"]
    assert len({tuple(r) for r in rows}) == 1  # the same keys, in the same order
    assert rows[0] == {
        "scheme": SCHEME, "partner": "gate", "period_start": "2026-01-01",
        "period_end": "2026-01-31", "row": "line", "venue": "annexe",
        "venue_name": "The Gate annexe", "offer": "cinema", "offer_title": "Cinema ticket",
        "vouchers": 1, "minutes": 60, "credits": "1.00", "usual_price_pence": 750,
    }  # fmt: skip
    total = rows[-1]
    assert (total["vouchers"], total["minutes"], total["usual_price_pence"]) == (3, 240, 2_700)
    assert "cash_value" not in total and "usual_price_pence" in total


def test_a_venue_not_given_is_shown_by_its_id_and_an_unrecorded_venue_is_named_as_such() -> None:
    at = us(2026, 1, 10)
    s = statement("gate", SCHEME, START, END, [settled(at, venue="roof"), settled(at, venue=None)],
                  OFFERS, VENUES)  # fmt: skip
    assert [(v.venue, v.name) for v in s.venues] == [("", "(venue not recorded)"), ("roof", "roof")]


def test_a_counted_voucher_whose_offer_is_unknown_is_an_error_not_a_gap() -> None:
    with pytest.raises(ValueError, match="offer 'swim'"):
        statement("gate", SCHEME, START, END, [settled(us(2026, 1, 10), "swim")], OFFERS, VENUES)


def test_a_settled_voucher_without_a_settling_time_is_an_error() -> None:
    v = Voucher(SCHEME, new_code(), "T1", "gate", "cinema", 60, 1, 0, VoucherState.SETTLED,
                "keppoch-st", 2, None)  # fmt: skip
    with pytest.raises(ValueError, match="no settling time"):
        statement("gate", SCHEME, START, END, [v], OFFERS, VENUES)


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before"):
        statement("gate", SCHEME, END, START, [], OFFERS, VENUES)


def test_credits_are_minutes_over_sixty_to_two_places() -> None:
    assert [credits_text(m) for m in (0, 60, 90, 20, 6_000)] == [
        "0.00", "1.00", "1.50", "0.33", "100.00"]  # fmt: skip
