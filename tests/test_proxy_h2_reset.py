"""HTTP/2 rapid reset (CVE-2023-44487) against a real `palisade node` terminating TLS.

The node and a counting upstream run as child processes on loopback; a raw `h2` client over
TLS opens and resets streams in bursts. The node must cut the attacker off (GOAWAY with
ENHANCE_YOUR_CALM after at most 1,000 resets, then close), keep the reset streams from the
upstream, and give the memory back afterwards; a normal client with a few cancellations
must not be cut off. Timing figures are in `bench/h2_rapid_reset.py`, not here.
"""

from __future__ import annotations

import asyncio

import h2.errors
import pytest

from tests.h2client import H2Client
from tests.tlsnode import CountingUpstream, TlsNode

pytestmark = pytest.mark.integration
MAX_RESETS = 1000                     # the node's default (node.http2.max_resets)


@pytest.fixture(scope="module")
def upstream():
    u = CountingUpstream()
    yield u
    u.stop()


@pytest.fixture(scope="module")
def node(upstream, tmp_path_factory):
    n = TlsNode(tmp_path_factory.mktemp("h2node"), upstream.port)
    n.start()
    yield n
    n.stop()


async def normal_traffic(node: TlsNode, requests: int, cancel_every: int = 0) -> H2Client:
    """`requests` GETs, 20 at a time, on one connection; every `cancel_every`-th a slow
    request the client gives up on (RST_STREAM after it went out)."""
    c = await H2Client.open(node.port, node.ssl_context())
    for i in range(0, requests, 20):
        batch = [c.get(f"/normal/{i + j}") for j in range(20)]
        if cancel_every and (i // 20) % cancel_every == 0:
            batch.append(c.cancel(f"/slow/{i}", after=0.05))
        statuses = await asyncio.gather(*batch)
        assert [s for s in statuses if s is not None] == [200] * 20, statuses
    return c


async def rss_settles(node: TlsNode, target: float, seconds: float) -> float:
    """Poll the node's RSS until it is at most `target` (the GC policy collects once a
    second, a full pass after 5 quiet seconds); the last value read."""
    rss = node.rss_mib()
    for _ in range(int(seconds * 2)):
        if rss <= target:
            break
        await asyncio.sleep(0.5)
        rss = node.rss_mib()
    return rss


async def test_normal_client_with_cancellations_is_not_cut_off(node, upstream):
    c = await normal_traffic(node, 1500, cancel_every=5)      # 1,500 requests, 15 cancels
    try:
        assert not c.cut_off and c.goaway is None
        assert await c.get("/normal/after") == 200
    finally:
        await c.close()
    assert upstream.counts()["normal"] >= 1501


async def test_rapid_reset_is_cut_off_memory_given_back(node, upstream):
    # baseline after a warm-up of normal traffic, once the GC has settled
    for _ in range(2):
        await (await normal_traffic(node, 1000)).close()
    await asyncio.sleep(7)
    baseline = node.rss_mib()
    before = upstream.counts().get("attack", 0)

    # one connection tries 40,000 streams: GOAWAY(ENHANCE_YOUR_CALM) after <= 1,000
    c = await H2Client.open(node.port, node.ssl_context())
    try:
        sent = await c.burst(40_000)
        assert await c.wait_cut_off(10)
        await c.closed.wait()                         # then the node closes
    finally:
        await c.close()
    assert c.goaway is not None, f"closed without GOAWAY after {sent} streams"
    assert c.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert c.streams_seen is not None and c.streams_seen <= MAX_RESETS
    assert sent < 40_000

    # an attacker that reconnects is cut off every time
    total = sent
    for _ in range(15):
        c = await H2Client.open(node.port, node.ssl_context())
        try:
            total += await c.burst(5_000)
            await c.wait_cut_off(10)
        finally:
            await c.close()
        assert c.goaway is not None and c.goaway.error_code == 11
        assert c.streams_seen <= MAX_RESETS
    assert total >= 16 * MAX_RESETS
    assert node.alive()

    await asyncio.sleep(1)
    reached = upstream.counts().get("attack", 0) - before
    assert reached <= 5, f"{reached} reset streams reached the upstream"
    # refused as h2_rapid_reset, one per connection cut off
    assert node.metric('palisade_blocked_total{list="none",reason="h2_rapid_reset"}') == 16

    rss = await rss_settles(node, baseline + 10, seconds=20)
    assert rss <= baseline + 10, f"RSS {rss:.1f} MiB vs {baseline:.1f} MiB before the bursts"

    # and the node still serves HTTP/2
    c = await normal_traffic(node, 40)
    await c.close()
