"""What the API worlds (payments, SaaS) share: hashes that stand in for server-issued secrets,
real-world address spaces, the user agents of API clients, and a small response-model base.

A world's model and its actors agree on tokens, codes and cursors without talking to each
other: both derive them from what the request carries (`digest`), the way the shop's
`login_sid` does. Nothing here reads the wall clock or the global random state.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from node.sim import agents
from node.sim.core import Actor, Env, Family, Intent


def digest(*parts: object, n: int = 16) -> str:
    """n hex digits of a keyed hash of the parts: a token, a code, an id."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=(n + 1) // 2)
    return h.hexdigest()[:n]


def number(*parts: object) -> int:
    return int(digest(*parts, n=12), 16)


def jbody(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def lognorm(rng: random.Random, median: float, sigma: float, lo: float = 0.0,
            hi: float = math.inf) -> float:
    return min(hi, max(lo, rng.lognormvariate(math.log(median), sigma)))


# -- address spaces --------------------------------------------------------------------------
# Real allocations (late 2025), approximately: the ones a log of a public API shows.
# Residential broadband and mobile carriers, v4 (each block holds many /16s).
RESIDENTIAL_V4 = (
    "73.0.0.0/9",      # Comcast (US)
    "98.192.0.0/11",   # Comcast (US)
    "71.160.0.0/11",   # Verizon (US)
    "76.160.0.0/11",   # Charter (US)
    "79.192.0.0/10",   # Deutsche Telekom (DE)
    "91.0.0.0/10",     # Deutsche Telekom (DE)
    "86.128.0.0/10",   # BT (UK)
    "81.128.0.0/11",   # BT (UK)
    "90.0.0.0/10",     # Orange (FR)
    "83.32.0.0/11",    # Telefonica (ES)
    "93.32.0.0/11",    # Telecom Italia (IT)
    "84.24.0.0/13",    # Ziggo (NL)
    "178.36.0.0/14",   # Orange Polska (PL)
    "189.0.0.0/11",    # Telmex / Claro (MX, BR)
)
BUSINESS_V4 = ("62.128.0.0/13", "80.80.0.0/13", "195.200.0.0/13")  # office lines
CGNAT_V4 = ("100.64.0.0/10",)  # what a carrier's NAT pool looks like from inside; the
# API sees the public side: one address of a carrier block per pool.
CARRIER_V4 = ("172.56.0.0/14", "109.40.0.0/13", "176.224.0.0/13")  # T-Mobile US, Telekom, ...
RESIDENTIAL_V6 = ("2601::/20", "2003::/19", "2a01:c000::/19")  # Comcast, Telekom, Orange
CARRIER_V6 = ("2607:fb90::/32", "2a01:598::/32")  # T-Mobile US, Telekom mobile
CAMPUS_V6 = "2001:620::/29"  # SWITCH (Swiss universities)
# Public clouds: where servers (customers' and bots') live.
AWS_V4 = ("3.208.0.0/12", "54.144.0.0/12", "52.200.0.0/13", "18.204.0.0/14", "3.120.0.0/14")
GCP_V4 = ("34.64.0.0/10", "35.184.0.0/13", "35.224.0.0/12")
AZURE_V4 = ("20.36.0.0/14", "40.112.0.0/13", "13.64.0.0/11", "52.224.0.0/11")
HOSTING_V4 = ("159.203.0.0/16", "167.99.0.0/16", "95.216.0.0/15", "51.68.0.0/16",
              "45.32.0.0/16")  # DigitalOcean, Hetzner, OVH, Vultr
CLOUD_V4 = AWS_V4 + GCP_V4 + AZURE_V4
AWS_V6 = "2600:1f18::/32"
GITHUB_HOOKS = "140.82.112.0/20"  # GitHub's published webhook range
STRIPE_WEBHOOK_IPS = ("3.18.12.63", "3.130.192.231", "13.235.14.237", "13.235.122.149",
                      "18.211.135.69", "35.154.171.200", "52.15.183.38", "54.88.130.119")
GOOGLEBOT_NET = "66.249.64.0/19"
VPC_V4 = "172.31.0.0/16"  # an AWS VPC: the load balancer's health checks come from inside


def pick(rng: random.Random, blocks: tuple[str, ...] | str, n: int = 1) -> list[str]:
    """n distinct-ish addresses spread over the blocks (each draw picks a block first)."""
    if isinstance(blocks, str):
        blocks = (blocks,)
    out = []
    for _ in range(n):
        net = ipaddress.ip_network(rng.choice(blocks))
        if net.version == 6:
            out.append(agents.v6_in(rng, net.with_prefixlen))
        else:
            off = rng.randrange(1, net.num_addresses - 1)
            if off & 0xFF in (0, 255):
                off ^= 1
            out.append(str(net.network_address + off))
    return out


def outside(rng: random.Random, blocks: tuple[str, ...], avoid: str) -> str:
    bad = ipaddress.ip_network(avoid)
    while True:
        ip = pick(rng, blocks)[0]
        if ipaddress.ip_address(ip) not in bad:
            return ip


# -- user agents -----------------------------------------------------------------------------
HEADLESS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/142.0.0.0 Safari/537.36")
PINGDOM = "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)"
ELB = "ELB-HealthChecker/2.0"
KUBE_PROBE = "kube-probe/1.31"
CURL = ("curl/8.5.0", "curl/8.11.1", "curl/7.81.0")
REQUESTS = "python-requests/2.32.3"
GO = "Go-http-client/1.1"
NODE_FETCH = "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"


def app_ua(rng: random.Random, app: str, bundle: str, version: str) -> str:
    """A native app's agent: Android (okhttp), iOS (Alamofire / CFNetwork) or Flutter (Dart)."""
    r = rng.random()
    if r < 0.5:
        return (f"{app}/{version} (Android {rng.choice((13, 14, 15, 16))}; "
                f"{rng.choice(('SM-S928B', 'Pixel 9', 'SM-A556B', '2312DRA50G', 'CPH2581'))}) "
                "okhttp/4.12.0")
    if r < 0.88:
        return (f"{app}/{version} ({bundle}; build:{version.replace('.', '')}; "
                f"iOS {rng.choice(('18.6.2', '26.1', '26.0.1'))}) Alamofire/5.10.2")
    return "Dart/3.5 (dart:io)"


# -- actor helpers ---------------------------------------------------------------------------

class ApiActor(Actor):
    """An API world's actor. Its requests go out one after the other: `req` never goes back
    in time (a preflight's delay pushes what follows), and `_last` is the latest intent, whose
    rounded time is what the server saw (tokens derived from it)."""

    _t = -math.inf
    _last: Intent

    def req(self, t: float, *a: Any, **kw: Any) -> Intent:  # type: ignore[override]
        if t < self._t:
            t = self._t
        self._t = t
        self._last = super().req(t, *a, **kw)
        return self._last

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        out: list[Actor] = []
        for i in range(n):
            a = cls(env, fam, i)
            a.start = env.start + env.rng(f"start/{a.id}").random() * env.duration * 0.97
            out.append(a)
        return out


def form(**f: str) -> bytes:
    from urllib.parse import urlencode
    return urlencode(f).encode()


def group(cls: type[Actor], env: Env, fam: Family, n: int, size: int) -> list[list[Actor]]:
    """n groups of `size` actors (people sharing an address or a network)."""
    return [[cls(env, fam, g * size + j, f"{fam.name}-{g:02d}-{j:02d}") for j in range(size)]
            for g in range(n)]


def spread_starts(env: Env, members: list[Actor], key: str) -> None:
    rng = env.rng(key)
    for a in members:
        a.start = env.start + rng.random() * env.duration * 0.95


class Integration(ApiActor):
    """A customer's program: a fixed address (or a few), one agent, a schedule."""

    UA = "python-requests/2.32.3"
    BLOCKS: tuple[str, ...] = ("3.208.0.0/12", "54.144.0.0/12")  # AWS

    def __init__(self, env: Env, fam: Family, idx: int, actor_id: str | None = None) -> None:
        super().__init__(env, fam, idx, actor_id)
        self.ip = pick(env.rng(f"ip/{self.id}"), self.BLOCKS)[0]
        self.ua = self.UA

    @classmethod
    def spawn(cls, env: Env, fam: Family, n: int) -> list[Actor]:
        return [cls(env, fam, i) for i in range(n)]

    def hours(self, offset: float) -> Iterator[float]:
        """The times a job scheduled at `offset` seconds past each hour runs in the window."""
        h = math.floor(self.env.start / 3600) * 3600 + offset
        while h < self.env.end:
            if h >= self.env.start:
                yield h
            h += 3600


class CorsTab:
    """A browser's preflight cache for one origin: a non-simple request sends OPTIONS first,
    unless the same method and URL were preflighted less than `max_age` seconds ago."""

    def __init__(self, actor: Actor, origin: str, max_age: float) -> None:
        self.actor, self.origin, self.max_age = actor, origin, max_age
        self.seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.pre = {"Origin": origin, "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type"}

    def send(self, t: float, method: str, path: str, query: str = "", body: bytes | None = None,
             **kw: Any) -> Iterator[Intent]:
        key = (method, path + "?" + query)
        last = self.seen.get(key)
        if last is None or t - last >= self.max_age:
            h = self.pre if method == "POST" else {**self.pre,
                                                   "Access-Control-Request-Method": method}
            yield self.actor.req(t, "OPTIONS", path, query, headers=h)
            t += self.actor.rng.uniform(0.02, 0.15)
            self.seen[key] = t
            self.seen.move_to_end(key)
            if len(self.seen) > 256:
                self.seen.popitem(last=False)
        yield self.actor.req(t, method, path, query, body, **kw)


class ApiModel:
    """Base of a world's response model: `handle(intent)` gives (status, body bytes,
    endpoint, server work ms); `respond(intent)` adds a sampled duration."""

    LATENCY: dict[str, tuple[float, float]] = {}

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self._lat = {k: (math.log(m), s) for k, (m, s) in self.LATENCY.items()}

    def handle(self, it: Intent) -> tuple[int, int, str, float]:
        raise NotImplementedError

    def respond(self, it: Intent) -> tuple[int, int, float]:
        status, size, endpoint, work = self.handle(it)
        mu, sigma = self._lat.get(endpoint, (0.0, 0.3))
        dur = self.rng.lognormvariate(mu, sigma) + work
        if self.rng.random() < 0.005:  # rare stalls: GC, a slow replica
            dur *= self.rng.uniform(3, 12)
        return status, size, round(dur, 2)


def capped_put(d: OrderedDict, key: Any, value: Any, cap: int) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > cap:
        d.popitem(last=False)


Responder = Callable[[Intent], tuple[int, int, float]]
