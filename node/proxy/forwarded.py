"""Client address resolution from X-Forwarded-For / Forwarded (pure; no mitmproxy).

A forwarding header is believed only when it reached us from a configured trusted proxy,
and then only as far as the chain of trusted proxies goes: walking from the right (the
hop nearest to us), every trusted address is skipped and the first untrusted one is the
client. Anything left of it was written by the client and may be forged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from node.iplists.matcher import NetMatcher, format_ip, parse_ip, parse_network

MAX_HOPS = 32  # a longer chain is cut (keeping the hops nearest to us)


class Resolved(NamedTuple):
    client: str              # the client address, canonical text
    peer_trusted: bool       # the TCP peer is a trusted proxy
    chain: tuple[str, ...]   # hops as received (left to right), when the peer is trusted


def trusted_matcher(networks: Iterable[str]) -> NetMatcher[bool]:
    m: NetMatcher[bool] = NetMatcher()
    for n in networks:
        m.set(parse_network(n), True)
    return m


def _strip_port(hop: str) -> str:
    hop = hop.strip().strip('"')
    if hop.startswith("["):                 # [2001:db8::1]:4711
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:                 # 192.0.2.43:47011
        return hop.split(":", 1)[0]
    return hop


def xff_hops(values: Iterable[str]) -> list[str]:
    """Every address in the X-Forwarded-For header(s), left to right."""
    hops: list[str] = []
    for v in values:
        hops.extend(h for h in (_strip_port(p) for p in v.split(",")) if h)
    return hops[-MAX_HOPS:]


def forwarded_hops(values: Iterable[str]) -> list[str]:
    """The `for=` of every element of the Forwarded header(s) (RFC 7239), left to right."""
    hops: list[str] = []
    for v in values:
        for element in v.split(","):
            for pair in element.split(";"):
                k, sep, val = pair.partition("=")
                if sep and k.strip().lower() == "for":
                    hops.append(_strip_port(val))
    return hops[-MAX_HOPS:]


def canonical_ip(text: str) -> str | None:
    key = parse_ip(text)
    return None if key is None else format_ip(key)


def resolve_client(peer: str, xff: Iterable[str], forwarded: Iterable[str],
                   trusted: NetMatcher[bool]) -> Resolved:
    """The client address of a request whose TCP peer is `peer`.

    Forwarded is read when present, else X-Forwarded-For. A hop that is not an address
    (`unknown`, an obfuscated `_node`) ends the walk at the last address read, so a
    broken chain never makes us trust what lies beyond it.
    """
    peer_key = parse_ip(peer)
    peer_c = format_ip(peer_key) if peer_key is not None else peer
    if peer_key is None or not trusted or trusted.get(peer_key) is None:
        return Resolved(peer_c, False, ())
    fwd = list(forwarded)
    hops = forwarded_hops(fwd) if fwd else xff_hops(xff)
    client = peer_c
    for hop in reversed(hops):
        key = parse_ip(hop)
        if key is None:
            break
        client = format_ip(key)
        if trusted.get(key) is None:
            break
    return Resolved(client, True, tuple(hops))


def outgoing_xff(resolved: Resolved, peer: str, incoming_xff: list[str]) -> str:
    """X-Forwarded-For toward the upstream: a trusted chain with the real peer appended,
    or just the peer when the chain came from an untrusted client."""
    if resolved.peer_trusted:
        prior = ", ".join(v.strip() for v in incoming_xff if v.strip())
        if not prior and resolved.chain:
            prior = ", ".join(resolved.chain)   # converted from Forwarded
        return f"{prior}, {peer}" if prior else peer
    return peer
