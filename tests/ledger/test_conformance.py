"""The conformance suite (conformance/): the reference verifier gives every case its verdict.

Each case runs through the `timebank` command itself (in this process), exactly as
conformance/README.md tells another implementation to run: the exit status must be the
manifest's verdict and the output must contain its message. The files must also be exactly what
conformance/make.py writes, so the suite cannot drift from its generator.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance import make
from timebank.cli import main

HERE = make.HERE
CASES: list[dict[str, Any]] = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))


def argv_for(case: dict[str, Any]) -> list[str]:
    """The command line README.md gives for a case."""
    path = str(HERE / case["file"])
    if case["kind"] == "bundle":
        argv = ["verify", "--bundle", path, "--workers", "1"]
    else:
        argv = ["verify-receipt", path]
    if "trusted_keys" in case:
        argv += ["--trusted-keys", str(HERE / case["trusted_keys"])]
    if "held_checkpoints" in case:
        argv += ["--held-checkpoints", str(HERE / case["held_checkpoints"])]
    return argv


def run(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv_for(case))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_the_reference_gives_each_case_its_verdict_and_message(
    case: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(case, capsys)
    if case["verdict"] == "ok":
        assert (code, err) == (0, ""), err
        assert case["message"] in out
    else:
        assert code != 0 and out == "", out
        assert case["message"] in err, err
        assert "Traceback" not in err


def test_each_failing_ledger_of_a_bundle_is_reported_on_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (case,) = [c for c in CASES if c.get("failing_ledgers")]
    code, _, err = run(case, capsys)
    lines = err.splitlines()
    assert code == 1
    assert [line.split()[2] for line in lines] == case["failing_ledgers"] == ["conf-b", "conf-c"]
    assert all(line.startswith("FAILED ledger ") for line in lines)
    assert "conf-a" not in err  # the sound ledger is not blamed


def test_the_files_are_what_make_py_writes() -> None:
    expected = make.expected_files()
    on_disk = {str(p.relative_to(HERE)) for p in (HERE / "cases").iterdir()} | {"cases.json"}
    assert on_disk == set(expected)
    for name, text in expected.items():
        assert (HERE / name).read_text(encoding="utf-8") == text, f"{name}: run make.py"
    assert make.main(["--check"]) == 0


def test_make_py_check_notices_a_changed_file(tmp_path: Path, monkeypatch: Any) -> None:
    copy = tmp_path / "conformance"
    (copy / "cases").mkdir(parents=True)
    for name, text in make.expected_files().items():
        (copy / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(make, "HERE", copy)
    monkeypatch.setattr(make, "CASES", copy / "cases")
    assert make.main(["--check"]) == 0
    victim = copy / "cases" / "ok-every-kind.jsonl"
    victim.write_text(victim.read_text(encoding="utf-8").replace("Café", "Cafe"), encoding="utf-8")
    assert make.main(["--check"]) == 1
    (copy / "cases" / "stray.json").write_text("{}\n", encoding="utf-8")
    victim.unlink()
    assert make.main(["--check"]) == 1


def test_the_suite_covers_every_kind_and_both_verdicts() -> None:
    verdicts = {(c["kind"], c["verdict"]) for c in CASES}
    assert verdicts == {("bundle", "ok"), ("bundle", "fail"), ("receipt", "ok"),
                        ("receipt", "fail")}  # fmt: skip
    kinds = {e["kind"] for e in make.every_kind().records() if e["type"] == "entry"}
    assert kinds == {"transfer", "reserve", "post", "void", "expire", "reverse"}
    receipts = {c["file"] for c in CASES if c["kind"] == "receipt" and c["verdict"] == "ok"}
    for kind in ("transfer", "reserve", "post", "void", "expire", "reverse"):
        assert f"cases/ok-receipt-{kind}.json" in receipts


def test_a_negative_entry_case_is_signed_so_only_its_rule_refuses_it() -> None:
    """A rule case's entries have true hashes and signatures under the listed key: a verifier
    that skipped the rule would accept them."""
    from ledger.encoding import entry_hash
    from ledger.records import parse_entry, parse_key
    from ledger.signing import verify_signature

    checked = 0
    for case in CASES:
        if not case["file"].startswith("cases/fail-entry-") or "signature" in case["file"]:
            continue
        if any(word in case["file"] for word in ("content-changed", "wrong-key", "retired")):
            continue
        lines = [json.loads(line) for line in (HERE / case["file"]).read_text().splitlines()]
        keys = {k.key_id: k for k in (parse_key(o) for o in lines if o["type"] == "key")}
        for o in (o for o in lines if o["type"] == "entry"):
            entry = parse_entry(o)
            assert entry_hash(entry) == entry.hash, case["file"]
            key = keys[entry.key_id]
            assert verify_signature(key.public_key, entry.hash, entry.signature), case["file"]
        checked += 1
    assert checked >= 25


def _documented_names() -> list[str]:
    """The case names and `prefix-*` patterns of the table in docs/ledger-format.md section 10;
    a name written `-suffix` continues the name before it (`ok-receipt-transfer`, `-post`)."""
    doc = (HERE.parent / "docs" / "ledger-format.md").read_text(encoding="utf-8")
    table = doc[doc.index("**Conformance suite.**") : doc.index("Two rules have no file")]
    names: list[str] = []
    for row in (line for line in table.splitlines() if line.startswith("| `")):
        first = row.split("|")[1]
        for name in re.findall(r"`([^`]+)`", first):
            if name.startswith("-"):
                name = names[-1].rsplit("-", 1)[0] + name
            names.append(name)
    return names


def test_the_format_document_lists_every_case_and_only_cases_that_exist() -> None:
    names = _documented_names()
    assert len(names) >= 20
    stems = [c["file"].removeprefix("cases/").rsplit(".", 1)[0] for c in CASES]

    def matches(pattern: str, stem: str) -> bool:
        return stem.startswith(pattern[:-1]) if pattern.endswith("*") else stem == pattern

    for pattern in names:
        assert any(matches(pattern, stem) for stem in stems), f"no case {pattern}"
    for stem in stems:
        assert any(matches(pattern, stem) for pattern in names), f"{stem} is not in section 10"
