"""The disk spool alone, and the client's priority classes over it: records are shed, counted,
and never take a detection's or a list change's place."""

from __future__ import annotations

import json
import os

from prometheus_client import CollectorRegistry

from node.sync.client import SyncClient
from node.sync.spool import Spool

DEAD = "http://127.0.0.1:9"   # refused: nothing is ever delivered


def rec(i: int) -> dict:
    return {"id": f"r{i}", "ts": 1_763_900_000.0 + i, "ip": "203.0.113.7", "method": "GET",
            "host": "shop.example", "path": f"/api/products/{i}", "query": "", "status": 200,
            "req_bytes": 0, "resp_bytes": 100, "duration_ms": 1.0, "ua": "test",
            "session": "s-1", "user": None, "app": "shop"}


def detection(i: int) -> dict:
    return {"ts": 1_763_900_000.0 + i, "ip": f"198.51.100.{i % 250}", "app": "shop",
            "bot_type": "scraping", "confidence": 0.9, "reaction": "denylist",
            "evidence": [f"r{i}"]}


def change(i: int) -> dict:
    return {"op": "add", "list": "deny", "cidr": f"198.51.{i // 250}.{i % 250}",
            "reason": "scraping", "source": "profile default", "who": "node-1"}


def client_for(spool_dir, **kw) -> SyncClient:
    kw = {"flush_interval": 60.0, "retry_base": 5.0, "retry_cap": 5.0, "node_name": "node-1",
          "batch_size": 100, **kw}
    return SyncClient(DEAD, "node-token-0123456789", spool_dir,
                      on_list_change=lambda changes: None, **kw)


def pending_ids(spool: Spool) -> list[str]:
    """Event ids in a spool's files, oldest first, as a restart would read them."""
    acks = set()
    if (spool.dir / "acks.log").exists():
        acks = set((spool.dir / "acks.log").read_text("utf-8").split())
    out = []
    for seg in sorted(spool.dir.glob("seg-*.log")):
        for line in seg.read_bytes().splitlines():
            batch = json.loads(line)
            if batch["batch_id"] not in acks:
                out += [i["id"] for i in batch["items"]]
    return out


async def test_full_records_spool_sheds_records_never_detections(tmp_path):
    registry = CollectorRegistry()
    client = client_for(tmp_path / "spool", spool_max_bytes=64 * 1024, registry=registry)
    await client.start()
    critical_ids, record_ids = [], []
    try:
        for i in range(5000):
            record_ids.append(client.enqueue("record", rec(i)))
            if i % 250 == 0:
                critical_ids.append(client.enqueue("detection", detection(i)))
                critical_ids.append(client.enqueue("list_change", change(i)))
            if i % 100 == 0:
                await client.flush()
        await client.flush()
        records = client.spools["records"]
        assert records.size_bytes <= 64 * 1024
        assert records.shed_records > 0
        # every record is either spooled or counted as shed
        assert records.shed_records + records.pending_events == 5000
        assert client.records_shed == records.shed_records and client.dropped == 0
        assert client.stats()["records_shed"] == records.shed_records
        client._gauge()
        assert registry.get_sample_value("palisade_sync_records_shed_total",
                                         {"reason": "spool_full"}) == records.shed_records
        assert registry.get_sample_value("palisade_sync_events_dropped_total",
                                         {"reason": "spool_full"}) is None
        # the records that remain are the newest, in order
        kept = pending_ids(records)
        assert kept == record_ids[-len(kept):]
        # the critical class is whole, in order, and next to be sent
        assert client.spools["critical"].pending_events == len(critical_ids) == 40
        assert pending_ids(client.spools["critical"]) == critical_ids
    finally:
        await client.stop(drain_timeout=0)

    # A restart keeps the critical entries (and the records not shed), critical first.
    again = client_for(tmp_path / "spool", spool_max_bytes=64 * 1024)
    await again.start()
    try:
        assert again.spools["critical"].pending_events == 40
        assert again.spools["records"].pending_events == 5000 - records.shed_records
    finally:
        await again.stop(drain_timeout=0)


async def test_a_full_records_queue_sheds_records_only(tmp_path):
    client = client_for(tmp_path / "spool", max_queue=50)
    for i in range(200):   # not started: nothing drains the queues
        client.enqueue("record", rec(i))
        if i % 10 == 0:
            client.enqueue("detection", detection(i))
    assert client.records_shed == 150 and client.dropped == 0
    assert len(client.lanes["critical"].queue) == 20
    assert [e["data"]["id"] for e in client.lanes["records"].queue][0] == "r150"


def test_spool_sheds_oldest_and_counts_records_apart(tmp_path):
    spool = Spool(tmp_path, max_bytes=32 * 1024, segment_bytes=4096)
    spool.open()
    try:
        for b in range(300):
            items = [{"kind": "record", "id": f"r{b}", "data": rec(b)},
                     {"kind": "session", "id": f"s{b}", "data": {"n": b}}]
            spool.append({"batch_id": f"b{b:06d}", "items": items})
        assert spool.size_bytes <= 32 * 1024
        assert spool.shed_records > 0 and spool.dropped_events == spool.shed_records
        assert spool.pending_events + spool.shed_records + spool.dropped_events == 600
    finally:
        spool.close()


def test_spool_that_is_not_durable_hands_out_its_unsynced_segments(tmp_path):
    spool = Spool(tmp_path, durable=False, segment_bytes=4096, max_bytes=1024 * 1024)
    spool.open()
    try:
        assert spool.unsynced_fds() == []          # nothing written yet
        for b in range(40):                        # ~12 KB: a few rotations
            spool.append({"batch_id": f"b{b:06d}", "items": [
                {"kind": "record", "id": f"r{b}", "data": rec(b)}]})
        fds = spool.unsynced_fds()
        segments = len(list(tmp_path.glob("seg-*.log")))
        assert segments > 1 and len(fds) == segments   # every segment written, once each
        for fd in fds:
            os.fsync(fd)
            os.close(fd)
        assert spool.unsynced_fds() == []
    finally:
        spool.close()
    again = Spool(tmp_path)
    again.open()
    assert again.pending_batches == 40     # not durable per batch, still on disk
    again.close()
