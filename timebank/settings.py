"""Configuration from TIMEBANK_* environment variables, with safe defaults. Secrets never logged."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    db_path: Path
    key_dir: Path

    @classmethod
    def from_env(cls, db: str | None = None, keys: str | None = None) -> Settings:
        """Explicit arguments win, then TIMEBANK_DB / TIMEBANK_KEY_DIR, then defaults.

        The default key directory sits beside the database (`<db>.keys/`), never inside it.
        """
        db_path = Path(db or os.environ.get("TIMEBANK_DB") or "timebank.db")
        key_dir = keys or os.environ.get("TIMEBANK_KEY_DIR") or f"{db_path}.keys"
        return cls(db_path=db_path, key_dir=Path(key_dir))
