"""The activity catalogue's vocabulary: how a kind of contribution is classified. Pure.

The words come from the co-production literature summarised in ../shared/DOMAIN.md section 3
(Bovaird and Loeffler; Boyle and Harris): the four "co-" forms and their sub-forms, the five
kinds of contribution, individual or collective, voluntary or mandated, and whether the hours
substitute for paid staff, supplement them or are new. Reports are split by these fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class CoForm(StrEnum):
    CO_COMMISSIONING = "co-commissioning"
    CO_DESIGN = "co-design"
    CO_DELIVERY = "co-delivery"
    CO_ASSESSMENT = "co-assessment"


class CoSubform(StrEnum):
    CO_PLANNING = "co-planning"
    CO_PRIORITISATION = "co-prioritisation"
    CO_FINANCING = "co-financing"
    CO_MANAGEMENT = "co-management"
    CO_PERFORMING = "co-performing"
    MUTUAL_AID = "mutual-aid"  # co-operative achievement of quality of life: time banking
    CO_MONITORING = "co-monitoring"
    CO_EVALUATION = "co-evaluation"


SUBFORMS: dict[CoForm, frozenset[CoSubform]] = {
    CoForm.CO_COMMISSIONING: frozenset(
        {CoSubform.CO_PLANNING, CoSubform.CO_PRIORITISATION, CoSubform.CO_FINANCING}
    ),
    CoForm.CO_DESIGN: frozenset(),
    CoForm.CO_DELIVERY: frozenset(
        {CoSubform.CO_MANAGEMENT, CoSubform.CO_PERFORMING, CoSubform.MUTUAL_AID}
    ),
    CoForm.CO_ASSESSMENT: frozenset({CoSubform.CO_MONITORING, CoSubform.CO_EVALUATION}),
}


class Contribution(StrEnum):
    EXPERTISE = "expertise"
    SKILLS = "skills"
    TIME_AND_EFFORT = "time-and-effort"
    CO_OPERATION = "co-operation"  # with the service process, e.g. keeping to a regime
    LEGITIMATION = "legitimation"  # testimonials and public support


class Mode(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"


class Voluntariness(StrEnum):
    VOLUNTARY = "voluntary"
    MANDATED = "mandated"  # e.g. jury service that is part of a youth court sentence


class RelationToPaidWork(StrEnum):
    SUBSTITUTES = "substitutes-staff"
    SUPPLEMENTS = "supplements-staff"
    NEW = "new-activity"


class ServiceArea(StrEnum):
    HOUSING = "housing"
    HEALTH = "health"
    SOCIAL_CARE = "social-care"
    COMMUNITY_SAFETY = "community-safety"
    EDUCATION = "education"
    ENVIRONMENT = "environment"
    LEISURE = "leisure"
    JUSTICE = "justice"
    OTHER = "other"


_CODE = re.compile(r"[a-z][a-z0-9-]{0,63}")


@dataclass(frozen=True, slots=True)
class Activity:
    """A kind of contribution a scheme recognises, and the proxy that prices its hours."""

    code: str
    title: str
    form: CoForm
    subform: CoSubform | None
    contribution: Contribution
    area: ServiceArea
    mode: Mode
    voluntariness: Voluntariness
    relation: RelationToPaidWork
    safeguarding_check: bool
    proxy_code: str
    retired: bool = False


def activity_problems(a: Activity) -> list[tuple[str, str]]:
    """(field, message) for each way the activity is not well formed; empty when it is."""
    out: list[tuple[str, str]] = []
    if not _CODE.fullmatch(a.code):
        out.append(("code", "a short lower-case code: letters, digits and '-'"))
    if not a.title.strip() or len(a.title) > 200:
        out.append(("title", "a title of 1 to 200 characters"))
    if a.subform is not None and a.subform not in SUBFORMS[a.form]:
        allowed = ", ".join(sorted(SUBFORMS[a.form])) or "none"
        out.append(("subform", f"{a.form} takes these sub-forms: {allowed}"))
    if not _CODE.fullmatch(a.proxy_code):
        out.append(("proxy_code", "the code of the valuation proxy that prices these hours"))
    return out
