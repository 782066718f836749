"""The storage logic, written once in the SQL both SQLite and PostgreSQL speak.

Statements use `?` placeholders (the PostgreSQL driver rewrites them to `$n`), `ON CONFLICT`
upserts and `RETURNING`; days are integers computed here, so no dialect date function is used.
A backend supplies connections (`_write()` is one transaction, `_read()` a plain connection)
and `_lock_lists()`, which makes IP-list versions commit in order so a sync cursor never skips
a change that commits late.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from node.control.storage.base import (
    DAY,
    REACTION_LIST,
    IngestResult,
    Page,
    Retention,
    day_of,
)


class SchemaError(RuntimeError):
    """The database was migrated by a newer Palisade than this one."""


class Conn(Protocol):
    async def execute(self, sql: str, *args: Any) -> int: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _chunks(seq: Sequence[Any], n: int = 400) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class _Where:
    """AND-ed conditions with their arguments, built from the filters that are set."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, cond: str, *args: Any) -> None:
        self.parts.append(cond)
        self.args.extend(args)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.parts)) if self.parts else ""


_LIST_COLS = "list, cidr, reason, source, created, expires, who, attack_id, version"
_HIST_COLS = ("version, op, list, cidr, reason, source, created, expires, who, ts, origin, "
              "attack_id")
_ATTACK_COLS = ("id, event_id, node, ts, ip, ips, session, app, bot_type, confidence, profile, "
                "reaction, duration, ttd_requests, ttd_seconds, detectors, false_positive, "
                "fp_ts, fp_who")
_SESSION_COLS = ("id, app, session_id, ip, node, first_ts, last_ts, requests, statuses, "
                 "req_bytes, resp_bytes, attack_type")
_REQUEST_COLS = ("request_id, ts, ip, method, host, path, query, status, duration_ms, "
                 "req_bytes, resp_bytes, ua, username, blocked, attack")
_NODE_FIELDS = ("version", "addr", "last_push", "lag_seconds", "list_version", "spooled",
                "dropped", "records_shed")


class SqlStorage(ABC):
    url_scheme = ""

    # -- what a backend provides ----------------------------------------------------------------
    @abstractmethod
    def _write(self) -> AbstractAsyncContextManager[Conn]:
        """One transaction; committed on exit, rolled back on error."""

    @abstractmethod
    def _read(self) -> AbstractAsyncContextManager[Conn]: ...

    @abstractmethod
    def _migrations(self) -> list[list[str]]: ...

    async def _lock_lists(self, c: Conn) -> None:
        """Serialise IP-list writers for the rest of the transaction (no-op where writes are
        already serial)."""
        return None

    # -- migrations -----------------------------------------------------------------------------
    async def _migrate(self) -> None:
        steps = self._migrations()
        async with self._write() as c:
            await self._lock_lists(c)
            await c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = await c.fetchval("SELECT MAX(version) FROM schema_version") or 0
            if current > len(steps):
                raise SchemaError(f"database schema version {current} is newer than this "
                                  f"Palisade knows ({len(steps)}); upgrade Palisade")
            for version in range(current + 1, len(steps) + 1):
                for stmt in steps[version - 1]:
                    await c.execute(stmt)
                await c.execute("INSERT INTO schema_version (version) VALUES (?)", version)

    async def schema_version(self) -> int:
        async with self._read() as c:
            return int(await c.fetchval("SELECT MAX(version) FROM schema_version") or 0)

    # -- tokens and nodes -----------------------------------------------------------------------
    async def put_token(self, token_hash: str, name: str, role: str, now: float) -> None:
        async with self._write() as c:
            await c.execute(
                "INSERT INTO api_tokens (token_hash, name, role, created) VALUES (?,?,?,?) "
                "ON CONFLICT (token_hash) DO UPDATE SET name = excluded.name, "
                "role = excluded.role, revoked = 0", token_hash, name, role, float(now))

    async def find_token(self, token_hash: str) -> dict[str, Any] | None:
        async with self._read() as c:
            rows = await c.fetch("SELECT token_hash, name, role FROM api_tokens "
                                 "WHERE token_hash = ? AND revoked = 0", token_hash)
        return rows[0] if rows else None

    async def touch_node(self, name: str, now: float, **fields: Any) -> None:
        cols = [k for k in _NODE_FIELDS if k in fields]
        names = ", ".join(["name", "first_seen", "last_seen", *cols])
        sets = ", ".join(["last_seen = excluded.last_seen"] + [f"{k} = excluded.{k}" for k in cols])
        async with self._write() as c:
            await c.execute(
                f"INSERT INTO nodes ({names}) VALUES ({_marks(3 + len(cols))}) "
                f"ON CONFLICT (name) DO UPDATE SET {sets}",
                name, float(now), float(now), *(fields[k] for k in cols))

    async def list_nodes(self) -> list[dict[str, Any]]:
        async with self._read() as c:
            rows = await c.fetch("SELECT * FROM nodes ORDER BY name")
            current = await self._max_version(c)
        for r in rows:
            r["list_lag"] = (current - r["list_version"]) if r["list_version"] is not None \
                else None
        return rows

    # -- sync: push -----------------------------------------------------------------------------
    async def ingest_batch(self, node: str, batch_id: str, items: list[dict[str, Any]],
                           now: float) -> IngestResult:
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            by_kind[item["kind"]].append(item)
        async with self._write() as c:
            fresh = await c.fetch(
                "INSERT INTO received_batches (batch_id, node, ts, items) VALUES (?,?,?,?) "
                "ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id",
                batch_id, node, float(now), len(items))
            if not fresh:
                return IngestResult(duplicate=True)
            # Order matters: detections mark the requests stored just before them, sessions
            # pick up the attack type, list changes link to the detection that caused them.
            stored = {"record": await self._insert_records(c, node, by_kind["record"])}
            event_ids = await self._insert_detections(c, node, by_kind["detection"])
            stored["detection"] = len(event_ids)
            stored["session"] = await self._upsert_sessions(c, node, by_kind["session"])
            n = 0
            for item in by_kind["list_change"]:
                ch = dict(item["data"])
                ch["event_id"] = item["id"]
                ch["attack_id"] = await self._attack_id(c, event_ids, ch.pop("attack", None))
                if await self._apply_list_change(c, ch, now, origin=node):
                    n += 1
            stored["list_change"] = n
        return IngestResult(duplicate=False, stored=stored)

    @staticmethod
    async def _attack_id(c: Conn, fresh: dict[str, int], event_id: str | None) -> int | None:
        if not event_id:
            return None
        if event_id in fresh:
            return fresh[event_id]
        return await c.fetchval("SELECT id FROM attacks WHERE event_id = ?", event_id)

    async def _insert_records(self, c: Conn, node: str, items: list[dict[str, Any]]) -> int:
        if not items:
            return 0
        rows = []
        traffic: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
        for item in items:
            r = item["data"]
            rows.append((node, r["request_id"], float(r["ts"]), r["ip"], r["app"], r["session"],
                         r["method"], r["host"], r["path"], r["query"], int(r["status"]),
                         int(r["req_bytes"]), int(r["resp_bytes"]),
                         None if r["duration_ms"] is None else float(r["duration_ms"]),
                         r["ua"], r["username"], int(bool(r["blocked"]))))
            t = traffic[(day_of(r["ts"]), r["app"])]
            t[0] += 1
            t[1] += int(bool(r["blocked"]))
        await c.executemany(
            "INSERT INTO requests (node, request_id, ts, ip, app, session, method, host, path, "
            "query, status, req_bytes, resp_bytes, duration_ms, ua, username, blocked) "
            f"VALUES ({_marks(17)})", rows)
        await c.executemany(
            "INSERT INTO daily_traffic (day, app, requests, blocked) VALUES (?,?,?,?) "
            "ON CONFLICT (day, app) DO UPDATE SET "
            "requests = daily_traffic.requests + excluded.requests, "
            "blocked = daily_traffic.blocked + excluded.blocked",
            [(d, a, n, b) for (d, a), (n, b) in sorted(traffic.items())])
        await self._mark_late_evidence(c, items)
        return len(rows)

    async def _mark_late_evidence(self, c: Conn, items: list[dict[str, Any]]) -> None:
        """Mark requests that arrive after the detection citing them (nodes send detections
        ahead of records): the detection left their ids in pending_evidence."""
        by_app: dict[str, dict[str, str]] = defaultdict(dict)   # app → request id → path
        for item in items:
            r = item["data"]
            by_app[r["app"]][r["request_id"]] = r["path"]
        for app, paths in sorted(by_app.items()):
            for chunk in _chunks(sorted(paths)):
                found = await c.fetch(
                    "SELECT request_id, bot_type, day FROM pending_evidence WHERE app = ? AND "
                    f"request_id IN ({_marks(len(chunk))})", app, *chunk)
                if not found:
                    continue
                by_type: dict[str, list[str]] = defaultdict(list)
                targets: dict[tuple[int, str], int] = defaultdict(int)
                for f in found:
                    by_type[f["bot_type"]].append(f["request_id"])
                    targets[(int(f["day"]), paths[f["request_id"]])] += 1
                for bot_type, ids in sorted(by_type.items()):
                    await c.execute(f"UPDATE requests SET attack = ? WHERE app = ? AND "
                                    f"request_id IN ({_marks(len(ids))})", bot_type, app, *ids)
                await c.executemany(
                    "INSERT INTO daily_targets (day, app, endpoint, hits) VALUES (?,?,?,?) "
                    "ON CONFLICT (day, app, endpoint) DO UPDATE SET "
                    "hits = daily_targets.hits + excluded.hits",
                    [(d, app, p, n) for (d, p), n in sorted(targets.items())])
                ids = sorted({f["request_id"] for f in found})
                await c.execute(f"DELETE FROM pending_evidence WHERE app = ? AND request_id "
                                f"IN ({_marks(len(ids))})", app, *ids)

    async def _insert_detections(self, c: Conn, node: str, items: list[dict[str, Any]]
                                 ) -> dict[str, int]:
        """Insert new detections → {event id: attack id}; a repeated event id is skipped."""
        out: dict[str, int] = {}
        # One lock order for the aggregate rows across concurrent batches (no deadlocks).
        for item in sorted(items, key=lambda i: (day_of(i["data"]["ts"]), i["data"]["app"],
                                                 i["data"]["bot_type"])):
            d = item["data"]
            names = sorted({x["name"] for x in d["detectors"]})
            detail = {"detectors": d["detectors"], "evidence": d["evidence"],
                      "features": d["features"]}
            got = await c.fetch(
                "INSERT INTO attacks (event_id, node, ts, ip, ips, session, app, bot_type, "
                "confidence, profile, reaction, duration, ttd_requests, ttd_seconds, detectors, "
                f"detail) VALUES ({_marks(16)}) ON CONFLICT (event_id) DO NOTHING RETURNING id",
                item["id"], node, float(d["ts"]), d["ip"], _dumps(d["ips"]), d["session"],
                d["app"], d["bot_type"], float(d["confidence"]), d["profile"], d["reaction"],
                None if d["duration"] is None else float(d["duration"]), d["ttd_requests"],
                None if d["ttd_seconds"] is None else float(d["ttd_seconds"]), _dumps(names),
                _dumps(detail))
            if not got:
                continue
            out[item["id"]] = got[0]["id"]
            day = day_of(d["ts"])
            await c.execute(
                "INSERT INTO daily_attacks (day, app, bot_type, detections) VALUES (?,?,?,1) "
                "ON CONFLICT (day, app, bot_type) DO UPDATE SET "
                "detections = daily_attacks.detections + 1", day, d["app"], d["bot_type"])
            # Which detectors fire together: (a, "") counts a, (a, b) counts a with b.
            pairs = [(day, a, b) for a in names for b in ("", *names) if a != b]
            await c.executemany(
                "INSERT INTO daily_detectors (day, detector, other, fired) VALUES (?,?,?,1) "
                "ON CONFLICT (day, detector, other) DO UPDATE SET "
                "fired = daily_detectors.fired + 1", pairs)
            evidence = [str(e) for e in d["evidence"]]
            targets: dict[str, int] = defaultdict(int)
            late = []
            for chunk in _chunks(evidence):
                await c.execute(f"UPDATE requests SET attack = ? WHERE app = ? AND request_id "
                                f"IN ({_marks(len(chunk))})", d["bot_type"], d["app"], *chunk)
                # Counted here, not with GROUP BY: SQLite would walk the (app, path) index
                # in order, i.e. every request of the application, to avoid a sort.
                seen = set()
                for r in await c.fetch(
                        "SELECT request_id, path FROM requests WHERE app = ? AND request_id "
                        f"IN ({_marks(len(chunk))})", d["app"], *chunk):
                    targets[r["path"]] += 1
                    seen.add(r["request_id"])
                if d.get("evidence_pushed", True):   # else those requests never come
                    late += sorted(set(chunk) - seen)
            await c.executemany(
                "INSERT INTO pending_evidence (app, request_id, bot_type, day, ts) "
                "VALUES (?,?,?,?,?)", [(d["app"], e, d["bot_type"], day, float(d["ts"]))
                                       for e in late])
            await c.executemany(
                "INSERT INTO daily_targets (day, app, endpoint, hits) VALUES (?,?,?,?) "
                "ON CONFLICT (day, app, endpoint) DO UPDATE SET "
                "hits = daily_targets.hits + excluded.hits",
                [(day, d["app"], p, n) for p, n in sorted(targets.items())])
            if d["session"]:
                await c.execute("UPDATE sessions SET attack_type = ? WHERE app = ? AND "
                                "session_id = ? AND attack_type IS NULL",
                                d["bot_type"], d["app"], d["session"])
        return out

    async def _upsert_sessions(self, c: Conn, node: str, items: list[dict[str, Any]]) -> int:
        if not items:
            return 0
        rows = []
        for item in sorted(items, key=lambda i: (i["data"]["app"], i["data"]["session"])):
            s = item["data"]
            rows.append((s["app"], s["session"], s["ip"], node, float(s["first_ts"]),
                         float(s["last_ts"]), int(s["requests"]), _dumps(s["statuses"]),
                         int(s["req_bytes"]), int(s["resp_bytes"]), s["app"], s["session"]))
        # Summaries are cumulative: the one with more requests wins, so a late retry of an
        # older summary never rolls a session back.
        await c.executemany(
            "INSERT INTO sessions (app, session_id, ip, node, first_ts, last_ts, requests, "
            "statuses, req_bytes, resp_bytes, attack_type) VALUES (?,?,?,?,?,?,?,?,?,?,"
            "(SELECT bot_type FROM attacks WHERE app = ? AND session = ? "
            "AND false_positive = 0 ORDER BY ts LIMIT 1)) "
            "ON CONFLICT (app, session_id) DO UPDATE SET "
            "first_ts = CASE WHEN excluded.first_ts < sessions.first_ts "
            "THEN excluded.first_ts ELSE sessions.first_ts END, "
            "last_ts = CASE WHEN excluded.last_ts > sessions.last_ts "
            "THEN excluded.last_ts ELSE sessions.last_ts END, "
            "ip = CASE WHEN excluded.requests >= sessions.requests "
            "THEN excluded.ip ELSE sessions.ip END, "
            "node = excluded.node, "
            "statuses = CASE WHEN excluded.requests >= sessions.requests "
            "THEN excluded.statuses ELSE sessions.statuses END, "
            "req_bytes = CASE WHEN excluded.requests >= sessions.requests "
            "THEN excluded.req_bytes ELSE sessions.req_bytes END, "
            "resp_bytes = CASE WHEN excluded.requests >= sessions.requests "
            "THEN excluded.resp_bytes ELSE sessions.resp_bytes END, "
            "requests = CASE WHEN excluded.requests >= sessions.requests "
            "THEN excluded.requests ELSE sessions.requests END, "
            "attack_type = COALESCE(sessions.attack_type, excluded.attack_type)", rows)
        return len(rows)

    # -- IP lists -------------------------------------------------------------------------------
    async def _apply_list_change(self, c: Conn, ch: dict[str, Any], now: float,
                                 origin: str | None) -> dict[str, Any] | None:
        """Apply one add/remove and record it in the history under a new version. Returns the
        history row, or None when nothing changed (a repeated event, removing an absent
        entry)."""
        await self._lock_lists(c)
        lst, cidr = ch["list"], ch["cidr"]
        if ch["op"] == "remove":
            gone = await c.fetch(f"DELETE FROM ip_list_entries WHERE list = ? AND cidr = ? "
                                 f"RETURNING {_LIST_COLS}", lst, cidr)
            if not gone:
                return None
            old = gone[0]
            rows = await c.fetch(
                "INSERT INTO ip_list_history (event_id, op, list, cidr, reason, source, "
                "created, expires, who, ts, origin, attack_id) "
                f"VALUES (?,'remove',?,?,?,?,?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING "
                f"RETURNING {_HIST_COLS}",
                ch.get("event_id"), lst, cidr, ch.get("reason") or old["reason"],
                old["source"], old["created"], old["expires"], ch.get("who") or "unknown",
                float(now), origin, old["attack_id"])
            return rows[0] if rows else None
        rows = await c.fetch(
            "INSERT INTO ip_list_history (event_id, op, list, cidr, reason, source, created, "
            "expires, who, ts, origin, attack_id) VALUES (?,'add',?,?,?,?,?,?,?,?,?,?) "
            f"ON CONFLICT (event_id) DO NOTHING RETURNING {_HIST_COLS}",
            ch.get("event_id"), lst, cidr, ch["reason"], ch["source"], float(ch["created"]),
            None if ch.get("expires") is None else float(ch["expires"]), ch["who"], float(now),
            origin, ch.get("attack_id"))
        if not rows:
            return None
        h = rows[0]
        await c.execute(
            f"INSERT INTO ip_list_entries ({_LIST_COLS}) VALUES ({_marks(9)}) "
            "ON CONFLICT (list, cidr) DO UPDATE SET reason = excluded.reason, "
            "source = excluded.source, created = excluded.created, expires = excluded.expires, "
            "who = excluded.who, attack_id = excluded.attack_id, version = excluded.version",
            lst, cidr, h["reason"], h["source"], h["created"], h["expires"], h["who"],
            h["attack_id"], h["version"])
        await c.execute(
            "INSERT INTO daily_lists (day, list, added) VALUES (?,?,1) ON CONFLICT (day, list) "
            "DO UPDATE SET added = daily_lists.added + 1", day_of(h["created"]), lst)
        return h

    async def add_list_entry(self, entry: dict[str, Any], now: float) -> dict[str, Any]:
        async with self._write() as c:
            h = await self._apply_list_change(c, {"op": "add", **entry}, now, origin=None)
        assert h is not None  # no event id: an add always records a change
        return h

    async def remove_list_entry(self, list_name: str, cidr: str, who: str, reason: str,
                                now: float) -> dict[str, Any] | None:
        async with self._write() as c:
            return await self._apply_list_change(
                c, {"op": "remove", "list": list_name, "cidr": cidr, "who": who,
                    "reason": reason}, now, origin=None)

    async def list_entries(self, list_name: str, *, q: str | None, limit: int, offset: int,
                           now: float) -> Page:
        w = _Where()
        w.add("list = ?", list_name)
        w.add("(expires IS NULL OR expires > ?)", float(now))
        if q:
            w.add("cidr LIKE ?", f"%{q}%")
        async with self._read() as c:
            rows = await c.fetch(f"SELECT {_LIST_COLS} FROM ip_list_entries{w.sql()} "
                                 "ORDER BY created DESC, cidr LIMIT ? OFFSET ?",
                                 *w.args, limit + 1, offset)
        return _page(rows, limit, offset)

    async def list_history(self, *, list_name: str | None, cidr: str | None,
                           since: float | None, until: float | None, limit: int,
                           offset: int) -> Page:
        w = _Where()
        if list_name:
            w.add("list = ?", list_name)
        if cidr:
            w.add("cidr = ?", cidr)
        if since is not None:
            w.add("ts >= ?", float(since))
        if until is not None:
            w.add("ts < ?", float(until))
        async with self._read() as c:
            rows = await c.fetch(f"SELECT {_HIST_COLS} FROM ip_list_history{w.sql()} "
                                 "ORDER BY version DESC LIMIT ? OFFSET ?",
                                 *w.args, limit + 1, offset)
        return _page(rows, limit, offset)

    # -- sync: pull -----------------------------------------------------------------------------
    @staticmethod
    async def _max_version(c: Conn) -> int:
        return int(await c.fetchval("SELECT MAX(version) FROM ip_list_history") or 0)

    async def list_version(self) -> int:
        async with self._read() as c:
            return await self._max_version(c)

    async def list_changes(self, since: int, limit: int) -> tuple[list[dict[str, Any]], int,
                                                                   bool]:
        async with self._read() as c:
            current = await self._max_version(c)
            pruned = int(await c.fetchval(
                "SELECT value FROM meta WHERE key = 'history_pruned_below'") or 0)
            if (since <= 0 < current) or since > current or since < pruned:
                # Entries changed after `current` come back as changes on the next pull.
                rows = await c.fetch(f"SELECT {_LIST_COLS} FROM ip_list_entries "
                                     "WHERE version <= ? ORDER BY version", current)
                snap = [{"op": "clear", "version": current}]
                snap += [{"op": "add", "origin": None, **r} for r in rows]
                return snap, current, True
            rows = await c.fetch(f"SELECT {_HIST_COLS} FROM ip_list_history WHERE version > ? "
                                 "ORDER BY version LIMIT ?", since, limit)
        return rows, (rows[-1]["version"] if rows else since), False

    # -- attacks --------------------------------------------------------------------------------
    async def query_attacks(self, *, bot_type: str | None, ip: str | None, app: str | None,
                            since: float | None, until: float | None, limit: int,
                            offset: int, detector: str | None = None) -> Page:
        w = _Where()
        if bot_type:
            w.add("bot_type = ?", bot_type)
        if detector:
            # `detectors` is a JSON list of names; a quoted name matches one element exactly.
            w.add("detectors LIKE ? ESCAPE '\\'", f'%"{_like_escape(detector)}"%')
        if ip:
            # A distributed attacker lists every address in `ips` (JSON of validated IPs).
            w.add("(ip = ? OR ips LIKE ?)", ip, f'%"{ip}"%')
        if app:
            w.add("app = ?", app)
        if since is not None:
            w.add("ts >= ?", float(since))
        if until is not None:
            w.add("ts < ?", float(until))
        async with self._read() as c:
            rows = await c.fetch(f"SELECT {_ATTACK_COLS}, "
                                 "CASE WHEN detail IS NULL THEN 0 ELSE 1 END AS has_detail "
                                 f"FROM attacks{w.sql()} ORDER BY ts DESC, id DESC "
                                 "LIMIT ? OFFSET ?", *w.args, limit + 1, offset)
        return _page([_attack(r) for r in rows], limit, offset)

    async def get_attack(self, attack_id: int) -> dict[str, Any] | None:
        async with self._read() as c:
            rows = await c.fetch(f"SELECT {_ATTACK_COLS}, detail FROM attacks WHERE id = ?",
                                 attack_id)
        if not rows:
            return None
        r = _attack(rows[0])
        r["detail"] = json.loads(r["detail"]) if r["detail"] else None
        return r

    async def heatmap_peers(self, app: str | None, since: float, exclude_id: int,
                            limit: int) -> list[dict[str, Any]]:
        async with self._read() as c:
            rows = await c.fetch(
                "SELECT id, ip, bot_type, confidence, detail FROM attacks WHERE app = ? "
                "AND ts >= ? AND id <> ? AND detail IS NOT NULL AND false_positive = 0 "
                "ORDER BY confidence DESC, ts DESC LIMIT ?",
                app, float(since), exclude_id, limit * 10)
        out, seen = [], set()
        for r in rows:  # one row per bot: its most confident detection
            if r["ip"] in seen:
                continue
            seen.add(r["ip"])
            r["features"] = json.loads(r.pop("detail")).get("features") or {}
            out.append(r)
            if len(out) >= limit:
                break
        return out

    async def mark_false_positive(self, attack_id: int, *, who: str, add_exception: bool,
                                  reason: str, now: float) -> dict[str, Any] | None:
        async with self._write() as c:
            rows = await c.fetch("SELECT id, ts, ip, app, bot_type, reaction, false_positive "
                                 "FROM attacks WHERE id = ?", attack_id)
            if not rows:
                return None
            a = rows[0]
            if not a["false_positive"]:
                await c.execute("UPDATE attacks SET false_positive = 1, fp_ts = ?, fp_who = ? "
                                "WHERE id = ?", float(now), who, attack_id)
                await c.execute("UPDATE daily_attacks SET detections = detections - 1 WHERE "
                                "day = ? AND app = ? AND bot_type = ? AND detections > 0",
                                day_of(a["ts"]), a["app"], a["bot_type"])
                # the session's type falls back to its next detection, if it has one
                await c.execute("UPDATE sessions SET attack_type = (SELECT o.bot_type FROM "
                                "attacks o WHERE o.app = sessions.app AND o.session = "
                                "sessions.session_id AND o.false_positive = 0 ORDER BY o.ts "
                                "LIMIT 1) WHERE attack_type = ? AND app = ? AND session_id IN "
                                "(SELECT session FROM attacks WHERE id = ?)",
                                a["bot_type"], a["app"], attack_id)
            # The entry it caused: linked by the node, or an automatic entry for its IP.
            w = _Where()
            cond = "attack_id = ?"
            args: list[Any] = [attack_id]
            auto_list = REACTION_LIST.get(a["reaction"])
            if auto_list:
                cond += " OR (list = ? AND cidr = ? AND source <> 'manual')"
                args += [auto_list, a["ip"]]
            w.add(f"({cond})", *args)
            w.add("list IN ('deny', 'gray')")
            entries = await c.fetch(f"SELECT list, cidr FROM ip_list_entries{w.sql()}", *w.args)
            removed = []
            for e in entries:
                h = await self._apply_list_change(
                    c, {"op": "remove", "list": e["list"], "cidr": e["cidr"], "who": who,
                        "reason": f"false positive: {reason}" if reason else "false positive"},
                    now, origin=None)
                if h:
                    removed.append(h)
            exception = None
            if add_exception:
                exception = await self._apply_list_change(
                    c, {"op": "add", "list": "exception", "cidr": a["ip"],
                        "reason": reason or f"false positive of attack {attack_id}",
                        "source": "false_positive", "created": float(now), "expires": None,
                        "who": who, "attack_id": attack_id}, now, origin=None)
        return {"attack_id": attack_id, "removed": removed, "exception": exception}

    # -- sessions -------------------------------------------------------------------------------
    async def query_sessions(self, *, since: float | None, until: float | None,
                             ip: str | None, app: str | None, request_id: str | None,
                             method: str | None, status: int | None, bot_type: str | None,
                             limit: int, offset: int) -> Page:
        w = _Where()
        if since is not None:
            w.add("s.last_ts >= ?", float(since))
        if until is not None:
            w.add("s.first_ts < ?", float(until))
        if ip:
            w.add("s.ip = ?", ip)
        if app:
            w.add("s.app = ?", app)
        if bot_type:
            # Any bot type detected on the session, not only the first (`attack_type`): the
            # session's attacks of that type, found on attacks_type_ts, few next to sessions.
            w.add("(s.app, s.session_id) IN (SELECT a.app, a.session FROM attacks a WHERE "
                  "a.bot_type = ? AND a.false_positive = 0 AND a.session IS NOT NULL)",
                  bot_type)
        sub = _Where()
        if request_id:
            sub.add("r.request_id = ?", request_id)
        if method:
            sub.add("r.method = ?", method)
        if status is not None:
            sub.add("r.status = ?", status)
        if request_id:
            # A request id names one or a few requests: find them first (by its index), then
            # their sessions, instead of probing every session in the window.
            w.add("(s.app, s.session_id) IN (SELECT r.app, r.session FROM requests r WHERE "
                  f"{' AND '.join(sub.parts)})", *sub.args)
        elif sub.parts:
            # Method / status: probe each session (newest first, until the page is full) on
            # the (app, session, status, method) index.
            w.add("EXISTS (SELECT 1 FROM requests r WHERE r.app = s.app AND "
                  f"r.session = s.session_id AND {' AND '.join(sub.parts)})", *sub.args)
        cols = ", ".join(f"s.{x.strip()}" for x in _SESSION_COLS.split(","))
        async with self._read() as c:
            rows = await c.fetch(f"SELECT {cols} FROM sessions s{w.sql()} "
                                 "ORDER BY s.last_ts DESC, s.id DESC LIMIT ? OFFSET ?",
                                 *w.args, limit + 1, offset)
        return _page([_session(r) for r in rows], limit, offset)

    async def get_session(self, sid: int) -> dict[str, Any] | None:
        async with self._read() as c:
            rows = await c.fetch(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", sid)
            if not rows:
                return None
            s = _session(rows[0])
            key = (s["app"], s["session_id"])
            agg = (await c.fetch(
                "SELECT COUNT(*) AS stored_requests, COUNT(DISTINCT path) AS endpoints, "
                "AVG(duration_ms) AS avg_duration_ms, MAX(duration_ms) AS max_duration_ms, "
                "SUM(req_bytes) AS req_bytes, SUM(resp_bytes) AS resp_bytes, "
                "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors, "
                "SUM(blocked) AS blocked, "
                "SUM(CASE WHEN attack IS NOT NULL THEN 1 ELSE 0 END) AS attack_requests "
                "FROM requests WHERE app = ? AND session = ?", *key))[0]
            methods = await c.fetch("SELECT method, COUNT(*) AS n FROM requests WHERE app = ? "
                                    "AND session = ? GROUP BY method ORDER BY n DESC", *key)
            attacks = await c.fetch("SELECT id, ts, bot_type, confidence, false_positive FROM "
                                    "attacks WHERE app = ? AND session = ? ORDER BY ts", *key)
        duration = s["last_ts"] - s["first_ts"]
        s["stats"] = {
            **{k: (0 if v is None else v) for k, v in agg.items()},
            "duration_seconds": duration,
            "rps": (s["requests"] / duration) if duration > 0 else None,
            "methods": {m["method"]: m["n"] for m in methods},
        }
        for a in attacks:
            a["false_positive"] = bool(a["false_positive"])
        s["attacks"] = attacks
        return s

    async def session_requests(self, sid: int, *, limit: int, offset: int) -> Page:
        async with self._read() as c:
            rows = await c.fetch("SELECT app, session_id FROM sessions WHERE id = ?", sid)
            if not rows:
                return Page([], None)
            reqs = await c.fetch(f"SELECT {_REQUEST_COLS} FROM requests WHERE app = ? AND "
                                 "session = ? ORDER BY ts, id LIMIT ? OFFSET ?",
                                 rows[0]["app"], rows[0]["session_id"], limit + 1, offset)
        for r in reqs:
            r["blocked"] = bool(r["blocked"])
        return _page(reqs, limit, offset)

    async def endpoint_usual(self, app: str, paths: list[str], since: float
                             ) -> dict[str, dict[str, float]]:
        # Requests the node blocked are its own 403s, not what the endpoint usually does.
        out: dict[str, dict[str, float]] = {}
        uniq = sorted(set(paths))
        async with self._read() as c:
            for chunk in _chunks(uniq):
                for r in await c.fetch(
                        "SELECT path, COUNT(*) AS n, AVG(duration_ms) AS avg_duration_ms, "
                        "AVG(resp_bytes) AS avg_resp_bytes, AVG(req_bytes) AS avg_req_bytes "
                        f"FROM requests WHERE app = ? AND ts >= ? AND blocked = 0 AND path IN "
                        f"({_marks(len(chunk))}) GROUP BY path", app, float(since), *chunk):
                    path = r.pop("path")
                    out[path] = {k: (float(v) if v is not None else None) for k, v in r.items()}
        return out

    # -- statistics -----------------------------------------------------------------------------
    async def statistics(self, *, now: float, days: int, app: str | None,
                         min_requests: int = 1000) -> dict[str, Any]:
        last = day_of(now)
        first = last - days + 1
        prev_first = first - days
        app_w = " AND app = ?" if app else ""
        app_a = [app] if app else []
        async with self._read() as c:
            timeline_rows = await c.fetch(
                "SELECT day, bot_type, SUM(detections) AS n FROM daily_attacks WHERE day >= ? "
                f"AND day <= ?{app_w} GROUP BY day, bot_type", first, last, *app_a)
            traffic = (await c.fetch(
                "SELECT SUM(requests) AS requests, SUM(blocked) AS blocked FROM daily_traffic "
                f"WHERE day >= ? AND day <= ?{app_w}", first, last, *app_a))[0]
            attackers = await c.fetch(
                "SELECT ip, bot_type, COUNT(*) AS n, MAX(ts) AS last_ts FROM attacks "
                f"WHERE ts >= ? AND false_positive = 0{app_w} GROUP BY ip, bot_type "
                "ORDER BY n DESC LIMIT 500", first * DAY, *app_a)
            apps = await c.fetch(
                "SELECT app, SUM(detections) AS n FROM daily_attacks WHERE day >= ? AND day <= ?"
                f"{app_w} GROUP BY app ORDER BY n DESC LIMIT 10", first, last, *app_a)
            endpoints = await c.fetch(
                "SELECT app, endpoint, SUM(hits) AS n FROM daily_targets WHERE day >= ? AND "
                f"day <= ?{app_w} GROUP BY app, endpoint ORDER BY n DESC LIMIT 10",
                first, last, *app_a)
            patterns = await c.fetch(
                "SELECT detector, other, SUM(fired) AS n FROM daily_detectors WHERE day >= ? "
                "AND day <= ? GROUP BY detector, other", first, last)
            lists = await c.fetch(
                "SELECT list, SUM(CASE WHEN day >= ? THEN added ELSE 0 END) AS cur, "
                "SUM(CASE WHEN day < ? THEN added ELSE 0 END) AS prev FROM daily_lists "
                "WHERE day >= ? AND day <= ? GROUP BY list", first, first, prev_first, last)
            live = await c.fetch(
                "SELECT list, COUNT(*) AS n FROM ip_list_entries WHERE expires IS NULL OR "
                "expires > ? GROUP BY list", float(now))

        by_day: dict[int, dict[str, int]] = defaultdict(dict)
        for r in timeline_rows:
            by_day[r["day"]][r["bot_type"]] = int(r["n"])
        timeline = [{"day": d, "date": _date(d), "by_type": by_day.get(d, {}),
                     "total": sum(by_day.get(d, {}).values())} for d in range(first, last + 1)]
        detections = sum(t["total"] for t in timeline)

        per_ip: dict[str, dict[str, Any]] = {}
        for r in attackers:
            e = per_ip.setdefault(r["ip"], {"ip": r["ip"], "detections": 0, "bot_types": [],
                                            "last_ts": r["last_ts"]})
            e["detections"] += int(r["n"])
            e["bot_types"].append(r["bot_type"])
            e["last_ts"] = max(e["last_ts"], r["last_ts"])
        top_attackers = sorted(per_ip.values(), key=lambda e: (-e["detections"], e["ip"]))[:10]

        fired: dict[str, int] = {}
        together: dict[str, dict[str, int]] = defaultdict(dict)
        for r in patterns:
            if r["other"] == "":
                fired[r["detector"]] = int(r["n"])
            else:
                together[r["detector"]][r["other"]] = int(r["n"])
        pattern_list = [
            {"detector": d, "fired": n,
             "with": dict(sorted(together[d].items(), key=lambda kv: -kv[1])[:5])}
            for d, n in sorted(fired.items(), key=lambda kv: -kv[1])]

        added = {r["list"]: r for r in lists}
        live_n = {r["list"]: int(r["n"]) for r in live}

        def _listed(name: str) -> dict[str, Any]:
            cur = int((added.get(name) or {}).get("cur") or 0)
            prev = int((added.get(name) or {}).get("prev") or 0)
            return {"added": cur, "previous": prev, "active": live_n.get(name, 0),
                    "change_pct": round((cur - prev) * 100.0 / prev, 1) if prev else None}

        requests = int(traffic["requests"] or 0)
        if detections:
            state = "bot_activity"
        elif requests < min_requests:
            state = "insufficient_data"
        else:
            state = "legitimate_traffic"
        return {
            "state": state, "days": days, "from_day": _date(first), "to_day": _date(last),
            "requests": requests, "blocked": int(traffic["blocked"] or 0),
            "detections": detections, "timeline": timeline, "top_attackers": top_attackers,
            "top_targets": {"apps": [{"app": r["app"], "detections": int(r["n"])} for r in apps],
                            "endpoints": [{"app": r["app"], "endpoint": r["endpoint"],
                                           "hits": int(r["n"])} for r in endpoints]},
            "patterns": pattern_list,
            "denylisted": _listed("deny"), "graylisted": _listed("gray"),
        }

    async def app_traffic(self, *, now: float, days: int) -> dict[str, dict[str, int]]:
        """Requests per application: {app: {"day": today's, "week": last 7 days', "period":
        last `days` days'}}, from the daily aggregates."""
        last = day_of(now)
        async with self._read() as c:
            rows = await c.fetch(
                "SELECT app, SUM(CASE WHEN day >= ? THEN requests ELSE 0 END) AS day, "
                "SUM(CASE WHEN day >= ? THEN requests ELSE 0 END) AS week, "
                "SUM(requests) AS period FROM daily_traffic WHERE day >= ? AND day <= ? "
                "GROUP BY app ORDER BY app", last, last - 6, last - days + 1, last)
        return {r["app"]: {k: int(r[k] or 0) for k in ("day", "week", "period")} for r in rows}

    # -- retention ------------------------------------------------------------------------------
    async def apply_retention(self, now: float, retention: Retention) -> dict[str, int]:
        out: dict[str, int] = {}
        async with self._write() as c:
            cut = float(now - retention.requests)
            out["requests"] = await c.execute("DELETE FROM requests WHERE ts < ?", cut)
            out["sessions"] = await c.execute("DELETE FROM sessions WHERE last_ts < ?", cut)
            out["batches"] = await c.execute("DELETE FROM received_batches WHERE ts < ?",
                                             float(now - retention.batches))
            out["pending_evidence"] = await c.execute(
                "DELETE FROM pending_evidence WHERE ts < ?", cut)
        async with self._write() as c:
            # After this an attack still lists, but its detail says "not enough data".
            out["attack_details"] = await c.execute(
                "UPDATE attacks SET detail = NULL WHERE ts < ? AND detail IS NOT NULL",
                float(now - retention.detail))
            old = float(now - retention.aggregates)
            out["attacks"] = await c.execute("DELETE FROM attacks WHERE ts < ?", old)
            old_day = day_of(old)
            for table in ("daily_attacks", "daily_traffic", "daily_lists", "daily_detectors",
                          "daily_targets"):
                out[table] = await c.execute(f"DELETE FROM {table} WHERE day < ?", old_day)
        async with self._write() as c:
            await self._lock_lists(c)
            current = await self._max_version(c)
            below = await c.fetchval("SELECT MAX(version) FROM ip_list_history WHERE ts < ? "
                                     "AND version < ?", old, current)
            out["list_history"] = 0
            if below is not None:
                # Keep the newest row so versions never restart; older cursors get a snapshot.
                out["list_history"] = await c.execute(
                    "DELETE FROM ip_list_history WHERE version <= ?", below)
                await c.execute("INSERT INTO meta (key, value) VALUES ('history_pruned_below', ?)"
                                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                str(int(below) + 1))
            expired = await c.fetch("SELECT list, cidr FROM ip_list_entries WHERE expires "
                                    "IS NOT NULL AND expires <= ? ORDER BY version", float(now))
            for e in expired:
                await self._apply_list_change(
                    c, {"op": "remove", "list": e["list"], "cidr": e["cidr"], "who": "expiry",
                        "reason": "expired"}, now, origin=None)
            out["expired_entries"] = len(expired)
        return out


def _like_escape(text: str) -> str:
    """A value matched literally by `LIKE ? ESCAPE '\\'` (both dialects)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _page(rows: list[dict[str, Any]], limit: int, offset: int) -> Page:
    more = len(rows) > limit
    return Page(rows[:limit], offset + limit if more else None)


def _attack(r: dict[str, Any]) -> dict[str, Any]:
    r["ips"] = json.loads(r["ips"])
    r["detectors"] = json.loads(r["detectors"])
    r["false_positive"] = bool(r["false_positive"])
    if "has_detail" in r:
        r["has_detail"] = bool(r["has_detail"])
    return r


def _session(r: dict[str, Any]) -> dict[str, Any]:
    r["statuses"] = json.loads(r["statuses"])
    return r


def _date(day: int) -> str:
    import datetime as _dt

    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=day)).isoformat()

