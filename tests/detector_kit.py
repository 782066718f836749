"""Helpers for detector tests: record builders, a run of the engine, and the registry of
which detectors have a firing test and a quiet-on-humans test (checked by
tests/test_detector_coverage.py: a detector in the table without both fails the suite)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from node.config import EngineConfig
from node.detectors.base import Finding
from node.engine import Engine
from node.engine.actor import Actor
from node.engine.context import Event
from node.record import RequestRecord

FIRES: set[str] = set()
QUIET: set[str] = set()

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/142.0.0.0 Safari/537.36")
T0 = 1_763_900_000.0


def fires(name: str) -> Callable:
    """Mark a test as showing detector `name` firing on the behaviour it targets."""
    def mark(fn: Callable) -> Callable:
        FIRES.add(name)
        return fn
    return mark


def quiet(name: str) -> Callable:
    """Mark a test as showing detector `name` staying quiet on human traffic."""
    def mark(fn: Callable) -> Callable:
        QUIET.add(name)
        return fn
    return mark


def rec(i: int, path: str = "/api/products/1", *, ts: float | None = None, ip: str = "203.0.113.9",
        ua: str | None = CHROME, method: str = "GET", query: str = "", status: int = 200,
        resp_bytes: int = 1200, req_bytes: int = 0, duration_ms: float | None = 12.0,
        session: str | None = None, user: str | None = None, host: str = "shop.example",
        referer: str | None = None) -> RequestRecord:
    return RequestRecord(ts=T0 + i if ts is None else ts, ip=ip, method=method, host=host,
                         path=path, query=query, status=status, req_bytes=req_bytes,
                         resp_bytes=resp_bytes, duration_ms=duration_ms, ua=ua,
                         session=session, user=user, id=i, referer=referer)


def run(records: Iterable[RequestRecord], config: EngineConfig | None = None) -> Engine:
    eng = Engine(config)
    last: dict[str, RequestRecord] = {}
    for r in records:
        eng.process(r)
        last[r.ip] = r
    eng.last = last  # type: ignore[attr-defined]
    return eng


def actor_for(eng: Engine, ip: str, kind: str = "session") -> Actor:
    if kind == "ip":
        a = eng.ips.get(ip)
    else:
        a = next((s for s in eng.sessions if ip in (s.key[1], *(s.ips or ()))), None)
    assert a is not None, f"no {kind} actor for {ip}"
    return a


def finding(eng: Engine, name: str, ip: str, kind: str = "session") -> Finding | None:
    """What detector `name` says of the actor (the session, or the IP) behind `ip` now."""
    a = actor_for(eng, ip, kind)
    det = next(d for d in eng.detectors if d.name == name)
    r = eng.last[ip]  # type: ignore[attr-defined]
    ev = Event(r, eng.apps[0], "/", a if a.kind == "session" else actor_for(eng, ip),
               eng.ips.get(ip), None, r.method not in ("GET", "HEAD"), False)
    return det.evaluate(a, ev)


def fired(f: Finding | None) -> bool:
    return f is not None and f.strength > 0


def record_firings(eng: Engine) -> dict[tuple, set[str]]:
    """Wrap `eng.score` so every evaluation notes which detectors fired for which actor."""
    seen: dict[tuple, set[str]] = {}
    score = eng.score

    def spy(actor, ev):
        gained, worked, fired_ = score(actor, ev)
        seen.setdefault((actor.kind, actor.key), set()).update(d.name for d, _ in fired_)
        return gained, worked, fired_

    eng.score = spy  # type: ignore[method-assign]
    return seen
