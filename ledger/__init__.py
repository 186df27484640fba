"""A signed, append-only, hash-chained, double-entry ledger of integer minutes.

Knows nothing of time banks: ledgers, accounts with floors, entries whose postings sum to zero,
two-phase reservations, reversals, Ed25519 signatures with certified key rotation, and RFC 6962
checkpoints with inclusion and consistency proofs. See docs/ledger-format.md.
"""

from .bundle import BundleError, bundle_sources, export_bundle
from .database import Database
from .errors import (
    Conflict,
    FloorBreached,
    IdempotencyConflict,
    InvalidRequest,
    KeyUnavailable,
    LedgerError,
    NotFound,
    NotYetDue,
)
from .keystore import KeyRing
from .model import (
    RESERVED_ACCOUNT,
    Account,
    Checkpoint,
    Entry,
    EntryKind,
    Posting,
    PublicKey,
    Receipt,
    Reservation,
    from_us,
    to_us,
)
from .proofs import consistency_problem, key_list_problem, receipt_problem
from .store import LedgerStore
from .verify import Report, verify_sources
from .verify_db import verify_database

__all__ = [
    "RESERVED_ACCOUNT",
    "Account",
    "BundleError",
    "Checkpoint",
    "Conflict",
    "Database",
    "Entry",
    "EntryKind",
    "FloorBreached",
    "IdempotencyConflict",
    "InvalidRequest",
    "KeyRing",
    "KeyUnavailable",
    "LedgerError",
    "LedgerStore",
    "NotFound",
    "NotYetDue",
    "Posting",
    "PublicKey",
    "Receipt",
    "Report",
    "Reservation",
    "bundle_sources",
    "consistency_problem",
    "export_bundle",
    "from_us",
    "key_list_problem",
    "receipt_problem",
    "to_us",
    "verify_database",
    "verify_sources",
]
