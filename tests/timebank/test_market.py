"""Offers and requests for help in a real database: idempotent, paged, matched and erasable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger import Conflict, InvalidRequest, NotFound
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import open_bank
from timebank import storage
from timebank.claims import ClaimRules, SchemeModel
from timebank.market import Market
from timebank.schemes import Member, Role, Scheme
from timebank.service import TimeBank

pytestmark = pytest.mark.both_backends

M2M = Scheme("member-to-member", "Member to Member", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600)
OTHER = Scheme("other-bank", "Other", ClaimRules(SchemeModel.TIME_CREDITS))


@pytest.fixture
async def bank(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[TimeBank]:
    async with open_bank(tmp_path / "tb.db", clock, db_url if SERVER_URL else None) as tb:
        for scheme in (M2M, OTHER):
            await tb.create_scheme(scheme)
            await tb.add_member(Member(scheme.id, "C1", "Cath", frozenset({Role.COORDINATOR})))
            for who in ("A", "B", "R"):
                await tb.add_member(Member(scheme.id, who, f"Member {who}"))
        yield tb


@pytest.fixture
def market(bank: TimeBank, clock: Clock) -> Market:
    return Market(bank.db, clock)


async def test_an_offer_is_stored_normalised_and_a_retry_returns_it(
    market: Market, clock: Clock
) -> None:
    first = await market.add_offer(
        M2M.id, "A", ["Gardening", " DIY"], " cf10 ", "weekends", "no ladders", idempotency_key="k"
    )
    assert (first.skills, first.area, first.active) == (("diy", "gardening"), "CF10", True)
    assert first.created_us == clock() and first.note == "no ladders"
    clock.advance(60)
    again = await market.add_offer(
        M2M.id, "A", ["diy", "gardening"], "CF10", "weekends", "no ladders", idempotency_key="k"
    )
    assert again == first == await market.offer(M2M.id, first.id)
    with pytest.raises(Conflict) as err:
        await market.add_offer(
            M2M.id, "A", ["diy"], "CF10", "weekends", "no ladders", idempotency_key="k"
        )
    assert err.value.field == "idempotency_key"
    # the same key in another scheme, or for a request, is a different thing
    other = await market.add_offer(OTHER.id, "A", ["diy"], "CF10", "", "", idempotency_key="k")
    asked = await market.add_request(M2M.id, "A", ["diy"], "CF10", "", "", idempotency_key="k")
    assert len({first.id, other.id, asked.id}) == 3


async def test_a_request_retry_returns_it_and_a_reused_key_is_refused(market: Market) -> None:
    first = await market.add_request(
        M2M.id, "R", ["lifts"], "CF10", "Tuesday 10am", "hospital", idempotency_key="k"
    )
    again = await market.add_request(
        M2M.id, "R", ["Lifts"], "cf10", "Tuesday 10am", "hospital", idempotency_key="k"
    )
    assert again == first == await market.request(M2M.id, first.id) and first.open
    with pytest.raises(Conflict):
        await market.add_request(
            M2M.id, "R", ["lifts"], "CF10", "Wednesday", "hospital", idempotency_key="k"
        )


async def test_bad_offers_and_requests_are_refused_naming_the_field(market: Market) -> None:
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"skills": []}, InvalidRequest, "skills"),
        ({"skills": ["café"]}, InvalidRequest, "skills"),
        ({"area": "!"}, InvalidRequest, "area"),
        ({"availability": "x" * 501}, InvalidRequest, "availability"),
        ({"note": "x" * 501}, InvalidRequest, "note"),
        ({"idempotency_key": ""}, InvalidRequest, "idempotency_key"),
        ({"member_id": "Z"}, NotFound, "member"),
    ]
    for i, (change, error, field) in enumerate(cases):
        args: dict[str, object] = {
            "member_id": "A", "skills": ["diy"], "area": "CF10", "availability": "",
            "note": "", "idempotency_key": f"bad{i}",
        }  # fmt: skip
        args.update(change)
        with pytest.raises(error) as err:
            await market.add_offer(M2M.id, **args)  # type: ignore[arg-type]
        assert err.value.field == field, change  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest) as bad:
        await market.add_request(M2M.id, "A", ["diy"], "CF10", "w" * 501, "", idempotency_key="x")
    assert bad.value.field == "when"
    for missing in (market.offer(M2M.id, "nope"), market.withdraw_offer(M2M.id, "nope")):
        with pytest.raises(NotFound) as gone:
            await missing
        assert gone.value.field == "offer"
    for lost in (market.request(M2M.id, "nope"), market.close_request(M2M.id, "nope")):
        with pytest.raises(NotFound) as gone:
            await lost
        assert gone.value.field == "request"
    with pytest.raises(InvalidRequest):
        await market.offers(M2M.id, limit=0)


async def test_offers_and_requests_page_by_id_and_filter_by_member(market: Market) -> None:
    made = [
        await market.add_offer(M2M.id, who, ["diy"], "CF10", "", "", idempotency_key=f"o{i}")
        for i, who in enumerate("ABABA")
    ]
    await market.add_offer(OTHER.id, "A", ["diy"], "CF10", "", "", idempotency_key="o0")
    seen, after = [], ""
    while page := await market.offers(M2M.id, after=after, limit=2):
        assert len(page) <= 2
        seen += page
        after = page[-1].id
    assert seen == sorted(made, key=lambda o: o.id)
    mine = await market.offers(M2M.id, member="B")
    assert [o.id for o in mine] == sorted(o.id for o in made if o.member == "B")
    asked = [
        await market.add_request(M2M.id, "R", ["lifts"], "CF10", "", "", idempotency_key=f"r{i}")
        for i in range(3)
    ]
    first = await market.requests(M2M.id, member="R", limit=2)
    rest = await market.requests(M2M.id, member="R", after=first[-1].id)
    assert first + rest == sorted(asked, key=lambda r: r.id)
    assert await market.requests(M2M.id, member="A") == []


async def test_matches_rank_other_members_offers_and_stop_when_withdrawn_or_closed(
    market: Market, clock: Clock
) -> None:
    near = await market.add_offer(M2M.id, "A", ["lifts"], "CF10", "", "", idempotency_key="a")
    clock.advance(1)
    both = await market.add_offer(
        M2M.id, "B", ["lifts", "shopping"], "NP20", "", "", idempotency_key="b"
    )
    await market.add_offer(M2M.id, "R", ["lifts"], "CF10", "", "", idempotency_key="own")
    await market.add_offer(OTHER.id, "A", ["lifts"], "CF10", "", "", idempotency_key="x")
    asked = await market.add_request(
        M2M.id, "R", ["lifts", "shopping"], "CF10", "", "", idempotency_key="r"
    )
    ranked = await market.matches_for(M2M.id, asked.id)
    assert [m.offer.id for m in ranked] == [both.id, near.id]
    assert [m.offer.id for m in await market.matches_for(M2M.id, asked.id, limit=1)] == [both.id]
    withdrawn = await market.withdraw_offer(M2M.id, both.id)
    assert not withdrawn.active and withdrawn == await market.offer(M2M.id, both.id)
    assert await market.withdraw_offer(M2M.id, both.id) == withdrawn  # idempotent
    assert [m.offer.id for m in await market.matches_for(M2M.id, asked.id)] == [near.id]
    closed = await market.close_request(M2M.id, asked.id)
    assert not closed.open and await market.close_request(M2M.id, asked.id) == closed
    assert await market.matches_for(M2M.id, asked.id) == []
    assert len(await market.offers(M2M.id)) == 3  # withdrawn offers stay listed


async def test_coordinators_see_the_schemes_needs_and_capabilities_by_area(
    market: Market,
) -> None:
    await market.add_offer(M2M.id, "A", ["lifts", "diy"], "CF10", "", "", idempotency_key="a")
    gone = await market.add_offer(M2M.id, "B", ["diy"], "CF10", "", "", idempotency_key="b")
    await market.withdraw_offer(M2M.id, gone.id)
    await market.add_request(M2M.id, "R", ["shopping"], "CF10", "", "", idempotency_key="r1")
    await market.add_request(M2M.id, "R", ["lifts"], "NP20", "", "", idempotency_key="r2")
    await market.add_request(OTHER.id, "R", ["lifts"], "SA1", "", "", idempotency_key="r3")
    cf10, np20 = await market.needs_and_capabilities(M2M.id)
    assert (cf10.area, cf10.active_offers, cf10.offered) == ("CF10", 1, {"diy": 1, "lifts": 1})
    assert (cf10.needed, cf10.unmet) == ({"shopping": 1}, ("shopping",))
    assert (np20.area, np20.open_requests, np20.active_offers) == ("NP20", 1, 0)


async def test_erasing_a_member_deletes_their_offers_and_requests_only(
    bank: TimeBank, market: Market
) -> None:
    await market.add_offer(M2M.id, "A", ["diy"], "CF10", "", "private", idempotency_key="a")
    asked = await market.add_request(M2M.id, "A", ["lifts"], "CF10", "", "", idempotency_key="r")
    kept = await market.add_offer(M2M.id, "B", ["diy"], "CF10", "", "", idempotency_key="b")
    elsewhere = await market.add_offer(OTHER.id, "A", ["diy"], "CF10", "", "", idempotency_key="a")
    async with bank.db.writer.begin() as conn:
        await conn.run_sync(storage.erase_member_exchanges, M2M.id, "A")
    assert await market.offers(M2M.id) == [kept]
    assert await market.requests(M2M.id) == []
    assert await market.offers(OTHER.id) == [elsewhere]
    with pytest.raises(NotFound):
        await market.request(M2M.id, asked.id)


async def test_erasure_through_the_time_banks_hook_and_an_erased_member_cannot_post(
    bank: TimeBank, market: Market
) -> None:
    bank.erasure_hooks.append(storage.erase_member_exchanges)
    await market.add_offer(M2M.id, "A", ["diy"], "CF10", "", "my address", idempotency_key="a")
    await market.add_request(M2M.id, "A", ["lifts"], "CF10", "", "", idempotency_key="r")
    await bank.erase_member(M2M.id, "A", by="C1")
    assert await market.offers(M2M.id) == [] and await market.requests(M2M.id) == []
    with pytest.raises(NotFound) as err:
        await market.add_offer(M2M.id, "A", ["diy"], "CF10", "", "", idempotency_key="again")
    assert err.value.field == "member"
