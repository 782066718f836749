"""node.proxy.sync without a network: list changes both ways, session summaries, event shapes
(checked against the control plane's own validation)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from node.control.api import normalize_item
from node.engine.decision import Decision
from node.iplists import IPLists, IPListStore
from node.proxy.sync import (
    MARK,
    SOURCE,
    ListApplier,
    ListTail,
    SessionSummaries,
    detection_event,
    fingerprint,
    record_event,
)
from node.record import RequestRecord

NOW = 1_763_900_000.0


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


class FakeClient:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, dict[str, Any], bool]] = []

    def enqueue(self, kind: str, payload: Any, *, event_id: str | None = None,
                urgent: bool = False) -> str:
        self.events.append((kind, event_id, payload, urgent))
        return event_id or f"ev{len(self.events)}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lists(tmp_path: Path, clock: Clock):
    store = IPListStore(str(tmp_path / "iplists.sqlite3"), clock=clock)
    yield IPLists(store, clock=clock)
    store.close()


def change(op: str, cidr: str, *, lst: str = "deny", origin: str | None = None,
           expires: float | None = NOW + 3600, **kw: Any) -> dict[str, Any]:
    return {"op": op, "list": lst, "cidr": cidr, "reason": "r", "source": "profile:x",
            "created": NOW, "expires": expires, "who": "alice", "version": 1,
            "origin": origin, "attack_id": None, **kw}


# -- control plane → local lists ------------------------------------------------------------------
async def test_applier_adds_and_removes_with_source_control(lists):
    a = ListApplier(lists, "node-a")
    await a.apply([change("add", "203.0.113.7", origin="node-b"),
                   change("add", "198.51.100.0/24", lst="gray", expires=None)])
    e = lists.entry("deny", "203.0.113.7")
    assert e.source == SOURCE and e.who == MARK + "alice" and e.expires == pytest.approx(
        NOW + 3600)
    assert lists.verdict("198.51.100.9").list == "gray"
    await a.apply([change("remove", "203.0.113.7")])
    assert lists.verdict("203.0.113.7").list is None
    assert all(h.who.startswith(MARK) for h in lists.store.history())


async def test_applier_skips_own_expired_and_unusable_changes(lists):
    a = ListApplier(lists, "node-a")
    await a.apply([change("add", "203.0.113.7", origin="node-a"),      # ours, echoed
                   change("add", "203.0.113.8", expires=NOW - 1),       # over already
                   change("add", "not-an-ip"), change("add", "203.0.113.9", lst="nope"),
                   {"op": "rename", "list": "deny", "cidr": "203.0.113.10"}])
    assert lists.counts()["deny"] == 0 and a.applied == 0


async def test_applier_keeps_a_longer_local_reaction_but_obeys_operators(lists):
    lists.add("deny", "203.0.113.7", duration=7200, source="profile:x", who="profile:x")
    a = ListApplier(lists, "node-a")
    await a.apply([change("add", "203.0.113.7", origin="node-b")])   # shorter, from a node
    assert lists.entry("deny", "203.0.113.7").source == "profile:x"
    await a.apply([change("add", "203.0.113.7", origin=None)])       # an operator's
    assert lists.entry("deny", "203.0.113.7").source == SOURCE


async def test_applier_keeps_an_entry_readded_here_after_the_removed_one(lists, clock):
    lists.add("deny", "203.0.113.7", duration=3600, source="profile:x")
    a = ListApplier(lists, "node-a")
    await a.apply([change("remove", "203.0.113.7", created=NOW - 600)])
    assert lists.entry("deny", "203.0.113.7") is not None
    await a.apply([change("remove", "203.0.113.7", created=NOW)])
    assert lists.entry("deny", "203.0.113.7") is None


async def test_snapshot_replaces_only_what_came_from_the_control_plane(lists):
    a = ListApplier(lists, "node-a")
    await a.apply([change("add", "203.0.113.1"), change("add", "203.0.113.2")])
    lists.add("deny", "203.0.113.3", duration=600, source="manual")   # local, not pushed yet
    before = len(lists.store.history(limit=1000))
    await a.apply([{"op": "clear", "version": 9}, change("add", "203.0.113.2"),
                   change("add", "203.0.113.4", expires=None)])
    assert lists.verdict("203.0.113.1").list is None                  # gone from control
    assert lists.verdict("203.0.113.2").list == "deny"                # same: not rewritten
    assert lists.verdict("203.0.113.3").list == "deny"                # local: kept
    assert lists.verdict("203.0.113.4").list == "deny"
    assert len(lists.store.history(limit=1000)) == before + 2         # one remove, one add


async def test_large_snapshot_yields_to_the_loop(lists, monkeypatch):
    import node.proxy.sync as mod

    yields = []
    real_sleep = mod.asyncio.sleep

    async def sleep(t: float) -> None:
        yields.append(t)
        await real_sleep(t)
    monkeypatch.setattr(mod.asyncio, "sleep", sleep)
    changes = [{"op": "clear", "version": 1}] + [
        change("add", f"10.0.{i // 250}.{i % 250}") for i in range(450)]
    await ListApplier(lists, "n").apply(changes)
    assert lists.counts()["deny"] == 450 and len(yields) >= 2


# -- local lists → control plane ------------------------------------------------------------------
def test_tail_forwards_local_changes_once_with_stable_ids(lists, tmp_path, clock):
    client = FakeClient()
    lists.add("deny", "192.0.2.1", duration=600, source="manual", who="cli:bob")  # before
    tail = ListTail(lists, client, tmp_path)
    tail.open()                         # first run: what is in force now
    assert lists.history_hold == tail.cursor    # older rows are never forwarded
    assert [(e[0], e[2]["cidr"], e[2]["op"]) for e in client.events] == [
        ("list_change", "192.0.2.1", "add")]
    client.events.clear()

    lists.add("deny", "203.0.113.7", duration=3600, source="profile:p", who="profile:p")
    tail.link("deny", "203.0.113.7", "det-1")
    lists.remove("deny", "192.0.2.1", who="cli:bob")
    ListApplier(lists, "n")._add("gray", "198.51.100.1", change("add", "198.51.100.1"))
    assert tail.step() == 3
    sent = [(e[2]["op"], e[2]["cidr"], e[2].get("attack"), e[3]) for e in client.events]
    assert sent == [("add", "203.0.113.7", "det-1", True), ("remove", "192.0.2.1", None, True)]
    ids = [e[1] for e in client.events]
    assert all(i.startswith(f"lc-{tail.instance}-") for i in ids) and len(set(ids)) == 2
    for kind, event_id, data, _ in client.events:   # the control plane accepts them
        normalize_item(kind, event_id, data, NOW)
    clock.t += 7200
    lists.sweep()                       # expiry: the control plane expires on its own
    assert tail.step() == 2 and len(client.events) == 2

    before = lists.history_hold
    clock.t += 400 * 86400              # past retention: only spooled rows may be pruned
    assert lists.prune_history() == (before, 0) and lists.history_hold == before
    tail.save(tail.cursor)
    assert lists.history_hold == tail.cursor
    again = ListTail(lists, FakeClient(), tmp_path)
    again.open()                        # restart: resumes at the saved cursor
    assert again.cursor == tail.cursor and again.instance == tail.instance
    assert again.client.events == []


# -- session summaries ----------------------------------------------------------------------------
def rec(ts: float, ip: str = "203.0.113.7", status: int = 200, **kw: Any) -> RequestRecord:
    return RequestRecord(ts=ts, ip=ip, method="GET", host="shop.example", path="/p",
                         status=status, req_bytes=10, resp_bytes=100, **kw)


def test_sessions_push_changed_ones_and_end_idle_ones():
    out: list[dict] = []
    s = SessionSummaries(out.append, timeout=60, cap=100)
    s.add("shop", "s1", rec(NOW))
    s.add("shop", "s1", rec(NOW + 1, ip="203.0.113.8", status=404))
    s.add("shop", "s2", rec(NOW + 2))
    assert s.flush(NOW + 3) == 2 and len(s) == 2
    one = next(x for x in out if x["session"] == "s1")
    assert one == {"session": "s1", "app": "shop", "ip": "203.0.113.8", "first_ts": NOW,
                   "last_ts": NOW + 1, "requests": 2, "statuses": {"200": 1, "404": 1},
                   "req_bytes": 20, "resp_bytes": 200}
    normalize_item("session", "x", one, NOW)
    out.clear()
    assert s.flush(NOW + 4) == 0 and out == []          # nothing changed
    s.add("shop", "s2", rec(NOW + 50))
    s.flush(NOW + 70)                                   # s1 idle for 69 s: ended
    assert [x["session"] for x in out] == ["s2"] and len(s) == 1
    s.flush(NOW + 71, final=True)
    assert len(s) == 0


def test_sessions_are_bounded_and_evicted_ones_pushed():
    out: list[dict] = []
    s = SessionSummaries(out.append, cap=10)
    for i in range(25):
        s.add("shop", f"s{i}", rec(NOW + i))
    assert len(s) == 10 and s.evicted == 15 and len(out) == 15
    for i in range(70):
        s.add("shop", "busy", rec(NOW + 100 + i, status=100 + i))
    s.flush(NOW + 200)
    busy = out[-1] if out[-1]["session"] == "busy" else next(
        x for x in out if x["session"] == "busy")
    assert len(busy["statuses"]) == 64 and busy["statuses"]["other"] == 7


# -- event shapes ---------------------------------------------------------------------------------
def test_fingerprint_matches_the_engine():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from node.engine.core import _fingerprint
    assert fingerprint("203.0.113.7", "ua", None) == _fingerprint((0, "203.0.113.7", "ua", None))
    assert fingerprint("203.0.113.7", "ua", "j") == _fingerprint((0, "203.0.113.7", "ua", "j"))


def test_record_event_is_what_the_control_plane_stores():
    r = rec(NOW, session=None, id="req-1", ua="curl/8", blocked=True, referer="https://x/")
    d = record_event(r, "shop", "fp-1")
    row = normalize_item("record", "ev", d, NOW)
    assert (row["request_id"], row["app"], row["session"], row["blocked"]) == (
        "req-1", "shop", "fp-1", True)


def test_detection_event_within_the_control_plane_limits():
    d = Decision(ts=NOW, ip="203.0.113.7", ips=tuple(f"203.0.113.{i}" for i in range(200)) * 6,
                 session="s" * 400, app="shop", bot_type="security_crawlers",
                 confidence=1.0000001, profile="default", reaction="denylist", duration=3600.0,
                 detectors=tuple((f"d{i}", float(i), "< 10") for i in range(70)),
                 evidence=tuple(f"req-{i}" for i in range(1500)), ttd_requests=3,
                 ttd_seconds=1.5, actor="session",
                 features={f"f{i}": float(i) for i in range(40)})
    ev = detection_event(d)
    row = normalize_item("detection", "ev", ev, NOW)
    assert len(row["ips"]) == 1000 and len(row["evidence"]) == 1000
    assert row["evidence"][-1] == "req-1499" and len(row["detectors"]) == 64
    assert row["confidence"] == 1.0 and len(row["session"]) == 256
