"""Faults under traffic: the control plane SIGKILLed, then frozen with SIGSTOP; a node
SIGKILLed with undelivered events (issue 5 acceptance).

Nodes must keep enforcing their lists, keep answering every request, and deliver
everything once the control plane is back — each request record stored exactly once.
The outage lasts PALISADE_OUTAGE_SECONDS (default 60 under CI, 15 elsewhere); figures go
to artifacts/sync-faults.json and are printed with -s.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import time
from dataclasses import dataclass, field

import aiohttp
import pytest

from tests.cluster import (
    PROBES,
    SCANNER_UA,
    ControlPlane,
    Node,
    Upstream,
    fetch,
    outage_seconds,
    p99,
    until,
    write_artifact,
)

pytestmark = pytest.mark.integration
LISTED = "198.51.100.77"
PATHS = ("/api/products", "/api/products/{}", "/api/cart", "/api/search?q=item{}",
         "/api/categories/{}", "/api/reviews?product={}")


@dataclass
class Load:
    """Steady traffic from many human-looking clients over the nodes, plus a listed
    address that must stay blocked. Every answer's request id is kept per phase."""

    nodes: list[Node]
    workers: int = 4
    pause: float = 0.04
    phase: str = "warmup"
    latencies: dict[str, list[float]] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    listed_checks: dict[str, list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    answered_at: list[tuple[float, str]] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(w)) for w in range(self.workers)]
        self._tasks.append(loop.create_task(self._check_listed()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _worker(self, w: int) -> None:
        assert self._session is not None
        rnd = random.Random(w)
        for i in itertools.count():
            node = self.nodes[(i + w) % len(self.nodes)]
            ip = f"10.{w}.{rnd.randrange(4)}.{rnd.randrange(1, 250)}"
            path = rnd.choice(PATHS).format(rnd.randrange(1, 500))
            phase = self.phase
            try:
                status, rid, took = await fetch(self._session, node.url(path), ip)
            except (aiohttp.ClientError, TimeoutError) as e:
                self.errors.append(f"{phase} {node.name}: {e!r}")
                continue
            self.latencies.setdefault(phase, []).append(took)
            self.ids.setdefault(phase, []).append(rid)
            self.answered_at.append((time.monotonic(), rid))
            await asyncio.sleep(rnd.uniform(0.5, 1.5) * self.pause)

    async def _check_listed(self) -> None:
        assert self._session is not None
        while True:
            for node in self.nodes:
                phase = self.phase
                try:
                    status, rid, _ = await fetch(self._session, node.url("/api/products"),
                                                 LISTED)
                except (aiohttp.ClientError, TimeoutError) as e:
                    self.errors.append(f"listed {node.name}: {e!r}")
                    continue
                self.listed_checks.setdefault(phase, []).append(status)
                self.ids.setdefault(phase, []).append(rid)
            await asyncio.sleep(0.5)

    def all_ids(self) -> list[str]:
        return [i for ids in self.ids.values() for i in ids]


async def _all_stored_once(control: ControlPlane, ids: list[str], what: str,
                           timeout: float) -> float:
    want = set(ids)

    async def stored() -> bool:
        return want <= set(await control.request_counts())
    took = await until(f"{what}: {len(want)} records stored", stored, timeout, 0.5)
    counts = await control.request_counts()
    doubled = {i: n for i, n in counts.items() if n != 1}
    assert not doubled, f"{what}: stored more than once: {list(doubled.items())[:5]}"
    return took


async def test_control_plane_killed_then_frozen_under_traffic(tmp_path):
    outage = outage_seconds()
    upstream = Upstream()
    await upstream.start()
    control = ControlPlane(tmp_path / "control")
    nodes = [Node(name, tmp_path, upstream, control) for name in ("node-a", "node-b")]
    load = Load(nodes)
    figures: dict = {"outage_seconds": outage}
    try:
        await control.start()
        await asyncio.gather(*(n.start() for n in nodes))
        await control.api("POST", "/lists/deny", {"cidr": LISTED, "reason": "fault test",
                                                   "duration": None})
        async with aiohttp.ClientSession() as s:
            for n in nodes:
                async def blocked(n: Node = n) -> bool:
                    return (await fetch(s, n.url("/x"), LISTED))[0] == 403
                await until(f"{n.name} blocks the listed address", blocked, 5)
        await load.start()
        await asyncio.sleep(3)          # connections and caches settle
        load.phase = "before"
        await asyncio.sleep(10)

        # 1. killed: connections refused for the whole outage
        load.phase = "killed"
        control.kill()
        await asyncio.sleep(outage)
        load.phase = "after_kill"
        await control.start()
        took = await _all_stored_once(control, load.ids["killed"], "after SIGKILL", 60)
        figures["killed"] = {"delivered_after_restart_seconds": round(took, 1)}
        await asyncio.sleep(5)

        # 2. frozen: connections accepted, never answered (a hung control plane)
        load.phase = "frozen"
        control.signal(signal.SIGSTOP)
        await asyncio.sleep(outage)
        load.phase = "after_freeze"
        control.signal(signal.SIGCONT)
        took = await _all_stored_once(control, load.ids["frozen"], "after SIGSTOP", 60)
        figures["frozen"] = {"delivered_after_resume_seconds": round(took, 1)}
        await asyncio.sleep(2)
        load.phase = "end"
        await load.stop()

        await _all_stored_once(control, load.all_ids(), "all phases", 30)
        base = p99(load.latencies["before"])
        for phase in ("killed", "frozen"):
            lat = load.latencies[phase]
            figures[phase].update(requests=len(lat), p99_ms=round(p99(lat) * 1e3, 1),
                                  listed_checks=len(load.listed_checks[phase]))
        figures["before"] = {"requests": len(load.latencies["before"]),
                             "p99_ms": round(base * 1e3, 1)}
        figures["errors"] = len(load.errors)
        figures["sync_errors_node_a"] = {
            op: await nodes[0].metric("palisade_sync_errors_total", f'op="{op}"')
            for op in ("push", "pull")}
        write_artifact("sync-faults", figures)

        assert not load.errors, load.errors[:5]
        for phase in ("before", "killed", "frozen"):
            checks = load.listed_checks[phase]
            assert checks and all(st == 403 for st in checks), (phase, checks)
        # Latency is a figure, not an assertion (artifacts/sync-faults.json; measured in
        # one run against its own baseline by bench/sync_push.py): what is asserted is that
        # every request was answered and listed addresses stayed blocked.
        assert await nodes[0].metric("palisade_sync_events_dropped_total",
                                     'reason="queue_full"') == 0
        for reason in ("queue_full", "spool_full"):
            assert await nodes[0].metric("palisade_sync_records_shed_total",
                                         f'reason="{reason}"') == 0
    finally:
        await load.stop()
        for n in nodes:
            n.terminate()
        control.terminate()
        await upstream.stop()


async def test_killed_node_restarts_with_lists_and_unsent_events(tmp_path):
    upstream = Upstream()
    await upstream.start()
    control = ControlPlane(tmp_path / "control")
    node = Node("node-a", tmp_path, upstream, control)
    load = Load([node], workers=2)
    scanner = "198.51.100.99"
    try:
        await control.start()
        await node.start()
        await control.api("POST", "/lists/deny", {"cidr": LISTED, "reason": "kill test",
                                                   "duration": None})
        async with aiohttp.ClientSession() as s:
            async def blocked() -> bool:
                return (await fetch(s, node.url("/x"), LISTED))[0] == 403
            await until("the node learns the listed address", blocked, 5)

            # The control plane hangs: from now on nothing is acknowledged.
            control.signal(signal.SIGSTOP)
            await load.start()
            load.phase = "frozen"
            for path in PROBES:   # a detection made while the control plane is away
                status, rid, _ = await fetch(s, node.url(path), scanner, SCANNER_UA)
                load.ids.setdefault("frozen", []).append(rid)
                if status == 403:
                    break
            assert node.entry("deny", scanner) is not None
            await asyncio.sleep(4)
            killed_at = time.monotonic()
            node.kill()                 # mid-traffic
            load.phase = "down"
            await load.stop()

            spooled = node.spooled_record_ids()
            # anything answered a second before the kill had been spooled (every 0.5 s)
            settled = {rid for t, rid in load.answered_at if t < killed_at - 1.0}
            missing = settled - spooled
            assert not missing, f"{len(missing)} answered records not in the spool"

            await node.start()          # same state directory, control plane still frozen
            for ip in (LISTED, scanner):
                assert (await fetch(s, node.url("/x"), ip))[0] == 403, ip
        control.signal(signal.SIGCONT)
        took = await _all_stored_once(control, sorted(spooled), "spooled before the kill", 60)
        history = await control.query(
            f"SELECT op, origin FROM ip_list_history WHERE cidr = '{scanner}'")
        assert history == [("add", "node-a")], history
        write_artifact("sync-node-kill", {"spooled_records": len(spooled),
                                          "delivered_after_resume_seconds": round(took, 1)})
    finally:
        await load.stop()
        node.terminate()
        control.terminate()
        await upstream.stop()
