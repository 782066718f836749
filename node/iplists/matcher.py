"""O(1)-ish IP / CIDR matching: parse once at insert, integer dict lookups per request.

An address is kept as `(version, int)`. Exact addresses live in one dict; networks in one
dict per prefix length present, keyed by the masked network integer. A lookup costs one
dict probe plus one per distinct prefix length in the list (at most 33 / 129), never one
per entry.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import NamedTuple

_BITS = {4: 32, 6: 128}
_V4_MAPPED = 0xFFFF << 32           # ::ffff:0:0/96
_V4_MAPPED_MASK = ((1 << 96) - 1) << 32


class IPKey(NamedTuple):
    version: int  # 4 or 6
    value: int


class NetKey(NamedTuple):
    version: int
    prefix: int    # prefix length
    network: int   # address >> (bits - prefix)


_AF4, _AF6, _pton, _from_bytes = socket.AF_INET, socket.AF_INET6, socket.inet_pton, int.from_bytes


def parse_ip(text: str) -> IPKey | None:
    """Parse a client address once per request; None if it is not an IP address.

    `inet_pton` is ~10x faster than `ipaddress.ip_address`. IPv4-mapped IPv6
    (`::ffff:1.2.3.4`, as a dual-stack socket reports v4 peers) is folded to IPv4 so a v4
    entry matches it. Zone ids (`fe80::1%eth0`) and brackets are dropped.
    """
    if ":" not in text:
        try:
            return IPKey(4, _from_bytes(_pton(_AF4, text)))
        except (OSError, TypeError):
            return None
    if "%" in text:
        text = text.split("%", 1)[0]
    if text.startswith("["):
        text = text[1:].rstrip("]")
    try:
        n = _from_bytes(_pton(_AF6, text))
    except (OSError, TypeError):
        return None
    if n & _V4_MAPPED_MASK == _V4_MAPPED:
        return IPKey(4, n & 0xFFFFFFFF)
    return IPKey(6, n)


def format_ip(key: IPKey) -> str:
    if key.version == 4:
        return socket.inet_ntop(socket.AF_INET, key.value.to_bytes(4))
    return socket.inet_ntop(socket.AF_INET6, key.value.to_bytes(16))


def parse_network(text: str) -> NetKey:
    """`"203.0.113.7"`, `"198.51.100.0/24"`, `"2001:db8::/32"` → NetKey. Raises ValueError.

    Host bits are cleared (`10.0.0.1/8` means `10.0.0.0/8`), and a v4-mapped v6 network is
    folded to v4, matching what `parse_ip` does for addresses.
    """
    net = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            net = ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    bits = _BITS[net.version]
    return NetKey(net.version, net.prefixlen, int(net.network_address) >> (bits - net.prefixlen))


def format_network(key: NetKey) -> str:
    """Canonical text: a bare address for host entries, CIDR otherwise."""
    bits = _BITS[key.version]
    addr = key.network << (bits - key.prefix)
    text = format_ip(IPKey(key.version, addr))
    return text if key.prefix == bits else f"{text}/{key.prefix}"


def canonical_network(text: str) -> str:
    return format_network(parse_network(text))


_V6_TAG = 1 << 128  # exact-address keys: v6 values are tagged so they never equal a v4 value


class NetMatcher[V]:
    """Networks with a value each. `get(ip)`: the most specific match; `all(ip)`: every match.

    Exact addresses share one dict; networks sit in one dict per prefix length present,
    scanned longest prefix first. Lookups touch no `ipaddress` objects.
    """

    __slots__ = ("_exact", "_nets", "_scan")

    def __init__(self) -> None:
        self._exact: dict[int, V] = {}
        # version → {prefix length: {network int: value}}, only lengths with entries
        self._nets: dict[int, dict[int, dict[int, V]]] = {4: {}, 6: {}}
        # version → ((shift, {network int: value}), ...), longest prefix first
        self._scan: dict[int, tuple[tuple[int, dict[int, V]], ...]] = {4: (), 6: ()}

    def __len__(self) -> int:
        return len(self._exact) + sum(
            len(d) for by_len in self._nets.values() for d in by_len.values())

    def __bool__(self) -> bool:
        return bool(self._exact) or bool(self._scan[4]) or bool(self._scan[6])

    def _rescan(self, version: int) -> None:
        bits = _BITS[version]
        by_len = self._nets[version]
        self._scan[version] = tuple((bits - p, by_len[p]) for p in sorted(by_len, reverse=True))

    def set(self, key: NetKey, value: V) -> None:
        if key.prefix == _BITS[key.version]:
            self._exact[key.network | (_V6_TAG if key.version == 6 else 0)] = value
            return
        by_len = self._nets[key.version]
        if key.prefix not in by_len:
            by_len[key.prefix] = {}
            by_len[key.prefix][key.network] = value
            self._rescan(key.version)
        else:
            by_len[key.prefix][key.network] = value

    def discard(self, key: NetKey) -> V | None:
        if key.prefix == _BITS[key.version]:
            return self._exact.pop(key.network | (_V6_TAG if key.version == 6 else 0), None)
        by_len = self._nets[key.version]
        d = by_len.get(key.prefix)
        if d is None:
            return None
        v = d.pop(key.network, None)
        if not d:
            del by_len[key.prefix]
            self._rescan(key.version)
        return v

    def peek(self, key: NetKey) -> V | None:
        """The value stored for exactly this network (not a containing one)."""
        if key.prefix == _BITS[key.version]:
            return self._exact.get(key.network | (_V6_TAG if key.version == 6 else 0))
        return self._nets[key.version].get(key.prefix, {}).get(key.network)

    def get(self, ip: IPKey) -> V | None:
        version, value = ip
        v = self._exact.get(value | _V6_TAG if version == 6 else value)
        if v is not None:
            return v
        for shift, d in self._scan[version]:
            v = d.get(value >> shift)
            if v is not None:
                return v
        return None

    def all(self, ip: IPKey) -> list[V]:
        """Every value whose network contains `ip`, most specific first."""
        version, value = ip
        out = []
        v = self._exact.get(value | _V6_TAG if version == 6 else value)
        if v is not None:
            out.append(v)
        for shift, d in self._scan[version]:
            v = d.get(value >> shift)
            if v is not None:
                out.append(v)
        return out

    def __contains__(self, ip: IPKey) -> bool:
        return self.get(ip) is not None

    def values(self) -> Iterator[V]:
        yield from self._exact.values()
        for by_len in self._nets.values():
            for d in by_len.values():
                yield from d.values()
