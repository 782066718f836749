"""Memory under a login flood: one failed login attempt from each of N addresses.

    python bench/ato_flood.py [--ips 1000000] [--uas 50]

Every address is new (IPv4 from 10.0.0.0/8, every 8th one IPv6 in its own /64), every attempt
tries another username, user agents come from a small pool. Prints the engine's table sizes
and peak RSS as the flood goes on: each table must stop at its cap (engine.auth and
EngineConfig.limits) while the flood continues, so memory levels off instead of growing.
"""

from __future__ import annotations

import argparse
import gc
import time

from _common import peak_rss_mib, rss_mib

from node.engine import Engine
from node.record import RequestRecord

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/{v}.0.0.0 Safari/537.36")


def flood(n: int, uas: int, t0: float = 1_763_900_000.0):
    for i in range(n):
        if i % 8 == 7:
            ip = f"2001:db8:{i >> 16 & 0xffff:x}:{i & 0xffff:x}::1"
        else:
            ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        yield RequestRecord(ts=t0 + i * 0.002, ip=ip, method="POST", host="shop.example",
                            path="/api/login", status=401, req_bytes=60, resp_bytes=40,
                            duration_ms=9.0, ua=UA.format(v=100 + i % uas),
                            user=f"u-{i * 2654435761 % 10**9:09d}", id=i)


def sizes(eng: Engine) -> str:
    st = eng.stats()
    return (f"sessions {st['sessions']:>7,} ips {st['ips']:>7,} nets {st['networks']:>6,} "
            f"clusters {len(eng.clusters):>5,} long-term {len(eng.long_auth):>7,} "
            f"ip-decided {len(eng._ip_decided):>6,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ips", type=int, default=1_000_000)
    ap.add_argument("--uas", type=int, default=50)
    args = ap.parse_args()
    gc.collect()
    base = rss_mib()
    eng = Engine()
    step = max(1, args.ips // 10)
    t = time.process_time()
    decisions = 0
    for i, r in enumerate(flood(args.ips, args.uas), 1):
        decisions += len(eng.process(r))
        if not i % step:
            print(f"{i:>9,} attempts: rss {rss_mib():7.1f} MiB  {sizes(eng)}", flush=True)
    dt = time.process_time() - t
    print(f"\n{args.ips:,} one-attempt logins from {args.ips:,} addresses in {dt:.1f} s CPU "
          f"({1e6 * dt / args.ips:.1f} µs/record), {decisions:,} decisions")
    print(f"rss before {base:.1f} MiB, at end {rss_mib():.1f} MiB, peak {peak_rss_mib():.1f} MiB")
    print(f"caps: sessions {eng.sessions.cap:,}, ips {eng.ips.cap:,}, nets {eng.nets.cap:,}, "
          f"clusters {eng.clusters.cap:,}, long-term {eng.long_auth.cap:,}")


if __name__ == "__main__":
    main()
