"""The activity vocabulary: sub-forms belong to their form, and bad activities are named."""

from __future__ import annotations

import pytest

from timebank.activities import (
    SUBFORMS,
    Activity,
    CoForm,
    Contribution,
    CoSubform,
    Mode,
    RelationToPaidWork,
    ServiceArea,
    Voluntariness,
    activity_problems,
)


def garden(**changes: object) -> Activity:
    base: dict[str, object] = {
        "code": "residents-garden",
        "title": "Residents' garden",
        "form": CoForm.CO_DELIVERY,
        "subform": CoSubform.CO_PERFORMING,
        "contribution": Contribution.TIME_AND_EFFORT,
        "area": ServiceArea.HOUSING,
        "mode": Mode.COLLECTIVE,
        "voluntariness": Voluntariness.VOLUNTARY,
        "relation": RelationToPaidWork.SUPPLEMENTS,
        "safeguarding_check": False,
        "proxy_code": "gardener",
    }
    base.update(changes)
    return Activity(**base)  # type: ignore[arg-type]


def test_every_subform_belongs_to_exactly_one_form() -> None:
    owners = [form for sub in CoSubform for form, subs in SUBFORMS.items() if sub in subs]
    assert len(owners) == len(CoSubform)


def test_time_banking_is_mutual_aid_under_co_delivery() -> None:
    assert CoSubform.MUTUAL_AID in SUBFORMS[CoForm.CO_DELIVERY]


def test_a_well_formed_activity_has_no_problems() -> None:
    assert activity_problems(garden()) == []
    assert activity_problems(garden(form=CoForm.CO_DESIGN, subform=None)) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "Residents Garden"}, "code"),
        ({"title": "  "}, "title"),
        ({"form": CoForm.CO_ASSESSMENT, "subform": CoSubform.CO_PERFORMING}, "subform"),
        ({"proxy_code": ""}, "proxy_code"),
    ],
)
def test_a_bad_activity_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    assert [f for f, _ in activity_problems(garden(**changes))] == [field]
