"""Per-key actor state (one object a key, read by every detector) and its bounded table."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from node.engine.sketch import LC_ROTATE, hll_add, hll_new, lc_count, lc_new

if TYPE_CHECKING:
    from node.engine.auth import AuthStats

EVIDENCE_KEEP = 12           # ids of the most recent requests kept as evidence
RATE_TAU = 30.0              # seconds: time constant of the decayed request-rate counter
MAX_GAP = 600.0              # inter-arrival gaps above this are pauses, not rhythm
_NEG_INV_TAU = -1.0 / RATE_TAU
_exp = math.exp


class Actor:
    """What we know of one session, IP or IPv6 network. Fields are shared by all detectors;
    `ext` holds detectors' private counters (indices assigned by the engine)."""

    __slots__ = (
        "kind", "key", "label", "first_ts", "last_ts", "n", "rate", "peak_rate",
        "iv_n", "iv_mean", "iv_m2", "endpoints", "uniques", "n_err", "n_404", "n_401",
        "n_unsafe", "n_query", "req_bytes", "resp_bytes", "ua", "ua_kind", "ids", "first_id",
        "ext", "h0", "s0", "decided", "human", "flagged", "ips", "sessions", "uas", "blocked",
        "nsess", "nips", "humans", "auth", "seq", "u_banked", "flows", "customer",
        "customers", "handed",
    )

    def __init__(self, kind: str, key: Any, ts: float) -> None:
        self.kind = kind                # "session" | "ip" | "net"
        self.key = key
        self.label: str | None = None   # printable id (hashed session, IP, CIDR)
        self.first_ts = ts
        self.last_ts = ts
        self.n = 0
        self.rate = 0.0                 # decayed count, ~ requests in the last RATE_TAU s
        self.peak_rate = 0.0            # highest rate seen (req/s)
        self.iv_n = 0                   # Welford over inter-arrival gaps
        self.iv_mean = 0.0
        self.iv_m2 = 0.0
        self.endpoints: bytearray | None = None   # HLL of endpoint templates (breadth)
        self.uniques: bytearray | None = None     # bitmap of path+query (uniqueness)
        self.u_banked = 0               # distinct path+query counted in earlier bitmaps
        self.n_err = 0
        self.n_404 = 0
        self.n_401 = 0                  # answered 401: no valid credential presented
        self.n_unsafe = 0
        self.n_query = 0
        self.req_bytes = 0
        self.resp_bytes = 0
        self.ua = ""
        self.ua_kind: str | None = None
        self.ids: list | None = None
        self.first_id: Any = None
        self.ext: list[float] | None = None
        self.h0: int | None = None      # first request's sketch positions, until sketches exist
        self.decided = 0                # bitmask of bot types already decided
        self.human = False              # marked human-looking (shared-IP guard)
        self.flagged = False            # some bot type decided: excluded from learning
        self.ips: list[str] | None = None       # sessions: addresses seen (≤ 8)
        self.s0: tuple[int, int] | None = None   # ip/net: first session, until sketches exist
        self.sessions: bytearray | None = None  # ip/net: HLL of session keys
        self.uas: bytearray | None = None       # ip/net: HLL of user agents
        self.blocked = 0
        self.nsess = 0                  # ip/net: sessions started here
        self.nips = 0                   # net: addresses seen in the network
        self.humans = 0                 # ip/net: human-looking sessions seen here
        self.auth: AuthStats | None = None      # authentication attempts (engine.auth)
        self.seq: bytearray | None = None       # sessions: transition / gap counts (behavior)
        self.flows: list[int] | None = None     # requests and bad outcomes per endpoint role
        self.customer = False           # sessions: an established client (judged on its own)
        self.handed = False             # sessions: a credential the server handed out (the
                                        # client asked without one first, never logged in)
        self.customers = 0              # ip/net: established client sessions seen here

    # -- per-request update: O(1), a handful of arithmetic operations ------------------------
    def observe(self, ts: float, pi: int, ei: int, er: int, status: int,
                unsafe: bool, has_query: bool, req_bytes: int, resp_bytes: int, rid: Any) -> None:
        """pi: the request's path+query bit in the uniqueness bitmap (0..1023); (ei, er):
        register index and rank of its endpoint in the breadth sketch — computed once per
        request by the engine."""
        n = self.n
        if n:
            gap = ts - self.last_ts
            if gap < 0:
                gap = 0.0
            self.rate = self.rate * _exp(gap * _NEG_INV_TAU) + 1.0
            if gap <= MAX_GAP:
                self.iv_n += 1
                d = gap - self.iv_mean
                self.iv_mean += d / self.iv_n
                self.iv_m2 += d * (gap - self.iv_mean)
            ep = self.endpoints
            if ep is None:                  # allocated on the 2nd request: floods stay small
                ep = self.endpoints = hll_new()
                u = self.uniques = lc_new()
                h0 = self.h0                 # packed: pi | ei << 10 | er << 17
                u[h0 >> 3 & 127] |= 1 << (h0 & 7)
                ep[h0 >> 10 & 127] = h0 >> 17
                self.h0 = None
            if ep[ei] < er:
                ep[ei] = er
            self.uniques[pi >> 3] |= 1 << (pi & 7)
            r = self.rate / RATE_TAU
            if r > self.peak_rate:
                self.peak_rate = r
        else:
            self.rate = 1.0
            self.first_id = rid
            self.h0 = pi | ei << 10 | er << 17   # one small int, not a tuple
        if ts > self.last_ts:
            self.last_ts = ts
        self.n = n + 1
        if status >= 400:
            self.n_err += 1
            if status == 404:
                self.n_404 += 1
            elif status == 401:
                self.n_401 += 1
        if unsafe:
            self.n_unsafe += 1
        if has_query:
            self.n_query += 1
        self.req_bytes += req_bytes
        self.resp_bytes += resp_bytes
        ids = self.ids
        if ids is None:
            self.ids = [rid]
        elif n < EVIDENCE_KEEP:
            ids.append(rid)
        else:
            ids[n % EVIDENCE_KEEP] = rid     # a ring: request n+1 overwrites the oldest

    def observe_resource(self, ts: float, status: int, req_bytes: int, resp_bytes: int,
                         rid: Any) -> None:
        """A page's own resource (script, image, font) after the actor's first request: a
        request and its bytes, but no rhythm, rate or breadth -- the browser chose it."""
        if ts > self.last_ts:
            self.last_ts = ts
        n = self.n
        self.n = n + 1
        if status >= 400:
            self.n_err += 1
        self.req_bytes += req_bytes
        self.resp_bytes += resp_bytes
        ids = self.ids                       # the evidence ring stays aligned with n
        if ids is None:
            self.ids = [rid]
        elif n < EVIDENCE_KEEP:
            ids.append(rid)
        else:
            ids[n % EVIDENCE_KEEP] = rid

    # -- derived features (evaluation time only) --------------------------------------------
    @property
    def interval_cv(self) -> float | None:
        if self.iv_n < 2 or self.iv_mean <= 0:
            return None
        var = self.iv_m2 / (self.iv_n - 1)
        return math.sqrt(max(var, 0.0)) / self.iv_mean

    def distinct_requests(self) -> float:
        """Distinct path+query estimate (evaluation time). A bitmap past half full is banked
        and reset, so the count stays accurate however long the actor lives (a value seen
        in two bitmaps counts twice: uniqueness within windows of ~700 distinct requests)."""
        u = self.uniques
        if u is None:
            return float(min(self.n, 1))
        est, fill = lc_count(u)
        if fill >= LC_ROTATE:
            self.u_banked += round(est)
            u[:] = bytes(len(u))
            return float(self.u_banked)
        return self.u_banked + est

    @property
    def duration(self) -> float:
        return self.last_ts - self.first_ts

    def evidence(self) -> tuple:
        ids = self.ids or []
        if self.n > EVIDENCE_KEEP:           # unroll the ring, oldest first
            k = self.n % EVIDENCE_KEEP
            ids = ids[k:] + ids[:k]
        if self.first_id is not None and (not ids or ids[0] != self.first_id):
            return (self.first_id, *ids)
        return tuple(ids)

    def seen_ip(self, ip: str) -> None:
        ips = self.ips
        if ips is None:
            self.ips = [ip]
        elif ip not in ips and len(ips) < 8:
            ips.append(ip)

    def add_session(self, h: int, ua_h: int) -> None:
        """A session (and its user agent) started here. The first one is only remembered:
        a flood of one-session addresses allocates no sketches."""
        if self.sessions is None:
            if self.nsess <= 1:
                self.s0 = (h, ua_h)
                return
            self.sessions = hll_new()
            self.uas = hll_new()
            if self.s0 is not None:
                hll_add(self.sessions, self.s0[0])
                hll_add(self.uas, self.s0[1])
                self.s0 = None
        hll_add(self.sessions, h)
        hll_add(self.uas, ua_h)


class ActorTable:
    """Actors by key: LRU order doubles as inactivity order, so expiry and the hard cap are
    both O(1) pops from the old end. `on_end(actor)` sees every actor that leaves."""

    __slots__ = ("kind", "cap", "_ttl", "_bucket", "_edge", "_next_edge", "_d", "evictions",
                 "expirations", "on_end", "_ops")

    def __init__(self, kind: str, cap: int, ttl: float,
                 on_end: Callable[[Actor], None] | None = None) -> None:
        self.kind = kind
        self.cap = cap
        self.ttl = ttl
        self._d: OrderedDict[Any, Actor] = OrderedDict()
        self.evictions = 0
        self.expirations = 0
        self.on_end = on_end
        self._ops = 0

    def touch(self, key: Any, ts: float) -> Actor:
        d = self._d
        a = d.get(key)
        self._ops += 1
        if self._ops >= 4096:            # sweep idle actors regularly: ended sessions are
            self._ops = 0                # learned from, and memory follows live traffic
            self.expire(ts)
            a = d.get(key)
        if a is not None and ts - a.last_ts <= self._ttl:
            # Approximate LRU: an actor moves to the young end when its last touch was in
            # an earlier time bucket, so a burst costs one move, and the order is right to
            # within a bucket (ttl / 64): expiry and eviction stay O(1) pops from the old end.
            if ts >= self._next_edge:           # a new bucket began: one division per bucket
                b = self._bucket
                self._edge = ts - ts % b
                self._next_edge = self._edge + b
            if a.last_ts < self._edge:
                d.move_to_end(key)
            return a
        if a is not None:               # same key after its inactivity timeout: a new actor
            del d[key]
            self.expirations += 1
            if self.on_end:
                self.on_end(a)
        a = Actor(self.kind, key, ts)
        d[key] = a
        if len(d) > self.cap:
            _, old = d.popitem(last=False)
            self.evictions += 1
            if self.on_end:
                self.on_end(old)
        return a

    @property
    def ttl(self) -> float:
        return self._ttl

    @ttl.setter
    def ttl(self, ttl: float) -> None:
        self._ttl = ttl
        self._bucket = max(ttl / 64, 1e-3)
        self._edge = self._next_edge = float("-inf")   # the current bucket's start and end

    def expire(self, now: float) -> int:
        """Drop actors idle longer than the TTL (they sit at the old end)."""
        d, ttl, n = self._d, self.ttl, 0
        while d:
            key, a = next(iter(d.items()))
            if now - a.last_ts <= ttl:
                break
            del d[key]
            n += 1
            if self.on_end:
                self.on_end(a)
        self.expirations += n
        return n

    def get(self, key: Any) -> Actor | None:
        return self._d.get(key)

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[Actor]:
        return iter(list(self._d.values()))

    def drain(self) -> None:
        """End every actor (end of a replay): their totals feed the learned baselines."""
        while self._d:
            _, a = self._d.popitem(last=False)
            if self.on_end:
                self.on_end(a)
