"""The node's side of sync: push events to the control plane, pull IP-list changes from it.

    client = SyncClient("http://control:8790", token, "state/sync",
                        on_list_change=lists.apply_changes)
    await client.start()
    client.enqueue("record", record)          # from the request path: never blocks
    ...
    await client.stop()

`enqueue` only appends to an in-memory queue. Events travel in three priority classes
(`LANES`), each with its own queue and disk spool, so a flood of one never pushes out another:

  critical  detections and list changes: fsync'ed per batch on an I/O thread, sent first,
            never shed to make room for anything else;
  sessions  session summaries (cumulative: a lost one is repaired by the next);
  records   request records: sent last and shed first — the oldest spooled records go when
            the records spool is full, the oldest queued ones when its queue is. Every shed
            record is counted (`palisade_sync_records_shed_total`, `stats()`, the push head).

A flusher task moves the queues to the spools in batches: the critical class on the I/O
thread (one fsync per batch), the others encoded with orjson and appended on the event loop
(a 500-record batch is ~0.5 ms; a thread hop per batch cost the proxy more in GIL hand-offs
than the work itself) and fsync'ed every `fsync_interval` on another thread. A sender task
delivers spooled batches, critical first, and drops them from their spool once acknowledged;
a puller task long-polls the IP-list changes and hands them to `on_list_change`. Every
network call has a timeout, so a control plane that is down or hung (SIGSTOP) only delays
delivery: retries back off with jitter, and batch ids make a retried batch count once.

on_list_change receives a list of changes, each {"op": "add"|"remove"|"clear", "list",
"cidr", "reason", "source", "created", "expires", "who", "version", "origin", "attack_id"};
"clear" (first of a snapshot) means: drop every entry learnt from the control plane, the adds
that follow are the whole state. It runs on the event loop and must be quick; it may return
an awaitable (to apply a large snapshot in slices), which is awaited before the pull cursor
moves past those changes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import itertools
import json
import logging
import os
import random
import secrets
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from node import __version__
from node.sync.spool import Spool

log = logging.getLogger("palisade.sync")

KINDS = ("record", "detection", "list_change", "session")
LANES = ("critical", "sessions", "records")      # priority order: sent first to last
LANE_OF = {"detection": "critical", "list_change": "critical", "session": "sessions",
           "record": "records"}
MiB = 1024 * 1024


class Backoff:
    """Exponential backoff with full jitter: many nodes retrying after an outage spread out
    instead of arriving together."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next(self) -> float:
        delay = random.uniform(self.base / 2, min(self.cap, self.base * 2 ** self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return delay

    def reset(self) -> None:
        self.attempt = 0


def _default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars from the engine
        return o.item()
    if isinstance(o, set | frozenset):
        return list(o)
    return str(o)


_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def encode_batch(batch: dict[str, Any]) -> bytes:
    """Strict JSON (non-finite floats become null: the control plane refuses NaN)."""
    return orjson.dumps(batch, default=_default, option=_OPTS)


_ITEMS = b',"items":'


def push_body(head: dict[str, Any], line: bytes) -> bytes:
    """The push body: `head` plus the spooled batch's items, spliced in as raw JSON.

    A spooled line is `{"batch_id":..,"created":..,"items":[..]}` (encode_batch, items last),
    so after an outage a backlog goes out without decoding and re-encoding every batch on
    the event loop. The first `,"items":` is the top-level key: batch_id and created come
    before it, and a quote inside a JSON string is always escaped. Anything else falls back
    to decoding."""
    at = line.find(_ITEMS)
    if line.startswith(b'{"batch_id":') and at > 0 and line.endswith(b"]}"):
        return encode_batch(head)[:-1] + line[at:]
    return encode_batch({**head, "items": orjson.loads(line)["items"]})


def batch_created(line: bytes) -> float | None:
    """The `created` time of a spooled batch, read without decoding its items."""
    at = line.find(b'"created":')
    if at < 0:
        return None
    end = line.find(b",", at)
    try:
        return float(line[at + 10:end])
    except ValueError:
        return None


class _Lane:
    """One priority class: its in-memory queue and its spool."""

    __slots__ = ("name", "queue", "spool", "on_thread")

    def __init__(self, name: str, spool: Spool, on_thread: bool) -> None:
        self.name = name
        self.queue: deque[dict[str, Any]] = deque()
        self.spool = spool
        self.on_thread = on_thread   # spool calls on the I/O thread (durable), else the loop


class SyncClient:
    def __init__(self, base_url: str, token: str, spool_dir: str | Path, *,
                 on_list_change: Callable[[list[dict[str, Any]]], Awaitable[None] | None],
                 node_name: str | None = None,
                 batch_size: int = 500, flush_interval: float = 0.5,
                 max_queue: int = 20_000, spool_max_bytes: int = 128 * MiB,
                 critical_max_bytes: int = 64 * MiB, sessions_max_bytes: int = 32 * MiB,
                 fsync_interval: float = 2.0,
                 push_timeout: float = 10.0, connect_timeout: float = 3.0,
                 pull_wait: float = 25.0, retry_base: float = 0.5, retry_cap: float = 30.0,
                 registry: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_name = node_name or socket.gethostname()
        self._headers = {"Authorization": f"Bearer {token}"}
        self._on_list_change = on_list_change
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.fsync_interval = fsync_interval
        self.max_queue = max_queue
        self.push_timeout = push_timeout
        self.connect_timeout = connect_timeout
        self.pull_wait = pull_wait
        self.retry = (retry_base, retry_cap)
        root = Path(spool_dir)
        # The critical spool keeps the spool directory's root (and reads a spool written by
        # an earlier version there); the others live beside it, each bounded on its own.
        self.lanes = {
            "critical": _Lane("critical", Spool(root, max_bytes=critical_max_bytes), True),
            "sessions": _Lane("sessions", Spool(root / "sessions", max_bytes=sessions_max_bytes,
                                                durable=False), False),
            "records": _Lane("records", Spool(root / "records", max_bytes=spool_max_bytes,
                                              durable=False), False)}
        self.spools = {name: lane.spool for name, lane in self.lanes.items()}
        # event ids: a random per-run prefix and a counter (uuid4() costs ~10 µs a record)
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="palisade-spool")
        self._fsync_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="palisade-fsync")
        self._fsyncing: concurrent.futures.Future[None] | None = None
        self._last_fsync = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._flush_now = asyncio.Event()
        self._spooled = asyncio.Event()
        self.list_version = 0
        self.counters = {"queue_full": 0, "records_queue_full": 0, "rejected": 0,
                         "batches_sent": 0, "duplicates": 0, "push_errors": 0,
                         "pull_errors": 0}
        self._metrics = _Metrics(registry, self) if registry is not None else None

    # -- the hot path ---------------------------------------------------------------------------
    def enqueue(self, kind: str, payload: Any, *, event_id: str | None = None,
                urgent: bool = False) -> str:
        """Queue one event for the control plane. O(1), no I/O; call from the event loop's
        thread. payload: a dict (not changed afterwards: a detection is encoded on the I/O
        thread), or an object with `to_json()` (a RequestRecord). `event_id` (default: a
        random one) lets a caller link events or make a re-sent event count once; `urgent`
        spools and sends at once instead of within `flush_interval`. Returns the event id."""
        lane = LANE_OF.get(kind)
        if lane is None:
            raise ValueError(f"unknown sync event kind {kind!r}")
        if hasattr(payload, "to_json"):
            payload = json.loads(payload.to_json())
        queue = self.lanes[lane].queue
        if len(queue) >= self.max_queue:
            # The oldest of its own class goes: recent events matter more, and a flood of
            # records never pushes out a detection.
            queue.popleft()
            self._count("records_queue_full" if lane == "records" else "queue_full")
        event_id = event_id or f"{self._id_prefix}{next(self._ids):x}"
        queue.append({"kind": kind, "id": event_id, "data": payload})
        if urgent or len(queue) >= self.batch_size:
            self._flush_now.set()
        return event_id

    async def flush(self) -> None:
        """Spool everything queued so far (written once this returns; fsync'ed too for
        detections and list changes)."""
        await self._spool_queue()

    @property
    def pending_batches(self) -> int:
        return sum(s.pending_batches for s in self.spools.values())

    @property
    def queued(self) -> int:
        return sum(len(lane.queue) for lane in self.lanes.values())

    @property
    def records_shed(self) -> int:
        """Request records that will never reach the control plane: shed, by design."""
        return self.counters["records_queue_full"] + self.spools["records"].shed_records

    @property
    def dropped(self) -> int:
        """Other events that will never reach the control plane."""
        return self.counters["queue_full"] + self.counters["rejected"] + \
            sum(s.dropped_events + (s.shed_records if name != "records" else 0)
                for name, s in self.spools.items())

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "queued": self.queued, "node": self.node_name,
                "spooled_batches": self.pending_batches,
                "spooled_batches_by_class": {n: s.pending_batches
                                             for n, s in self.spools.items()},
                "spool_bytes": sum(s.size_bytes for s in self.spools.values()),
                "spool_dropped": sum(s.dropped_events for s in self.spools.values()),
                "records_shed": self.records_shed, "dropped": self.dropped,
                "list_version": self.list_version}

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        critical = self.spools["critical"]
        await self._run_io(critical.open)
        for name in ("sessions", "records"):
            self.spools[name].open()
        self.list_version = await self._run_io(critical.load_cursor)
        self._session = aiohttp.ClientSession(headers=self._headers)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flusher(), name="sync-flush"),
                       loop.create_task(self._sender(), name="sync-send"),
                       loop.create_task(self._puller(), name="sync-pull")]
        if self.pending_batches:
            self._spooled.set()

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Spool what is queued, give the sender `drain_timeout` seconds to deliver, stop."""
        flusher, sender, puller = self._tasks or (None, None, None)
        for task in (flusher, puller):
            if task is not None:
                task.cancel()
        for task in (flusher, puller):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._spool_queue()
        if sender is not None:
            deadline = time.monotonic() + drain_timeout
            while self.pending_batches and time.monotonic() < deadline \
                    and not sender.done():
                await asyncio.sleep(0.05)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._fsyncing is not None:
            await asyncio.wrap_future(self._fsyncing)
        for name in ("sessions", "records"):
            await self._run_io(self.spools[name].close)   # fsyncs what is left
        await self._run_io(self.spools["critical"].close)
        self._io.shutdown(wait=True)
        self._fsync_io.shutdown(wait=True)

    async def _run_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    # -- flusher: memory → spools ---------------------------------------------------------------
    async def _flusher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.flush_interval)
            self._flush_now.clear()
            await self._spool_queue()
            self._fsync_soon()

    async def _spool_queue(self) -> None:
        for lane in self.lanes.values():
            while lane.queue:
                q = lane.queue
                items = [q.popleft() for _ in range(min(self.batch_size, len(q)))]
                batch = {"batch_id": uuid.uuid4().hex, "created": time.time(), "items": items}
                try:
                    if lane.on_thread:
                        await self._run_io(self._append, lane.spool, batch)
                    else:
                        self._append(lane.spool, batch)
                except OSError as e:
                    # Disk full or gone: keep the events in memory (bounded), try again later.
                    log.warning("sync spool: cannot write (%s); keeping %d events in memory",
                                e, len(items))
                    q.extendleft(reversed(items))
                    while len(q) > self.max_queue:
                        q.popleft()
                        self._count("records_queue_full" if lane.name == "records"
                                    else "queue_full")
                    break
                self._spooled.set()
        self._gauge()

    @staticmethod
    def _append(spool: Spool, batch: dict[str, Any]) -> None:
        spool.append(batch, encode_batch(batch))

    def _fsync_soon(self) -> None:
        """fsync the spools that are not durable per batch, every `fsync_interval`, on their
        own thread (a slow disk must not hold up the critical class's writes)."""
        now = time.monotonic()
        if now - self._last_fsync < self.fsync_interval or \
                (self._fsyncing is not None and not self._fsyncing.done()):
            return
        self._last_fsync = now
        fds = [fd for name in ("sessions", "records") for fd in self.spools[name].unsynced_fds()]
        if fds:
            self._fsyncing = self._fsync_io.submit(_fsync_all, fds)

    # -- sender: spools → control plane ---------------------------------------------------------
    async def _sender(self) -> None:
        backoff = Backoff(*self.retry)
        while True:
            head = None
            for lane in self.lanes.values():   # critical first, records last
                if lane.spool.pending_batches:
                    head = await self._run_io(lane.spool.peek) if lane.on_thread \
                        else lane.spool.peek()
                    if head is not None:
                        break
            if head is None:
                self._spooled.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._spooled.wait(), 5.0)
                continue
            batch_id, line, events = head
            outcome = await self._push(batch_id, line)
            if outcome == "retry":
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            if outcome == "rejected":
                self._count("rejected", events)
            if lane.on_thread:
                await self._run_io(lane.spool.ack, batch_id)
            else:
                lane.spool.ack(batch_id)
            self._gauge()

    async def _push(self, batch_id: str, line: bytes) -> str:
        """Send one batch → "ok", "rejected" (will never be accepted) or "retry"."""
        assert self._session is not None
        now = time.time()
        created = batch_created(line)
        head = {"node": self.node_name, "batch_id": batch_id, "version": __version__,
                "sent_at": now, "lag_seconds": max(0.0, now - (created or now)),
                "list_version": self.list_version, "spooled": self.pending_batches,
                "dropped": self.dropped, "records_shed": self.records_shed}
        timeout = aiohttp.ClientTimeout(total=self.push_timeout, connect=self.connect_timeout)
        try:
            data = push_body(head, line)
        except ValueError:
            log.error("sync spool: batch %s is not valid JSON; dropping it", batch_id)
            return "rejected"
        try:
            async with self._session.post(f"{self.base_url}/api/v1/sync/push",
                                          data=data, timeout=timeout,
                                          headers={"Content-Type": "application/json"}
                                          ) as resp:
                text = await resp.text()
                if resp.status == 200:
                    self._count("batches_sent")
                    if json.loads(text).get("duplicate"):
                        self._count("duplicates")
                    return "ok"
                if resp.status in (400, 413, 422):
                    log.error("control plane refused sync batch %s (%d): %s; dropping it",
                              batch_id, resp.status, text[:200])
                    return "rejected"
                log.warning("sync push: control plane answered %d", resp.status)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
            log.debug("sync push failed: %r", e)
        self._count("push_errors")
        return "retry"

    # -- puller: IP-list changes ----------------------------------------------------------------
    async def _puller(self) -> None:
        assert self._session is not None
        backoff = Backoff(*self.retry)
        url = f"{self.base_url}/api/v1/sync/lists"
        timeout = aiohttp.ClientTimeout(total=self.pull_wait + self.push_timeout,
                                        connect=self.connect_timeout)
        while True:
            params = {"since": str(self.list_version), "wait": str(self.pull_wait),
                      "node": self.node_name[:64]}
            try:
                async with self._session.get(url, params=params, timeout=timeout) as resp:
                    if resp.status != 200:
                        raise aiohttp.ClientResponseError(resp.request_info, (),
                                                          status=resp.status)
                    data = await resp.json()
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
                self._count("pull_errors")
                log.debug("sync pull failed: %r", e)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            changes = data.get("changes") or []
            if changes:
                try:
                    applied = self._on_list_change(changes)
                    if inspect.isawaitable(applied):
                        await applied
                except Exception:
                    # A broken callback must not stop sync; the changes are logged as lost.
                    log.exception("on_list_change failed on %d changes", len(changes))
            version = int(data.get("version", self.list_version))
            if version != self.list_version:
                self.list_version = version
                await self._run_io(self.spools["critical"].save_cursor, version)
                if self._metrics:
                    self._metrics.list_version.set(version)

    # -- counters -------------------------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n
        m = self._metrics
        if m is None:
            return
        if name in ("queue_full", "rejected"):
            m.dropped.labels(reason=name).inc(n)
        elif name == "records_queue_full":
            m.shed.labels(reason="queue_full").inc(n)
        elif name == "batches_sent":
            m.sent.inc(n)
        elif name in ("push_errors", "pull_errors"):
            m.errors.labels(op=name.split("_")[0]).inc(n)

    def _gauge(self) -> None:
        m = self._metrics
        if m is None:
            return
        m.spooled.set(self.pending_batches)
        m.spool_bytes.set(sum(s.size_bytes for s in self.spools.values()))
        records = self.spools["records"]
        lost = sum(s.dropped_events for s in self.spools.values()) + \
            sum(s.shed_records for n, s in self.spools.items() if n != "records")
        if lost > m.spool_dropped_seen:
            m.dropped.labels(reason="spool_full").inc(lost - m.spool_dropped_seen)
            m.spool_dropped_seen = lost
        if records.shed_records > m.spool_shed_seen:
            m.shed.labels(reason="spool_full").inc(records.shed_records - m.spool_shed_seen)
            m.spool_shed_seen = records.shed_records


def _fsync_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError as e:
            log.warning("sync spool: fsync failed: %s", e)
        finally:
            os.close(fd)


class _Metrics:
    def __init__(self, registry: Any, client: SyncClient) -> None:
        from prometheus_client import Counter, Gauge

        self.dropped = Counter("palisade_sync_events_dropped_total",
                               "Detections, list changes and session summaries that will never "
                               "reach the control plane", ["reason"], registry=registry)
        self.shed = Counter("palisade_sync_records_shed_total",
                            "Request records shed to keep the sync queue and spool bounded "
                            "(the oldest go first)", ["reason"], registry=registry)
        self.sent = Counter("palisade_sync_batches_sent_total",
                            "Batches the control plane acknowledged", registry=registry)
        self.errors = Counter("palisade_sync_errors_total",
                              "Failed push or pull attempts (retried)", ["op"],
                              registry=registry)
        self.spooled = Gauge("palisade_sync_spooled_batches",
                             "Batches on disk waiting for the control plane", registry=registry)
        self.list_version = Gauge("palisade_sync_list_version",
                                  "IP-list version this node has applied", registry=registry)
        self.spool_bytes = Gauge("palisade_sync_spool_bytes",
                                 "Bytes of the disk spools (segments not yet deleted)",
                                 registry=registry)
        queued = Gauge("palisade_sync_queued_events", "Events in memory waiting to be spooled",
                       registry=registry)
        queued.set_function(lambda: client.queued)
        for reason in ("queue_full", "spool_full"):
            self.shed.labels(reason=reason)   # exported as 0 from the start
        self.spool_dropped_seen = 0
        self.spool_shed_seen = 0
