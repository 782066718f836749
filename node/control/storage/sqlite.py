"""SQLite backend (aiosqlite): the embedded default, one WAL file in the state directory.

One writer connection behind an asyncio lock (SQLite has one writer anyway; the lock keeps two
coroutines from interleaving statements of their transactions) and one reader connection, which
WAL lets read while the writer writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from node.control.storage import migrations
from node.control.storage.sql import Conn, SqlStorage


class _SqliteConn:
    __slots__ = ("_db",)

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._db.execute(sql, args) as cur:
            return cur.rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._db.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self._db.execute(sql, args) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._db.execute(sql, args) as cur:
            row = await cur.fetchone()
        return row[0] if row else None


class SqliteStorage(SqlStorage):
    url_scheme = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._w: aiosqlite.Connection | None = None
        self._r: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def _migrations(self) -> list[list[str]]:
        return migrations.SQLITE

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        await db.execute("PRAGMA busy_timeout = 10000")
        await db.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: durable across process crashes, at most the last commits lost on a
        # power cut; the nodes' spools resend what was not acknowledged.
        await db.execute("PRAGMA synchronous = NORMAL")
        return db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._w = await self._connect()
        self._r = await self._connect()
        await self._migrate()

    async def close(self) -> None:
        for db in (self._r, self._w):
            if db is not None:
                await db.close()
        self._w = self._r = None

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        assert self._w is not None, "storage not open"
        async with self._lock:
            try:
                await self._w.execute("BEGIN IMMEDIATE")
                yield _SqliteConn(self._w)
                await self._w.execute("COMMIT")
            except BaseException:
                # Also after a cancellation during BEGIN: statements run in order on the
                # connection's thread, so this ROLLBACK follows that BEGIN.
                with contextlib.suppress(sqlite3.OperationalError, ValueError):
                    await self._w.execute("ROLLBACK")
                raise

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Conn]:
        assert self._r is not None, "storage not open"
        yield _SqliteConn(self._r)
