"""Helpers for tests of the control plane: a throw-away storage on either backend.

PostgreSQL tests use `PALISADE_TEST_PG` (default postgresql://postgres@127.0.0.1:5432/test),
one fresh schema per storage, dropped afterwards. When the server is unreachable they skip,
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from node.control.storage import Storage, open_storage

PG_URL = os.environ.get("PALISADE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgres")


async def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        import asyncpg

        con = await asyncpg.connect(PG_URL, timeout=3)
        await con.close()
    except Exception as e:  # refused, auth, missing database: all mean "not here"
        return f"PostgreSQL at {PG_URL} unreachable ({type(e).__name__}: {e})"
    return None


async def require_pg() -> None:
    import pytest

    reason = await pg_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI=true requires it")
        pytest.skip(reason)


@asynccontextmanager
async def temp_storage(backend: str, tmp_path: Path) -> AsyncIterator[Storage]:
    if backend == "sqlite":
        storage = await open_storage(f"sqlite:///{tmp_path / 'control.db'}")
        try:
            yield storage
        finally:
            await storage.close()
        return
    await require_pg()
    import asyncpg

    schema = f"palisade_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in PG_URL else "?"
    storage = await open_storage(f"{PG_URL}{sep}schema={schema}")
    try:
        yield storage
    finally:
        await storage.close()
        con = await asyncpg.connect(PG_URL)
        try:
            await con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await con.close()
