"""Request and response bodies (pydantic). Requests are strict: unknown fields, wrong types and
out-of-range values are refused, never coerced. Responses are built from the domain's dataclasses.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ledger import LOWER_HEX
from partners.codes import ALPHABET, BODY, display
from partners.model import _ID as _PARTNER_ID
from timebank.activities import _CODE as _ACTIVITY_CODE
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
from timebank.claims import MAX_DAYS_BACK, Claim, ClaimStatus, SchemeModel
from timebank.schemes import _MEMBER_ID, _SLUG, Member, Role, Scheme

T = TypeVar("T")


def whole(rx: re.Pattern[str]) -> str:
    """The JSON Schema form of a pattern the server `fullmatch`es: anchored at both ends."""
    return f"^(?:{rx.pattern})$"


# Patterns are the server's own (the domain's validators), anchored: they cannot drift apart.
Slug = Annotated[str, Field(pattern=whole(_SLUG))]
MemberId = Annotated[str, Field(pattern=whole(_MEMBER_ID))]
PartnerId = Annotated[str, Field(pattern=whole(_PARTNER_ID))]
ActivityCode = Annotated[str, Field(pattern=whole(_ACTIVITY_CODE))]
Text = Annotated[str, Field(max_length=1000)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]
Hex = Annotated[str, Field(pattern=whole(LOWER_HEX), description="bytes, in lower-case hex")]

# ---- path parameters -----------------------------------------------------------------------

SEQ_DIGITS = 15  # an entry's sequence number, as a path parameter: 1 to 15 digits, not 0
SEQ = re.compile(rf"[0-9]{{1,{SEQ_DIGITS}}}")
Seq = Annotated[int, Field(ge=1, le=10**SEQ_DIGITS - 1, description="an entry's sequence number")]


def _voucher_code_pattern() -> str:
    """A code as `partners.codes.display` prints it: its symbols (the code alphabet) in the
    groups it prints, between its separators."""
    groups = display("\0" * (BODY + 1)).split("-")
    assert all(set(g) == {"\0"} for g in groups), "display() separates symbols with '-' only"
    return "^" + "-".join(f"[{ALPHABET}]{{{len(g)}}}" for g in groups) + "$"


VoucherCode = Annotated[
    str,
    Field(
        pattern=_voucher_code_pattern(),
        description="as printed: XXXX-XXXX-C, symbols of Crockford's base32, the last one a check "
        "symbol (Luhn mod 32); a code whose check symbol is wrong is refused (422) like any other "
        "malformed one. The server also reads a code as typed (lower case, spaces, O for 0, I and "
        "L for 1); this is the form it gives out.",
    ),
]
# Claims, offers and requests are named by 24 hex digits of a digest, tokens by 16: the server
# answers 404 for any other name (none exists), so these shapes are for clients to check.
DigestId = Annotated[str, Field(pattern="^[0-9a-f]{24}$", description="as the API gave it out")]
TokenId = Annotated[
    str, Field(pattern="^[0-9a-f]{16}$", description="a token's id (not the token)")
]
CardNumber = Annotated[str, Field(min_length=1, max_length=40, description="as on the card")]

# ---- skills and areas, as members type them ---------------------------------------------------
# The market reads a skill or an area as typed and normalises it (timebank.matching): a skill
# lower-cased, runs of spaces and '_' one '-', '-' stripped from its ends; an area upper-cased,
# runs of spaces one. So the typed forms the server takes are these, not its stored forms.

# Python's whitespace (str.isspace: what the normalisers strip and split on), spelt out: JSON
# Schema's \s is ECMAScript's, another set.
_SPACE = "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace())
_KELVIN, _DOTLESS_I, _LONG_S = "\\u212a", "\\u0131", "\\u017f"  # lower k, upper I and S
_SKILL_SYMBOL = f"A-Za-z0-9{_KELVIN}"
SKILL_TYPED = f"^[{_SKILL_SYMBOL}_{_SPACE}-]+$"
_AREA_SYMBOL = f"[A-Za-z0-9{_DOTLESS_I}{_LONG_S}]"
AREA_TYPED = (
    f"^[{_SPACE}]*{_AREA_SYMBOL}(?:[A-Za-z0-9{_DOTLESS_I}{_LONG_S}{_SPACE}-]*{_AREA_SYMBOL})?"
    f"[{_SPACE}]*$"
)
Skill = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        json_schema_extra={"pattern": SKILL_TYPED},
        description="a skill as typed: letters, digits, '-', '_' and spaces (\"Home repairs\" is "
        "stored as home-repairs)",
    ),
]
Skills = Annotated[
    list[Skill],
    Field(
        min_length=1,
        max_length=10,
        json_schema_extra={"contains": {"pattern": f"[{_SKILL_SYMBOL}]"}},
        description="at least one skill with a letter or digit (blank ones are dropped)",
    ),
]
Place = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        json_schema_extra={"pattern": AREA_TYPED},
        description="an area as typed, e.g. a postcode district: letters, digits, spaces and '-', "
        'beginning and ending with a letter or digit ("cf10 " is stored as CF10)',
    ),
]


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
    claim_days_back: int | None = Field(
        None,
        ge=0,
        le=MAX_DAYS_BACK,
        description="a claim may be dated at most this many days ago (imports of history "
        "excepted); null: any past day",
    )


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
    claim_days_back: int | None

    @classmethod
    def of(cls, s: Scheme) -> SchemeOut:
        r = s.rules
        return cls(
            id=s.id,
            name=s.name,
            model=r.model,
            min_minutes=r.min_minutes,
            max_minutes=r.max_minutes,
            members_may_log_for_others=r.members_may_log_for_others,
            member_floor=s.member_floor,
            credit_expiry_months=s.credit_expiry_months,
            auto_accept_hours=s.auto_accept_hours,
            claim_days_back=r.days_back,
        )


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
            id=m.id,
            display_name=m.display_name,
            roles=sorted(m.roles),
            contact=m.contact,
            card_number=m.card_number,
            attributes=m.attributes,
            erased=m.erased,
        )


class BalanceOut(Out):
    member: str
    minutes: int


# ---- activities --------------------------------------------------------------------------------


class ActivityIn(In):
    code: ActivityCode
    title: Annotated[str, Field(min_length=1, max_length=200)]
    form: CoForm
    subform: CoSubform | None = None
    contribution: Contribution
    area: ServiceArea
    mode: Mode
    voluntariness: Voluntariness = Voluntariness.VOLUNTARY
    relation: RelationToPaidWork
    safeguarding_check: bool = False
    proxy_code: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            json_schema_extra={"pattern": whole(_ACTIVITY_CODE)},
            description="the valuation proxy that prices these hours (a code like an activity's)",
        ),
    ]

    def activity(self) -> Activity:
        return Activity(
            self.code,
            self.title,
            self.form,
            self.subform,
            self.contribution,
            self.area,
            self.mode,
            self.voluntariness,
            self.relation,
            self.safeguarding_check,
            self.proxy_code,
        )


class ActivityOut(ActivityIn):
    model_config = ConfigDict(extra="forbid")
    retired: bool

    @classmethod
    def of(cls, a: Activity) -> ActivityOut:
        return cls(
            code=a.code,
            title=a.title,
            form=a.form,
            subform=a.subform,
            contribution=a.contribution,
            area=a.area,
            mode=a.mode,
            voluntariness=a.voluntariness,
            relation=a.relation,
            safeguarding_check=a.safeguarding_check,
            proxy_code=a.proxy_code,
            retired=a.retired,
        )


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
            id=c.id,
            member=c.member,
            logged_by=c.logged_by,
            on_behalf=c.on_behalf,
            activity=c.activity,
            date=c.day,
            minutes=c.minutes,
            receiver=c.receiver,
            note=c.note,
            status=c.status,
            duplicate=c.duplicate,
            reason=c.reason,
            decided_by=c.decided_by,
            entry_seq=c.entry_seq,
            reversal_seq=c.reversal_seq,
        )


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
    """A JSON object a handler builds from the domain's own records; the endpoint's `response`
    model (below) is its shape in the OpenAPI document, and the tests hold the two together."""

    model_config = ConfigDict(extra="allow")


# The ledger's own JSON records (ledger.records: entry_json, checkpoint_json, key_json,
# receipt_json; the format is docs/ledger-format.md), as a receipt carries them.


class LedgerEntry(Out):
    """One signed, hash-chained ledger entry; `ref`, `expires_us` and `target` are 0 or ""
    when unused."""

    type: Literal["entry"]
    ledger: str
    seq: int = Field(ge=1)
    prev_hash: Hex
    kind: str
    time_us: int = Field(description="microseconds since 1970-01-01 UTC")
    key_id: str
    ref: int
    expires_us: int
    target: str
    postings: list[tuple[str, int]] = Field(description="[account, minutes] pairs; they sum to 0")
    meta: list[tuple[str, str]] = Field(description="[key, value] pairs")
    hash: Hex
    signature: Hex


class LedgerCheckpoint(Out):
    """A signed tree head: the ledger's first `size` entries have Merkle root `root`."""

    type: Literal["checkpoint"]
    ledger: str
    size: int
    root: Hex
    time_us: int
    key_id: str
    signature: Hex


class LedgerKey(Out):
    """A ledger's public key (Ed25519), signing entries from `from_seq` on."""

    type: Literal["key"]
    ledger: str
    key_id: str
    public_key: Hex
    from_seq: int
    time_us: int
    signer_key_id: str = Field(description="the key that signed this one (itself: the first)")
    signature: Hex


class ReceiptOut(Out):
    """A receipt that verifies offline (`timebank verify-receipt`): the entry, its inclusion
    proof in a signed checkpoint, and the keys to check both."""

    type: Literal["receipt"]
    version: int = Field(1, description="the receipt format (absent before it was numbered: 1)")
    entry: LedgerEntry
    leaf_index: int
    proof: list[Hex] = Field(description="the Merkle audit path, leaf to root")
    checkpoint: LedgerCheckpoint
    keys: list[LedgerKey]


# ---- a scheme's books and a partner's statement ----------------------------------------------


class BooksOut(Out):
    """A scheme's books for a period (timebank.books.Books), in minutes: opening outstanding +
    issued - redeemed - expired - reversed = closing outstanding."""

    scheme: str
    start: date
    end: date
    opening_outstanding: int
    issued: int
    redeemed: int
    expired: int
    reversed: int
    retired: int = Field(description="redeemed credits the scheme retired from partners")
    closing_outstanding: int
    balanced: bool = Field(description="true: the sum above holds")
    by_member: dict[str, int] = Field(description="each member's balance at the close")
    by_partner: dict[str, int] = Field(description="what each partner holds at the close")
    redeemed_by_partner: dict[str, int] = Field(description="what each redeemed in the period")


class StatementRow(Out):
    """A statement as CSV rows: one for each venue and offer, then a total row."""

    scheme: str
    partner: str
    period_start: date
    period_end: date
    row: Literal["line", "total"]
    venue: str = Field(description="empty on the total row")
    venue_name: str
    offer: str
    offer_title: str
    vouchers: int
    minutes: int
    credits: str = Field(description="the minutes as credits, one an hour, to 2 places")
    usual_price_pence: int


class StatementOut(Out):
    """A partner's statement for a scheme and period (partners.statements): the vouchers
    settled at its venues. `usual_price_pence` is what members received at the usual price,
    never a cash value of the credits."""

    partner: str
    scheme: str
    start: date
    end: date
    vouchers: int
    minutes: int
    credits: str = Field(description="the minutes as credits, one an hour, to 2 places")
    usual_price_pence: int
    rows: list[StatementRow]


class RetirementOut(Out):
    """A partner's credits retired: the entry and its receipt, the signed settlement."""

    partner: str
    minutes: int = Field(description="the minutes retired")
    entry: int = Field(description="the retiring entry's sequence number")
    receipt: ReceiptOut


# ---- tokens ------------------------------------------------------------------------------------


class TokenIn(In):
    role: Literal["admin", "scheme-admin", "coordinator", "member", "partner-staff", "commissioner"]
    member: MemberId | None = None
    partner: PartnerId | None = Field(None, description="partner-staff: the organisation")
    label: Annotated[str, Field(max_length=200)] = ""
    expires: AwareDatetime | None = Field(
        None,
        description="when the token stops working (RFC 3339, with its offset); null: until revoked",
    )


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


# ---- a valued-contribution report (valuation.reports.engine.build) ------------------------------

Figure = Annotated[
    dict[str, Any],
    Field(description="a money figure as text, with the range it lies in (low, central, high)"),
]
_SECTION = "a section of the report, as its HTML and PDF forms lay it out"
Section = Annotated[dict[str, Any], Field(description=_SECTION)]
Sections = Annotated[list[dict[str, Any]], Field(description=_SECTION)]


class ReportScheme(Out):
    id: str
    name: str
    model: SchemeModel


class ReportPeriod(Out):
    from_: date = Field(alias="from", description="the first day")
    to: date = Field(description="the last day")


class ReportCheckpoint(Out):
    """The signed checkpoint the report was made at: every figure is of its entries."""

    size: int
    root: Hex
    time: str
    key_id: str
    signature: Hex


class ReportCatalogue(Out):
    """The valuation catalogue's version the report was valued with."""

    version: str
    hash: str


class ReportHeadline(Out):
    hours: str
    minutes: int
    unique_members: int
    participations: int
    credits_issued: int = Field(description="minutes")
    credits_redeemed: int = Field(description="minutes")
    lens_a_value_of_hours: Figure | None = Field(description="null: no hour had a wage")
    lens_b_social_value_pv: Figure
    lens_b_sroi: Figure | None = Field(description="null: no cost was recorded")
    lens_c_fiscal_savings_pv: Figure


class ReportHorizon(Out):
    horizon: int = Field(description="years")
    pv: Figure
    npsv: Figure
    sroi: Figure | None


class ReportOutcome(Out):
    id: str
    outcome: str
    from_: date = Field(alias="from")
    to: date
    people: int
    evidence: str
    evidence_note: str


class ReportEquality(Out):
    k: int = Field(description="cells of fewer than k members are suppressed")
    by_question: Section


class ReportPartner(Out):
    partner: str
    holds_minutes: int
    redeemed_minutes_in_period: int


class ReportInventory(Out):
    activities: Sections
    partners: list[ReportPartner]


class ReportOut(Out):
    """A valued-contribution report as JSON: the same figures as its CSV, XLSX, HTML and PDF
    forms. Lens A values the hours at wage rates, B the outcomes' social value, C the fiscal
    savings; every figure is of the entries up to the signed checkpoint named."""

    report: Literal["valued-contribution"]
    format_version: int
    scheme: ReportScheme
    period: ReportPeriod
    checkpoint: ReportCheckpoint
    as_of: str
    catalogue: ReportCatalogue
    parameters: dict[str, Any] = Field(description="the parameters it was made with (the query)")
    headline: ReportHeadline
    outputs: Section
    lenses: dict[Literal["A", "B", "C"], Section]
    horizons: list[ReportHorizon]
    what_if: dict[str, Any] | None = Field(description="null: no what-if was asked for")
    outcomes_recorded: list[ReportOutcome]
    co_assessment: Sections
    equality: ReportEquality
    inventory: ReportInventory
    activities: Sections
    sources: list[dict[str, Any]] = Field(description="each source of a value used, its licence")
    caveats: list[str]
