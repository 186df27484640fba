"""A scheme's books: issued - redeemed - expired - reversed = outstanding, for every period.

On a real database: a time-credit scheme whose claims are confirmed (one reversed), whose
members take vouchers (settled, voided, expired, pending over a month's end), whose old credit
expires and whose partner's credits are retired; and a person-to-person scheme. Then, pure: the
fold refuses what it cannot classify, and a property over random ledgers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, create_engine

from ledger import InvalidRequest, NotFound, from_us, to_us
from ledger import storage as ledger_storage
from ledger.model import RESERVED_ACCOUNT, Entry, EntryKind, Posting, normalise_postings
from ledger.rules import reserve_postings, resolve_postings, reverse_postings
from ledger.storage import to_sync_url
from partners.model import Agreement, Offer, Partner, Sector, Venue, VoucherState
from partners.service import Partners
from tests.conftest import SERVER_URL, Clock, server_database
from tests.timebank.helpers import activity, open_bank
from timebank.activities import CoSubform
from timebank.books import (
    RETIRED_ACCOUNT,
    Books,
    books_at,
    books_from_entries,
    scheme_books,
    scheme_books_sql,
)
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import EXPIRED_ACCOUNT, ISSUANCE_ACCOUNT, Member, Role, Scheme
from timebank.service import TimeBank

pytestmark = pytest.mark.both_backends

TAFF = Scheme("taff", "Taff", ClaimRules(SchemeModel.TIME_CREDITS), 0, 1)  # credit expires: 1 mo
M2M = Scheme("m2m", "Member to Member", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600)
DEC, JAN, FEB, MAR = (date(2025, 12, 1), date(2025, 12, 31)), (date(2026, 1, 1),
    date(2026, 1, 31)), (date(2026, 2, 1), date(2026, 2, 28)), (date(2026, 3, 1),
    date(2026, 3, 31))  # fmt: skip


def at(clock: Clock, when: datetime) -> date:
    """Move the clock forward to `when` (UTC); its day."""
    moment = to_us(when.replace(tzinfo=UTC))
    assert moment >= clock.now_us
    clock.now_us = moment
    return when.date()


async def claim(bank: TimeBank, scheme: str, draft: ClaimDraft, key: str, *, by: str) -> str:
    """Log and confirm a claim; its id."""
    today = from_us(bank.clock()).date()
    logged = await bank.log_claim(scheme, draft, today=today, idempotency_key=key)
    return (await bank.confirm_claim(scheme, logged.id, by=by)).id


@dataclass
class Story:
    """What the scenario did, as it went."""

    expired: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def partners(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[Partners]:
    async with open_bank(tmp_path / "books.db", clock, db_url if SERVER_URL else None) as bank:
        p = Partners(bank)
        await p.create_tables()
        for scheme in (TAFF, M2M):
            await bank.create_scheme(scheme)
            await bank.add_member(Member(scheme.id, "C1", "Co", frozenset({Role.COORDINATOR})))
            for who in ("A", "B"):
                await bank.add_member(Member(scheme.id, who, f"Member {who}"))
        await bank.add_activity(TAFF.id, activity("garden"), by="C1")
        await bank.add_activity(M2M.id, activity("lifts", CoSubform.MUTUAL_AID), by="C1")
        await bank.ledger.open_account(TAFF.id, RETIRED_ACCOUNT, kind="retired", floor=None,
                                       idempotency_key="retired")  # fmt: skip
        today = from_us(clock()).date()
        await p.add_partner(Partner("gate", "The Gate", Sector.THIRD))
        await p.add_venue(Venue("gate", "keppoch-st", "The Gate, Keppoch Street"))
        await p.add_offer(Offer("gate", "cinema", "Cinema ticket", 1, 750, today))
        await p.agree(Agreement(TAFF.id, "gate", frozenset({"cinema"}),
                                frozenset({"keppoch-st"}), today))  # fmt: skip
        yield p


async def story(p: Partners, clock: Clock) -> Story:
    """January to March 2026 in the Taff scheme (see the expected books in the tests)."""
    bank, out = p.bank, Story()
    day = at(clock, datetime(2026, 1, 1, 10))
    await claim(bank, TAFF.id, ClaimDraft("A", "A", "garden", day, 300), "a1", by="C1")
    await claim(bank, TAFF.id, ClaimDraft("B", "B", "garden", day, 240), "b1", by="C1")
    twice = await claim(bank, TAFF.id, ClaimDraft("B", "B", "garden", day, 60), "b2", by="C1")
    await bank.reverse_claim(TAFF.id, twice, by="C1", reason="logged twice")
    at(clock, datetime(2026, 1, 10, 12))
    v1 = await p.issue(TAFF.id, "A", "gate", "cinema", idempotency_key="v1")
    await p.settle(TAFF.id, v1.code, partner_id="gate", venue_id="keppoch-st",
                   idempotency_key="till")  # fmt: skip
    v2 = await p.issue(TAFF.id, "A", "gate", "cinema", idempotency_key="v2")
    await p.void(TAFF.id, v2.code, idempotency_key="void")
    at(clock, datetime(2026, 1, 31, 23))  # pending over the month's end, then expires
    v3 = await p.issue(TAFF.id, "A", "gate", "cinema", idempotency_key="v3")
    at(clock, datetime(2026, 2, 3, 9))
    assert len(await bank.ledger.expire_due(TAFF.id, now=from_us(clock()))) == 1
    assert (await p.voucher(TAFF.id, v3.code)).state is VoucherState.EXPIRED
    at(clock, datetime(2026, 2, 5, 9))
    await bank.ledger.transfer(TAFF.id, [("partner:gate", -60), (RETIRED_ACCOUNT, 60)],
                               idempotency_key="retire:2026-02")  # fmt: skip
    day = at(clock, datetime(2026, 2, 10, 9))
    out.expired = await bank.expire_credits(TAFF.id, today=day)
    assert out.expired and all(m > 0 for m in out.expired.values())
    day = at(clock, datetime(2026, 2, 15, 9))
    await claim(bank, TAFF.id, ClaimDraft("A", "A", "garden", day, 120), "a2", by="C1")
    at(clock, datetime(2026, 2, 28, 12))  # pending at February's close, settled in March
    v4 = await p.issue(TAFF.id, "A", "gate", "cinema", idempotency_key="v4")
    at(clock, datetime(2026, 3, 1, 9))
    await p.settle(TAFF.id, v4.code, partner_id="gate", venue_id="keppoch-st",
                   idempotency_key="till")  # fmt: skip
    return out


def identity(b: Books) -> bool:
    flows = b.opening_outstanding + b.issued - b.redeemed - b.expired - b.reversed
    return flows == b.closing_outstanding


async def test_the_books_reconcile_month_by_month_and_over_the_quarter(
    partners: Partners, clock: Clock
) -> None:
    told = await story(partners, clock)
    ledger = partners.ledger
    dec, jan, feb, mar = [await scheme_books(ledger, TAFF.id, *p) for p in (DEC, JAN, FEB, MAR)]
    for b in (dec, jan, feb, mar):
        assert b.balanced and identity(b)
    assert (dec.opening_outstanding, dec.closing_outstanding, dec.by_member) == (0, 0, {})
    # January: 600 issued (one claim of 60 reversed), one voucher of 60 settled; A's third
    # voucher is pending at the close: still A's, held in @reserved.
    assert (jan.opening_outstanding, jan.issued, jan.reversed) == (0, 600, 60)
    assert (jan.redeemed, jan.expired, jan.retired, jan.closing_outstanding) == (60, 0, 0, 480)
    assert jan.by_member == {"A": 240, "B": 240} and jan.by_partner == {"gate": 60}
    # February: the voucher expired (back to A), old credit expired, the partner's 60 retired,
    # another 120 issued; A's fourth voucher pending at the close.
    assert feb.opening_outstanding == jan.closing_outstanding
    assert (feb.issued, feb.reversed, feb.redeemed) == (120, 0, 0)
    assert feb.expired == sum(told.expired.values()) and feb.retired == 60
    assert feb.closing_outstanding == 480 + 120 - feb.expired
    assert feb.by_partner == {"gate": 0}
    assert feb.by_member == {
        m: jan.by_member[m] - told.expired.get(m, 0) + (120 if m == "A" else 0) for m in "AB"
    }
    # March: the pending voucher is settled.
    assert mar.opening_outstanding == feb.closing_outstanding
    assert (mar.issued, mar.redeemed, mar.expired, mar.reversed, mar.retired) == (0, 60, 0, 0, 0)
    assert mar.by_partner == {"gate": 60}
    # What each partner redeemed in the period: settlements only (the retirement is not one).
    assert (jan.redeemed_by_partner, feb.redeemed_by_partner) == ({"gate": 60}, {})
    assert mar.redeemed_by_partner == {"gate": 60}
    # The quarter's flows are the months' flows.
    q = await scheme_books(ledger, TAFF.id, JAN[0], MAR[1])
    assert q.balanced and q.opening_outstanding == 0
    assert q.closing_outstanding == mar.closing_outstanding and q.by_member == mar.by_member
    for name in ("issued", "redeemed", "expired", "reversed", "retired"):
        assert getattr(q, name) == sum(getattr(b, name) for b in (jan, feb, mar)), name
    # Pinned to a checkpoint's size, the books stop there, whatever the period says.
    head = await ledger.size(TAFF.id)
    pinned = await scheme_books(ledger, TAFF.id, JAN[0], MAR[1], size=head - 1)
    assert pinned.balanced and pinned.redeemed == q.redeemed - 60  # March's settlement is last
    # ... and so are the days' (each period's opening is the previous one's closing).
    days = [
        await scheme_books(ledger, TAFF.id, d, d)
        for d in (JAN[0] + timedelta(n) for n in range((MAR[1] - JAN[0]).days + 1))
    ]
    assert all(b.balanced for b in days)
    for before, after in pairwise(days):
        assert after.opening_outstanding == before.closing_outstanding
    flows = sum(b.issued - b.redeemed - b.expired - b.reversed for b in days)
    assert flows == mar.closing_outstanding == 180


async def test_by_member_and_by_partner_are_the_ledgers_balances_and_reservations(
    partners: Partners, clock: Clock
) -> None:
    await story(partners, clock)
    ledger = partners.ledger
    await partners.issue(TAFF.id, "A", "gate", "cinema", idempotency_key="pending-now")
    assert await ledger.pending(TAFF.id, "member:A") == 60
    today = from_us(clock()).date()
    books = await scheme_books(ledger, TAFF.id, MAR[0], today)
    whole = await scheme_books(ledger, TAFF.id, JAN[0], today)
    members, partner_ids = 0, 0
    for account in await ledger.accounts(TAFF.id):
        who = account.code.partition(":")[2]
        if account.kind == "member":
            held = account.balance + await ledger.pending(TAFF.id, account.code)
            assert books.by_member.get(who, 0) == held, who
            members += held
        elif account.kind == "partner":
            assert books.by_partner[who] == account.balance
            partner_ids += 1
    assert books.by_member == {"A": 180, "B": 0} and partner_ids == 1
    assert members == books.closing_outstanding == 180
    assert (await ledger.account(TAFF.id, EXPIRED_ACCOUNT)).balance == whole.expired
    issuance = await ledger.account(TAFF.id, ISSUANCE_ACCOUNT)
    assert -issuance.balance == whole.issued - whole.reversed  # net of reversals
    retired = await ledger.account(TAFF.id, RETIRED_ACCOUNT)
    assert retired.balance == whole.retired == 60
    assert sum(whole.by_partner.values()) + whole.retired == whole.redeemed


async def test_streamed_books_are_the_books_of_the_same_entries(
    partners: Partners, clock: Clock
) -> None:
    await story(partners, clock)
    ledger = partners.ledger
    entries = [await ledger.entry(TAFF.id, s) for s in range(1, await ledger.size(TAFF.id) + 1)]
    for start, end in (JAN, FEB, MAR, (FEB[0], MAR[1])):
        assert await scheme_books(ledger, TAFF.id, start, end) == books_from_entries(
            TAFF.id, start, end, entries
        )


async def test_books_summed_in_the_database_are_the_folded_books(
    partners: Partners, clock: Clock
) -> None:
    """`scheme_books_sql` (what reports use) against the fold, over every period and every
    checkpoint size of the scenario, with a voucher pending at the end and a person-to-person
    scheme beside it; then both refuse an account they cannot classify, naming its entry."""
    await story(partners, clock)
    bank, ledger = partners.bank, partners.ledger
    await partners.issue(TAFF.id, "A", "gate", "cinema", idempotency_key="pending-now")
    day = at(clock, datetime(2026, 3, 2, 10))
    await claim(bank, M2M.id, ClaimDraft("A", "A", "lifts", day, 60, "B"), "k1", by="B")
    wrong = await claim(bank, M2M.id, ClaimDraft("B", "B", "lifts", day, 30, "A"), "k2", by="A")
    await bank.reverse_claim(M2M.id, wrong, by="C1", reason="never happened")
    today = from_us(clock()).date()
    days = [JAN[0] + timedelta(n) for n in range((today - JAN[0]).days + 1)]
    periods = [DEC, JAN, FEB, MAR, (JAN[0], MAR[1]), (FEB[0], today), *((d, d) for d in days)]
    for scheme in (TAFF.id, M2M.id):
        head = await ledger.size(scheme)
        for start, end in periods:
            # On a server each call connects afresh (some 100 s for the whole sweep): there a
            # single day is summed whole only, the longer periods still at every size.
            every = not SERVER_URL or start != end
            for size in (None, *range(head + 2)) if every else (None,):
                folded = await scheme_books(ledger, scheme, start, end, size=size)
                summed = await scheme_books_sql(ledger, scheme, start, end, size=size)
                assert summed == folded, (scheme, start, end, size)
    with pytest.raises(InvalidRequest) as refused:
        await scheme_books_sql(ledger, TAFF.id, date(2026, 2, 1), date(2026, 1, 31))
    assert refused.value.field == "end"
    with pytest.raises(NotFound):
        await scheme_books_sql(ledger, "nowhere", *JAN)
    await ledger.open_account(TAFF.id, "scheme:fees", kind="fees", floor=None,
                              idempotency_key="fees")  # fmt: skip
    untouched = await scheme_books_sql(ledger, TAFF.id, JAN[0], today)  # opened, never posted
    assert untouched == await scheme_books(ledger, TAFF.id, JAN[0], today)
    fee = await ledger.transfer(TAFF.id, [("member:A", -10), ("scheme:fees", 10)],
                                idempotency_key="fee")  # fmt: skip
    for books in (scheme_books, scheme_books_sql):
        with pytest.raises(ValueError, match=f"entry {fee.seq} of taff posts to 'scheme:fees'"):
            await books(ledger, TAFF.id, JAN[0], today)
        assert (await books(ledger, TAFF.id, *JAN)).balanced  # the fee is after January


async def test_a_person_to_person_scheme_issues_nothing_and_still_balances(
    partners: Partners, clock: Clock
) -> None:
    bank = partners.bank
    day = at(clock, datetime(2026, 1, 5, 10))
    lift = ClaimDraft("A", "A", "lifts", day, 60, "B")
    back = ClaimDraft("B", "B", "lifts", day, 30, "A")
    await claim(bank, M2M.id, lift, "k1", by="B")
    await claim(bank, M2M.id, back, "k2", by="A")
    wrong = await claim(bank, M2M.id, ClaimDraft("A", "A", "lifts", day, 45, "B"), "k3", by="B")
    await bank.reverse_claim(M2M.id, wrong, by="C1", reason="never happened")
    books = await scheme_books(partners.ledger, M2M.id, *JAN)
    assert books.balanced and identity(books)
    assert (books.issued, books.redeemed, books.expired, books.reversed) == (0, 0, 0, 0)
    assert (books.opening_outstanding, books.closing_outstanding) == (0, 0)
    assert books.by_member == {"A": 30, "B": -30} and books.by_partner == {}
    assert sum(books.by_member.values()) == books.closing_outstanding


async def test_bad_periods_and_unknown_schemes_are_refused(partners: Partners) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await scheme_books(partners.ledger, TAFF.id, date(2026, 2, 1), date(2026, 1, 31))
    assert refused.value.field == "end"
    with pytest.raises(NotFound):
        await scheme_books(partners.ledger, "nowhere", *JAN)
    with pytest.raises(InvalidRequest):
        books_from_entries("Not A Ledger", *JAN, [])


# ---- pure ------------------------------------------------------------------------------------

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000_000


def entry(
    seq: int, kind: EntryKind, hours: int, postings: tuple[Posting, ...], *, ref: int = 0,
    expires_us: int = 0, target: str = "",
) -> Entry:  # fmt: skip
    at_us = T0 + hours * HOUR
    return Entry("s", seq, b"", kind, at_us, "", ref, expires_us, target, postings, ())


def transfer(seq: int, hours: int, *moves: tuple[str, int]) -> Entry:
    return entry(seq, EntryKind.TRANSFER, hours, normalise_postings(list(moves)))


def test_an_account_the_books_do_not_know_fails_loudly() -> None:
    issued = transfer(1, 1, (ISSUANCE_ACCOUNT, -60), ("member:a", 60))
    fee = transfer(2, 2, ("member:a", -10), ("scheme:fees", 10))
    assert books_from_entries("s", *JAN, [issued]).closing_outstanding == 60
    with pytest.raises(ValueError, match="scheme:fees"):
        books_from_entries("s", *JAN, [issued, fee])


def test_entries_out_of_order_or_resolving_nothing_fail_loudly() -> None:
    issued = transfer(2, 1, (ISSUANCE_ACCOUNT, -60), ("member:a", 60))
    with pytest.raises(AssertionError):
        books_from_entries("s", *JAN, [issued, transfer(1, 2, ("member:a", -1), ("member:b", 1))])
    post = entry(3, EntryKind.POST, 3, (Posting(RESERVED_ACCOUNT, -60), Posting("partner:p", 60)),
                 ref=1)  # fmt: skip
    with pytest.raises(AssertionError):
        books_from_entries("s", *JAN, [issued, post])


def test_a_voucher_and_a_retirement_reversed_in_the_period() -> None:
    reserve = entry(2, EntryKind.RESERVE, 2, reserve_postings("member:a", 60),
                    expires_us=T0 + 48 * HOUR, target="partner:p")  # fmt: skip
    retire = transfer(4, 4, ("partner:p", -60), (RETIRED_ACCOUNT, 60))
    entries = [
        transfer(1, 1, (ISSUANCE_ACCOUNT, -100), ("member:a", 100)),
        reserve,
        entry(3, EntryKind.POST, 3, resolve_postings(reserve, EntryKind.POST), ref=2),
        retire,
        entry(5, EntryKind.REVERSE, 5, reverse_postings(retire), ref=4),
    ]
    books = books_from_entries("s", *JAN, entries)
    assert (books.issued, books.redeemed, books.retired, books.reversed) == (100, 60, 0, 0)
    assert books.by_partner == {"p": 60} and books.by_member == {"a": 40}
    assert books_from_entries("s", *JAN, entries[:2]).by_member == {"a": 100}  # reserved: held


def test_entries_after_the_period_are_not_read() -> None:
    def entries() -> Iterator[Entry]:
        yield transfer(1, 1, (ISSUANCE_ACCOUNT, -60), ("member:a", 60))
        yield transfer(2, 24 * 40, (ISSUANCE_ACCOUNT, -60), ("member:a", 60))
        raise AssertionError("read past the period")

    books = books_from_entries("s", *JAN, entries())
    assert (books.issued, books.closing_outstanding) == (60, 60)


@dataclass
class Model:
    """A tiny time-credit scheme driven by random operations: the entries it makes (by the
    ledger's own rules) and, independently, what the books should say of them."""

    entries: list[Entry] = field(default_factory=list)
    hours: int = 0
    balances: dict[str, int] = field(default_factory=dict)
    transfers: dict[int, tuple[str, int, tuple[Posting, ...]]] = field(default_factory=dict)
    pending: dict[int, Entry] = field(default_factory=dict)
    flows: list[tuple[int, str, int]] = field(default_factory=list)  # (hour, flow, minutes)
    holdings: list[tuple[int, dict[str, int], dict[str, int]]] = field(default_factory=list)

    def add(
        self, kind: EntryKind, posts: tuple[Posting, ...], *, ref: int = 0, expires_us: int = 0,
        target: str = "",
    ) -> Entry:  # fmt: skip
        e = entry(len(self.entries) + 1, kind, self.hours, posts, ref=ref, expires_us=expires_us,
                  target=target)  # fmt: skip
        self.entries.append(e)
        for p in posts:
            self.balances[p.account] = self.balances.get(p.account, 0) + p.amount
        return e

    def snapshot(self) -> None:
        """What each member holds (reservations included) and each partner has, now."""
        members = {a: b for a, b in self.balances.items() if a.startswith("member:")}
        for r in self.pending.values():
            debit = next(p for p in r.postings if p.account != RESERVED_ACCOUNT)
            members[debit.account] -= debit.amount
        partners = {a: b for a, b in self.balances.items() if a.startswith("partner:")}
        self.holdings.append((self.hours, members, partners))

    def flow(self, name: str, minutes: int) -> None:
        self.flows.append((self.hours, name, minutes))

    def move(self, category: str, *moves: tuple[str, int]) -> None:
        if any(self.balances.get(a, 0) + m < 0 for a, m in moves if not a.startswith("scheme:")):
            return  # members and partners have a floor of 0
        e = self.add(EntryKind.TRANSFER, normalise_postings(list(moves)))
        self.transfers[e.seq] = (category, abs(moves[0][1]), e.postings)
        self.flow(category, abs(moves[0][1]))

    def step(self, op: int, who: int, minutes: int, pick: int, later: int) -> None:
        self.hours += later
        made = len(self.entries)
        self._step(op, who, minutes, pick)
        if len(self.entries) > made:
            self.snapshot()

    def _step(self, op: int, who: int, minutes: int, pick: int) -> None:
        """One operation; `minutes` caps what it takes from an account (issuing gives it)."""
        member, other = f"member:m{who}", f"member:m{(who + 1) % 3}"
        partner = f"partner:p{who % 2}"
        held = min(minutes, self.balances.get(member, 0))
        if op == 0:
            self.move("issued", (ISSUANCE_ACCOUNT, -minutes), (member, minutes))
        elif op == 1 and held:
            self.move("expired", (member, -held), (EXPIRED_ACCOUNT, held))
        elif op == 2 and held:
            self.move("p2p", (member, -held), (other, held))
        elif op == 3 and (kept := min(minutes, self.balances.get(partner, 0))):
            self.move("retired", (partner, -kept), (RETIRED_ACCOUNT, kept))
        elif op == 4 and held:
            minutes = held
            e = self.add(EntryKind.RESERVE, reserve_postings(member, minutes),
                         expires_us=T0 + (self.hours + 48) * HOUR, target=partner)  # fmt: skip
            self.pending[e.seq] = e
        elif op == 5 and self.transfers:
            seq = sorted(self.transfers)[pick % len(self.transfers)]
            category, amount, posts = self.transfers[seq]
            if any(self.balances.get(p.account, 0) - p.amount < 0 for p in posts
                   if not p.account.startswith("scheme:")):  # fmt: skip
                return
            del self.transfers[seq]
            self.add(EntryKind.REVERSE, reverse_postings(entry(seq, EntryKind.TRANSFER, 0, posts)),
                     ref=seq)  # fmt: skip
            sign = {"issued": 1, "expired": -1}.get(category, 0)
            self.flow("reversed", sign * amount)
            if category == "retired":
                self.flow("retired", -amount)
        elif op in (6, 7, 8) and self.pending:
            seq = sorted(self.pending)[pick % len(self.pending)]
            r = self.pending[seq]
            due = T0 + self.hours * HOUR >= r.expires_us
            kind = {6: EntryKind.POST, 7: EntryKind.VOID, 8: EntryKind.EXPIRE}[op]
            if (kind is EntryKind.POST and due) or (kind is EntryKind.EXPIRE and not due):
                return
            del self.pending[seq]
            self.add(kind, resolve_postings(r, kind), ref=seq)
            if kind is EntryKind.POST:
                self.flow("redeemed", r.amount_for(RESERVED_ACCOUNT))

    def expected(self, start: date, end: date) -> dict[str, object]:
        lo, hi = [(d.toordinal() - date(2026, 1, 1).toordinal()) * 24 for d in (start, end)]
        hi += 24
        out: dict[str, object] = {n: 0 for n in ("issued", "redeemed", "expired", "reversed")}
        out["retired"] = 0
        for hour, name, minutes in self.flows:
            if lo <= hour < hi and name != "p2p":
                out[name] = int(str(out[name])) + minutes
        members: dict[str, int] = {}
        partners: dict[str, int] = {}
        for hour, m, p in self.holdings:
            if hour < hi:
                members, partners = m, p
        out["by_member"] = {a.removeprefix("member:"): b for a, b in members.items()}
        out["by_partner"] = {a.removeprefix("partner:"): b for a, b in partners.items()}
        return out


OPS = st.lists(  # (operation, member, minutes, which transfer or reservation, hours later)
    st.tuples(
        st.sampled_from([0, 0, 1, 2, 3, 4, 4, 5, 6, 6, 7, 8]),
        st.integers(0, 2),
        st.integers(1, 600),
        st.integers(0, 50),
        st.integers(0, 12),
    ),
    min_size=10,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(OPS, st.integers(0, 40), st.integers(0, 40))
def test_any_ledger_reconciles_in_any_periods(
    ops: list[tuple[int, int, int, int, int]], first_days: int, second_days: int
) -> None:
    """Three periods, back to back: to `first_days` after the first entry's day, the next
    `second_days` + 1 days, and the rest of the year."""
    model = Model()
    for op in ops:
        model.step(*op)
    first = date(2026, 1, 1)
    a = first + timedelta(first_days)
    b = a + timedelta(second_days + 1)
    periods = [
        (first - timedelta(1), a),
        (a + timedelta(1), b),
        (b + timedelta(1), date(2026, 12, 31)),
    ]
    previous: Books | None = None
    for start, end in periods:
        books = books_from_entries("s", start, end, model.entries)  # asserts its identity
        assert books.balanced and identity(books)
        want = model.expected(start, end)
        got = {k: getattr(books, k) for k in want}
        assert got == want
        assert sum(books.by_member.values()) == books.closing_outstanding
        if previous is not None:
            assert books.opening_outstanding == previous.closing_outstanding
        previous = books
    assert previous is not None and previous.closing_outstanding == sum(
        b for a, b in model.balances.items() if a.startswith("member:")
    ) + model.balances.get(RESERVED_ACCOUNT, 0)


@pytest.fixture(scope="module")
def server_tables() -> Iterator[Engine | None]:
    """On a server run, a database of the ledger's own tables on the test server for the
    property below (each example writes its ledger in a transaction it rolls back); on SQLite,
    None: each example has an in-memory database of its own."""
    if not SERVER_URL:
        yield None
        return
    with server_database() as url:
        engine = create_engine(to_sync_url(url))
        try:
            ledger_storage.metadata.create_all(engine)
            yield engine
        finally:
            engine.dispose()


def summed_books(
    entries: list[Entry],
    periods: list[tuple[date, date]],
    sizes: list[int | None],
    server: Engine | None = None,
) -> list[Books]:
    """`books_at` over `entries` written to a database of the ledger's own tables (accounts
    with their stored balances, and two accounts never posted to), for each period and size:
    a fresh in-memory SQLite database, or `server`'s, the writes rolled back afterwards."""
    if server is not None:
        with server.connect() as conn:  # never committed: rolled back as it closes
            _write_ledger(conn, entries)
            return [books_at(conn, "s", start, end, size=size) for start, end in periods
                    for size in sizes]  # fmt: skip
    engine = create_engine("sqlite://")
    ledger_storage.metadata.create_all(engine)
    with engine.begin() as conn:
        _write_ledger(conn, entries)
    try:
        with engine.connect() as conn:
            return [books_at(conn, "s", start, end, size=size) for start, end in periods
                    for size in sizes]  # fmt: skip
    finally:
        engine.dispose()


def _write_ledger(conn: Connection, entries: list[Entry]) -> None:
    """Ledger "s" with `entries`, its accounts' balances stored as the ledger keeps them."""
    balances: dict[str, int] = {}
    for e in entries:
        for p in e.postings:
            balances[p.account] = balances.get(p.account, 0) + p.amount
    last = entries[-1] if entries else None
    conn.execute(ledger_storage.ledgers.insert().values(
        id="s", created_us=T0, head_seq=len(entries), head_hash=b"",
        head_time_us=last.time_us if last else T0, key_count=1,
    ))  # fmt: skip
    opened = balances | {"member:idle": 0, "scheme:fees": 0, RESERVED_ACCOUNT: 0}
    conn.execute(ledger_storage.accounts.insert(), [
        {"ledger_id": "s", "code": code, "kind": code.split(":")[0], "floor": None,
         "balance": balances.get(code, 0), "created_us": T0}
        for code in opened
    ])  # fmt: skip
    if entries:
        conn.execute(ledger_storage.entries.insert(), [ledger_storage.entry_row(e)
                                                      for e in entries])  # fmt: skip
        conn.execute(ledger_storage.postings.insert(),
                     [r for e in entries for r in ledger_storage.posting_rows(e)])  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(OPS, st.integers(0, 40), st.integers(0, 40), st.integers(0, 70))
def test_books_summed_in_the_database_are_the_folded_books_of_any_ledger(
    server_tables: Engine | None,
    ops: list[tuple[int, int, int, int, int]],
    first_days: int,
    second_days: int,
    size: int,
) -> None:
    """The same random ledgers and periods as above, and a checkpoint size, written to a
    database: `books_at` gives the fold's books, whichever way it sums each balance."""
    model = Model()
    for op in ops:
        model.step(*op)
    first = date(2026, 1, 1)
    a = first + timedelta(first_days)
    b = a + timedelta(second_days + 1)
    periods = [
        (first - timedelta(1), a),
        (a + timedelta(1), b),
        (b + timedelta(1), date(2026, 12, 31)),
        (first, date(2026, 12, 31)),
    ]
    sizes: list[int | None] = [None, size, len(model.entries) // 2]
    summed = iter(summed_books(model.entries, periods, sizes, server_tables))
    for start, end in periods:
        for n in sizes:
            folded = books_from_entries("s", start, end, model.entries[:n])
            assert next(summed) == folded, (start, end, n)
