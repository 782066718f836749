"""Garbage collection for a long-running node: no full collection over the engine's state.

CPython 3.12 collects its oldest generation in one stop-the-world pass over every tracked
object. In the node those are the start-up objects (~120k: modules, mitmproxy, numpy,
ua-parser) plus the engine's per-key state (~5 tracked objects a session, IP or /64, up to
the table caps), at ~1 µs an object here: a full collection stalled every request in
flight for 80 ms at start and 0.3-0.7 s once the tables fill, every few seconds under a
flood of new addresses (CPython runs one whenever a quarter as many objects again have
reached the oldest generation). That was the single-connection p99 (37-300 ms; mitmdump
6 ms). Young collections stay as they are: they reclaim most of the flows' and
connections' cyclic garbage, in about a millisecond each.

`GenerationalFreeze` takes the oldest generation over:

- after start-up, one full collection and `gc.freeze()`: those objects live as long as
  the process and are never scanned again;
- CPython's own full collections are off (threshold out of reach). Once a second `tick()`
  counts the unfrozen oldest generation; past `limit` objects it collects them — a pass
  over those only, ~20-40 ms — and once `freeze_at` of them survive, freezes them too.
  Survivors are mostly the engine's new per-key state, which has no reference cycles:
  when the engine evicts it, reference counting frees it, frozen or not;
- a freeze also catches what mitmproxy has open at that moment (connections, flows in
  flight). Those die in reference cycles, which the collector never looks for among
  frozen objects: ~130 KB a freeze at 32 busy connections. So after `max_freezes` freezes
  the next collection unfreezes everything first: one full pass (the old stall, 50 times
  rarer, and only while the engine keeps meeting new keys) reclaims it all, and the
  memory held that way stays under `max_freezes` freezes' worth;
- a burst freezes what it had in flight at the time, and when it ends no further freezes
  come to trigger that pass (an HTTP/2 rapid-reset attack kept ~4 MiB of cut-off
  connections per 40,000 streams, every burst, for good). So once the oldest generation
  has stayed under `limit` for `settle` ticks after a freeze, the same full pass runs:
  once per episode, while the node is quiet, and what the burst froze is given back.
  Likewise the garbage a burst leaves in the oldest generation below `limit` (cut-off
  connections with their buffers: ~2.5 MiB a burst) is collected after `settle` quiet
  ticks, a pass over fewer than `limit` objects.
"""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)

NO_AUTOMATIC = 2**31 - 1   # gc threshold: the oldest generation is never collected by itself


class GenerationalFreeze:
    def __init__(self, *, limit: int = 20_000, freeze_at: int = 10_000,
                 max_freezes: int = 50, settle: int = 5) -> None:
        self.limit = limit              # collect the oldest generation past this many objects
        self.freeze_at = freeze_at      # freeze the survivors when they are this many
        self.max_freezes = max_freezes  # then a full pass, which reclaims what froze dead
        self.settle = settle            # quiet ticks after a freeze before that pass, too
        self.freezes = 0                # since the last full pass
        self.full_passes = 0
        self._unsettled = False         # a tick froze since the last full pass
        self._quiet = 0                 # ticks since the last collection past `limit`
        self._after = 0                 # unfrozen oldest generation after the last collection
        self._thresholds: tuple[int, int, int] | None = None

    def start(self) -> None:
        """After start-up: collect, freeze what is left, take the oldest generation over."""
        if self._thresholds is not None:
            return
        t0 = time.perf_counter()
        gc.collect()
        gc.freeze()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(self._thresholds[0], self._thresholds[1], NO_AUTOMATIC)
        logger.debug("gc: %d start-up objects frozen in %.0f ms", gc.get_freeze_count(),
                     (time.perf_counter() - t0) * 1e3)

    def tick(self) -> None:
        """Once a second: collect the oldest generation when it has grown past `limit`."""
        if self._thresholds is None:
            return
        n = len(gc.get_objects(2))
        if n < self.limit:
            self._quiet += 1
            if self._quiet >= self.settle:
                if self._unsettled:
                    self._full_pass(f"{self.settle} quiet seconds after a freeze")
                elif n - self._after >= self.limit // 10:
                    gc.collect()         # what a burst left below `limit`: <= limit objects
                    self._after = len(gc.get_objects(2))
            return
        self._quiet = 0
        if self.freezes >= self.max_freezes:
            self._full_pass(f"{self.max_freezes} freezes")
            return
        t0 = time.perf_counter()
        found = gc.collect()
        survivors = self._after = len(gc.get_objects(2))
        if survivors >= self.freeze_at:
            gc.freeze()
            self.freezes += 1
            self._unsettled = True
        logger.debug("gc: oldest generation collected in %.0f ms: %d unreachable, %d "
                     "survivors%s", (time.perf_counter() - t0) * 1e3, found, survivors,
                     " frozen" if survivors >= self.freeze_at else "")

    def _full_pass(self, why: str) -> None:
        t0 = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.freezes = 1
        self.full_passes += 1
        self._unsettled = False
        self._after = 0
        self._quiet = 0
        logger.info("gc: full collection after %s in %.0f ms: %d unreachable, %d objects "
                    "frozen", why, (time.perf_counter() - t0) * 1e3, found,
                    gc.get_freeze_count())

    def stop(self) -> None:
        """Back to CPython's own policy (the process may go on, as in tests)."""
        if self._thresholds is None:
            return
        gc.set_threshold(*self._thresholds)
        self._thresholds = None
        gc.unfreeze()
