"""A mobile app's customers: one user agent (the app's HTTP stack) from hundreds of carrier
addresses, each logging in first, scrolling a feed, refreshing in the background. None of
them is a bot, and none may be blocked (they are why the API exists)."""

from __future__ import annotations

import random

from node.engine import Engine
from node.record import RequestRecord

T0 = 1_763_900_000.0
UAS = ("okhttp/4.12.0", "Dart/3.2 (dart:io)",
       "ShopApp/3.1 (com.shop.ios; build:88; iOS 17.1.1) Alamofire/5.8.0")


def _customer(u: int, r: random.Random) -> list[RequestRecord]:
    ip = f"100.64.{u // 40}.{u % 40 + 1}"              # carrier-grade NAT ranges
    ua, tok = UAS[u % len(UAS)], f"tok-{u}"
    out: list[RequestRecord] = []
    t = T0 + r.uniform(0, 1800)

    def add(path: str, query: str = "", method: str = "GET", status: int = 200,
            user: str | None = None) -> None:
        out.append(RequestRecord(ts=t, ip=ip, method=method, host="api.shop.example",
                                 path=path, query=query, status=status,
                                 resp_bytes=r.randint(300, 9000), duration_ms=20.0, ua=ua,
                                 session=tok, user=user, id=f"{u}:{len(out)}"))

    if r.random() < 0.2:                                 # a typo first
        add("/api/login", method="POST", status=401, user=f"user{u}@example.com")
        t += r.uniform(4, 12)
    add("/api/login", method="POST", user=f"user{u}@example.com")
    for _ in range(r.randint(1, 3)):                     # app opens
        t += r.uniform(1, 3)
        add("/api/config")
        for p in range(1, r.randint(2, 25)):             # feed scrolling
            t += r.expovariate(1 / 4)
            add("/api/feed", f"page={p}")
            if r.random() < 0.3:
                t += r.expovariate(1 / 6)
                add(f"/api/products/{r.randint(1, 5000)}")
        for _ in range(r.randint(0, 15)):                # background refresh
            t += 60 + r.uniform(-1, 1)
            add("/api/notifications")
        t += r.uniform(600, 3000)
    return out


def _customers(n: int = 150, seed: int = 5) -> list[RequestRecord]:
    r = random.Random(seed)
    recs = [x for u in range(n) for x in _customer(u, r)]
    recs.sort(key=lambda x: x.ts)
    return recs


def test_a_mobile_apps_customers_are_never_decided():
    eng = Engine()
    decisions = [d for rec in _customers() for d in eng.process(rec)]
    assert decisions == [], {(d.bot_type, tuple(n for n, _, _ in d.detectors))
                             for d in decisions}
