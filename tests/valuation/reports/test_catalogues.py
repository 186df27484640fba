"""A scheme's own catalogue versions: added on top of the shipped one, written once, used by
its reports and found again by hash when a report is verified. On a real database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger import Conflict, InvalidRequest, to_us
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme
from timebank.service import Forbidden, TimeBank
from valuation.catalogue import shipped_catalogue
from valuation.reports import make_report, verify_report
from valuation.reports.catalogues import add_version, scheme_catalogue, versions
from valuation.reports.engine import Parameters

pytestmark = pytest.mark.both_backends

TAFF = Scheme("taff", "Taff", ClaimRules(SchemeModel.TIME_CREDITS))
JAN1, DEC31 = date(2026, 1, 1), date(2026, 12, 31)
WALES = Parameters(geography="Wales")


def ashe(value: str) -> str:
    addition: dict[str, Any] = {
        "sources": [{
            "id": "taff-ashe", "title": "ASHE Table 14, Wales", "publisher": "ONS",
            "authors": "ONS", "published": "2025-10", "data_year": "2025", "url": None,
            "licence": "OGL-3.0", "licence_constraints": "", "bundle_allowed": True,
            "evidence_tier": "official-statistic", "country": "GB", "notes": "",
        }],
        "wage_rates": [{
            "series": "ASHE_HOURLY_EXCL_OT", "soc_code": "5113", "soc_version": "SOC2020",
            "geography": "Wales", "year": "2025", "period_type": "CY", "statistic": "median",
            "basis": "gross hourly excluding overtime", "currency": "GBP", "value": value,
            "source": "taff-ashe", "verification": "V", "notes": "",
        }],
    }  # fmt: skip
    return json.dumps(addition)


@pytest.fixture
async def bank(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[TimeBank]:
    clock.now_us = to_us(datetime(2026, 3, 1, tzinfo=UTC))
    async with open_bank(tmp_path / "catalogues.db", clock, db_url if SERVER_URL else None) as bank:
        await bank.create_scheme(TAFF)
        await bank.add_member(Member(TAFF.id, "A1", "Admin", frozenset({Role.SCHEME_ADMIN})))
        await bank.add_member(Member(TAFF.id, "C1", "Co", frozenset({Role.COORDINATOR})))
        await bank.add_activity(TAFF.id, replace(activity("garden"), proxy_code="gardening"),
                                by="C1")  # fmt: skip
        claim = await bank.log_claim(TAFF.id, ClaimDraft("C1", "C1", "garden", JAN1, 600),
                                     today=bank.today(), idempotency_key="c")  # fmt: skip
        await bank.confirm_claim(TAFF.id, claim.id, by="A1")
        yield bank


async def test_a_schemes_version_prices_its_reports_and_is_named_by_hash(bank: TimeBank) -> None:
    before = await make_report(bank, TAFF.id, JAN1, DEC31, WALES)
    made = await add_version(bank, TAFF.id, ashe("13.50"), version="taff.1", licensed=False,
                             by="A1")  # fmt: skip

    after = await make_report(bank, TAFF.id, JAN1, DEC31, WALES)

    assert before["catalogue"]["hash"] == shipped_catalogue().content_hash
    assert before["lenses"]["A"]["total"]["central"] == "190.00"  # 10 h at the generalist £19
    assert after["catalogue"] == {"version": "taff.1", "hash": made.content_hash}
    assert after["lenses"]["A"]["total"]["central"] == "135.00"  # 10 h at Wales' gardener £13.50
    assert made.based_on == shipped_catalogue().content_hash
    assert await verify_report(bank, before) == [] and await verify_report(bank, after) == []


async def test_versions_are_written_once_and_build_on_each_other(bank: TimeBank) -> None:
    one = await add_version(bank, TAFF.id, ashe("13.50"), version="taff.1", licensed=False,
                            by="A1")  # fmt: skip
    again = await add_version(bank, TAFF.id, ashe("13.50"), version="taff.1", licensed=False,
                              by="A1")  # fmt: skip
    assert again.content_hash == one.content_hash
    with pytest.raises(Conflict):
        await add_version(bank, TAFF.id, ashe("14.00"), version="taff.1", licensed=False, by="A1")
    with pytest.raises(InvalidRequest) as clash:  # its source's id is in the base already
        await add_version(bank, TAFF.id, ashe("14.00"), version="taff.2", licensed=False, by="A1")
    assert clash.value.field is not None and clash.value.field.startswith("content.sources")

    listed = await versions(bank, TAFF.id)
    assert [(v.version, v.scheme) for v in listed] == [(shipped_catalogue().version, None),
                                                       ("taff.1", TAFF.id)]  # fmt: skip
    assert (await scheme_catalogue(bank, TAFF.id)).content_hash == one.content_hash
    older = await scheme_catalogue(bank, TAFF.id, shipped_catalogue().version)
    assert older.content_hash == shipped_catalogue().content_hash


async def test_a_bad_file_is_refused_naming_its_json_path_and_only_admins_add_versions(
    bank: TimeBank,
) -> None:
    bad = json.loads(ashe("13.50"))
    bad["wage_rates"][0]["value"] = 13.5  # a float: never
    with pytest.raises(InvalidRequest) as refused:
        await add_version(bank, TAFF.id, json.dumps(bad), version="x", licensed=False, by="A1")
    assert refused.value.field == "content.wage_rates[0].value"
    with pytest.raises(Forbidden):
        await add_version(bank, TAFF.id, ashe("13.50"), version="x", licensed=False, by="C1")
    assert [v.version for v in await versions(bank, TAFF.id)] == [shipped_catalogue().version]


async def test_a_licensees_values_are_marked_and_never_bundleable(bank: TimeBank) -> None:
    licensed = {
        "sources": [{
            "id": "hact-svb-2024", "title": "UK Social Value Bank", "publisher": "HACT",
            "authors": "HACT", "published": "2024", "data_year": "2024", "url": None,
            "licence": "CC-BY-NC-ND-4.0", "licence_constraints": "licensee only",
            "bundle_allowed": True, "evidence_tier": "grey-literature", "country": "GB",
            "notes": "",
        }],
    }  # fmt: skip

    made = await add_version(bank, TAFF.id, json.dumps(licensed), version="taff.hact",
                             licensed=True, by="A1")  # fmt: skip

    assert made.scheme == TAFF.id and not made.source("hact-svb-2024").bundle_allowed
