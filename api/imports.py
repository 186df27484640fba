"""Routes for CSV imports: members and historic hours, in our format or TimeOverflow's.

Each file is checked whole before anything is written; problems come back by line number in the
problem's `errors`. Re-sending the same file writes nothing new.
"""

from __future__ import annotations

from pydantic import Field

from timebank.imports import parse_members
from timebank.schemes import Role

from .auth import STAFF, ApiRole
from .endpoints import Call, Endpoint
from .members import acting_member
from .models import Out, Query
from .problems import Problem


class ImportOut(Out):
    added: int = Field(description="members added, or claims logged and confirmed")


class TimeOverflowQuery(Query):
    activity: str = Field(min_length=1, max_length=64, description="activity to book hours to")


async def members_csv(call: Call) -> ImportOut:
    if call.who.role is ApiRole.COORDINATOR and any(
        Role.SCHEME_ADMIN in m.roles for m in parse_members(call.scheme, call.body)
    ):
        raise Problem(403, "a coordinator cannot make scheme admins", field="roles")
    return ImportOut(added=await call.bank.import_members(call.scheme, call.body))


async def hours_csv(call: Call) -> ImportOut:
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
             STAFF, csv=True, response=ImportOut, tag="imports"),
    Endpoint("POST", "/schemes/{scheme}/imports/hours", hours_csv, "Import historic hours (CSV)",
             STAFF, csv=True, response=ImportOut, tag="imports"),
    Endpoint("POST", "/schemes/{scheme}/imports/timeoverflow-members", timeoverflow_members,
             "Import TimeOverflow's users export", STAFF, csv=True, response=ImportOut,
             tag="imports"),
    Endpoint("POST", "/schemes/{scheme}/imports/timeoverflow-transfers", timeoverflow_transfers,
             "Import TimeOverflow's transfers export", STAFF, csv=True,
             query=TimeOverflowQuery, response=ImportOut, tag="imports"),
]  # fmt: skip
