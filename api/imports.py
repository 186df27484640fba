"""Routes for CSV imports: members and historic hours, in our format or TimeOverflow's.

Each file is checked whole before anything is written; problems come back by line number in the
problem's `errors`. Re-sending the same file writes nothing new. `?preview=true` (members and
hours in our format) writes nothing and answers with every line, its values and its problems.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from pydantic import Field, RootModel

from ledger import NotFound
from timebank import offload
from timebank.claims import ClaimDraft, ClaimStatus, LoggedClaim, claim_problems
from timebank.imports import (
    LineProblem,
    PreviewLine,
    keep_lines,
    parse_hours,
    parse_members,
    parse_members_at,
    preview_hours,
    preview_members,
)
from timebank.schemes import Role

from .auth import STAFF, ApiRole
from .endpoints import Call, Endpoint
from .members import acting_member
from .models import Out, Query
from .problems import Problem


class ImportOut(Out):
    added: int = Field(description="members added, or claims logged and confirmed")


class LineProblemOut(Out):
    field: str = Field(description="the column at fault; empty for the whole line")
    message: str


class PreviewLineOut(Out):
    line: int = Field(description="the line's number in the file (the header is 1)")
    values: dict[str, str] = Field(description="the line's values by column, as read")
    ok: bool = Field(description="true: the line would be imported as it is")
    problems: list[LineProblemOut]


class ImportPreviewOut(Out):
    lines: list[PreviewLineOut]
    ok: int = Field(description="how many lines would be imported")
    refused: int = Field(description="how many lines have problems")


class ImportResult(RootModel[ImportOut | ImportPreviewOut]):
    """`ImportOut`, or with `?preview=true` an `ImportPreviewOut` (nothing written)."""


class ImportQuery(Query):
    preview: bool = Field(
        False,
        description="true: check every line, write nothing, and answer "
        "with each line, its values and its problems (ImportPreviewOut)",
    )


class TimeOverflowQuery(Query):
    activity: str = Field(min_length=1, max_length=64, description="activity to book hours to")


def _preview(lines: list[PreviewLine], found: dict[int, list[LineProblem]]) -> ImportPreviewOut:
    out = []
    for p in lines:
        problems = [*p.problems, *found.get(p.line, [])]
        out.append(PreviewLineOut(
            line=p.line, values=p.values, ok=not problems,
            problems=[LineProblemOut(field=x.field, message=x.message) for x in problems],
        ))  # fmt: skip
    ok = sum(1 for p in out if p.ok)
    return ImportPreviewOut(lines=out, ok=ok, refused=len(out) - ok)


def _good(lines: list[PreviewLine]) -> list[int]:
    return [p.line for p in lines if not p.problems]


YIELD_EVERY = 500  # lines checked between turns of the event loop


def _read_members(scheme: str, text: str) -> tuple[list[PreviewLine], list[int], list[Any]]:
    """In a worker process: every line previewed, and the good ones parsed."""
    lines = preview_members(scheme, text)
    good = _good(lines)
    return lines, good, parse_members_at(scheme, keep_lines(text, set(good)))


def _read_hours(text: str) -> tuple[list[PreviewLine], list[int], list[Any]]:
    lines = preview_hours(text)
    good = _good(lines)
    return lines, good, parse_hours(keep_lines(text, set(good)))


async def preview_members_csv(call: Call) -> ImportPreviewOut:
    """Each line's own checks, then the register's: a member of that id with other details,
    or a scheme admin a coordinator may not make."""
    lines, good, parsed = await offload.run(_read_members, call.scheme, call.body)
    found: dict[int, list[LineProblem]] = {}
    for n, (line, (_, m)) in enumerate(zip(good, parsed, strict=True)):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a long file: let other requests in between the lines
        if call.who.role is ApiRole.COORDINATOR and Role.SCHEME_ADMIN in m.roles:
            found.setdefault(line, []).append(
                LineProblem(line, "roles", "a coordinator cannot make scheme admins")
            )
        try:
            there = await call.bank.member(call.scheme, m.id)
        except NotFound:
            continue
        if there != m:
            found.setdefault(line, []).append(
                LineProblem(line, "id", f"member {m.id} exists with other details")
            )
    return _preview(lines, found)


async def preview_hours_csv(call: Call) -> ImportPreviewOut:
    """Each line's own checks, then the scheme's: its members and activities exist, and the
    scheme's rules for a claim (counting the file's earlier lines for the same member's day)."""
    lines, good, rows = await offload.run(_read_hours, call.body)
    scheme = await call.bank.scheme(call.scheme)
    codes = {a.code for a in await call.bank.activities(call.scheme)}
    known: dict[str, bool] = {}
    same_day: dict[tuple[str, date], int] = {}  # the file's minutes so far, by member and day
    found: dict[int, list[LineProblem]] = {}
    for n, (line, r) in enumerate(zip(good, rows, strict=True)):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        problems = found.setdefault(line, [])
        for who, name in ((r.member, "member"), (r.receiver, "receiver")):
            if who is not None and who not in known:
                known[who] = await _is_member(call, who)
            if who is not None and not known[who]:
                problems.append(LineProblem(line, name, f"no member {who!r}"))
        if r.activity not in codes:
            problems.append(LineProblem(line, "activity", f"no activity {r.activity!r}"))
        draft = ClaimDraft(r.member, acting_member(call), r.activity, r.day, r.minutes,
                           r.receiver, True)  # fmt: skip
        so_far = same_day.get((r.member, r.day), 0)  # one running total: linear in the file
        day = [LoggedClaim(r.member, "", r.day, so_far, ClaimStatus.PENDING)] if so_far else []
        problems += [
            LineProblem(line, p.field, p.message)
            for p in claim_problems(draft, scheme.rules, call.bank.today(), day, history=True)
        ]
        same_day[(r.member, r.day)] = so_far + r.minutes
    return _preview(lines, found)


async def _is_member(call: Call, member_id: str) -> bool:
    try:
        await call.bank.member(call.scheme, member_id)
    except NotFound:
        return False
    return True


async def members_csv(call: Call) -> ImportOut | ImportPreviewOut:
    q: ImportQuery = call.query
    if q.preview:
        return await preview_members_csv(call)
    if call.who.role is ApiRole.COORDINATOR and any(
        Role.SCHEME_ADMIN in m.roles
        for m in await offload.run(parse_members, call.scheme, call.body)
    ):
        raise Problem(403, "a coordinator cannot make scheme admins", field="roles")
    return ImportOut(added=await call.bank.import_members(call.scheme, call.body))


async def hours_csv(call: Call) -> ImportOut | ImportPreviewOut:
    q: ImportQuery = call.query
    if q.preview:
        return await preview_hours_csv(call)
    done = await call.bank.import_hours(
        call.scheme, call.body, by=acting_member(call), today=call.bank.today()
    )
    return ImportOut(added=len(done))


async def timeoverflow_members(call: Call) -> ImportOut:
    return ImportOut(added=await call.bank.import_timeoverflow_members(call.scheme, call.body))


async def timeoverflow_transfers(call: Call) -> ImportOut:
    q: TimeOverflowQuery = call.query
    done = await call.bank.import_timeoverflow_transfers(
        call.scheme, call.body, activity=q.activity, by=acting_member(call),
        today=call.bank.today(),
    )  # fmt: skip
    return ImportOut(added=len(done))


ENDPOINTS = [
    Endpoint("POST", "/schemes/{scheme}/imports/members", members_csv, "Import members (CSV)",
             STAFF, csv=True, query=ImportQuery, response=ImportResult, tag="imports"),
    Endpoint("POST", "/schemes/{scheme}/imports/hours", hours_csv, "Import historic hours (CSV)",
             STAFF, csv=True, query=ImportQuery, response=ImportResult, tag="imports"),
    Endpoint("POST", "/schemes/{scheme}/imports/timeoverflow-members", timeoverflow_members,
             "Import TimeOverflow's users export", STAFF, csv=True, response=ImportOut,
             tag="imports"),
    Endpoint("POST", "/schemes/{scheme}/imports/timeoverflow-transfers", timeoverflow_transfers,
             "Import TimeOverflow's transfers export", STAFF, csv=True,
             query=TimeOverflowQuery, response=ImportOut, tag="imports"),
]  # fmt: skip
