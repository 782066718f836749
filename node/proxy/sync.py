"""The node's side of control-plane sync: what goes up, what comes down.

Up (pushed through `node.sync.SyncClient`: in-memory queues → disk spools → batches, in
three priority classes — detections and list changes first and never shed for the others,
then session summaries, then request records, shed first and counted under pressure):
  * detections — every Decision, with detectors, evidence and heatmap features;
  * list changes made on this node — tailed from the local IP-list history, so reactions
    of the engine and `palisade ip-list` changes by an operator go up the same way; rows
    this module wrote for the control plane are skipped (no echo);
  * session summaries — a bounded in-node aggregate per (application, session), pushed
    while a session is active and once more when it ends or is evicted;
  * request records — every one, unless `push_records: false`.
Down: IP-list changes, applied to the local store with source `control` — the node keeps
enforcing them from SQLite when the control plane is down, and across restarts.

Nothing here makes a proxied request wait: the hooks only append to memory, and every
network call runs on the client's own tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.iplists import LISTS, HistoryEvent, IPLists, canonical_network
from node.proxy.context import FlowMeta, NodeContext
from node.proxy.settings import NodeSettings
from node.record import RequestRecord
from node.sync import SyncClient

log = logging.getLogger("palisade.sync")

SOURCE = "control"         # source of entries learnt from the control plane
MARK = "control:"          # `who` prefix of local history rows written by the applier
SLICE = 32                 # list changes per transaction, between two yields to the loop
                           # (each costs ~100-250 µs, mostly address parsing)
TAIL_LIMIT = 1000          # local history rows forwarded per step
SESSION_PUSH_EVERY = 10.0  # seconds between session-summary pushes
SESSION_CAP = 50_000       # sessions aggregated in memory (least recently seen evicted)
# Retries back off up to 10 s (the client's default is 30): a node's backlog reaches a
# control plane that came back within seconds, and full jitter still spreads the nodes.
CLIENT_DEFAULTS = {"retry_cap": 10.0}
ATTACK_LINKS = 10_000      # remembered (list, network) → detection event id
MAX_EVIDENCE = 1000        # the control plane's limits on one detection
MAX_IPS = 1000
MAX_DETECTORS = 64
MAX_FEATURES = 32
MAX_STATUSES = 64


def default_node_name(port: int) -> str:
    """`<hostname>:<port>`: unique even for several nodes on one host."""
    return f"{socket.gethostname()[:56]}:{port}"


def fingerprint(ip: str, ua: str, ja3: str | None) -> str:
    """The session key of a client that presents no session: the engine's fingerprint
    (node.engine.core._fingerprint), so records, summaries and detections agree."""
    h = hashlib.blake2b(f"{ip}|{ua}|{ja3 or ''}".encode(), digest_size=8).hexdigest()
    return f"fp-{h}"


# -- events ---------------------------------------------------------------------------------------
def record_event(rec: RequestRecord, app: str, session_id: str) -> dict[str, Any]:
    """A request record as the control plane stores it (SPEC §3 plus app and session_id)."""
    d: dict[str, Any] = {
        "ts": rec.ts, "ip": rec.ip, "method": rec.method, "host": rec.host, "path": rec.path,
        "query": rec.query, "status": rec.status, "req_bytes": rec.req_bytes,
        "resp_bytes": rec.resp_bytes, "duration_ms": rec.duration_ms, "ua": rec.ua,
        "session": rec.session, "user": rec.user, "id": rec.id, "app": app,
        "session_id": session_id}
    if rec.referer is not None:
        d["referer"] = rec.referer
    if rec.content_type is not None:
        d["content_type"] = rec.content_type
    if rec.blocked:
        d["blocked"] = True
    return d


def _value(v: Any) -> Any:
    if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
        return v
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return str(v)[:128]


def detection_event(d: Any) -> dict[str, Any]:
    """A Decision → the control plane's detection (within its size limits)."""
    ips = list(d.ips or (d.ip,))[:MAX_IPS]
    return {
        "ts": d.ts, "ip": d.ip, "ips": ips, "session": (d.session or None) and d.session[:256],
        "app": d.app, "bot_type": d.bot_type, "confidence": min(1.0, max(0.0, d.confidence)),
        "profile": d.profile, "reaction": d.reaction, "duration": d.duration,
        "actor": getattr(d, "actor", None),
        "detectors": [{"name": str(n)[:64], "value": _value(v), "normal": _value(m)}
                      for n, v, m in d.detectors[:MAX_DETECTORS]],
        "evidence": [e if isinstance(e, int) else str(e)[:128]
                     for e in list(d.evidence)[-MAX_EVIDENCE:]],
        "ttd_requests": d.ttd_requests, "ttd_seconds": max(0.0, d.ttd_seconds),
        "features": {str(k)[:64]: float(v) for k, v in list(d.features.items())[:MAX_FEATURES]},
    }


# -- session summaries ----------------------------------------------------------------------------
class _Session:
    __slots__ = ("app", "sid", "ip", "first", "last", "n", "statuses", "req_bytes",
                 "resp_bytes")

    def __init__(self, app: str, sid: str, ip: str, ts: float) -> None:
        self.app, self.sid, self.ip = app, sid, ip
        self.first = self.last = ts
        self.n = self.req_bytes = self.resp_bytes = 0
        self.statuses: dict[str, int] = {}

    def summary(self) -> dict[str, Any]:
        return {"session": self.sid, "app": self.app, "ip": self.ip, "first_ts": self.first,
                "last_ts": self.last, "requests": self.n, "statuses": dict(self.statuses),
                "req_bytes": self.req_bytes, "resp_bytes": self.resp_bytes}


class SessionSummaries:
    """Running per-session totals, O(1) per record and bounded.

    Summaries are cumulative (the control plane keeps the one with the most requests), so
    pushing a session again is harmless and a lost push is repaired by the next one. Only
    sessions that changed since the last push go up; an idle session goes up a last time
    and leaves memory, as does the least recently seen one when the cap is reached.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None], *, timeout: float = 1800.0,
                 cap: int = SESSION_CAP) -> None:
        self.emit = emit
        self.timeout = timeout
        self.cap = cap
        self._sessions: OrderedDict[tuple[str, str], _Session] = OrderedDict()
        self._dirty: dict[tuple[str, str], None] = {}
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, app: str, sid: str, rec: RequestRecord) -> None:
        key = (app, sid)
        s = self._sessions.get(key)
        if s is None:
            s = self._sessions[key] = _Session(app, sid, rec.ip, rec.ts)
            if len(self._sessions) > self.cap:
                self._drop(next(iter(self._sessions)))
                self.evicted += 1
        else:
            self._sessions.move_to_end(key)
        s.ip = rec.ip
        s.first = min(s.first, rec.ts)
        s.last = max(s.last, rec.ts)
        s.n += 1
        s.req_bytes += rec.req_bytes
        s.resp_bytes += rec.resp_bytes
        code = str(rec.status)
        st = s.statuses
        if code in st or len(st) < MAX_STATUSES - 1:
            st[code] = st.get(code, 0) + 1
        else:
            st["other"] = st.get("other", 0) + 1
        self._dirty[key] = None

    def _drop(self, key: tuple[str, str]) -> None:
        s = self._sessions.pop(key)
        if key in self._dirty:   # its last requests were not pushed yet
            del self._dirty[key]
            self.emit(s.summary())

    def flush(self, now: float, *, final: bool = False) -> int:
        """Push changed sessions; end those idle past the timeout (all of them if final)."""
        n = len(self._dirty)
        for key in self._dirty:
            self.emit(self._sessions[key].summary())
        self._dirty.clear()
        limit = now - self.timeout
        while self._sessions:
            key, s = next(iter(self._sessions.items()))
            if not final and s.last > limit:
                break   # least recently seen first: the rest are younger
            del self._sessions[key]
        return n


# -- list changes: control plane → local store ----------------------------------------------------
class ListApplier:
    """Applies pulled list changes to the local lists (source `control`).

    A change this node made itself comes back with `origin` = our name and is skipped. A
    snapshot (`clear` first) replaces what was learnt from the control plane: entries it no
    longer holds go, the rest are rewritten only where they differ, so enforcement never has
    a gap while a snapshot is applied. Work is sliced so a large snapshot never holds the
    event loop (and so the proxied requests) for long.
    """

    def __init__(self, iplists: IPLists, node_name: str) -> None:
        self.iplists = iplists
        self.node_name = node_name
        self.applied = 0

    async def apply(self, changes: list[dict[str, Any]]) -> None:
        stale: set[tuple[str, str]] | None = None
        store = self.iplists.store
        if changes and changes[0].get("op") == "clear" and store is not None:
            stale = {(e.list, e.network) for e in store.list_entries(include_expired=True)
                     if e.source == SOURCE}
        for i in range(0, len(changes), SLICE):
            if i:
                await asyncio.sleep(0)
            with self._batch():
                for ch in changes[i:i + SLICE]:
                    self._one(ch, stale)
        gone = sorted(stale or ())
        for i in range(0, len(gone), SLICE):
            if i:
                await asyncio.sleep(0)
            with self._batch():
                for lst, net in gone[i:i + SLICE]:
                    self.iplists.remove(lst, net, who=MARK + "snapshot")
                    self.applied += 1

    def _batch(self) -> contextlib.AbstractContextManager[None]:
        store = self.iplists.store
        return store.batch() if store is not None else contextlib.nullcontext()

    def _one(self, ch: dict[str, Any], stale: set[tuple[str, str]] | None) -> None:
        op, lst = ch.get("op"), ch.get("list")
        if op not in ("add", "remove") or lst not in LISTS:
            return
        try:
            net = canonical_network(str(ch.get("cidr")))
        except ValueError:
            log.warning("control plane sent an unusable network %r", ch.get("cidr"))
            return
        if stale is not None:
            stale.discard((lst, net))
        if ch.get("origin") == self.node_name:
            return  # our own change, back from the control plane
        try:
            if op == "add":
                self._add(lst, net, ch)
            else:
                self._remove(lst, net, ch)
        except ValueError as e:
            log.warning("cannot apply %s %s %s from the control plane: %s", op, lst, net, e)

    def _add(self, lst: str, net: str, ch: dict[str, Any]) -> None:
        expires = ch.get("expires")
        now = self.iplists.clock()
        if expires is not None and float(expires) <= now:
            return   # over already
        cur = self.iplists.entry(lst, net)
        if cur is not None:
            if _same(cur.expires, expires):
                return
            # Another node's reaction does not shorten a longer local one; an operator's
            # change (no origin) is applied as given.
            if ch.get("origin") and (cur.expires is None or
                                     (expires is not None and cur.expires >= expires)):
                return
        self.iplists.add(lst, net, reason=str(ch.get("reason") or "")[:256],
                         duration=None if expires is None else float(expires) - now,
                         who=MARK + str(ch.get("who") or ch.get("origin") or "console")[:100],
                         source=SOURCE)
        self.applied += 1

    def _remove(self, lst: str, net: str, ch: dict[str, Any]) -> None:
        store = self.iplists.store
        cur = store.get(lst, net) if store is not None else self.iplists.entry(lst, net)
        if cur is None:
            return
        created = ch.get("created")
        if cur.source != SOURCE and created is not None and cur.created > float(created) + 1:
            return   # re-added here after the entry the control plane removed
        self.iplists.remove(lst, net, who=MARK + str(ch.get("who") or "console")[:100])
        self.applied += 1


def _same(a: float | None, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - float(b)) < 1.0


# -- list changes: local store → control plane ----------------------------------------------------
class ListTail:
    """Forwards list changes made on this node (engine reactions, `palisade ip-list`) by
    reading the local history after a cursor.

    Event ids are `lc-<spool instance>-<history id>`: a row sent twice (the cursor is saved
    only once its events are spooled, so a crash may resend a few) is stored once, since
    the control plane ignores a list change whose event id it has seen.
    """

    def __init__(self, iplists: IPLists, client: SyncClient, spool_dir: Path) -> None:
        self.iplists = iplists
        self.client = client
        self.path = spool_dir / "lists_cursor"
        self.cursor = 0
        self.saved = -1
        self.instance = ""
        self.attack_of: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.sent = 0

    def open(self) -> None:
        store = self.iplists.store
        assert store is not None
        inst = self.path.with_name("instance")
        if not inst.exists():
            inst.write_text(secrets.token_hex(6), "utf-8")
        self.instance = inst.read_text("utf-8").strip()[:20]
        try:
            self.cursor = self.saved = int(self.path.read_text("utf-8").strip())
            self.iplists.history_hold = self.saved
        except (FileNotFoundError, ValueError):
            # First run with a control plane: send what is in force now, not all history.
            self.cursor = store.last_history_id()
            self.iplists.history_hold = self.cursor     # older rows are never forwarded
            for e in store.list_entries():
                if e.source != SOURCE and e.source != "config":
                    eid = hashlib.blake2b(f"{self.instance}|{e.list}|{e.network}|{e.created}"
                                          .encode(), digest_size=10).hexdigest()
                    self._send(f"lc-{self.instance}-i{eid}", {
                        "op": "add", "list": e.list, "cidr": e.network, "reason": e.reason,
                        "source": e.source, "created": e.created, "expires": e.expires,
                        "who": e.who or "node"})

    def link(self, list_name: str, network: str, event_id: str) -> None:
        """Remember which detection caused an entry, for the list change that follows."""
        key = (list_name, network)
        self.attack_of[key] = event_id
        self.attack_of.move_to_end(key)
        if len(self.attack_of) > ATTACK_LINKS:
            self.attack_of.popitem(last=False)

    def step(self) -> int:
        """Forward the changes after the cursor; returns how many rows were read."""
        store = self.iplists.store
        if store is None:
            return 0
        rows = store.history_after(self.cursor, TAIL_LIMIT)
        for h in rows:
            self._forward(h)
        if rows:
            self.cursor = rows[-1].id
        return len(rows)

    def _forward(self, h: HistoryEvent) -> None:
        if h.action not in ("add", "remove") or h.who.startswith(MARK):
            return   # expiry happens on the control plane too; MARK rows came from it
        data: dict[str, Any] = {"op": h.action, "list": h.list, "cidr": h.network,
                                "reason": h.reason, "source": h.source, "who": h.who or "node"}
        if h.action == "add":
            if h.expires is not None and h.expires <= self.iplists.clock():
                return
            data.update(created=h.ts, expires=h.expires)
            attack = self.attack_of.pop((h.list, h.network), None)
            if attack is not None:
                data["attack"] = attack
        self._send(f"lc-{self.instance}-{h.id}", data)

    def _send(self, event_id: str, data: dict[str, Any]) -> None:
        self.client.enqueue("list_change", data, event_id=event_id, urgent=True)
        self.sent += 1

    def save(self, cursor: int) -> None:
        """Persist a cursor whose events are already spooled."""
        if cursor != self.saved:
            tmp = self.path.with_name("lists_cursor.tmp")
            tmp.write_text(str(cursor), "utf-8")
            os.replace(tmp, self.path)
            self.saved = cursor
            self.iplists.history_hold = cursor    # pruning keeps what is not yet spooled


# -- the whole ------------------------------------------------------------------------------------
class NodeSync:
    """Wires a running node to its control plane; see the module docstring."""

    def __init__(self, node: NodeContext, settings: NodeSettings, *, registry: Any = None,
                 **client_options: Any) -> None:
        assert settings.control_url and settings.control_token
        self.node = node
        self.settings = settings
        self.registry = registry
        self.client_options = {**CLIENT_DEFAULTS, **client_options}
        self.spool_dir = Path(settings.state_dir) / "spool"
        self.client: SyncClient | None = None
        self.applier: ListApplier | None = None
        self.tail: ListTail | None = None
        self.sessions = SessionSummaries(self._emit_session,
                                         timeout=node.engine_config.limits.session_timeout)
        self._task: asyncio.Task[None] | None = None
        self._tail_soon: asyncio.Handle | None = None

    @property
    def node_name(self) -> str:
        return self.client.node_name if self.client is not None else ""

    async def start(self, listen_port: int) -> None:
        s = self.settings
        name = s.node_name or default_node_name(listen_port)
        self.applier = ListApplier(self.node.iplists, name)
        self.client = SyncClient(s.control_url or "", s.control_token or "", self.spool_dir,
                                 on_list_change=self.applier.apply, node_name=name,
                                 registry=self.registry, **self.client_options)
        await self.client.start()
        self.tail = ListTail(self.node.iplists, self.client, self.spool_dir)
        self.tail.open()
        self.tail.step()
        await self.client.flush()
        self._save(self.tail.cursor)   # a crash from here on resumes, never starts over
        self.node.iplists.on_change.append(self._lists_changed)
        self.node.decision_sinks.append(self._decision)
        self.node.record_sinks.append(self._record)
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="node-sync")
        log.info("syncing with the control plane at %s as %s", s.control_url, name)

    async def stop(self) -> None:
        """Spool what is left (sessions too), give delivery a moment, save the cursor."""
        if self.client is None:
            return
        for hooks, fn in ((self.node.iplists.on_change, self._lists_changed),
                          (self.node.decision_sinks, self._decision),
                          (self.node.record_sinks, self._record)):
            with contextlib.suppress(ValueError):
                hooks.remove(fn)  # type: ignore[arg-type]
        if self._tail_soon is not None:
            self._tail_soon.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        cursor = None
        try:
            if self.tail is not None:
                self.tail.step()
                cursor = self.tail.cursor
            self.sessions.flush(self.node.clock(), final=True)
        except Exception:
            log.exception("sync: final flush failed")
        await self.client.stop()
        self._save(cursor)
        self.client = None

    def stats(self) -> dict[str, Any]:
        out = self.client.stats() if self.client is not None else {}
        out["sessions"] = len(self.sessions)
        return out

    # -- hooks (request path: memory only) ----------------------------------------------------
    def _record(self, rec: RequestRecord, meta: FlowMeta) -> None:
        try:
            app = meta.app.name if meta.app is not None else (rec.host or "-")
            sid = rec.session or fingerprint(rec.ip, rec.ua, rec.ja3)
            self.sessions.add(app, sid, rec)
            if self.settings.push_records and self.client is not None:
                self.client.enqueue("record", record_event(rec, app, sid))
        except Exception:  # sync must never break the flow
            log.exception("sync: cannot queue a record")

    def _decision(self, d: Any) -> None:
        if self.client is None or self.tail is None:
            return
        try:
            event = detection_event(d)
            if not self.settings.push_records:
                event["evidence_pushed"] = False
            event_id = self.client.enqueue("detection", event, urgent=True)
            lst = {"denylist": "deny", "graylist": "gray"}.get(d.reaction)
            if lst:
                for target in d.ips or (d.ip,):
                    with contextlib.suppress(ValueError):
                        self.tail.link(lst, canonical_network(target), event_id)
            self._lists_changed()   # the entries just added go up right behind it
        except Exception:
            log.exception("sync: cannot queue a detection")

    def _lists_changed(self) -> None:
        # Called inside IPLists changes, often from a hook: read the history a moment later,
        # once, however many changes came together.
        if self._tail_soon is None and self.tail is not None:
            self._tail_soon = asyncio.get_running_loop().call_soon(self._step_tail)

    def _step_tail(self) -> None:
        self._tail_soon = None
        try:
            while self.tail is not None and self.tail.step() >= TAIL_LIMIT:
                pass
        except Exception:
            log.exception("sync: cannot read the IP-list history")

    def _emit_session(self, summary: dict[str, Any]) -> None:
        if self.client is not None:
            self.client.enqueue("session", summary)

    # -- background ---------------------------------------------------------------------------
    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_sessions = loop.time()
        while True:
            await asyncio.sleep(1.0)
            try:
                self._step_tail()
                if loop.time() - last_sessions >= SESSION_PUSH_EVERY:
                    last_sessions = loop.time()
                    self.sessions.flush(self.node.clock())
                assert self.tail is not None and self.client is not None
                cursor = self.tail.cursor
                await self.client.flush()   # events up to `cursor` are on disk now
                self._save(cursor)
            except asyncio.CancelledError:
                raise
            except Exception:   # keep syncing; the next round retries
                log.exception("sync: periodic work failed")

    def _save(self, cursor: int | None) -> None:
        if self.tail is not None and cursor is not None:
            try:
                self.tail.save(cursor)
            except OSError as e:
                log.warning("sync: cannot save the list cursor: %s", e)
