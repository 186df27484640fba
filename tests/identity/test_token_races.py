"""A token's transitions raced across two token books on one database (two processes): made
twice under one key, revoked twice, revoked while in use. One token, one revocation time, and
after the revocation has committed the token is refused everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.problems import from_exception
from identity.auth import ApiRole
from identity.refusals import Unauthenticated
from identity.tokens import TokenBook
from ledger.storage import sqlite_url
from tests.conftest import SERVER_URL, Clock

pytestmark = pytest.mark.both_backends


@pytest.fixture
async def books(
    tmp_path: Path, db_url: str, clock: Clock
) -> AsyncIterator[tuple[TokenBook, TokenBook]]:
    url = db_url if SERVER_URL else sqlite_url(str(tmp_path / "tokens.db"))
    one = await TokenBook.open(url, clock)
    two = await TokenBook.open(url, clock)
    yield one, two
    await one.close()
    await two.close()


async def test_a_token_made_twice_at_once_under_one_key_is_one_token(
    books: tuple[TokenBook, TokenBook],
) -> None:
    one, two = books
    for n in range(10):
        made = await asyncio.gather(*(
            book.create(ApiRole.COMMISSIONER, "taff", None, "council", created_by="A1",
                        idempotency_key=f"k{n}")
            for book in (one, two)
        ))  # fmt: skip
        (first, secret_a), (second, secret_b) = made
        assert first.id == second.id
        assert [s for s in (secret_a, secret_b) if s is not None] != [], made
        assert secret_a is None or secret_b is None  # shown once only


async def test_two_revocations_keep_the_first_time_and_the_token_is_refused_after(
    books: tuple[TokenBook, TokenBook], clock: Clock
) -> None:
    one, two = books
    for n in range(6):
        record, secret = await one.create(ApiRole.COMMISSIONER, "taff", None, "council",
                                          created_by="A1", idempotency_key=f"r{n}")  # fmt: skip
        assert secret is not None
        header = f"Bearer {secret}"
        assert (await two.authenticate(header)).role is ApiRole.COMMISSIONER  # cached there
        clock.advance(1)
        a, b, used = await asyncio.gather(
            one.revoke(record.id),
            two.revoke(record.id),
            two.authenticate(header),
            return_exceptions=True,
        )
        assert not isinstance(a, BaseException) and not isinstance(b, BaseException)
        assert a.revoked_us == b.revoked_us is not None  # one revocation, one time
        assert not isinstance(used, BaseException) or isinstance(used, Unauthenticated), used
        for book in (one, two):  # once committed, refused by either
            with pytest.raises(Unauthenticated) as refused:
                await book.authenticate(header)
            assert from_exception(refused.value).status == 401
