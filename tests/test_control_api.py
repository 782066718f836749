"""The control plane's API over both storage backends (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import time

import pytest

from node.control.api import create_app, csv_cell
from node.control.storage.base import DAY, Retention
from node.control.testing import temp_storage

T0 = 1_763_900_000.0
TOKENS = [("node-secret", "node-1", "node"), ("op-secret", "alice", "operator"),
          ("view-secret", "bob", "viewer")]
NODE = {"Authorization": "Bearer node-secret"}
OP = {"Authorization": "Bearer op-secret"}
VIEW = {"Authorization": "Bearer view-secret"}
_ids = itertools.count(1)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def storage(request, tmp_path):
    async with temp_storage(request.param, tmp_path) as s:
        yield s


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def client(aiohttp_client, storage, clock):
    return await aiohttp_client(create_app(storage, tokens=TOKENS, clock=clock, min_requests=50))


def record(ts, *, rid=None, ip="203.0.113.7", session="s-1", path="/api/products/1",
           status=200, method="GET", app="shop", **extra):
    rid = rid or f"req-{next(_ids)}"
    return {"kind": "record", "id": f"ev-{rid}", "data": {
        "id": rid, "ts": ts, "ip": ip, "method": method, "host": "shop.example", "path": path,
        "query": "", "status": status, "req_bytes": 10, "resp_bytes": 2048,
        "duration_ms": 12.5, "ua": "Mozilla/5.0", "session": session, "user": None, "app": app,
        **extra}}


def detection(ts, *, eid=None, ip="203.0.113.7", session="s-1", bot_type="scraping",
              evidence=(), reaction="denylist", confidence=0.9, app="shop", features=None,
              detectors=("request_rate", "query_abuse")):
    return {"kind": "detection", "id": eid or f"det-{next(_ids)}", "data": {
        "ts": ts, "ip": ip, "ips": [ip], "session": session, "app": app, "bot_type": bot_type,
        "confidence": confidence, "profile": "default", "reaction": reaction,
        "duration": 3600, "detectors": [{"name": d, "value": 326, "normal": "< 10"}
                                        for d in detectors],
        "evidence": list(evidence), "ttd_requests": 12, "ttd_seconds": 4.5,
        "features": features or {"rps": 9.0, "error_responses": 0.1, "scheduled": 1.0}}}


def session_summary(*, session="s-1", ip="203.0.113.7", first=T0, last=T0 + 60, requests=3,
                    app="shop"):
    return {"kind": "session", "id": f"ss-{next(_ids)}", "data": {
        "session": session, "app": app, "ip": ip, "first_ts": first, "last_ts": last,
        "requests": requests, "statuses": {"200": requests}, "req_bytes": 30,
        "resp_bytes": 6144}}


def list_change(cidr, *, op="add", lst="deny", attack=None, created=T0, expires=T0 + 3600):
    return {"kind": "list_change", "id": f"lc-{next(_ids)}", "data": {
        "op": op, "list": lst, "cidr": cidr, "reason": "scraping", "source": "profile default",
        "created": created, "expires": expires, "who": "node-1", "attack": attack}}


async def push(client, items, batch_id=None, node="node-1"):
    body = {"node": node, "batch_id": batch_id or f"batch-{next(_ids):06d}", "version": "0.1.0",
            "sent_at": T0, "lag_seconds": 0.5, "list_version": 0, "items": items}
    resp = await client.post("/api/v1/sync/push", json=body, headers=NODE)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def get(client, path, headers=VIEW, expect=200, **params):
    resp = await client.get(path, params=params, headers=headers)
    assert resp.status == expect, await resp.text()
    return await resp.json()


# -- auth -------------------------------------------------------------------------------------
AUTH_TABLE = [
    # method, path, headers, expected
    ("GET", "/healthz", {}, 200),
    ("GET", "/api/v1/openapi.json", {}, 200),
    ("GET", "/api/v1/attacks", {}, 401),
    ("GET", "/api/v1/attacks", {"Authorization": "Bearer wrong"}, 401),
    ("GET", "/api/v1/attacks", {"Authorization": "Basic b3A6c2VjcmV0"}, 401),
    ("GET", "/api/v1/attacks", {"Authorization": "Bearer " + "x" * 5000}, 401),
    ("GET", "/api/v1/attacks", VIEW, 200),
    ("GET", "/api/v1/attacks", OP, 200),
    ("GET", "/api/v1/attacks", NODE, 403),
    ("GET", "/api/v1/stats", NODE, 403),
    ("GET", "/api/v1/lists/deny", NODE, 403),
    ("POST", "/api/v1/lists/deny", VIEW, 403),
    ("POST", "/api/v1/lists/deny", NODE, 403),
    ("DELETE", "/api/v1/lists/deny?cidr=10.0.0.1", VIEW, 403),
    ("POST", "/api/v1/attacks/1/false-positive", VIEW, 403),
    ("POST", "/api/v1/sync/push", VIEW, 403),
    ("POST", "/api/v1/sync/push", OP, 403),
    ("GET", "/api/v1/sync/lists", VIEW, 403),
    ("GET", "/api/v1/sync/lists", NODE, 200),
    ("GET", "/api/v1/no-such-route", {}, 401),
    ("GET", "/api/v1/no-such-route", VIEW, 404),
]


@pytest.mark.parametrize(("method", "path", "headers", "expected"), AUTH_TABLE)
async def test_auth_table(client, method, path, headers, expected):
    resp = await client.request(method, path, headers=headers, json={"cidr": "10.0.0.1"})
    assert resp.status == expected, await resp.text()
    if expected >= 400:
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["status"] == expected
    if expected == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_created_token_is_stored_hashed_and_works(aiohttp_client, storage):
    from node.control.auth import create_token, hash_token

    token = await create_token(storage, "carol", "operator")
    assert await storage.find_token(token) is None  # the token itself is not stored
    assert (await storage.find_token(hash_token(token)))["role"] == "operator"
    client = await aiohttp_client(create_app(storage))
    resp = await client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200


# -- validation and errors --------------------------------------------------------------------
BAD_REQUESTS = [
    ("GET", "/api/v1/attacks?limit=0", None),
    ("GET", "/api/v1/attacks?limit=501", None),
    ("GET", "/api/v1/attacks?limit=abc", None),
    ("GET", "/api/v1/attacks?type=ddos", None),
    ("GET", "/api/v1/attacks?ip=999.1.1.1", None),
    ("GET", "/api/v1/attacks?sort=ip", None),
    ("GET", "/api/v1/attacks?limit=1&limit=2", None),
    ("GET", "/api/v1/attacks?since=2025-13-40", None),
    ("GET", "/api/v1/attacks?since=200&until=100", None),
    ("GET", "/api/v1/sessions?method=G%20T", None),
    ("GET", "/api/v1/lists/deny?q=%25", None),
    ("POST", "/api/v1/lists/deny", b"{not json"),
    ("POST", "/api/v1/lists/deny", b'{"cidr": "10.0.0.1", "duration": NaN}'),
    ("POST", "/api/v1/lists/deny", b'{"cidr": "not-an-ip"}'),
    ("POST", "/api/v1/lists/deny", b'{"cidr": "10.0.0.1", "extra": 1}'),
    ("POST", "/api/v1/lists/deny", b'{"cidr": "10.0.0.1", "duration": -5}'),
    ("POST", "/api/v1/lists/deny", b"[]"),
    ("POST", "/api/v1/lists/deny", b'{"cidr": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
    ("POST", "/api/v1/lists/deny", b""),
    ("DELETE", "/api/v1/lists/deny", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
async def test_bad_input_is_a_clear_400(client, method, path, body):
    headers = {**OP, "Content-Type": "application/json"}
    resp = await client.request(method, path, data=body, headers=headers)
    assert resp.status == 400, await resp.text()
    problem = await resp.json()
    assert problem["title"] == "Bad Request" and problem["detail"]


async def test_body_size_is_bounded(client):
    body = b'{"cidr": "10.0.0.1", "reason": "' + b"x" * 70_000 + b'"}'
    resp = await client.post("/api/v1/lists/deny", data=body,
                             headers={**OP, "Content-Type": "application/json"})
    assert resp.status == 413


async def test_a_crash_is_a_problem_without_traceback(aiohttp_client, storage):
    class Broken:
        def __getattr__(self, name):
            return getattr(storage, name)

        async def query_attacks(self, **kw):
            raise RuntimeError("secret internal detail")

    client = await aiohttp_client(create_app(Broken(), tokens=TOKENS))
    resp = await client.get("/api/v1/attacks", headers=VIEW)
    assert resp.status == 500
    text = await resp.text()
    assert "secret" not in text and "Traceback" not in text
    assert resp.content_type == "application/problem+json"


async def test_openapi_lists_every_route_with_its_parameters(client):
    from node.control.api import routes
    from node.control.routing import spec_of

    doc = await get(client, "/api/v1/openapi.json", headers={})
    assert doc["openapi"].startswith("3.")
    ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    for route in routes:
        spec = spec_of(route.handler)
        assert spec is not None, f"{route.method} {route.path} has no declaration"
        path = spec.path.replace(r"{id:\d+}", "{id}").replace(
            "{list:deny|gray|allow|exception}", "{list}")
        assert (route.method, path) in ops
        op = doc["paths"][path][route.method.lower()]
        assert {p["name"] for p in op["parameters"]} == {p.name for p in spec.params}
        if spec.body:
            assert "requestBody" in op
    app_routes = {(r.method, r.resource.canonical) for r in client.app.router.routes()
                  if r.method != "HEAD"}
    assert len(app_routes) == len(ops)


# -- sync push --------------------------------------------------------------------------------
async def test_push_is_idempotent_by_batch_id(client):
    items = [record(T0, rid="r1"), record(T0 + 1, rid="r2"),
             detection(T0 + 2, eid="d1", evidence=["r1", "r2"]), session_summary(),
             list_change("203.0.113.7", attack="d1")]
    first = await push(client, items, batch_id="batch-aaaa0001")
    assert first["duplicate"] is False
    assert first["stored"] == {"record": 2, "detection": 1, "session": 1, "list_change": 1}
    again = await push(client, items, batch_id="batch-aaaa0001")
    assert again["duplicate"] is True
    # Same events in a new batch (a node that lost its batch id): events are unique too.
    third = await push(client, items[2:3] + items[4:], batch_id="batch-aaaa0002")
    assert third["stored"]["detection"] == 0 and third["stored"]["list_change"] == 0
    attacks = await get(client, "/api/v1/attacks")
    assert len(attacks["items"]) == 1
    sessions = await get(client, "/api/v1/sessions")
    assert len(sessions["items"]) == 1
    reqs = await get(client, f"/api/v1/sessions/{sessions['items'][0]['id']}/requests")
    assert [r["request_id"] for r in reqs["items"]] == ["r1", "r2"]
    entries = await get(client, "/api/v1/lists/deny")
    assert [e["cidr"] for e in entries["items"]] == ["203.0.113.7"]
    nodes = await get(client, "/api/v1/nodes")
    assert nodes["items"][0]["name"] == "node-1"
    assert nodes["items"][0]["version"] == "0.1.0"
    assert nodes["items"][0]["lag_seconds"] == 0.5


async def test_push_skips_bad_items_and_keeps_the_rest(client):
    bad = record(T0)
    bad["data"]["ip"] = "not-an-ip"
    worse = detection(T0)
    worse["data"]["confidence"] = 7
    result = await push(client, [bad, worse, record(T0), {"kind": "session", "id": "x",
                                                          "data": {"session": "s"}}])
    assert result["rejected"] == 3 and result["stored"]["record"] == 1
    assert len(result["errors"]) == 3


async def test_push_batch_shape_is_validated(client):
    resp = await client.post("/api/v1/sync/push", headers=NODE,
                             json={"node": "n", "batch_id": "short", "items": []})
    assert resp.status == 400
    resp = await client.post("/api/v1/sync/push", headers=NODE, json={
        "node": "n", "batch_id": "batch-0000001", "items": [{"kind": "other", "id": "1",
                                                              "data": {}}]})
    assert resp.status == 400


# -- IP lists and pull ------------------------------------------------------------------------
async def test_lists_add_remove_history_and_pull(client, clock):
    resp = await client.post("/api/v1/lists/deny", headers=OP,
                             json={"cidr": "198.51.100.0/24", "reason": "abuse",
                                   "duration": 600})
    assert resp.status == 201
    added = await resp.json()
    assert added["version"] == 1 and added["expires"] == T0 + 600 and added["who"] == "alice"
    resp = await client.post("/api/v1/lists/exception", headers=OP,
                             json={"cidr": "2001:db8::1/128", "reason": "partner"})
    assert (await resp.json())["cidr"] == "2001:db8::1"
    entries = await get(client, "/api/v1/lists/exception")
    assert entries["items"][0]["expires"] is None

    pulled = await get(client, "/api/v1/sync/lists", headers=NODE, since=0)
    assert pulled["snapshot"] is True and pulled["version"] == 2
    assert pulled["changes"][0]["op"] == "clear"
    assert {c["cidr"] for c in pulled["changes"][1:]} == {"198.51.100.0/24", "2001:db8::1"}

    resp = await client.delete("/api/v1/lists/deny", headers=OP,
                               params={"cidr": "198.51.100.7/24", "reason": "done"})
    assert resp.status == 200
    resp = await client.delete("/api/v1/lists/deny", headers=OP,
                               params={"cidr": "198.51.100.0/24"})
    assert resp.status == 404
    pulled = await get(client, "/api/v1/sync/lists", headers=NODE, since=2)
    assert pulled["snapshot"] is False
    assert [(c["op"], c["cidr"], c["version"]) for c in pulled["changes"]] == [
        ("remove", "198.51.100.0/24", 3)]
    history = await get(client, "/api/v1/lists/history", list="deny")
    assert [(h["op"], h["who"]) for h in history["items"]] == [("remove", "alice"),
                                                                ("add", "alice")]
    clock.now += 700  # expired entries are not listed
    await client.post("/api/v1/lists/gray", headers=OP, json={"cidr": "192.0.2.9",
                                                              "duration": 60})
    clock.now += 61
    assert (await get(client, "/api/v1/lists/gray"))["items"] == []


async def test_long_poll_returns_within_2s_of_a_change(client):
    await client.post("/api/v1/lists/deny", headers=OP, json={"cidr": "192.0.2.200"})
    version = (await get(client, "/api/v1/sync/lists", headers=NODE, since=0))["version"]
    started = time.monotonic()
    pull = asyncio.ensure_future(get(client, "/api/v1/sync/lists", headers=NODE,
                                     since=version, wait=25))
    await asyncio.sleep(0.5)
    assert not pull.done()
    changed_at = time.monotonic()
    await client.post("/api/v1/lists/deny", headers=OP, json={"cidr": "192.0.2.1"})
    result = await asyncio.wait_for(pull, 5)
    assert time.monotonic() - changed_at < 2.0
    assert time.monotonic() - started < 5
    assert [c["cidr"] for c in result["changes"]] == ["192.0.2.1"]


async def test_long_poll_times_out_empty(client):
    started = time.monotonic()
    result = await get(client, "/api/v1/sync/lists", headers=NODE, since=0, wait=0.3)
    assert result == {"version": 0, "snapshot": False, "changes": [], "more": False}
    assert time.monotonic() - started >= 0.3
    # A cursor newer than the store (control plane restored from a backup) → snapshot.
    result = await get(client, "/api/v1/sync/lists", headers=NODE, since=7, wait=5)
    assert result["snapshot"] and result["version"] == 0


# -- attacks ----------------------------------------------------------------------------------
async def test_attack_filters_detail_heatmaps_and_false_positive(client):
    items = [record(T0, rid="a1", ip="203.0.113.7"),
             detection(T0 + 1, eid="d-main", ip="203.0.113.7", evidence=["a1"],
                       features={"rps": 100.0, "error_responses": 0.5}),
             list_change("203.0.113.7", attack="d-main")]
    for i in range(35):  # more peers than a heatmap shows
        items.append(detection(T0 - 3600, ip=f"192.0.2.{i + 1}", confidence=0.5 + i / 100,
                               features={"rps": float(i)}))
    items.append(detection(T0, ip="198.51.100.1", app="other", bot_type="account_takeover"))
    await push(client, items)

    page = await get(client, "/api/v1/attacks", type="account_takeover")
    assert [a["ip"] for a in page["items"]] == ["198.51.100.1"]
    page = await get(client, "/api/v1/attacks", app="shop", limit=10)
    assert len(page["items"]) == 10 and page["next_offset"] == 10
    page = await get(client, "/api/v1/attacks", ip="203.0.113.7")
    assert len(page["items"]) == 1
    attack_id = page["items"][0]["id"]
    page = await get(client, "/api/v1/attacks", since=T0 + 0.5, until=T0 + 2, app="shop")
    assert [a["id"] for a in page["items"]] == [attack_id]

    detail = await get(client, f"/api/v1/attacks/{attack_id}")
    assert detail["state"] == "ok"
    assert detail["detectors_detail"][0] == {"name": "request_rate", "value": 326,
                                             "normal": "< 10"}
    assert detail["evidence"] == ["a1"]
    assert set(detail["heatmaps"]) == {"performance", "behavior", "http_errors"}
    perf = detail["heatmaps"]["performance"]
    assert perf["features"][0] == "rps"
    assert len(perf["bots"]) == 31 and perf["bots"][0]["this"] is True
    assert perf["bots"][0]["values"][0] == 100.0 and perf["bots"][0]["scaled"][0] == 1.0
    assert perf["bots"][1]["confidence"] >= perf["bots"][-1]["confidence"]
    await get(client, "/api/v1/attacks/999999", expect=404)

    resp = await client.post(f"/api/v1/attacks/{attack_id}/false-positive", headers=OP,
                             json={"add_exception": True, "reason": "our monitoring"})
    assert resp.status == 200
    fp = await resp.json()
    assert [r["cidr"] for r in fp["removed"]] == ["203.0.113.7"]
    assert fp["exception"]["list"] == "exception"
    assert (await get(client, "/api/v1/lists/deny"))["items"] == []
    exc = await get(client, "/api/v1/lists/exception")
    assert [e["cidr"] for e in exc["items"]] == ["203.0.113.7"]
    assert (await get(client, f"/api/v1/attacks/{attack_id}"))["false_positive"] is True
    pulled = await get(client, "/api/v1/sync/lists", headers=NODE, since=1)
    assert [(c["op"], c["list"]) for c in pulled["changes"]] == [("remove", "deny"),
                                                                  ("add", "exception")]


# -- sessions ---------------------------------------------------------------------------------
async def test_sessions_filters_stats_requests_and_csv(client):
    evil = "=HYPERLINK(\"http://evil.example\",\"x\")"
    items = [record(T0, rid="q1", path="/api/login", method="POST", status=401),
             record(T0 + 1, rid="q2", path=evil),
             record(T0 + 2, rid="q3", path="/api/products/2", **{"query": "-2+3"}),
             record(T0 + 5, rid="h1", session="s-2", ip="198.51.100.4", path="/api/cart"),
             detection(T0 + 3, session="s-1", evidence=["q1", "q2"]),
             session_summary(session="s-1", requests=3),
             session_summary(session="s-2", ip="198.51.100.4", first=T0 + 5, last=T0 + 9,
                             requests=1)]
    await push(client, items)
    everything = await get(client, "/api/v1/sessions")
    assert len(everything["items"]) == 2
    bots = await get(client, "/api/v1/sessions", type="scraping")
    assert [s["session_id"] for s in bots["items"]] == ["s-1"]
    for params in ({"request_id": "q3"}, {"method": "post"}, {"status": 401},
                   {"ip": "203.0.113.7"}, {"since": T0 + 30, "until": T0 + 61}):
        found = await get(client, "/api/v1/sessions", **params)
        assert [s["session_id"] for s in found["items"]] == ["s-1"], params
    assert (await get(client, "/api/v1/sessions", **{"status": 500}))["items"] == []

    sid = bots["items"][0]["id"]
    detail = await get(client, f"/api/v1/sessions/{sid}")
    assert detail["stats"]["stored_requests"] == 3
    assert detail["stats"]["errors"] == 1 and detail["stats"]["methods"] == {"GET": 2,
                                                                             "POST": 1}
    assert detail["attacks"][0]["bot_type"] == "scraping"
    reqs = await get(client, f"/api/v1/sessions/{sid}/requests", limit=2)
    assert [r["request_id"] for r in reqs["items"]] == ["q1", "q2"]
    assert reqs["items"][0]["duration_ms"] == 12.5 and reqs["items"][0]["resp_bytes"] == 2048
    assert reqs["items"][0]["usual"]["avg_duration_ms"] == 12.5
    assert reqs["items"][0]["attack"] == "scraping" and reqs["next_offset"] == 2

    resp = await client.get(f"/api/v1/sessions/{sid}/requests.csv", headers=VIEW)
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0][0] == "request_id" and len(rows) == 4
    cells = [c for row in rows[1:] for c in row]
    assert "'" + evil in cells and "'-2+3" in cells
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    await get(client, "/api/v1/sessions/424242", expect=404)


async def test_sessions_filter_matches_every_bot_type_of_a_session(client):
    """Issue 12: the filter matched only the first bot type recorded for a session."""
    await push(client, [record(T0, rid="m1"), record(T0 + 1, rid="m2"),
                        detection(T0 + 2, eid="d-scr", evidence=["m1"]),
                        detection(T0 + 3, bot_type="account_takeover", evidence=["m2"]),
                        session_summary(requests=2),
                        record(T0 + 5, rid="o1", session="s-2"),
                        session_summary(session="s-2", requests=1)])
    for bot_type in ("scraping", "account_takeover"):
        found = await get(client, "/api/v1/sessions", type=bot_type)
        assert [s["session_id"] for s in found["items"]] == ["s-1"], bot_type
    assert (await get(client, "/api/v1/sessions", type="api_abuse"))["items"] == []
    attack_id = next(a["id"] for a in (await get(client, "/api/v1/attacks"))["items"]
                     if a["bot_type"] == "scraping")
    resp = await client.post(f"/api/v1/attacks/{attack_id}/false-positive", json={},
                             headers=OP)
    assert resp.status == 200, await resp.text()
    assert (await get(client, "/api/v1/sessions", type="scraping"))["items"] == []
    found = await get(client, "/api/v1/sessions", type="account_takeover")
    assert [s["session_id"] for s in found["items"]] == ["s-1"]
    assert found["items"][0]["attack_type"] == "account_takeover"   # not cleared by the FP


async def test_evidence_stored_after_its_detection_is_marked(client, storage):
    # Nodes send detections ahead of request records: the evidence arrives later.
    await push(client, [record(T0, rid="e1"),
                        detection(T0 + 3, session="s-1", evidence=["e1", "e2", "e3"])])
    await push(client, [record(T0 + 1, rid="e2", path="/api/products/9"),
                        record(T0 + 2, rid="e3", path="/api/products/9"),
                        record(T0 + 2, rid="other")])
    async with storage._read() as c:
        marked = {r["request_id"]: r["attack"] for r in await c.fetch(
            "SELECT request_id, attack FROM requests")}
        targets = {r["endpoint"]: r["hits"] for r in await c.fetch(
            "SELECT endpoint, hits FROM daily_targets")}
        pending = await c.fetchval("SELECT COUNT(*) FROM pending_evidence")
    assert marked == {"e1": "scraping", "e2": "scraping", "e3": "scraping", "other": None}
    assert targets == {"/api/products/1": 1, "/api/products/9": 2}
    assert pending == 0
    # A node that pushes no records says so: its evidence is not kept waiting.
    no_records = detection(T0 + 4, evidence=["never-1", "never-2"])
    no_records["data"]["evidence_pushed"] = False
    await push(client, [no_records, detection(T0 + 5, evidence=["later-1"])])
    async with storage._read() as c:
        waiting = [r["request_id"] for r in await c.fetch(
            "SELECT request_id FROM pending_evidence")]
    assert waiting == ["later-1"]


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("/api", "/api"), ("", ""), (12.5, 12.5), (None, None)])
def test_csv_cell(value, expected):
    assert csv_cell(value) == expected


# -- statistics -------------------------------------------------------------------------------
async def test_stats_states_and_timeline(client, clock):
    stats = await get(client, "/api/v1/stats")
    assert stats["state"] == "insufficient_data" and len(stats["timeline"]) == 30
    await push(client, [record(T0 - i, rid=f"x{i}") for i in range(60)])
    stats = await get(client, "/api/v1/stats")
    assert stats["state"] == "legitimate_traffic" and stats["requests"] == 60

    # Previous 30 days: one denylisting; this period: two, and one graylisting.
    await push(client, [list_change("192.0.2.50", created=T0 - 40 * DAY, expires=None)])
    await push(client, [
        detection(T0, ip="192.0.2.1", evidence=["x1", "x2"]),
        detection(T0 - DAY, ip="192.0.2.1", bot_type="account_takeover",
                  detectors=("credential_stuffing", "request_rate")),
        detection(T0, ip="192.0.2.2"),
        list_change("192.0.2.1"), list_change("192.0.2.2"),
        list_change("192.0.2.3", lst="gray")])
    stats = await get(client, "/api/v1/stats")
    assert stats["state"] == "bot_activity" and stats["detections"] == 3
    today = stats["timeline"][-1]
    assert today["by_type"] == {"scraping": 2} and stats["timeline"][-2]["total"] == 1
    assert stats["top_attackers"][0]["ip"] == "192.0.2.1"
    assert stats["top_attackers"][0]["detections"] == 2
    assert stats["top_targets"]["apps"] == [{"app": "shop", "detections": 3}]
    assert stats["top_targets"]["endpoints"][0]["endpoint"] == "/api/products/1"
    rate = next(p for p in stats["patterns"] if p["detector"] == "request_rate")
    assert rate["fired"] == 3
    assert rate["with"] == {"query_abuse": 2, "credential_stuffing": 1}
    assert stats["denylisted"]["added"] == 2 and stats["denylisted"]["previous"] == 1
    assert stats["denylisted"]["change_pct"] == 100.0
    assert stats["graylisted"]["change_pct"] is None
    only_other = await get(client, "/api/v1/stats", app="other", days=7)
    assert only_other["detections"] == 0 and len(only_other["timeline"]) == 7


# -- retention --------------------------------------------------------------------------------
async def test_retention(client, storage, clock):
    await push(client, [record(T0, rid="old1"), detection(T0, evidence=["old1"]),
                        session_summary(),
                        list_change("192.0.2.77", expires=T0 + 3 * DAY)])
    attack_id = (await get(client, "/api/v1/attacks"))["items"][0]["id"]
    result = await storage.apply_retention(T0 + 6 * DAY, Retention())
    assert result["expired_entries"] == 1 and result["requests"] == 0
    assert len((await get(client, "/api/v1/sessions"))["items"]) == 1

    clock.now = T0 + 8 * DAY
    result = await storage.apply_retention(clock.now, Retention())
    assert result["requests"] == 1 and result["sessions"] == 1
    assert (await get(client, "/api/v1/sessions"))["items"] == []
    assert (await get(client, f"/api/v1/attacks/{attack_id}"))["state"] == "ok"
    history = await get(client, "/api/v1/lists/history", cidr="192.0.2.77")
    assert history["items"][0]["op"] == "remove" and history["items"][0]["who"] == "expiry"

    clock.now = T0 + 32 * DAY
    await storage.apply_retention(clock.now, Retention())
    detail = await get(client, f"/api/v1/attacks/{attack_id}")
    assert detail["state"] == "not_enough_data" and detail["heatmaps"] is None
    assert detail["bot_type"] == "scraping"  # the attack itself is still listed
    stats = await get(client, "/api/v1/stats", days=60)
    assert stats["detections"] == 1  # aggregates outlive the detail
