"""Demo-like control-plane data: simulated traffic through the real engine, as sync items.

    items = demo_items(end=time.time())                # one simulated hour, records + decisions
    items += history_items(items, end=time.time())     # 60 days of earlier detections
    await push_http(session, base_url, node_token, items)   # through POST /api/v1/sync/push
    await ingest(storage, items, now=...)                   # or straight into storage

The traffic is `node.sim` (humans and every bot family) run through `node.engine.Engine`, so
records, detections (detector values, evidence, heatmap features), list changes and session
summaries are what a node would push. An IP's requests after it is denylisted come back
blocked (403), as the node would record them. `hostile=True` adds a scanner whose user agent,
path, query, session and username carry script payloads, for escaping tests.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from node.appmatch import AppRouter
from node.config.compile import default_config
from node.config.model import EngineConfig
from node.engine import Decision, Engine
from node.engine.core import _fingerprint  # the session key the engine reports
from node.record import RequestRecord
from node.sim import Scenario, simulate, to_records

NODE = "node-1"
REACTION_LIST = {"denylist": "deny", "graylist": "gray"}
BATCH = 2000

# The hostile client: every field a page shows carries a payload.
HOSTILE_IP = "192.0.2.66"
HOSTILE_UA = "<script>alert(1)</script>"
HOSTILE_PATHS = ('/"><img src=x onerror=alert(1)>', "/javascript:alert(1)",
                 "/<svg/onload=alert(1)>", "/admin/'-alert(1)-'", "/.env",
                 "/wp-login.php?<script>alert(1)</script>")
HOSTILE_QUERY = "next=javascript:alert(1)&q=</script><script>alert(1)</script>"
HOSTILE_SESSION = '"><script>alert(1)</script>'
HOSTILE_USER = "<img src=x onerror=alert(1)>"


def hostile_records(start: float, n: int = 60) -> list[RequestRecord]:
    """A fast scanner probing paths that carry script payloads."""
    out = []
    for i in range(n):
        path = HOSTILE_PATHS[i % len(HOSTILE_PATHS)]
        path, _, query = path.partition("?")
        out.append(RequestRecord(
            ts=start + i * 0.5, ip=HOSTILE_IP, method="POST" if i % 5 == 4 else "GET",
            host="shop.example", path=path, query=query or HOSTILE_QUERY,
            status=404 if i % 3 else 200, req_bytes=64, resp_bytes=120 + i,
            duration_ms=2.0 + (i % 7), ua=HOSTILE_UA, session=HOSTILE_SESSION,
            user=HOSTILE_USER if i % 5 == 4 else None, id=f"hostile-{i}"))
    return out


def demo_items(*, end: float, scale: float = 0.2, seed: int = 7, duration: float = 3600.0,
               config: EngineConfig | None = None, hostile: bool = True, node: str = NODE,
               tag: str | None = None) -> list[dict[str, Any]]:
    """Sync items for `duration` seconds of simulated demo traffic ending at `end`."""
    config = config or default_config().engine
    tag = tag or f"s{seed}"
    sc = Scenario.default(scale=scale, seed=seed, start=end - duration, duration=duration)
    records: Iterable[RequestRecord] = to_records(simulate(sc), seed=seed)
    if hostile:
        records = _merge(list(records), hostile_records(end - duration * 0.5))
    return list(_run(records, config, tag, node))


def _merge(a: list[RequestRecord], b: list[RequestRecord]) -> list[RequestRecord]:
    return sorted([*a, *b], key=lambda r: r.ts)


def _run(records: Iterable[RequestRecord], config: EngineConfig, tag: str, node: str
         ) -> Iterator[dict[str, Any]]:
    engine = Engine(config)
    router = AppRouter(config.applications)
    apps = config.applications
    denied: dict[str, float] = {}        # ip → until (denylisted by a decision)
    denied_sessions: dict[str, float] = {}
    listed: dict[tuple[str, str], float] = {}
    sessions: dict[tuple[str, str], dict[str, Any]] = {}
    seq = 0
    for rec in records:
        app = apps[router.index(rec.host)].name
        sid = rec.session or _fingerprint((0, rec.ip, rec.ua, rec.ja3))
        rid = f"{tag}-{rec.id}"
        if denied.get(rec.ip, 0) > rec.ts or denied_sessions.get(sid, 0) > rec.ts:
            rec = replace(rec, status=403, resp_bytes=180, duration_ms=0.2, blocked=True)
        decisions = engine.process(rec)
        yield {"kind": "record", "id": f"r-{rid}", "data": _record(rec, rid, app, sid)}
        s = sessions.get((app, sid))
        if s is None:
            s = sessions[(app, sid)] = {"session": sid, "app": app, "ip": rec.ip,
                                        "first_ts": rec.ts, "last_ts": rec.ts, "requests": 0,
                                        "statuses": {}, "req_bytes": 0, "resp_bytes": 0}
        s["last_ts"] = rec.ts
        s["requests"] += 1
        s["statuses"][str(rec.status)] = s["statuses"].get(str(rec.status), 0) + 1
        s["req_bytes"] += rec.req_bytes
        s["resp_bytes"] += rec.resp_bytes
        for d in decisions:
            seq += 1
            eid = f"d-{tag}-{seq}"
            yield {"kind": "detection", "id": eid, "data": detection(d, tag)}
            for i, ip in enumerate(d.ips):
                lst = REACTION_LIST.get(d.reaction)
                until = d.ts + (d.duration or 1e12)
                # As a node's lists: an address already listed is renewed, at most every
                # ten minutes, not added again for every decision that names it.
                if lst is None or listed.get((lst, ip), 0) >= until - 600:
                    continue
                listed[(lst, ip)] = until
                if lst == "deny":
                    denied[ip] = until
                yield {"kind": "list_change", "id": f"l-{tag}-{seq}-{i}",
                       "data": list_change(d, ip, lst, eid, node)}
            if d.reaction == "deny_session" and d.session:
                denied_sessions[d.session] = d.ts + (d.duration or 1e12)
    engine.finish()
    for i, s in enumerate(sessions.values()):
        yield {"kind": "session", "id": f"s-{tag}-{i}", "data": s}


def _record(rec: RequestRecord, rid: str, app: str, sid: str) -> dict[str, Any]:
    d = {"id": rid, "ts": rec.ts, "ip": rec.ip, "method": rec.method, "host": rec.host,
         "path": rec.path, "query": rec.query, "status": rec.status,
         "req_bytes": rec.req_bytes, "resp_bytes": rec.resp_bytes,
         "duration_ms": rec.duration_ms, "ua": rec.ua, "session": rec.session,
         "user": rec.user, "app": app, "session_id": sid}
    if rec.blocked:
        d["blocked"] = True
    return d


def detection(d: Decision, tag: str) -> dict[str, Any]:
    out = d.to_dict()
    out["ips"] = list(d.ips)
    out["evidence"] = [f"{tag}-{e}" for e in d.evidence][-200:]
    out["detectors"] = [{"name": n, "value": _scalar(v), "normal": _scalar(m)}
                        for n, v, m in d.detectors]
    return out


def _scalar(v: Any) -> Any:
    if v is None or isinstance(v, int | float) and not isinstance(v, bool):
        return v
    return str(v)[:128]


def list_change(d: Decision, ip: str, lst: str, attack: str, node: str) -> dict[str, Any]:
    names = ", ".join(n for n, _, _ in d.detectors[:3])
    return {"op": "add", "list": lst, "cidr": ip,
            "reason": f"{d.bot_type} ({d.confidence:.0%}): {names}"[:256],
            "source": f"profile {d.profile}", "created": d.ts,
            "expires": None if d.duration is None else d.ts + d.duration, "who": node,
            "attack": attack}


def history_items(items: list[dict[str, Any]], *, end: float, days: int = 60,
                  seed: int = 1) -> list[dict[str, Any]]:
    """Earlier detections (and the list entries they caused) for the statistics' timeline:
    the hour's detections replayed on past days in varying numbers, with a few spikes."""
    rng = random.Random(seed)
    dets = [i for i in items if i["kind"] == "detection"]
    if not dets:
        return []
    out: list[dict[str, Any]] = []
    spikes = {rng.randrange(2, days) for _ in range(3)} | {5}
    for day in range(1, days):
        n = rng.randint(0, max(1, len(dets) // 3))
        if day in spikes:
            n = len(dets) * 2
        if day > 30:   # the previous period: a little quieter, so changes show
            n = n * 2 // 3
        for j in range(n):
            src = rng.choice(dets)
            d = dict(src["data"])
            ts = end - day * 86400.0 + rng.uniform(-40000, 40000)
            d["ts"] = ts
            d["evidence"] = []
            # Another bot of the same kind: its measurements differ a little.
            d["features"] = {k: (v if k == "scheduled" else round(v * rng.uniform(0.5, 1.6), 3))
                             for k, v in (d.get("features") or {}).items()}
            eid = f"h-{day}-{j}"
            out.append({"kind": "detection", "id": eid, "data": d})
            lst = REACTION_LIST.get(d["reaction"])
            if lst:
                out.append({"kind": "list_change", "id": f"hl-{day}-{j}", "data": {
                    "op": "add", "list": lst, "cidr": d["ip"], "reason": f"{d['bot_type']}",
                    "source": f"profile {d.get('profile')}", "created": ts,
                    "expires": ts + 3600.0, "who": NODE, "attack": eid}})
    out.sort(key=lambda i: i["data"].get("ts", i["data"].get("created", 0)))
    return out


def batches(items: list[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def push_http(session: Any, base_url: str, token: str, items: list[dict[str, Any]],
                    node: str = NODE, lag_seconds: float = 0.4) -> dict[str, int]:
    """Push items through the real sync API (an aiohttp ClientSession)."""
    stored: dict[str, int] = {}
    for n, chunk in enumerate(batches(items)):
        body = {"node": node, "batch_id": f"demo-{node}-{n:06d}-{len(items)}",
                "version": "0.1.0", "lag_seconds": lag_seconds, "list_version": 0,
                "items": chunk}
        # A file-like body: aiohttp streams it rather than holding the loop for a large write.
        payload = io.BytesIO(json.dumps(body, separators=(",", ":")).encode())
        async with session.post(f"{base_url}/api/v1/sync/push", data=payload,
                                headers={"Authorization": f"Bearer {token}",
                                         "Content-Type": "application/json"}) as resp:
            got = await resp.json()
            if resp.status != 200 or got.get("rejected"):
                raise RuntimeError(f"push {n}: HTTP {resp.status}: {got}")
            for k, v in got["stored"].items():
                stored[k] = stored.get(k, 0) + v
    return stored


async def ingest(storage: Any, items: list[dict[str, Any]], *, now: float, node: str = NODE,
                 batch_prefix: str = "demo") -> dict[str, int]:
    """Store items directly (validated as the push route does), for benchmarks."""
    from node.control.api import normalize_item

    stored: dict[str, int] = {}
    for n, chunk in enumerate(batches(items, 5000)):
        rows = [{"kind": i["kind"], "id": i["id"],
                 "data": normalize_item(i["kind"], i["id"], i["data"], now)} for i in chunk]
        result = await storage.ingest_batch(node, f"{batch_prefix}-{n:07d}", rows, now)
        for k, v in result.stored.items():
            stored[k] = stored.get(k, 0) + v
    return stored
