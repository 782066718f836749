"""HTTP/2 rapid reset (CVE-2023-44487) against the node: figure F8.

    python bench/h2_rapid_reset.py [--streams 40000] [--max-resets N] [--node-root DIR]

A real `palisade node` terminating TLS (a self-signed certificate made here) in front of a
small counting upstream (a child process); an attacker written with the `h2` library opens
and at once resets `--streams` streams (HEADERS with END_STREAM, then RST_STREAM CANCEL),
reconnecting whenever the node cuts it off, until all were sent. Meanwhile a probe in its own
process sends one HTTPS request every 20 ms on a separate keep-alive connection. Printed:

- resets per connection before the cut-off (the node's GOAWAY, its error code), connections;
- how many of the reset streams reached the upstream;
- probe p50 / p99 before the burst and during it (same run);
- the node's RSS after a warm-up of normal traffic (the baseline), at its peak during the
  burst, and after the burst once garbage collection has settled.

`--node-root` runs the node from another checkout (e.g. before a fix) with this script.
Targets (issue 12): cut off after <= 1,000 resets; few reset streams upstream; probe p99
< 500 ms during the burst; RSS back within 10 MiB of the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.h2client import H2Client  # noqa: E402
from tests.tlsnode import CountingUpstream, TlsNode  # noqa: E402

# The probe: its own process (no event loop or GIL shared with the attacker), one request
# every 20 ms on one keep-alive HTTPS connection, until the stop file appears. Prints one
# JSON line: [[monotonic time, latency ms], ...] (CLOCK_MONOTONIC is system-wide).
PROBE = r"""
import http.client, json, os, ssl, sys, time
port, cafile, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
conn, out = None, []
while not os.path.exists(stop):
    t = time.monotonic()
    try:
        if conn is None:
            conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
        conn.request("GET", "/probe/item")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        conn = None
        out.append([t, -1.0])
        continue
    out.append([t, (time.monotonic() - t) * 1e3])
    time.sleep(max(0.0, 0.02 - (time.monotonic() - t)))
print(json.dumps(out))
"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def warm_up(node: TlsNode, requests: int) -> None:
    """Normal HTTP/2 traffic first, so the baseline RSS includes what any traffic grows."""
    c = await H2Client.open(node.port, node.ssl_context())
    try:
        for i in range(0, requests, 20):
            await asyncio.gather(*(c.get(f"/warm/{i + j}") for j in range(20)))
    finally:
        await c.close()


async def attack(node: TlsNode, streams: int) -> list[tuple[int, int | None, int | None]]:
    """(streams sent, GOAWAY error code or None, streams the node had processed when it sent
    it or None) per connection."""
    conns = []
    left = streams
    while left > 0:
        c = await H2Client.open(node.port, node.ssl_context())
        try:
            sent = await c.burst(left)
            await c.wait_cut_off(5.0 if c.cut_off else 2.0)
        finally:
            await c.close()
        g = c.goaway
        conns.append((sent, g.error_code if g else None, c.streams_seen))
        left -= sent
        if sent == 0:
            raise SystemExit("the node accepted a connection but no stream")
    return conns


async def settle_rss(node: TlsNode, seconds: float) -> list[float]:
    """RSS once a second for `seconds` (the node's GC policy runs once a second)."""
    out = []
    for _ in range(int(seconds)):
        await asyncio.sleep(1.0)
        out.append(node.rss_mib())
    return out


async def run(args: argparse.Namespace, tmp: Path) -> None:
    up = CountingUpstream()
    http2 = (f"  http2: {{max_resets: {args.max_resets}}}\n" if args.max_resets is not None
             else "")
    node = TlsNode(tmp, up.port, http2_yaml=http2,
                   root=Path(args.node_root).resolve() if args.node_root else ROOT)
    probe = None
    try:
        node.start()
        await warm_up(node, args.warmup)
        await asyncio.sleep(args.settle / 2)
        stop = tmp / "probe.stop"
        probe = subprocess.Popen([sys.executable, "-c", PROBE, str(node.port), node.cert,
                                  str(stop)], stdout=subprocess.PIPE, text=True)
        await asyncio.sleep(args.settle / 2)
        rss_before = node.rss_mib()
        t_before = time.monotonic()
        await asyncio.sleep(args.before)
        t_burst = time.monotonic()
        peak = [rss_before]

        async def sample_peak() -> None:
            while True:
                peak.append(node.rss_mib())
                await asyncio.sleep(0.2)

        sampler = asyncio.get_running_loop().create_task(sample_peak())
        try:
            conns = await attack(node, args.streams)
        finally:
            sampler.cancel()
        t_end = time.monotonic()
        await asyncio.sleep(1.0)
        stop.touch()
        out, _ = probe.communicate(timeout=60)
        probe = None
        samples = json.loads(out)
        after = await settle_rss(node, args.settle_after)
        later = []                       # RSS after each further burst (no probe)
        for _ in range(args.bursts - 1):
            await attack(node, args.streams)
            later.append((await settle_rss(node, args.settle_after))[-1])
        counts = up.counts()
    finally:
        if probe is not None:
            probe.kill()
        node.stop()
        up.stop()

    before = [ms for t, ms in samples if t_before <= t < t_burst and ms >= 0]
    during = [ms for t, ms in samples if t_burst <= t < t_end and ms >= 0]
    failed = sum(1 for t, ms in samples if t_burst <= t < t_end and ms < 0)
    cut = [c for c in conns if c[1] is not None]
    seen = [c[2] for c in cut] or [max(c[0] for c in conns)]   # never cut: all it sent
    codes = sorted({str(c[1]) for c in conns})
    print(f"F8 — HTTP/2 rapid reset, {args.streams:,} streams opened and reset "
          f"(node from {node.root})")
    print(f"  attacker connections: {len(conns)}, {len(cut)} cut off with GOAWAY "
          f"{codes} (ENHANCE_YOUR_CALM = 11; None: not cut off); resets before the cut-off "
          f"(streams the node processed, from its GOAWAY): first {seen[0]:,}, max "
          f"{max(seen):,} (the client had written up to {max(c[0] for c in conns):,})")
    print(f"  burst lasted {t_end - t_burst:.1f} s; reset streams that reached the upstream: "
          f"{counts.get('attack', 0):,} (of {args.streams * args.bursts:,})")
    print(f"  probe (separate connection): before p50 {pct(before, .5):.1f} ms / p99 "
          f"{pct(before, .99):.1f} ms (n={len(before)}); during p50 {pct(during, .5):.1f} ms "
          f"/ p99 {pct(during, .99):.1f} ms (n={len(during)}, {failed} failed); "
          f"ratio p99 {pct(during, .99) / pct(before, .99):.1f}x")
    print(f"  node RSS: {rss_before:.1f} MiB after warm-up, peak {max(peak):.1f} MiB during "
          f"the burst, {after[-1]:.1f} MiB {len(after)} s after it "
          f"(delta {after[-1] - rss_before:+.1f} MiB; min after {min(after):.1f})")
    if later:
        print("  node RSS after each further burst: "
              + ", ".join(f"{r:.1f}" for r in later) + " MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=40_000)
    ap.add_argument("--max-resets", type=int, default=None,
                    help="node.http2.max_resets for the node (default: its default)")
    ap.add_argument("--bursts", type=int, default=1,
                    help="bursts in a row (RSS after each; the probe watches the first)")
    ap.add_argument("--warmup", type=int, default=2000, help="normal requests before")
    ap.add_argument("--before", type=float, default=5.0, help="probe seconds before the burst")
    ap.add_argument("--settle", type=float, default=4.0, help="seconds before the baseline")
    ap.add_argument("--settle-after", type=float, default=15.0,
                    help="seconds after the burst before the final RSS")
    ap.add_argument("--node-root", help="run the node from this checkout instead")
    args = ap.parse_args()
    # the attacker writes on until it reads the GOAWAY: asyncio's "socket.send() raised
    # exception" for writes after the node closed is expected here
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="palisade-h2reset-") as tmp:
        os.chmod(tmp, 0o700)
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
