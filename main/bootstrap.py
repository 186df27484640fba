"""One database opened, and every service on it: the app, the commands, the demo and tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from api.endpoints import Services
from identity.tokens import TokenBook
from ledger import Database, KeyRing, LedgerStore
from partners.service import Partners
from timebank.service import TimeBank
from web.book import AccountBook


@dataclass(frozen=True, slots=True)
class App:
    """The services of one database, opened together and closed together (`aclose`)."""

    db: Database
    store: LedgerStore
    bank: TimeBank
    partners: Partners
    tokens: TokenBook
    book: AccountBook  # the app's sign-ins

    @property
    def services(self) -> Services:
        """What the API's handlers work with (a member's erasure disables their sign-ins)."""
        return Services(self.bank, self.tokens, self.partners, on_erase=(self.book.disable_member,))

    async def aclose(self) -> None:
        """The ledger's writer stopped, then the database closed, once."""
        try:
            await self.store.close()
        finally:
            await self.db.close()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def bootstrap(
    url: str,
    keys: KeyRing | Path,
    *,
    clock: Callable[[], int] | None = None,
    bootstrap_admin: str | None = None,
) -> App:
    """Open the database at `url` (its tables made if missing) and every service on it."""
    db = await Database.open(url)
    store: LedgerStore | None = None
    try:
        ring = keys if isinstance(keys, KeyRing) else KeyRing.from_env(keys)
        store = await LedgerStore.on(db, ring, clock=clock)
        bank = await TimeBank.on(db, store, clock)
        partners = await Partners.on(db, bank)
        tokens = await TokenBook.on(db, bank.clock, bootstrap_admin)
        book = await AccountBook.on(db, bank.clock)
    except BaseException:
        if store is not None:
            await store.close()
        await db.close()
        raise
    return App(db, store, bank, partners, tokens, book)
