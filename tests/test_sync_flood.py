"""A flood of request records through a deliberately small spool, against a real
`palisade control` on loopback (issue 12 acceptance): not one detection or list change is
lost, and every request record is either stored once or counted as shed."""

from __future__ import annotations

import asyncio
import signal

import pytest
from prometheus_client import CollectorRegistry

from node.sync.client import SyncClient
from tests.cluster import NODE_TOKEN, ControlPlane, until

pytestmark = pytest.mark.integration
RECORDS = 60_000


def rec(i: int) -> dict:
    return {"id": f"r{i}", "ts": 1_763_900_000.0 + i / 1000, "ip": f"10.{i >> 16 & 255}."
            f"{i >> 8 & 255}.{i & 255}", "method": "GET", "host": "shop.example",
            "path": f"/api/products/{i % 5000}", "query": "", "status": 200, "req_bytes": 0,
            "resp_bytes": 2048, "duration_ms": 1.5, "ua": "Mozilla/5.0", "session": None,
            "user": None, "app": "shop", "session_id": f"fp-{i:x}"}


def detection(i: int) -> dict:
    return {"ts": 1_763_900_000.0 + i / 1000, "ip": f"198.51.{i >> 8 & 255}.{i & 255}",
            "app": "shop", "bot_type": "scraping", "confidence": 0.9, "reaction": "denylist",
            "detectors": [{"name": "request_rate", "value": 40, "normal": "< 2"}],
            "evidence": [f"r{i}"]}


def change(i: int, attack: str) -> dict:
    return {"op": "add", "list": "deny", "cidr": f"198.51.{i >> 8 & 255}.{i & 255}",
            "reason": "scraping", "source": "profile default", "who": "flood-node",
            "attack": attack}


async def test_flood_sheds_records_and_loses_no_detection_or_list_change(tmp_path):
    control = ControlPlane(tmp_path / "control")
    registry = CollectorRegistry()
    client = SyncClient(control.url, NODE_TOKEN, tmp_path / "spool",
                        on_list_change=lambda changes: None, node_name="flood-node",
                        spool_max_bytes=512 * 1024, max_queue=5000, flush_interval=0.1,
                        retry_base=0.05, retry_cap=0.5, push_timeout=2.0, pull_wait=2.0,
                        registry=registry)
    detections: list[str] = []
    changes: list[str] = []
    try:
        await control.start()
        await client.start()
        for i in range(RECORDS):
            client.enqueue("record", rec(i))
            if i % 300 == 0:
                det = client.enqueue("detection", detection(i // 300), urgent=True)
                detections.append(det)
                changes.append(client.enqueue("list_change", change(i // 300, det),
                                              urgent=True))
            if i == RECORDS // 3:
                control.signal(signal.SIGSTOP)     # the control plane hangs mid-flood
            if i % 100 == 0:
                await asyncio.sleep(0.002)         # ~30k records/s: the flusher, the sender

        await client.flush()
        assert client.records_shed > 0, client.stats()   # the small spool overflowed
        control.signal(signal.SIGCONT)

        async def drained() -> bool:
            return client.pending_batches == 0 and client.queued == 0
        await until("the spools drain", drained, 120, 0.2)
        stats = client.stats()
    finally:
        control.signal(signal.SIGCONT)
        await client.stop()

    stored_detections = await control.query(
        "SELECT event_id, COUNT(*) FROM attacks WHERE node = 'flood-node' GROUP BY event_id")
    stored_changes = await control.query(
        "SELECT event_id, attack_id FROM ip_list_history WHERE origin = 'flood-node'")
    records = await control.request_counts()
    nodes = await control.query("SELECT records_shed, dropped FROM nodes "
                                "WHERE name = 'flood-node'")
    control.terminate()
    print(f"\nflood: {RECORDS} records, {len(records)} stored, {client.records_shed} shed "
          f"({client.counters['records_queue_full']} from the queue); "
          f"{len(detections)} detections and {len(changes)} list changes, all stored")

    assert sorted(e for e, _ in stored_detections) == sorted(detections)   # 0 lost
    assert all(n == 1 for _, n in stored_detections)                      # once each
    assert sorted(e for e, _ in stored_changes) == sorted(changes)         # 0 lost
    assert all(a is not None for _, a in stored_changes)   # each linked to its detection
    assert all(n == 1 for n in records.values())
    shed = client.records_shed
    # Every record is stored or counted as shed. A batch in flight when the control plane
    # hung can be both: the push timed out, the batch was shed, and the control plane stored
    # it when it woke up -- so the sum may exceed the records sent, never fall short.
    assert len(records) <= RECORDS and len(records) + shed >= RECORDS, (len(records), shed,
                                                                         stats)
    assert client.dropped == 0 and stats["records_shed"] == shed
    assert sum(registry.get_sample_value("palisade_sync_records_shed_total",
                                         {"reason": r}) for r in ("queue_full",
                                                                  "spool_full")) == shed
    # The node's status on the control plane says how many it shed (as of its last push).
    assert nodes and nodes[0][1] == 0 and 0 < nodes[0][0] <= shed
