"""Request and response bodies (pydantic). Requests are strict: unknown fields, wrong types and
out-of-range values are refused, never coerced. Responses are built from the domain's dataclasses.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

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
from timebank.claims import Claim, ClaimStatus, SchemeModel
from timebank.schemes import Member, Role, Scheme

T = TypeVar("T")
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
MemberId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")]
PartnerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
Text = Annotated[str, Field(max_length=1000)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]


NUL = "must not contain the NUL character (U+0000)"


def holds_nul(value: object) -> bool:
    """Whether text in `value` (a string, or lists and dicts of them) holds U+0000, which no
    field means and PostgreSQL cannot store: refused on both backends alike."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(holds_nul(v) for v in value)
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    return False


class _Text(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError(NUL)
        return value


class In(_Text):
    model_config = ConfigDict(strict=True, extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Query(_Text):
    """Query strings arrive as text, so numbers are parsed (but unknown parameters refused)."""

    model_config = ConfigDict(extra="forbid")


class Page(Out, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at end")


class PageQuery(Query):
    cursor: str = Field("", max_length=200)
    limit: int = Field(50, ge=1, le=500)


class Problem(Out):
    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    errors: list[dict[str, str]] = []


# ---- schemes -----------------------------------------------------------------------------------


class SchemeIn(In):
    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    model: SchemeModel
    min_minutes: int = Field(15, ge=1, le=1440)
    max_minutes: int = Field(720, ge=1, le=1440)
    members_may_log_for_others: bool = False
    member_floor: int = Field(0, ge=-6000, le=0, description="minutes; negative: a credit limit")
    credit_expiry_months: int | None = Field(None, ge=1, le=120)
    auto_accept_hours: int | None = Field(None, ge=1, le=2160)


class SchemeOut(Out):
    id: str
    name: str
    model: SchemeModel
    min_minutes: int
    max_minutes: int
    members_may_log_for_others: bool
    member_floor: int
    credit_expiry_months: int | None
    auto_accept_hours: int | None

    @classmethod
    def of(cls, s: Scheme) -> SchemeOut:
        r = s.rules
        return cls(
            id=s.id, name=s.name, model=r.model, min_minutes=r.min_minutes,
            max_minutes=r.max_minutes, members_may_log_for_others=r.members_may_log_for_others,
            member_floor=s.member_floor, credit_expiry_months=s.credit_expiry_months,
            auto_accept_hours=s.auto_accept_hours,
        )  # fmt: skip


# ---- members -----------------------------------------------------------------------------------


class MemberIn(In):
    id: MemberId
    display_name: Annotated[str, Field(min_length=1, max_length=120)]
    roles: list[Role] = Field(default_factory=lambda: [Role.MEMBER], min_length=1, max_length=3)
    contact: Annotated[str, Field(max_length=200)] = ""
    card_number: Annotated[str, Field(max_length=40)] = ""
    attributes: dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=60)]] = (
        Field(default_factory=dict, max_length=10, description="equality monitoring; consent: yes")
    )


class MemberOut(Out):
    id: str
    display_name: str
    roles: list[Role]
    contact: str
    card_number: str
    attributes: dict[str, str]
    erased: bool

    @classmethod
    def of(cls, m: Member) -> MemberOut:
        return cls(
            id=m.id, display_name=m.display_name, roles=sorted(m.roles), contact=m.contact,
            card_number=m.card_number, attributes=m.attributes, erased=m.erased,
        )  # fmt: skip


class BalanceOut(Out):
    member: str
    minutes: int


# ---- activities --------------------------------------------------------------------------------


class ActivityIn(In):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    form: CoForm
    subform: CoSubform | None = None
    contribution: Contribution
    area: ServiceArea
    mode: Mode
    voluntariness: Voluntariness = Voluntariness.VOLUNTARY
    relation: RelationToPaidWork
    safeguarding_check: bool = False
    proxy_code: Annotated[str, Field(min_length=1, max_length=64)]

    def activity(self) -> Activity:
        return Activity(
            self.code, self.title, self.form, self.subform, self.contribution, self.area,
            self.mode, self.voluntariness, self.relation, self.safeguarding_check, self.proxy_code,
        )  # fmt: skip


class ActivityOut(ActivityIn):
    model_config = ConfigDict(extra="forbid")
    retired: bool

    @classmethod
    def of(cls, a: Activity) -> ActivityOut:
        return cls(
            code=a.code, title=a.title, form=a.form, subform=a.subform,
            contribution=a.contribution, area=a.area, mode=a.mode, voluntariness=a.voluntariness,
            relation=a.relation, safeguarding_check=a.safeguarding_check,
            proxy_code=a.proxy_code, retired=a.retired,
        )  # fmt: skip


# ---- claims ------------------------------------------------------------------------------------


class ClaimIn(In):
    member: MemberId | None = Field(None, description="whose hours; default: the caller")
    activity: Annotated[str, Field(min_length=1, max_length=64)]
    date: date
    minutes: int = Field(ge=1, le=1440)
    receiver: MemberId | None = Field(None, description="person-to-person: the member helped")
    note: Text = ""


class GroupClaimIn(In):
    members: list[MemberId] = Field(min_length=1, max_length=200)
    activity: Annotated[str, Field(min_length=1, max_length=64)]
    date: date
    minutes: int = Field(ge=1, le=1440)
    note: Text = ""


class ReasonIn(In):
    reason: Reason


class ClaimOut(Out):
    id: str
    member: str
    logged_by: str
    on_behalf: bool
    activity: str
    date: date
    minutes: int
    receiver: str | None
    note: str
    status: ClaimStatus
    duplicate: bool
    reason: str
    decided_by: str | None
    entry_seq: int | None
    reversal_seq: int | None

    @classmethod
    def of(cls, c: Claim) -> ClaimOut:
        return cls(
            id=c.id, member=c.member, logged_by=c.logged_by, on_behalf=c.on_behalf,
            activity=c.activity, date=c.day, minutes=c.minutes, receiver=c.receiver,
            note=c.note, status=c.status, duplicate=c.duplicate, reason=c.reason,
            decided_by=c.decided_by, entry_seq=c.entry_seq, reversal_seq=c.reversal_seq,
        )  # fmt: skip


class ClaimsQuery(PageQuery):
    member: MemberId | None = None
    status: ClaimStatus | None = None


class BurnoutQuery(Query):
    hours_per_week: int = Field(20, ge=1, le=168)
    weeks: int = Field(3, ge=1, le=12)


# ---- ledger ------------------------------------------------------------------------------------


class EntryOut(Out):
    seq: int
    time: str
    kind: str
    minutes: int = Field(description="the change to this member's balance")
    meta: dict[str, str]


class CheckpointOut(Out):
    ledger: str
    size: int
    root: str
    time: str
    key_id: str
    signature: str


class JsonObject(Out):
    """A JSON document defined elsewhere (receipts: docs/ledger-format.md)."""

    model_config = ConfigDict(extra="allow")


# ---- tokens ------------------------------------------------------------------------------------


class TokenIn(In):
    role: Literal["admin", "scheme-admin", "coordinator", "member", "partner-staff", "commissioner"]
    member: MemberId | None = None
    partner: PartnerId | None = Field(None, description="partner-staff: the organisation")
    label: Annotated[str, Field(max_length=200)] = ""
    expires: AwareDatetime | None = Field(
        None, description="when the token stops working (RFC 3339, with its offset); "
        "null: until revoked"
    )  # fmt: skip


class TokenOut(Out):
    id: str
    role: str
    scheme: str | None
    member: str | None
    partner: str | None = None
    label: str
    revoked: bool
    expires: str | None = None
    token: Annotated[str | None, Field(description="the bearer token: shown once, when made")] = (
        None
    )


class MeOut(Out):
    token_id: str
    role: str
    scheme: str | None
    member: str | None
    partner: str | None = None


def dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")
