"""The conformance suite (conformance/): the reference verifier gives every case its verdict.

Each case runs through the `timebank` command itself (in this process), exactly as
conformance/README.md tells another implementation to run: the exit status must be the
manifest's, agreeing with its verdict, the output must be exactly the manifest's and hold its
message. The files must also be exactly what conformance/make.py writes, so the suite cannot
drift from its generator. Every rule of docs/ledger-format.md has an id and at least one
negative case, and the document's table of them is the one make.py derives from the manifest.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from conformance import make
from main.cli import main

HERE = make.HERE
CASES: list[dict[str, Any]] = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))


def run(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, standard output and standard error, with the folder of the files left out
    (as cases.json records them)."""
    capsys.readouterr()
    code = main(make.argv_for(case, HERE))
    out, err = capsys.readouterr()
    prefix = f"{HERE}{os.sep}"
    return code, out.replace(prefix, ""), err.replace(prefix, "")


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_the_reference_gives_each_case_its_exact_verdict_and_message(
    case: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(case, capsys)
    assert code == case["exit"], (out, err)
    if case["verdict"] == "ok":
        assert code == 0 and err == "", err
        assert out == case["output"]
        assert case["message"] in out
    else:
        assert code in (1, 2) and out == "", out
        assert err == case["output"]
        assert case["message"] in err, err
        assert "Traceback" not in err
        assert len(err.splitlines()) == len(case.get("failing_ledgers", [None])), err


def test_the_manifest_says_what_each_verdict_means() -> None:
    for case in CASES:
        assert case["verdict"] in ("ok", "fail")
        assert (case["exit"] == 0) == (case["verdict"] == "ok"), case["file"]
        assert case["output"].endswith("\n") and case["message"] in case["output"]
        assert bool(case["rules"]) == (case["verdict"] == "fail"), case["file"]
        if case["verdict"] == "fail":  # a file not of the format at all is exit 2, named so
            assert case["output"].startswith(("FAILED ", "timebank: ")), case["file"]
            assert (case["exit"] == 2) == case["output"].startswith("timebank: "), case["file"]


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
    table = doc[doc.index("**Conformance suite.**") : doc.index("**Every rule and its cases.**")]
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


# ---- every rule has a negative case ------------------------------------------------------------

DOC = (HERE.parent / "docs" / "ledger-format.md").read_text(encoding="utf-8")
RULE_IDS = [rule for rule, _, _ in make.RULES]


def _between(start: str, end: str) -> str:
    at = DOC.index(start)
    return DOC[at : DOC.index(end, at)]


def _numbered(start: str, end: str) -> int:
    """How many items the numbered list between two markers of the document has (1, 2, ...)."""
    found = [int(n) for n in re.findall(r"^(\d+)\. ", _between(start, end), flags=re.M)]
    assert found == list(range(1, len(found) + 1)) and found, (start, found)
    return len(found)


def _documented_rules() -> list[str]:
    """The id of every rule the document states: its numbered lists, the rows of its phase B
    table and of its table of kinds, and the bullets of the bundle reader's rules."""
    ids = [f"sig.{n}" for n in range(1, _numbered("### Signature strictness", "A key list") + 1)]
    ids += [f"keys.{n}" for n in range(1, _numbered("**Key list rules.**", "All nine") + 1)]
    ids += [
        f"receipt.{n}" for n in range(1, _numbered("**Receipts.**", "The key list is the one") + 1)
    ]
    ids += [f"A.{n}" for n in range(1, _numbered("**Phase A", "**Phase B") + 1)]
    phase_b = re.findall(r"^\| (\d+) \|", _between("**Phase B", "**Phase C"), flags=re.M)
    ids += [f"B.{n}" for n in phase_b]
    ids += [f"C.{n}" for n in range(1, _numbered("**Phase C", "**Phase D") + 1)]
    kinds = re.findall(r"^\| `(\w+)` \|", _between("## 7. Entry kinds", "Here a is"), flags=re.M)
    ids += [f"kind.{k}" for k in kinds]
    reader = _between("The reader rejects these as a malformed bundle:", "Each of these is")
    bullets = re.findall(r"^- ", reader, flags=re.M)
    ids += [f"bundle.{n}" for n in range(1, len(bullets) + 1)]
    return ids


def test_every_numbered_rule_of_the_document_has_an_id() -> None:
    documented = _documented_rules()
    assert len(documented) == 4 + 9 + 6 + 5 + 11 + 6 + 6 + 12, documented
    assert len(phase_b := [d for d in documented if d.startswith("B.")]) == 11, phase_b
    for rule in documented:
        assert any(r == rule or r.startswith(rule + ".") for r in RULE_IDS), f"no id for {rule}"
    assert {f"kind.{k}" for k in ("transfer", "reserve", "post", "void", "expire", "reverse")} <= {
        *RULE_IDS
    }


def test_every_rule_has_a_negative_case_but_the_database_only_ones() -> None:
    by_rule = make.cases_of_rule(make.all_cases())
    unreached = [rule for rule, cases in by_rule.items() if not cases]
    database_only = [rule for rule, _, what in make.RULES if what.endswith(make.DATABASE_ONLY)]
    assert unreached == database_only == ["C.1", "E"]
    for case in CASES:
        assert set(case["rules"]) <= set(RULE_IDS), case["file"]
    failing = {c["file"].removeprefix("cases/").rsplit(".", 1)[0] for c in CASES if c["rules"]}
    for rule, names in by_rule.items():
        assert set(names) <= failing, rule
    # the rules the last session's suite lacked a case of
    for rule in ("keys.8", "sig.2.r", "C.5", "C.6", "entry.sum", "kind.reserve"):
        assert by_rule[rule], rule


def test_the_documents_rule_table_is_the_manifests() -> None:
    """The table in section 10 lists each rule's cases exactly as cases.json assigns them."""
    start = DOC.index("| rule | section | what | negative cases |")
    table = DOC[start:].split("\n\n", 1)[0].splitlines()
    assert table == make.rule_table()
    from_manifest: dict[str, list[str]] = {rule: [] for rule in RULE_IDS}
    for case in CASES:
        for rule in case["rules"]:
            from_manifest[rule].append(case["file"].removeprefix("cases/").rsplit(".", 1)[0])
    for row in table[2:]:
        rule = re.findall(r"`([^`]+)`", row.split("|")[1])[0]
        assert re.findall(r"`([^`]+)`", row.split("|")[4]) == from_manifest[rule], rule
