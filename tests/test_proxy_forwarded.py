"""Client address resolution: trusted proxies only, walked from the right."""

from __future__ import annotations

import pytest

from node.proxy.forwarded import (
    forwarded_hops,
    outgoing_xff,
    resolve_client,
    trusted_matcher,
    xff_hops,
)

TRUSTED = trusted_matcher(["10.0.0.0/8", "127.0.0.1", "2001:db8:ffff::/48"])


@pytest.mark.parametrize("peer,xff,fwd,client,trusted", [
    # untrusted peer: headers are the client's own claim and ignored
    ("203.0.113.7", ["198.51.100.1"], [], "203.0.113.7", False),
    ("203.0.113.7", [], ["for=198.51.100.1"], "203.0.113.7", False),
    # trusted peer, one hop
    ("10.0.0.2", ["198.51.100.1"], [], "198.51.100.1", True),
    # forged left part: the first untrusted from the right wins
    ("10.0.0.2", ["1.1.1.1, 198.51.100.1"], [], "198.51.100.1", True),
    # chain of trusted proxies is skipped
    ("10.0.0.2", ["198.51.100.1, 10.0.0.9, 10.1.1.1"], [], "198.51.100.1", True),
    # forger puts a trusted address left of its own: never reached
    ("10.0.0.2", ["10.0.0.5, 6.6.6.6"], [], "6.6.6.6", True),
    # several header lines are one list
    ("10.0.0.2", ["1.1.1.1", "198.51.100.1"], [], "198.51.100.1", True),
    # ports and brackets are dropped
    ("10.0.0.2", ["198.51.100.1:5555"], [], "198.51.100.1", True),
    ("10.0.0.2", ["[2001:db8::7]:443"], [], "2001:db8::7", True),
    # no header from a trusted peer: the peer is the client
    ("10.0.0.2", [], [], "10.0.0.2", True),
    # every hop trusted: leftmost
    ("10.0.0.2", ["10.9.9.9"], [], "10.9.9.9", True),
    # garbage hop ends the walk at the last address read
    ("10.0.0.2", ["198.51.100.1, unknown"], [], "10.0.0.2", True),
    # Forwarded wins over X-Forwarded-For when both are present
    ("10.0.0.2", ["1.1.1.1"], ['for=192.0.2.60;proto=http;by=203.0.113.43'], "192.0.2.60", True),
    ("10.0.0.2", [], ['for="[2001:db8:cafe::17]:4711", for=10.0.0.3'], "2001:db8:cafe::17",
     True),
    ("10.0.0.2", [], ["For=198.51.100.9"], "198.51.100.9", True),
    # IPv6 peers, trusted and not; v4-mapped peer is folded
    ("2001:db8:ffff::1", ["2001:db8::42"], [], "2001:db8::42", True),
    ("2001:db8:1::1", ["2001:db8::42"], [], "2001:db8:1::1", False),
    ("::ffff:10.0.0.2", ["198.51.100.1"], [], "198.51.100.1", True),
    ("::ffff:203.0.113.7", ["198.51.100.1"], [], "203.0.113.7", False),
])
def test_resolve_client(peer, xff, fwd, client, trusted):
    r = resolve_client(peer, xff, fwd, TRUSTED)
    assert (r.client, r.peer_trusted) == (client, trusted)


def test_no_trusted_proxies_configured():
    r = resolve_client("10.0.0.2", ["198.51.100.1"], [], trusted_matcher([]))
    assert r.client == "10.0.0.2" and not r.peer_trusted


def test_hops_are_bounded():
    hops = xff_hops([", ".join(f"10.0.{i // 256}.{i % 256}" for i in range(1000))])
    assert len(hops) == 32 and hops[-1] == "10.0.3.231"
    assert len(forwarded_hops(["for=1.1.1.1," * 100])) == 32


@pytest.mark.parametrize("peer,incoming,fwd,expected", [
    ("203.0.113.7", ["6.6.6.6"], [], "203.0.113.7"),                   # untrusted: replaced
    ("10.0.0.2", ["198.51.100.1"], [], "198.51.100.1, 10.0.0.2"),      # trusted: appended
    ("10.0.0.2", ["1.1.1.1", "198.51.100.1"], [], "1.1.1.1, 198.51.100.1, 10.0.0.2"),
    ("10.0.0.2", [], ["for=198.51.100.1"], "198.51.100.1, 10.0.0.2"),  # from Forwarded
    ("10.0.0.2", [], [], "10.0.0.2"),
])
def test_outgoing_xff(peer, incoming, fwd, expected):
    r = resolve_client(peer, incoming, fwd, TRUSTED)
    assert outgoing_xff(r, peer, incoming) == expected
