"""IP lists persisted in SQLite: entries plus an append-only history of every change.

One file in the state directory, WAL journal, `synchronous=NORMAL`: a committed change
survives the process being killed (SIGKILL), only a power loss may lose the last commits.
The node and the `palisade ip-list` command open the same file; the node notices the
command's commits through `PRAGMA data_version` (see `IPLists.refresh`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from node.iplists.matcher import NetKey, canonical_network, parse_network

LISTS: tuple[str, ...] = ("allow", "exception", "deny", "gray")
ACTIONS: tuple[str, ...] = ("add", "remove", "expire")
MAX_REASON = 512
# History kept on the node: the control plane keeps its own (400 days), so the node needs
# little; the row cap bounds the disk when a flood lists and expires addresses by the million.
HISTORY_KEEP = 90 * 86400.0
HISTORY_MAX_ROWS = 1_000_000      # ~150 MB
PRUNE_BATCH = 20_000              # rows a call deletes at most: the node's loop waits on it

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    list      TEXT NOT NULL,
    network   TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    source    TEXT NOT NULL DEFAULT 'manual',
    detectors TEXT NOT NULL DEFAULT '[]',
    created   REAL NOT NULL,
    expires   REAL,
    who       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (list, network)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    ts       REAL NOT NULL,
    action   TEXT NOT NULL,
    list     TEXT NOT NULL,
    network  TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    source   TEXT NOT NULL DEFAULT '',
    who      TEXT NOT NULL DEFAULT '',
    duration REAL,
    expires  REAL
);
CREATE INDEX IF NOT EXISTS history_network ON history(network);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    list: str
    network: str                 # canonical: bare address or CIDR
    reason: str = ""
    source: str = "manual"       # "manual" | "config" | "profile:<name>"
    detectors: tuple[str, ...] = ()
    created: float = 0.0
    expires: float | None = None  # None = forever
    who: str = ""

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now

    @property
    def key(self) -> NetKey:
        return parse_network(self.network)

    def to_dict(self) -> dict:
        return {"list": self.list, "network": self.network, "reason": self.reason,
                "source": self.source, "detectors": list(self.detectors),
                "created": self.created, "expires": self.expires, "who": self.who}


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    id: int
    ts: float
    action: str                  # add | remove | expire
    list: str
    network: str
    reason: str
    source: str
    who: str
    duration: float | None       # what was asked for on add (None = forever)
    expires: float | None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


def check_list(name: str) -> str:
    if name not in LISTS:
        raise ValueError(f"unknown list {name!r}; lists: {', '.join(LISTS)}")
    return name


def _entry(row: tuple) -> Entry:
    lst, net, reason, source, detectors, created, expires, who = row
    try:
        dets = tuple(str(d) for d in json.loads(detectors))
    except (ValueError, TypeError):
        dets = ()
    return Entry(lst, net, reason, source, dets, created, expires, who)


_ENTRY_COLS = "list, network, reason, source, detectors, created, expires, who"


class IPListStore:
    """Synchronous SQLite store. One instance per process; not shared across threads."""

    def __init__(self, path: str, *, clock=time.time) -> None:
        self.path = path
        self.clock = clock
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # isolation_level=None: we open transactions explicitly (BEGIN IMMEDIATE) so that a
        # change and its history row commit together.
        self.db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._batch = False

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> IPListStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- change detection -----------------------------------------------------------------
    def data_version(self) -> int:
        """Changes when *another* connection commits (SQLite's own cheap change counter)."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def last_history_id(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM history").fetchone()[0]

    def changes_since(self, history_id: int) -> tuple[int, set[tuple[str, str]]]:
        """(newest history id, the (list, network) pairs changed after `history_id`)."""
        rows = self.db.execute(
            "SELECT id, list, network FROM history WHERE id > ? ORDER BY id", (history_id,)
        ).fetchall()
        if not rows:
            return history_id, set()
        return rows[-1][0], {(r[1], r[2]) for r in rows}

    def history_after(self, history_id: int, limit: int = 1000) -> list[HistoryEvent]:
        """Changes after `history_id`, oldest first (what the node forwards to the control
        plane)."""
        return [HistoryEvent(*r) for r in self.db.execute(
            "SELECT id, ts, action, list, network, reason, source, who, duration, expires "
            "FROM history WHERE id > ? ORDER BY id LIMIT ?", (history_id, max(1, int(limit))))]

    def prune_history(self, *, keep: float = HISTORY_KEEP, max_rows: int = HISTORY_MAX_ROWS,
                      hold: int | None = None, now: float | None = None,
                      batch: int = PRUNE_BATCH) -> tuple[int, int]:
        """Delete the oldest history rows, at most `batch` a call: rows older than `keep`
        seconds, except those after `hold` (not yet forwarded to the control plane); then,
        whatever their age, the oldest rows beyond `max_rows`. Returns (by age, by cap).
        Rows are only ever deleted oldest first, so ids stay contiguous and MAX - MIN + 1
        counts them without a scan."""
        now = self.clock() if now is None else now
        with self._tx():
            lo, hi = self.db.execute("SELECT MIN(id), MAX(id) FROM history").fetchone()
            if lo is None:
                return 0, 0
            # The oldest rows first, while they are old enough (ts is the wall clock at the
            # change: a row stamped after a backward clock step just waits its turn).
            limit = hi if hold is None else min(hold, hi)
            first_young = self.db.execute(
                "SELECT MIN(id) FROM (SELECT id, ts FROM history WHERE id <= ? ORDER BY id "
                "LIMIT ?) WHERE ts >= ?", (limit, batch, now - keep)).fetchone()[0]
            upto = min(limit, lo + batch - 1) if first_young is None else first_young - 1
            by_age = self.db.execute("DELETE FROM history WHERE id <= ?", (upto,)).rowcount \
                if upto >= lo else 0
            lo = max(lo, upto + 1)
            over = (hi - lo + 1) - max_rows
            by_cap = 0
            if over > 0:
                by_cap = self.db.execute("DELETE FROM history WHERE id < ?",
                                         (lo + min(over, batch),)).rowcount
        return by_age, by_cap

    # -- reads -----------------------------------------------------------------------------
    def get(self, list_name: str, network: str) -> Entry | None:
        row = self.db.execute(
            f"SELECT {_ENTRY_COLS} FROM entries WHERE list = ? AND network = ?",
            (list_name, network)).fetchone()
        return _entry(row) if row else None

    def list_entries(self, list_name: str | None = None, *, now: float | None = None,
                     include_expired: bool = False) -> list[Entry]:
        """Entries, newest first; expired ones are hidden unless asked for."""
        now = self.clock() if now is None else now
        sql = f"SELECT {_ENTRY_COLS} FROM entries WHERE 1=1"
        args: list = []
        if list_name is not None:
            sql += " AND list = ?"
            args.append(check_list(list_name))
        if not include_expired:
            sql += " AND (expires IS NULL OR expires > ?)"
            args.append(now)
        sql += " ORDER BY created DESC, network"
        return [_entry(r) for r in self.db.execute(sql, args)]

    def history(self, list_name: str | None = None, network: str | None = None, *,
                limit: int = 100) -> list[HistoryEvent]:
        """Most recent changes first."""
        sql = ("SELECT id, ts, action, list, network, reason, source, who, duration, expires "
               "FROM history WHERE 1=1")
        args: list = []
        if list_name is not None:
            sql += " AND list = ?"
            args.append(check_list(list_name))
        if network is not None:
            sql += " AND network = ?"
            args.append(canonical_network(network))
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(max(1, int(limit)))
        return [HistoryEvent(*r) for r in self.db.execute(sql, args)]

    # -- writes ----------------------------------------------------------------------------
    def add(self, list_name: str, network: str, *, reason: str = "",
            duration: float | None = None, who: str = "", source: str = "manual",
            detectors: Iterable[str] = (), now: float | None = None) -> Entry:
        """Add (or replace) an entry; `duration` in seconds, None = forever."""
        check_list(list_name)
        net = canonical_network(network)
        if duration is not None and not duration > 0:
            raise ValueError("duration must be positive (or None for forever)")
        now = self.clock() if now is None else now
        entry = Entry(list_name, net, reason[:MAX_REASON], source, tuple(detectors), now,
                      None if duration is None else now + duration, who)
        with self._tx():
            self.db.execute(
                f"INSERT OR REPLACE INTO entries ({_ENTRY_COLS}) VALUES (?,?,?,?,?,?,?,?)",
                (entry.list, entry.network, entry.reason, entry.source,
                 json.dumps(list(entry.detectors)), entry.created, entry.expires, entry.who))
            self._log(now, "add", entry, who, duration)
        return entry

    def remove(self, list_name: str, network: str, *, who: str = "",
               now: float | None = None) -> Entry | None:
        """Remove an entry; returns it, or None if it was not there."""
        check_list(list_name)
        net = canonical_network(network)
        now = self.clock() if now is None else now
        with self._tx():
            old = self.get(list_name, net)
            if old is None:
                return None
            self.db.execute("DELETE FROM entries WHERE list = ? AND network = ?",
                            (list_name, net))
            self._log(now, "remove", old, who, None)
        return old

    def expire(self, now: float | None = None) -> list[Entry]:
        """Delete entries whose time is up, logging each as `expire`."""
        now = self.clock() if now is None else now
        # cheap check first: the sweep runs every few seconds and usually finds nothing
        if self.db.execute("SELECT 1 FROM entries WHERE expires IS NOT NULL AND expires <= ? "
                           "LIMIT 1", (now,)).fetchone() is None:
            return []
        with self._tx():
            gone = [_entry(r) for r in self.db.execute(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE expires IS NOT NULL AND expires <= ?",
                (now,))]
            for e in gone:
                self.db.execute("DELETE FROM entries WHERE list = ? AND network = ?",
                                (e.list, e.network))
                self._log(now, "expire", e, "system", None)
        return gone

    def _log(self, now: float, action: str, e: Entry, who: str, duration: float | None) -> None:
        self.db.execute(
            "INSERT INTO history (ts, action, list, network, reason, source, who, duration, "
            "expires) VALUES (?,?,?,?,?,?,?,?,?)",
            (now, action, e.list, e.network, e.reason, e.source, who, duration, e.expires))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Many changes, one transaction: a commit costs far more than a row (hundreds of
        µs), which matters when the node applies a control-plane snapshot."""
        if self._batch:
            yield
            return
        with _Tx(self.db):
            self._batch = True
            try:
                yield
            finally:
                self._batch = False

    def _tx(self) -> _Tx | contextlib.nullcontext[None]:
        return contextlib.nullcontext() if self._batch else _Tx(self.db)

    # the CLI-facing names
    list = list_entries


class _Tx:
    """BEGIN IMMEDIATE … COMMIT / ROLLBACK: take the write lock up front so two writers
    (node and CLI) queue on the busy timeout instead of failing mid-transaction."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
