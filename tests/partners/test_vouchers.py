"""Vouchers in a real database: issue, settle, void, expire; no overspend, one settlement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from ledger import Conflict, FloorBreached, InvalidRequest, NotFound, from_us
from partners.codes import display, new_code, normalise
from partners.model import Agreement, Offer, Partner, Sector, Venue, VoucherState
from partners.service import Partners
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme

pytestmark = pytest.mark.both_backends

SCHEME = "taff"


@pytest.fixture
async def partners(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[Partners]:
    """Taff with a coordinator and member T1 holding 10 credits; the Gate arts centre offering
    a cinema ticket (1 credit) at its one venue under an agreement. The ledger verifies after."""
    async with open_bank(tmp_path / "p.db", clock, db_url if SERVER_URL else None) as bank:
        p = Partners(bank)
        await p.create_tables()
        await bank.create_scheme(Scheme(SCHEME, "Taff", ClaimRules(SchemeModel.TIME_CREDITS)))
        await bank.add_member(Member(SCHEME, "C1", "Co", frozenset({Role.COORDINATOR})))
        await bank.add_member(Member(SCHEME, "T1", "Tenant"))
        await bank.add_activity(SCHEME, activity("garden"), by="C1")
        today = from_us(clock()).date()
        for n in range(2):  # 2 x 5 hours = 10 credits
            day = date.fromordinal(today.toordinal() - 1 - n)
            claim = await bank.log_claim(SCHEME, ClaimDraft("T1", "T1", "garden", day, 300),
                                         today=today, idempotency_key=f"c{n}")  # fmt: skip
            await bank.confirm_claim(SCHEME, claim.id, by="C1")
        await p.add_partner(Partner("gate", "The Gate", Sector.THIRD))
        await p.add_venue(Venue("gate", "keppoch-st", "The Gate, Keppoch Street"))
        await p.add_venue(Venue("gate", "annexe", "The Gate annexe"))
        await p.add_offer(Offer("gate", "cinema", "Cinema ticket", 1, 750, today))
        await p.agree(Agreement(SCHEME, "gate", frozenset({"cinema"}),
                                frozenset({"keppoch-st"}), today))  # fmt: skip
        yield p


def test_codes_catch_typos_and_forgive_case_dashes_and_look_alikes() -> None:
    code = new_code()
    assert normalise(display(code).lower()) == code
    assert normalise(code.replace("0", "O").replace("1", "I")) == code
    for i in range(9):  # any one wrong symbol is caught
        wrong = code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1 :]
        assert normalise(wrong) is None
    assert normalise("ABCD") is None and normalise("U" * 9) is None


async def test_a_voucher_reserves_credits_and_settling_moves_them_to_the_partner(
    partners: Partners,
) -> None:
    bank = partners.bank
    voucher = await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="v1")
    assert voucher.state is VoucherState.PENDING and voucher.minutes == 60
    assert await bank.balance(SCHEME, "T1") == 540  # reserved: not spendable twice
    again = await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="v1")
    assert again.code == voucher.code and await bank.balance(SCHEME, "T1") == 540
    done = await partners.settle(SCHEME, display(voucher.code), partner_id="gate",
                                 venue_id="keppoch-st", idempotency_key="till-1")  # fmt: skip
    assert done.state is VoucherState.SETTLED and done.venue == "keppoch-st"
    assert (await bank.ledger.account(SCHEME, "partner:gate")).balance == 60
    retried = await partners.settle(SCHEME, voucher.code, partner_id="gate",
                                    venue_id="keppoch-st", idempotency_key="till-1")  # fmt: skip
    assert retried.settled_by == done.settled_by  # the same request again: the same answer
    with pytest.raises(Conflict):
        await partners.settle(SCHEME, voucher.code, partner_id="gate", venue_id="keppoch-st",
                              idempotency_key="till-2")  # fmt: skip


async def test_voiding_and_expiry_give_the_credits_back(partners: Partners, clock: Clock) -> None:
    bank = partners.bank
    a = await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="a")
    b = await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="b")
    assert (await partners.void(SCHEME, a.code, idempotency_key="x")).state is VoucherState.VOIDED
    assert await bank.balance(SCHEME, "T1") == 540
    clock.advance(49 * 3600)  # past the agreement's 48 hours
    await bank.ledger.expire_due(SCHEME, now=from_us(clock()))
    assert (await partners.voucher(SCHEME, b.code)).state is VoucherState.EXPIRED
    assert await bank.balance(SCHEME, "T1") == 600
    with pytest.raises(Conflict):
        await partners.settle(SCHEME, b.code, partner_id="gate", venue_id="keppoch-st",
                              idempotency_key="late")  # fmt: skip


async def test_a_venue_or_offer_outside_the_agreement_is_refused(partners: Partners) -> None:
    voucher = await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="v")
    with pytest.raises(Conflict) as refused:
        await partners.settle(SCHEME, voucher.code, partner_id="gate", venue_id="annexe",
                              idempotency_key="t")  # fmt: skip
    assert refused.value.field == "venue"
    with pytest.raises(NotFound):  # another partner cannot see, let alone settle, the voucher
        await partners.settle(SCHEME, voucher.code, partner_id="other", venue_id="keppoch-st",
                              idempotency_key="t")  # fmt: skip
    today = from_us(partners.bank.clock()).date()
    await partners.add_offer(Offer("gate", "theatre", "Theatre seat", 2, 1500, today))
    with pytest.raises(Conflict):
        await partners.issue(SCHEME, "T1", "gate", "theatre", idempotency_key="th")
    with pytest.raises(InvalidRequest):
        await partners.voucher(SCHEME, "not-a-code")


async def test_a_member_with_10_credits_firing_100_voucher_requests_gets_10(
    partners: Partners,
) -> None:
    results = await asyncio.gather(
        *(partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key=f"r{i}")
          for i in range(100)),
        return_exceptions=True,
    )  # fmt: skip
    issued = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(issued) == 10 and all(isinstance(r, FloorBreached) for r in refused)
    assert len({v.code for v in issued}) == 10
    assert await partners.bank.balance(SCHEME, "T1") == 0


async def test_50_tills_settling_one_code_at_once_settle_it_exactly_once(
    partners: Partners,
) -> None:
    voucher = await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="v")
    results = await asyncio.gather(
        *(partners.settle(SCHEME, voucher.code, partner_id="gate", venue_id="keppoch-st",
                          idempotency_key=f"till-{i}") for i in range(50)),
        return_exceptions=True,
    )  # fmt: skip
    settled = [r for r in results if not isinstance(r, BaseException)]
    assert len(settled) == 1 and all(isinstance(r, Conflict) for r in results if r not in settled)
    assert (await partners.bank.ledger.account(SCHEME, "partner:gate")).balance == 60
    assert await partners.bank.balance(SCHEME, "T1") == 540


async def test_an_offers_daily_capacity_holds_under_concurrency_and_voids_free_a_place(
    partners: Partners,
) -> None:
    today = from_us(partners.bank.clock()).date()
    await partners.add_offer(Offer("gate", "matinee", "Matinee", 1, 500, today, per_day=3))
    await partners.agree(Agreement(SCHEME, "gate", frozenset({"cinema", "matinee"}),
                                   frozenset({"keppoch-st"}), today))  # fmt: skip
    results = await asyncio.gather(
        *(partners.issue(SCHEME, "T1", "gate", "matinee", idempotency_key=f"m{i}")
          for i in range(10)),
        return_exceptions=True,
    )  # fmt: skip
    issued = [r for r in results if not isinstance(r, BaseException)]
    assert len(issued) == 3
    assert all(isinstance(r, Conflict) and r.field == "offer" for r in results if r not in issued)
    assert await partners.bank.balance(SCHEME, "T1") == 600 - 3 * 60  # refusals reserve nothing
    await partners.void(SCHEME, issued[0].code, idempotency_key="v")
    assert (await partners.issue(SCHEME, "T1", "gate", "matinee", idempotency_key="m-again")).code


async def test_a_partners_monthly_cap_counts_vouchers_not_yet_used(partners: Partners) -> None:
    today = from_us(partners.bank.clock()).date()
    await partners.agree(Agreement(SCHEME, "gate", frozenset({"cinema"}),
                                   frozenset({"keppoch-st"}), today, monthly_cap=2))  # fmt: skip
    vouchers = [
        await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key=f"c{i}")
        for i in range(2)
    ]
    with pytest.raises(Conflict) as refused:  # two pending: the cap's two hours are promised
        await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="c2")
    assert "monthly cap" in refused.value.message and refused.value.field == "partner"
    await partners.void(SCHEME, vouchers[1].code, idempotency_key="v")  # no longer counts
    third = await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="c3")
    for v in (vouchers[0], third):
        await partners.settle(SCHEME, v.code, partner_id="gate", venue_id="keppoch-st",
                              idempotency_key="t")  # fmt: skip
    with pytest.raises(Conflict):  # settled this month: still counted
        await partners.issue(SCHEME, "T1", "gate", "cinema", idempotency_key="c4")
    assert (await partners.bank.ledger.account(SCHEME, "partner:gate")).balance == 120


async def test_a_voucher_refused_for_credit_names_the_member(partners: Partners) -> None:
    today = from_us(partners.bank.clock()).date()
    await partners.add_offer(Offer("gate", "season", "Season ticket", 20, 9000, today))
    await partners.agree(Agreement(SCHEME, "gate", frozenset({"cinema", "season"}),
                                   frozenset({"keppoch-st"}), today))  # fmt: skip
    with pytest.raises(FloorBreached) as refused:
        await partners.issue(SCHEME, "T1", "gate", "season", idempotency_key="s")
    assert refused.value.field == "member" and "T1" in refused.value.message
