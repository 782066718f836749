"""Authentication state shared by the account-takeover detectors (SPEC §5).

Three bounded structures, all updated in O(1) per authentication attempt:

- `AuthStats`, one per actor (session, IP, IPv6 network), allocated on its first attempt:
  attempts, failures, successes, distinct usernames (first one exact, then a HyperLogLog) and
  the most-failed username (a one-counter Misra-Gries, enough to see one account hammered).
- `Clusters`: one entry per (application, user agent) and per (application, IPv4 /24), a
  capped LRU with an inactivity TTL. It links the attempts of "login-only" sessions — sessions
  that try to log in with at most `LOGIN_ONLY_BEFORE` other requests first — across
  addresses, so an attacker behind a proxy pool who makes one or two attempts per address is
  still seen as one population. Each entry keeps decayed counts (time constant
  `CLUSTER_TAU`), HLLs of usernames and addresses, and up to `CLUSTER_IPS` recent addresses to
  name in a decision.
- `LongTermAuth`: slow, persistent attempts (hours to days), keyed by (IP, user agent) with a
  long TTL and a hard cap; failures decay with a one-day time constant, usernames are an HLL.

Caps: clusters 4096 entries (user-agent clusters list at most 256 addresses each), long-term
100,000 entries of a few hundred bytes; both evict the least recently used entry. A flood of
one-attempt logins from a million addresses holds at most those many entries: measured with
bench/ato_flood.py, resident memory levels off at ~430 MiB with every table at its cap.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from node.engine.sketch import hll_add, hll_count, hll_new, lazy_hll_add

LOGIN_ONLY_BEFORE = 2        # non-auth requests a session may make first and still be login-only
CLUSTER_TAU = 3600.0         # s: the clusters' decayed counts cover about the last hour
CLUSTER_TTL = 4 * 3600.0
CLUSTER_CAP = 4096
CLUSTER_IPS = 256            # addresses a distributed detection may name
LONG_TAU = 86400.0           # s: the long-term failure count halves in ~17 h
LONG_TTL = 7 * 86400.0
LONG_CAP = 100_000
STREAK_USERS = 4             # accounts remembered in a failure streak


class AuthStats:
    """One actor's authentication attempts."""

    __slots__ = ("attempts", "fails", "oks", "u0", "users", "top", "top_fails", "before",
                 "ok_at", "first_ts", "last_ts", "login_only")

    def __init__(self, before: int, ts: float) -> None:
        self.attempts = 0
        self.fails = 0
        self.oks = 0
        self.u0: int | None = None            # first username's hash (exact up to one)
        self.users: bytearray | None = None   # HLL once a second username shows up
        self.top: int | None = None           # Misra-Gries candidate: the most-failed username
        self.top_fails = 0
        self.before = before                  # the actor's requests before its first attempt
        self.ok_at = -1                       # actor.n at the last success
        self.first_ts = ts
        self.last_ts = ts
        self.login_only = False               # counted as a login-only session in clusters

    def add(self, user: int | None, result: str | None, ts: float, n: int) -> None:
        self.attempts += 1
        self.last_ts = ts
        if user is not None:
            self.users, self.u0 = lazy_hll_add(self.users, self.u0, user)
        if result == "fail":
            self.fails += 1
            if user is not None:
                if user == self.top:
                    self.top_fails += 1
                elif self.top_fails <= 0:
                    self.top, self.top_fails = user, 1
                else:
                    self.top_fails -= 1
        elif result == "ok":
            self.oks += 1
            self.ok_at = n

    @property
    def distinct_users(self) -> int:
        if self.users is not None:
            return max(2, round(hll_count(self.users)))
        return 1 if self.u0 is not None else 0


class Cluster:
    """Login-only attempts linked by one shared attribute (a user agent, a /24)."""

    __slots__ = ("key", "first_ts", "last_ts", "lo_sessions", "sessions", "attempts", "fails",
                 "oks", "users", "ip_hll", "ips")

    def __init__(self, key: Any, ts: float) -> None:
        self.key = key
        self.first_ts = ts
        self.last_ts = ts
        self.lo_sessions = 0.0        # decayed: login-only sessions
        self.sessions = 0.0           # decayed: all sessions with this attribute
        self.attempts = 0.0           # decayed: login-only attempts
        self.fails = 0.0              # decayed: ... that failed
        self.oks = 0.0                # decayed: ... that succeeded
        self.users: bytearray | None = None     # HLL of usernames tried by login-only sessions
        self.ip_hll: bytearray | None = None    # HLL of their addresses
        # The most recent CLUSTER_IPS of them, with when each first joined.
        self.ips: OrderedDict[str, float] | None = None

    def decay(self, ts: float) -> None:
        gap = ts - self.last_ts
        if gap > 0:
            f = math.exp(-gap / CLUSTER_TAU)
            self.lo_sessions *= f
            self.sessions *= f
            self.attempts *= f
            self.fails *= f
            self.oks *= f
            self.last_ts = ts

    def add_ip(self, ip: str, keep: bool = True, ts: float = 0.0) -> None:
        """Count an address; `keep` also lists it (user-agent clusters: a /24 cluster's
        addresses are its prefix, and 4096 lists of 256 would be the table's main cost)."""
        if self.ip_hll is None:
            self.ip_hll = hll_new()
        hll_add(self.ip_hll, hash(ip))
        if not keep:
            return
        ips = self.ips
        if ips is None:
            ips = self.ips = OrderedDict()
        if ip in ips:
            ips.move_to_end(ip)
        else:
            ips[ip] = ts
            if len(ips) > CLUSTER_IPS:
                ips.popitem(last=False)

    @property
    def distinct_ips(self) -> int:
        return round(hll_count(self.ip_hll)) if self.ip_hll is not None else 0

    @property
    def distinct_users(self) -> int:
        return round(hll_count(self.users)) if self.users is not None else 0


class LongTerm:
    """Slow attempts from one (IP, user agent) over days."""

    __slots__ = ("first_ts", "last_ts", "fails", "oks", "streak", "streak_ts", "streak_users",
                 "u0", "users", "attempts")

    def __init__(self, ts: float) -> None:
        self.first_ts = ts
        self.last_ts = ts
        self.fails = 0.0              # decayed (LONG_TAU)
        self.oks = 0.0                # decayed
        self.streak = 0.0             # decayed failures since the last success ...
        self.streak_ts = ts           # ... since when ...
        self.streak_users: tuple[int, ...] = ()   # ... on which accounts (up to STREAK_USERS)
        self.attempts = 0
        self.u0: int | None = None
        self.users: bytearray | None = None

    def add(self, user: int | None, result: str | None, ts: float) -> None:
        gap = ts - self.last_ts
        if gap > 0:
            f = math.exp(-gap / LONG_TAU)
            self.fails *= f
            self.oks *= f
            self.streak *= f
            self.last_ts = ts
        self.attempts += 1
        if result == "fail":
            self.fails += 1.0
            if self.streak < 0.5:
                self.streak_ts = ts
            self.streak += 1.0
            if (user is not None and user not in self.streak_users
                    and len(self.streak_users) < STREAK_USERS):
                self.streak_users += (user,)
        elif result == "ok":
            self.success()
        if user is not None:
            self.users, self.u0 = lazy_hll_add(self.users, self.u0, user)

    def success(self) -> None:
        """People behind one NAT share this entry: any success ends the failure streak."""
        self.oks += 1.0
        self.streak = 0.0
        self.streak_users = ()

    @property
    def distinct_users(self) -> int:
        if self.users is not None:
            return max(2, round(hll_count(self.users)))
        return 1 if self.u0 is not None else 0


class _Lru:
    """A capped LRU with an inactivity TTL (the ActorTable idea for small entries)."""

    __slots__ = ("cap", "ttl", "_d", "evictions", "_ops")

    def __init__(self, cap: int, ttl: float) -> None:
        self.cap = cap
        self.ttl = ttl
        self._d: OrderedDict[Any, Any] = OrderedDict()
        self.evictions = 0
        self._ops = 0

    def _touch(self, key: Any, ts: float, make) -> Any:
        d = self._d
        e = d.get(key)
        if e is not None and ts - e.last_ts <= self.ttl:
            d.move_to_end(key)
            return e
        e = d[key] = make(ts)
        d.move_to_end(key)
        if len(d) > self.cap:
            d.popitem(last=False)
            self.evictions += 1
        self._ops += 1
        if self._ops >= 1024:
            self._ops = 0
            while d:
                k, old = next(iter(d.items()))
                if ts - old.last_ts <= self.ttl:
                    break
                del d[k]
        return e

    def get(self, key: Any) -> Any:
        return self._d.get(key)

    def __len__(self) -> int:
        return len(self._d)


class Clusters(_Lru):
    def touch(self, key: Any, ts: float) -> Cluster:
        c = self._touch(key, ts, lambda t: Cluster(key, t))
        c.decay(ts)
        return c


class LongTermAuth(_Lru):
    def touch(self, key: Any, ts: float) -> LongTerm:
        return self._touch(key, ts, LongTerm)


def slash24(ip: str) -> str | None:
    """The /24 of an IPv4 address as a string key (IPv6 networks are engine actors already)."""
    if ":" in ip:
        return None
    i = ip.rfind(".")
    return ip[:i] if i > 0 else None
