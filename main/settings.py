"""Configuration from TIMEBANK_* environment variables, with safe defaults. Secrets never logged.

- `TIMEBANK_DATABASE_URL` or `TIMEBANK_DB`: a SQLAlchemy database URL or a SQLite file path
  (default `timebank.db`); `--db` on the command line wins over both.
- `TIMEBANK_KEY_DIR`: the ledger's signing keys (default `<db>.keys` beside a SQLite file,
  `timebank.keys` for a server database).
- `TIMEBANK_ADMIN_TOKEN`: a bootstrap secret accepted as the deployment admin's bearer token.
- `TIMEBANK_COOKIE_SECURE`: `true` or `false` forces the app's cookies' Secure flag; unset, it is
  set when the request came over HTTPS (behind a TLS proxy: uvicorn's `--proxy-headers`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ledger import sqlite_url

SERVER_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")


class BadDatabase(ValueError):
    """A --db (or TIMEBANK_DATABASE_URL) that names no database this service can use."""


def database_location(where: str) -> str:
    """A SQLite file's path (`sqlite:///PATH` and `sqlite+aiosqlite:///PATH` given as URLs),
    or a PostgreSQL URL on the asyncpg driver; any other kind of database is refused."""
    if "://" not in where:
        if not where.strip():
            raise BadDatabase("--db is empty: give a SQLite file or a postgresql:// URL")
        return where
    scheme, _, rest = where.partition("://")
    if scheme.lower() in ("sqlite", "sqlite+aiosqlite"):
        path = rest.removeprefix("/").split("?", 1)[0]
        if not path:
            raise BadDatabase(f"--db {where}: name the file (sqlite:///PATH)")
        return path
    if scheme.lower() in SERVER_SCHEMES:
        return "postgresql+asyncpg://" + rest
    raise BadDatabase(
        f"--db: {scheme!r} databases are not supported: give a SQLite file or a postgresql:// URL"
    )


@dataclass(frozen=True)
class Settings:
    db_path: Path  # the SQLite file (for a server database: a placeholder, see `is_sqlite`)
    key_dir: Path
    url: str  # the SQLAlchemy URL everything connects with
    admin_token: str | None = None
    cookie_secure: bool | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @classmethod
    def from_env(cls, db: str | None = None, keys: str | None = None) -> Settings:
        """Explicit arguments win, then the environment, then defaults.

        The default key directory sits beside the database (`<db>.keys/`), never inside it.
        """
        env = os.environ
        where = (
            db
            if db is not None
            else (env.get("TIMEBANK_DATABASE_URL") or env.get("TIMEBANK_DB") or "timebank.db")
        )
        admin = env.get("TIMEBANK_ADMIN_TOKEN") or None
        secure = {"true": True, "false": False}.get(env.get("TIMEBANK_COOKIE_SECURE", "").lower())
        where = database_location(where)
        if "://" in where:
            key_dir = keys or env.get("TIMEBANK_KEY_DIR") or "timebank.keys"
            return cls(Path("-"), Path(key_dir), where, admin, secure)
        db_path = Path(where)
        key_dir = keys or env.get("TIMEBANK_KEY_DIR") or f"{db_path}.keys"
        return cls(db_path, Path(key_dir), sqlite_url(str(db_path)), admin, secure)
