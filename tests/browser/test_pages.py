"""Each main page in a real browser: it renders, it has no serious accessibility violations
(axe-core), and its screenshots are saved at phone and desktop widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import Site, check_page

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]


def test_the_sign_in_page_is_accessible(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/sign-in")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    assert check_page(page, "sign-in") == []


def test_the_public_ledger_page_is_accessible(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/s/taff-housing/ledger")
    assert "Latest signed checkpoint" in page.content()
    assert check_page(page, "public-ledger") == []


def test_the_sign_in_page_is_in_welsh_for_a_welsh_browser(browser: Browser, site: Site) -> None:
    context = browser.new_context(locale="cy-GB")
    try:
        page = context.new_page()
        page.goto(f"{site.url}/sign-in")
        assert page.locator("html").get_attribute("lang") == "cy"
        assert page.get_by_role("heading", level=1).inner_text() == "Mewngofnodi"
    finally:
        context.close()


def test_a_member_page_in_welsh_is_accessible(browser: Browser, site: Site) -> None:
    context = browser.new_context(locale="cy-GB")
    try:
        page = context.new_page()
        sign_in_welsh(page, site, "tenant")
        page.goto(f"{site.url}/s/taff-housing/me/log")
        assert page.locator("html").get_attribute("lang") == "cy"
        assert page.get_by_role("heading", level=1).inner_text() == "Cofnodi oriau"
        assert check_page(page, "member-log-cy") == []
    finally:
        context.close()


def sign_in_welsh(page: Page, site: Site, login: str) -> None:
    page.goto(f"{site.url}/sign-in")
    page.get_by_label("Enw mewngofnodi").fill(login)
    page.get_by_label("Cyfrinair").fill(site.passwords[login])
    page.get_by_role("button", name="Mewngofnodi").click()
    page.wait_for_url(f"{site.url}/s/taff-housing/me")
