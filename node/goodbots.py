"""Good-bot verification (SPEC §5): is a client that claims to be Googlebot, Bingbot, ... really
the vendor's crawler?

A claim (classify_ua kind "good_bot", its vendor key) is checked, cheapest first:
1. the vendor's published source ranges (node/data/good_bots.json) → verified;
2. an address no vendor crawls from (private, loopback, documentation, benchmark, ...) →
   impostor;
3. forward-confirmed reverse DNS: the PTR name of the address must match the vendor's name
   patterns and resolve back to the same address → verified, else impostor;
4. with no DNS to ask (replay without `--dns`, or a vendor without name patterns), a vendor
   whose published ranges are complete (`ranges_complete`: Google, Bing, OpenAI, Perplexity,
   DuckDuckGo, ...) → impostor: its crawlers come from nowhere else. Other vendors → unknown.

DNS goes through an injectable `Resolver` (`reverse(ip)`, `forward(name)`). The engine never
waits for it: `GoodBotVerifier.verdict()` answers from a bounded cache and, on a miss, queues
the lookup on a small thread pool and answers "pending" until the result is in. In replay
(`sync=True`) the lookup runs inline, so results are deterministic. With no resolver a claim
outside the ranges of a vendor that does not publish them all stays "unknown": neither exempt
nor evidence. Ranges sit in one NetMatcher per vendor: a few dict probes, not one test per
range (Google, OpenAI and DuckDuckGo publish hundreds).

Resolvers: `SystemResolver` (the standard library, i.e. the host's resolver configuration) and
`DnsResolver` (a minimal UDP DNS client for an explicit server, used by tests against a local
DNS server on loopback, and where the node must use a given resolver).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import socket
import struct
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

from node.iplists.matcher import NetMatcher, parse_ip, parse_network

VERIFIED, IMPOSTOR, PENDING, UNKNOWN = "verified", "impostor", "pending", "unknown"
CACHE_MAX = 10_000
CACHE_TTL = 86_400.0          # s: a verdict is kept a day (record time)
RETRY_TTL = 300.0             # s: a temporary DNS failure is retried after this long
MAX_PENDING = 256             # lookups queued at once; beyond that claims stay unknown


class Resolver(Protocol):
    """`reverse(ip)`: PTR names ([] when there is none); `forward(name)`: its A / AAAA
    addresses ([] when none). Either returns None on a temporary failure (timeout, SERVFAIL)."""

    def reverse(self, ip: str) -> list[str] | None: ...

    def forward(self, name: str) -> list[str] | None: ...


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    rdns: tuple[re.Pattern[str], ...]
    ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    complete: bool = False      # the vendor publishes every address it crawls from
    matcher: NetMatcher[bool] = field(default_factory=NetMatcher, compare=False, repr=False)

    def __post_init__(self) -> None:
        for net in self.ranges:
            self.matcher.set(parse_network(str(net)), True)

    def in_ranges(self, ip: str) -> bool:
        key = parse_ip(ip)
        return key is not None and key in self.matcher


def load_vendors(path: str | None = None) -> dict[str, Vendor]:
    if path is None:
        text = resources.files("node").joinpath("data", "good_bots.json").read_text("utf-8")
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    out = {}
    for name, v in json.loads(text)["vendors"].items():
        out[name] = Vendor(name, tuple(re.compile(p, re.I) for p in v.get("rdns", ())),
                           tuple(ipaddress.ip_network(r, strict=False)
                                 for r in v.get("ranges", ())),
                           bool(v.get("ranges_complete")) and bool(v.get("ranges")))
    return out


def _global(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


class GoodBotVerifier:
    """Verdicts on good-bot claims, cached per (address, vendor) with a cap and a TTL."""

    def __init__(self, resolver: Resolver | None = None, *, sync: bool = False,
                 vendors: dict[str, Vendor] | None = None, workers: int = 4,
                 cache_max: int = CACHE_MAX) -> None:
        self.resolver = resolver
        self.sync = sync
        self.vendors = vendors if vendors is not None else load_vendors()
        self.cache_max = cache_max
        self._cache: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: set[tuple[str, str]] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._workers = workers

    # -- the engine's side: never blocks unless sync -------------------------------------------
    def verdict(self, ip: str, vendor: str, now: float) -> str:
        v = self.vendors.get(vendor)
        if v is None:
            return UNKNOWN
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return IMPOSTOR
        if v.in_ranges(ip):
            return VERIFIED
        if not _global(addr):
            return IMPOSTOR             # no vendor crawls from a private or reserved address
        if self.resolver is None or not v.rdns:
            # DNS would have the last word (our copy of the ranges may be older than the
            # vendor's); without it, a vendor that publishes all its ranges has said enough.
            return IMPOSTOR if v.complete else UNKNOWN
        key = (ip, vendor)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now < hit[1]:
            return hit[0]
        if self.sync:
            return self._store(key, self.check(ip, v), now)
        self._submit(key, v, now)
        return PENDING

    def _store(self, key: tuple[str, str], verdict: str, now: float) -> str:
        ttl = RETRY_TTL if verdict == UNKNOWN else CACHE_TTL
        with self._lock:
            self._cache[key] = (verdict, now + ttl)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_max:
                self._cache.popitem(last=False)
        return verdict

    def _submit(self, key: tuple[str, str], v: Vendor, now: float) -> None:
        with self._lock:
            if key in self._inflight or len(self._inflight) >= MAX_PENDING:
                return
            self._inflight.add(key)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="goodbot-dns")
        self._pool.submit(self._run, key, v, now)

    def _run(self, key: tuple[str, str], v: Vendor, now: float) -> None:
        try:
            verdict = self.check(key[0], v)
        except Exception:               # a resolver bug must not kill the worker
            verdict = UNKNOWN
        self._store(key, verdict, now)
        with self._lock:
            self._inflight.discard(key)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- forward-confirmed reverse DNS ---------------------------------------------------------
    def check(self, ip: str, v: Vendor) -> str:
        """Blocking FCrDNS check of one address against one vendor."""
        assert self.resolver is not None
        names = self.resolver.reverse(ip)
        if names is None:
            return UNKNOWN
        want = ipaddress.ip_address(ip)
        temporary = False
        for name in names:
            name = name.rstrip(".").lower()
            if not any(p.search(name) for p in v.rdns):
                continue
            addrs = self.resolver.forward(name)
            if addrs is None:
                temporary = True
                continue
            if any(_same(a, want) for a in addrs):
                return VERIFIED
        return UNKNOWN if temporary else IMPOSTOR


def _same(a: str, want: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(a) == want
    except ValueError:
        return False


# -- resolvers ---------------------------------------------------------------------------------
class SystemResolver:
    """The host's resolver through the standard library (blocking: run it in the verifier's
    thread pool). The C library applies the system's timeouts (resolv.conf)."""

    def reverse(self, ip: str) -> list[str] | None:
        try:
            name, aliases, _ = socket.gethostbyaddr(ip)
        except socket.herror as e:
            return [] if e.errno in (1, 4) else None      # HOST_NOT_FOUND / NO_DATA
        except OSError:
            return None
        return [name, *aliases]

    def forward(self, name: str) -> list[str] | None:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as e:
            return [] if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)) \
                else None
        except OSError:
            return None
        return list(dict.fromkeys(str(i[4][0]) for i in infos))


_PTR, _A, _AAAA = 12, 1, 28


class DnsResolver:
    """A minimal DNS-over-UDP client for one server: PTR, A and AAAA with a timeout.
    NXDOMAIN and empty answers are [], timeouts and server failures None."""

    def __init__(self, server: str = "127.0.0.1", port: int = 53, timeout: float = 2.0) -> None:
        self.server = (server, port)
        self.timeout = timeout

    def reverse(self, ip: str) -> list[str] | None:
        return self._query(ipaddress.ip_address(ip).reverse_pointer, _PTR)

    def forward(self, name: str) -> list[str] | None:
        a = self._query(name, _A)
        aaaa = self._query(name, _AAAA)
        if a is None and aaaa is None:
            return None
        return (a or []) + (aaaa or [])

    def _query(self, name: str, qtype: int) -> list[str] | None:
        qid = secrets.randbits(16)         # an unpredictable id: no blind spoofing
        msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + \
            struct.pack(">HH", qtype, 1)
        family = socket.AF_INET6 if ":" in self.server[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(self.timeout)
            try:
                s.sendto(msg, self.server)
                while True:
                    data, _ = s.recvfrom(4096)
                    if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                        break
            except OSError:
                return None
        try:
            return parse_answers(data, qtype)
        except (struct.error, IndexError, ValueError):
            return None


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not raw or len(raw) > 63:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


def read_name(data: bytes, off: int) -> tuple[str, int]:
    """A possibly compressed name at `off`: (name, offset after it)."""
    labels: list[str] = []
    end = -1
    for _ in range(128):                    # bounded: a pointer loop cannot spin
        n = data[off]
        if n & 0xC0 == 0xC0:
            if end < 0:
                end = off + 2
            off = ((n & 0x3F) << 8) | data[off + 1]
            continue
        off += 1
        if n == 0:
            return ".".join(labels), (end if end >= 0 else off)
        labels.append(data[off:off + n].decode("ascii", "replace"))
        off += n
    raise ValueError("DNS name too long")


def parse_answers(data: bytes, qtype: int) -> list[str] | None:
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    rcode = flags & 0xF
    if rcode == 3:
        return []                           # NXDOMAIN
    if rcode:
        return None                         # SERVFAIL, REFUSED, ...
    off = 12
    for _ in range(qd):
        _, off = read_name(data, off)
        off += 4
    out = []
    for _ in range(an):
        _, off = read_name(data, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        off += 10
        rdata = data[off:off + rdlen]
        if rtype == qtype == _PTR:
            out.append(read_name(data, off)[0])
        elif rtype == qtype == _A and rdlen == 4:
            out.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == qtype == _AAAA and rdlen == 16:
            out.append(socket.inet_ntop(socket.AF_INET6, rdata))
        off += rdlen
    return out


def resolver_from_env() -> Resolver | None:
    """`PALISADE_DNS=system` or `PALISADE_DNS=host[:port]`; unset or `off`: none."""
    spec = os.environ.get("PALISADE_DNS", "")
    if not spec or spec == "off":
        return None
    if spec == "system":
        return SystemResolver()
    host, _, port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "53")
    return DnsResolver(host or spec, int(port or 53))
