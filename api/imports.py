"""Routes for CSV imports: members and historic hours, in our format or TimeOverflow's.

Each file is checked whole before anything is written; problems come back by line number in the
problem's `errors`. Re-sending the same file writes nothing new. `?preview=true` (members and
hours in our format) writes nothing and answers with every line, its values and its problems.
"""

from __future__ import annotations

import asyncio
from datetime import date

from pydantic import Field, RootModel
from starlette.responses import Response

from identity.auth import STAFF, ApiRole
from ledger import NotFound
from timebank import offload
from timebank.claims import ClaimDraft, ClaimRules, ClaimStatus, LoggedClaim, claim_problems
from timebank.imports import (
    PACK,
    ImportRefused,
    LineProblem,
    PreviewLine,
    keep_lines,
    pack_problems,
    parse_hours,
    parse_members,
    parse_members_at,
    preview_hours,
    preview_members,
    unpack_problems,
)
from timebank.schemes import Member, Role

from .endpoints import Call, Endpoint
from .members import acting_member
from .models import Out, Query
from .problems import MEDIA_TYPE, Problem, from_exception, problem_response


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
        out.append(
            PreviewLineOut(
                line=p.line,
                values=p.values,
                ok=not problems,
                problems=[LineProblemOut(field=x.field, message=x.message) for x in problems],
            )
        )
    ok = sum(1 for p in out if p.ok)
    return ImportPreviewOut(lines=out, ok=ok, refused=len(out) - ok)


def _good(lines: list[PreviewLine]) -> list[int]:
    return [p.line for p in lines if not p.problems]


# A preview's heavy work runs in worker processes, and what comes back to the event loop is
# small: the ids the loop must look up (the register is in the database), then the answer's
# JSON bytes. Unpickling 50,000 lines, checking them and building their answer on the loop held
# every other request (health included) for seconds. The second worker reads the file again:
# cheaper than carrying 50,000 parsed lines through two pickles.


def _ids_in_members(scheme: str, text: str) -> list[str]:
    """In a worker process: the ids of the lines that pass their own checks (`parse_members`
    reads a member's id as the line's `id` value)."""
    return list(
        dict.fromkeys(p.values["id"] for p in preview_members(scheme, text) if not p.problems)
    )


def _answer_members(scheme: str, text: str, coordinator: bool, there: dict[str, Member]) -> bytes:
    """In a worker process: the preview's JSON, given the register's members of those ids."""
    lines = preview_members(scheme, text)
    good = _good(lines)
    parsed = parse_members_at(scheme, keep_lines(text, set(good)))
    found: dict[int, list[LineProblem]] = {}
    for line, (_, m) in zip(good, parsed, strict=True):
        if coordinator and Role.SCHEME_ADMIN in m.roles:
            found.setdefault(line, []).append(
                LineProblem(line, "roles", "a coordinator cannot make scheme admins")
            )
        if m.id in there and there[m.id] != m:
            found.setdefault(line, []).append(
                LineProblem(line, "id", f"member {m.id} exists with other details")
            )
    return _preview(lines, found).model_dump_json().encode()


def _makes_scheme_admin(scheme: str, text: str) -> bool:
    """In a worker process: whether the file (refused whole if any line is bad) makes a scheme
    admin."""
    try:
        return any(Role.SCHEME_ADMIN in m.roles for m in parse_members(scheme, text))
    except ImportRefused:  # the import refuses it, its problems packed (`packed_members`)
        return False


def _ids_in_hours(text: str) -> list[str]:
    """In a worker process: the members and receivers named by the lines that pass their own
    checks (`parse_hours` reads an empty receiver as none)."""
    return list(
        dict.fromkeys(
            who
            for p in preview_hours(text)
            if not p.problems
            for who in (p.values["member"], p.values.get("receiver", ""))
            if who
        )
    )


def _answer_hours(
    text: str, members: set[str], codes: set[str], rules: ClaimRules, by: str, today: date
) -> bytes:
    """In a worker process: the preview's JSON, given which of the file's ids are members."""
    lines = preview_hours(text)
    good = _good(lines)
    rows = parse_hours(keep_lines(text, set(good)))
    same_day: dict[tuple[str, date], int] = {}  # the file's minutes so far, by member and day
    found: dict[int, list[LineProblem]] = {}
    for line, r in zip(good, rows, strict=True):
        problems = found.setdefault(line, [])
        for who, name in ((r.member, "member"), (r.receiver, "receiver")):
            if who is not None and who not in members:
                problems.append(LineProblem(line, name, f"no member {who!r}"))
        if r.activity not in codes:
            problems.append(LineProblem(line, "activity", f"no activity {r.activity!r}"))
        draft = ClaimDraft(r.member, by, r.activity, r.day, r.minutes, r.receiver, True)
        so_far = same_day.get((r.member, r.day), 0)  # one running total: linear in the file
        day = [LoggedClaim(r.member, "", r.day, so_far, ClaimStatus.PENDING)] if so_far else []
        problems += [
            LineProblem(line, p.field, p.message)
            for p in claim_problems(draft, rules, today, day, history=True)
        ]
        same_day[(r.member, r.day)] = so_far + r.minutes
    return _preview(lines, found).model_dump_json().encode()


def _json(body: bytes) -> Response:
    return Response(body, 200, media_type="application/json")


async def preview_members_csv(call: Call) -> Response:
    """Each line's own checks, then the register's: a member of that id with other details,
    or a scheme admin a coordinator may not make. The answer is `ImportPreviewOut`'s JSON."""
    there: dict[str, Member] = {}
    for member_id in await offload.run(_ids_in_members, call.scheme, call.body):
        try:
            there[member_id] = await call.bank.member(call.scheme, member_id)
        except NotFound:
            continue
    coordinator = call.who.role is ApiRole.COORDINATOR
    return _json(await offload.run(_answer_members, call.scheme, call.body, coordinator, there))


async def preview_hours_csv(call: Call) -> Response:
    """Each line's own checks, then the scheme's: its members and activities exist, and the
    scheme's rules for a claim (counting the file's earlier lines for the same member's day).
    The answer is `ImportPreviewOut`'s JSON."""
    ids = await offload.run(_ids_in_hours, call.body)
    scheme = await call.bank.scheme(call.scheme)
    codes = {a.code for a in await call.bank.activities(call.scheme)}
    members = {who for who in ids if await _is_member(call, who)}
    return _json(
        await offload.run(
            _answer_hours,
            call.body,
            members,
            codes,
            scheme.rules,
            acting_member(call),
            call.bank.today(),
        )
    )


async def _is_member(call: Call, member_id: str) -> bool:
    """Whether they are a member now: registered and not erased, as the import itself asks (an
    erased member's line is refused with the same "no member" message)."""
    try:
        found = await call.bank.member(call.scheme, member_id)
    except NotFound:
        return False
    return not found.erased


def _refusal_body(packed: list[bytes]) -> bytes:
    """In a worker process: the problem answer of a refused file, as `api.problems` makes it."""
    problems = [p for chunk in packed for p in unpack_problems(chunk)]
    return bytes(problem_response(from_exception(ImportRefused(problems))).body)


async def _refused(refused: ImportRefused) -> Response:
    """The 422 of a file the import refused, made in a worker process: a file may have 100,000
    problems, whose JSON took a second on the event loop. Packed a chunk at a time here."""
    packed: list[bytes] = []
    for i in range(0, len(refused.problems), PACK):
        await asyncio.sleep(0)
        packed += pack_problems(refused.problems[i : i + PACK])
    return Response(await offload.run(_refusal_body, packed), 422, media_type=MEDIA_TYPE)


async def members_csv(call: Call) -> ImportOut | Response:
    q: ImportQuery = call.query
    if q.preview:
        return await preview_members_csv(call)
    if call.who.role is ApiRole.COORDINATOR and await offload.run(
        _makes_scheme_admin, call.scheme, call.body
    ):
        raise Problem(403, "a coordinator cannot make scheme admins", field="roles")
    try:
        return ImportOut(added=await call.bank.import_members(call.scheme, call.body))
    except ImportRefused as refused:
        return await _refused(refused)


async def hours_csv(call: Call) -> ImportOut | Response:
    q: ImportQuery = call.query
    if q.preview:
        return await preview_hours_csv(call)
    try:
        done = await call.bank.import_hours(
            call.scheme, call.body, by=acting_member(call), today=call.bank.today()
        )
    except ImportRefused as refused:
        return await _refused(refused)
    return ImportOut(added=len(done))


async def timeoverflow_members(call: Call) -> ImportOut | Response:
    try:
        return ImportOut(added=await call.bank.import_timeoverflow_members(call.scheme, call.body))
    except ImportRefused as refused:
        return await _refused(refused)


async def timeoverflow_transfers(call: Call) -> ImportOut | Response:
    q: TimeOverflowQuery = call.query
    try:
        done = await call.bank.import_timeoverflow_transfers(
            call.scheme,
            call.body,
            activity=q.activity,
            by=acting_member(call),
            today=call.bank.today(),
        )
    except ImportRefused as refused:
        return await _refused(refused)
    return ImportOut(added=len(done))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/schemes/{scheme}/imports/members",
        members_csv,
        "Import members (CSV)",
        STAFF,
        csv=True,
        query=ImportQuery,
        response=ImportResult,
        tag="imports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/imports/hours",
        hours_csv,
        "Import historic hours (CSV)",
        STAFF,
        csv=True,
        query=ImportQuery,
        response=ImportResult,
        tag="imports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/imports/timeoverflow-members",
        timeoverflow_members,
        "Import TimeOverflow's users export",
        STAFF,
        csv=True,
        response=ImportOut,
        tag="imports",
    ),
    Endpoint(
        "POST",
        "/schemes/{scheme}/imports/timeoverflow-transfers",
        timeoverflow_transfers,
        "Import TimeOverflow's transfers export",
        STAFF,
        csv=True,
        query=TimeOverflowQuery,
        response=ImportOut,
        tag="imports",
    ),
]
