"""Client address resolution from X-Forwarded-For / Forwarded (pure; no mitmproxy).

A forwarding header is believed only when it reached us from a configured trusted proxy,
and only the one header that proxy is trusted for: nginx, HAProxy and cloud load balancers
append to X-Forwarded-For and pass a client's own `Forwarded` through untouched, so reading
a header the proxy does not write would let the client name itself. Walking that header
from the right (the hop nearest to us), every address of a proxy trusted for the same header
is skipped and the first other one is the client. Anything left of it was written by the
client and may be forged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from node.iplists.matcher import NetMatcher, format_ip, parse_ip, parse_network

MAX_HOPS = 32  # a longer chain is cut (keeping the hops nearest to us)
XFF = "x-forwarded-for"
FORWARDED = "forwarded"
HEADERS = (XFF, FORWARDED)


class TrustedProxy(NamedTuple):
    network: str               # CIDR or address
    header: str = XFF          # the one forwarding header it writes: x-forwarded-for | forwarded


class Hop(NamedTuple):
    addr: str                  # the node identifier as written ("" when absent)
    proto: str | None = None   # Forwarded's proto= / host= of the element
    host: str | None = None


class Resolved(NamedTuple):
    client: str                # the client address, canonical text
    peer: str                  # the TCP peer, canonical text
    header: str | None         # the header believed; None when the peer is not trusted
    chain: tuple[str, ...]     # canonical addresses from the client to the hop before the peer
    proto: str | None = None   # proto= / host= of the peer's own Forwarded element
    host: str | None = None

    @property
    def peer_trusted(self) -> bool:
        return self.header is not None


def trusted_matcher(proxies: Iterable[TrustedProxy | tuple[str, str] | str]) -> NetMatcher[str]:
    """Network → trusted header. A bare string means X-Forwarded-For."""
    m: NetMatcher[str] = NetMatcher()
    for p in proxies:
        network, header = (p, XFF) if isinstance(p, str) else p
        if header not in HEADERS:
            raise ValueError(f"{header!r}: a trusted proxy's header is one of {', '.join(HEADERS)}")
        m.set(parse_network(network), header)
    return m


def _strip_port(hop: str) -> str:
    hop = hop.strip().strip('"')
    if hop.startswith("["):                 # [2001:db8::1]:4711
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:                 # 192.0.2.43:47011
        return hop.split(":", 1)[0]
    return hop


def xff_hops(values: Iterable[str]) -> list[str]:
    """Every address of the X-Forwarded-For header(s), left to right (several header lines
    are one list; empty entries are skipped)."""
    hops: list[str] = []
    for v in values:
        hops.extend(h for h in (_strip_port(p) for p in v.split(",")) if h)
    return hops[-MAX_HOPS:]


def forwarded_hops(values: Iterable[str]) -> list[Hop]:
    """One hop per element of the Forwarded header(s) (RFC 7239), left to right.

    Elements are split on every comma, quotes or not: a quote-aware split would let a
    client's unbalanced `"` swallow the element the proxy appended after it. An element
    without exactly one `for=` (`by=` alone) is a hop of unknown address, which stops the
    walk like `for=unknown` does.
    """
    hops: list[Hop] = []
    for v in values:
        for element in v.split(","):
            if not element.strip():
                continue
            params: dict[str, str] = {}
            dup = False
            for pair in element.split(";"):
                k, sep, val = pair.partition("=")
                k = k.strip().lower()
                if sep:
                    dup |= k in params
                    params[k] = val.strip().strip('"')
            addr = "" if dup or "for" not in params else _strip_port(params["for"])
            hops.append(Hop(addr, params.get("proto"), params.get("host")))
    return hops[-MAX_HOPS:]


def resolve_client(peer: str, xff: Iterable[str], forwarded: Iterable[str],
                   trusted: NetMatcher[str]) -> Resolved:
    """The client address of a request whose TCP peer is `peer`.

    Only the header the peer is trusted for is read. A hop that is not an address
    (`unknown`, an obfuscated `_node`, an element without `for=`) ends the walk at the
    last address read, so a broken chain never makes us trust what lies beyond it.
    """
    peer_key = parse_ip(peer)
    peer_c = format_ip(peer_key) if peer_key is not None else peer
    header = trusted.get(peer_key) if peer_key is not None and trusted else None
    if header is None:
        return Resolved(peer_c, peer_c, None, ())
    proto = host = None
    if header == FORWARDED:
        elements = forwarded_hops(forwarded)
        if elements:
            proto, host = elements[-1].proto, elements[-1].host
        hops = [e.addr for e in elements]
    else:
        hops = xff_hops(xff)
    client, chain = peer_c, []
    for hop in reversed(hops):
        key = parse_ip(hop)
        if key is None:
            break
        client = format_ip(key)
        chain.append(client)
        if trusted.get(key) != header:
            break
    chain.reverse()
    return Resolved(client, peer_c, header, tuple(chain), proto, host)


def outgoing_xff(resolved: Resolved) -> str:
    """X-Forwarded-For toward the upstream, coherent with the client we decided on: the
    trusted part of the chain (from the client on) with the real peer appended, or just the
    peer. A forged part left of the client is dropped, so an upstream reading either end
    sees the same client."""
    if resolved.header is None:
        return resolved.peer
    return ", ".join((*resolved.chain, resolved.peer))


def outgoing_forwarded(resolved: Resolved, proto: str) -> str | None:
    """Forwarded toward the upstream: rebuilt from the same trusted chain when the peer is
    trusted for it, else None (the header is dropped: it is a claim nobody vouched for)."""
    if resolved.header != FORWARDED:
        return None

    def node(a: str) -> str:
        return f'for="[{a}]"' if ":" in a else f"for={a}"

    return ", ".join([*(node(a) for a in resolved.chain), f"{node(resolved.peer)};proto={proto}"])
