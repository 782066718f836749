"""Storage backends behind one interface; `open_storage(url)` picks one by URL."""

from __future__ import annotations

from pathlib import Path

from node.control.storage.base import Retention, Storage

__all__ = ["Retention", "Storage", "make_storage", "open_storage"]


def make_storage(url: str) -> Storage:
    """`sqlite:///abs/path.db`, `sqlite:relative.db` or `postgresql://...` → an unopened
    storage. Raises ValueError for anything else."""
    if url.startswith("sqlite:"):
        from node.control.storage.sqlite import SqliteStorage

        path = url[len("sqlite:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError("sqlite URL needs a file path, e.g. sqlite:///var/lib/palisade/"
                             "control.db")
        return SqliteStorage(Path(path))
    if url.startswith(("postgresql://", "postgres://")):
        from node.control.storage.postgres import PostgresStorage

        return PostgresStorage(url)
    raise ValueError(f"unknown storage URL {url.split(':', 1)[0]!r}: use sqlite:///PATH or "
                     "postgresql://USER@HOST/DB")


async def open_storage(url: str) -> Storage:
    """Make, connect and migrate a storage."""
    storage = make_storage(url)
    await storage.open()
    return storage
