"""Every endpoint of the API, in the order Starlette tries them: the busiest first."""

from __future__ import annotations

from . import claims, imports, ledger, members, offers, partners, reports, schemes, vouchers
from .endpoints import Endpoint

ENDPOINTS: list[Endpoint] = [
    *claims.ENDPOINTS,
    *vouchers.ENDPOINTS,
    *schemes.ENDPOINTS,
    *members.ENDPOINTS,
    *ledger.ENDPOINTS,
    *imports.ENDPOINTS,
    *offers.ENDPOINTS,
    *partners.ENDPOINTS,
    *reports.ENDPOINTS,
]
