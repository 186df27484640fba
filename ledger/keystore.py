"""Where private signing keys live: a key directory (files 0600) and/or the environment.

Never the database: stealing the database file must not let anyone forge entries.
Layout: `<dir>/<ledger>/<key_id>.ed25519`, each file the base64 of a 32-byte Ed25519 seed.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from .errors import KeyUnavailable
from .model import check_ledger_id
from .signing import Signer

ENV_KEYS = "TIMEBANK_SIGNING_KEYS"  # comma-separated base64 seeds, for KMS-style injection


class KeyRing:
    """Looks up private keys by key id; creates new ones in the key directory."""

    def __init__(self, directory: Path | str | None, env_seeds: str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._signers: dict[str, Signer] = {}
        for text in (env_seeds or "").split(","):
            if text.strip():
                signer = Signer(_decode_seed(text.strip(), ENV_KEYS))
                self._signers[signer.key_id] = signer

    @classmethod
    def from_env(cls, directory: Path | str | None) -> KeyRing:
        return cls(directory, os.environ.get(ENV_KEYS))

    def get(self, ledger: str, key_id: str) -> Signer:
        signer = self._signers.get(key_id)
        if signer is None and self.directory is not None:
            path = self.directory / check_ledger_id(ledger) / f"{key_id}.ed25519"
            if path.exists():
                signer = Signer(_decode_seed(_read_private(path), str(path)))
                if signer.key_id != key_id:
                    raise KeyUnavailable(f"key file {path} holds key {signer.key_id}")
                self._signers[key_id] = signer
        if signer is None:
            raise KeyUnavailable(f"no private key {key_id} for ledger {ledger}")
        return signer

    def create(self, ledger: str) -> Signer:
        """Generate a key and write it (0600) before it is used, so it is never lost."""
        if self.directory is None:
            raise KeyUnavailable("no key directory configured to hold a new key")
        folder = self.directory / check_ledger_id(ledger)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        os.chmod(folder, 0o700)
        signer = Signer.generate()
        path = folder / f"{signer.key_id}.ed25519"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(signer.seed_text() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(folder)
        self._signers[signer.key_id] = signer
        return signer


def _read_private(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyUnavailable(f"key file {path} is readable by others; chmod 600 it")
    return path.read_text().strip()


def _decode_seed(text: str, where: str) -> bytes:
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyUnavailable(f"{where}: not a base64 Ed25519 seed") from exc
    if len(seed) != 32:
        raise KeyUnavailable(f"{where}: an Ed25519 seed is 32 bytes")
    return seed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
