"""A scheme's own versions of the valuation catalogue, stored, never changed.

A scheme adds values on top of the shipped catalogue (local unit costs, ASHE wages for its
region: `derive`) or a licensee's values it may not redistribute (HACT's Social Value Bank:
`merge_licensed`). Each addition makes a new version based on the scheme's latest (or the
shipped one), with its own content hash. A version is written once: the same content again is
the same version; other content under a used version name is refused. Reports use the scheme's
latest version unless asked for another, and name its hash; verify finds it again by the hash.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger import Conflict, InvalidRequest, NotFound
from timebank.schemes import Role
from timebank.service import Forbidden, TimeBank
from timebank.storage import catalogues

from ..catalogue import (
    Catalogue,
    CatalogueError,
    derive,
    dump_catalogue,
    load_catalogue,
    merge_licensed,
)
from ..catalogue import shipped_catalogue as shipped


@dataclass(frozen=True, slots=True)
class Version:
    version: str
    hash: str
    based_on: str | None
    scheme: str | None  # None: the shipped catalogue


def _rows(conn: Connection, scheme: str) -> list[tuple[str, str, str, str]]:
    c = catalogues.c
    stmt = (
        select(c.version, c.hash, c.based_on, c.content)
        .where(c.scheme == scheme)
        .order_by(c.created_us, c.version)
    )
    return [(v, h, b, t) for v, h, b, t in conn.execute(stmt)]


async def versions(bank: TimeBank, scheme: str) -> list[Version]:
    """The shipped catalogue, then the scheme's versions, oldest first."""
    base = shipped()
    rows = await bank.query(_rows, scheme)
    return [Version(base.version, base.content_hash, None, None)] + [
        Version(v, h, b, scheme) for v, h, b, _ in rows
    ]


async def scheme_catalogue(bank: TimeBank, scheme: str, version: str | None = None) -> Catalogue:
    """The scheme's latest version (the shipped catalogue if it has none), or `version`."""
    rows = await bank.query(_rows, scheme)
    if version is None:
        return load_catalogue(rows[-1][3]) if rows else shipped()
    if version == shipped().version:
        return shipped()
    for v, _h, _b, text in rows:
        if v == version:
            return load_catalogue(text)
    raise NotFound(f"no catalogue version {version!r} in {scheme!r}", field="catalogue")


async def catalogue_by_hash(bank: TimeBank, scheme: str, content_hash: str) -> Catalogue | None:
    if shipped().content_hash == content_hash:
        return shipped()
    for _v, h, _b, text in await bank.query(_rows, scheme):
        if h == content_hash:
            return load_catalogue(text)
    return None


async def add_version(
    bank: TimeBank, scheme: str, text: str, *, version: str, licensed: bool, by: str
) -> Catalogue:
    """A new version of the scheme's catalogue with the additions in `text` (JSON): its own
    values, or (`licensed`) a licensee's. Written once; refused naming the JSON path at fault."""
    person = await bank.member(scheme, by)
    if Role.SCHEME_ADMIN not in person.roles:
        raise Forbidden(f"{by} is not an admin of {scheme}", field="by")
    if version == shipped().version:
        raise Conflict("that is the shipped catalogue's version", field="version")
    rows = await bank.query(_rows, scheme)
    same = [r for r in rows if r[0] == version]
    if same:  # sent before? the same additions on the same base make the same hash
        _v, stored_hash, based_on, content = same[0]
        base = await catalogue_by_hash(bank, scheme, based_on) or shipped()
        if _extended(base, text, scheme, version, licensed).content_hash == stored_hash:
            return load_catalogue(content)
        raise Conflict(f"catalogue version {version!r} exists with other content", field="version")
    base = load_catalogue(rows[-1][3]) if rows else shipped()
    made = _extended(base, text, scheme, version, licensed)
    content = dump_catalogue(made)
    now = bank.clock()

    def write(conn: Connection) -> Catalogue:
        latest = _rows(conn, scheme)
        if latest != rows:  # another version landed meanwhile: this one's base is stale
            raise Conflict("the catalogue changed meanwhile; send it again", field="version")
        conn.execute(
            catalogues.insert().values(
                scheme=scheme,
                version=version,
                hash=made.content_hash,
                based_on=made.based_on or "",
                content=content,
                created_us=now,
            )
        )
        return made

    return await bank.ledger.run(write)


def _extended(base: Catalogue, text: str, scheme: str, version: str, licensed: bool) -> Catalogue:
    try:
        if licensed:
            made = merge_licensed(base, text, version=version)
            return made if made.scheme is not None else replace(made, scheme=scheme)
        return derive(base, text, scheme=scheme, version=version)
    except CatalogueError as exc:
        raise InvalidRequest(exc.message, field=f"content.{exc.path}") from None
