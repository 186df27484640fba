"""Scheme policies computed from history: credit expiry and the burn-out guard. Pure.

Credit expiry is first in, first out: credits are spent oldest first, and whatever is left of
credits earned before the cut-off expires. The burn-out guard flags members who gave more than a
threshold of hours in each of several consecutive weeks, for coordinators only.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import date, timedelta


def add_months(day: date, months: int) -> date:
    """`day` moved by whole calendar months, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def expiring_minutes(movements: Iterable[tuple[date, int]], today: date, months: int) -> int:
    """Minutes of an account's credit to expire today, with credits older than `months` expiring.

    `movements` are the account's postings in ledger order as (day, signed minutes): credits
    in, spending and earlier expiries out. Spending uses the oldest credit first (FIFO).
    """
    assert months >= 1
    cutoff = add_months(today, -months)
    lots: deque[tuple[date, int]] = deque()  # (day, minutes left), oldest first
    debt = 0  # spending beyond the credit held (person-to-person banks go below zero)
    for day, amount in movements:
        if amount > 0:
            paid = min(debt, amount)
            debt -= paid
            if amount > paid:
                lots.append((day, amount - paid))
            continue
        owed = -amount
        while owed and lots:
            first, left = lots.popleft()
            used = min(left, owed)
            owed -= used
            if left > used:
                lots.appendleft((first, left - used))
        debt += owed
    return sum(left for day, left in lots if day < cutoff)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())  # ISO weeks start on Monday


def burnout_flags(
    hours: Iterable[tuple[str, date, int]], today: date, minutes_per_week: int, weeks: int
) -> set[str]:
    """Members over `minutes_per_week` in each of the `weeks` weeks up to and including this one.

    `hours` are (member, day, minutes) of confirmed claims. Never shown publicly: the flag is
    for a coordinator to check in with someone who may be doing too much.
    """
    assert minutes_per_week > 0 and weeks >= 1
    recent = {week_start(today) - timedelta(weeks=k) for k in range(weeks)}
    totals: dict[tuple[str, date], int] = defaultdict(int)
    for member, day, minutes in hours:
        start = week_start(day)
        if start in recent:
            totals[(member, start)] += minutes
    members = {m for m, _ in totals}
    return {m for m in members if all(totals[(m, w)] > minutes_per_week for w in recent)}
