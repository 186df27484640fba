"""TimeOverflow exports: read as TimeOverflow writes them, checked whole, idempotent on re-run.

The fixtures mirror coopdevs/timeoverflow's reports: `Report::MemberDecorator` (members) and
`Report::TransferDecorator` (all transfers, newest first), with the English headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import SERVER_URL, Clock
from tests.timebank.helpers import activity, open_bank
from timebank import imports
from timebank.claims import ClaimRules, SchemeModel
from timebank.imports import (
    HoursRow,
    ImportRefused,
    LineProblem,
    hours_csv,
    parse_hours,
    parse_timeoverflow_members,
    parse_timeoverflow_transfers,
    source_lines,
)
from timebank.schemes import Member, Role, Scheme
from timebank.service import TimeBank

pytestmark = pytest.mark.both_backends

TODAY = date(2026, 3, 1)
MEMBERS = (
    "N,Name,Email,Phone,Alternative Phone,Created,Last login,Locale,Balance\n"
    "1,Anna Puig,anna@example.org,600111222,,2023-01-10 09:00:00 +0100,"
    "2024-02-01 18:30:00 +0100,ca,1800\n"
    '2,"Bernat & Co, Jr",,600333444,933555666,2023-01-11 10:00:00 +0100,,es,-3600\n'
    "3,Carme Vidal,carme@example.org,,,2023-02-01 11:00:00 +0100,,en,1800\n"
)
HEADER = "Date,From,To,Post,Quantity\n"
TRANSFERS = (
    HEADER
    + "2024-02-10 17:05:09 +0100,Carme Vidal (3),Anna Puig (1),,0:30\n"
    + '2024-02-03 11:00:00 +0100,"Bernat &amp; Co, Jr (2)",Anna Puig (1),Fixing a bike,1:00\n'
    + "2024-01-20 10:15:42 UTC,Anna Puig (1),Carme Vidal (3),Dog  walking ,1:30\n"
    + '2024-01-20 09:00:00 UTC,"Bernat &amp; Co, Jr (2)",Carme Vidal (3),Dog  walking,1:00\n'
)


def problems_of(exc: pytest.ExceptionInfo[ImportRefused]) -> set[tuple[int, str]]:
    return {(p.line, p.field) for p in exc.value.problems}


def without_line(rows: list[HoursRow]) -> list[HoursRow]:
    return [replace(r, line=0) for r in rows]


# ---- members ---------------------------------------------------------------------------------


def test_members_export_maps_number_to_id_and_email_and_phones_to_contact() -> None:
    members = parse_timeoverflow_members("tob", MEMBERS)
    assert [(m.id, m.display_name) for m in members] == [
        ("to-1", "Anna Puig"), ("to-2", "Bernat & Co, Jr"), ("to-3", "Carme Vidal"),
    ]  # fmt: skip
    assert members[0].contact == "anna@example.org; 600111222"
    assert members[1].contact == "600333444; 933555666"
    assert all(m.roles == frozenset({Role.MEMBER}) and m.scheme == "tob" for m in members)


def test_an_older_members_export_with_fewer_columns_is_read() -> None:
    text = "N,Name,Email,Phone,Alternative Phone\n7,Dolors,,,\n"
    assert parse_timeoverflow_members("tob", text) == [Member("tob", "to-7", "Dolors")]


def test_member_problems_are_reported_by_line_and_column() -> None:
    text = "N,Name\n1,Anna\nx1,Bad Number\n3,\n1,Anna Again\n"
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_members("tob", text)
    assert problems_of(err) == {(3, "N"), (4, "Name"), (5, "N")}


def test_members_export_missing_the_member_number_is_refused_at_the_header() -> None:
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_members("tob", "Name,Email\nAnna,a@example.org\n")
    assert problems_of(err) == {(1, "N")}


# ---- transfers: columns and values -----------------------------------------------------------


def test_transfers_credit_to_as_the_member_who_worked_and_debit_from_as_the_one_helped() -> None:
    rows = parse_timeoverflow_transfers(TRANSFERS, activity="timeoverflow")
    newest = rows[-1]
    assert (newest.line, newest.member, newest.receiver) == (2, "to-1", "to-3")
    assert (newest.day, newest.minutes, newest.activity) == (date(2024, 2, 10), 30, "timeoverflow")
    bike = next(r for r in rows if r.line == 3)
    assert (bike.member, bike.receiver, bike.minutes, bike.note) == (
        "to-1",
        "to-2",
        60,
        "Fixing a bike",
    )


def test_quantities_are_hours_and_minutes_of_any_size() -> None:
    text = HEADER + "".join(
        f"2024-01-0{i} 10:00:00 +0100,Anna (1),Carme (3),,{q}\n"
        for i, q in enumerate(("0:15", "1:30", "12:05"), start=1)
    )
    rows = parse_timeoverflow_transfers(text, activity="timeoverflow")
    assert [r.minutes for r in rows] == [15, 90, 725]


def test_bad_dates_quantities_and_overlong_posts_are_reported_by_line_and_column() -> None:
    text = HEADER + (
        "05/03/2024 10:00,Anna (1),Carme (3),,1:00\n"
        "2024-02-30 10:00:00 +0100,Anna (1),Carme (3),,1:00\n"
        "2024-03-01 10:00:00 +0100,Anna (1),Carme (3),,1.5\n"
        "2024-03-01 10:00:00 +0100,Anna (1),Carme (3),,1:75\n"
        "2024-03-01 10:00:00 +0100,Anna (1),Carme (3),,0\n"
        "2024-03-01 10:00:00 +0100,Anna (1),Carme (3),,\n"
        f"2024-03-01 10:00:00 +0100,Anna (1),Carme (3),{'p' * 1001},1:00\n"
        "2024-03-01 10:00:00 +0100,Anna (1),Carme (3),,1:00\n"
    )
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_transfers(text, activity="timeoverflow")
    assert problems_of(err) == {
        (2, "Date"), (3, "Date"), (4, "Quantity"), (5, "Quantity"), (6, "Quantity"),
        (7, "Quantity"), (8, "Post"),
    }  # fmt: skip
    zero = next(p for p in err.value.problems if p.line == 6)
    assert "under a minute" in zero.message


def test_organisation_inactive_and_deleted_accounts_are_refused_with_the_reason() -> None:
    text = HEADER + (
        "2024-03-01 10:00:00 +0100,Banc de Temps Sant Andreu,Anna (1),Welcome hours,5:00\n"
        "2024-03-01 10:00:00 +0100,Anna (1),The user isn't active,,1:00\n"
        "2024-03-01 10:00:00 +0100,The user no longer exists,Anna (1),,1:00\n"
        "2024-03-01 10:00:00 +0100,Anna (1),Anna (1),,1:00\n"
    )
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_transfers(text, activity="timeoverflow")
    messages = {(p.line, p.field): p.message for p in err.value.problems}
    assert set(messages) == {(2, "From"), (3, "To"), (4, "From"), (5, "To")}
    assert "Banc de Temps Sant Andreu" in messages[(2, "From")]
    assert "own account" in messages[(2, "From")]
    assert "inactive member" in messages[(3, "To")]
    assert "deleted member" in messages[(4, "From")]
    assert "same member" in messages[(5, "To")]


def test_unknown_and_missing_columns_are_reported_against_the_header() -> None:
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_transfers(
            "Date,From,Post,Quantity,Reason\n2024-01-01,Anna (1),,1:00,x\n",
            activity="timeoverflow",
        )
    assert problems_of(err) == {(1, "To"), (1, "Reason")}


def test_an_export_made_in_another_language_is_refused_by_column() -> None:
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_transfers("Fecha,De,A,Anuncio,Cantidad\n", activity="timeoverflow")
    assert {p.field for p in err.value.problems} >= {"Date", "Fecha"}


def test_a_line_of_the_wrong_width_is_reported_not_dropped() -> None:
    text = TRANSFERS + "2024-03-01 10:00:00 +0100,Anna (1),Carme (3),,1:00,surplus\n"
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_transfers(text, activity="timeoverflow")
    assert problems_of(err) == {(6, "")}


def test_an_export_of_more_than_max_rows_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_transfers(TRANSFERS, activity="timeoverflow")
    assert [(p.line, p.field) for p in err.value.problems] == [(5, "")]


def test_an_empty_activity_is_refused() -> None:
    with pytest.raises(ImportRefused) as err:
        parse_timeoverflow_transfers(TRANSFERS, activity=" ")
    assert problems_of(err) == {(0, "activity")}


# ---- order and keys --------------------------------------------------------------------------


def test_rows_come_oldest_first_and_keep_their_export_lines() -> None:
    rows = parse_timeoverflow_transfers(TRANSFERS, activity="timeoverflow")
    assert [r.line for r in rows] == [5, 4, 3, 2]
    assert [r.day for r in rows] == sorted(r.day for r in rows)


def test_keys_are_stable_across_reparse_and_distinct_for_lookalike_transfers() -> None:
    twice = HEADER + (
        "2024-02-10 18:00:00 +0100,Carme Vidal (3),Anna Puig (1),,0:30\n"
        "2024-02-10 17:05:09 +0100,Carme Vidal (3),Anna Puig (1),,0:30\n"
    )
    rows = parse_timeoverflow_transfers(twice, activity="timeoverflow")
    assert len({r.key for r in rows}) == 2
    assert [r.key for r in parse_timeoverflow_transfers(twice, activity="timeoverflow")] == [
        r.key for r in rows
    ]
    assert all(r.key.startswith("import:") for r in rows)


def test_a_later_export_keeps_the_keys_of_the_transfers_already_seen() -> None:
    first = parse_timeoverflow_transfers(TRANSFERS, activity="timeoverflow")
    newer = "2024-02-20 12:00:00 +0100,Anna Puig (1),Carme Vidal (3),,0:30\n"
    later = parse_timeoverflow_transfers(
        HEADER + newer + TRANSFERS.removeprefix(HEADER), activity="timeoverflow"
    )
    assert {r.key for r in first} < {r.key for r in later}
    assert len(later) == len(first) + 1


def test_hours_csv_round_trips_through_parse_hours_with_the_same_keys() -> None:
    rows = parse_timeoverflow_transfers(TRANSFERS, activity="timeoverflow")
    again = parse_hours(hours_csv(rows))
    assert without_line(again) == without_line(rows)
    assert [r.note for r in rows] == ["Dog walking", "Dog walking", "Fixing a bike", ""]


def test_source_lines_maps_problems_in_the_rendered_csv_back_to_the_export() -> None:
    rows = parse_timeoverflow_transfers(TRANSFERS, activity="timeoverflow")
    found = [LineProblem(2, "minutes", "x"), LineProblem(5, "date", "y"), LineProblem(0, "id", "z")]
    assert [(p.line, p.field) for p in source_lines(found, rows)] == [
        (5, "minutes"), (2, "date"), (0, "id"),
    ]  # fmt: skip


# ---- end to end ------------------------------------------------------------------------------


@pytest.fixture
async def bank(tmp_path: Path, clock: Clock, db_url: str) -> AsyncIterator[TimeBank]:
    async with open_bank(tmp_path / "to.db", clock, db_url if SERVER_URL else None) as tb:
        rules = ClaimRules(SchemeModel.PERSON_TO_PERSON)
        await tb.create_scheme(Scheme("tob", "Banc de Temps", rules, member_floor=-600))
        await tb.add_member(Member("tob", "C1", "Cath", frozenset({Role.COORDINATOR})))
        await tb.add_activity("tob", activity("timeoverflow"), by="C1")
        yield tb


async def import_export(bank: TimeBank, members: str, transfers: str) -> int:
    for m in parse_timeoverflow_members("tob", members):
        await bank.add_member(m)
    rows = parse_timeoverflow_transfers(transfers, activity="timeoverflow")
    return len(await bank.import_hours("tob", hours_csv(rows), by="C1", today=TODAY))


async def test_an_export_imports_with_timeoverflows_balances_and_a_rerun_writes_nothing(
    bank: TimeBank,
) -> None:
    assert await import_export(bank, MEMBERS, TRANSFERS) == 4
    balances = {m: await bank.balance("tob", m) for m in ("to-1", "to-2", "to-3")}
    # From pays, To earns, as in TimeOverflow: Anna -90 +60 +30, Bernat -60 -60, Carme +60 +90 -30
    assert balances == {"to-1": 0, "to-2": -120, "to-3": 120}
    size = await bank.ledger.size("tob")
    assert await import_export(bank, MEMBERS, TRANSFERS) == 0  # nothing new: not written again
    assert await bank.ledger.size("tob") == size
    assert {m: await bank.balance("tob", m) for m in balances} == balances


async def test_a_later_export_adds_only_the_new_transfers(bank: TimeBank) -> None:
    await import_export(bank, MEMBERS, TRANSFERS)
    size = await bank.ledger.size("tob")
    newer = "2024-02-20 12:00:00 +0100,Anna Puig (1),Carme Vidal (3),,0:30\n"
    await import_export(bank, MEMBERS, HEADER + newer + TRANSFERS.removeprefix(HEADER))
    assert await bank.ledger.size("tob") == size + 1
    assert await bank.balance("tob", "to-1") == -30


async def test_the_schemes_refusals_map_back_to_export_lines_and_nothing_is_written(
    bank: TimeBank,
) -> None:
    for m in parse_timeoverflow_members("tob", MEMBERS):
        await bank.add_member(m)
    text = TRANSFERS + "2023-12-01 10:00:00 +0100,Anna Puig (1),Carme Vidal (3),,13:00\n"
    rows = parse_timeoverflow_transfers(text, activity="timeoverflow")
    with pytest.raises(ImportRefused) as err:
        await bank.import_hours("tob", hours_csv(rows), by="C1", today=TODAY)
    assert [(p.line, p.field) for p in source_lines(err.value.problems, rows)] == [(6, "minutes")]
    assert await bank.ledger.size("tob") == 0
