"""Queries that are not a client's choice: clock values (node/engine/clock.py) and the
cursors of long polls the server held. A polling page is not an enumeration."""

from __future__ import annotations

import random

import pytest

from node.engine import Engine
from node.engine.clock import PLACEHOLDER, without_clock
from tests.detector_kit import CHROME, T0, finding, fired, rec, run

TS = 1763900000.0


@pytest.mark.parametrize(("query", "want"), [
    ("since=1763900005", f"since={PLACEHOLDER}"),
    ("_=1763900000123", f"_={PLACEHOLDER}"),                        # jQuery's cache buster
    ("since=1763899000.25&limit=20", f"since={PLACEHOLDER}&limit=20"),
    ("updated_after=2025-11-23T12%3A13%3A21Z", f"updated_after={PLACEHOLDER}"),
    ("from=2025-11-22T23:59:59.5+01:00&to=2025-11-23T12:00",
     f"from={PLACEHOLDER}&to={PLACEHOLDER}"),
    # not the clock: enumeration, old or future instants, random busters, long ids
    ("page=2&q=shoes", "page=2&q=shoes"),
    ("id=1763", "id=1763"),
    ("ts=1600000000", "ts=1600000000"),
    ("136570968920", "136570968920"),
    ("order=17639000051234", "order=17639000051234"),
    ("day=2019-03-01T10:00", "day=2019-03-01T10:00"),
    ("", ""),
])
def test_without_clock(query, want):
    assert without_clock(query, TS) == want


def test_long_queries_are_left_alone():
    q = "since=1763900005&" + "x" * 2000
    assert without_clock(q, TS) == q


def _poller(ip: str, r: random.Random, minutes: int = 60) -> list:
    """A browser tab polling /api/notifications?since=<now> every 5 s, with a person's
    occasional clicks in between."""
    out, i, t = [], 0, T0
    while t < T0 + minutes * 60:
        out.append(rec(i, "/api/notifications", query=f"since={int(t)}", ts=t, ip=ip))
        i += 1
        if r.random() < 0.05:
            out.append(rec(i, f"/api/products/{r.randint(1, 500)}", ts=t + 2.5, ip=ip))
            i += 1
        t += 5 + r.uniform(-0.02, 0.02)
    return out


def test_a_polling_tab_is_not_a_bot():
    recs = _poller("198.18.60.1", random.Random(3))
    eng = Engine()
    assert not [d for x in recs for d in eng.process(x)]
    eng = run(recs)
    for name in ("request_uniqueness", "query_abuse"):
        assert not fired(finding(eng, name, "198.18.60.1")), name


def test_an_enumeration_with_a_cache_buster_still_counts():
    recs = [rec(i, "/api/products", query=f"page={i}&_={int((T0 + i) * 1000)}", ts=T0 + i,
                ua=CHROME) for i in range(120)]
    eng = run(recs)
    assert fired(finding(eng, "query_abuse", "203.0.113.9"))
    assert fired(finding(eng, "request_uniqueness", "203.0.113.9"))


def test_a_long_poll_with_opaque_cursors_is_not_an_enumeration():
    """A chat tab long-polling /api/events?cursor=<opaque>: the server holds each request
    ~25 s, so the loop is the server's pace and the cursor the server's choice."""
    r = random.Random(21)
    recs, t = [], T0
    for i in range(300):
        hold = 25.0 if r.random() < 0.8 else r.uniform(0.2, 25.0)
        recs.append(rec(i, "/api/events", query=f"cursor={r.getrandbits(64):016x}", ts=t,
                        ip="198.18.80.1", duration_ms=hold * 1000))
        t += hold + 0.05
    eng = Engine()
    assert not [d for x in recs for d in eng.process(x)]
    eng = run(recs)
    for name in ("request_uniqueness", "query_abuse"):
        assert not fired(finding(eng, name, "198.18.80.1")), name
