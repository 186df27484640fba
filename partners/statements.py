"""A partner's statement for one scheme and period: the vouchers settled at its venues.

Pure: no I/O. The statement counts settled vouchers (state posted) whose settling time falls in
the period, from `period_start` 00:00 UTC to `period_end` 23:59:59.999999 UTC, both days
included. Credits are shown as minutes (exact) and as credits, one credit an hour.

`usual_price_pence` is what members received: the sum, over the vouchers, of the offer's usual
cash price at the venue (`Offer.cash_price_pence`). It is never a cash value of a credit: a
credit is an hour given, not money, and nothing here turns credits into pounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from ledger import to_us

from .model import Offer, Venue, Voucher, VoucherState

NO_VENUE = ""  # the venue of a settled voucher whose venue was not recorded
NO_VENUE_NAME = "(venue not recorded)"


@dataclass(frozen=True, slots=True)
class Line:
    """Vouchers settled for one offer at one venue."""

    venue: str
    venue_name: str
    offer: str
    offer_title: str
    vouchers: int
    minutes: int
    usual_price_pence: int  # what members received at the usual price; not a credit's value


@dataclass(frozen=True, slots=True)
class VenueLine:
    venue: str
    name: str
    vouchers: int
    minutes: int
    usual_price_pence: int


@dataclass(frozen=True, slots=True)
class OfferLine:
    offer: str
    title: str
    vouchers: int
    minutes: int
    usual_price_pence: int


@dataclass(frozen=True, slots=True)
class Statement:
    """Totals, then the same vouchers by venue, by offer and by venue and offer (sorted by id).

    `usual_price_pence` is the usual cash price of the services members received at the venues,
    never a cash value of the credits received.
    """

    partner: str
    scheme: str
    period_start: date
    period_end: date
    vouchers: int
    minutes: int  # credits received, in minutes
    usual_price_pence: int
    venues: tuple[VenueLine, ...]
    offers: tuple[OfferLine, ...]
    lines: tuple[Line, ...]

    @property
    def credits(self) -> str:
        return credits_text(self.minutes)


def credits_text(minutes: int) -> str:
    """Minutes as credits (one an hour) to two decimal places: 90 -> "1.50"."""
    return str((Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def period_bounds_us(period_start: date, period_end: date) -> tuple[int, int]:
    """The period as [first, last] microseconds since the epoch, UTC, both included."""
    if period_end < period_start:
        raise ValueError("the period ends before it starts")
    first = to_us(datetime.combine(period_start, time(), UTC))
    after = to_us(datetime.combine(period_end, time(), UTC) + timedelta(days=1))
    return first, after - 1


def statement(
    partner: str,
    scheme: str,
    period_start: date,
    period_end: date,
    vouchers: Sequence[Voucher],
    offers: Mapping[str, Offer],
    venues: Mapping[str, Venue],
) -> Statement:
    """`partner`'s statement for `scheme` over the period (see the module's notes).

    `offers` and `venues` are the partner's, by id. Vouchers of other partners or schemes, not
    settled, or settled outside the period are left out. A counted voucher whose offer is not in
    `offers` (its usual price is unknown), or a settled voucher without a settling time, is an
    error rather than a silent gap. A venue missing from `venues` is shown by its id.
    """
    first, last = period_bounds_us(period_start, period_end)
    counted: dict[tuple[str, str], list[Voucher]] = {}
    for v in vouchers:
        if v.partner != partner or v.scheme != scheme or v.state is not VoucherState.SETTLED:
            continue
        if v.settled_us is None:
            raise ValueError(f"voucher {v.code} is settled but has no settling time")
        if not first <= v.settled_us <= last:
            continue
        offer = offers.get(v.offer)
        if offer is None or offer.partner != partner:
            raise ValueError(f"voucher {v.code}: offer {v.offer!r} of {partner!r} not given")
        counted.setdefault((v.venue or NO_VENUE, v.offer), []).append(v)

    lines = tuple(
        Line(
            venue,
            _venue_name(venue, venues),
            offer,
            offers[offer].title,
            len(vs),
            sum(v.minutes for v in vs),
            len(vs) * offers[offer].cash_price_pence,
        )
        for (venue, offer), vs in sorted(counted.items())
    )
    by_venue: dict[str, list[Line]] = {}
    by_offer: dict[str, list[Line]] = {}
    for line in lines:
        by_venue.setdefault(line.venue, []).append(line)
        by_offer.setdefault(line.offer, []).append(line)
    return Statement(
        partner,
        scheme,
        period_start,
        period_end,
        sum(x.vouchers for x in lines),
        sum(x.minutes for x in lines),
        sum(x.usual_price_pence for x in lines),
        tuple(VenueLine(venue, ls[0].venue_name, *_sums(ls)) for venue, ls in by_venue.items()),
        tuple(
            OfferLine(offer, ls[0].offer_title, *_sums(ls))
            for offer, ls in sorted(by_offer.items())
        ),
        lines,
    )


def statement_rows(s: Statement) -> list[dict[str, str | int]]:
    """`s` as CSV rows: one a venue and offer, then a total row (`row` is "line" or "total").

    Every row has the same keys. `usual_price_pence` is what members received at the venue's
    usual price, never a cash value of the credits.
    """
    common: dict[str, str | int] = {
        "scheme": s.scheme,
        "partner": s.partner,
        "period_start": s.period_start.isoformat(),
        "period_end": s.period_end.isoformat(),
    }
    rows = [
        common
        | {
            "row": "line",
            "venue": x.venue,
            "venue_name": x.venue_name,
            "offer": x.offer,
            "offer_title": x.offer_title,
            "vouchers": x.vouchers,
            "minutes": x.minutes,
            "credits": credits_text(x.minutes),
            "usual_price_pence": x.usual_price_pence,
        }
        for x in s.lines
    ]
    rows.append(
        common
        | {
            "row": "total",
            "venue": "",
            "venue_name": "",
            "offer": "",
            "offer_title": "",
            "vouchers": s.vouchers,
            "minutes": s.minutes,
            "credits": s.credits,
            "usual_price_pence": s.usual_price_pence,
        }
    )
    return rows


def _venue_name(venue: str, venues: Mapping[str, Venue]) -> str:
    if venue == NO_VENUE:
        return NO_VENUE_NAME
    known = venues.get(venue)
    return known.name if known is not None else venue


def _sums(lines: list[Line]) -> tuple[int, int, int]:
    return (
        sum(x.vouchers for x in lines),
        sum(x.minutes for x in lines),
        sum(x.usual_price_pence for x in lines),
    )
