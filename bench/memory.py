"""Memory under a flood of distinct clients: replay N records from N distinct IPs.

    python bench/memory.py [--records 1000000]

Writes (once, cached in /tmp/palisade-bench) a combined log in which every line comes from a
new address (IPv4 and IPv6 mixed, each with its own user agent, so every line is also a new
session), replays it with the default caps and prints RSS before, peak RSS and table sizes.
Target: peak RSS under 300 MiB. The caps (engine.max_sessions / max_ips / max_networks)
evict least recently used keys, so the state is bounded whatever the flood's size.
"""

from __future__ import annotations

import argparse
import random
import time

from _common import CACHE, peak_rss_mib, rss_mib

from node.config import load_config
from node.replay import replay


def flood_log(n: int) -> str:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"flood-{n}.log"
    if path.exists():
        return str(path)
    rng = random.Random(5)
    t0 = 1763900000
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        for i in range(n):
            if i % 4 == 3:
                ip = f"2001:db8:{i >> 16 & 0xffff:x}:{i & 0xffff:x}::{rng.randrange(1, 0xffff):x}"
            else:
                ip = f"{10 + (i >> 24) % 200}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            t = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t0 + i // 300))
            path_ = f"/api/products/{rng.randrange(1, 5000)}"
            ua = f"Mozilla/5.0 (X11; Linux x86_64) Chrome/13{i % 10}.0.{i % 5000}.0 Safari/537.36"
            f.write(f'{ip} - - [{t}] "GET {path_} HTTP/1.1" 200 1024 "-" "{ua}" 0.010\n')
    tmp.rename(path)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    path = flood_log(args.records)
    cfg = load_config(None)
    before = rss_mib()
    t = time.perf_counter()
    res = replay([path], cfg)
    secs = time.perf_counter() - t
    st = res.engine.stats()
    lim = cfg.engine.limits
    print(f"records: {res.records:,} from {res.records:,} distinct IPs in {secs:.1f} s")
    print(f"RSS before replay: {before:.0f} MiB; peak RSS: {peak_rss_mib():.0f} MiB "
          f"(target < 300 MiB)")
    print(f"caps: sessions {lim.sessions:,}, ips {lim.ips:,}, networks {lim.networks:,}; "
          f"evicted: {st['evictions']}")


if __name__ == "__main__":
    main()
