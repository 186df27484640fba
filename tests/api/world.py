"""A small world for API tests: two schemes of the two kinds, with a token for every role.

`taff` is a time-credit scheme, `m2m` person-to-person with a -600 minute floor. Each has a
scheme admin (A1), a coordinator (C1), members M1 and M2, one activity, and tokens for every
role; `world.tokens[(scheme, role)]` is the token's header dict, `world.admin` the deployment
admin's. Each scheme also has an agreement with its own partner, `p-<scheme>` (venue `hall`,
offer `swim` for 1 credit), whose staff hold the scheme's partner-staff token. Everything is
made through the API itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from ledger import from_us
from tests.api.conftest import ADMIN
from tests.conftest import Clock

SCHEMES = ("taff", "m2m")
ROLES = ("scheme-admin", "coordinator", "member", "partner-staff", "commissioner")
ACTIVITY = {
    "code": "garden", "title": "Residents' garden", "form": "co-delivery",
    "subform": "co-performing", "contribution": "time-and-effort", "area": "housing",
    "mode": "collective", "relation": "supplements-staff", "proxy_code": "gardener",
}  # fmt: skip
OFFER = {"id": "swim", "title": "A swim", "credits": 1, "cash_price_pence": 450,
         "starts": "2020-01-01"}  # fmt: skip
ASHE_ADDITION = {
    "sources": [{
        "id": "local-ashe", "title": "ASHE Table 14 extract", "publisher": "ONS", "authors": "ONS",
        "published": "2025-10", "data_year": "2025", "url": None, "licence": "OGL-3.0",
        "licence_constraints": "", "bundle_allowed": True, "evidence_tier": "official-statistic",
        "country": "GB", "notes": "",
    }],
    "wage_rates": [{
        "series": "ASHE_HOURLY_EXCL_OT", "soc_code": "5113", "soc_version": "SOC2020",
        "geography": "Wales", "year": "2025", "period_type": "CY", "statistic": "median",
        "basis": "gross hourly excluding overtime", "currency": "GBP", "value": "13.50",
        "source": "local-ashe", "verification": "V", "notes": "",
    }],
}  # fmt: skip
LIFT = ACTIVITY | {"code": "lift", "title": "A lift", "subform": "mutual-aid", "mode": "individual"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    admin: dict[str, str] = field(default_factory=lambda: bearer(ADMIN))
    tokens: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    members: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (scheme, id)

    def as_(self, scheme: str, role: str) -> dict[str, str]:
        return self.tokens[(scheme, role)]


async def ok(response: httpx.Response, status: int = 200) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def build(client: httpx.AsyncClient) -> World:
    w = World()
    schemes = {
        "taff": {"id": "taff", "name": "Taff Housing", "model": "time-credits"},
        "m2m": {"id": "m2m", "name": "Member to Member", "model": "person-to-person",
                "member_floor": -600, "auto_accept_hours": 72},
    }  # fmt: skip
    for scheme, body in schemes.items():
        await ok(await client.post("/api/v1/schemes", json=body, headers=w.admin), 201)
        people = {"A1": ["scheme-admin"], "C1": ["coordinator"], "M1": ["member"],
                  "M2": ["member"]}  # fmt: skip
        for member_id, roles in people.items():
            body = {"id": member_id, "display_name": f"{member_id} of {scheme}", "roles": roles,
                    "card_number": f"{scheme}-{member_id}"}  # fmt: skip
            await ok(
                await client.post(f"/api/v1/schemes/{scheme}/members", json=body,
                                  headers=w.admin), 201,
            )  # fmt: skip
        partner = f"p-{scheme}"  # a partner organisation with a venue and an offer, agreed
        await ok(await client.post("/api/v1/partners", headers=w.admin,
                                   json={"id": partner, "name": f"Venue of {scheme}",
                                         "sector": "third-sector"}), 201)  # fmt: skip
        await ok(await client.post(f"/api/v1/partners/{partner}/venues", headers=w.admin,
                                   json={"id": "hall", "name": "The hall"}), 201)  # fmt: skip
        await ok(await client.post(f"/api/v1/partners/{partner}/offers", headers=w.admin,
                                   json=OFFER), 201)  # fmt: skip
        await ok(await client.post(f"/api/v1/schemes/{scheme}/agreements", headers=w.admin,
                                   json={"partner": partner, "offers": ["swim"],
                                         "venues": ["hall"], "starts": "2020-01-01"}),
                 201)  # fmt: skip
        # The deployment admin makes the first scheme-admin and partner-staff tokens; the
        # scheme admin makes every other.
        for role in sorted(ROLES, key=lambda r: r not in ("scheme-admin", "partner-staff")):
            member = {"scheme-admin": "A1", "coordinator": "C1", "member": "M1"}.get(role)
            body = {"role": role, "member": member} if member else {"role": role}
            if role == "partner-staff":
                body["partner"] = partner
            maker = w.admin if role in ("scheme-admin", "partner-staff") else w.as_(
                scheme, "scheme-admin")  # fmt: skip
            made = await ok(
                await client.post(f"/api/v1/schemes/{scheme}/tokens", json=body,
                                  headers=maker), 201,
            )  # fmt: skip
            w.tokens[(scheme, role)] = bearer(str(made["token"]))
        made = await ok(
            await client.post(f"/api/v1/schemes/{scheme}/tokens",
                              json={"role": "member", "member": "M2"},
                              headers=w.as_(scheme, "scheme-admin")), 201,
        )  # fmt: skip
        w.members[(scheme, "M2")] = bearer(str(made["token"]))
        w.members[(scheme, "M1")] = w.tokens[(scheme, "member")]
        activity = ACTIVITY if scheme == "taff" else LIFT
        await ok(
            await client.post(f"/api/v1/schemes/{scheme}/activities", json=activity,
                              headers=w.as_(scheme, "coordinator")), 201,
        )  # fmt: skip
    return w


async def log_hours(c: httpx.AsyncClient, w: World, clock: Clock, minutes: list[int]) -> None:
    """M1 logs each of `minutes` on an earlier day; the coordinator confirms."""
    today = from_us(clock()).date()
    for n, m in enumerate(minutes):
        day = (today - timedelta(days=n + 1)).isoformat()
        r = await c.post("/api/v1/schemes/taff/claims", headers=w.as_("taff", "member"),
                         json={"activity": "garden", "date": day, "minutes": m})  # fmt: skip
        assert r.status_code == 201, r.text
        r = await c.post(f"/api/v1/schemes/taff/claims/{r.json()['id']}/confirm",
                         headers=w.as_("taff", "coordinator"))  # fmt: skip
        assert r.status_code == 200, r.text


def period(clock: Clock) -> dict[str, str]:
    today = from_us(clock()).date()
    return {"from": (today - timedelta(days=60)).isoformat(), "to": today.isoformat()}
