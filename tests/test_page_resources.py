"""A website's visitors: every page pulls dozens of scripts, styles, images and fonts within a
second (the Referer names the page). Counted one by one they read as a burst of unique requests
across many endpoints; they are one page's resources, and nobody may be blocked for them."""

from __future__ import annotations

import random

from node.engine import Engine
from node.record import RequestRecord
from tests.detector_kit import CHROME, T0, finding, fired, run


def _visitor(u: int, r: random.Random) -> list[RequestRecord]:
    ip, out = f"198.18.{90 + u // 200}.{u % 200 + 1}", []
    t = T0 + r.uniform(0, 3600)

    def add(ts: float, method: str, path: str, query: str = "", status: int = 200,
            referer: str | None = None) -> None:
        out.append(RequestRecord(ts=ts, ip=ip, method=method, host="", path=path, query=query,
                                 status=status, resp_bytes=r.randint(500, 90000),
                                 duration_ms=r.uniform(1, 80), ua=CHROME,
                                 id=f"{u}:{len(out)}", referer=referer))

    for page in range(r.randint(3, 25)):
        path, query = r.choice([("/", ""), ("/category/shoes", ""), ("/cart", ""),
                                (f"/product/{r.randint(1, 4000)}", ""),
                                ("/search", "q=" + r.choice(["red", "lamp", "gift"]))])
        add(t, "GET", path, query)
        here = f"https://shop.example{path}"
        for _ in range(r.randint(40, 70) if page == 0 else r.randint(3, 15)):
            kind = r.choice(["js", "css", "img", "img", "img", "font"])
            res = {"js": f"/static/js/chunk-{r.randint(1, 80)}.js",
                   "css": f"/static/css/s{r.randint(1, 10)}.css",
                   "img": f"/images/p/{r.randint(1, 9000)}.webp",
                   "font": f"/static/fonts/f{r.randint(1, 6)}.woff2"}[kind]
            add(t + r.uniform(0.05, 1.5), "GET", res,
                status=200 if page == 0 or kind == "img" else 304, referer=here)
        add(t + r.uniform(0.5, 2), "POST", "/api/analytics/event", status=204, referer=here)
        t += r.lognormvariate(3.0, 1.0)
    return out


def test_a_pages_own_resources_are_not_a_scan():
    r = random.Random(31)
    recs = sorted((x for u in range(150) for x in _visitor(u, r)), key=lambda x: x.ts)
    eng = Engine()
    decisions = [d for x in recs for d in eng.process(x)]
    assert decisions == [], {(d.ip, tuple(n for n, _, _ in d.detectors)) for d in decisions}


def test_resources_without_a_page_still_count():
    # An image scraper: thousands of distinct images, no Referer, no pages.
    recs = [RequestRecord(ts=T0 + i * 0.2, ip="203.0.113.5", method="GET", host="",
                          path=f"/images/p/{i}.webp", status=200, resp_bytes=40_000,
                          duration_ms=5.0, ua=CHROME, id=i) for i in range(400)]
    eng = run(recs)
    assert fired(finding(eng, "request_uniqueness", "203.0.113.5"))
