"""Every command over a table of bad inputs: one line naming what is at fault, the documented
exit code (2: bad arguments or unreadable input), never a traceback, and no database made by
any command but `init` and `demo`. In process through the CLI's `main`; a sample as real
subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.storage import sqlite_url
from main.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.both_backends  # the table is SQLite files and URLs of no server

# Each command with its required arguments; "DB" is replaced by the --db under test.
COMMANDS: dict[str, list[str]] = {
    "verify": ["verify", "--db", "DB", "--workers", "1"],
    "export-log": ["export-log", "--db", "DB", "--out", "OUT/log.jsonl"],
    "export-journal": ["export-journal", "--db", "DB", "-o", "OUT/j.journal"],
    "keys": ["keys", "--db", "DB", "--ledger", "taff"],
    "keys rotate": ["keys", "rotate", "--db", "DB", "--ledger", "taff"],
    "checkpoint": ["checkpoint", "--db", "DB"],
    "expire": ["expire", "--db", "DB"],
    "repair-decisions": ["repair-decisions", "--db", "DB"],
    "receipt": ["receipt", "--db", "DB", "--ledger", "taff", "--seq", "1"],
    "report": ["report", "--db", "DB", "--scheme", "taff", "--from", "2026-01-01",
               "--to", "2026-01-31"],
    "token create": ["token", "create", "--db", "DB", "--role", "admin"],
    "account create": ["account", "create", "--db", "DB", "--login", "ann", "--role", "member",
                       "--scheme", "taff", "--member", "M1"],
    "migrate": ["migrate", "--db", "DB"],
    "migrate-store": ["migrate-store", "--from", "DB", "--to", "OUT/copy.db"],
    "init": ["init", "--db", "DB"],
}  # fmt: skip
MAKES = {"init"}  # of these, the one that may make a database where there is none (and demo)


def _missing(tmp: Path) -> str:
    return str(tmp / "nope.db")


def _missing_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'nope.db'}"


def _garbage(tmp: Path) -> str:
    path = tmp / "garbage.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    return str(path)


def _directory(tmp: Path) -> str:
    (tmp / "a-directory").mkdir()
    return str(tmp / "a-directory")


BAD_DB: dict[str, tuple[Callable[[Path], str], str]] = {
    # name: (the --db, what the one line says)
    "a missing file": (_missing, "no database at"),
    "a missing file as a sqlite:/// URL": (_missing_url, "no database at"),
    "a file that is not a database": (_garbage, "cannot use the database: file is not a database"),
    "a directory": (_directory, "is a directory"),
    "mysql://": (lambda _t: "mysql://ann@127.0.0.1/tb", "'mysql' databases are not supported"),
    "bogus://": (lambda _t: "bogus://x", "'bogus' databases are not supported"),
    "an empty --db": (lambda _t: "", "--db is empty"),
    "a server that does not answer": (lambda _t: "postgresql://tb@127.0.0.1:9/tb",
                                      "cannot reach the database server"),
}  # fmt: skip


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("TIMEBANK_")}
    try:
        code = main(argv)
    finally:
        os.environ.update(env)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("bad", list(BAD_DB))
def test_every_command_refuses_a_bad_database_in_one_line_and_makes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    wrong = []
    for name, template in COMMANDS.items():
        where = tmp_path / name.replace(" ", "-")
        (where / "OUT").mkdir(parents=True)
        make, says = BAD_DB[bad]
        db = make(where)
        if name in MAKES and "missing" in bad:
            continue  # init makes the database: that is what it is for
        before = sorted(p.name for p in where.rglob("*"))
        argv = [db if a == "DB" else a.replace("OUT", str(where / "OUT")) for a in template]
        code, out, err = run(argv, capsys)
        lines = err.splitlines()
        after = sorted(p.name for p in where.rglob("*"))
        if code != 2 or len(lines) != 1 or says not in err or "Traceback" in err:
            wrong.append(f"{name}: exit {code}, stderr {err!r}")
        elif after != before:
            wrong.append(f"{name}: made {sorted(set(after) - set(before))}")
        elif out and name != "migrate-store":
            wrong.append(f"{name}: printed {out!r}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    db = tmp_path / "demo.db"
    code, _, err = run(["demo", "--db", str(db), "--entries", "60"], capsys)
    assert code == 0, err
    return db


def test_bad_arguments_to_a_real_database_are_one_line_and_exit_2(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "keys.jsonl"
    latin1.write_bytes(b'{"ledger": "caf\xe9"}\n')
    db = str(demo)
    cases = [
        (["receipt", "--db", db, "--ledger", "taff-housing", "--seq", "-5"], "seq"),
        (["receipt", "--db", db, "--ledger", "nowhere", "--seq", "1"], "no ledger 'nowhere'"),
        (["report", "--db", db, "--scheme", "nowhere", "--from", "2026-01-01",
          "--to", "2026-01-31"], "nowhere"),
        (["verify", "--db", db, "--trusted-keys", str(latin1)], f"--trusted-keys {latin1}"),
        (["verify", "--db", db, "--held-checkpoints", str(tmp_path / "none.jsonl")],
         "none.jsonl"),
        (["verify-receipt", str(latin1)], f"{latin1} is not a receipt"),
        (["migrate-store", "--from", db, "--to", db], "not empty"),
        (["token", "create", "--db", sqlite_url(db), "--role", "member", "--scheme", "nowhere",
          "--member", "M1"], "nowhere"),
    ]  # fmt: skip
    wrong = []
    for argv, says in cases:
        code, _, err = run(argv, capsys)
        if code != 2 or len(err.splitlines()) != 1 or says not in err:
            wrong.append(f"{' '.join(argv[:2])}: exit {code}, stderr {err!r}")
    assert not wrong, "\n".join(wrong)


def test_every_documented_form_of_db_reaches_the_same_database(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for form in (str(demo), f"sqlite:///{demo}", sqlite_url(str(demo))):
        code, out, err = run(["verify", "--db", form, "--workers", "1"], capsys)
        assert code == 0 and out.startswith("OK 2 ledgers"), (form, err)
        code, out, err = run(["migrate", "--db", form], capsys)
        assert code == 0 and out.startswith("schema "), (form, err)


def test_a_failed_migrate_store_leaves_no_half_made_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "copy.db"
    code, _, err = run(["migrate-store", "--from", _garbage(tmp_path), "--to", str(target)],
                       capsys)  # fmt: skip
    assert code == 2 and "file is not a database" in err, err
    assert not list(tmp_path.glob("copy.db*"))


def test_as_real_processes_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    for argv in (["verify", "--db", _garbage(tmp_path)], ["migrate", "--db", "bogus://x"],
                 ["token", "create", "--db", _missing(tmp_path), "--role", "admin"]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "main.cli", *argv], capture_output=True,
                              text=True, check=False, env=env, cwd=ROOT)  # fmt: skip
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stdout == ""
    assert not (tmp_path / "nope.db").exists()
