"""housekeeping: the node's periodic work, started in running() and stopped in done().

Every second: pick up IP-list changes other processes committed (the ip-list command),
flush request records. Every few seconds: expire list entries, mirror engine and list
sizes into gauges. Every minute: prune old IP-list history. Every ten minutes and at exit:
save the engine's learned baselines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from node.proxy.context import NodeContext

logger = logging.getLogger(__name__)

SAVE_EVERY = 600.0
SWEEP_EVERY = 5
PRUNE_EVERY = 60           # ticks: bound the IP-list history on disk


class Housekeeping:
    def __init__(self, node: NodeContext, baselines_path: str | None = None) -> None:
        self.node = node
        self.baselines_path = baselines_path
        self._task: asyncio.Task | None = None
        node.iplists.on_change.append(self._lists_changed)
        self._lists_changed()

    def _lists_changed(self) -> None:
        self.node.metrics.set_list_counts(self.node.iplists.counts())

    def running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="housekeeping")
        self.node.ready = True

    async def done(self) -> None:
        self.node.ready = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.tick(final=True)

    async def _loop(self) -> None:
        n = 0
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            n += 1
            try:
                self.tick(sweep=n % SWEEP_EVERY == 0)
                if n % PRUNE_EVERY == 0:
                    self.prune_history()
                if time.monotonic() - last_save > SAVE_EVERY:
                    last_save = time.monotonic()
                    self.save_baselines()
            except Exception:  # keep the loop alive; the next tick retries
                logger.exception("housekeeping failed")

    def tick(self, *, sweep: bool = False, final: bool = False) -> None:
        node = self.node
        node.iplists.refresh()
        if sweep or final:
            node.iplists.sweep()
            if node.engine is not None:
                node.metrics.engine_stats(node.engine.stats())
            node.metrics.evicted("denied_sessions", node.iplists.sessions.evictions)
        if node.recorder is not None:
            node.recorder.flush()
        if final:
            self.save_baselines()

    def prune_history(self) -> None:
        by_age, by_cap = self.node.iplists.prune_history()
        if by_cap:
            logger.warning("IP-list history over its row cap: dropped the %d oldest changes "
                           "(the control plane keeps its own history)", by_cap)
        elif by_age:
            logger.debug("IP-list history: dropped %d changes past retention", by_age)

    def save_baselines(self) -> None:
        engine = self.node.engine
        if self.baselines_path and engine is not None and hasattr(engine, "baselines"):
            t0 = time.perf_counter()
            try:
                engine.baselines.save(self.baselines_path)
            except OSError as e:
                logger.warning("cannot save baselines to %s: %s", self.baselines_path, e)
            else:
                logger.debug("baselines saved in %.1f ms", (time.perf_counter() - t0) * 1e3)
