"""SyncClient against a real control plane on loopback: delivery, outages, hangs, crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from node.control.api import create_app
from node.control.storage import open_storage
from node.sync.client import SyncClient, encode_batch
from node.sync.spool import Spool

TOKENS = [("node-token-0123456789", "node-1", "node"),
          ("operator-token-0123456789", "alice", "operator")]
OP = {"Authorization": "Bearer operator-token-0123456789"}


class Control:
    """A control plane on a fixed loopback port that can be stopped and started again."""

    def __init__(self, storage) -> None:
        self.storage = storage
        self.port = 0
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(create_app(self.storage, tokens=TOKENS),
                                    handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
        self.runner = None

    async def count(self, table: str) -> int:
        async with self.storage._read() as c:  # test-only peek at the stored rows
            return int(await c.fetchval(f"SELECT COUNT(*) FROM {table}"))


@pytest.fixture
async def storage(tmp_path):
    s = await open_storage(f"sqlite:///{tmp_path / 'control.db'}")
    yield s
    await s.close()


@pytest.fixture
async def control(storage):
    c = Control(storage)
    await c.start()
    yield c
    if c.runner is not None:
        await c.stop()


def rec(i: int) -> dict:
    return {"id": f"r{i}", "ts": 1_763_900_000.0 + i, "ip": "203.0.113.7", "method": "GET",
            "host": "shop.example", "path": f"/api/products/{i}", "query": "", "status": 200,
            "req_bytes": 0, "resp_bytes": 100, "duration_ms": 1.0, "ua": "test",
            "session": "s-1", "user": None, "app": "shop"}


def client_for(url: str, spool: Path, changes: list | None = None, **kw) -> SyncClient:
    kw = {"flush_interval": 0.05, "retry_base": 0.05, "retry_cap": 0.3, "push_timeout": 2.0,
          "pull_wait": 2.0, "node_name": "node-1", **kw}
    sink = changes if changes is not None else []
    return SyncClient(url, "node-token-0123456789", spool, on_list_change=sink.extend, **kw)


async def until(predicate, timeout: float = 10.0, step: float = 0.02, client=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(step)
    state = client.stats() if client is not None else ""
    raise AssertionError(f"{predicate.__name__} not reached in {timeout}s {state}")


async def test_delivers_events_and_receives_list_changes(control, tmp_path):
    changes: list[dict] = []
    client = client_for(control.url, tmp_path / "spool", changes, batch_size=100)
    await client.start()
    try:
        for i in range(1000):
            client.enqueue("record", rec(i))
        client.enqueue("session", {"session": "s-1", "app": "shop", "ip": "203.0.113.7",
                                   "first_ts": 1_763_900_000.0, "last_ts": 1_763_900_999.0,
                                   "requests": 1000, "statuses": {"200": 1000}})

        async def delivered():
            return await control.count("requests") == 1000 and \
                await control.count("sessions") == 1
        await until(delivered, client=client)
        assert client.stats()["spooled_batches"] == 0
        assert client.stats()["records_shed"] == 0

        # An operator's decision reaches the node within 2 s (long poll, not polling).
        await asyncio.sleep(0.3)  # the puller is now waiting on the server
        async with client._session.post(f"{control.url}/api/v1/lists/deny", headers=OP,
                                        json={"cidr": "198.51.100.9"}) as resp:
            assert resp.status == 201
        decided = time.monotonic()

        async def arrived():
            return any(c.get("cidr") == "198.51.100.9" for c in changes)
        await until(arrived, timeout=2.0, step=0.01, client=client)
        assert time.monotonic() - decided < 2.0
        assert client.list_version >= 1
    finally:
        await client.stop()
    nodes = await control.storage.list_nodes()
    assert nodes[0]["name"] == "node-1" and nodes[0]["version"]


async def test_outage_spools_and_recovery_delivers_exactly_once(control, tmp_path):
    registry = CollectorRegistry()
    client = client_for(control.url, tmp_path / "spool", batch_size=50, registry=registry)
    await client.start()
    try:
        for i in range(100):
            client.enqueue("record", rec(i))

        async def first_part():
            return await control.count("requests") == 100
        await until(first_part)

        await control.stop()  # outage
        for i in range(100, 400):
            client.enqueue("record", rec(i))

        async def spooled():
            return client.pending_batches >= 6 and client.counters["push_errors"] > 0
        await until(spooled)
        assert registry.get_sample_value("palisade_sync_errors_total", {"op": "push"}) > 0

        await control.start()  # recovery, same port and storage

        async def all_there():
            return client.pending_batches == 0
        await until(all_there)
        assert await control.count("requests") == 400
        async with control.storage._read() as c:
            distinct = await c.fetchval("SELECT COUNT(DISTINCT request_id) FROM requests")
        assert distinct == 400
        assert registry.get_sample_value("palisade_sync_spooled_batches") == 0
    finally:
        await client.stop()


async def test_lost_ack_and_restart_resend_without_duplicates(control, tmp_path):
    spool_dir = tmp_path / "spool"
    # A node spooled three batches and died; one of them had reached the control plane, but
    # its acknowledgement had not reached the node.
    spool = Spool(spool_dir)
    spool.open()
    batches = []
    for b in range(3):
        items = [{"kind": "record", "id": f"e{b}-{i}", "data": rec(b * 10 + i)}
                 for i in range(10)]
        batch = {"batch_id": f"batch-{b:08d}", "created": time.time(), "items": items}
        spool.append(batch, encode_batch(batch))
        batches.append(batch)
    spool.close()
    body = {"node": "node-1", "batch_id": batches[1]["batch_id"], "items": batches[1]["items"]}
    resp = await asyncio.to_thread(_post_json, f"{control.url}/api/v1/sync/push", body)
    assert resp["duplicate"] is False

    client = client_for(control.url, spool_dir)
    await client.start()
    try:
        async def drained():
            return client.pending_batches == 0
        await until(drained)
    finally:
        await client.stop()
    assert await control.count("requests") == 30
    assert client.counters["duplicates"] == 1


async def test_detections_and_list_changes_go_ahead_of_a_record_backlog(control, tmp_path):
    client = client_for(control.url, tmp_path / "spool", batch_size=50)
    await control.stop()   # a backlog builds up
    await client.start()
    try:
        for i in range(1000):
            client.enqueue("record", rec(i))
        await client.flush()
        client.enqueue("detection", {
            "ts": 1_763_900_000.0, "ip": "203.0.113.7", "app": "shop", "bot_type": "scraping",
            "confidence": 0.9, "reaction": "denylist", "evidence": ["r1", "r999"]},
            event_id="det-1", urgent=True)
        client.enqueue("list_change", {"op": "add", "list": "deny", "cidr": "203.0.113.7",
                                       "reason": "scraping", "attack": "det-1"}, urgent=True)
        await client.flush()
        assert client.spools["records"].pending_batches == 20
        await control.start()

        async def drained():
            return client.pending_batches == 0
        await until(drained, client=client)
    finally:
        await client.stop()
    async with control.storage._read() as c:
        order = [r["items"] for r in await c.fetch(
            "SELECT items FROM received_batches ORDER BY rowid")]
        marked = await c.fetchval("SELECT COUNT(*) FROM requests WHERE attack = 'scraping'")
        linked = await c.fetchval("SELECT COUNT(*) FROM ip_list_entries WHERE attack_id "
                                  "IS NOT NULL")
    assert order == [2] + [50] * 20   # the critical batch first, then the records
    assert marked == 2 and linked == 1   # its evidence marked though stored after it


def _post_json(url: str, body: dict) -> dict:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Authorization": "Bearer node-token-0123456789", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


async def test_hung_control_plane_times_out_and_enqueue_never_blocks(tmp_path):
    # Accepts connections and never answers: what a SIGSTOP'ed control plane looks like.
    held: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}", tmp_path / "spool", push_timeout=0.5,
                        pull_wait=0.2, batch_size=200)
    await client.start()
    try:
        # enqueue only appends to memory (its cost: bench/sync_push.py)
        for i in range(5000):
            client.enqueue("record", rec(i))
        assert client.queued == 5000 and client.pending_batches == 0

        async def timed_out():
            return client.counters["push_errors"] >= 1 and client.counters["pull_errors"] >= 1
        await until(timed_out, timeout=5)
        async def on_disk():
            return client.pending_batches == 25   # everything safe on disk
        await until(on_disk)
    finally:
        stop = asyncio.get_running_loop().create_task(client.stop(drain_timeout=0.5))
        # a hung control plane cannot hold the node's shutdown: the push times out
        await asyncio.wait_for(stop, 10)
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_queue_and_spool_are_bounded(tmp_path):
    registry = CollectorRegistry()
    client = client_for("http://127.0.0.1:9", tmp_path / "spool", max_queue=100,
                        registry=registry)
    for i in range(150):  # not started: nothing drains the queue
        client.enqueue("record", rec(i))
        client.enqueue("detection", {"n": i})
    assert client.stats()["queued"] == 200
    assert client.counters["records_queue_full"] == 50 and client.counters["queue_full"] == 50
    assert client.records_shed == 50 and client.dropped == 50
    assert registry.get_sample_value("palisade_sync_records_shed_total",
                                     {"reason": "queue_full"}) == 50
    assert registry.get_sample_value("palisade_sync_events_dropped_total",
                                     {"reason": "queue_full"}) == 50
    assert [e["data"]["n"] for e in client.lanes["critical"].queue][:2] == [50, 51]
    with pytest.raises(ValueError):
        client.enqueue("nonsense", {})

    spool = Spool(tmp_path / "small", max_bytes=64 * 1024, segment_bytes=8 * 1024)
    spool.open()
    try:
        for b in range(500):
            batch = {"batch_id": f"b{b:06d}", "items": [{"kind": "record", "id": str(b),
                                                         "data": rec(b)}]}
            spool.append(batch)
            assert spool.size_bytes <= 64 * 1024
        assert spool.shed_records > 0 and spool.dropped_events == 0
        assert spool.pending_batches + spool.shed_records == 500
        oldest = spool.peek()
        assert oldest is not None and int(oldest[0][1:]) == spool.shed_records  # oldest went
    finally:
        spool.close()


def test_spool_recovers_after_a_torn_write(tmp_path):
    spool = Spool(tmp_path)
    spool.open()
    for b in range(3):
        spool.append({"batch_id": f"b{b}", "items": [{"kind": "record", "id": str(b),
                                                      "data": {}}]})
    spool.ack("b0")
    spool.close()
    seg = sorted(tmp_path.glob("seg-*.log"))[-1]
    with open(seg, "ab") as f:
        f.write(b'{"batch_id":"b3","items":[{"kind"')  # killed mid-write
    again = Spool(tmp_path)
    again.open()
    assert [again.peek()[0]] == ["b1"] and again.pending_batches == 2
    again.ack("b1")
    again.ack("b2")
    assert again.pending_batches == 0 and again.peek() is None
    again.close()
    third = Spool(tmp_path)
    third.open()
    assert third.pending_batches == 0
    assert len(list(tmp_path.glob("seg-*.log"))) == 1  # delivered segments were removed
    third.close()


def test_encode_batch_survives_non_finite_and_numpy_like_values():
    class Scalar:
        def item(self):
            return 3.5

    out = json.loads(encode_batch({"items": [{"v": float("nan"), "w": Scalar(), "s": {1}}]}))
    assert out == {"items": [{"v": None, "w": 3.5, "s": [1]}]}


CHILD = textwrap.dedent("""
    import asyncio, sys
    from node.sync.client import SyncClient

    async def main():
        client = SyncClient("http://127.0.0.1:9", "node-token-0123456789", sys.argv[1],
                            on_list_change=lambda changes: None, flush_interval=0.02,
                            batch_size=40, retry_base=5, retry_cap=5)
        await client.start()
        for i in range(200):
            client.enqueue("record", {"id": f"k{i}", "ts": 1763900000.0 + i,
                "ip": "203.0.113.9", "method": "GET", "host": "h", "path": "/p",
                "status": 200, "app": "shop"})
        while client.pending_batches < 5:
            await asyncio.sleep(0.01)
        print("spooled", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


@pytest.mark.integration
async def test_spooled_events_survive_sigkill(control, tmp_path):
    spool_dir = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(spool_dir)],
                            stdout=subprocess.PIPE, env=env)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.strip() == b"spooled"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    client = client_for(control.url, spool_dir)
    await client.start()
    try:
        async def delivered():
            return client.pending_batches == 0
        await until(delivered)
    finally:
        await client.stop()
    assert await control.count("requests") == 200


def test_push_body_splices_the_spooled_items():
    from node.sync.client import batch_created, push_body

    items = [{"kind": "record", "id": "a", "data": {"items": 1, "s": ',"items":[]}'}}]
    line = encode_batch({"batch_id": "b1", "created": 1.5, "items": items})
    head = {"node": "n", "batch_id": "b1", "sent_at": 2.0}
    assert json.loads(push_body(head, line)) == {**head, "items": items}
    assert batch_created(line) == 1.5
    other = json.dumps({"items": items, "batch_id": "b1"}).encode()  # not our layout
    assert json.loads(push_body(head, other)) == {**head, "items": items}
    assert batch_created(b'{"batch_id":"x"}') is None


def test_enqueue_takes_an_event_id_and_urgency(tmp_path):
    client = client_for("http://127.0.0.1:9", tmp_path / "spool", batch_size=100)
    assert client.enqueue("detection", {"a": 1}, event_id="det-1") == "det-1"
    assert not client._flush_now.is_set()
    generated = client.enqueue("list_change", {"b": 2}, urgent=True)
    assert client._flush_now.is_set()
    assert [e["id"] for e in client.lanes["critical"].queue] == ["det-1", generated]
    assert client.enqueue("record", {}) not in ("det-1", generated)
