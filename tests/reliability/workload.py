"""A seeded mixed workload over HTTP, and the client's record of what the server acknowledged.

One time-credit scheme (`taff`): a coordinator logs claims for eight members and confirms them,
takes vouchers for members with credit, and the partner's staff settle them at the till. Every
write carries an Idempotency-Key. A write the server answered is *acknowledged* (its answer
recorded); a write whose connection dropped is *unknown* until it is retried with the same key.
`check_store` then holds the database to every acknowledgement.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tests.api.test_uvicorn import ADMIN, V1
from tests.api.world import ACTIVITY, OFFER, bearer
from tests.conftest import count_rows

SCHEME = "taff"
MEMBERS = tuple(f"M{i}" for i in range(1, 9))
PARTNER, VENUE = "p-gate", "hall"
MINUTES = (15, 30, 45, 60, 90, 120)
DAYS = 300  # claims fall on the last DAYS days


@dataclass(frozen=True)
class Write:
    """One write request, resendable as it was: the same key, body and caller."""

    kind: str  # claim | confirm | voucher | settle
    path: str
    caller: str  # coordinator | partner
    key: str
    body: dict[str, Any]


@dataclass
class Record:
    """What the client knows: answers to writes, and writes with no answer yet; and, kept as
    answers come, the claims still to confirm and the vouchers still to settle."""

    acknowledged: dict[str, tuple[Write, int, dict[str, Any]]] = field(default_factory=dict)
    unknown: dict[str, Write] = field(default_factory=dict)
    succeeded: list[Write] = field(default_factory=list)
    to_confirm: set[str] = field(default_factory=set)
    to_settle: set[str] = field(default_factory=set)
    sent: int = 0
    retries: int = 0

    def answered(self, w: Write, status: int, body: dict[str, Any]) -> None:
        assert status < 500, f"{w.kind} {w.path} -> {status}: {body}"
        self.unknown.pop(w.key, None)
        if w.key in self.acknowledged:  # a retry: one outcome per key
            self.retries += 1
            first = self.acknowledged[w.key]
            assert first[1] == status and same(w.kind, first[2], body), (w, first, status, body)
            return
        self.acknowledged[w.key] = (w, status, body)
        if status >= 300:
            return
        self.succeeded.append(w)
        if w.kind == "claim":
            self.to_confirm.add(body["id"])
        elif w.kind == "confirm":
            self.to_confirm.discard(body["id"])
        elif w.kind == "voucher":
            self.to_settle.add(body["code"])
        elif w.kind == "settle":
            self.to_settle.discard(body["code"])

    def ok(self, kind: str) -> list[dict[str, Any]]:
        return [self.acknowledged[w.key][2] for w in self.succeeded if w.kind == kind]


def same(kind: str, first: dict[str, Any], again: dict[str, Any]) -> bool:
    """Whether a retried write's answer is the first one's (the fields a client relies on)."""
    fields = {"claim": ("id", "member", "minutes"), "confirm": ("id", "status", "entry_seq"),
              "voucher": ("code", "reservation", "minutes"), "settle": ("code", "settled_by"),
              }.get(kind, ())  # fmt: skip
    return all(first.get(f) == again.get(f) for f in fields)


async def set_up(c: httpx.AsyncClient, base: str) -> dict[str, dict[str, str]]:
    """The scheme, its members, activity, partner and agreement; the callers' headers."""

    async def made(path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        r = await c.post(base + V1 + path, json=body, headers=headers)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    admin = bearer(ADMIN)
    await made("/schemes", {"id": SCHEME, "name": "Taff", "model": "time-credits"}, admin)
    for m in ("A1", "C1", *MEMBERS):
        roles = [{"A1": "scheme-admin", "C1": "coordinator"}.get(m, "member")]
        await made(f"/schemes/{SCHEME}/members", {"id": m, "display_name": m, "roles": roles},
                   admin)  # fmt: skip
    await made("/partners", {"id": PARTNER, "name": "The Gate", "sector": "third-sector"}, admin)
    await made(f"/partners/{PARTNER}/venues", {"id": VENUE, "name": "The hall"}, admin)
    await made(f"/partners/{PARTNER}/offers", OFFER, admin)
    await made(f"/schemes/{SCHEME}/agreements", {"partner": PARTNER, "offers": [OFFER["id"]],
               "venues": [VENUE], "starts": "2020-01-01"}, admin)  # fmt: skip
    # the admin makes the first scheme-admin token; the scheme admin makes the coordinator's
    head = await made(f"/schemes/{SCHEME}/tokens", {"role": "scheme-admin", "member": "A1"}, admin)
    staff = await made(f"/schemes/{SCHEME}/tokens", {"role": "coordinator", "member": "C1"},
                       bearer(head["token"]))  # fmt: skip
    till = await made(f"/schemes/{SCHEME}/tokens", {"role": "partner-staff",
                      "partner": PARTNER}, admin)  # fmt: skip
    callers = {"coordinator": bearer(staff["token"]), "partner": bearer(till["token"])}
    await made(f"/schemes/{SCHEME}/activities", ACTIVITY, callers["coordinator"])
    return callers


class Workload:
    """Seeded writers: each `step` picks the next write from what has been acknowledged."""

    def __init__(self, seed: int, callers: dict[str, dict[str, str]], today: date) -> None:
        self.rng = random.Random(seed)
        self.callers = callers
        self.today = today
        self.record = Record()
        self.inflight: set[str] = set()  # keys sent and not answered: never sent twice at once
        self.n = 0

    def next_write(self) -> Write:
        self.n += 1
        n, rng, record = self.n, self.rng, self.record
        roll = rng.random()
        if roll < 0.05 and record.succeeded:  # a client's retry of a write that was answered
            again = rng.choice(record.succeeded)
            if again.key not in self.inflight:
                return again
        pending = sorted(k for k in record.to_confirm if f"f-{k}" not in self.inflight)
        unsettled = sorted(k for k in record.to_settle if f"s-{k}" not in self.inflight)
        if roll < 0.3 and pending:
            claim = rng.choice(pending)
            return Write("confirm", f"/schemes/{SCHEME}/claims/{claim}/confirm", "coordinator",
                         f"f-{claim}", {})  # fmt: skip
        if roll < 0.45 and unsettled:
            code = rng.choice(unsettled)
            return Write("settle", f"/schemes/{SCHEME}/vouchers/{code}/settle", "partner",
                         f"s-{code}", {"venue": VENUE})  # fmt: skip
        if roll < 0.6:
            body = {"partner": PARTNER, "offer": OFFER["id"], "member": rng.choice(MEMBERS)}
            return Write("voucher", f"/schemes/{SCHEME}/vouchers", "coordinator", f"v-{n}", body)
        day = self.today - timedelta(days=rng.randrange(1, DAYS))
        body = {"member": rng.choice(MEMBERS), "activity": ACTIVITY["code"],
                "date": day.isoformat(), "minutes": rng.choice(MINUTES)}  # fmt: skip
        return Write("claim", f"/schemes/{SCHEME}/claims", "coordinator", f"c-{n}", body)

    async def send(self, c: httpx.AsyncClient, base: str, w: Write) -> bool:
        """Send `w` and record its answer; False if it has none (the connection dropped)."""
        self.record.sent += 1
        self.record.unknown.setdefault(w.key, w)
        self.inflight.add(w.key)
        headers = self.callers[w.caller] | {"Idempotency-Key": w.key}
        try:
            r = await c.post(base + V1 + w.path, json=w.body, headers=headers)
        except httpx.TransportError:
            return False
        finally:
            self.inflight.discard(w.key)
        self.record.answered(w, r.status_code, r.json())
        return True


def check_store(url: str, record: Record) -> dict[str, int]:
    """Hold the database to every acknowledged write: present, once, with the answer's numbers;
    postings sum to zero; no account below its floor. Every unknown write must have been
    retried first. Figures: rows found."""
    assert not record.unknown, f"{len(record.unknown)} writes still have no answer"
    rows = count_rows(url, {
        "claims": f"SELECT id, status, entry_seq FROM tb_claims WHERE scheme = '{SCHEME}'",
        "vouchers": f"SELECT code, reservation FROM pt_vouchers WHERE scheme = '{SCHEME}'",
        "settled": f"SELECT code, entry_seq FROM pt_settlements WHERE scheme = '{SCHEME}'",
        "seqs": f"SELECT seq FROM entries WHERE ledger_id = '{SCHEME}' ORDER BY seq",
        "sums": "SELECT ledger_id, sum(balance) FROM accounts GROUP BY ledger_id",
        "postings": "SELECT ledger_id, seq, sum(amount) FROM postings GROUP BY ledger_id, seq"
                    " HAVING sum(amount) <> 0",
        "below": "SELECT ledger_id, code FROM accounts WHERE floor IS NOT NULL"
                 " AND balance < floor",
    })  # fmt: skip
    claims = {i: (s, e) for i, s, e in rows["claims"]}
    vouchers = dict(rows["vouchers"])
    settled = dict(rows["settled"])
    seqs = {s for (s,) in rows["seqs"]}
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), "a gap or a fork in the chain"
    assert all(total == 0 for _, total in rows["sums"]), rows["sums"]
    assert rows["postings"] == [], f"entries whose postings don't balance: {rows['postings']}"
    assert rows["below"] == [], f"accounts below their floor: {rows['below']}"
    for claim in record.ok("claim"):
        assert claim["id"] in claims, f"acknowledged claim {claim['id']} lost"
    for done in record.ok("confirm"):
        assert claims[done["id"]] == ("confirmed", done["entry_seq"]), done
        assert done["entry_seq"] in seqs
    for v in record.ok("voucher"):
        assert vouchers.get(v["code"].replace("-", "")) == v["reservation"], v
    for s in record.ok("settle"):
        assert settled.get(s["code"].replace("-", "")) == s["settled_by"], s
        assert s["settled_by"] in seqs
    # retries made nothing twice: one stored row per acknowledged key, none without one
    assert len(claims) == len(record.ok("claim")), (len(claims), len(record.ok("claim")))
    assert len(vouchers) == len(record.ok("voucher")), (len(vouchers), len(record.ok("voucher")))
    assert len(settled) == len(record.ok("settle")), (len(settled), len(record.ok("settle")))
    return {"claims": len(claims), "vouchers": len(vouchers), "settlements": len(settled),
            "entries": len(seqs)}  # fmt: skip
