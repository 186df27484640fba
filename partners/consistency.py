"""The partners' records against the ledger: each voucher's state and its reservation's fate.

A voucher is one reservation on the ledger. Settled at a till means one post of it, recorded by
one settlement row naming that post; voided means one void of it; neither means the reservation
is open or expired. Pure: the rows come from `storage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VoucherRecord:
    code: str
    reservation: int
    voided: bool
    settled_by: int | None  # the settlement row's entry, if any


def voucher_problems(
    scheme: str, records: Iterable[VoucherRecord], resolved: Mapping[int, tuple[int, str]]
) -> list[str]:
    """Every disagreement between `scheme`'s vouchers and how its ledger resolved their
    reservations (`resolved`: reservation seq -> (entry seq, kind)), naming the voucher."""
    out = []
    for v in sorted(records, key=lambda v: v.code):
        name = f"{scheme}: voucher {v.code}"
        seq, kind = resolved.get(v.reservation, (None, "open"))
        if v.settled_by is not None and v.voided:
            out.append(f"{name} is both settled (entry {v.settled_by}) and voided")
        elif v.settled_by is not None and (kind != "post" or seq != v.settled_by):
            by = f" by entry {seq}" if seq else ""
            out.append(
                f"{name} is settled by entry {v.settled_by}, but its reservation "
                f"{v.reservation} is {kind}{by}"
            )
        elif v.voided and kind != "void":
            out.append(f"{name} is voided, but its reservation {v.reservation} is {kind}")
        elif kind == "post" and v.settled_by is None:
            out.append(f"{name} is not settled, but entry {seq} posted its reservation")
        elif kind == "void" and not v.voided:
            out.append(f"{name} is not voided, but entry {seq} voided its reservation")
    return out
