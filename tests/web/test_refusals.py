"""Refusals from the domain in the visitor's language, and the scheme's limit on how far back a
claim may be dated shown on the forms that log hours (the date's `min`, a hint, the refusal on
the date field)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

import httpx
import pytest

from api.problems import Problem
from identity.auth import ApiRole
from ledger import from_us
from tests.api.test_vouchers_api import give_credits, voucher
from tests.api.world import ACTIVITY, World
from tests.conftest import Clock
from tests.web.conftest import PASSWORD, Pages
from web import refusals
from web.book import AccountBook

pytestmark = pytest.mark.both_backends

Browser = Callable[[str], Awaitable[Pages]]
V1 = "/api/v1/schemes"
DAYS_BACK = 30
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_KEY = re.compile(r'name="key" value="([^"]+)"')


def text(r: httpx.Response) -> str:
    """The page's text with HTML's escapes undone (Welsh is full of apostrophes)."""
    return html.unescape(r.text)


def today(clock: Clock) -> date:
    return from_us(clock()).date()


async def welsh(pages: Pages, page: str) -> None:
    """Switch the signed-in account to Cymraeg with the language switch on `page`."""
    await pages.submit("/language", {"lang": "cy", "next": page}, form_page=page)


@pytest.fixture
async def recent(world: World, app_client: httpx.AsyncClient, db_url: str, clock: Clock) -> None:
    """Scheme `recent`: claims dated at most 30 days ago; sign-ins `recent-member` (M1) and
    `recent-coordinator` (C1)."""
    c, admin = app_client, world.admin
    body = {"id": "recent", "name": "Recent", "model": "time-credits",
            "claim_days_back": DAYS_BACK}  # fmt: skip
    assert (await c.post(V1, headers=admin, json=body)).status_code == 201
    for who, role in (("A1", "scheme-admin"), ("C1", "coordinator"), ("M1", "member")):
        person = {"id": who, "display_name": f"{who} of recent", "roles": [role]}
        assert (await c.post(f"{V1}/recent/members", headers=admin, json=person)).is_success
    r = await c.post(f"{V1}/recent/tokens", headers=admin, json={"role": "scheme-admin",
                                                                 "member": "A1"})  # fmt: skip
    a1 = {"Authorization": f"Bearer {r.json()['token']}"}
    r = await c.post(f"{V1}/recent/tokens", headers=a1, json={"role": "coordinator",
                                                              "member": "C1"})  # fmt: skip
    c1 = {"Authorization": f"Bearer {r.json()['token']}"}
    r = await c.post(f"{V1}/recent/activities", headers=c1, json=ACTIVITY)
    assert r.status_code == 201, r.text
    book = await AccountBook.open(db_url, clock)
    try:
        await book.create("recent-member", PASSWORD, ApiRole.MEMBER, "recent", member="M1")
        await book.create("recent-coordinator", PASSWORD, ApiRole.COORDINATOR, "recent",
                          member="C1")  # fmt: skip
    finally:
        await book.close()


# ---- the form shows the limit ------------------------------------------------------------------


async def test_the_log_form_says_how_far_back_a_claim_may_be_dated(
    recent: None, browser: Browser, clock: Clock
) -> None:
    pages = await browser("recent-member")
    earliest = (today(clock) - timedelta(days=DAYS_BACK)).isoformat()
    form = await pages.get("/s/recent/me/log")
    assert f'min="{earliest}"' in form.text
    assert "You can claim for up to 30 days ago." in form.text
    assert 'aria-describedby="h-date"' in form.text  # the hint is tied to the date field
    await welsh(pages, "/s/recent/me/log")
    form = await pages.get("/s/recent/me/log")
    assert '<html lang="cy">' in form.text and f'min="{earliest}"' in form.text
    assert "Gallwch hawlio am hyd at 30 diwrnod yn ôl." in text(form)
    # a scheme that takes claims of any date: no limit, no hint
    taff = await (await browser("taff-member")).get("/s/taff/me/log")
    assert 'type="date"' in taff.text and " min=" not in taff.text.split('id="f-date"')[1][:200]
    assert "You can claim for up to" not in taff.text


async def test_the_coordinators_forms_say_how_far_back_too(
    recent: None, browser: Browser, clock: Clock
) -> None:
    pages = await browser("recent-coordinator")
    earliest = (today(clock) - timedelta(days=DAYS_BACK)).isoformat()
    await welsh(pages, "/s/recent/coordinate/group")
    for path in ("/s/recent/coordinate/members/M1", "/s/recent/coordinate/group"):
        form = await pages.get(path)
        assert f'min="{earliest}"' in form.text, path
        assert "Gallwch hawlio am hyd at 30 diwrnod yn ôl." in text(form), path


# ---- refusals in Welsh -------------------------------------------------------------------------


async def test_a_welsh_member_is_told_in_welsh_why_a_claim_is_refused(
    recent: None, browser: Browser, clock: Clock
) -> None:
    pages = await browser("recent-member")
    await welsh(pages, "/s/recent/me/log")
    log = "/s/recent/me/log"
    earliest = (today(clock) - timedelta(days=DAYS_BACK)).isoformat()
    too_old = (today(clock) - timedelta(days=DAYS_BACK + 1)).isoformat()
    r = await pages.submit(log, {"activity": "garden", "date": too_old, "minutes": "60"},
                           status=422)  # fmt: skip
    assert 'id="e-date"' in r.text and 'href="#f-date"' in r.text  # on the date field
    assert ("Mae'r dyddiad yn rhy bell yn ôl. Gallwch hawlio am hyd at 30 diwrnod yn ôl, "
            f"o {earliest} ymlaen.") in text(r)  # fmt: skip
    assert f'value="{too_old}"' in r.text  # what was chosen stays, to correct it
    tomorrow = (today(clock) + timedelta(days=1)).isoformat()
    r = await pages.submit(log, {"activity": "garden", "date": tomorrow, "minutes": "60"},
                           status=422)  # fmt: skip
    assert 'id="e-date"' in r.text
    assert "Ni ellir cofnodi oriau ar gyfer diwrnod sydd heb ddod eto." in text(r)
    assert "still to come" not in r.text
    r = await pages.submit(log, {"activity": "garden", "custom_minutes": "900"}, status=422)
    assert 'id="e-custom_minutes"' in r.text
    assert "Yn y cynllun hwn, mae hawliad rhwng 15 a 720 munud." in text(r)
    assert "minutes in this scheme" not in r.text
    # the day's own limit: a day has 1440 minutes
    day = today(clock).isoformat()
    for _ in range(2):
        await pages.submit(log, {"activity": "garden", "date": day, "custom_minutes": "720"})
    r = await pages.submit(log, {"activity": "garden", "date": day, "minutes": "60"},
                           status=422)  # fmt: skip
    assert f"Mae gan M1 1440 munud eisoes ar {day}; mae 1440 munud mewn diwrnod." in text(r)


async def test_an_english_member_sees_the_same_refusals_in_english(
    recent: None, browser: Browser, clock: Clock
) -> None:
    pages = await browser("recent-member")
    log = "/s/recent/me/log"
    too_old = (today(clock) - timedelta(days=DAYS_BACK + 1)).isoformat()
    earliest = (today(clock) - timedelta(days=DAYS_BACK)).isoformat()
    r = await pages.submit(log, {"activity": "garden", "date": too_old, "minutes": "60"},
                           status=422)  # fmt: skip
    assert ("The date is too far back. You can claim for up to 30 days ago, "
            f"from {earliest}.") in r.text  # fmt: skip
    r = await pages.submit(log, {"activity": "garden", "custom_minutes": "900"}, status=422)
    assert "a claim is 15 to 720 minutes in this scheme" in r.text  # the domain's own words


async def test_a_welsh_coordinator_is_told_in_welsh_on_both_logging_forms(
    recent: None, browser: Browser, clock: Clock
) -> None:
    pages = await browser("recent-coordinator")
    await welsh(pages, "/s/recent/coordinate/group")
    too_old = (today(clock) - timedelta(days=DAYS_BACK + 1)).isoformat()
    r = await pages.submit("/s/recent/coordinate/members/M1",
                           {"activity": "garden", "date": too_old, "minutes": "60"},
                           status=422)  # fmt: skip
    assert 'id="e-date"' in r.text and "Mae'r dyddiad yn rhy bell yn ôl." in text(r)
    r = await pages.submit("/s/recent/coordinate/group",
                           {"members": ["M1"], "activity": "garden", "date": too_old,
                            "minutes": "60"}, status=422)  # fmt: skip
    assert 'id="e-date"' in r.text and "Mae'r dyddiad yn rhy bell yn ôl." in text(r)
    r = await pages.submit("/s/recent/coordinate/group",
                           {"members": ["M1"], "activity": "garden", "minutes": "1000"},
                           status=422)  # fmt: skip
    assert "Yn y cynllun hwn, mae hawliad rhwng 15 a 720 munud." in text(r)


async def test_at_the_till_a_voucher_settled_twice_is_refused_in_welsh(
    world: World, app_client: httpx.AsyncClient, clock: Clock, browser: Browser
) -> None:
    await give_credits(app_client, world, clock, "M1", 60)
    code = await voucher(app_client, world)
    till = await browser("taff-partner-staff")
    page = f"/s/taff/till/v/{code}"
    await welsh(till, page)
    await till.submit(f"{page}/settle", {"venue": "hall"}, form_page=page)
    form = await till.client.get(page)  # settled now; any form of the till's carries a token
    data = {"csrf": _CSRF.findall(form.text)[0], "key": uuid.uuid4().hex, "venue": "hall"}
    r = await till.client.post(f"{page}/settle", data=data)
    assert r.status_code == 409, r.text[:2000]
    assert "Mae'r daleb wedi'i defnyddio eisoes (wedi'i setlo)." in text(r)
    assert "already settled" not in r.text


async def test_a_welsh_member_without_credits_is_refused_a_voucher_in_welsh(
    world: World, browser: Browser
) -> None:
    pages = await browser("taff-member")
    await welsh(pages, "/s/taff/me/offers")
    r = await pages.submit("/s/taff/me/vouchers", {"partner": "p-taff", "offer": "swim"},
                           form_page="/s/taff/me/offers", status=409)  # fmt: skip
    assert "Does gan M1 ddim digon o gredydau ar gyfer" in text(r)
    assert "not enough credits" not in r.text


# ---- the table of known refusals ---------------------------------------------------------------


def _sample(message: str | tuple[str, str]) -> str:
    """The domain's text for `message`, its placeholders filled in."""
    plural = message[1] if isinstance(message, tuple) else message
    return re.sub(r"%\((\w+)\)d", "7", re.sub(r"%\((\w+)\)s", r"'\1-x'", plural))


@pytest.mark.parametrize("message", refusals.MESSAGES, ids=lambda m: str(m)[:60])
def test_each_known_refusal_reads_as_the_domain_wrote_it_in_english_and_has_welsh(
    message: str | tuple[str, str],
) -> None:
    domain = _sample(message)
    assert refusals.translate("en", domain) == domain
    cy = refusals.translate("cy", domain)
    assert cy != domain and cy.endswith("."), cy
    assert all(v in cy for v in re.findall(r"'\w+-x'", domain)), cy  # every value is kept


def test_a_refusal_the_pages_do_not_know_is_shown_as_it_is() -> None:
    assert refusals.translate("cy", "something new went wrong") == "something new went wrong"
    p = refusals.translated("cy", Problem(409, "the voucher has expired", field="code"))
    assert p.detail == "Mae'r daleb wedi dod i ben." and p.field == "code"
    assert p.errors == [{"field": "code", "message": "Mae'r daleb wedi dod i ben."}]
