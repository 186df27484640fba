"""`timebank verify`'s second half: the services' records against the ledgers they wrote.

The ledger check proves the entries are whole; this proves the claims and vouchers agree with
them (see `consistency.py` in each package), read in one snapshot of the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from ledger import EntryKind, bundle_sources, make_sync_engine, resolutions
from partners import storage as partner_storage
from partners.consistency import voucher_problems
from timebank import storage
from timebank.consistency import ClaimEntry, claim_problems, ledger_claim_problems


@dataclass
class RecordsReport:
    claims: int = 0
    vouchers: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """What was checked, for verify's OK line."""
        return f"{self.claims} claims and {self.vouchers} vouchers agree with their ledgers"


def check_records(url: str) -> RecordsReport:
    """Every scheme's claims and vouchers against its ledger (blocking: run it on a thread)."""
    try:
        return _check(url)
    except OperationalError:
        if "mode=ro" not in url or "immutable=1" in url:
            raise
        # A WAL database in a read-only directory (as `verify_database`): read it as immutable.
        return _check(url + "&immutable=1")


def _check(url: str) -> RecordsReport:
    engine = make_sync_engine(url, read_only=True)
    out = RecordsReport()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one snapshot for every table read
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                tables = set(inspect(conn).get_table_names())
                if storage.claims.name not in tables:
                    return out  # a ledger-only database: nothing to check against
                for scheme in storage.list_schemes(conn):
                    claims = storage.claim_records(conn, scheme.id)
                    out.claims += len(claims)
                    out.problems += claim_problems(
                        scheme.id, claims, storage.claim_entries(conn, scheme.id)
                    )
                    if partner_storage.vouchers.name in tables:
                        vouchers = partner_storage.voucher_records(conn, scheme.id)
                        out.vouchers += len(vouchers)
                        resolved = resolutions(conn, scheme.id)
                        out.problems += voucher_problems(scheme.id, vouchers, resolved)
    finally:
        engine.dispose()
    return out


async def check_bundle_claims(path: Path) -> RecordsReport:
    """What a bundle alone says of the claims its entries name (it holds no claims table): each
    credited by one entry and reversed at most once, by a reversal of that entry. Read after
    the bundle verified, so every line is known to be well formed."""
    report = RecordsReport()
    async for data in bundle_sources(path):
        named = []
        async for e in data.entries:
            claim = dict(e.meta).get("claim")
            if claim is not None:
                named.append(ClaimEntry(e.seq, e.kind.value, e.ref or None, claim))
        report.claims += len({c.claim for c in named if c.kind != EntryKind.REVERSE})
        report.problems += ledger_claim_problems(data.ledger, named)
    return report
