"""The files of docs/ledger-format.md section 9 besides the bundle body: the format version,
the receipt file, the published key file and the held-checkpoint file; and verify's report of
several failing ledgers (section 8)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conformance import make
from ledger.bundle import BundleError, bundle_sources, read_checkpoints, read_public_keys
from ledger.model import from_us
from ledger.records import RecordError, load_receipt, parse_receipt, receipt_json
from ledger.verify import Problem, Report, verify_sources

BOOK = make.every_kind()


def good_receipt() -> dict[str, Any]:
    return receipt_json(BOOK.receipt(3))


def test_a_receipt_is_written_with_version_1_and_read_with_or_without_it() -> None:
    o = good_receipt()
    assert list(o)[:2] == ["type", "version"] and o["version"] == 1
    legacy = {k: v for k, v in o.items() if k != "version"}
    assert parse_receipt(o) == parse_receipt(legacy) == BOOK.receipt(3)


@pytest.mark.parametrize(
    "version, says",
    [
        (2, "unsupported receipt format version 2; this verifier reads version 1"),
        (0, "unsupported receipt format version 0"),
        ("1", "field 'version' of a receipt must be an integer"),
        (True, "field 'version' of a receipt must be an integer"),
    ],
)
def test_a_receipt_of_another_version_is_refused_by_name(version: object, says: str) -> None:
    o = good_receipt() | {"version": version}
    del o["entry"]  # a later version may lay out its fields otherwise: the version speaks first
    with pytest.raises(RecordError, match=says):
        parse_receipt(o)


def test_a_receipt_file_with_a_key_twice_or_not_json_is_refused() -> None:
    text = make.receipt_text(good_receipt())
    assert load_receipt(text) == BOOK.receipt(3)
    with pytest.raises(RecordError, match="the key 'type' appears twice"):
        load_receipt(text.replace('"type": "receipt",', '"type": "receipt", "type": "receipt",'))
    with pytest.raises(RecordError, match="not JSON"):
        load_receipt(text[:-3])


def _bundle(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bundle.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


async def _summary(path: Path) -> str:
    return (await verify_sources(bundle_sources(path), workers=1)).summary()


@pytest.mark.parametrize(
    "header, says",
    [
        (make.HEADER | {"version": 2}, "line 1: unsupported bundle format version 2; this "),
        (make.HEADER | {"version": "1"}, "line 1: field 'version' of a bundle must be an integer"),
        (make.HEADER | {"format": "other", "version": 2}, "line 1: not a timebank-ledger-bundle"),
        (make.HEADER | {"extra": 1}, "line 1: not a timebank-ledger-bundle version 1 file"),
    ],
)
async def test_a_bundle_of_another_version_is_refused_by_name(
    tmp_path: Path, header: dict[str, Any], says: str
) -> None:
    path = _bundle(tmp_path, make.bundle_text(BOOK, header=header))
    with pytest.raises(BundleError, match=says):
        await _summary(path)
    path = _bundle(tmp_path, make.bundle_text(BOOK))
    assert (await _summary(path)).startswith("OK 1 ledgers, 9 entries")


def test_a_key_file_is_read_by_ledger_in_order_and_a_bundle_serves_as_one(tmp_path: Path) -> None:
    other = make.every_kind("other")
    path = _bundle(tmp_path, make.bundle_text(BOOK, other))
    assert read_public_keys(path) == {"conf": BOOK.keys, "other": other.keys}
    keys = tmp_path / "keys.jsonl"
    keys.write_text(make.keys_text(BOOK.keys) + "\n", encoding="utf-8")  # a blank line is free
    assert read_public_keys(keys) == {"conf": BOOK.keys}


@pytest.mark.parametrize(
    "old, new, says",
    [
        ('{"type":"key",', '{"type":"key","note":1,', "line 1: unknown field 'note'"),
        ('"from_seq":1,', '"from_seq":1,"from_seq":1,', "line 1: the key 'from_seq' appears"),
        ('"from_seq":1,', '"from_seq":1.0,', "line 1: field 'from_seq' must be an integer"),
    ],
)
def test_a_key_file_is_held_to_the_exact_form(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    keys = tmp_path / "keys.jsonl"
    keys.write_text(make.keys_text(BOOK.keys).replace(old, new, 1), encoding="utf-8")
    with pytest.raises(BundleError, match=says):
        read_public_keys(keys)


def test_a_held_checkpoint_file_takes_bundle_lines_and_the_api_form(tmp_path: Path) -> None:
    cp = BOOK.checkpoints[0]
    api = json.loads(make.checkpoints_text([cp]))
    del api["type"], api["time_us"]
    api |= {"time": from_us(cp.time_us).isoformat(), "url": "ignored"}
    held = tmp_path / "held.jsonl"
    held.write_text(make.bundle_text(BOOK) + json.dumps(api) + "\n", encoding="utf-8")
    assert read_checkpoints(held) == {"conf": [*BOOK.checkpoints, cp]}
    held.write_text(json.dumps(api).replace('"size": 3', '"size": 3, "size": 9'))
    with pytest.raises(BundleError, match="line 1: the key 'size' appears twice"):
        read_checkpoints(held)


def test_the_summary_has_one_line_per_failing_ledger() -> None:
    report = Report(problems=[Problem("a", 3, "bad signature"), Problem("b", None, "no keys")])
    assert report.summary().splitlines() == [
        "FAILED ledger a at sequence 3: bad signature",
        "FAILED ledger b: no keys",
    ]


async def test_verify_reports_every_failing_ledger_and_only_them(tmp_path: Path) -> None:
    first, sound, second = make.every_kind("x-1"), make.every_kind("x-2"), make.every_kind("x-3")
    first.entries[6] = replace(first.entries[6], time_us=0)
    second.keys.clear()
    path = _bundle(tmp_path, make.bundle_text(second, sound, first))  # not in name order
    report = await verify_sources(bundle_sources(path), workers=1)
    assert [(p.ledger, p.seq) for p in report.problems] == [("x-1", 7), ("x-3", None)]
    assert report.summary().splitlines() == [
        "FAILED ledger x-1 at sequence 7: stored hash does not match the entry's content "
        "(content changed)",
        "FAILED ledger x-3: the ledger has no public keys",
    ]
