"""The hledger journal export, checked with hledger itself on real SQLite files (or, on a server
run, on databases of the test server's: the demo is built on a SQLite file, as `timebank demo`
only does, and copied there with `timebank migrate-store`; the story is built there).

Two databases, each built once per module with the real code: the demo (`timebank demo`: two
schemes, months of claims, reversals and vouchers) and a small story with what the demo lacks
(hours logged for a day in an earlier month, a reversal a month after its claim, a claim logged
on a member's behalf with a note, expired vouchers and credit, a partner's credits retired, and
members with names, contacts and card numbers). Each is exported by the CLI, and hledger's
figures are compared with the ledger's own balances and with hours computed from the time
bank's claims (never from the journal). Then the CLI's options and errors, and the pure
formatter: account names, reversals' dates, streaming.

hledger comes from `scripts/install-hledger` (apt-get, when it is not on PATH); a machine where
it cannot be installed fails these tests, saying so, rather than skipping them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import make_url

from ledger import KeyRing, LedgerStore, to_us
from ledger import storage as ledger_storage
from ledger.model import _ACCOUNT, Account, Entry, EntryKind, Posting
from partners.model import Agreement, Offer, Partner, Sector, Venue
from partners.service import Partners
from tests.conftest import SERVER_URL, Clock, server_database
from tests.timebank.helpers import activity
from timebank.activities import CoSubform
from timebank.claims import ClaimDraft, ClaimRules, ClaimStatus, SchemeModel
from timebank.journal import LedgerHead, account_name, header_lines, ledger_lines
from timebank.schemes import Member, Role, Scheme
from timebank.service import TimeBank

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.both_backends
RIVER = Scheme("riverside", "Riverside", ClaimRules(SchemeModel.TIME_CREDITS), 0, 1)
NEIGHBOURS = Scheme("neighbours", "Neighbours", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600)
TXN = re.compile(r"^(\d{4}-\d\d-\d\d)(?:=(\d{4}-\d\d-\d\d))? \(#(\d+)\) ([^;]+?)  ; (.*)$")

Hours = dict[tuple[str, str], int]  # (activity, YYYY-MM of the day given) -> minutes


# ---- hledger --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hledger() -> str:
    """hledger's path, installed by scripts/install-hledger if missing (a failure, not a skip)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "install-hledger")], capture_output=True, text=True, check=False
    )
    found = shutil.which("hledger")
    if done.returncode != 0 or found is None:
        pytest.fail(
            "these tests need hledger and scripts/install-hledger could not install it "
            f"(exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}",
            pytrace=False,
        )
    return found


def _run(hledger: str, journal: Path, *args: str) -> str:
    done = subprocess.run(
        [hledger, "-f", str(journal), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"hledger {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _minutes(cell: str) -> int:
    assert cell == "0" or cell.endswith(" min"), f"not a whole number of minutes: {cell!r}"
    return int(cell.removesuffix(" min"))


def _balances(hledger: str, journal: Path) -> dict[str, int]:
    rows = list(csv.reader(io.StringIO(_run(hledger, journal, "balance", "-E", "-O", "csv"))))
    assert rows[0] == ["account", "balance"] and rows[-1] == ["total", "0"]
    return {account: _minutes(cell) for account, cell in rows[1:-1]}


def _by_month(hledger: str, journal: Path, *query: str, date2: bool = True) -> Hours:
    """`balance --date2 -M --pivot activity QUERY -O csv` as (activity, month) -> minutes."""
    dates = ["--date2"] if date2 else []
    report = _run(
        hledger, journal, "balance", *dates, "-M", "--pivot", "activity", *query, "-O", "csv"
    )
    rows = list(csv.reader(io.StringIO(report)))
    months = rows[0][1:]
    out: Hours = {}
    for row in rows[1:]:
        if row[0] in ("total", ""):  # "": postings with no activity (vouchers, expiry)
            continue
        for month, cell in zip(months, row[1:], strict=True):
            if _minutes(cell):
                out[(row[0], month)] = _minutes(cell)
    return out


# ---- what the database says, read with the project's own API ---------------------------------


@dataclass
class Facts:
    """A database, its exported journal, and what the time bank and ledger say about it."""

    db: str  # the CLI's --db: a SQLite file's path, or a server database's URL
    journal: Path
    export_stdout: str
    schemes: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)  # hledger name -> minutes
    entries: list[tuple[str, int, str]] = field(default_factory=list)  # scheme, seq, hash hex
    hours: dict[str, Hours] = field(default_factory=dict)  # scheme -> claims net of reversals
    private: set[str] = field(default_factory=set)  # names, contacts, cards, notes


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    return subprocess.run(
        [sys.executable, "-m", "main.cli", *args],
        capture_output=True, text=True, check=False, env=env, cwd=ROOT,
    )  # fmt: skip


def _url(db: str, *, read_only: bool = False) -> str:
    """The library's URL for the CLI's --db `db`."""
    return db if SERVER_URL else ledger_storage.sqlite_url(db, read_only=read_only)


async def _facts(db: str, keys: Path, journal: Path, export_stdout: str) -> Facts:
    url = _url(db)
    store = await LedgerStore.open(url, KeyRing(keys))
    bank = await TimeBank.open(url, store)
    out = Facts(db, journal, export_stdout)
    try:
        out.schemes = await store.ledgers()
        for scheme in out.schemes:
            out.sizes[scheme] = await store.size(scheme)
            for account in await store.accounts(scheme):
                out.balances[account_name(scheme, account.code)] = account.balance
            out.hours[scheme] = await _claimed_hours(bank, scheme)
            after = ""
            while people := await bank.members(scheme, after=after, limit=500):
                for m in people:
                    out.private |= {m.display_name, m.contact, m.card_number} - {""}
                after = people[-1].id
            cursor = (0, "")
            while claims := await bank.claims(scheme, after=cursor, limit=500):
                out.private |= {c.note for _, c in claims} - {""}
                cursor = (claims[-1][0], claims[-1][1].id)
    finally:
        await bank.close()
        await store.close()
    engine = ledger_storage.make_engine(_url(db, read_only=True), read_only=True)
    try:
        async with engine.connect() as conn:
            for scheme in out.schemes:
                async for e in ledger_storage.stream_entries(conn, scheme):
                    out.entries.append((scheme, e.seq, e.hash.hex()))
    finally:
        await engine.dispose()
    return out


async def _claimed_hours(bank: TimeBank, scheme: str) -> Hours:
    """Minutes of the scheme's confirmed claims not reversed, by activity and month given."""
    hours: Hours = {}
    cursor = (0, "")
    while claims := await bank.claims(scheme, status=ClaimStatus.CONFIRMED, after=cursor):
        for _, c in claims:
            assert c.entry_seq is not None
            if c.reversal_seq is None:
                key = (c.activity, c.day.strftime("%Y-%m"))
                hours[key] = hours.get(key, 0) + c.minutes
        cursor = (claims[-1][0], claims[-1][1].id)
    return hours


def _export(db: str, journal: Path) -> str:
    done = _cli("export-journal", "--db", db, "-o", str(journal))
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facts]:
    """`timebank demo`, exported by the CLI (on a server run: copied to the server first)."""
    where = tmp_path_factory.mktemp("demo")
    file = where / "demo.db"
    made = _cli("demo", "--db", str(file), "--entries", "1500")
    assert made.returncode == 0, made.stderr
    journal = where / "demo.journal"
    keys = Path(f"{file}.keys")
    if not SERVER_URL:
        yield asyncio.run(_facts(str(file), keys, journal, _export(str(file), journal)))
        return
    with server_database() as db:
        copied = _cli("migrate-store", "--from", str(file), "--to", db)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        file.rename(where / "copied.db")  # nothing below reads the file instead
        yield asyncio.run(_facts(db, keys, journal, _export(db, journal)))


def _at(clock: Clock, when: datetime) -> date:
    clock.now_us = to_us(when.replace(tzinfo=UTC))
    return when.date()


async def _confirmed(bank: TimeBank, scheme: str, draft: ClaimDraft, key: str, by: str,
                     note: str = "") -> str:  # fmt: skip
    today = bank.today()
    claim = await bank.log_claim(scheme, draft, today=today, idempotency_key=key, note=note)
    return (await bank.confirm_claim(scheme, claim.id, by=by)).id


async def _build_story(url: str, keys: Path) -> None:
    clock = Clock()
    store = await LedgerStore.open(url, KeyRing(keys), clock=clock)
    bank = await TimeBank.open(url, store, clock)
    try:
        _at(clock, datetime(2025, 12, 1, 9))
        p = Partners(bank)
        await p.create_tables()
        people = {
            RIVER.id: [("C1", "Ceinwen Ashby-Morgan", "ceinwen.ashby@riverside.example", "RV-C1"),
                       ("A", "Angharad Pritchard", "+44 29 2000 1111", "RV-0042"),
                       ("B", "Bryn Tudor-Jones", "bryn.tj@example.org", "")],
            NEIGHBOURS.id: [("C1", "Nia Okonkwo-Hughes", "nia.oh@neighbours.example", ""),
                            ("E1", "Esther Goldblum", "esther.g@example.org", "NB-7731"),
                            ("E2", "Walter Brzezinski", "718 555 0199", ""),
                            ("E3", "Rosalind Featherstone", "", "NB-7732")],
        }  # fmt: skip
        for scheme in (RIVER, NEIGHBOURS):
            await bank.create_scheme(scheme)
            for pid, name, contact, card in people[scheme.id]:
                roles = frozenset({Role.COORDINATOR if pid == "C1" else Role.MEMBER})
                await bank.add_member(Member(scheme.id, pid, name, roles, contact, card))
        for code in ("garden", "inspect"):
            await bank.add_activity(RIVER.id, activity(code), by="C1")
        for code in ("lifts", "befriending"):
            await bank.add_activity(NEIGHBOURS.id, activity(code, CoSubform.MUTUAL_AID), by="C1")
        await p.add_partner(Partner("gate", "The Gate", Sector.THIRD))
        await p.add_venue(Venue("gate", "keppoch-st", "The Gate, Keppoch Street"))
        await p.add_offer(Offer("gate", "cinema", "Cinema ticket", 1, 750, date(2025, 1, 1)))
        await p.agree(Agreement(RIVER.id, "gate", frozenset({"cinema"}),
                                frozenset({"keppoch-st"}), date(2025, 1, 1)))  # fmt: skip

        r, n = RIVER.id, NEIGHBOURS.id
        _at(clock, datetime(2026, 1, 5, 10))  # hours given in December, on the ledger in January
        wrong = await _confirmed(
            bank,
            r,
            ClaimDraft("A", "A", "garden", date(2025, 12, 30), 120),
            "a1",
            "C1",
            note="Pruned Mrs Jenkins' roses at flat 4",
        )
        await _confirmed(
            bank, r, ClaimDraft("A", "A", "garden", date(2025, 12, 31), 90), "a0", "C1"
        )
        await _confirmed(bank, r, ClaimDraft("B", "B", "inspect", date(2026, 1, 5), 90), "b1", "C1")
        await _confirmed(
            bank,
            r,
            ClaimDraft("B", "C1", "garden", date(2026, 1, 3), 60, None, True),
            "b2",
            "C1",
            note="Bryn dug the Ely allotment beds",
        )
        _at(clock, datetime(2026, 1, 6, 11))
        await _confirmed(
            bank, n, ClaimDraft("E1", "E1", "lifts", date(2026, 1, 6), 60, "E2"), "e1", "E2"
        )
        _at(clock, datetime(2026, 1, 20, 10))
        await _confirmed(
            bank, r, ClaimDraft("A", "A", "garden", date(2026, 1, 19), 180), "a2", "C1"
        )
        _at(clock, datetime(2026, 2, 1, 9))  # given on the 31st, confirmed the next month
        await _confirmed(
            bank, n, ClaimDraft("E2", "E2", "befriending", date(2026, 1, 31), 90, "E1"), "e2", "E1"
        )
        p2p_wrong = await _confirmed(
            bank, n, ClaimDraft("E1", "E1", "lifts", date(2026, 2, 1), 30, "E3"), "e3", "E3"
        )
        _at(clock, datetime(2026, 2, 2, 12))  # a December claim reversed in February
        await bank.reverse_claim(r, wrong, by="C1", reason="wrong day")
        v1 = await p.issue(r, "A", "gate", "cinema", idempotency_key="v1")
        await p.settle(r, v1.code, partner_id="gate", venue_id="keppoch-st", idempotency_key="t")
        v2 = await p.issue(r, "A", "gate", "cinema", idempotency_key="v2")
        await p.void(r, v2.code, idempotency_key="void")
        await p.issue(r, "B", "gate", "cinema", idempotency_key="v3")  # left to expire
        _at(clock, datetime(2026, 2, 3, 9))
        await _confirmed(
            bank, r, ClaimDraft("B", "B", "inspect", date(2026, 1, 31), 45), "b3", "C1"
        )
        _at(clock, datetime(2026, 2, 10, 9))
        assert len(await store.expire_due(r, now=datetime(2026, 2, 10, 9, tzinfo=UTC))) == 1
        await p.retire(r, "gate", idempotency_key="2026-02")
        _at(clock, datetime(2026, 3, 1, 9))
        await bank.reverse_claim(n, p2p_wrong, by="C1", reason="logged twice")
        day = _at(clock, datetime(2026, 3, 10, 9))
        assert await bank.expire_credits(r, today=day)  # December's and January's credit
        _at(clock, datetime(2026, 3, 11, 9))
        await _confirmed(bank, r, ClaimDraft("A", "A", "garden", date(2026, 2, 28), 30), "a3", "C1")
    finally:
        await bank.close()
        await store.close()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facts]:
    """A small story built with the library, exported by the CLI."""
    where = tmp_path_factory.mktemp("story")
    file = where / "story.db"
    keys, journal = Path(f"{file}.keys"), where / "story.journal"
    if not SERVER_URL:
        asyncio.run(_build_story(_url(str(file)), keys))
        yield asyncio.run(_facts(str(file), keys, journal, _export(str(file), journal)))
        return
    with server_database() as db:
        asyncio.run(_build_story(db, keys))
        yield asyncio.run(_facts(db, keys, journal, _export(db, journal)))


@pytest.fixture(params=["demo", "story"])
def facts(request: pytest.FixtureRequest) -> Facts:
    found: Facts = request.getfixturevalue(request.param)
    return found


# ---- hledger reads the journal and agrees with the ledger -------------------------------------


def test_hledger_reads_the_journal_with_no_error_and_sees_every_entry(
    hledger: str, facts: Facts
) -> None:
    _run(hledger, facts.journal, "check", "--strict")  # accounts and commodity declared too
    stats = _run(hledger, facts.journal, "stats")
    assert re.search(rf"^Transactions\s*: {sum(facts.sizes.values())} ", stats, re.M), stats
    assert re.search(r"^Commodities\s*: 1 \(min\)", stats, re.M), stats
    assert facts.export_stdout == f"wrote {len(facts.entries)} entries to {facts.journal}\n"


def test_hledger_balances_equal_the_ledgers_own_balances_for_every_account(
    hledger: str, facts: Facts
) -> None:
    found = _balances(hledger, facts.journal)
    assert set(found) <= set(facts.balances), set(found) - set(facts.balances)
    for name, balance in facts.balances.items():  # an account never posted to is absent
        assert found.get(name, 0) == balance, name
    assert any(balance for balance in facts.balances.values())


def test_hours_by_activity_by_month_given_equal_the_confirmed_claims_net_of_reversals(
    hledger: str, facts: Facts
) -> None:
    for scheme in facts.schemes:
        expected = facts.hours[scheme]
        assert expected, f"no hours in {scheme}"
        mine = f"^{re.escape(scheme)}:"
        assert _by_month(hledger, facts.journal, "tag:hours=given", mine) == expected, scheme
    # A time-credit scheme's issuance account, or its members' accounts, give the same figures.
    credits = "riverside" if "riverside" in facts.schemes else "taff-housing"
    issuance = f"^{credits}:scheme:issuance$"
    members = f"^{credits}:member:"
    assert _by_month(hledger, facts.journal, "--invert", issuance) == facts.hours[credits]
    assert _by_month(hledger, facts.journal, members) == facts.hours[credits]


def test_story_hours_fall_in_the_month_given_and_reversals_cancel_their_claims_month(
    hledger: str, story: Facts
) -> None:
    # A's 120 of 30 December was reversed in February; 90 of 31 December stay in December.
    assert story.hours["riverside"] == {
        ("garden", "2025-12"): 90, ("garden", "2026-01"): 240, ("garden", "2026-02"): 30,
        ("inspect", "2026-01"): 135,
    }  # fmt: skip
    assert story.hours["neighbours"] == {("lifts", "2026-01"): 60, ("befriending", "2026-01"): 90}
    # By the ledger's own dates instead, the reversal falls in February, when it was made.
    assert _by_month(hledger, story.journal, "tag:hours=given", "^riverside:", date2=False) == {
        ("garden", "2026-01"): 450, ("garden", "2026-02"): -120, ("garden", "2026-03"): 30,
        ("inspect", "2026-01"): 90, ("inspect", "2026-02"): 45,
    }  # fmt: skip


def test_every_entry_appears_once_in_order_with_its_seq_and_hash_tags(
    hledger: str, facts: Facts
) -> None:
    found: list[tuple[str, int, str]] = []
    for line in facts.journal.read_text(encoding="utf-8").splitlines():
        if line[:1].isdigit():
            match = TXN.match(line)
            assert match, line
            tags = dict(t.split(":", 1) for t in match[5].split(", "))
            assert tags["seq"] == match[3]
            found.append((tags["scheme"], int(tags["seq"]), tags["hash"]))
    assert found == facts.entries
    # hledger reads the same code and tags on each transaction
    printed = json.loads(_run(hledger, facts.journal, "print", "-O", "json"))
    parsed = set()
    for txn in printed:
        tags = dict(txn["ttags"])
        assert txn["tcode"] == f"#{tags['seq']}"
        parsed.add((tags["scheme"], int(tags["seq"]), tags["hash"]))
    assert parsed == set(facts.entries) and len(printed) == len(facts.entries)


def test_the_journal_holds_no_names_contacts_card_numbers_or_notes(facts: Facts) -> None:
    text = facts.journal.read_text(encoding="utf-8")
    assert len(facts.private) > 10
    leaked = sorted(p for p in facts.private if p in text)
    assert not leaked


def test_the_story_journal_labels_each_kind_of_entry(story: Facts) -> None:
    text = story.journal.read_text(encoding="utf-8")
    labels = {m[4] for m in map(TXN.match, text.splitlines()) if m}
    assert labels == {
        "claim confirmed", "voucher reserved", "voucher settled", "voucher voided",
        "voucher expired", "credits expired", "partner credits retired", "reversal of #1",
        "reversal of #3",
    }  # fmt: skip
    assert "account riverside:internal:reserved  ; ledger-code:@reserved" in text
    assert re.search(r"^2026-02-02=2025-12-30 \(#\d+\) reversal of #1  ; .*activity:garden", text,
                     re.M)  # fmt: skip


# ---- the CLI ---------------------------------------------------------------------------------


def test_scheme_option_restricts_the_journal_to_that_scheme(
    hledger: str, story: Facts, tmp_path: Path
) -> None:
    out = tmp_path / "river.journal"
    done = _cli("export-journal", "--db", story.db, "--scheme", "riverside", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {story.sizes['riverside']} entries to {out}\n"
    text = out.read_text(encoding="utf-8")
    assert "neighbours" not in text and "; scheme riverside: " in text
    _run(hledger, out, "check", "--strict", "ordereddates")  # one scheme: dates never go back
    assert {a.split(":")[0] for a in _run(hledger, out, "accounts").split()} == {"riverside"}
    found = _balances(hledger, out)
    for name, balance in story.balances.items():
        if name.startswith("riverside:"):
            assert found.get(name, 0) == balance, name


def test_unknown_scheme_is_a_usage_error_with_exit_2_and_writes_nothing(
    story: Facts, tmp_path: Path
) -> None:
    out = tmp_path / "x.journal"
    done = _cli("export-journal", "--db", story.db, "--scheme", "nowhere", "-o", str(out))
    assert done.returncode == 2
    shown = make_url(story.db).render_as_string(hide_password=True) if SERVER_URL else story.db
    assert done.stderr == f"timebank: no scheme 'nowhere' in {shown}\n"
    assert not out.exists() and list(tmp_path.iterdir()) == []
    if SERVER_URL:  # a database the server does not have
        name = f"t_missing_{uuid.uuid4().hex[:12]}"
        none = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    else:
        none = str(tmp_path / "none.db")
    missing = _cli("export-journal", "--db", none, "-o", str(out))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "Traceback" not in missing.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_dash_writes_the_journal_to_stdout(story: Facts) -> None:
    done = _cli("export-journal", "--db", story.db, "-o", "-")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"wrote {len(story.entries)} entries to standard output\n"
    written = story.journal.read_text(encoding="utf-8")

    def timeless(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("; exported at ")]

    assert timeless(done.stdout) == timeless(written)


# ---- the pure formatter ----------------------------------------------------------------------

ODD_CODES = ("@reserved", "@", "@:x", "@x:", "member:a@b", "x:", "a::b", "internal",
             "internal:x", "internalx", "p/q+r.s-t", "Z")  # fmt: skip


def _entry(seq: int, when: datetime, postings: list[tuple[str, int]], *,
           kind: EntryKind = EntryKind.TRANSFER, ref: int = 0,
           meta: tuple[tuple[str, str], ...] = ()) -> Entry:  # fmt: skip
    return Entry(
        "odd", seq, bytes(32), kind, to_us(when), "0" * 16, ref, 0, "",
        tuple(Posting(a, m) for a, m in sorted(postings)), meta, bytes([seq]) * 32,
    )  # fmt: skip


@given(st.lists(st.from_regex(_ACCOUNT, fullmatch=True), min_size=1, max_size=20))
def test_every_ledger_account_code_maps_to_a_distinct_valid_hledger_name(codes: list[str]) -> None:
    names = {code: account_name("a-scheme", code) for code in codes}
    assert len(set(names.values())) == len(names)  # distinct codes, distinct names
    for code, name in names.items():
        parts = name.split(":")
        assert parts[0] == "a-scheme" and all(parts), name  # no empty hledger component
        assert not re.search(r"\s|;", name), name
        assert (parts[1] == "internal") == code.startswith("@"), name


def test_hledger_accepts_odd_account_codes_and_keeps_their_balances(
    hledger: str, tmp_path: Path
) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    head = LedgerHead("odd", len(ODD_CODES) - 1, bytes(32))
    accounts = [Account("odd", code, "member", 0) for code in ODD_CODES]
    entries = [
        _entry(i, when, [(ODD_CODES[0], -i), (code, i)]) for i, code in enumerate(ODD_CODES[1:], 1)
    ]
    journal = tmp_path / "odd.journal"
    lines = [*header_lines([head], when), *ledger_lines(head, accounts, entries)]
    journal.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run(hledger, journal, "check", "--strict", "ordereddates")
    expected = {account_name("odd", c): i for i, c in enumerate(ODD_CODES[1:], 1)}
    expected[account_name("odd", "@reserved")] = -sum(range(len(ODD_CODES)))
    assert _balances(hledger, journal) == expected
    assert set(expected) == {
        "odd:internal:reserved", "odd:internal:%40", "odd:internal:%3Ax", "odd:internal:x%3A",
        "odd:member:a@b", "odd:x%3A", "odd:a%3A:b", "odd:%69nternal", "odd:%69nternal:x",
        "odd:internalx", "odd:p/q+r.s-t", "odd:Z",
    }  # fmt: skip


def test_a_reversal_is_dated_by_the_day_and_activity_of_the_claim_it_reverses() -> None:
    claim = _entry(1, datetime(2026, 1, 5, 10, tzinfo=UTC), [("scheme:issuance", -120),
                   ("member:A", 120)], meta=(("activity", "garden"), ("claim", "c1"),
                   ("day", "2025-12-30")))  # fmt: skip
    reversal = _entry(2, datetime(2026, 2, 2, tzinfo=UTC), [("scheme:issuance", 120),
                      ("member:A", -120)], kind=EntryKind.REVERSE, ref=1,
                      meta=(("claim", "c1"), ("reason-sha256", "ab")))  # fmt: skip
    accounts = [Account("odd", "member:A", "member", 0), Account("odd", "scheme:issuance", "i", 0)]
    lines = list(ledger_lines(LedgerHead("odd", 2, bytes(32)), accounts, [claim, reversal]))
    txns = [i for i, line in enumerate(lines) if line[:1].isdigit()]
    assert lines[txns[0]].startswith("2026-01-05=2025-12-30 (#1) claim confirmed  ; seq:1, ")
    assert lines[txns[1]].startswith(
        "2026-02-02=2025-12-30 (#2) reversal of #1  ; seq:2, kind:reverse, ref:1, "
        "activity:garden, day:2025-12-30, claim:c1, scheme:odd, hash:0202"
    )
    assert lines[txns[1] + 1].split() == ["odd:member:A", "-120", "min", ";", "hours:given"]
    assert lines[txns[1] + 2].split() == ["odd:scheme:issuance", "120", "min", ";", "hours:issued"]
    assert "reason" not in lines[txns[1]]  # the reason's hash stays on the signed entry


def test_the_formatter_reads_one_entry_at_a_time() -> None:
    pulled = 0

    def entries() -> Iterator[Entry]:
        nonlocal pulled
        for seq in range(1, 1_000_000):
            pulled += 1
            yield _entry(seq % 250 + 1, datetime(2026, 1, 1, tzinfo=UTC), [("a", -1), ("b", 1)])

    head = LedgerHead("odd", 999_999, bytes(32))
    lines = ledger_lines(
        head, [Account("odd", "a", "m", 0), Account("odd", "b", "m", 0)], entries()
    )
    transactions = 0
    for line in lines:
        transactions += line[:1].isdigit()
        if transactions == 3:
            break
    assert pulled == 3
