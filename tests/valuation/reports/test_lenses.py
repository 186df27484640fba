"""Lenses B and C in a report, from outcomes and costs recorded in a real database.

Expected figures by hand: VALUATION.md 7.6 #2 (a WELLBY of 0.1 for 40 people, deadweight and
attribution 25%, one year discounted from year 1 at 3.5%: £28,260.87), and the Expert Patient
GP consultation (£27-£58, central £42.50) avoided 100 times, a saving to primary care.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import Conflict, InvalidRequest, NotFound, to_us
from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.imports import ImportRefused
from timebank.schemes import Member, Role, Scheme
from timebank.service import Forbidden, TimeBank
from valuation.reports import make_report, verify_report
from valuation.reports.engine import Parameters
from valuation.reports.inputs import Cost, CostKind, Evidence, OutcomeRecord, Rating, Subject
from valuation.reports.records import (
    import_outcomes,
    record_cost,
    record_outcome,
    record_rating,
)

pytestmark = pytest.mark.both_backends

TAFF = Scheme("taff", "Taff", ClaimRules(SchemeModel.TIME_CREDITS))
JAN1, DEC31 = date(2026, 1, 1), date(2026, 12, 31)
RUN = Parameters(
    deadweight=Decimal("0.25"),
    attribution=Decimal("0.25"),
    displacement=Decimal(0),
    drop_off=Decimal(0),
)
WELLBEING = OutcomeRecord(
    "wellbeing-2026",
    "hmt-wellby",
    JAN1,
    DEC31,
    40,
    Evidence.SURVEY,
    "ONS4 life satisfaction, baseline and 6 months, n=40",
    Decimal("0.1"),
)
GP = OutcomeRecord(
    "gp-2026",
    "expert-patient-avoided-gp-consultation",
    JAN1,
    DEC31,
    100,
    Evidence.ADMIN_DATA,
    "practice records: consultations before and after",
)


@pytest.fixture
async def bank(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[TimeBank]:
    clock.now_us = to_us(datetime(2026, 6, 1, tzinfo=UTC))
    async with open_bank(tmp_path / "lenses.db", clock, db_url if SERVER_URL else None) as bank:
        await bank.create_scheme(TAFF)
        await bank.add_member(Member(TAFF.id, "C1", "Co", frozenset({Role.COORDINATOR})))
        await bank.add_member(Member(TAFF.id, "M1", "Person"))
        await bank.add_activity(TAFF.id, activity("garden"), by="C1")
        claim = await bank.log_claim(
            TAFF.id,
            ClaimDraft("M1", "M1", "garden", JAN1, 120),
            today=bank.today(),
            idempotency_key="c",
        )
        await bank.confirm_claim(TAFF.id, claim.id, by="C1")
        yield bank


async def test_a_wellby_outcome_is_valued_as_the_treasury_guidance_vector(bank: TimeBank) -> None:
    await record_outcome(bank, TAFF.id, WELLBEING, by="C1")

    b = (await make_report(bank, TAFF.id, JAN1, DEC31, RUN))["lenses"]["B"]

    line = b["lines"][0]
    assert (
        line["gross"]["central"] == "52000.00"
        and line["after_attribution"]["central"] == "29250.00"
    )
    assert b["totals"]["pv"] == {"low": "21739.13", "central": "28260.87", "high": "34782.61"}
    assert {"ASSUMED_DW", "ASSUMED_AT", "OPTIMISM_BIAS_NOT_APPLIED"} <= set(line["flags"])
    assert b["totals"]["sroi"] is None and "sroi" in b["undefined"]  # no costs recorded


async def test_costs_are_netted_and_the_ratio_has_a_range(bank: TimeBank) -> None:
    await record_outcome(bank, TAFF.id, WELLBEING, by="C1")
    await record_cost(
        bank,
        TAFF.id,
        Cost(
            "grant-2026",
            "HOUSING_ASSOC",
            CostKind.CASH,
            JAN1,
            DEC31,
            Decimal("10000"),
            "GBP",
            "2026/27",
        ),
        by="C1",
    )

    b = (await make_report(bank, TAFF.id, JAN1, DEC31, RUN))["lenses"]["B"]

    assert b["totals"]["cost"]["central"] == "10000.00"
    assert b["totals"]["npsv"]["central"] == "18260.87"
    assert b["totals"]["sroi"] == {"low": "2.17", "central": "2.83", "high": "3.48"}


async def test_fiscal_savings_fall_to_primary_care_while_the_housing_association_pays(
    bank: TimeBank,
) -> None:
    await record_outcome(bank, TAFF.id, GP, by="C1")
    await record_cost(
        bank,
        TAFF.id,
        Cost(
            "grant", "HOUSING_ASSOC", CostKind.CASH, JAN1, DEC31, Decimal("1000"), "GBP", "2026/27"
        ),
        by="C1",
    )

    c = (await make_report(bank, TAFF.id, JAN1, DEC31, RUN))["lenses"]["C"]

    # 100 x £42.50 x 0.75 x 0.75 / 1.035 = £2,309.78: all to NHS primary care
    assert [a["agency"] for a in c["by_agency"]] == ["NHS_PRIMARY"]
    assert c["by_agency"][0]["non_cashable"]["central"] == "2309.78"
    assert c["matrix"] == [
        {"funder": "HOUSING_ASSOC", "agency": "NHS_PRIMARY", "central": "2309.78"}
    ]
    assert c["share_elsewhere"] == [{"funder": "HOUSING_ASSOC", "share": "1.0000"}]


async def test_an_outcome_without_evidenced_adjustments_is_left_out_and_says_why(
    bank: TimeBank,
) -> None:
    await record_outcome(bank, TAFF.id, WELLBEING, by="C1")

    b = (await make_report(bank, TAFF.id, JAN1, DEC31, Parameters()))["lenses"]["B"]

    assert b["lines"] == [] and b["totals"]["pv"]["central"] == "0.00"
    assert b["left_out"][0]["id"] == "wellbeing-2026" and "deadweight" in b["left_out"][0]["why"]


async def test_horizons_extend_an_outcome_only_as_far_as_its_duration(bank: TimeBank) -> None:
    await record_outcome(bank, TAFF.id, WELLBEING, by="C1")

    report = await make_report(bank, TAFF.id, JAN1, DEC31, RUN)

    pvs = {h["horizon"]: h["pv"]["central"] for h in report["horizons"]}
    assert pvs == {1: "28260.87", 3: "28260.87", 5: "28260.87", 10: "28260.87", 15: "28260.87"}


async def test_outcomes_are_recorded_once_and_a_different_record_under_the_same_id_is_refused(
    bank: TimeBank,
) -> None:
    assert await record_outcome(bank, TAFF.id, WELLBEING, by="C1") == WELLBEING
    assert await record_outcome(bank, TAFF.id, WELLBEING, by="C1") == WELLBEING
    with pytest.raises(Conflict):
        await record_outcome(bank, TAFF.id, replace(WELLBEING, people=41), by="C1")
    with pytest.raises(Forbidden):
        await record_outcome(bank, TAFF.id, GP, by="M1")
    with pytest.raises(NotFound) as unknown:
        await record_outcome(
            bank,
            TAFF.id,
            OutcomeRecord("x", "no-such-entry", JAN1, DEC31, 1, Evidence.ESTIMATE, "guess"),
            by="C1",
        )
    assert unknown.value.field == "outcome"
    with pytest.raises(InvalidRequest) as cost_value:
        await record_outcome(
            bank,
            TAFF.id,
            OutcomeRecord(
                "y", "knapp-time-bank-cost-per-member-year", JAN1, DEC31, 1, Evidence.ESTIMATE, "x"
            ),
            by="C1",
        )
    assert cost_value.value.field == "outcome"


async def test_an_outcomes_file_is_checked_whole_and_a_rerun_records_nothing_new(
    bank: TimeBank,
) -> None:
    good = (
        "id,outcome,from,to,people,evidence,evidence_note,change\n"
        "w1,hmt-wellby,2026-01-01,2026-12-31,40,survey,ONS4 n=40,0.1\n"
        "g1,expert-patient-avoided-gp-consultation,2026-01-01,2026-06-30,10,admin-data,records,\n"
    )
    bad = (
        good
        + "b1,no-such,2026-01-01,2026-12-31,x,survey,n,\n"
        + "b2,hmt-wellby,2026-02-01,2026-01-01,1,poll,n,\n"
    )

    with pytest.raises(ImportRefused) as refused:
        await import_outcomes(bank, TAFF.id, bad, by="C1")
    assert sorted({p.line for p in refused.value.problems}) == [4, 5]
    report = await make_report(bank, TAFF.id, JAN1, DEC31, RUN)
    assert report["outcomes_recorded"] == []  # nothing half-imported

    assert await import_outcomes(bank, TAFF.id, good, by="C1") == 2
    assert await import_outcomes(bank, TAFF.id, good, by="C1") == 2
    report = await make_report(bank, TAFF.id, JAN1, DEC31, RUN)
    assert [o["id"] for o in report["outcomes_recorded"]] == ["g1", "w1"]


async def test_ratings_are_reported_in_aggregate_and_small_groups_are_suppressed(
    bank: TimeBank, clock: Clock
) -> None:
    for n in range(12):
        await bank.add_member(Member(TAFF.id, f"R{n}", "Rater"))
        await record_rating(
            bank,
            TAFF.id,
            Rating(f"r{n}", f"R{n}", Subject.SERVICE, "garden", 4 if n % 3 else 5, JAN1),
        )
    await record_rating(bank, TAFF.id, Rating("p1", "R1", Subject.PARTNER, "gate", 2, JAN1))

    rows = {
        r["id"]: r for r in (await make_report(bank, TAFF.id, JAN1, DEC31, RUN))["co_assessment"]
    }

    assert rows["garden"]["ratings"] == 12 and rows["garden"]["mean"] == "4.33"
    assert rows["garden"]["scores"] == {"1": 0, "2": 0, "3": 0, "4": 8, "5": 4}
    assert rows["gate"]["suppressed"] and rows["gate"]["mean"] is None
    with pytest.raises(InvalidRequest):
        await record_rating(
            bank, TAFF.id, Rating("late", "R1", Subject.SERVICE, "garden", 3, date(2027, 1, 1))
        )


async def test_a_report_with_outcomes_verifies_and_ignores_what_was_recorded_after_it(
    bank: TimeBank, clock: Clock
) -> None:
    await record_outcome(bank, TAFF.id, WELLBEING, by="C1")
    report = await make_report(bank, TAFF.id, JAN1, DEC31, RUN)
    clock.advance(60)
    await record_outcome(bank, TAFF.id, GP, by="C1")

    assert await verify_report(bank, report) == []
    report["lenses"]["B"]["totals"]["pv"]["central"] = "1.00"
    assert await verify_report(bank, report) == [
        "$.lenses.B.totals.pv.central: expected '28260.87', found '1.00'"
    ]
