"""Reports as rows (the CSV shape) and the differences `report verify` names. Pure."""

from __future__ import annotations

import csv
import io
from typing import Any

from valuation.reports.compare import MAX_DIFFERENCES, differences
from valuation.reports.tables import HEADER, rows, to_csv

REPORT: dict[str, Any] = {
    "report": "valued-contribution",
    "scheme": {"id": "taff", "name": "Taff"},
    "headline": {"hours": "1.50", "minutes": 90, "balanced": True, "price_base": None},
    "outputs": {
        "by_activity": [
            {"activity": "garden", "title": "Garden, with a comma", "minutes": 60, "members": 1},
            {"activity": "panel", "title": "Panel", "minutes": 30, "members": 1},
        ],
        "credits": {"redeemed_by_partner": [{"partner": "gate", "minutes": 60}]},
    },
    "caveats": ["Hours are outputs, not outcomes."],
}


def test_every_figure_becomes_one_row_named_by_view_key_and_measure() -> None:
    found = list(rows(REPORT))

    assert ("report", "scheme", "id", "taff") in found
    assert ("headline", "", "minutes", "90") in found
    assert ("headline", "", "balanced", "true") in found and (
        "headline",
        "",
        "price_base",
        "",
    ) in found
    key = "activity=garden; title=Garden, with a comma"
    assert ("outputs.by_activity", key, "minutes", "60") in found
    assert ("outputs.credits.redeemed_by_partner", "partner=gate", "minutes", "60") in found
    assert ("caveats", "", "0", "Hours are outputs, not outcomes.") in found
    # the report's name, 2 of the scheme, 4 headline, 2 measures x 2 activities, partner, caveat
    assert len(found) == 13


def test_the_csv_file_quotes_what_needs_quoting_and_reads_back_to_the_same_rows() -> None:
    text = to_csv(REPORT)

    back = list(csv.reader(io.StringIO(text)))
    assert tuple(back[0]) == HEADER
    assert [tuple(r) for r in back[1:]] == list(rows(REPORT))


def test_equal_reports_have_no_differences_and_a_changed_figure_is_named_by_its_path() -> None:
    changed = {**REPORT, "headline": {**REPORT["headline"], "minutes": 91}}

    assert differences(REPORT, REPORT) == []
    assert differences(REPORT, changed) == ["$.headline.minutes: expected 90, found 91"]


def test_missing_extra_and_recounted_rows_are_each_reported() -> None:
    found: dict[str, Any] = {**REPORT, "extra": 1}
    del found["caveats"]
    found["outputs"] = {**REPORT["outputs"], "by_activity": REPORT["outputs"]["by_activity"][:1]}

    said = differences(REPORT, found)

    assert "$.caveats: expected ['Hours are outputs, not outcomes.'], missing" in said
    assert "$.extra: not expected, found 1" in said
    assert "$.outputs.by_activity: expected 2 rows, found 1" in said


def test_a_type_change_is_a_difference_even_when_python_calls_the_values_equal() -> None:
    assert differences({"a": 1}, {"a": True}) == ["$.a: expected 1, found True"]
    assert differences({"a": 1}, {"a": 1.0}) == ["$.a: expected 1, found 1.0"]


def test_the_list_of_differences_is_bounded() -> None:
    many = {str(i): i for i in range(200)}
    assert len(differences(many, {k: -v for k, v in many.items()})) == MAX_DIFFERENCES
