"""Console speed: every page's data at a month of demo-scale traffic (1M stored requests).

    python bench/console.py [--requests 1000000] [--rounds 7] [--rebuild]
                            [--storage postgresql://postgres@127.0.0.1/bench]

Fills storage once (cached in /tmp/palisade-bench, SQLite by default): simulated demo traffic
(humans and every bot family) run through the engine, copied across the last 30 days with
fresh ids, addresses and sessions until `--requests` requests are stored, plus 60 days of
detections for the statistics. Then times, for each console page, the JSON API calls behind
it and the whole HTML page (data + rendering, through HTTP on loopback), median and worst of
`--rounds`. Target: every page under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from node.console import setup_console  # noqa: E402
from node.console.demo_data import demo_items, history_items, ingest  # noqa: E402
from node.control.api import create_app  # noqa: E402
from node.control.storage import open_storage  # noqa: E402

CACHE = Path(os.environ.get("PALISADE_BENCH_DIR", "/tmp/palisade-bench"))
TARGET_MS = 300.0
TOKEN = "bench-operator-token-0123456789"
DAY = 86400.0


# -- filling ----------------------------------------------------------------------------------
def _shift_ip(ip: str, k: int) -> str:
    """Copy k of an address: another /16 for IPv4, another /48 for IPv6 (same shape)."""
    if ":" in ip:
        head, _, rest = ip.partition(":")
        return f"{(int(head or '0', 16) + k) % 0xFFFF:x}:{rest}"
    a, b, c, d = ip.split(".")
    return f"{a}.{(int(b) + k) % 256}.{c}.{d}"


def _copy(item: dict[str, Any], k: int, off: float) -> dict[str, Any]:
    kind, d = item["kind"], dict(item["data"])
    sfx = f"~{k}"
    if kind == "record":
        d.update(id=d["id"] + sfx, ts=d["ts"] + off, ip=_shift_ip(d["ip"], k),
                 session_id=(d.get("session_id") or "") + sfx)
    elif kind == "detection":
        d.update(ts=d["ts"] + off, ip=_shift_ip(d["ip"], k),
                 ips=[_shift_ip(x, k) for x in d["ips"]],
                 session=(d["session"] + sfx) if d.get("session") else None,
                 evidence=[e + sfx for e in d["evidence"]])
    elif kind == "list_change":
        d.update(cidr=_shift_ip(d["cidr"], k), created=d["created"] + off,
                 expires=None if d.get("expires") is None else d["expires"] + off,
                 attack=(d["attack"] + sfx) if d.get("attack") else None)
    else:
        d.update(session=d["session"] + sfx, ip=_shift_ip(d["ip"], k),
                 first_ts=d["first_ts"] + off, last_ts=d["last_ts"] + off)
    return {"kind": kind, "id": item["id"] + sfx, "data": d}


async def fill(url: str, requests: int, now: float, scale: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    base = demo_items(end=now, scale=scale, seed=11)
    n = sum(1 for i in base if i["kind"] == "record")
    copies = math.ceil(requests / n)
    print(f"  simulated {n:,} requests through the engine in "
          f"{time.perf_counter() - t0:.0f} s; {copies} copies over 30 days", flush=True)
    storage = await open_storage(url)
    stored: dict[str, int] = {}
    try:
        hist = history_items(base, end=now - 30 * DAY, days=30)   # days 31-60: previous period
        got = await ingest(storage, hist, now=now, batch_prefix="hist")
        for k in range(copies):
            off = -k * (30 * DAY / copies)
            items = [_copy(i, k, off) for i in base]
            if k == copies - 1:   # the last copy: only as many requests as still needed
                left = requests - k * n
                items = [i for i in items if i["kind"] != "record" or (left := left - 1) >= 0]
            got = await ingest(storage, items, now=now, batch_prefix=f"copy{k}")
            for key, v in got.items():
                stored[key] = stored.get(key, 0) + v
            done = (k + 1) / copies
            print(f"\r  stored {stored.get('record', 0):,} requests "
                  f"({done:.0%}, {time.perf_counter() - t0:.0f} s)", end="", flush=True)
        print()
        await storage.touch_node("node-1", now, version="0.1.0", addr="127.0.0.1",
                                 last_push=now, lag_seconds=0.4, list_version=0)
        if storage.url_scheme != "sqlite":
            # What autovacuum does on a live server after such a load: fresh planner stats.
            async with storage._write() as c:
                await c.execute("ANALYZE")
    finally:
        await storage.close()
    return {"now": now, "stored": stored}


# -- timing -----------------------------------------------------------------------------------
async def timed(fn: Callable[[], Awaitable[Any]], rounds: int) -> tuple[float, float]:
    await fn()   # warm: first use of a statement, page cache
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


async def login(client: TestClient) -> None:
    text = await (await client.get("/console/login")).text()
    nonce = re.search(r'name="nonce" value="([^"]+)"', text)[1]
    resp = await client.post("/console/login", data={"nonce": nonce, "token": TOKEN},
                             allow_redirects=False)
    assert resp.status == 303, resp.status


def _getter(client: TestClient, path: str, params: dict[str, Any] | None = None,
            bearer: bool = False) -> Callable[[], Awaitable[Any]]:
    headers = {"Authorization": f"Bearer {TOKEN}"} if bearer else None

    async def get() -> None:
        resp = await client.get(path, params=params, headers=headers, allow_redirects=False)
        body = await resp.read()
        if resp.status != 200:
            raise SystemExit(f"{path} {params}: HTTP {resp.status}: {body[:200]!r}")
    return get


async def run(url: str, now: float, rounds: int) -> list[tuple[str, float, float, float]]:
    storage = await open_storage(url)
    app = create_app(storage, tokens=[(TOKEN, "bench", "operator")], clock=lambda: now,
                     close_storage=True)
    setup_console(app)
    rows: list[tuple[str, float, float, float]] = []
    async with TestClient(TestServer(app)) as client:
        await login(client)
        # Real ids to open: a scraper with detail, the busiest recent session, a request id.
        attacks = (await (await client.get("/api/v1/attacks", params={
            "type": "scraping", "limit": 100}, headers={"Authorization": f"Bearer {TOKEN}"}
        )).json())["items"]
        attack = next(a for a in attacks if a["has_detail"])
        sessions = (await (await client.get("/api/v1/sessions", params={"limit": 200},
                                            headers={"Authorization": f"Bearer {TOKEN}"}
                                            )).json())["items"]
        session = max(sessions, key=lambda s: s["requests"])
        async with storage._read() as c:   # the largest session of all, wherever it is
            largest = (await c.fetch("SELECT id, requests FROM sessions "
                                     "ORDER BY requests DESC LIMIT 1"))[0]
        reqs = (await (await client.get(f"/api/v1/sessions/{session['id']}/requests",
                                        params={"limit": 5},
                                        headers={"Authorization": f"Bearer {TOKEN}"})).json())
        rid = reqs["items"][-1]["request_id"]
        ip = attack["ip"]
        week = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 7 * DAY))

        cases: list[tuple[str, list[tuple[str, dict[str, Any] | None]], str,
                          dict[str, Any] | None]] = [
            ("Statistics", [("/api/v1/stats", None)], "/console/", None),
            ("Attacks", [("/api/v1/attacks", None)], "/console/attacks", None),
            ("Attacks by type", [("/api/v1/attacks", {"type": "account_takeover"})],
             "/console/attacks", {"type": "account_takeover"}),
            ("Attacks by IP", [("/api/v1/attacks", {"ip": ip})], "/console/attacks",
             {"ip": ip}),
            ("Attacks by detector", [("/api/v1/attacks", {"detector": "request_interval"})],
             "/console/attacks", {"detector": "request_interval"}),
            ("Attack detail", [(f"/api/v1/attacks/{attack['id']}", None)],
             f"/console/attacks/{attack['id']}", None),
            ("API sessions", [("/api/v1/sessions", None)], "/console/sessions", None),
            ("Sessions by IP", [("/api/v1/sessions", {"ip": session["ip"]})],
             "/console/sessions", {"ip": session["ip"]}),
            ("Sessions by request id", [("/api/v1/sessions", {"request_id": rid})],
             "/console/sessions", {"request_id": rid}),
            ("Sessions by attack type", [("/api/v1/sessions", {"type": "scraping"})],
             "/console/sessions", {"type": "scraping"}),
            ("Sessions by time + status", [("/api/v1/sessions", {"since": week,
                                                                  "status": 404})],
             "/console/sessions", {"since": week, "status": 404}),
            (f"Session ({session['requests']} requests)",
             [(f"/api/v1/sessions/{session['id']}", None),
              (f"/api/v1/sessions/{session['id']}/requests", {"limit": 500})],
             f"/console/sessions/{session['id']}", None),
            (f"Largest session ({largest['requests']} requests)",
             [(f"/api/v1/sessions/{largest['id']}", None),
              (f"/api/v1/sessions/{largest['id']}/requests", {"limit": 500})],
             f"/console/sessions/{largest['id']}", None),
            ("Session, filtered", [(f"/api/v1/sessions/{session['id']}/requests",
                                    {"limit": 500})],
             f"/console/sessions/{session['id']}", {"status": "4xx", "method": "GET"}),
            ("Session CSV", [(f"/api/v1/sessions/{session['id']}/requests.csv", None)],
             f"/console/sessions/{session['id']}/requests.csv", None),
            ("IP lists", [("/api/v1/lists/deny", None), ("/api/v1/lists/history", None)],
             "/console/lists", None),
            ("Nodes and profiles", [("/api/v1/nodes", None)], "/console/nodes", None),
        ]
        for name, api_calls, page, page_params in cases:
            async def api_all(calls=api_calls) -> None:
                for path, params in calls:
                    await _getter(client, path, params, bearer=True)()
            api_med, _ = await timed(api_all, rounds)
            page_med, page_max = await timed(_getter(client, page, page_params), rounds)
            rows.append((name, api_med, page_med, page_max))
            flag = "" if max(api_med, page_med) < TARGET_MS else "  <-- over target"
            print(f"  {name:<32} {api_med:8.1f} {page_med:9.1f} {page_max:9.1f}{flag}",
                  flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="simulator scale of one copy")
    ap.add_argument("--storage", help="storage URL (default: SQLite file in the cache)")
    ap.add_argument("--rebuild", action="store_true", help="refill even when cached")
    args = ap.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    db = CACHE / f"console-{args.requests}.db"
    url = args.storage or f"sqlite:///{db}"
    meta_path = CACHE / f"console-{args.requests}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if args.rebuild or meta is None or meta.get("url") != url or \
            (not args.storage and not db.exists()):
        if not args.storage:
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                p.unlink(missing_ok=True)
        print(f"filling {url} with {args.requests:,} requests (once; cached)", flush=True)
        meta = asyncio.run(fill(url, args.requests, time.time(), args.scale))
        meta["url"] = url
        meta_path.write_text(json.dumps(meta))
    size = f", {db.stat().st_size / 2**20:.0f} MiB" if db.exists() and not args.storage else ""
    print(f"storage {url.split('://')[0]}: {meta['stored']}{size}")
    print(f"  {'page (ms)':<32} {'API med':>8} {'page med':>9} {'page max':>9}")
    rows = asyncio.run(run(url, meta["now"], args.rounds))
    worst = max(max(a, p) for _, a, p, _ in rows)
    verdict = "OK" if worst < TARGET_MS else "OVER TARGET"
    print(f"slowest page: {worst:.1f} ms (median) — target {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
