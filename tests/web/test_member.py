"""The member's pages: logging hours, My hours, confirming help received, receipts, offers and
vouchers, and their personal data (download and erasure)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.api.world import World
from tests.web.conftest import PASSWORD, Pages

pytestmark = pytest.mark.both_backends

Browser = Callable[[str], Awaitable[Pages]]
API = "/api/v1/schemes"


async def api_get(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Any:
    r = await client.get(API + path, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def log_hours(pages: Pages, scheme: str, **fields: str) -> httpx.Response:
    data: dict[str, str | list[str]] = {
        "activity": "garden" if scheme == "taff" else "lift",
        "minutes": "60",
        **fields,
    }
    return await pages.submit(f"/s/{scheme}/me/log", data)


async def claims_of(client: httpx.AsyncClient, world: World, scheme: str) -> list[Any]:
    found = await api_get(client, f"/{scheme}/claims", world.as_(scheme, "member"))
    return [c for c in found["items"] if c["member"] == "M1"]


async def confirmed_entry(pages: Pages, client: httpx.AsyncClient, world: World) -> int:
    """M1 logs an hour in taff, the coordinator confirms it: the ledger entry's number."""
    await log_hours(pages, "taff")
    (claim,) = await claims_of(client, world, "taff")
    r = await client.post(f"{API}/taff/claims/{claim['id']}/confirm",
                          headers=world.as_("taff", "coordinator"))  # fmt: skip
    assert r.status_code == 200, r.text
    seq = r.json()["entry_seq"]
    assert isinstance(seq, int)
    return seq


async def test_logged_hours_are_pending_in_my_hours_and_in_the_api(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    form = await pages.get("/s/taff/me/log")
    assert 'type="radio" name="minutes" value="90"' in form.text and "Residents" in form.text
    assert "Who did you help?" not in form.text  # time-credit scheme: no receiver
    r = await log_hours(pages, "taff", minutes="90", note="weeding")
    assert str(r.url).endswith("/s/taff/me/claims")  # the notice travels in a cookie
    assert "Your hours are logged" in r.text and 'role="status"' in r.text
    assert "pending" in r.text and "1:30" in r.text and "Pending</span>" in r.text
    (claim,) = await claims_of(app_client, world, "taff")
    assert claim["status"] == "pending" and claim["minutes"] == 90 and claim["note"] == "weeding"
    home = await pages.get("/s/taff/me")
    assert "1 claim is waiting to be confirmed." in home.text


async def test_custom_minutes_win_over_the_preset(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    await log_hours(pages, "taff", minutes="60", custom_minutes="45")
    (claim,) = await claims_of(app_client, world, "taff")
    assert claim["minutes"] == 45


async def test_a_coordinator_confirming_changes_the_balance_on_the_home_page(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    assert re.search(r'id="balance">0:00<', (await pages.get("/s/taff/me")).text)
    seq = await confirmed_entry(pages, app_client, world)
    home = await pages.get("/s/taff/me")
    assert re.search(r'id="balance">1:00<', home.text)
    assert f"/s/taff/me/receipts/{seq}" in home.text
    assert "No claims are waiting" in home.text
    mine = await pages.get("/s/taff/me/claims?status=confirmed")
    assert "Confirmed</span>" in mine.text
    assert "<tbody>" not in (await pages.get("/s/taff/me/claims?status=pending")).text


async def test_bad_minutes_show_the_error_on_that_field_and_write_nothing(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    r = await pages.submit("/s/taff/me/log", {"activity": "garden", "custom_minutes": "lots"},
                           status=422)  # fmt: skip
    assert 'id="e-custom_minutes"' in r.text and 'aria-invalid="true"' in r.text
    assert 'href="#f-custom_minutes"' in r.text
    r = await pages.submit("/s/taff/me/log", {"activity": "garden", "custom_minutes": "2000"},
                           status=422)  # fmt: skip
    assert 'id="e-custom_minutes"' in r.text
    r = await pages.submit("/s/taff/me/log", {"activity": "garden"}, status=422)
    assert 'id="e-minutes"' in r.text
    assert await claims_of(app_client, world, "taff") == []


async def test_a_double_submitted_form_makes_one_claim(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    form = (await pages.get("/s/taff/me/log")).text
    data = {"csrf": re.findall(r'name="csrf" value="([^"]+)"', form)[0],
            "key": re.findall(r'name="key" value="([^"]+)"', form)[0],
            "activity": "garden", "minutes": "30"}  # fmt: skip
    for _ in range(2):
        r = await pages.client.post("/s/taff/me/log", data=data)
        assert r.status_code == 303, r.text
    assert len(await claims_of(app_client, world, "taff")) == 1


async def test_the_receiver_confirms_help_received_person_to_person(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    helper = await browser("m2m-member")
    assert "Who did you help?" in (await helper.get("/s/m2m/me/log")).text
    await log_hours(helper, "m2m", receiver="M2")
    (claim,) = await claims_of(app_client, world, "m2m")
    assert claim["receiver"] == "M2" and claim["status"] == "pending"
    assert claim["id"] not in (await helper.get("/s/m2m/me/received")).text  # not the helper's
    helped = await browser("m2m-m2")
    page = await helped.get("/s/m2m/me/received")
    assert f'id="claim-{claim["id"]}"' in page.text and "M1 helped you" in page.text
    r = await helped.submit("/s/m2m/me/received", {"claim": claim["id"]},
                            form_page="/s/m2m/me/received")  # fmt: skip
    assert "Nothing is waiting for you to confirm." in r.text
    (claim,) = await claims_of(app_client, world, "m2m")
    assert claim["status"] == "confirmed"
    assert re.search(r'id="balance">1:00<', (await helper.get("/s/m2m/me")).text)
    assert re.search(r'id="balance">-1:00<', (await helped.get("/s/m2m/me")).text)


async def test_a_receipt_page_says_verified_and_offers_the_file(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    seq = await confirmed_entry(pages, app_client, world)
    page = await pages.get(f"/s/taff/me/receipts/{seq}")
    assert "<strong>Verified</strong>" in page.text and "timebank verify-receipt" in page.text
    r = await pages.get(f"/s/taff/me/receipts/{seq}/download")
    assert r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    receipt = r.json()
    assert receipt["type"] == "receipt" and receipt["entry"]["seq"] == seq


async def test_another_members_receipt_is_not_visible(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    seq = await confirmed_entry(pages, app_client, world)
    other = await browser("taff-m2")
    r = await other.client.get(f"/s/taff/me/receipts/{seq}")
    assert r.status_code == 404 and "Verified" not in r.text
    r = await other.client.get(f"/s/taff/me/receipts/{seq}/download")
    assert r.status_code == 404 and "signature" not in r.text


async def test_getting_a_voucher_shows_its_code_and_a_qr_image_that_loads(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("m2m-member")  # a -10 hour floor: credit to spend at once
    offers = await pages.get("/s/m2m/me/offers")
    assert "A swim" in offers.text and "1 credit" in offers.text and "The hall" in offers.text
    r = await pages.submit("/s/m2m/me/vouchers", {"partner": "p-m2m", "offer": "swim"},
                           form_page="/s/m2m/me/offers")  # fmt: skip
    code = re.findall(r'<p class="code" id="code">([^<]+)</p>', r.text)[0]
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]", code), code
    assert "Pending</span>" in r.text
    qr = re.findall(r'<img src="([^"]+)"', r.text)[0]
    image = await pages.get(qr)
    assert image.headers["content-type"].startswith("image/") and b"<svg" in image.content
    listed = await pages.get("/s/m2m/me/vouchers")
    assert code in listed.text
    voucher = await api_get(app_client, f"/m2m/vouchers/{code}", world.as_("m2m", "member"))
    assert voucher["state"] == "pending" and voucher["member"] == "M1"
    other = await browser("m2m-m2")
    # another member's voucher answers exactly as one that does not exist
    assert (await other.client.get(f"/s/m2m/me/vouchers/{code}")).status_code == 404
    assert (await other.client.get(f"/s/m2m/me/vouchers/{code}/qr")).status_code == 404
    assert code not in (await other.get("/s/m2m/me/vouchers")).text


async def test_without_credits_a_voucher_is_refused(world: World, browser: Browser) -> None:
    pages = await browser("taff-member")  # no credits and no overdraft in taff
    r = await pages.submit("/s/taff/me/vouchers", {"partner": "p-taff", "offer": "swim"},
                           form_page="/s/taff/me/offers", status=409)  # fmt: skip
    assert "not enough credits" in r.text


async def test_the_personal_data_download_contains_their_claims(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-member")
    await log_hours(pages, "taff", note="planting bulbs")
    page = await pages.get("/s/taff/me/data")
    assert "planting bulbs" in page.text and "taff-M1" in page.text
    r = await pages.get("/s/taff/me/data/download")
    assert "attachment" in r.headers["content-disposition"]
    held = json.loads(r.text)
    assert held["member"]["id"] == "M1"
    assert [c["note"] for c in held["claims"]] == ["planting bulbs"]


async def test_erasure_needs_the_word_then_erases_and_signs_out(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")
    r = await pages.submit("/s/taff/me/data/erase", {"confirm": "yes"}, form_page="/s/taff/me/data",
                           status=422)  # fmt: skip
    assert 'id="e-confirm"' in r.text
    member = await api_get(app_client, "/taff/members/M1", world.as_("taff", "coordinator"))
    assert member["erased"] is False
    r = await pages.submit("/s/taff/me/data/erase", {"confirm": "erase"},
                           form_page="/s/taff/me/data")  # fmt: skip
    assert "signed out" in r.text
    member = await api_get(app_client, "/taff/members/M1", world.as_("taff", "coordinator"))
    assert member["erased"] is True and member["display_name"] != "M1 of taff"
    r = await pages.client.get("/s/taff/me")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
    r = await app_client.get(API + "/taff/members/M1", headers=world.as_("taff", "member"))
    assert r.status_code == 401  # the member's API token was revoked too
    again = await browser("")  # and the account can no longer sign in
    await again.submit("/sign-in", {"login": "taff-member", "password": PASSWORD}, status=401)


async def test_member_pages_are_for_members_of_their_own_scheme(
    world: World, browser: Browser
) -> None:
    coordinator = await browser("taff-coordinator")
    await coordinator.get("/s/taff/me/log", status=403)
    member = await browser("taff-member")
    await member.get("/s/m2m/me/claims", status=404)
    await member.get("/s/m2m/me/data/download", status=404)


async def test_minutes_the_scheme_refuses_show_on_the_custom_field(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    pages = await browser("taff-member")  # the scheme's least is 15 minutes
    r = await pages.submit("/s/taff/me/log", {"activity": "garden", "custom_minutes": "5"},
                           status=422)  # fmt: skip
    assert 'id="e-custom_minutes"' in r.text and 'value="5"' in r.text
    assert await claims_of(app_client, world, "taff") == []


async def test_partner_offers_can_be_filtered_by_their_venues_area(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    r = await app_client.post("/api/v1/partners/p-taff/venues", headers=world.admin,
                              json={"id": "pool", "name": "The pool", "area": "CF10"})  # fmt: skip
    assert r.status_code == 201, r.text
    agreement = {"partner": "p-taff", "offers": ["swim"], "venues": ["hall", "pool"],
                 "starts": "2020-01-01"}  # fmt: skip
    r = await app_client.post(f"{API}/taff/agreements", headers=world.admin, json=agreement)
    assert r.status_code == 201, r.text
    pages = await browser("taff-member")
    page = await pages.get("/s/taff/me/offers")
    assert '<option value="CF10"' in page.text and "The pool (CF10)" in page.text
    assert "A swim" in (await pages.get("/s/taff/me/offers?area=CF10")).text
    assert "A swim" not in (await pages.get("/s/taff/me/offers?area=NP20")).text


async def test_person_to_person_offers_of_help_are_listed_by_area(
    world: World, browser: Browser, app_client: httpx.AsyncClient
) -> None:
    r = await app_client.post(f"{API}/m2m/offers", headers=world.members[("m2m", "M2")],
                              json={"skills": ["shopping"], "area": "CF24"})  # fmt: skip
    assert r.status_code == 201, r.text
    pages = await browser("m2m-member")
    page = await pages.get("/s/m2m/me/offers")
    assert "M2 offers shopping in CF24" in page.text
    assert "M2 offers" not in (await pages.get("/s/m2m/me/offers?area=CF10")).text
    taff = await browser("taff-member")
    assert "Members offering help" not in (await taff.get("/s/taff/me/offers")).text
