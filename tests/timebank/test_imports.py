"""CSV imports: checked whole and reported by line, nothing half-written, idempotent on re-run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank.claims import ClaimRules, SchemeModel
from timebank.imports import (
    MAX_COLUMNS,
    MAX_NOTE,
    ImportRefused,
    parse_hours,
    parse_members,
    preview_hours,
    preview_members,
)
from timebank.schemes import Member, Role, Scheme
from timebank.service import TimeBank

pytestmark = pytest.mark.both_backends

TODAY = date(2026, 3, 1)
MEMBERS = "id,display_name,roles,contact,card_number\nT1,Tenant One,,,C-001\nT2,Tenant Two,,,\n"
HOURS = (
    "member,activity,date,minutes,receiver,note\n"
    "T1,residents-garden,2026-02-01,120,,weeding\n"
    "T2,residents-garden,2026-02-01,60,,\n"
    "T1,residents-garden,2026-02-01,120,,weeding\n"  # the same again: a second real session
)


@pytest.fixture
async def bank(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[TimeBank]:
    async with open_bank(tmp_path / "i.db", clock, db_url if SERVER_URL else None) as tb:
        await tb.create_scheme(Scheme("taff", "Taff", ClaimRules(SchemeModel.TIME_CREDITS)))
        await tb.add_member(Member("taff", "C1", "Cath", frozenset({Role.COORDINATOR})))
        await tb.add_activity("taff", activity("residents-garden"), by="C1")
        yield tb


def test_member_problems_are_reported_by_line_and_field() -> None:
    text = "id,display_name,roles\nok,Fine,\nbad id,,\nok,Again,boss\n"
    with pytest.raises(ImportRefused) as err:
        parse_members("taff", text)
    found = {(p.line, p.field) for p in err.value.problems}
    assert found == {(3, "id"), (3, "display_name"), (4, "roles")}


def test_a_missing_column_is_reported_against_the_header() -> None:
    with pytest.raises(ImportRefused) as err:
        parse_hours("member,activity,minutes\nT1,garden,60\n")
    assert [(p.line, p.field) for p in err.value.problems] == [(1, "date")]


def test_a_note_longer_than_the_apis_is_refused_in_the_file_and_its_preview() -> None:
    header = "member,activity,date,minutes,receiver,note\n"
    fits = f"T1,residents-garden,2026-02-01,60,,{'n' * MAX_NOTE}\n"
    over = f"T1,residents-garden,2026-02-01,60,,{'n' * (MAX_NOTE + 1)}\n"
    assert len(parse_hours(header + fits)) == 1
    with pytest.raises(ImportRefused) as err:
        parse_hours(header + fits + over)
    assert [(p.line, p.field) for p in err.value.problems] == [(3, "note")]
    preview = preview_hours(header + fits + over)
    assert [[p.field for p in line.problems] for line in preview] == [[], ["note"]]


def test_an_unbalanced_quote_is_flagged_at_its_line_not_read_as_one_long_field() -> None:
    header = "member,activity,date,minutes,receiver,note\n"
    text = (
        header
        + 'T1,garden,2026-02-01,60,,"fine\nT2,garden,2026-02-01,30,,\nT3,garden,2026-02-01,45,,\n'
    )
    for read in (parse_hours, preview_hours):
        with pytest.raises(ImportRefused) as err:
            read(text)
        [problem] = err.value.problems
        assert problem.line == 2 and "closing quote" in problem.message, problem


def test_a_hostile_header_is_refused_at_once_not_checked_column_by_column() -> None:
    wide = ",".join(f"c{i}" for i in range(100_000)) + "\n"  # 700 KB: once 149 s of checking
    for read in (parse_members, preview_members):
        with pytest.raises(ImportRefused) as err:
            read("taff", wide)
        assert err.value.problems[0].line == 1
        assert f"at most {MAX_COLUMNS}" in err.value.problems[0].message
    doubled = ",".join(["id", "display_name"] + ["x"] * (MAX_COLUMNS - 2)) + "\n"
    with pytest.raises(ImportRefused) as err:
        parse_members("taff", doubled)
    assert [(p.line, p.field) for p in err.value.problems] == [(1, "x")]


def test_identical_rows_get_distinct_stable_keys() -> None:
    rows = parse_hours(HOURS)
    assert len({r.key for r in rows}) == 3
    assert [r.key for r in parse_hours(HOURS)] == [r.key for r in rows]


async def test_members_and_hours_import_and_a_rerun_writes_nothing(bank: TimeBank) -> None:
    assert await bank.import_members("taff", MEMBERS) == 2
    assert (await bank.member("taff", "T1")).card_number == "C-001"
    done = await bank.import_hours("taff", HOURS, by="C1", today=TODAY)
    assert len(done) == 3 and await bank.balance("taff", "T1") == 240
    size = await bank.ledger.size("taff")
    assert await bank.import_members("taff", MEMBERS) == 0
    assert await bank.import_hours("taff", HOURS, by="C1", today=TODAY) == []
    assert await bank.ledger.size("taff") == size and await bank.balance("taff", "T1") == 240


async def test_one_bad_line_refuses_the_whole_file_and_writes_nothing(bank: TimeBank) -> None:
    await bank.import_members("taff", MEMBERS)
    text = HOURS + "T2,no-such-activity,2026-02-02,60,,\nT2,residents-garden,2099-01-01,60,,\n"
    with pytest.raises(ImportRefused) as err:
        await bank.import_hours("taff", text, by="C1", today=TODAY)
    assert {(p.line, p.field) for p in err.value.problems} == {(5, "activity"), (6, "date")}
    assert await bank.ledger.size("taff") == 0


async def test_a_file_cannot_put_more_than_24_hours_on_one_day(bank: TimeBank) -> None:
    await bank.import_members("taff", MEMBERS)
    lines = "".join("T1,residents-garden,2026-02-03,600,,\n" for _ in range(3))
    with pytest.raises(ImportRefused) as err:
        await bank.import_hours(
            "taff", "member,activity,date,minutes\n" + lines, by="C1", today=TODAY
        )
    assert [(p.line, p.field) for p in err.value.problems] == [(4, "minutes")]
