"""Lens A in a report: which wage prices which hours, and what the report says about it.

Pure: facts made by hand, the shipped catalogue and a scheme's own derived version.
Shipped rates used here: AWE/35 £19.00 for 2023 (the generalist median, the latest there is),
NLW £12.21 for 2025/26 and £11.44 for 2024/25.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from valuation.catalogue import Catalogue, derive, shipped_catalogue
from valuation.reports.facts import ActivityInfo, ActivityMonth, Checkpoint, Facts, MemberTotal
from valuation.reports.lens_hours import valued_hours

ASHE = "scheme-ashe-extract"


def info(code: str, proxy: str) -> ActivityInfo:
    return ActivityInfo(code, code.title(), "co-delivery", None, "time-and-effort", "housing",
                        "collective", "voluntary", "supplements-staff", proxy)  # fmt: skip


def facts(cells: list[ActivityMonth], activities: list[ActivityInfo]) -> Facts:
    minutes = sum(c.minutes for c in cells)
    return Facts(
        "taff", "Taff", "time-credits", date(2025, 1, 1), date(2026, 3, 31),
        Checkpoint(10, "00" * 32, "2026-04-01T00:00:00Z", "k1", "00" * 64), tuple(activities),
        tuple(cells), (MemberTotal("M1", minutes, 0, len(cells)),), 1,
    )  # fmt: skip


def lens(f: Facts, catalogue: Catalogue | None = None, **kw: Any) -> dict[str, Any]:
    given: dict[str, Any] = {"currency": "GBP", "geography": "UK", "productivity": Decimal(1),
                             "oncost": Decimal(0), "allow_unverified": False} | kw  # fmt: skip
    return valued_hours(f, catalogue or shipped_catalogue(), **given)


def with_ashe(value: str, soc: str = "5113", year: str = "2025") -> Catalogue:
    return derive(
        shipped_catalogue(),
        json.dumps(_additions(value, soc, year)),
        scheme="taff",
        version="taff.1",
    )


def _additions(value: str, soc: str = "5113", year: str = "2025") -> dict[str, Any]:
    return {
        "sources": [{
            "id": ASHE, "title": "ASHE Table 14 extract", "publisher": "ONS", "authors": "ONS",
            "published": "2025-10", "data_year": year, "url": None, "licence": "OGL-3.0",
            "licence_constraints": "", "bundle_allowed": True,
            "evidence_tier": "official-statistic", "country": "GB", "notes": "test values",
        }],
        "wage_rates": [{
            "series": "ASHE_HOURLY_EXCL_OT", "soc_code": soc, "soc_version": "SOC2020",
            "geography": "Wales", "year": year, "period_type": "CY", "statistic": "median",
            "basis": "gross hourly excluding overtime", "currency": "GBP", "value": value,
            "source": ASHE, "verification": "V", "notes": "",
        }],
    }  # fmt: skip


GARDEN = info("garden", "gardening")
JAN_2026 = ActivityMonth("garden", "2026-01", 600, 5, 3, 2)  # 10 hours, FY 2025/26


def test_without_an_occupation_wage_hours_are_priced_at_the_generalist_median_and_flagged() -> None:
    a = lens(facts([JAN_2026], [GARDEN]))

    assert a["total"] == {"low": "190.00", "central": "190.00", "high": "190.00"}  # 10 h x £19
    row = a["by_activity"][0]
    assert row["methods"] == ["GENERALIST"] and row["rates"] == ["19.00 (2023)"]
    assert {"FALLBACK_GENERALIST", "STALE_RATE:2023", "NOT_REBASED"} <= set(row["flags"])
    assert "measure-up-awe-div35" in a["sources"] and "uk-national-living-wage" in a["sources"]
    assert "not cash saved" in a["note"]


def test_a_schemes_own_ashe_wage_for_the_proxy_occupation_is_used_first() -> None:
    a = lens(facts([JAN_2026], [GARDEN]), with_ashe("13.50"), geography="Wales")

    row = a["by_activity"][0]
    assert row["methods"] == ["SPECIALIST"] and a["total"]["central"] == "135.00"
    assert "FALLBACK_GENERALIST" not in row["flags"] and ASHE in a["sources"]


def test_an_occupation_wage_below_the_national_living_wage_is_raised_to_it() -> None:
    a = lens(facts([JAN_2026], [GARDEN]), with_ashe("10.00"), geography="Wales")

    row = a["by_activity"][0]
    assert a["total"]["central"] == "122.10"  # 10 h x £12.21, the NLW of 2025/26
    assert "RAISED_TO_FLOOR" in row["flags"] and row["methods"] == ["SPECIALIST"]


def test_each_month_is_priced_in_its_own_financial_year() -> None:
    mar, apr = (
        ActivityMonth("garden", "2025-03", 60, 1, 1, 1),
        ActivityMonth("garden", "2025-04", 60, 1, 1, 1),
    )
    a = lens(facts([mar, apr], [GARDEN]), with_ashe("11.00", year="2024"), geography="Wales")

    # March 2025 is in 2024/25: £11.00 is under that year's NLW of £11.44, so raised to it;
    # April 2025 is in 2025/26: raised to £12.21.
    assert a["total"]["central"] == str(Decimal("11.44") + Decimal("12.21"))


def test_an_activity_whose_proxy_the_catalogue_does_not_know_is_flagged() -> None:
    a = lens(facts([ActivityMonth("odd", "2026-01", 60, 1, 1, 1)], [info("odd", "no-such-proxy")]))

    assert "NO_PROXY" in a["by_activity"][0]["flags"] and a["total"]["central"] == "19.00"


def test_sensitivities_name_each_alternative_and_the_nlw_floor_is_the_lowest() -> None:
    a = lens(facts([JAN_2026], [GARDEN]))

    values = {s["sensitivity"]: Decimal(s["central"]) for s in a["sensitivities"]}
    assert values["central"] == Decimal("190.00")
    assert values["nlw_floor_only"] == Decimal("122.10")
    assert values["oncost_12pct"] == Decimal("212.80")
    assert values["productivity_0_8"] == Decimal("152.00")
    assert values["real_living_wage"] == Decimal("120.00")  # RLW 2023/24 £12.00


def test_a_report_in_dollars_uses_the_independent_sectors_value_of_a_volunteer_hour() -> None:
    a = lens(facts([JAN_2026], [GARDEN]), currency="USD", geography="US")

    row = a["by_activity"][0]
    assert row["methods"] == ["FLAT"] and row["rates"] == ["31.80 (2022)"]
    assert a["total"]["central"] == "318.00" and a["currency"] == "USD"


def test_a_price_base_rebases_wages_with_the_catalogues_deflator_or_says_why_not() -> None:
    deflator = {
        "price_points": [
            {"series": "HMT_GDP_DEFLATOR", "period": p, "period_type": "FY", "value": v,
             "vintage": "2026-09-30", "source": ASHE, "verification": "V"}
            for p, v in (("2025/26", "100.000"), ("2026/27", "102.500"))
        ],
    }  # fmt: skip
    ashe = json.loads(json.dumps(_additions("13.50")))
    ashe["wage_rates"][0] |= {"year": "2025/26", "period_type": "FY"}
    base = derive(shipped_catalogue(), json.dumps(ashe), scheme="taff", version="taff.1")
    with_deflator = derive(base, json.dumps(deflator), scheme="taff", version="taff.2")
    f = facts([JAN_2026], [GARDEN])

    rebased = lens(f, with_deflator, geography="Wales", price_base="2026/27")
    plain = lens(f, base, geography="Wales", price_base="2026/27")

    assert rebased["total"]["central"] == "138.38"  # 10 h x £13.50 x 102.5 / 100
    assert rebased["price_base"] == "2026/27 prices (HM Treasury GDP deflator)"
    assert plain["total"]["central"] == "135.00" and "NOT_REBASED" in plain["flags"]
    assert "no GDP deflator for 2025/26, 2026/27" in plain["price_base"]


def test_hours_before_the_catalogues_first_wage_are_listed_as_not_valued_with_the_reason() -> None:
    old = ActivityMonth("garden", "1998-06", 120, 2, 1, 2)  # before the NLW or any AWE rate
    a = lens(facts([old, JAN_2026], [GARDEN]))

    assert a["total"]["central"] == "190.00" and a["hours"] == "10.00"  # the priced hours only
    assert a["not_valued_hours"] == "2.00" and "NOT_VALUED" in a["flags"]
    [line] = a["not_valued"]
    assert (line["activity"], line["month"], line["hours"]) == ("garden", "1998-06", "2.00")
    assert line["reason"].startswith("no wage in the catalogue for 1998/99")
