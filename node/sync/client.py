"""The node's side of sync: push events to the control plane, pull IP-list changes from it.

    client = SyncClient("http://control:8790", token, "state/sync",
                        on_list_change=lists.apply_changes)
    await client.start()
    client.enqueue("record", record)          # from the request path: never blocks
    ...
    await client.stop()

`enqueue` only appends to an in-memory queue. A flusher task moves the queue to the disk spool
in batches (one fsync per batch, on an I/O thread); a sender task delivers spooled batches in
order and drops them from the spool once acknowledged; a puller task long-polls the IP-list
changes and hands them to `on_list_change`. Every network call has a timeout, so a control
plane that is down or hung (SIGSTOP) only delays delivery: retries back off with jitter, and
batch ids make a retried batch count once.

on_list_change receives a list of changes, each {"op": "add"|"remove"|"clear", "list",
"cidr", "reason", "source", "created", "expires", "who", "version", "origin", "attack_id"};
"clear" (first of a snapshot) means: drop every entry learnt from the control plane, the adds
that follow are the whole state. It runs on the event loop and must be quick; it may return
an awaitable (to apply a large snapshot in slices), which is awaited before the pull cursor
moves past those changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import math
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

from node import __version__
from node.sync.spool import Spool

log = logging.getLogger("palisade.sync")

KINDS = ("record", "detection", "list_change", "session")


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
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)


def _finite(o: Any) -> Any:
    """Non-finite floats → None (the control plane accepts strict JSON only)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def encode_batch(batch: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(batch, separators=(",", ":"), default=_default, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(json.loads(json.dumps(batch, default=_default))),
                          separators=(",", ":"), allow_nan=False)
    return text.encode()


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
    return encode_batch({**head, "items": json.loads(line)["items"]})


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


class SyncClient:
    def __init__(self, base_url: str, token: str, spool_dir: str | Path, *,
                 on_list_change: Callable[[list[dict[str, Any]]], Awaitable[None] | None],
                 node_name: str | None = None,
                 batch_size: int = 500, flush_interval: float = 0.5,
                 max_queue: int = 20_000, spool_max_bytes: int = 128 * 1024 * 1024,
                 push_timeout: float = 10.0, connect_timeout: float = 3.0,
                 pull_wait: float = 25.0, retry_base: float = 0.5, retry_cap: float = 30.0,
                 registry: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_name = node_name or socket.gethostname()
        self._headers = {"Authorization": f"Bearer {token}"}
        self._on_list_change = on_list_change
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.push_timeout = push_timeout
        self.connect_timeout = connect_timeout
        self.pull_wait = pull_wait
        self.retry = (retry_base, retry_cap)
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self._queue: deque[dict[str, Any]] = deque()
        # event ids: a random per-run prefix and a counter (uuid4() costs ~10 µs a record)
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="palisade-spool")
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._flush_now = asyncio.Event()
        self._spooled = asyncio.Event()
        self.list_version = 0
        self.counters = {"queue_full": 0, "rejected": 0, "batches_sent": 0,
                         "duplicates": 0, "push_errors": 0, "pull_errors": 0}
        self._metrics = _Metrics(registry, self._queue) if registry is not None else None

    # -- the hot path ---------------------------------------------------------------------------
    def enqueue(self, kind: str, payload: Any, *, event_id: str | None = None,
                urgent: bool = False) -> str:
        """Queue one event for the control plane. O(1), no I/O; call from the event loop's
        thread. payload: a dict (not changed afterwards: it is encoded on the I/O thread),
        or an object with `to_json()` (a RequestRecord). `event_id` (default: a random one)
        lets a caller link events or make a re-sent event count once; `urgent` spools and
        sends at once instead of within `flush_interval`. Returns the event id."""
        if kind not in KINDS:
            raise ValueError(f"unknown sync event kind {kind!r}")
        if hasattr(payload, "to_json"):
            payload = json.loads(payload.to_json())
        if len(self._queue) >= self.max_queue:
            self._queue.popleft()  # the oldest goes: recent events matter more
            self._count("queue_full")
        event_id = event_id or f"{self._id_prefix}{next(self._ids):x}"
        self._queue.append({"kind": kind, "id": event_id, "data": payload})
        if urgent or len(self._queue) >= self.batch_size:
            self._flush_now.set()
        return event_id

    async def flush(self) -> None:
        """Spool everything queued so far (durable once this returns)."""
        await self._spool_queue()

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "queued": len(self._queue), "node": self.node_name,
                "spooled_batches": self.spool.pending_batches,
                "spool_bytes": self.spool.size_bytes,
                "spool_dropped": self.spool.dropped_events, "list_version": self.list_version}

    @property
    def dropped(self) -> int:
        return self.counters["queue_full"] + self.counters["rejected"] + \
            self.spool.dropped_events

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._run_io(self.spool.open)
        self.list_version = await self._run_io(self.spool.load_cursor)
        self._session = aiohttp.ClientSession(headers=self._headers)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flusher(), name="sync-flush"),
                       loop.create_task(self._sender(), name="sync-send"),
                       loop.create_task(self._puller(), name="sync-pull")]
        if self.spool.pending_batches:
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
            while self.spool.pending_batches and time.monotonic() < deadline \
                    and not sender.done():
                await asyncio.sleep(0.05)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._run_io(self.spool.close)
        self._io.shutdown(wait=True)

    async def _run_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    # -- flusher: memory → spool ----------------------------------------------------------------
    async def _flusher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.flush_interval)
            self._flush_now.clear()
            await self._spool_queue()

    async def _spool_queue(self) -> None:
        while self._queue:
            items = [self._queue.popleft()
                     for _ in range(min(self.batch_size, len(self._queue)))]
            batch = {"batch_id": uuid.uuid4().hex, "created": time.time(), "items": items}
            try:
                # encoded on the I/O thread too: a 500-record batch is milliseconds of CPU
                await self._run_io(self._append, batch)
            except OSError as e:
                # Disk full or gone: keep the events in memory (bounded) and try again later.
                log.warning("sync spool: cannot write (%s); keeping %d events in memory",
                            e, len(items))
                self._queue.extendleft(reversed(items))
                while len(self._queue) > self.max_queue:
                    self._queue.popleft()
                    self._count("queue_full")
                return
            self._spooled.set()
            self._gauge()

    def _append(self, batch: dict[str, Any]) -> None:
        self.spool.append(batch, encode_batch(batch))

    # -- sender: spool → control plane ----------------------------------------------------------
    async def _sender(self) -> None:
        backoff = Backoff(*self.retry)
        while True:
            head = await self._run_io(self.spool.peek)
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
            await self._run_io(self.spool.ack, batch_id)
            self._gauge()

    async def _push(self, batch_id: str, line: bytes) -> str:
        """Send one batch → "ok", "rejected" (will never be accepted) or "retry"."""
        assert self._session is not None
        now = time.time()
        created = batch_created(line)
        head = {"node": self.node_name, "batch_id": batch_id, "version": __version__,
                "sent_at": now, "lag_seconds": max(0.0, now - (created or now)),
                "list_version": self.list_version, "spooled": self.spool.pending_batches,
                "dropped": self.dropped}
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
                await self._run_io(self.spool.save_cursor, version)
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
        elif name == "batches_sent":
            m.sent.inc(n)
        elif name in ("push_errors", "pull_errors"):
            m.errors.labels(op=name.split("_")[0]).inc(n)

    def _gauge(self) -> None:
        if self._metrics:
            self._metrics.spooled.set(self.spool.pending_batches)
            self._metrics.spool_bytes.set(self.spool.size_bytes)
            dropped = self.spool.dropped_events - self._metrics.spool_dropped_seen
            if dropped > 0:
                self._metrics.dropped.labels(reason="spool_full").inc(dropped)
                self._metrics.spool_dropped_seen = self.spool.dropped_events


class _Metrics:
    def __init__(self, registry: Any, queue: deque[Any]) -> None:
        from prometheus_client import Counter, Gauge

        self.dropped = Counter("palisade_sync_events_dropped_total",
                               "Events that will never reach the control plane",
                               ["reason"], registry=registry)
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
                                 "Bytes of the disk spool (segments not yet deleted)",
                                 registry=registry)
        queued = Gauge("palisade_sync_queued_events", "Events in memory waiting to be spooled",
                       registry=registry)
        queued.set_function(lambda: len(queue))
        self.spool_dropped_seen = 0
