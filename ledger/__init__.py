"""A signed, append-only, hash-chained, double-entry ledger of integer minutes.

Knows nothing of time banks: ledgers, accounts with floors, entries whose postings sum to zero,
two-phase reservations, reversals, Ed25519 signatures with certified key rotation, and RFC 6962
checkpoints with inclusion and consistency proofs. See docs/ledger-format.md.
"""

from .bundle import BundleError, bundle_sources, export_bundle, read_checkpoints, read_public_keys
from .database import Database
from .encoding import key_id_for
from .errors import (
    Conflict,
    FloorBreached,
    IdempotencyConflict,
    InvalidRequest,
    KeyUnavailable,
    LedgerError,
    NotFound,
    NotYetDue,
    refuse,
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
    check_ledger_id,
    from_us,
    to_us,
)
from .prepared import Prepared
from .proofs import consistency_problem, key_list_problem, receipt_problem
from .records import LOWER_HEX, RecordError, key_json, load_receipt, parse_receipt, receipt_json
from .signing import verify_signature
from .storage import (  # typed reads in the caller's transaction, and the engines' settings
    account_history,
    create_tables,
    entries_naming,
    list_accounts,
    list_ledgers,
    make_engine,
    make_sync_engine,
    metadata,
    read_head,
    read_keys,
    reservation_states,
    resolutions,
    reversal_refs,
    sqlite_url,
    stream_entries,
    stream_entries_sync,
    to_sync_url,
)
from .store import INTERNAL_KEYS, LedgerStore
from .sums import LedgerSums
from .verify import Report, verify_sources
from .verify_db import verify_database

__all__ = [
    "INTERNAL_KEYS",
    "LOWER_HEX",
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
    "LedgerSums",
    "NotFound",
    "NotYetDue",
    "Posting",
    "Prepared",
    "PublicKey",
    "Receipt",
    "RecordError",
    "Report",
    "Reservation",
    "account_history",
    "bundle_sources",
    "check_ledger_id",
    "consistency_problem",
    "create_tables",
    "entries_naming",
    "export_bundle",
    "from_us",
    "key_id_for",
    "key_json",
    "key_list_problem",
    "list_accounts",
    "list_ledgers",
    "load_receipt",
    "make_engine",
    "make_sync_engine",
    "metadata",
    "parse_receipt",
    "read_checkpoints",
    "read_head",
    "read_keys",
    "read_public_keys",
    "receipt_json",
    "receipt_problem",
    "refuse",
    "reservation_states",
    "resolutions",
    "reversal_refs",
    "sqlite_url",
    "stream_entries",
    "stream_entries_sync",
    "to_sync_url",
    "to_us",
    "verify_database",
    "verify_signature",
    "verify_sources",
]
