"""`timebank report` and `timebank report verify` end to end, on a demo database: a SQLite
file, or (on a server run) the demo copied to a database of the test server's."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger import KeyRing, LedgerStore
from ledger.storage import sqlite_url
from tests.conftest import SERVER_URL, server_database
from timebank.claims import ClaimDraft
from timebank.service import TimeBank

pytestmark = pytest.mark.both_backends
DEMO_PERSONAL = ("Tenant 0001", "Member 0001", "Coordinator")  # display names in the demo


def _timebank(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "main.cli", *args], capture_output=True, text=True, check=False
    )


@dataclass(frozen=True)
class Demo:
    """The demo database: the SQLite file `file`, or on a server run the server database `url`
    it was copied to; signing keys in `<file>.keys` either way."""

    file: Path
    url: str

    @property
    def where(self) -> str:
        """--db for the CLI: the file's path, or the server database's URL."""
        return self.url if SERVER_URL else str(self.file)

    @property
    def db(self) -> tuple[str, ...]:
        """--db for the CLI (with --keys for a server database: they have no default beside
        it)."""
        keys = ("--keys", f"{self.file}.keys") if SERVER_URL else ()
        return ("--db", self.where, *keys)


@pytest.fixture(scope="module")
def server_db() -> Iterator[str]:
    """On a server run, a database of the module's own on the server (conftest's `db_url` is one
    test's); on a SQLite run, ""."""
    if not SERVER_URL:
        yield ""
        return
    with server_database() as url:
        yield url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, server_db: str) -> Demo:
    db = tmp_path_factory.mktemp("report") / "demo.db"
    made = _timebank("demo", "--db", str(db), "--entries", "600")
    assert made.returncode == 0, made.stderr
    if not SERVER_URL:
        return Demo(db, sqlite_url(str(db)))
    # the demo builds on a SQLite file by design: copied to the server, and the file put away
    # so that nothing below can read it instead
    copied = _timebank("migrate-store", "--from", str(db), "--to", server_db)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    db.rename(db.with_name("copied.db"))
    return Demo(db, server_db)


def _report(db: Demo, out: Path, *extra: str) -> dict[str, object]:
    done = _timebank("report", *db.db, "--scheme", "taff-housing", "--from",
                     "2020-01-01", "--to", "2030-12-31", "-o", str(out), *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()) if out.suffix == ".json" else {}


def test_a_json_report_verifies_against_the_database_it_came_from(
    demo: Demo, tmp_path: Path
) -> None:
    report = _report(demo, tmp_path / "r.json")

    checked = _timebank("report", "verify", str(tmp_path / "r.json"), *demo.db)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK ") and "every number matches" in checked.stdout
    assert report["report"] == "valued-contribution"
    assert not any(name in (tmp_path / "r.json").read_text() for name in DEMO_PERSONAL)


def test_verify_names_each_number_that_was_changed_and_exits_1(demo: Demo, tmp_path: Path) -> None:
    report = _report(demo, tmp_path / "r.json")
    report["headline"]["minutes"] += 60  # type: ignore[index]
    (tmp_path / "forged.json").write_text(json.dumps(report))

    checked = _timebank("report", "verify", str(tmp_path / "forged.json"), *demo.db)

    assert checked.returncode == 1
    assert "DIFFERS $.headline.minutes" in checked.stdout and "FAILED" in checked.stdout


def test_a_report_still_verifies_after_the_ledger_grows_since_it_is_pinned_to_its_checkpoint(
    demo: Demo, tmp_path: Path
) -> None:
    before = _report(demo, tmp_path / "before.json")
    asyncio.run(_one_more_claim(demo))  # more hours confirmed afterwards

    after = _report(demo, tmp_path / "after.json")
    checked = _timebank("report", "verify", str(tmp_path / "before.json"), *demo.db)

    assert checked.returncode == 0, checked.stdout
    assert after["headline"]["minutes"] == before["headline"]["minutes"] + 45  # type: ignore[index]
    assert after["checkpoint"]["size"] > before["checkpoint"]["size"]  # type: ignore[index]


async def _one_more_claim(db: Demo) -> None:
    store = await LedgerStore.open(db.url, KeyRing(Path(f"{db.file}.keys")))
    bank = await TimeBank.open(db.url, store)
    try:
        draft = ClaimDraft("T0001", "T0001", "residents-garden", bank.today(), 45)
        claim = await bank.log_claim("taff-housing", draft, today=bank.today(),
                                     idempotency_key="one-more")  # fmt: skip
        await bank.confirm_claim("taff-housing", claim.id, by="C1")
    finally:
        await bank.close()
        await store.close()


def test_the_csv_report_has_one_row_per_figure_and_agrees_with_the_json(
    demo: Demo, tmp_path: Path
) -> None:
    report = _report(demo, tmp_path / "r.json")
    _report(demo, tmp_path / "r.csv", "--format", "csv")

    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))

    headline = {r["measure"]: r["value"] for r in rows if r["view"] == "headline"}
    assert headline["minutes"] == str(report["headline"]["minutes"])  # type: ignore[index]
    by_activity = [
        r for r in rows if r["view"] == "outputs.by_activity" and r["measure"] == "minutes"
    ]
    assert sum(int(r["value"]) for r in by_activity) == report["headline"]["minutes"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--scheme", "nope", "--from", "2026-01-01", "--to", "2026-02-01"], "no scheme 'nope'"),
        (["--scheme", "taff-housing", "--from", "2026-01-01"], "needs --scheme, --from and --to"),
        (["--scheme", "taff-housing", "--from", "2026-02-01", "--to", "2026-01-01"],
         "the period ends before it starts"),
    ],
)  # fmt: skip
def test_a_report_asked_for_wrongly_is_refused_with_one_line(
    demo: Demo, args: list[str], says: str
) -> None:
    done = _timebank("report", *demo.db, *args)
    assert done.returncode in (1, 2) and says in done.stderr and done.stdout == ""


def test_a_report_checks_against_the_exported_bundle_with_no_database(
    demo: Demo, tmp_path: Path
) -> None:
    report = _report(demo, tmp_path / "r.json")
    bundle = tmp_path / "log.jsonl"
    assert _timebank("export-log", "--db", demo.where, "--out", str(bundle)).returncode == 0

    checked = _timebank("report", "verify", str(tmp_path / "r.json"), "--bundle", str(bundle))
    report["outputs"]["by_activity"][0]["minutes"] += 30  # type: ignore[index]
    (tmp_path / "forged.json").write_text(json.dumps(report))
    forged = _timebank("report", "verify", str(tmp_path / "forged.json"), "--bundle", str(bundle))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "every figure the ledger decides matches" in checked.stdout
    assert "not checkable from a bundle: equality" in checked.stdout
    assert forged.returncode == 1 and "DIFFERS $.outputs.by_activity[0].minutes" in forged.stdout
