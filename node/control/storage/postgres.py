"""PostgreSQL backend (asyncpg): for several nodes and control-plane replicas.

`postgresql://user@host:5432/db?schema=name` puts every table in `name` (created if missing),
which is how tests isolate runs. IP-list writers take a transaction-scoped advisory lock so
list versions (a sequence) commit in the order they were drawn: a node's cursor never moves
past a version whose transaction is still open.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from node.control.storage import migrations
from node.control.storage.sql import Conn, SqlStorage

_LISTS_LOCK = 0x5A115ADE  # advisory lock key of the IP-list writers
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """`?` → `$1, $2, ...` (our SQL has no `?` inside literals)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


def _count(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class _PgConn:
    __slots__ = ("_c",)

    def __init__(self, c: asyncpg.Connection) -> None:
        self._c = c

    async def execute(self, sql: str, *args: Any) -> int:
        return _count(await self._c.execute(_pg(sql), *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._c.executemany(_pg(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._c.fetch(_pg(sql), *args)]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._c.fetchval(_pg(sql), *args)


def split_schema(url: str) -> tuple[str, str | None]:
    """Take our `schema=` parameter out of the URL (asyncpg would reject it)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    if schema is not None and not _SCHEMA.match(schema):
        raise ValueError(f"schema {schema!r} must be a lower-case SQL identifier")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresStorage(SqlStorage):
    url_scheme = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn, self.schema = split_schema(url)
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None

    def _migrations(self) -> list[list[str]]:
        return migrations.POSTGRES

    async def open(self) -> None:
        settings = {"application_name": "palisade-control"}
        if self.schema:
            con = await asyncpg.connect(self.dsn)
            try:
                await con.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            finally:
                await con.close()
            settings["search_path"] = self.schema
        self._pool = await asyncpg.create_pool(self.dsn, min_size=self._sizes[0],
                                               max_size=self._sizes[1],
                                               server_settings=settings)
        await self._migrate()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _lock_lists(self, c: Conn) -> None:
        await c.execute("SELECT pg_advisory_xact_lock(?)", _LISTS_LOCK)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        assert self._pool is not None, "storage not open"
        async with self._pool.acquire() as con, con.transaction():
            yield _PgConn(con)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Conn]:
        assert self._pool is not None, "storage not open"
        async with self._pool.acquire() as con:
            yield _PgConn(con)
