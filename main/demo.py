"""Demo data: a Taff-style housing scheme and a Member-to-Member-style time bank, months of it.

Everything goes through the time bank's service functions (claims logged and confirmed,
rejected or reversed) and the ledger (partner vouchers reserved, settled, voided or expired),
with a simulated clock that starts four months ago, checkpoints and a key rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ledger import Conflict, FloorBreached, InvalidRequest, LedgerStore
from partners.model import Agreement, Offer, Partner, Sector, Venue
from partners.service import Partners
from timebank.activities import (
    Activity,
    CoForm,
    Contribution,
    CoSubform,
    Mode,
    RelationToPaidWork,
    ServiceArea,
    Voluntariness,
)
from timebank.claims import ClaimDraft, ClaimRules, SchemeModel
from timebank.schemes import Member, Role, Scheme
from timebank.service import Forbidden, TimeBank
from valuation.reports.inputs import Cost, CostKind, Evidence, OutcomeRecord, Rating, Subject
from valuation.reports.records import record_cost, record_outcome, record_rating

CREDITS = "taff-housing"
P2P = "member-to-member"
# Where Taff tenants spend credits "instead of cash": (partner, name, sector, venue, venue name,
# offer, title, credits, the venue's usual price in pence)
PARTNERS = (
    (
        "cardiff-leisure",
        "Cardiff leisure centres",
        "public",
        "pentwyn",
        "Pentwyn Leisure Centre",
        "swim",
        "A swim",
        1,
        450,
    ),
    (
        "cardiff-blues",
        "Cardiff Blues",
        "private",
        "arms-park",
        "Cardiff Arms Park",
        "match-ticket",
        "A home match ticket",
        2,
        1500,
    ),
    (
        "gate-arts",
        "The Gate arts centre",
        "third-sector",
        "keppoch-street",
        "The Gate",
        "cinema",
        "A film",
        1,
        750,
    ),
)
TENANTS = tuple(f"T{n:04d}" for n in range(1, 61))
ELDERS = tuple(f"E{n:04d}" for n in range(1, 41))
GROUP = 32  # steps run concurrently, so the ledger's writer can group-commit them

F, S = CoForm, CoSubform
# the catalogue's occupation proxy that prices each activity's hours (valuation/catalogue)
PROXIES = {
    "residents-garden": "gardening",
    "estate-clean-up": "cleaning",
    "community-centre": "catering",
    "tenant-inspectors": "governance",
    "repairs-procurement": "governance",
    "newsletter-design": "design",
    "lifts": "transport",
    "befriending": "befriending",
    "shopping": "generalist",
}
TAFF_ACTIVITIES = (  # code, title, form, sub-form, contribution, area, mode, relation
    (
        "residents-garden",
        "Residents' garden",
        F.CO_DELIVERY,
        S.CO_PERFORMING,
        Contribution.TIME_AND_EFFORT,
        ServiceArea.ENVIRONMENT,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUPPLEMENTS,
    ),
    (
        "estate-clean-up",
        "Estate clean-up",
        F.CO_DELIVERY,
        S.CO_PERFORMING,
        Contribution.TIME_AND_EFFORT,
        ServiceArea.HOUSING,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUPPLEMENTS,
    ),
    (
        "community-centre",
        "Community centre cafe",
        F.CO_DELIVERY,
        S.CO_MANAGEMENT,
        Contribution.SKILLS,
        ServiceArea.LEISURE,
        Mode.COLLECTIVE,
        RelationToPaidWork.NEW,
    ),
    (
        "tenant-inspectors",
        "Tenant inspectors panel",
        F.CO_ASSESSMENT,
        S.CO_MONITORING,
        Contribution.EXPERTISE,
        ServiceArea.HOUSING,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUPPLEMENTS,
    ),
    (
        "repairs-procurement",
        "Repairs procurement panel",
        F.CO_COMMISSIONING,
        S.CO_PRIORITISATION,
        Contribution.EXPERTISE,
        ServiceArea.HOUSING,
        Mode.COLLECTIVE,
        RelationToPaidWork.NEW,
    ),
    (
        "newsletter-design",
        "Newsletter design group",
        F.CO_DESIGN,
        None,
        Contribution.SKILLS,
        ServiceArea.HOUSING,
        Mode.COLLECTIVE,
        RelationToPaidWork.SUBSTITUTES,
    ),
)
M2M_ACTIVITIES = (
    ("lifts", "Lifts to appointments", ServiceArea.HEALTH),
    ("befriending", "Befriending", ServiceArea.SOCIAL_CARE),
    ("shopping", "Shopping", ServiceArea.SOCIAL_CARE),
)


def _answers(n: int) -> dict[str, str]:
    """Equality-monitoring answers for demo member n: four in five consented (made up, varied)."""
    if n % 5 == 4:
        return {}
    rng = random.Random(n)
    return {
        "consent": "yes",
        "age_band": rng.choice(["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-plus"]),
        "area_code": rng.choice(["CF10", "CF11", "CF24", "CF5"]),
        "disability": rng.choice(["yes", "no", "no", "no", "prefer-not-to-say"]),
        "deprivation_decile": str(rng.choice([1, 1, 2, 2, 3, 4, 5, 7])),
        "participant_role": rng.choice(["tenant", "tenant", "tenant", "carer", "volunteer"]),
    }


class SimClock:
    """A clock that starts in the past and moves forward a little with every reading."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now_us = int(start.timestamp() * 1_000_000)
        self.rng = rng

    def __call__(self) -> int:
        self.now_us += self.rng.randint(1, 120) * 1_000_000
        return self.now_us

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_us / 1_000_000, UTC)


def demo_clock(seed: int = 7) -> SimClock:
    return SimClock(datetime.now(UTC) - timedelta(days=120), random.Random(seed))


async def _set_up(bank: TimeBank) -> None:
    taff = Scheme(CREDITS, "Taff Housing (demo)", ClaimRules(SchemeModel.TIME_CREDITS))
    m2m = Scheme(P2P, "Member to Member (demo)", ClaimRules(SchemeModel.PERSON_TO_PERSON), -600)
    for scheme, people, label in ((taff, TENANTS, "Tenant"), (m2m, ELDERS, "Member")):
        await bank.create_scheme(scheme)
        await bank.add_member(Member(scheme.id, "C1", "Coordinator", frozenset({Role.COORDINATOR})))
        await asyncio.gather(
            *(
                bank.add_member(Member(scheme.id, p, f"{label} {p[1:]}", attributes=_answers(n)))
                for n, p in enumerate(people)
            )
        )
    for code, title, form, sub, contribution, area, mode, relation in TAFF_ACTIVITIES:
        activity = Activity(
            code,
            title,
            form,
            sub,
            contribution,
            area,
            mode,
            Voluntariness.VOLUNTARY,
            relation,
            False,
            PROXIES[code],
        )
        await bank.add_activity(CREDITS, activity, by="C1")
    for code, title, area in M2M_ACTIVITIES:
        activity = Activity(
            code,
            title,
            F.CO_DELIVERY,
            S.MUTUAL_AID,
            Contribution.TIME_AND_EFFORT,
            area,
            Mode.INDIVIDUAL,
            Voluntariness.VOLUNTARY,
            RelationToPaidWork.NEW,
            True,
            PROXIES[code],
        )
        await bank.add_activity(P2P, activity, by="C1")
    partners = Partners(bank)
    await partners.create_tables()
    for pid, name, sector, venue, venue_name, offer, title, credits, pence in PARTNERS:
        await partners.add_partner(Partner(pid, name, Sector(sector)))
        await partners.add_venue(Venue(pid, venue, venue_name))
        await partners.add_offer(Offer(pid, offer, title, credits, pence, date(2020, 1, 1)))
        await partners.agree(
            Agreement(
                CREDITS,
                pid,
                frozenset({offer}),
                frozenset({venue}),
                date(2020, 1, 1),
                voucher_hours=6,
            )
        )


async def _step(bank: TimeBank, clock: SimClock, rng: random.Random, key: str) -> None:
    """One thing that happens in a scheme."""
    today = clock.now.date()
    roll = rng.random()
    if roll < 0.5:  # a tenant's hours, confirmed by the coordinator (a few rejected, reversed)
        tenant = rng.choice(TENANTS)
        draft = ClaimDraft(
            tenant,
            tenant,
            rng.choice(TAFF_ACTIVITIES)[0],
            today,
            rng.choice([30, 60, 90, 120, 180]),
        )
        claim = await bank.log_claim(CREDITS, draft, today=today, idempotency_key=key)
        fate = rng.random()
        if fate < 0.05:
            await bank.reject_claim(CREDITS, claim.id, by="C1", reason="not on the rota that day")
            return
        await bank.confirm_claim(CREDITS, claim.id, by="C1")
        if fate > 0.97:
            await bank.reverse_claim(CREDITS, claim.id, by="C1", reason="logged twice")
    elif roll < 0.8:  # an older member helps another, and the one helped confirms
        giver, receiver = rng.sample(ELDERS, 2)
        draft = ClaimDraft(
            giver, giver, rng.choice(M2M_ACTIVITIES)[0], today, rng.choice([30, 60, 120]), receiver
        )
        claim = await bank.log_claim(P2P, draft, today=today, idempotency_key=key)
        await bank.confirm_claim(P2P, claim.id, by=receiver)
    else:  # a voucher at a partner venue: reserved, then settled, voided or left to expire
        partners = Partners(bank)
        pid, *_, venue, _name, offer, _title, _credits, _pence = rng.choice(PARTNERS)
        voucher = await partners.issue(
            CREDITS, rng.choice(TENANTS), pid, offer, idempotency_key=key
        )
        fate = rng.random()
        if fate < 0.75:
            await partners.settle(
                CREDITS, voucher.code, partner_id=pid, venue_id=venue, idempotency_key=f"{key}:till"
            )
        elif fate < 0.9:
            await partners.void(CREDITS, voucher.code, idempotency_key=f"{key}:void")


async def _guarded(bank: TimeBank, clock: SimClock, seed: int, key: str) -> None:
    # not enough credit, a full day, a clash: as happens in real schemes
    with contextlib.suppress(FloorBreached, Conflict, Forbidden, InvalidRequest):
        await _step(bank, clock, random.Random(seed), key)


async def build_demo(bank: TimeBank, clock: SimClock, entries: int = 3000) -> None:
    """Fill both schemes with about `entries` ledger entries of history."""
    await _set_up(bank)
    ledger = bank.ledger
    step = 0
    while await _size(ledger) < entries:
        await asyncio.gather(
            *(_guarded(bank, clock, step + i, f"demo:{step + i}") for i in range(GROUP))
        )
        step += GROUP
        for lg in (CREDITS, P2P):
            await ledger.expire_due(lg, now=clock.now)
            if step % (GROUP * 16) == 0:
                await ledger.checkpoint(lg, idempotency_key=f"demo:cp:{step}:{lg}")
        if step == GROUP * 40:
            await ledger.rotate_key(CREDITS, idempotency_key="demo:rotate")
    for lg in (CREDITS, P2P):
        await ledger.checkpoint(lg, idempotency_key=f"demo:final:{lg}")
    await _offers_and_requests(bank, random.Random(11))
    await _report_inputs(bank, clock)


async def _report_inputs(bank: TimeBank, clock: SimClock) -> None:
    """What Taff Housing records for its reports besides hours (figures made up for the demo):
    a wellbeing survey, fewer A&E attendances, the programme's costs, tenants' ratings."""
    end = clock.now.date()
    start = end - timedelta(days=120)
    outcomes = (
        OutcomeRecord(
            "wellbeing-survey",
            "hmt-wellby",
            start,
            end,
            38,
            Evidence.SURVEY,
            "ONS4 life satisfaction at joining and after 3 months (demo)",
            Decimal("0.3"),
        ),
        OutcomeRecord(
            "fewer-ae-visits",
            "refcost-2013-14-ed-not-admitted",
            start,
            end,
            25,
            Evidence.ADMIN_DATA,
            "A&E attendances avoided, from GP records (demo)",
        ),
    )
    for outcome in outcomes:
        await record_outcome(bank, CREDITS, outcome, by="C1")
    costs = (
        Cost(
            "coordinator-post",
            "HOUSING_ASSOC",
            CostKind.COORDINATION,
            start,
            end,
            Decimal("9000"),
            "GBP",
            "2026/27",
            "a part-time time-credits coordinator (demo)",
        ),
        Cost(
            "council-grant",
            "COUNCIL",
            CostKind.CASH,
            start,
            end,
            Decimal("3000"),
            "GBP",
            "2026/27",
            "community grant (demo)",
        ),
    )
    for cost in costs:
        await record_cost(bank, CREDITS, cost, by="C1")
    for n, tenant in enumerate(TENANTS):
        subject = TAFF_ACTIVITIES[n % 3][0]
        await record_rating(
            bank, CREDITS, Rating(f"demo-{n}", tenant, Subject.SERVICE, subject, 3 + n % 3, end)
        )


SKILLS = ("driving", "shopping", "befriending", "gardening", "reading", "phone-calls", "cooking")
AREAS = ("BK-11", "BK-12", "BK-14", "BK-15")  # Brooklyn community districts


async def _offers_and_requests(bank: TimeBank, rng: random.Random) -> None:
    """What members of the person-to-person bank can offer and need, by skill and area."""
    for n, member in enumerate(ELDERS):
        skills, area = rng.sample(SKILLS, 2), rng.choice(AREAS)
        if n % 3 != 2:
            await bank.market.add_offer(
                P2P,
                member,
                skills,
                area,
                "weekday mornings",
                "",
                idempotency_key=f"demo:offer:{member}",
            )
        if n % 4 == 0:
            await bank.market.add_request(
                P2P,
                member,
                skills[:1],
                area,
                "this week",
                "",
                idempotency_key=f"demo:request:{member}",
            )


async def _size(ledger: LedgerStore) -> int:
    return sum([await ledger.size(lg) for lg in await ledger.ledgers()])
